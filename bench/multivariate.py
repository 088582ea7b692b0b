"""What multivariate drift and embedding drift cost per event, as ratios to a bare pipeline in one run.

Multivariate drift is each event's reconstruction error by the reference's PCA of the features
(``core.multivariate``); embedding drift is a 384-number embedding's exact mean sums and its projections
on the reference's 8 principal components (``core.embedding``), each projection a drift "feature".

One process, one workload: 20 numeric features (the first 12 driven by 4 latent factors, so correlated;
the last 8 independent), a score, 20,000 predictions a minute over 60 s of event time, in batches of 500
(what the worker hands the pipeline). The same events, once without and once with a 384-number embedding
(sent at float32 precision, as the encoder sends it), go through a real ``Pipeline`` (one-minute windows,
``rolling_windows=0``, ``calibrate_for="auto"``) with four profiles of the same training data:

1. no multivariate reconstruction (``multivariate=None``), events without the embedding: the baseline;
2. the profile as built (multivariate), events without the embedding;
3. the profile with the embedding, events with it;
4. the profile without the embedding, the events of 3: what decoding the 384 numbers costs alone
   (the pipeline only counts ``embeddings.text`` as an unknown feature); 3 / 4 is the embedding drift itself.

Each run is a fresh pipeline (built untimed) that processes every batch, then flushes: the window closes
and is reported (drift of each feature, the multivariate and embedding rows), in the timed run. Every
calibration (a one-off per reference and window size) is made in an untimed run first and shared, so it
is excluded. Each configuration runs twice: with BLAS as installed (OpenBLAS starts a thread per CPU)
and held to one thread (``threadpoolctl``): projecting 500 x 384 numbers on 8 components is a matrix
product large enough for OpenBLAS to split across its threads, and small enough for that to cost more
than it saves. The 8 runs alternate (their order rotating each round): CPU time (``time.process_time``,
all of the process's threads, so OpenBLAS's too, spinning or working) per event, median of
``--repeats`` rounds; wall time is printed next to it. Each round starts with the heap so far frozen out
of the garbage collector's reach (``gc.freeze()``, as a worker freezes its start-up objects).

The core parts are then timed alone on one batch of 500, taking turns call by call, under both BLAS
settings: ``ReconstructionModel.errors``, ``EmbeddingCounts.update`` and ``EmbeddingReference.project``,
the decoded vectors made into a matrix (``np.fromiter`` over 500 lists of 384 floats, as the pipeline does),
and ``decode_batch`` of events with and without the embedding.

    .venv/bin/python bench/multivariate.py            # about 3 minutes
    .venv/bin/python bench/multivariate.py --quick    # a smoke run, under a minute
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import chain

import numpy as np

# threadpoolctl: a worker dependency (streamwatch.runtime.threads), pinned in pyproject.toml.
from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]  # no py.typed

from streamwatch.clock import now_ms
from streamwatch.contract.decode import decode_batch
from streamwatch.contract.encode import Encoder
from streamwatch.core.embedding import EmbeddingCounts
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.pipeline.window_report import ReferenceCache
from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile

MODEL, VERSION = "search", "1"
WINDOW_MS = 60_000
START_MS = 1_795_000_000_000 // WINDOW_MS * WINDOW_MS  # on a window boundary
FEATURES, CORRELATED, FACTORS = 20, 12, 4
EMBEDDING = "text"


# -- data ----------------------------------------------------------------------------------------------


class Features:
    """20 numeric features: the first 12 mix 4 latent factors (plus noise), the last 8 are independent."""

    def __init__(self, seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.loadings = rng.normal(0, 1, (FACTORS, CORRELATED))
        self.noise = rng.uniform(0.3, 0.8, CORRELATED)
        self.locations = rng.normal(0, 5, FEATURES)
        self.scales = rng.uniform(0.5, 3, FEATURES)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        values = rng.normal(0, 1, (n, FEATURES))
        factors = rng.normal(0, 1, (n, FACTORS))
        values[:, :CORRELATED] = factors @ self.loadings + values[:, :CORRELATED] * self.noise
        return (values * self.scales + self.locations).round(4)


class Space:
    """Embeddings from a mixture of four clusters with unequal, anisotropic spreads (as the tests draw them)."""

    def __init__(self, dims: int, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.dims = dims
        self.centres = rng.normal(0, 0.1, (4, dims))
        self.scales = np.geomspace(0.2, 0.01, dims) * rng.uniform(0.5, 1.5, (4, 1))
        self.weights = np.array([0.4, 0.3, 0.2, 0.1])

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cluster = rng.choice(4, n, p=self.weights)
        return self.centres[cluster] + rng.normal(0, 1, (n, self.dims)) * self.scales[cluster]


def names() -> list[str]:
    return [f"f{j:02d}" for j in range(FEATURES)]


def reference_profile(features: Features, space: Space, rows: int) -> ReferenceProfile:
    """The training data's profile: the features, a score, and the embedding (multivariate: as built)."""
    rng = np.random.default_rng(0)
    matrix = features.draw(rng, rows)
    columns: dict[str, np.ndarray] = {name: matrix[:, j] for j, name in enumerate(names())}
    columns["score"] = rng.random(rows)
    lineage = Lineage(
        model=MODEL,
        model_version=VERSION,
        data_uri="synthetic",
        rows=rows,
        content_sha256="b" * 64,
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="bench",
    )
    return build_profile(columns, lineage=lineage, score_column="score", embeddings={EMBEDDING: space.draw(rng, rows)})


