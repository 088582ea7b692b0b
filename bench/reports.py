"""What reporting costs per window and per slice, as features, slices and partitions grow.

The Reporter judges every complete window: drift of each feature and of the score, data quality
rates, SLO burn, the one-hour rolling view (its merge and its drift), and, for each performance
partial, performance and fairness per slice, plus once per report the performance view (the
trailing 30 minutes of prediction windows). A worker running several partitions first decodes
and merges every partition's partial of the window (what the report runner does each tick).

Partials are made as the worker makes them: synthetic events (bench/core.py's kind, a score,
latencies, 2% errors, labels for half of the requests arriving a minute after their prediction;
3,000 predictions a minute) through a real pipeline built by ``pipeline_from_settings`` with the
default settings (60 s windows, ``drift_calibration: auto``, a 60-window rolling view, a 30-minute
performance view, a window whose labels keep coming re-reported every 5 minutes, the false-alert
budget), in one-second batches. The pipeline first runs for ``--warm`` minutes, all reported: the
rolling view is full and sliding (its two-stack merge past its first flip, which recurs once per
60 windows and is not in the timed window), the performance view has its 30 windows, and every
calibration (a one-off per reference, feature and window size, 50 to 100 ms each) is cached; an
untimed round before each measurement warms any calibration still missing: calibration is excluded. Then the partials
that closing one more window hands out (its window partial and the performance partials due)
are reported again and again, each round on a fresh deep copy of the warm reporter (sharing
its calibration cache): CPU time (``time.process_time``), median of ``--rounds`` rounds. Each
round starts with what was made before it frozen out of the garbage collector's reach
(``gc.freeze()``, as a worker freezes its start-up objects): else a full collection, set off by
chance in one round, rescans the whole heap (here chiefly the label joins' waiting predictions of
every pipeline, ~80 ms), a cost of the heap's size, not of reporting.

    .venv/bin/python bench/reports.py            # about 8 minutes
    .venv/bin/python bench/reports.py --quick    # a smoke run, ~15 s (windows not yet steady)
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamwatch.clock import now_ms
from streamwatch.config.settings import load_settings
from streamwatch.contract.encode import Encoder
from streamwatch.core.records import WindowKey
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.pipeline.reporter import Reporter
from streamwatch.pipeline.stage import Partial, PartitionStage, StageOutput
from streamwatch.pipeline.window_report import drift_of, operational_rows, quality_rows
from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile

MODEL, VERSION = "credit", "3"
WINDOW_MS = 60_000
START_MS = 1_795_000_000_000 // WINDOW_MS * WINDOW_MS  # on a window boundary
LEVELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
REGIONS = ["north", "south", "east", "west"]
#: Segments every event carries: the default slices (gender, region: 2 + 4 slices) and one segment per
#: slice count of the slice table (``s8`` has 8 values, ...).
SLICE_COUNTS = (2, 8, 32, 128)
BASE_SEGMENTS: list[list[str]] = [["gender"], ["region"]]


@dataclass(frozen=True)
class Shape:
    numeric: int
    categorical: int

    @property
    def features(self) -> int:
        return self.numeric + self.categorical


def shape_of(features: int) -> Shape:
    """Numeric and categorical features mixed 3:1, as in bench/core.py (15 + 5 of 20)."""
    categorical = max(1, features // 4)
    return Shape(features - categorical, categorical)


# -- events and a reference ---------------------------------------------------------------------------


def minute_batches(shape: Shape, minute: int, per_minute: int) -> Iterator[list[bytes]]:
    """One minute of traffic in one-second batches: its predictions, and the labels of half of the
    previous minute's, each arriving a minute after its prediction."""
    encoder = Encoder(clock_ms=now_ms)
    events: list[tuple[int, bytes]] = []
    step = WINDOW_MS / per_minute
    for m, labels_only in ((minute - 1, True), (minute, False)):
        if m < 0:
            continue
        rng = np.random.default_rng(1_000 + m)  # the same draws for the predictions and their labels
        numeric = rng.normal(size=(per_minute, shape.numeric)).round(4)
        categorical = rng.integers(0, len(LEVELS), size=(per_minute, shape.categorical))
        latency = rng.lognormal(3, 0.5, per_minute).round(3)
        score = rng.random(per_minute)
        label = rng.random(per_minute) < 0.3
        gender, region = rng.integers(0, 2, per_minute), rng.integers(0, len(REGIONS), per_minute)
        slices = {f"s{k}": rng.integers(0, k, per_minute) for k in SLICE_COUNTS}
        base = START_MS + m * WINDOW_MS
        for i in range(per_minute):
            at = base + int(i * step)
            request_id = f"r{m}-{i}"
            if labels_only:
                if i % 2 == 0:
                    label_at = at + WINDOW_MS
                    events.append(
                        (
                            label_at,
                            encoder.label(model=MODEL, request_id=request_id, label=int(label[i]), timestamp=label_at),
                        )
                    )
                continue
            features: dict[str, object] = {f"num_{j}": float(numeric[i, j]) for j in range(shape.numeric)}
            features.update({f"cat_{j}": LEVELS[categorical[i, j]] for j in range(shape.categorical)})
            segments = {"gender": "FM"[gender[i]], "region": REGIONS[region[i]]}
            segments.update({name: f"v{values[i]}" for name, values in slices.items()})
            error = i % 50 == 0
            events.append(
                (
                    at,
                    encoder.prediction(
                        MODEL,
                        VERSION,
                        request_id,
                        float(latency[i]),
                        features,
                        None if error else int(score[i] > 0.5),
                        None if error else float(score[i]),
                        "production",
                        "error" if error else "ok",
                        "timeout" if error else None,
                        segments,
                        None,
                        at,
                        None,
                    ),
                )
            )
    events.sort(key=lambda e: e[0])  # stable: arrival order
    start = START_MS + minute * WINDOW_MS
    for second in range(60):
        low, high = start + second * 1000, start + (second + 1) * 1000
        batch = [raw for at, raw in events if low <= at < high]
        if batch:
            yield batch


