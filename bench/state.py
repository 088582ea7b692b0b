"""What a checkpoint costs: pickle (before) next to the versioned plain-data format (after).

A worker writes each partition's whole stage state every ``checkpoint_interval_ms``
(5 s by default), a partial per closed window, and the reporter's state after
each report; it reads them back only when a partition moves to it. Both formats
are measured in one run, on the same states: bench/core.py's synthetic stream
(20 features, 2 segments, a score, latencies, labels a minute later for half of
the requests) through a stage, the merger and the reporter, as the runtime runs
them. With the default one-day label horizon, every prediction still waiting
for its label and every label kept for twins is in the stage's checkpoint: that
is its bulk.

"pickle" is what ``streamwatch.pipeline.state`` wrote before: a pickle with each
reference profile written as a reference (reimplemented here: the product no
longer imports pickle). "SWS" is the format it writes now. Times are the
median of several rounds, in µs per encode or decode of the whole state, with
the garbage collector as a worker runs it (the new format pauses it while it
works; the old one did not).

Then what a worker's checkpoint costs at full rate (20,000 events/s into one
stage, the default worker settings): at that rate the label join sits at its
hard cap, so the stage is built through a real stage at two smaller sizes and
each capped part extrapolated linearly to its cap, in bytes and CPU ms of
encoding, next to the checkpoint interval.

    .venv/bin/python bench/state.py            # 2 to 3 minutes
    .venv/bin/python bench/state.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import io
import pickle
import statistics
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

from core import make_events, reference_profile
from replay import CANARY, CATEGORICAL, LEVELS, MODEL, NUMERIC, PRODUCTION, REGIONS, reference_profiles
from streamwatch.config.settings import Settings
from streamwatch.contract.encode import Encoder
from streamwatch.contract.ids import event_id_factory
from streamwatch.core.join import Prediction
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.profiles.model import ReferenceProfile

# -- the format before: pickles, profiles by reference ---------------------------------------------

_LOADING: dict[tuple[str, str], ReferenceProfile] = {}


def _profile(model: str, version: str, sha: str) -> ReferenceProfile:
    profile = _LOADING.get((model, version))
    if profile is None or profile.lineage.content_sha256 != sha:
        raise LookupError(f"reference profile {model} {version} is not loaded")
    return profile


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, ReferenceProfile):
            lineage = obj.lineage
            return _profile, (lineage.model, lineage.model_version, lineage.content_sha256)
        return NotImplemented


def pickle_dumps(state: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


def pickle_loads(data: bytes, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> Any:
    _LOADING.clear()
    _LOADING.update(profiles)
    return pickle.loads(data)


FORMATS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes, Mapping[tuple[str, str], ReferenceProfile]], Any]]]
FORMATS = {"pickle": (pickle_dumps, pickle_loads), "SWS": (state_codec.dumps, state_codec.loads)}


# -- the states --------------------------------------------------------------------------------------


def states(events: int, batch: int) -> tuple[dict[str, Any], dict[tuple[str, str], ReferenceProfile], str]:
    """A stage's checkpoint, a window partial and the reporter's checkpoint, after ``events`` predictions."""
    profiles = {("credit", "3"): reference_profile()}
    pipeline = Pipeline(profiles)
    merger = PartialMerger([0], pipeline.window_ms)
    raws = make_events(events)
    window: Any = None
    batches = 0
    for start in range(0, len(raws), batch):
        out = pipeline.stage.process(raws[start : start + batch])
        window = next((p.aggregate for p in out.partials if p.kind == "window"), window)
        merger.add(0, out)
        pipeline.report_partials(merger.release(), PipelineOutput())
        batches += 1
    join = pipeline.stage.join
    what = (
        f"{events:,} predictions, labels for half: {join.pending_predictions:,} predictions and "
        f"{len(join._labels):,} labels waiting, {len(pipeline.stage.open_windows())} open window(s)"
    )
    return (
        {
            "stage checkpoint": pipeline.stage.state(),
            "window partial": window,
            "reporter checkpoint": {"merger": merger, "seen": {0: batches}, "reporter": pipeline.reporter.state()},
        },
        profiles,
        what,
    )


def median_us(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


# -- a worker's checkpoint at full rate --------------------------------------------------------------

RATE = 20_000  # events a second into one worker
START_MS = 1_795_000_000_000


def full_rate_stream(events: int, rate: int = RATE, seed: int = 11) -> list[bytes]:
    """``events`` events of bench/replay.py's traffic, arriving at ``rate`` a second, in a stream long under way.

    Per request: production's prediction, the canary's for ~5% of requests, and for half of the
    requests a label arriving 1 to 60 minutes later. As the stream is seconds long, each label here
    is for a request from before it began: as in the steady state, where that prediction has long
    left the join (see ``checkpoint_at_full_rate``).
    """
    rng = np.random.default_rng(seed)
    encoder = Encoder(clock_ms=lambda: START_MS, event_ids=event_id_factory(f"{seed:024x}"))
    requests = round(events / 1.55)
    per_ms = rate / 1000 / 1.55  # requests a millisecond
    numeric = rng.normal(size=(requests, NUMERIC)).round(4)
    categorical = rng.integers(0, len(LEVELS), size=(requests, CATEGORICAL))
    latency = rng.lognormal(np.log(25), 0.4, requests).round(3)
    score = rng.beta(2, 5, requests).round(6)
    canary = rng.random(requests) < 0.05
    error = rng.random(requests) < 0.02
    label = rng.random(requests) < 0.5
    delay = rng.integers(60_000, 3_600_001, requests)
    gender, region = rng.integers(0, 2, requests), rng.integers(0, len(REGIONS), requests)
    raws = []
    for i in range(requests):
        at = START_MS + int(i / per_ms)
        features: dict[str, object] = {f"num_{j}": float(numeric[i, j]) for j in range(NUMERIC)}
        features.update({f"cat_{j}": LEVELS[categorical[i, j]] for j in range(CATEGORICAL)})
        segments = {"gender": "FM"[gender[i]], "region": REGIONS[region[i]]}
        failed = bool(error[i])
        p = float(score[i])
        for version, variant in ((PRODUCTION, "production"), (CANARY, "canary"))[: 2 if canary[i] else 1]:
            raws.append(
                encoder.prediction(
                    MODEL,
                    version,
                    f"req-{i}",
                    float(latency[i]),
                    features,
                    None if failed else int(p >= 0.5),
                    None if failed else p,
                    variant,
                    "error" if failed else "ok",
                    "feature store timeout" if failed else None,
                    segments,
                    None,
                    at,
                )
            )
        if label[i]:
            earlier = i - int(delay[i] * per_ms)
            raws.append(
                encoder.label(model=MODEL, request_id=f"req-{earlier}", label=int(rng.random() < p), timestamp=at)
            )
    return raws


def day_of_performance(stage: Any, profiles: Mapping[tuple[str, str], ReferenceProfile], seed: int = 12) -> None:
    """Fill ``stage`` with the performance aggregates of every prediction window a day back: what a stage
    keeps for ``label_horizon_ms`` (labels may come that late), each window with a few hundred labels."""
    rng = np.random.default_rng(seed)
    window = stage.window_ms
    now = stage.watermark - stage.watermark % window
    windows = (stage.label_horizon_ms + window) // window + 1
    for model, version in profiles:
        key = (model, version, "production" if version == PRODUCTION else "canary")
        for k in range(1, windows + 1):
            start = now - k * window
            if (key, start) in stage._performance:
                continue
            scores = rng.beta(2, 5, 400).round(6)
            matches = [
                (
                    Prediction(
                        start + j * 150,
                        version,
                        key[2],
                        int(s >= 0.5),
                        float(s),
                        (("gender", "FM"[j % 2]), ("region", REGIONS[j % 4])),
                    ),
                    int(rng.random() < s),
                )
                for j, s in enumerate(scores.tolist())
            ]
            aggregates = stage._performance[key, start] = stage.performance_factory(key)
            aggregates.update(matches)


def median_cpu_ms(run: Callable[[], object], rounds: int) -> float:
    """Median CPU time of ``run``, in ms: on a shared machine, what the encoding costs, not what it waits for."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1e3


