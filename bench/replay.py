"""What ``streamwatch replay`` sustains, next to merely parsing the same file.

One run, one process, one generated file: two hours of one model's traffic at
about 1,000 predictions a minute (20 features, 15 numeric and 5 categorical, 2
segments, a score, latencies, 2% errors), a canary version answering ~5% of
the requests next to production (same request id), and labels for about half
of the requests, arriving 1 to 60 minutes after their prediction, interleaved
in the file where they arrive. Its reference profiles are written the way
``streamwatch profile`` writes them (one per version, from the same training
data). Seeded: the same file every run.

The floor is reading the file and ``orjson.loads`` of every line. The replay
runs as the ``replay`` command runs it (the same function, settings and
defaults: batches of 1,000, the alert rules judged, no config file), storing
into a fresh embedded ClickHouse (chdb) directory and writing the ``--out``
export, timed from loading the reference to the last sink write; then again
with ``--no-store`` and no export, which is the pipeline (and alert rules)
alone. Goal: the replay sustains at least 20% of the bare pass. Wall time is
the figure; the process's CPU time (chdb's threads included) is printed too,
as it moves less with the load of a shared machine.

    .venv/bin/python bench/replay.py              # 2 to 3 minutes
    .venv/bin/python bench/replay.py --quick      # a smoke run (15 minutes of traffic)
    .venv/bin/python bench/replay.py --profile    # and cProfile of the replay: top 30, and where the time goes
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import heapq
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streamwatch.contract.encode import Encoder
from streamwatch.contract.ids import event_id_factory
from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile

MODEL, PRODUCTION, CANARY = "credit", "3", "4"
NUMERIC, CATEGORICAL = 15, 5
LEVELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
REGIONS = LEVELS[:4]
START_MS = 1_795_000_000_000
GOAL = 0.20

# -- the file ----------------------------------------------------------------------------------------


def make_stream(path: Path, minutes: int, per_minute: int, seed: int = 7) -> dict[str, int]:
    """Write ``minutes`` of traffic to ``path`` (JSON Lines, in arrival order); return what it holds.

    ``per_minute`` predictions a minute, production and canary together: a request goes to
    production, and ~5% of requests to the canary as well (its answer a few ms later).
    """
    rng = np.random.default_rng(seed)
    clock = iter(range(START_MS, 2**62))
    encoder = Encoder(clock_ms=lambda: next(clock), event_ids=event_id_factory(f"{seed:024x}"))
    requests = round(minutes * per_minute / 1.05)
    span = minutes * 60_000
    at = np.sort(rng.integers(START_MS, START_MS + span, requests))
    numeric = rng.normal(size=(requests, NUMERIC)).round(4)
    categorical = rng.integers(0, len(LEVELS), size=(requests, CATEGORICAL))
    latency = rng.lognormal(np.log(25), 0.4, requests).round(3)
    canary_latency = rng.lognormal(np.log(40), 0.4, requests).round(3)
    canary = rng.random(requests) < 0.05
    canary_lag = rng.integers(1, 30, requests)
    error = rng.random(requests) < 0.02
    score = rng.beta(2, 5, requests).round(6)
    canary_score = np.clip(score + rng.normal(0, 0.03, requests), 0, 1).round(6)
    truth = rng.random(requests) < score
    labelled = rng.random(requests) < 0.5
    delay = rng.integers(60_000, 3_600_001, requests)
    gender = rng.integers(0, 2, requests)
    region = rng.integers(0, len(REGIONS), requests)

    def predictions() -> Iterable[tuple[int, int, bytes]]:
        for i in range(requests):
            features: dict[str, object] = {f"num_{j}": float(numeric[i, j]) for j in range(NUMERIC)}
            features.update({f"cat_{j}": LEVELS[categorical[i, j]] for j in range(CATEGORICAL)})
            segments = {"gender": "FM"[gender[i]], "region": REGIONS[region[i]]}
            request_id = f"req-{i:07d}"
            t = int(at[i])
            answers = [(PRODUCTION, "production", float(latency[i]), float(score[i]), t)]
            if canary[i]:
                answers.append(
                    (CANARY, "canary", float(canary_latency[i]), float(canary_score[i]), t + int(canary_lag[i]))
                )
            for version, variant, ms, p, when in answers:
                failed = bool(error[i]) and variant == "production"
                raw = encoder.prediction(
                    MODEL,
                    version,
                    request_id,
                    ms,
                    features,
                    None if failed else int(p >= 0.5),
                    None if failed else p,
                    variant,
                    "error" if failed else "ok",
                    "feature store timeout" if failed else None,
                    segments,
                    None,
                    when,
                )
                yield when, 0, raw

    def labels() -> Iterable[tuple[int, int, bytes]]:
        due = sorted((int(at[i] + delay[i]), i) for i in np.flatnonzero(labelled & ~error).tolist())
        for when, i in due:
            yield when, 1, encoder.label(model=MODEL, request_id=f"req-{i:07d}", label=int(truth[i]), timestamp=when)

    counts = {"predictions": 0, "labels": 0, "bytes": 0}
    with path.open("wb") as file:
        for _, kind, raw in heapq.merge(predictions(), labels(), key=lambda e: (e[0], e[1])):
            counts["labels" if kind else "predictions"] += 1
            counts["bytes"] += file.write(raw + b"\n")
    counts["lines"] = counts["predictions"] + counts["labels"]
    counts["canary"] = int(canary.sum())
    return counts


def reference_profiles(rows: int = 50_000, seed: int = 0) -> dict[tuple[str, str], ReferenceProfile]:
    """Profiles of the training data, as ``streamwatch profile ... --segments gender,region`` builds them.

    One per version (production and canary were trained on the same data), keyed as the pipeline keys them.
    """
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {f"num_{j}": rng.normal(size=rows) for j in range(NUMERIC)}
    columns.update({f"cat_{j}": rng.choice(np.array(LEVELS, dtype=object), rows) for j in range(CATEGORICAL)})
    columns["score"] = rng.beta(2, 5, rows)
    columns["label"] = (rng.random(rows) < columns["score"]).astype(int)
    columns["gender"] = rng.choice(np.array(["F", "M"], dtype=object), rows)
    columns["region"] = rng.choice(np.array(REGIONS, dtype=object), rows)
    profiles = {}
    for version in (PRODUCTION, CANARY):
        lineage = Lineage(
            model=MODEL,
            model_version=version,
            data_uri="synthetic",
            rows=rows,
            content_sha256=f"{seed:064x}",
            created_at="2026-11-23T00:00:00Z",
            streamwatch_version="bench",
        )
        profiles[MODEL, version] = build_profile(
            columns, lineage=lineage, label_column="label", score_column="score", segments=["gender", "region"]
        )
    return profiles


def write_profiles(directory: Path) -> list[Path]:
    """The reference profiles as files, written as ``streamwatch profile`` writes them."""
    paths = []
    for (model, version), profile in reference_profiles().items():
        path = directory / f"{model}-{version}.json"
        path.write_text(profile.model_dump_json(indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


# -- the runs ----------------------------------------------------------------------------------------


def bare(path: Path) -> int:
    """Read the file and parse every line: the floor."""
    loads = orjson.loads
    n = 0
    with path.open("rb") as file:
        for line in file:
            if line.strip():
                loads(line)
                n += 1
    return n


def replay(files: list[Path], references: list[Path], out: Path | None, store: Path | None) -> Any:
    """What ``streamwatch replay FILES --reference ... [--out OUT] [--no-store]`` runs, without its printing.

    ``store`` is the chdb directory (``STREAMWATCH_CLICKHOUSE__DSN=chdb://STORE``); None is ``--no-store``.
    """
    from contextlib import ExitStack

    from streamwatch.alerts.engine import Alerting
    from streamwatch.cli.app import settings_from
    from streamwatch.pipeline.from_settings import configured_profiles, load_profiles, pipeline_from_settings
    from streamwatch.replay.run import ClickHouseSink, ExportSink, check_files
    from streamwatch.replay.run import replay as run_replay

    variable = "STREAMWATCH_CLICKHOUSE__DSN"
    before = os.environ.get(variable)
    if store is not None:
        os.environ[variable] = f"chdb://{store}"
    try:
        settings = settings_from(None)
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before
    check_files(files)
    profiles = configured_profiles(settings) | load_profiles(references)
    pipeline = pipeline_from_settings(settings, profiles)
    alerting = Alerting(settings.rules, {}, settings.alerting, profiles, settings.models, pipeline.window_ms)
    with ExitStack() as stack:
        sinks: list[Any] = []
        if store is not None:
            sinks.append(ClickHouseSink.connect(settings))
        if out is not None:
            sinks.append(stack.enter_context(ExportSink(out)))
        return run_replay(files, profiles, pipeline, sinks, 1000, None, alerting)


def timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the process, all threads, chdb's too, result)."""
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - started, time.process_time() - cpu, result


# -- the profile's breakdown -------------------------------------------------------------------------

# (part, [(file path ending, function names, or None for every function of the file)]). A part's time is
# the cumulative time of its functions, counted where they are entered from outside the part, so that
# nested matches (a function of the part calling another) are not counted twice. Names follow the code
# as it is; a part whose functions are all gone says so. Indented parts are within the one above.
BREAKDOWN: list[tuple[str, list[tuple[str, set[str] | None]]]] = [
    ("read lines", [("replay/run.py", {"_lines"})]),
    ("decode (contract)", [("contract/decode.py", None)]),
    (
        "window aggregates",
        [
            ("pipeline/aggregates.py", None),
            ("core/histogram.py", None),
            ("core/windows.py", {"route", "window", "close_ready", "_seen_with_leads"}),
        ],
    ),
    (
        "label join, twin pairing, scoring",
        [
            ("core/join.py", None),
            ("core/divergence.py", None),
            ("pipeline/stage.py", {"_predictions", "_score", "_screen_reused"}),
        ],
    ),
    ("reports (reporter)", [("pipeline/reporter.py", None)]),
    (
        "  drift evaluation",
        [
            ("pipeline/window_report.py", {"drift_of", "thresholds", "get"}),
            ("core/drift_report.py", None),
            ("core/drift.py", None),
            ("core/thresholds.py", None),
        ],
    ),
    ("    of which threshold calibration", [("core/thresholds.py", {"calibrate"})]),
    ("  performance, fairness", [("pipeline/reporter.py", {"_performance", "_performance_view"})]),
    ("  rolling views (their drift included)", [("pipeline/reporter.py", {"_rolling"})]),
    ("alert rules", [("alerts/engine.py", None)]),
    ("chdb connect + migrate", [("replay/run.py", {"connect"})]),
    ("chdb inserts", [("replay/run.py", {"write"})]),  # ClickHouseSink.write, the only write there
    ("export writes", [("replay/export.py", None)]),
]


def breakdown(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    """(part, seconds, functions matched) for each part of BREAKDOWN."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]

    def matches(function: tuple[str, int, str], patterns: list[tuple[str, set[str] | None]]) -> bool:
        where = function[0].replace(os.sep, "/")
        return any(where.endswith(suffix) and (names is None or function[2] in names) for suffix, names in patterns)

    parts = []
    for name, patterns in BREAKDOWN:
        part = {function for function in table if matches(function, patterns)}
        seconds = 0.0
        for function in part:
            _, _, _, cumulative, callers = table[function]
            if not callers:
                seconds += cumulative
            # From each caller outside the part: (calls, primitive calls, own time, cumulative time).
            seconds += sum(times[3] for caller, times in callers.items() if caller not in part)
        parts.append((name, seconds, len(part)))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=120, help="minutes of traffic")
    parser.add_argument("--per-minute", type=int, default=1_000, help="predictions a minute (canary included)")
    parser.add_argument("--quick", action="store_true", help="15 minutes of traffic")
    parser.add_argument("--profile", action="store_true", help="also run the replay under cProfile")
    args = parser.parse_args()
    if args.quick:
        args.minutes = 15
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        work = Path(tmp)
        events = work / "events.jsonl"
        started = time.perf_counter()
        made = make_stream(events, args.minutes, args.per_minute)
        references = write_profiles(work)
        made_s = time.perf_counter() - started
        lines = made["lines"]
        print(
            f"\n{lines:,} lines, {made['bytes'] / 2**20:.1f} MiB ({made['bytes'] // lines} bytes a line): "
            f"{args.minutes} minutes of {MODEL} {PRODUCTION}, {made['predictions']:,} predictions "
            f"({made['canary']:,} of them canary {CANARY} twins), {made['labels']:,} labels 1-60 min late; "
            f"generated in {made_s:.1f} s"
        )

        floor_s, floor_cpu, parsed = timed(lambda: bare(events))
        assert parsed == lines
        if args.profile:
            profile(events, references, work, lines, floor_s)
        else:
            compare(events, references, work, lines, (floor_s, floor_cpu))


def compare(events: Path, references: list[Path], work: Path, lines: int, floor: tuple[float, float]) -> None:
    store_s, store_cpu, stored = timed(lambda: replay([events], references, work / "out", work / "chdb"))
    alone_s, alone_cpu, alone = timed(lambda: replay([events], references, None, None))
    for summary in (stored, alone):
        assert summary.events == lines and summary.dead_letters == 0, summary
    base = lines / floor[0]
    print(f"\n{'':42}{'wall s':>9}{'lines/s':>11}{'/ bare':>8}{'CPU s':>9}")
    for name, (seconds, cpu) in (
        ("bare pass: read + orjson.loads", floor),
        ("replay, chdb store + --out export", (store_s, store_cpu)),
        ("replay --no-store, no export", (alone_s, alone_cpu)),
    ):
        print(f"{name:42}{seconds:>9.2f}{lines / seconds:>11,.0f}{lines / seconds / base:>8.1%}{cpu:>9.2f}")
    ratio = floor[0] / store_s
    print(
        f"\ngoal: replay >= {GOAL:.0%} of the bare pass: {ratio:.1%}, {'met' if ratio >= GOAL else 'MISSED'} "
        f"(it would take {GOAL * base:,.0f} lines/s); on CPU time, {floor[1] / store_cpu:.1%}."
    )
    print(
        f"storing and exporting: {store_s - alone_s:+.2f} s wall, {store_cpu - alone_cpu:+.2f} s CPU next to "
        f"--no-store; the rest is the pipeline and the alert rules (wall time moves with the machine's load: "
        f"CPU time, threads included, is steadier)."
    )
    print(
        f"replay: {stored.metric_rows:,} metric rows, {sum(stored.findings.values()):,} findings, "
        f"{stored.labels_matched:,} predictions got a label ({stored.labels_received:,} labels), "
        f"{sum(stored.alerts.values())} alert transitions, {stored.late_events} late events"
    )


def profile(events: Path, references: list[Path], work: Path, lines: int, floor_s: float) -> None:
    profiler = cProfile.Profile()
    gc.collect()
    started = time.perf_counter()
    profiler.enable()
    replay([events], references, work / "out", work / "chdb")
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(
        f"\nbare pass {lines / floor_s:,.0f} lines/s; the replay (chdb store + export) under cProfile: "
        f"{wall:.1f} s, {lines / wall:,.0f} lines/s (the profiler slows it). Top 30 by cumulative time:\n"
    )
    stats.sort_stats("cumulative").print_stats(30)
    print(f"where the profiled replay's {wall:.1f} s go (cumulative time of the parts' functions):\n")
    for name, seconds, matched in breakdown(stats):
        found = "" if matched else "   (no such function found: renamed?)"
        print(f"  {name:38}{seconds:>8.2f} s{seconds / wall:>7.1%}{found}")


if __name__ == "__main__":
    main()