def reference_profile(shape: Shape, rows: int = 50_000) -> ReferenceProfile:
    rng = np.random.default_rng(0)
    columns: dict[str, np.ndarray] = {f"num_{j}": rng.normal(size=rows) for j in range(shape.numeric)}
    columns.update({f"cat_{j}": rng.choice(np.array(LEVELS, dtype=object), rows) for j in range(shape.categorical)})
    columns["score"] = rng.random(rows)
    lineage = Lineage(
        model=MODEL,
        model_version=VERSION,
        data_uri="synthetic",
        rows=rows,
        content_sha256=hashlib.sha256(repr(shape).encode()).hexdigest(),
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="bench",
    )
    return build_profile(columns, lineage=lineage, score_column="score")


def worker_pipeline(profiles: dict[tuple[str, str], ReferenceProfile], segments: list[list[str]]) -> Pipeline:
    """The pipeline a worker builds from its settings: the defaults, one model with these slices."""
    settings = load_settings(
        models=[{"name": MODEL, "references": {VERSION: "reference.json"}, "segments": segments}],
    )
    return pipeline_from_settings(settings, profiles)


# -- warm pipelines and the partials of one more window ---------------------------------------------------


@dataclass
class Warm:
    pipeline: Pipeline
    partials: list[Partial]  # what closing the timed window handed out (copies), not yet reported
    slices: int


