"""What the monitoring pipeline costs per event, next to merely parsing the same bytes.

One run, one process, the same synthetic events: 20 features (15 numeric, 5
categorical), 2 segments, a score, latencies, 2% errors, and labels for half
of the requests; one-minute windows against a reference profile with labels
(so the score is calibrated: performance is estimated in every window). The
baseline is ``orjson.loads`` of every event; the pipeline decodes, validates
against the contract and updates every metric (drift histograms, quality
counters, latency sketch, error counts) and closes windows as event time
passes. pydantic's ``validate_json`` per event is printed for scale.

    .venv/bin/python bench/core.py            # about a minute
    .venv/bin/python bench/core.py --quick    # a smoke run

Labels are joined to their predictions and feed performance and fairness.
Evidently's comparison is still to come (see the README).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import numpy as np
import orjson
from pydantic import TypeAdapter

from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.contract.events import InputEvent
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import Lineage, build_profile

NUMERIC, CATEGORICAL = 15, 5
LEVELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def make_events(n: int, seed: int = 1, start_ms: int = 1_795_000_000_000) -> list[bytes]:
    rng = np.random.default_rng(seed)
    encoder = Encoder(clock_ms=now_ms)
    numeric = rng.normal(size=(n, NUMERIC)).round(4)
    categorical = rng.integers(0, len(LEVELS), size=(n, CATEGORICAL))
    latency = rng.lognormal(3, 0.5, n).round(3)
    raws = []
    for i in range(n):
        features: dict[str, object] = {f"num_{j}": float(numeric[i, j]) for j in range(NUMERIC)}
        features.update({f"cat_{j}": LEVELS[categorical[i, j]] for j in range(CATEGORICAL)})
        error = i % 50 == 0
        at = start_ms + i * 20  # 3,000 events per one-minute window
        raws.append(
            encoder.prediction(
                "credit",
                "3",
                f"r{i}",
                float(latency[i]),
                features,
                None if error else i % 2,
                None if error else float(rng.random()),
                "production",
                "error" if error else "ok",
                "timeout" if error else None,
                {"gender": "FM"[i % 2], "region": LEVELS[i % 4]},
                None,
                at,
                None,
            )
        )
        if i % 2 == 0:
            raws.append(
                encoder.label(model="credit", request_id=f"r{i}", label=int(rng.random() < 0.3), timestamp=at + 60_000)
            )
    return raws


def reference_profile(rows: int = 50_000, labelled: bool = True):  # type: ignore[no-untyped-def]
    """The training data's profile; ``labelled``: with labels and predictions, so the score is calibrated
    (performance is estimated in every window) and the predicted class watched for drift, as for any binary
    classifier profiled with its labels."""
    rng = np.random.default_rng(0)
    columns: dict[str, np.ndarray] = {f"num_{j}": rng.normal(size=rows) for j in range(NUMERIC)}
    columns.update({f"cat_{j}": rng.choice(np.array(LEVELS, dtype=object), rows) for j in range(CATEGORICAL)})
    columns["score"] = rng.random(rows)
    if labelled:
        columns["label"] = (rng.random(rows) < columns["score"]).astype(int)
        columns["prediction"] = (columns["score"] >= 0.5).astype(int)
    lineage = Lineage(
        model="credit",
        model_version="3",
        data_uri="synthetic",
        rows=rows,
        content_sha256="0" * 64,
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="bench",
    )
    if not labelled:
        return build_profile(columns, lineage=lineage, score_column="score")
    return build_profile(
        columns, lineage=lineage, score_column="score", label_column="label", prediction_column="prediction"
    )


def per_event(run, raws: list[bytes], rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        run(raws)
        out.append((time.perf_counter() - started) / len(raws) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="predictions (plus labels for half)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000, help="events per pipeline call, like a consumer batch")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 3_000, 2
    raws = make_events(args.events)
    profile = reference_profile()
    unlabelled = reference_profile(labelled=False)
    assert profile.calibration is not None and unlabelled.calibration is None
    adapter = TypeAdapter(InputEvent)

    def baseline(batch: list[bytes]) -> None:
        loads = orjson.loads
        for raw in batch:
            loads(raw)

    def pipeline(batch: list[bytes]) -> None:
        monitor = Pipeline({("credit", "3"): profile})
        for start in range(0, len(batch), args.batch):
            monitor.process(batch[start : start + args.batch])
        monitor.flush()

    def without_estimate(batch: list[bytes]) -> None:
        monitor = Pipeline({("credit", "3"): unlabelled})
        for start in range(0, len(batch), args.batch):
            monitor.process(batch[start : start + args.batch])
        monitor.flush()

    def pydantic(batch: list[bytes]) -> None:
        validate = adapter.validate_json
        for raw in batch:
            validate(raw)

    results = {}
    for name, run in (
        ("orjson.loads", baseline),
        ("streamwatch pipeline", pipeline),
        ("pipeline, no labels in reference", without_estimate),
        ("pydantic validate_json", pydantic),
    ):
        results[name] = statistics.median(per_event(run, raws, args.rounds))
    # A long-running worker freezes what start-up created (modules, profiles) out of the garbage
    # collector's reach: otherwise each full collection rescans ~170k objects the libraries made.
    gc.freeze()
    results["pipeline, gc.freeze() at start"] = statistics.median(per_event(pipeline, raws, args.rounds))
    gc.unfreeze()
    base = results["orjson.loads"]
    size = sum(map(len, raws)) // len(raws)
    print(
        f"\n{len(raws):,} events ({args.events:,} predictions, labels for half), ~{size} bytes each, "
        f"{args.rounds} rounds, batches of {args.batch}\n"
    )
    print(f"{'':32}{'µs/event':>10}{'events/s':>12}{'x orjson.loads':>16}")
    for name, micros in results.items():
        print(f"{name:32}{micros:>10.2f}{1e6 / micros:>12,.0f}{micros / base:>16.2f}")
    print(
        f"\nratio pipeline / orjson.loads: {results['streamwatch pipeline'] / base:.2f}x (goal <= 3x); "
        f"{results['pipeline, gc.freeze() at start'] / base:.2f}x with the worker's GC set-up"
    )

    # Memory is bounded by models x features x bins (times the windows a rolling view keeps), not
    # by events. The label join is the one part that holds events: predictions wait for their
    # labels up to the horizon (and a hard cap), so it is bounded by horizon x rate. With
    # 10-second windows, a one-minute rolling view and a one-minute label horizon, the state is
    # steady after a minute: 2 minutes and 20 minutes of traffic must need the same memory.
    print(f"\n{'events processed':>18}{'event time':>12}{'waiting for labels':>20}{'peak MiB':>10}")
    for n in (args.events // 10, args.events):
        monitor = Pipeline({("credit", "3"): profile}, window_ms=10_000, rolling_windows=6, label_horizon_ms=60_000)
        events = make_events(n, seed=2)
        gc.collect()
        tracemalloc.start()
        for start in range(0, len(events), args.batch):
            monitor.process(events[start : start + args.batch])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        minutes = n * 20 / 60_000
        print(f"{n:>18,}{minutes:>10.0f} m{monitor.join.pending_predictions:>20,}{peak / 2**20:>10.1f}")


if __name__ == "__main__":
    main()