def make_batches(
    features: Features, space: Space, per_minute: int, seconds: int, batch: int
) -> tuple[list[list[bytes]], list[list[bytes]]]:
    """The same predictions in batches of ``batch``, without and with the embedding (same ids, times, features)."""
    n = per_minute * seconds // 60
    step = seconds * 1000 / n
    encoder = Encoder(clock_ms=now_ms)
    rng = np.random.default_rng(1)
    vectors_rng = np.random.default_rng(2)
    feature_names = names()
    plain: list[list[bytes]] = []
    embedded: list[list[bytes]] = []
    for start in range(0, n, batch):
        size = min(batch, n - start)
        values = features.draw(rng, size)
        scores = rng.random(size)
        latencies = rng.lognormal(3, 0.5, size).round(3)
        vectors = space.draw(vectors_rng, size)  # a batch at a time: memory stays modest
        plain_batch, embedded_batch = [], []
        for i in range(size):
            at = START_MS + int((start + i) * step)
            row = dict(zip(feature_names, values[i].tolist(), strict=True))
            common = (MODEL, VERSION, f"r{start + i}", float(latencies[i]), row, int(scores[i] > 0.5), float(scores[i]))
            plain_batch.append(encoder.prediction(*common, timestamp=at))
            embedded_batch.append(encoder.prediction(*common, timestamp=at, embeddings={EMBEDDING: vectors[i]}))
        plain.append(plain_batch)
        embedded.append(embedded_batch)
    return plain, embedded


# -- the pipeline, four ways -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    label: str
    profile: ReferenceProfile
    batches: list[list[bytes]]
    expect: tuple[str, ...]  # metrics the window's report must hold (a check that each part ran)
    refuse: tuple[str, ...]  # and must not


@dataclass
class Timing:
    cpu: float  # seconds, the whole run
    wall: float
    report_cpu: float  # of which the flush: the window's close and report


def blas(threads: int | None) -> AbstractContextManager[object]:
    """BLAS as installed (``None``: OpenBLAS's own thread count), or held to ``threads`` threads."""
    return nullcontext() if threads is None else threadpool_limits(limits=threads, user_api="blas")


def run_pipeline(config: Config, cache: ReferenceCache, threads: int | None) -> tuple[Timing, set[str]]:
    """A fresh pipeline (untimed) through every batch, then flushed; its CPU and wall time, and its metrics."""
    pipeline = Pipeline({(MODEL, VERSION): config.profile}, rolling_windows=0, calibrate_for="auto")
    pipeline.reporter._references = cache  # calibrations are one-offs: made once, outside the timed runs
    rows = []
    with blas(threads):
        gc.collect()
        gc.freeze()  # the heap so far (events, profiles, modules) out of the collector's reach, as a worker's
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in config.batches:
            rows += pipeline.process(batch).rows
        flushing = time.process_time()
        rows += pipeline.flush().rows
        done_cpu, done_wall = time.process_time(), time.perf_counter()
        gc.unfreeze()
    return Timing(done_cpu - cpu, done_wall - wall, done_cpu - flushing), {row.metric for row in rows}


# -- the core parts alone ------------------------------------------------------------------------------------