def warm_up(
    shape: Shape, configs: Sequence[list[list[str]]], minutes: int, per_minute: int, keep_from: int | None = None
) -> tuple[list[Warm], dict[tuple[str, str], ReferenceProfile], list[list[bytes]], int]:
    """Run one pipeline per slice config over ``minutes`` minutes, everything reported, then the stage alone
    up to the batch that closes window ``minutes``: its partials are kept, unreported. Also returns the
    batches from minute ``keep_from`` to the end of the minute after the timed one (for the partition table)."""
    profiles = {(MODEL, VERSION): reference_profile(shape)}
    pipelines = [worker_pipeline(profiles, segments) for segments in configs]
    for pipeline in pipelines[1:]:  # one calibration cache for the one reference: calibrating is excluded anyway
        pipeline.reporter._references = pipelines[0].reporter._references
    timed: list[list[Partial] | None] = [None] * len(pipelines)
    target = START_MS + minutes * WINDOW_MS
    kept: list[list[bytes]] = []
    closing = -1  # the index in ``kept`` of the batch that closed the timed window
    for minute in range(minutes + 2):
        for batch in minute_batches(shape, minute, per_minute):
            if keep_from is not None and minute >= keep_from:
                kept.append(batch)  # to the end of the next minute: a small partition closes the window later
            for n, pipeline in enumerate(pipelines):
                if timed[n] is not None:
                    continue
                out = pipeline.stage.process(batch)
                if any(p.kind == "window" and p.start == target for p in out.partials):
                    memo = {id(profiles[MODEL, VERSION]): profiles[MODEL, VERSION]}
                    timed[n] = copy.deepcopy(out.partials, memo)  # partials are live objects
                    if n == 0:
                        closing = len(kept) - 1
                else:
                    pipeline.report(out)
            if keep_from is None and all(t is not None for t in timed):
                break
    warm = []
    for pipeline, partials in zip(pipelines, timed, strict=True):
        assert partials is not None
        performance = [p.aggregate for p in partials if p.kind == "performance"]
        slices = max(
            (sum(len(a.confusion.by_slice(list(n))) for n in a.confusion.slices) for a in performance), default=0
        )
        warm.append(Warm(pipeline, partials, slices))
    return warm, profiles, kept, closing


# -- timing ---------------------------------------------------------------------------------------------


def cpu_ms(prepare: Callable[[], Any], run: Callable[[Any], object], rounds: int) -> float:
    """Median CPU ms of ``run(prepare())`` (``prepare`` untimed), after one untimed round."""
    times = []
    for n in range(rounds + 1):
        args = prepare()
        gc.collect()
        gc.freeze()  # the heap so far out of the collector's reach: see the module docstring
        started = time.process_time()
        run(args)
        elapsed = time.process_time() - started
        gc.unfreeze()
        if n:  # the first round warms what is left to warm (a calibration, lazily built references)
            times.append(elapsed)
    return statistics.median(times) * 1e3


def fresh(reporter: Reporter, partials: list[Partial], profiles: dict[tuple[str, str], ReferenceProfile]) -> Any:
    """A deep copy of a warm reporter and of the partials, sharing the profiles and the calibration cache."""
    memo: dict[int, Any] = {id(p): p for p in profiles.values()}
    memo[id(reporter._references)] = reporter._references
    memo[id(reporter.profiles)] = reporter.profiles
    memo[id(reporter.budget)] = reporter.budget  # settings, not state (and holds a mappingproxy)
    return copy.deepcopy((reporter, partials), memo)


def report_all(args: Any) -> None:
    reporter, partials = args
    reporter.report_many(partials, [], [], {}, [])


def perf_only(args: Any) -> dict[Any, str | None]:
    """Performance and fairness of each performance partial, kept for the view, with no view."""
    reporter, partials = args
    changed: dict[Any, str | None] = {}
    for p in partials:
        if p.kind == "performance":
            reporter._performance(p.key, p.start, p.aggregate, [], [], changed)
    return changed


@dataclass
class Costs:
    minute: float  # all partials of the window, as a report_many with the view
    window: float  # per window partial
    performance: float  # per performance partial (performance and fairness, kept for the view)
    view: float  # the performance view, once per key and report
    windows: int
    performances: int
    views: int


