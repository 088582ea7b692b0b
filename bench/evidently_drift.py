"""Drift of the same windows against the same reference: streamwatch's core next to Evidently.

Both start from the same in-memory columns (a 50,000-row reference; windows
of 3,000 rows; 15 numeric and 5 categorical features) and compute the same
statistics: normalised Wasserstein distance for numeric columns and
Jensen-Shannon distance for categorical ones (Evidently's
``DataDriftPreset(num_method="wasserstein", cat_method="jensenshannon")``),
plus the share of drifted columns. streamwatch bins the reference once (its
profile) and each window as it streams; Evidently recomputes from raw rows
per report. The figures of both are printed side by side for two columns so
that agreement can be checked, not only speed.

Evidently needs pandas < 3, so it runs in its own environment:

    make bench-evidently        # builds .venv-bench from bench/requirements-evidently.txt, then runs this
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from streamwatch.core import CategoryCounts, NumericHistogram
from streamwatch.core.drift_report import WindowKey, evaluate_drift
from streamwatch.profiles.model import Lineage, build_profile

NUMERIC, CATEGORICAL, LEVELS = 15, 5, ["a", "b", "c", "d", "e", "f"]


def columns(rows: int, rng: np.random.Generator, shift: float = 0.0) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {f"num_{j}": rng.normal(shift if j < 3 else 0.0, 1.0, rows) for j in range(NUMERIC)}
    p = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    for j in range(CATEGORICAL):
        probs = np.roll(p, 1) if (shift and j == 0) else p
        data[f"cat_{j}"] = rng.choice(np.array(LEVELS, dtype=object), rows, p=probs)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--window-rows", type=int, default=3_000)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.windows, args.reference_rows = 2, 5_000
    rng = np.random.default_rng(0)
    reference = columns(args.reference_rows, rng)
    windows = [columns(args.window_rows, rng, shift=0.5 if i % 2 else 0.0) for i in range(args.windows)]

    # streamwatch: the reference is profiled once, as in production.
    lineage = Lineage(
        model="m",
        model_version="1",
        data_uri="synthetic",
        rows=args.reference_rows,
        content_sha256="0" * 64,
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="bench",
    )
    started = time.perf_counter()
    profile = build_profile(reference, lineage=lineage)
    profile_seconds = time.perf_counter() - started
    references = {
        n: (p.histogram() if p.kind == "numeric" else p.category_counts()) for n, p in profile.features.items()
    }
    scales = {n: p.std for n, p in profile.features.items() if p.kind == "numeric"}

    ours, theirs, agreement = [], [], []
    definition = DataDefinition(
        numerical_columns=[f"num_{j}" for j in range(NUMERIC)],
        categorical_columns=[f"cat_{j}" for j in range(CATEGORICAL)],
    )
    reference_frame = Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition)
    for index, window in enumerate(windows):
        started = time.perf_counter()
        current: dict[str, NumericHistogram | CategoryCounts] = {}
        for name, ref in references.items():
            aggregate = (
                NumericHistogram(ref.edges) if isinstance(ref, NumericHistogram) else CategoryCounts(ref.categories)
            )
            aggregate.update(window[name] if isinstance(ref, NumericHistogram) else window[name].tolist())
            current[name] = aggregate
        summary = evaluate_drift(WindowKey("m", "1", "production", 0, 60_000), references, current, scales=scales)
        ours.append(time.perf_counter() - started)

        started = time.perf_counter()
        snapshot = Report([DataDriftPreset(num_method="wasserstein", cat_method="jensenshannon")]).run(
            Dataset.from_pandas(pd.DataFrame(window), data_definition=definition), reference_frame
        )
        theirs.append(time.perf_counter() - started)
        values = {m["config"].get("column"): m["value"] for m in snapshot.dict()["metrics"] if "column" in m["config"]}
        mine = {(r.feature, r.metric): r.value for r in summary.rows}
        agreement.append(
            (
                index,
                mine["num_0", "wasserstein"],
                float(values["num_0"]),
                mine["cat_0", "js"],
                float(values["cat_0"]),
                summary.share_drifted,
            )
        )

    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs[1:] or theirs) * 1000
    print(
        f"\n{args.windows} windows of {args.window_rows:,} rows x {NUMERIC + CATEGORICAL} columns, "
        f"reference of {args.reference_rows:,} rows (profiled once in {profile_seconds:.2f} s)\n"
    )
    print(f"{'per window':32}{'ms (median)':>14}")
    print(f"{'streamwatch core':32}{ours_ms:>14.2f}")
    print(f"{'Evidently DataDriftPreset':32}{theirs_ms:>14.2f}")
    print(f"\nratio Evidently / streamwatch: {theirs_ms / ours_ms:.1f}x (goal >= 50x)\n")
    print(
        f"{'window':>6}{'W num_0 ours':>14}{'Evidently':>11}{'JS cat_0 ours':>15}{'Evidently':>11}{'drifted share':>15}"
    )
    for index, w_ours, w_theirs, js_ours, js_theirs, share in agreement[:4]:
        print(f"{index:>6}{w_ours:>14.4f}{w_theirs:>11.4f}{js_ours:>15.4f}{js_theirs:>11.4f}{share:>15.2f}")


if __name__ == "__main__":
    main()