def checkpoint_at_full_rate(sizes: tuple[int, int], rounds: int) -> None:
    """What one checkpoint of a stage costs once a worker has run a day at ``RATE``; printed."""
    settings = Settings()
    interval_ms = settings.worker.checkpoint_interval_ms
    profiles = reference_profiles()
    built = []
    for events in sizes:
        pipeline = pipeline_from_settings(settings, profiles)  # the worker's pipeline, default settings
        stage = pipeline.new_stage()  # one per partition, as the worker makes them
        raws = full_rate_stream(events)
        for start in range(0, len(raws), settings.worker.batch_size):
            stage.process(raws[start : start + settings.worker.batch_size])
        day_of_performance(stage, profiles)
        join, twins = stage.join, stage.twins
        # The join's two halves apart (each has its own cap), written as a checkpoint writes the join.
        predictions_only, labels_only = copy.copy(join), copy.copy(join)
        predictions_only._labels, labels_only._predictions = OrderedDict(), OrderedDict()
        # (part, entries now, entries at full rate): the parts that grow with the stream, up to their caps.
        parts: dict[str, tuple[Any, int, int]] = {
            "join: predictions": (predictions_only, join.pending_predictions, join.max_pending),
            "join: labels": (labels_only, len(join._labels), join.max_pending),
            "twins (canary pairing)": (twins, len(twins._pending), twins.max_pending),
            "performance, 1 day": (stage._performance, len(stage._performance), len(stage._performance)),
        }
        figures = {}
        for name, (part, count, cap) in parts.items():
            size = len(state_codec.dumps(part))
            figures[name] = (count, cap, size, median_cpu_ms(lambda p=part: state_codec.dumps(p), rounds))
        state = stage.state()
        blob = state_codec.dumps(state)  # as the worker's _checkpoint encodes it
        figures["whole stage state"] = (
            events,
            0,
            len(blob),
            median_cpu_ms(lambda s=state: state_codec.dumps(s), rounds),
        )
        built.append((events, figures, len(stage.open_windows())))
        del pipeline, stage, join, twins, parts, state, raws, blob, predictions_only, labels_only

    (n1, small, _), (n2, large, windows) = built
    horizon_h = settings.windows.label_horizon_ms / 3_600_000
    print(
        f"\nA worker's checkpoint at full rate: {RATE:,} events/s into one partition's stage, the default worker "
        f"settings ({settings.windows.size_ms // 1000} s windows, {settings.windows.allowed_lateness_ms // 1000} s "
        f"lateness, {horizon_h:g} h label horizon), encoded as the worker's _checkpoint does it "
        f"(state.dumps(stage.state())), every {interval_ms:,} ms (worker.checkpoint_interval_ms)."
    )
    print(
        f"A {horizon_h:g} h horizon at {RATE:,}/s is far beyond the join's hard cap (LabelJoin.max_pending: "
        f"{large['join: predictions'][1]:,} predictions, and as many labels; TwinJoin's "
        f"{large['twins (canary pairing)'][1]:,} requests), so the steady state is the caps full (within minutes), "
        f"plus the performance aggregates of every prediction window of the horizon, and {windows} open windows."
    )
    print(
        f"Built here through a real stage at two sizes ({n1:,} and {n2:,} events: {n1 / RATE:g} and {n2 / RATE:g} s "
        f"of traffic; the day of performance aggregates built directly), then EXTRAPOLATED: each capped part at "
        f"its per-entry cost at the larger size (the same at both sizes: it grows linearly). Encode ms: CPU "
        f"time, median of {rounds} rounds.\n"
    )
    print(f"{'part':24}{'entries':>24}{'bytes':>15}{'encode ms':>11}{'bytes/entry':>13}{'µs/entry':>10}")
    full_bytes, full_ms = float(large["whole stage state"][2]), large["whole stage state"][3]
    for name in large:
        for figures in (small, large):
            count, cap, size, ms = figures[name]
            entries = f"after {count:,} events" if name == "whole stage state" else f"{count:,}"
            per = f"{size / count:>13.1f}{ms * 1e3 / count:>10.2f}" if name != "whole stage state" else ""
            print(f"{name:24}{entries:>24}{size:>15,}{ms:>11,.1f}{per}")
        count, cap, size, ms = large[name]
        if name != "whole stage state" and cap != count:
            full_bytes += size / count * (cap - count)
            full_ms += ms / count * (cap - count)
            label = f"{cap:,} (cap): extrap."
            print(f"{name:24}{label:>24}{size / count * cap:>15,.0f}{ms / count * cap:>11,.1f}")
    print(f"{'whole stage state':24}{'caps full: extrap.':>24}{full_bytes:>15,.0f}{full_ms:>11,.1f}")
    (_, _, b1, t1), (_, _, b2, t2) = small["whole stage state"], large["whole stage state"]
    print(
        f"\nthe whole state grew by {(b2 - b1) / (n2 - n1):.0f} bytes and {(t2 - t1) * 1e3 / (n2 - n1):.1f} µs of "
        f"encoding per event between the two sizes; the extrapolation adds the capped parts' missing entries "
        f"at their own cost."
    )
    print(
        f"one checkpoint of a stage at full rate (extrapolated): {full_bytes / 2**20:,.0f} MiB, encoded in "
        f"{full_ms:,.0f} ms, that is {full_ms / interval_ms:.0%} of one core at a checkpoint every "
        f"{interval_ms / 1000:g} s (and {full_bytes / 2**20 / (interval_ms / 1000):,.0f} MiB/s to store), "
        f"for each partition the worker owns: the caps are per stage."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="predictions (plus labels for half)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=1000, help="events per stage call, like a consumer batch")
    parser.add_argument(
        "--full-rate-events",
        type=int,
        default=100_000,
        help="events of the smaller full-rate build (the larger is twice as many)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds, args.full_rate_events = 3_000, 3, 10_000
    made, profiles, what = states(args.events, args.batch)
    print(f"\n{what}; median of {args.rounds} rounds\n")
    print(f"{'state':22}{'format':>8}{'bytes':>12}{'encode µs':>13}{'decode µs':>13}")
    figures: dict[tuple[str, str], tuple[int, float, float]] = {}
    for name, state in made.items():
        for label, (dumps, loads) in FORMATS.items():
            blob = dumps(state)
            restored = loads(blob, profiles)
            if type(restored) is not type(state):
                raise SystemExit(f"{label} did not restore the {name}")
            encode = median_us(lambda d=dumps, s=state: d(s), args.rounds)
            decode = median_us(lambda b=blob, ld=loads: ld(b, profiles), args.rounds)
            figures[name, label] = (len(blob), encode, decode)
            print(f"{name if label == 'pickle' else '':22}{label:>8}{len(blob):>12,}{encode:>13,.0f}{decode:>13,.0f}")
    print()
    for name in made:
        (size0, enc0, dec0), (size1, enc1, dec1) = figures[name, "pickle"], figures[name, "SWS"]
        print(f"{name}, SWS / pickle: size {size1 / size0:.2f}x, encode {enc1 / enc0:.2f}x, decode {dec1 / dec0:.2f}x")
    checkpoint_at_full_rate((args.full_rate_events, 2 * args.full_rate_events), min(args.rounds, 5))


if __name__ == "__main__":
    main()