def costs(warm: Warm, profiles: dict[tuple[str, str], ReferenceProfile], rounds: int) -> Costs:
    reporter, partials = warm.pipeline.reporter, warm.partials
    windows = [p for p in partials if p.kind == "window"]
    performance = [p for p in partials if p.kind == "performance"]
    minute = cpu_ms(lambda: fresh(reporter, partials, profiles), report_all, rounds)
    window = cpu_ms(
        lambda: fresh(reporter, windows, profiles), lambda a: a[0].report_many(a[1], [], [], {}, None), rounds
    )
    perf = cpu_ms(lambda: fresh(reporter, performance, profiles), perf_only, rounds)

    def after_performance() -> tuple[Reporter, dict[Any, str | None]]:
        copied, parts = fresh(reporter, performance, profiles)
        return copied, perf_only((copied, parts))

    def views(args: tuple[Reporter, dict[Any, str | None]]) -> None:
        copied, changed = args
        for key, reference_id in changed.items():
            copied._performance_view(key, reference_id, [])

    n_views = len({p.key for p in performance})
    view = cpu_ms(after_performance, views, rounds) if n_views else 0.0
    return Costs(
        minute,
        window / max(1, len(windows)),
        perf / max(1, len(performance)),
        view / max(1, n_views),
        len(windows),
        len(performance),
        n_views,
    )


def one_report(warm: Warm, profiles: dict[tuple[str, str], ReferenceProfile]) -> PipelineOutput:
    """What the timed report says (untimed), for its counts."""
    reporter, partials = fresh(warm.pipeline.reporter, warm.partials, profiles)
    out = PipelineOutput()
    reporter.report_many(partials, out.rows, out.findings, out.examples, out.view)
    return out