def core_parts(
    profile: ReferenceProfile,
    plain: Sequence[bytes],
    embedded: Sequence[bytes],
    repeats: int,
    calls: int,
    threads: Sequence[int | None],
) -> dict[tuple[str, int | None], float]:
    """CPU µs per event of each part on one batch, by BLAS setting: in each round, ``calls`` calls of each
    part, the parts taking turns call by call (so each call follows other work, as in the pipeline); the
    median of ``repeats`` rounds of each part's mean call, the BLAS settings alternating round by round."""
    joint = profile.multivariate
    assert joint is not None
    model = joint.model()
    reference = profile.embeddings[EMBEDDING].reference()
    decoded = decode_batch(embedded).predictions
    assert len(decoded) == len(embedded) == len(plain)
    rows = len(decoded)
    matrix = np.array([[event.features[name] for name in joint.numeric] for event in decoded], dtype=float)
    lists = [event.embeddings[EMBEDDING] for event in decoded]
    vectors = np.array(lists, dtype=float)

    def embedding_update() -> None:
        EmbeddingCounts(reference.dims).update(vectors)

    parts: dict[str, Callable[[], object]] = {
        "ReconstructionModel.errors (20 features)": lambda: model.errors(matrix, []),
        "EmbeddingCounts.update (384)": embedding_update,
        "EmbeddingReference.project (384 -> 8)": lambda: reference.project(vectors),
        "decoded vectors to a matrix (np.fromiter over the lists)": lambda: np.fromiter(
            chain.from_iterable(lists), float, len(lists) * len(lists[0])
        ).reshape(len(lists), -1),
        "decode_batch, without the embedding": lambda: decode_batch(plain),
        "decode_batch, with the embedding": lambda: decode_batch(embedded),
    }
    for run in parts.values():
        run()  # warm
    times: dict[tuple[str, int | None], list[float]] = {(name, t): [] for name in parts for t in threads}
    order = list(parts)
    for round_ in range(repeats):
        for setting in threads if round_ % 2 == 0 else list(reversed(threads)):
            spent = dict.fromkeys(order, 0.0)
            with blas(setting):
                gc.collect()
                for call in range(calls):
                    shift = (round_ + call) % len(order)
                    for name in order[shift:] + order[:shift]:
                        started = time.process_time()
                        parts[name]()
                        spent[name] += time.process_time() - started
            for name, seconds in spent.items():
                times[name, setting].append(seconds / calls / rows * 1e6)
    return {key: statistics.median(values) for key, values in times.items()}


# -- main -----------------------------------------------------------------------------------------------


def command() -> str:
    python = os.path.relpath(sys.executable)
    return " ".join([python if not python.startswith("..") else sys.executable, *sys.argv])


