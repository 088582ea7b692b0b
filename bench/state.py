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

    .venv/bin/python bench/state.py            # about a minute
    .venv/bin/python bench/state.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import io
import pickle
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from core import make_events, reference_profile
from streamwatch.pipeline import state as state_codec
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="predictions (plus labels for half)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=1000, help="events per stage call, like a consumer batch")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 3_000, 3
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


if __name__ == "__main__":
    main()