def rated(out: PipelineOutput) -> tuple[int, int, int]:
    """Slices with rates (enough labels): in the fullest performance partial, in the view; the view's span."""
    by_start: dict[int, set[Any]] = {}
    for row in out.rows:
        if row.metric == "selection_rate" and row.segment:
            by_start.setdefault(row.window_start_ms, set()).add(row.segment)
    view = {row.segment for row in out.view if row.metric == "selection_rate" and row.segment}
    span = max(((row.window_end_ms - row.window_start_ms) // WINDOW_MS for row in out.view), default=0)
    return max(map(len, by_start.values()), default=0), len(view), span


def window_breakdown(warm: Warm, profiles: dict[tuple[str, str], ReferenceProfile], rounds: int) -> dict[str, float]:
    """The parts of one window partial's report (``Reporter._window``), each timed on its own."""
    reporter = warm.pipeline.reporter
    (partial,) = [p for p in warm.partials if p.kind == "window"]
    model, version, variant = partial.key
    key = WindowKey(model, version, variant, partial.start, partial.start + reporter.window_ms)
    reference_id = partial.aggregate.profile.lineage.content_sha256

    def drift(args: Any) -> None:
        r, (p,) = args
        profile = p.aggregate.profile
        drift_of(key, p.aggregate, r._references, "tumbling", r.thresholds.get(model), r._drift_alpha(profile))

    def quality(args: Any) -> None:
        r, (p,) = args
        quality_rows(key, p.aggregate, reference_id, alpha=r._quality_alpha(p.aggregate.profile))

    def rolling(args: Any) -> None:
        r, (p,) = args
        r._rolling(p.key, key, p.aggregate, [])

    def rest(args: Any) -> None:
        r, (p,) = args
        rows: list[Any] = operational_rows(key, p.aggregate, "tumbling", reference_id)
        r._slo(p.key, key, p.aggregate, rows, [])
        r._watch((p.key, "error_rate"), key, p.aggregate.errors / p.aggregate.requests, [])

    prepare = lambda: fresh(reporter, [partial], profiles)  # noqa: E731
    parts = (("drift", drift), ("quality", quality), ("rolling", rolling), ("rest", rest))
    return {name: cpu_ms(prepare, run, rounds) for name, run in parts}


# -- the report runner: decode and merge the partials of P partitions ------------------------------------


def partition_of(raw: bytes, partitions: int) -> int:
    """Kafka keys events by request_id: a stable hash of it picks the partition."""
    start = raw.index(b'"request_id":"') + 14
    request_id = raw[start : raw.index(b'"', start)]
    return int.from_bytes(hashlib.blake2b(request_id, digest_size=8).digest(), "big") % partitions


def partition_blobs(
    pipeline: Pipeline, batches: list[list[bytes]], closing: int, partitions: int, timed: list[Partial], target: int
) -> list[tuple[list[tuple[str, tuple[Any, ...], int, bytes]], int]]:
    """Per partition, the encoded partials it writes for the timed window, and its watermark.

    One stage per partition, each fed its share of the batches. Its performance partials: for every
    performance slot the single pipeline reported with the window, the stage's own aggregate of that slot
    (if it had labels for it) after batch ``closing``, the one that closed the window for the single
    pipeline, so that they merge into the very partials it reported. Its window partial: once its own
    watermark passes the window (a partition with a small share of the events may pass it a few batches
    later). All encoded as the worker stores them (``state.dumps``).
    """
    stages: list[PartitionStage] = [pipeline.new_stage() for _ in range(partitions)]
    performance: list[list[tuple[str, tuple[Any, ...], int, bytes]]] = []
    windows: list[tuple[list[tuple[str, tuple[Any, ...], int, bytes]], int] | None] = [None] * partitions
    slots = [(p.key, p.start) for p in timed if p.kind == "performance"]
    for at, batch in enumerate(batches):
        shares: list[list[bytes]] = [[] for _ in range(partitions)]
        for raw in batch:
            shares[partition_of(raw, partitions)].append(raw)
        for n, share in enumerate(shares):
            if windows[n] is not None or not share:
                continue
            out = stages[n].process(share)
            if out.watermark >= target + WINDOW_MS:
                blobs = [
                    ("window", p.key, p.start, state_codec.dumps(p.aggregate))
                    for p in out.partials
                    if p.kind == "window" and p.start == target
                ]
                windows[n] = (blobs, out.watermark)
        if at == closing:
            for stage in stages:
                slot_aggregates = stage._performance
                performance.append(
                    [
                        ("performance", key, start, state_codec.dumps(slot_aggregates[key, start]))
                        for key, start in slots
                        if (key, start) in slot_aggregates
                    ]
                )
        if at >= closing and all(w is not None for w in windows):
            break
    if any(w is None for w in windows):
        raise SystemExit(f"{sum(w is None for w in windows)} of {partitions} partitions never closed the timed window")
    return [(perf + w[0], w[1]) for perf, w in zip(performance, windows, strict=True) if w is not None]


def runner_costs(
    warm: Warm,
    profiles: dict[tuple[str, str], ReferenceProfile],
    written: list[tuple[list[tuple[str, tuple[Any, ...], int, bytes]], int]],
    rounds: int,
) -> tuple[float, float, float, int]:
    """CPU ms per tick: decode every blob, merge (PartialMerger.add and release), report what it released."""
    reporter = warm.pipeline.reporter
    figures: dict[str, list[float]] = {"decode": [], "merge": [], "report": []}
    rows = 0
    for n in range(rounds + 1):
        copied, _ = fresh(reporter, [], profiles)
        gc.collect()
        gc.freeze()
        started = time.process_time()
        decoded = [
            ([Partial(kind, key, start, state_codec.loads(blob, profiles)) for kind, key, start, blob in parts], wm)  # type: ignore[arg-type]
            for parts, wm in written
        ]
        decoding = time.process_time()
        merger = PartialMerger(range(len(written)), reporter.window_ms)
        for partition, (partials, watermark) in enumerate(decoded):
            merger.add(partition, StageOutput(partials, watermark=watermark))
        released = merger.release()
        merging = time.process_time()
        out = PipelineOutput()
        copied.report_many(released, out.rows, out.findings, out.examples, out.view)
        reporting = time.process_time()
        gc.unfreeze()
        rows = len(out.rows) + len(out.view)
        if n:
            figures["decode"].append(decoding - started)
            figures["merge"].append(merging - decoding)
            figures["report"].append(reporting - merging)
    decode, merge, report = (statistics.median(v) * 1e3 for v in figures.values())
    return decode, merge, report, rows


# -- main -----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", type=int, default=62, help="minutes reported before the timed window")
    parser.add_argument("--per-minute", type=int, default=3_000, help="predictions a minute (labels for half)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--features", type=int, nargs="+", default=[5, 20, 80])
    parser.add_argument("--slices", type=int, nargs="+", default=list(SLICE_COUNTS))
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 3, 12, 48])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.warm, args.per_minute, args.rounds = 2, 600, 3
        args.features, args.slices, args.partitions = [5, 20], [2, 8], [1, 3]
    if any(k not in SLICE_COUNTS for k in args.slices):
        raise SystemExit(f"--slices: each of {SLICE_COUNTS}")
    started = time.perf_counter()
    base_shape = shape_of(20)
    keep_from = max(0, args.warm - 6)
    configs = [BASE_SEGMENTS] + [[[f"s{k}"]] for k in args.slices]
    base_warm, base_profiles, kept, closing = warm_up(base_shape, configs, args.warm, args.per_minute, keep_from)
    base, by_slices = base_warm[0], dict(zip(args.slices, base_warm[1:], strict=True))
    target = START_MS + args.warm * WINDOW_MS
    rounds = args.rounds

    print(
        f"\n{args.per_minute:,} predictions a minute (labels for half, a minute later), one-second batches, "
        f"default worker settings; {args.warm} minutes reported to warm up (calibration excluded), then the "
        f"partials of window {args.warm} reported on copies of the warm reporter: CPU ms, median of {rounds} rounds"
    )

    # 1. per window, per slice
    c = costs(base, base_profiles, rounds)
    parts = window_breakdown(base, base_profiles, rounds)
    s = base.slices
    starts = sorted(p.start for p in base.partials if p.kind == "performance")
    which = ", ".join(f"window {(start - START_MS) // WINDOW_MS}" for start in starts)
    print(
        f"\n1. One window's report: {base_shape.features} features ({base_shape.numeric} numeric, "
        f"{base_shape.categorical} categorical) and the score, slices gender + region ({s} slices). Closing window "
        f"{args.warm} hands out its window partial and {c.performances} performance partial(s) ({which}: a window "
        f"goes out on its first labels, and again 5 minutes later with the labels since); the performance view "
        f"is computed once per report. The parts of the window partial are timed one by one."
    )
    said = one_report(base, base_profiles)
    print(
        f"The report: {len(said.rows)} metric rows, {len(said.view)} rows of the performance view, "
        f"{len(said.findings)} findings.\n"
    )
    print(f"{'':52}{'ms':>9}{'ms/slice':>10}")
    print(f"{'the whole report (report_many, with the view)':52}{c.minute:>9.2f}")
    print(f"{'window partial':52}{c.window:>9.2f}")
    for name, label in (
        ("drift", f"  drift, tumbling ({base_shape.features + 1} series)"),
        ("quality", f"  data quality rates ({3 * base_shape.features} series)"),
        ("rolling", "  rolling view (1h: two-stack merge + its drift)"),
        ("rest", "  volume, latency, SLO burn, change detector"),
    ):
        print(f"{label:52}{parts[name]:>9.2f}")
    print(f"{'performance partial (performance + fairness), each':52}{c.performance:>9.2f}{c.performance / s:>10.3f}")
    print(f"{'performance view (30 m), per report':52}{c.view:>9.2f}{c.view / s:>10.3f}")

    # 2. features
    print(
        "\n2. Features (3 numeric : 1 categorical, plus the score), slices gender + region: ms per window partial, "
        "µs per series (features and score), its parts (timed one by one, as in 1.), and the window's whole report\n"
    )
    print(
        f"{'features':>10}{'window ms':>11}{'µs/series':>11}{'drift ms':>10}{'quality ms':>12}{'rolling ms':>12}"
        f"{'rest ms':>9}{'whole report ms':>17}"
    )
    for features in args.features:
        if features == base_shape.features:
            fc, fp = c, parts
        else:
            (warm,), profiles, *_ = warm_up(shape_of(features), [BASE_SEGMENTS], args.warm, args.per_minute)
            fc, fp = costs(warm, profiles, rounds), window_breakdown(warm, profiles, rounds)
            del warm, profiles
        print(
            f"{features:>10}{fc.window:>11.2f}{fc.window * 1e3 / (features + 1):>11.0f}{fp['drift']:>10.2f}"
            f"{fp['quality']:>12.2f}{fp['rolling']:>12.2f}{fp['rest']:>9.2f}{fc.minute:>17.2f}"
        )

    # 3. slices
    print(
        f"\n3. Slices (one segment of 2 to 128 values), {base_shape.features} features: ms per performance partial "
        f"(confusion rates with intervals per slice, parity and the fairness test), and per report of the view. "
        f"Rated: slices with {base.pipeline.min_samples} labels or more (min_samples), which get rates and "
        f"intervals: in the fullest partial, and in the view; span: the view's (the shortest of 1, 2, 4, ... 30 "
        f"windows that shows a gap, or 30)\n"
    )
    print(
        f"{'slices':>8}{'perf. partial ms':>18}{'µs/slice':>10}{'rated':>7}{'view ms':>10}{'µs/slice':>10}"
        f"{'rated':>7}{'span':>6}{'whole report ms':>17}"
    )
    for k, warm in by_slices.items():
        sc = costs(warm, base_profiles, rounds)
        in_partial, in_view, span = rated(one_report(warm, base_profiles))
        print(
            f"{warm.slices:>8}{sc.performance:>18.2f}{sc.performance * 1e3 / warm.slices:>10.0f}{in_partial:>7}"
            f"{sc.view:>10.2f}{sc.view * 1e3 / warm.slices:>10.0f}{in_view:>7}{span:>4} m{sc.minute:>17.2f}"
        )
        if warm.slices != k:
            print(f"{'':8}(segment s{k}: {warm.slices} of its {k} values had labels)")

    # 4. partitions
    print(
        f"\n4. The report runner per window, the same events split into P partitions by a hash of request_id: "
        f"one stage per partition from minute {keep_from}, each writing its partials of the window "
        f"(state.dumps); per tick the runner decodes them (state.loads), merges them (PartialMerger) and reports "
        f"them (rows: metric and view rows, as in 1.)\n"
    )
    print(
        f"{'P':>4}{'blobs':>7}{'KiB':>8}{'decode ms':>11}{'merge ms':>10}{'report ms':>11}{'total ms':>10}"
        f"{'decode+merge':>14}{'rows':>6}"
    )
    for partitions in args.partitions:
        written = partition_blobs(base.pipeline, kept, closing, partitions, base.partials, target)
        blobs = sum(len(parts) for parts, _ in written)
        size = sum(len(blob) for parts, _ in written for *_, blob in parts)
        decode, merge, report, rows = runner_costs(base, base_profiles, written, rounds)
        total = decode + merge + report
        print(
            f"{partitions:>4}{blobs:>7}{size / 1024:>8.0f}{decode:>11.2f}{merge:>10.2f}{report:>11.2f}{total:>10.2f}"
            f"{(decode + merge) / total:>14.0%}{rows:>6}"
        )
    print(f"\n(whole run: {time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