def blas_threads() -> str:
    found = [f"{i['internal_api']} {i['version']}, {i['num_threads']} threads" for i in threadpool_info()]
    return "; ".join(found) or "none found"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-minute", type=int, default=20_000, help="predictions a minute of event time")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of event time (one window)")
    parser.add_argument("--batch", type=int, default=500, help="events per pipeline call, as the worker hands them")
    parser.add_argument("--dims", type=int, default=384, help="numbers in the embedding")
    parser.add_argument("--reference-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=9, help="rounds of each configuration (and core part)")
    parser.add_argument("--calls", type=int, default=20, help="calls of each core part per round")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.per_minute, args.repeats, args.calls = 6_000, 5, 8
    started = time.perf_counter()
    load = os.getloadavg()[0]

    features, space = Features(), Space(args.dims)
    full = reference_profile(features, space, args.reference_rows)
    assert full.multivariate is not None and EMBEDDING in full.embeddings
    no_embedding = full.model_copy(update={"embeddings": {}})
    baseline = no_embedding.model_copy(update={"multivariate": None})
    plain, embedded = make_batches(features, space, args.per_minute, args.seconds, args.batch)
    events = sum(map(len, plain))
    joint, embedding = ("multivariate_drift",), ("embedding_euclidean", "embedding_cosine")
    configs = [
        Config("1. 20 features, no multivariate (baseline)", baseline, plain, ("psi",), joint + embedding),
        Config("2. 20 features + multivariate", no_embedding, plain, joint, embedding),
        Config(f"3. 20 features + multivariate + {args.dims}-dim embedding", full, embedded, joint + embedding, ()),
        Config("4. the events of 3, profile without the embedding", no_embedding, embedded, joint, embedding),
    ]
    threads: list[int | None] = [None, 1]  # BLAS as installed, and held to one thread

    # One calibration cache for all: an untimed run of each makes its calibrations and checks its report.
    cache = ReferenceCache("auto")
    for config in configs:
        _, metrics = run_pipeline(config, cache, None)
        missing = [m for m in config.expect if m not in metrics]
        extra = [m for m in config.refuse if m in metrics]
        if missing or extra:
            raise SystemExit(
                f"{config.label}: the report lacks {missing} or holds {extra} (metrics: {sorted(metrics)})"
            )

    runs = [(n, setting) for setting in threads for n in range(len(configs))]
    timings: dict[tuple[int, int | None], list[Timing]] = {run: [] for run in runs}
    for round_ in range(args.repeats):
        shift = round_ % len(runs)
        for n, setting in runs[shift:] + runs[:shift]:  # alternating, the order rotating each round
            timing, _ = run_pipeline(configs[n], cache, setting)
            timings[n, setting].append(timing)
    cpu = {run: statistics.median(t.cpu for t in ts) / events * 1e6 for run, ts in timings.items()}
    wall = {run: statistics.median(t.wall for t in ts) / events * 1e6 for run, ts in timings.items()}
    report = {run: statistics.median(t.report_cpu for t in ts) * 1e3 for run, ts in timings.items()}

    parts = core_parts(full, plain[0], embedded[0], args.repeats, args.calls, threads)

    size_plain = sum(map(len, plain[0])) // len(plain[0])
    size_embedded = sum(map(len, embedded[0])) // len(embedded[0])
    print(
        f"\nmachine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), numpy {np.__version__}; BLAS: {blas_threads()}; "
        f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    print(f"command: {command()}")
    print(
        f"\n{events:,} predictions ({args.per_minute:,} a minute, {args.seconds} s of event time, one "
        f"{WINDOW_MS // 1000} s window reported at the flush), batches of {args.batch}; {FEATURES} numeric features "
        f"({CORRELATED} correlated through {FACTORS} factors), a score; ~{size_plain} bytes an event, "
        f"~{size_embedded:,} with the {args.dims}-dim embedding. Reference: {args.reference_rows:,} rows, "
        f"{len(full.multivariate.components)} principal components kept of {len(full.multivariate.means)} "
        f"(multivariate), {len(full.embeddings[EMBEDDING].components)} of the embedding projected. "
        f"µs per event, median of {args.repeats} rounds, the 8 runs (4 configurations x 2 BLAS settings) "
        f"alternating; calibration excluded; the window's report (at the flush) included, its CPU ms shown.\n"
    )
    print(
        "| configuration | CPU µs/event | wall µs/event | report ms | x baseline "
        "| CPU µs/event, BLAS 1 thread | wall | report ms | x baseline |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, config in enumerate(configs):
        cells = []
        for setting in threads:
            c, w, r = cpu[n, setting], wall[n, setting], report[n, setting]
            cells.append(f"{c:.2f} | {w:.2f} | {r:.1f} | {c / cpu[0, setting]:.2f}")
        print(f"| {config.label} | {' | '.join(cells)} |")

    print("\n| ratio (CPU) | BLAS as installed | difference µs/event | BLAS 1 thread | difference | what it says |")
    print("|---|---:|---:|---:|---:|---|")
    for name, a, b, what in (
        ("2 / 1", 1, 0, "multivariate drift on the bare pipeline"),
        ("3 / 1", 2, 0, "multivariate + embedding (decoding and drift) on the bare pipeline"),
        ("3 / 4", 2, 3, "the embedding drift itself (matrix, sums, projections, their drift)"),
        ("4 / 1", 3, 0, "decoding the embedding + multivariate, on the bare pipeline"),
        ("4 / 2", 3, 1, "decoding the embedding alone (the same profile)"),
    ):
        cells = [f"{cpu[a, t] / cpu[b, t]:.2f}x | {cpu[a, t] - cpu[b, t]:+.2f}" for t in threads]
        print(f"| {name} | {' | '.join(cells)} | {what} |")

    print(
        f"\nCore parts alone, on one batch of {len(plain[0])}: CPU µs per event, median of {args.repeats} rounds "
        f"of {args.calls} calls each, the parts taking turns call by call\n"
    )
    print("| part | BLAS as installed | BLAS 1 thread |")
    print("|---|---:|---:|")
    names_ = list(dict.fromkeys(name for name, _ in parts))
    for name in names_:
        print(f"| {name} | {parts[name, None]:.3f} | {parts[name, 1]:.3f} |")
    with_, without = parts["decode_batch, with the embedding", 1], parts["decode_batch, without the embedding", 1]
    drift_parts = sum(parts[name, 1] for name in names_[1:4])
    print(
        f"\n(BLAS 1 thread) decoding the {args.dims} numbers: {with_ - without:+.2f} µs/event "
        f"({with_ / without:.1f}x decode_batch); the embedding's matrix, sums and projections: {drift_parts:.2f} "
        f"µs/event; the reconstruction error: {parts[names_[0], 1]:.2f} µs/event"
    )
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
