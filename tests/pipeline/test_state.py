"""A stage or reporter restored from a checkpoint goes on exactly as if it had never stopped.

The checkpoint format (:mod:`streamwatch.pipeline.state`) is checked three ways here: states
round-trip mid-stream; ``fixtures/checkpoint-v1.bin``, written by format version 1 and kept
frozen, still restores and continues; and bytes that are not a good state (altered, truncated,
a pickle, a type nobody registered) are refused with a clear error, never run, and the worker
carries on from its last good state (tests against the real ClickHouse store, chdb).

To write the fixture again (only when the format version changes, to add the new version's):
``STREAMWATCH_WRITE_STATE_FIXTURE=1 .venv/bin/pytest tests/pipeline/test_state.py -k write``.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import pickle
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamwatch.adapters.clickhouse import Store
from streamwatch.alerts.engine import Alerting
from streamwatch.config.settings import load_settings
from streamwatch.core.change import ChangeDetector
from streamwatch.core.join import Prediction
from streamwatch.core.performance import RegressionAggregates
from streamwatch.errors import StreamwatchError
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.aggregates import WindowAggregates
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.profiles.model import ReferenceProfile
from streamwatch.runtime.loop import RuntimeSettings, WorkerRuntime
from streamwatch.runtime.report_runner import ReportRunner
from tests.pipeline.test_merge import PROFILE, RAWS, WHOLE, final_state, same, stream
from tests.pipeline.test_pipeline import START

PROFILES = {("credit", "3"): PROFILE}


def pipeline(profiles: dict[tuple[str, str], ReferenceProfile] = PROFILES) -> Pipeline:
    return Pipeline(profiles, rolling_windows=3, min_samples=5, slices={"credit": [["gender"]]})


@pytest.mark.parametrize("cut", [1, 250, 777, len(RAWS) - 3])
def test_a_stage_and_reporter_restored_mid_stream_report_what_an_uninterrupted_run_does(cut: int) -> None:
    first = pipeline()
    outputs = [first.process(RAWS[:cut])]
    stage_blob = state_codec.dumps(first.stage.state())
    reporter_blob = state_codec.dumps(first.reporter.state())
    second = pipeline()  # a new process: nothing shared with the first but the bytes
    second.stage.restore(state_codec.loads(stage_blob, PROFILES))
    second.reporter.restore(state_codec.loads(reporter_blob, PROFILES))
    outputs += [second.process(RAWS[cut:]), second.flush()]
    rows, findings = final_state(outputs)
    same(rows, WHOLE[0])
    assert findings == WHOLE[1]


def test_a_checkpointed_merger_resumes() -> None:
    p = pipeline()
    stages = [p.new_stage(), p.new_stage()]
    merger = PartialMerger([0, 1], p.window_ms)
    outputs = []
    for i, raw in enumerate(RAWS):
        n = zlib.crc32(raw.split(b'"request_id":"')[1].split(b'"')[0]) % 2  # keyed by request id
        merger.add(n, stages[n].process([raw]))
        if i == len(RAWS) // 2:
            merger = state_codec.loads(state_codec.dumps(merger), PROFILES)
        out = PipelineOutput()
        p.report_partials(merger.release(), out)
        outputs.append(out)
    for n, stage in enumerate(stages):
        merger.add(n, stage.flush())
    out = PipelineOutput()
    p.report_partials(merger.release(), out)
    rows, _ = final_state([*outputs, out])
    same(rows, WHOLE[0])


def test_a_checkpoint_of_another_reference_profile_is_refused_by_name() -> None:
    blob = state_codec.dumps(pipeline().stage.state() | {"profile": PROFILE})
    with pytest.raises(StreamwatchError, match=r"reference profile credit 3 \(f{12}\)"):
        state_codec.loads(blob, {})


# -- what the format keeps ----------------------------------------------------------------------------


def roundtrip(state: Any) -> Any:
    return state_codec.loads(state_codec.dumps(state), PROFILES)


def test_profiles_are_written_by_reference_and_shared_objects_stay_shared() -> None:
    p = pipeline()
    p.process(RAWS[:200])
    state = p.stage.state()
    blob = state_codec.dumps(state)
    # The profile is written once, as (model, version, sha256), and nothing else of it.
    assert blob.count(PROFILE.lineage.content_sha256.encode()) == 1 and b"train.parquet" not in blob
    restored = state_codec.loads(blob, PROFILES)
    windows = list(restored["open"].values())
    assert [w.profile for w in windows] == [PROFILE, None]  # production's, and the canary's (version 4 has none)
    assert windows[0].profile is PROFILE
    assert len({id(w.sli.slo) for w in windows}) == 1  # one SLO object, as before
    shared: list[int] = [1]
    again = roundtrip({"a": shared, "b": shared, "cycle": (cycle := [shared])})
    assert again["a"] is again["b"] is again["cycle"][0]
    cycle.append(cycle)
    assert roundtrip(cycle)[1] is not None


def test_containers_numbers_and_arrays_come_back_as_they_were() -> None:
    from collections import OrderedDict, defaultdict, deque

    counts: defaultdict[str, int] = defaultdict(int, {"a": 2})
    state = {
        (1, "x", None): [1.5, float("inf"), -(2**70), 2**64 - 1, -(2**63), True, b"\x00\xff"],
        "sets": ({1, 2}, frozenset({"a"})),
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "counts": counts,
        "recent": deque([1, 2, 3], maxlen=5),
        "arrays": [np.arange(6, dtype=np.int64).reshape(2, 3), np.array([0.5, np.nan]), np.zeros(0, dtype=bool)],
        "scalars": [np.float32(0.25), np.int64(-3), np.bool_(True)],
    }
    again = roundtrip(state)
    assert list(again) == list(state)
    assert again[(1, "x", None)] == state[(1, "x", None)]
    assert again["sets"] == state["sets"] and type(again["sets"][1]) is frozenset
    assert list(again["ordered"].items()) == [("b", 1), ("a", 2)] and type(again["ordered"]) is OrderedDict
    again["counts"]["new"] += 1  # still a defaultdict of int
    assert again["counts"] == {"a": 2, "new": 1}
    assert again["recent"] == state["recent"] and again["recent"].maxlen == 5
    for mine, theirs in zip(again["arrays"], state["arrays"], strict=True):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        np.testing.assert_array_equal(mine, theirs)
        assert mine.flags.writeable
    assert [(type(s), s) for s in again["scalars"]] == [(type(s), s) for s in state["scalars"]]


@pytest.mark.parametrize("detector", ["page_hinkley", "adwin", "kswin"])
def test_every_change_detector_resumes_where_it_stopped(detector: str) -> None:
    values = [0.05 + 0.01 * (i % 3) for i in range(60)] + [0.6 + 0.01 * (i % 3) for i in range(60)]
    whole, first = ChangeDetector(detector), ChangeDetector(detector)
    for i, value in enumerate(values):
        whole.update(i, value)
    for i, value in enumerate(values[:70]):
        first.update(i, value)
    second = roundtrip(first)
    for i, value in enumerate(values[70:], 70):
        second.update(i, value)
    assert second.detections == whole.detections != []


def test_alerting_state_round_trips() -> None:
    alerting, run = alerting_run()
    restored = new_alerting()
    restored.restore(roundtrip(alerting.state()))
    assert run.alerts, "the scenario fires an alert"
    for judge in (alerting, restored):
        assert [n.notification_id for n in judge.tick(10**13).notifications] != []
    assert repr(restored.state()["rules"]) == repr(alerting.state()["rules"])


def test_writing_an_unregistered_class_or_attribute_names_it() -> None:
    class Stranger:
        pass

    with pytest.raises(state_codec.StateFormatError, match=r"test_state\.\S*Stranger: the class is not registered"):
        state_codec.dumps({"join": [Stranger()]})
    p = pipeline()
    p.process(RAWS[:50])
    join = p.stage.join
    join.surprise = 1  # type: ignore[attr-defined]  # what a new attribute, unregistered, would be
    with pytest.raises(state_codec.StateFormatError, match=r"core\.LabelJoin: attributes \['surprise'\]"):
        state_codec.dumps(p.stage.state())
    with pytest.raises(state_codec.StateFormatError, match="defaultdict of str"):
        from collections import defaultdict

        state_codec.dumps(defaultdict(str))
    with pytest.raises(state_codec.StateFormatError, match="dtype '\\|O'"):
        state_codec.dumps(np.array(["a"], dtype=object))


# -- bytes that are not a good state ------------------------------------------------------------------

TRIPPED: list[str] = []


def _tripwire(*args: object) -> None:  # what unpickling the pickle below would run
    TRIPPED.append("a pickle was executed")


class _Booby:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _tripwire, ()


def body(blob: bytes) -> Any:
    return msgspec.msgpack.decode(blob[8:])


def framed(decoded: Any, version: int = state_codec.FORMAT_VERSION) -> bytes:
    """A blob around ``decoded``, with a correct checksum: what only a deliberate forgery looks like."""
    raw = msgspec.msgpack.encode(decoded)
    return b"SWS" + bytes([version]) + state_codec._checksum(version, raw).to_bytes(4, "big") + raw


SMALL = state_codec.dumps({"n": [1, 2.5, "x"], "h": roundtrip(pipeline().stage.state())["join"]})
GOOD_ARRAY = [[], [9, "<i8", [2], b"\x01" * 16]]
BAD = {
    "flipped byte": SMALL[:40] + bytes([SMALL[40] ^ 0x10]) + SMALL[41:],
    "truncated": SMALL[:-9],
    "empty": b"",
    "pickle": pickle.dumps({"open": _Booby()}),
    "foreign bytes": b'{"open": {}}',
    "newer version": framed(body(SMALL), version=state_codec.FORMAT_VERSION + 1),
    "version 0": framed(body(SMALL), version=0),
    "unregistered type": framed([[["os.system", ["command"]]], [11, 0, "echo owned"]]),
    "changed fields": framed([[["core.Counts", ["tp", "fp"]]], [11, 0, 1, 2]]),
    "object dtype": framed([[], [9, "|O", [1], b"\x00" * 8]]),
    "array bytes short": framed([[], [9, "<i8", [3], b"\x01" * 16]]),
    "unknown tag": framed([[], [99, 1]]),
    "map in body": framed([[], {"a": 1}]),
    "reference forward": framed([[], [1, [13, 5]]]),
    "not a type list": framed([{"x": 1}, 1]),
}
REASONS = {
    "flipped byte": "CRC-32",
    "truncated": "CRC-32",
    "empty": "not a streamwatch state",
    "pickle": "Python object serialization, as streamwatch wrote before this format: never loaded",
    "foreign bytes": "not a streamwatch state",
    "newer version": f"format version {state_codec.FORMAT_VERSION + 1}, by a newer streamwatch",
    "version 0": "format version 0, which this streamwatch cannot read",
    "unregistered type": "unknown state type 'os.system'",
    "changed fields": r"core.Counts was written with fields \['tp', 'fp'\]",
    "object dtype": r"numpy dtype '\|O' is not in the allow-list",
    "array bytes short": "needs 24 bytes, not 16",
    "unknown tag": "without a known tag",
    "map in body": "unexpected dict",
    "reference forward": "a reference to nothing written before it",
    "not a type list": "list of types",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bytes_that_are_not_a_good_state_are_refused_saying_why(kind: str) -> None:
    assert framed(GOOD_ARRAY) and state_codec.loads(framed(GOOD_ARRAY), {}).tolist() == [0x0101010101010101] * 2
    with pytest.raises(state_codec.StateFormatError, match=REASONS[kind]):
        state_codec.loads(BAD[kind], PROFILES)
    assert not TRIPPED


def test_every_altered_byte_is_caught() -> None:
    for i in range(len(SMALL)):
        altered = SMALL[:i] + bytes([SMALL[i] ^ 0x01]) + SMALL[i + 1 :]
        with pytest.raises(state_codec.StateFormatError):
            state_codec.loads(altered, PROFILES)


FUZZ_SOURCE = body(
    state_codec.dumps(
        {
            "stage": roundtrip(pipeline().stage.state()),
            "detectors": [ChangeDetector(d) for d in ("page_hinkley", "adwin", "kswin")],
            "array": np.arange(4),
        }
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_forged_body_with_a_good_checksum_still_never_gets_past_a_clear_error(data: st.DataObject) -> None:
    raw = bytearray(msgspec.msgpack.encode(FUZZ_SOURCE))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    blob = b"SWS\x01" + zlib.crc32(raw).to_bytes(4, "big") + bytes(raw)
    # StateFormatError, or a profile reference altered into one not loaded: both clear, nothing else.
    with contextlib.suppress(StreamwatchError):
        state_codec.loads(blob, PROFILES)


# -- the frozen checkpoint of format version 1 --------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "checkpoint-v1.bin"
V1_PROFILE = FIXTURES / "checkpoint-v1.profile.json"
V1_EVENTS = FIXTURES / "checkpoint-v1.events.jsonl.gz"
BATCH = 20
CUT = 180  # events before the checkpoint: a batch boundary, after the income drift fired
DETECTOR_VALUES = [0.05 + 0.01 * (i % 3) for i in range(60)] + [0.6 + 0.01 * (i % 3) for i in range(60)]
DETECTOR_CUT = 70
#: Every state type format version 1 knows: the fixture holds one of each.
V1_TYPES = {
    "alerts.RouterGroup",
    "alerts.RuleSeries",
    "alerts.SeriesId",
    "contract.AlertEvent",
    "core.CategoryCounts",
    "core.ChangeDetector",
    "core.ConfusionCounts",
    "core.Counts",
    "core.Divergence",
    "core.LabelJoin",
    "core.LabelJoin.Label",
    "core.LatencySketch",
    "core.NumericHistogram",
    "core.PerformanceAggregates",
    "core.RegressionAggregates",
    "core.SLICounts",
    "core.SLO",
    "core.SLOHistory",
    "core.ScoreHistogram",
    "core.TwinJoin",
    "pipeline.PartialMerger",
    "pipeline.WindowAggregates",
    "python.Random",
    "river.ADWIN",
    "river.AdaptiveWindowing",
    "river.KSWIN",
    "river.Mean",
    "river.PageHinkley",
}


def new_alerting(profiles: dict[tuple[str, str], ReferenceProfile] = PROFILES) -> Alerting:
    chosen = load_settings(
        rules=[
            {
                "name": "income-drift",
                "kind": "drift",
                "feature": "income",
                "when": {"metric": "wasserstein", "op": ">", "threshold": 0.5},
                "channels": ["hook"],
                "actions": ["retrain"],
            }
        ],
        channels=[
            {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/x", "signing_secret": "s" * 20}
        ],
        alerting={"group_wait": "0s", "group_interval": "0s"},
    )
    return Alerting(chosen.rules, {"hook": True}, chosen.alerting, profiles, chosen.models, 60_000)


@dataclass
class Run:
    """The worker's path in one process: a stage, the merger, the reporter and alerting (one partition)."""

    profiles: dict[tuple[str, str], ReferenceProfile]
    pipeline: Pipeline
    merger: PartialMerger
    alerting: Alerting
    outputs: list[PipelineOutput] = field(default_factory=list)
    alerts: list[tuple[str, str, int]] = field(default_factory=list)
    batches: int = 0

    @classmethod
    def new(cls, profiles: dict[tuple[str, str], ReferenceProfile]) -> Run:
        p = pipeline(profiles)
        return cls(profiles, p, PartialMerger([0], p.window_ms), new_alerting(profiles))

    def _report(self, partials: Any) -> None:
        self.merger.add(0, partials)
        out = PipelineOutput()
        self.pipeline.report_partials(self.merger.release(), out)
        judged = self.alerting.report(out.rows + out.view, out.findings, out.examples, START + self.batches * 10_000)
        self.alerts += [(a.fingerprint, a.status, self.batches) for a in judged.alerts]
        self.outputs.append(out)
        self.batches += 1

    def feed(self, events: list[bytes]) -> Run:
        for i in range(0, len(events), BATCH):
            self._report(self.pipeline.stage.process(events[i : i + BATCH]))
        return self

    def finish(self) -> Run:
        self._report(self.pipeline.stage.flush())
        return self

    def checkpoint(self) -> dict[str, Any]:
        """What the runtime checkpoints: the stage's state, and the reporter's with the merger and alerting."""
        return {
            "stage": self.pipeline.stage.state(),
            "reporter": {
                "merger": self.merger,
                "seen": {0: self.batches},
                "reporter": self.pipeline.reporter.state(),
                "alerting": self.alerting.state(),
                "batches": self.batches,
            },
        }

    @classmethod
    def restored(cls, checkpoint: dict[str, Any], profiles: dict[tuple[str, str], ReferenceProfile]) -> Run:
        run = cls.new(profiles)
        run.pipeline.stage.restore(checkpoint["stage"])
        reporter = checkpoint["reporter"]
        run.merger = reporter["merger"]
        run.pipeline.reporter.restore(reporter["reporter"])
        run.alerting.restore(reporter["alerting"])
        run.batches = reporter["batches"]
        return run


def alerting_run() -> tuple[Alerting, Run]:
    run = Run.new(PROFILES).feed(stream(minutes=4, per_minute=40)[:CUT])
    return run.alerting, run


def zoo(values: list[float]) -> dict[str, Any]:
    """The state types a stream of one classification model does not make, fed ``values``."""
    detectors = {name: ChangeDetector(name) for name in ("adwin", "kswin")}
    for detector in detectors.values():
        for i, value in enumerate(values):
            detector.update(i, value)
    regression = RegressionAggregates()  # errors of 100: their squares pass 64 bits in units of 1e-18
    regression.update([(Prediction(0, "1", "production", 100.0 + i), float(i % 2)) for i in range(len(values))])
    return {
        "detectors": detectors,
        "regression": regression,
        "scalars": [np.float32(0.25), np.int64(-7), -(2**70), frozenset({"a"}), b"\x00\xff"],
    }


def v1_fixture() -> tuple[dict[str, Any], dict[tuple[str, str], ReferenceProfile], list[bytes]]:
    profile = ReferenceProfile.model_validate_json(V1_PROFILE.read_bytes())
    profiles = {("credit", "3"): profile}
    events = gzip.decompress(V1_EVENTS.read_bytes()).splitlines()
    return state_codec.loads(V1.read_bytes(), profiles), profiles, events


@pytest.mark.skipif(not os.environ.get("STREAMWATCH_WRITE_STATE_FIXTURE"), reason="the fixture stays frozen")
def test_write_the_fixture() -> None:
    """Write this format version's fixture (run on purpose; never overwrites an older version's)."""
    path = FIXTURES / f"checkpoint-v{state_codec.FORMAT_VERSION}.bin"
    FIXTURES.mkdir(exist_ok=True)
    events = stream(minutes=4, per_minute=40)
    run = Run.new(PROFILES).feed(events[:CUT])
    path.write_bytes(state_codec.dumps(run.checkpoint() | {"zoo": zoo(DETECTOR_VALUES[:DETECTOR_CUT])}))
    path.with_suffix(".profile.json").write_text(PROFILE.model_dump_json(indent=1) + "\n")
    path.with_suffix(".events.jsonl.gz").write_bytes(gzip.compress(b"\n".join(events) + b"\n", mtime=0))


def test_the_v1_fixture_holds_every_state_type_of_version_1() -> None:
    blob = V1.read_bytes()
    assert blob[:4] == b"SWS\x01"
    assert {name for name, _ in body(blob)[0]} == V1_TYPES
    state_codec.loads(blob, {("credit", "3"): ReferenceProfile.model_validate_json(V1_PROFILE.read_bytes())})
    assert set(state_codec.REGISTRY) >= V1_TYPES  # the alerting types are registered once met


def test_the_v1_fixture_restores_with_its_counts() -> None:
    state, profiles, events = v1_fixture()
    assert len(events) == 296
    stage, reporter = state["stage"], state["reporter"]
    join = stage["join"]
    assert (join.pending_predictions, join.matched_predictions, join.matched_labels, join.pending_labels) == (
        100,
        46,
        34,
        0,
    )
    windows = {(key, start - START): w for (key, start), w in stage["open"].items()}
    assert sorted((key, start, w.requests, w.errors) for (key, start), w in windows.items()) == [
        (("credit", "3", "production"), 120_000, 28, 0),
        (("credit", "4", "canary"), 120_000, 10, 0),
    ]
    production = windows[("credit", "3", "production"), 120_000]
    assert production.profile is profiles["credit", "3"]
    assert production.features["income"].n == 28 and production.features["income"].missing == 0
    assert production.features["region"].counts.tolist() == [10, 7, 11]  # north, south, then unseen (east)
    assert production.latency.n == 28 and production.sli.total == 28
    assert production.sli.slo.min_bad_events == 5  # format 2's field, given its default by the migration
    assert sorted(start - START for _, start in stage["performance"]) == [0, 0, 60_000, 60_000]
    assert reporter["merger"].watermark == START + 150_500
    assert len(reporter["reporter"]["detectors"]) == 6
    series = reporter["alerting"]["rules"]["series"]
    assert [s.status for s in series.values() if s.status] == ["firing"] * 6
    groups = reporter["alerting"]["router"]["groups"]
    assert sorted(len(g.alerts) for g in groups.values()) == [1, 1, 4]
    detectors = state["zoo"]["detectors"]
    assert detectors["adwin"].detections == [] and detectors["kswin"].detections == []
    assert state["zoo"]["regression"].n == DETECTOR_CUT and state["zoo"]["regression"]._squared > 2**64
    assert state["zoo"]["scalars"] == [np.float32(0.25), np.int64(-7), -(2**70), frozenset({"a"}), b"\x00\xff"]


def test_the_v1_fixture_continues_exactly_like_an_uninterrupted_run() -> None:
    state, profiles, events = v1_fixture()
    whole = Run.new(profiles).feed(events).finish()
    resumed = Run.restored(state, profiles).feed(events[CUT:]).finish()
    before = Run.new(profiles).feed(events[:CUT])
    rows, findings = final_state(before.outputs + resumed.outputs)
    expected_rows, expected_findings = final_state(whole.outputs)
    same(rows, expected_rows)
    assert findings == expected_findings
    assert before.alerts + resumed.alerts == whole.alerts
    assert "resolved" in {status for _, status, _ in resumed.alerts}  # alerts that fired before the cut resolve
    for name, detector in state["zoo"]["detectors"].items():
        fresh = ChangeDetector(name)
        for i, value in enumerate(DETECTOR_VALUES):
            fresh.update(i, value)
        for i, value in enumerate(DETECTOR_VALUES[DETECTOR_CUT:], DETECTOR_CUT):
            detector.update(i, value)
        assert detector.detections == fresh.detections != []


# -- a tampered checkpoint or partial in the real store -----------------------------------------------


def worker(store: Store) -> WorkerRuntime:
    chosen = load_settings(worker={"group": "tamper"}, topics={"predictions": "p", "features": "f", "labels": "l"})
    settings_ = RuntimeSettings.from_settings(chosen)
    return WorkerRuntime(pipeline(), store, lambda on_assign, on_revoke: None, None, settings_)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kind", ["flipped byte", "truncated", "pickle", "unregistered type", "newer version", "foreign"]
)
def test_a_partition_whose_checkpoint_is_unreadable_starts_afresh_from_the_earliest_offsets(
    kind: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = worker(store)
    good = pipeline()
    good.process(RAWS[:300])
    blob = state_codec.dumps(good.stage.state())
    bad = {
        "flipped byte": blob[:100] + bytes([blob[100] ^ 0xFF]) + blob[101:],
        "truncated": blob[: len(blob) // 2],
        "foreign": state_codec.dumps(good.stage.join),  # a good blob, but no stage's state
    }.get(kind) or BAD[kind]
    offsets = {"p": 120, "f": 0, "l": 45}
    store.save_checkpoint(runtime._name, 1, (4 << 32) | 9, START + 90_000, offsets, bad)
    store.save_checkpoint(runtime._name, 2, (7 << 32) | 3, START + 90_000, offsets, blob)
    assignment = [(topic, n) for n in (1, 2) for topic in ("p", "f", "l")]
    with caplog.at_level(logging.WARNING, logger="streamwatch.worker"):
        starts = runtime._assigned(assignment)
    # Partition 1 reads again from the earliest offsets kept (None), as one never checkpointed does; the
    # good checkpoint of partition 2 resumes where it was.
    assert starts == {("p", 1): None, ("f", 1): None, ("l", 1): None, ("p", 2): 120, ("f", 2): 0, ("l", 2): 45}
    fresh, resumed = runtime.streams[1], runtime.streams[2]
    assert fresh.generation == 5 and resumed.generation == 8  # above whatever the unreadable one wrote
    assert fresh.stage.join.pending_predictions == 0 and not fresh.stage.open_windows()
    assert resumed.stage.join.pending_predictions == good.stage.join.pending_predictions > 0
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "checkpoint of partition 1 (stage:tamper, version 17179869193) is unreadable" in warning
    assert "earliest offsets" in warning
    assert not TRIPPED


def test_an_unreadable_reporter_checkpoint_or_partial_is_skipped_with_a_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    p = pipeline()
    runner = ReportRunner(p, store, "tamper", partitions=1)
    store.save_checkpoint(runner._name, 0, (2 << 32) | 5, 0, {}, BAD["pickle"])
    with caplog.at_level(logging.WARNING, logger="streamwatch.worker"):
        runner.activate()
    assert runner.active and runner._generation == 3 and runner._seen == {0: 0}
    stage = p.new_stage()
    partials = stage.process(RAWS).partials + stage.flush().partials
    windows = [x for x in partials if x.kind == "window" and x.key == ("credit", "3", "production")]
    spoiled = windows[1]
    rows = [
        (0, 1, x.kind, x.key, x.start, b"\x80\x05garbage" if x is spoiled else state_codec.dumps(x.aggregate))
        for x in partials
    ]
    store.insert_partials("tamper", [*rows, (0, 1, "watermark", (), 0, str(2**62).encode())])
    with caplog.at_level(logging.WARNING, logger="streamwatch.worker"):
        assert runner.tick() > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "reporter checkpoint (reporter:tamper, version 8589934597) is unreadable" in warnings[0]
    assert (
        f"skipped an unreadable window partial of partition 0, window {spoiled.key} at {spoiled.start}" in warnings[1]
    )
    reported = {
        r.window_start_ms
        for r in store.metrics(model="credit")
        if (r.model_version, r.variant, r.metric, r.window) == ("3", "production", "requests", "tumbling")
    }
    assert spoiled.start not in reported and {w.start for w in windows} - {spoiled.start} <= reported
    # What the runner checkpointed next is good: the next owner resumes from it without a warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="streamwatch.worker"):
        ReportRunner(pipeline(), store, "tamper", partitions=1).activate()
    assert not caplog.records
    assert not TRIPPED


def test_the_state_bench_runs_and_compares_both_formats() -> None:
    import subprocess
    import sys

    bench = Path(__file__).parent.parent.parent / "bench" / "state.py"
    result = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("stage checkpoint", "pickle", "SWS", "stage checkpoint, SWS / pickle: size"):
        assert line in result.stdout


# -- the frozen checkpoint of format version 3 (before estimated performance) --------------------------

V3 = FIXTURES / "checkpoint-v3.bin"


def test_the_v3_fixture_gains_the_fields_of_version_4_and_continues_exactly_like_an_uninterrupted_run() -> None:
    blob = V3.read_bytes()
    assert blob[:4] == b"SWS\x03"
    profile = ReferenceProfile.model_validate_json(V3.with_suffix(".profile.json").read_bytes())
    profiles = {(profile.lineage.model, profile.lineage.model_version): profile}
    events = gzip.decompress(V3.with_suffix(".events.jsonl.gz").read_bytes()).splitlines()
    names = {name for name, _ in body(blob)[0]}
    assert {"pipeline.WindowAggregates", "core.PerformanceAggregates"} <= names  # what version 4 changed
    state = state_codec.loads(blob, profiles)
    windows = list(state["stage"]["open"].values())
    assert windows and all(isinstance(w, WindowAggregates) and w.estimate is w.prediction is None for w in windows)
    performance = list(state["stage"]["performance"].values())
    assert performance and all(p.estimate is None and p.score_edges is None for p in performance)
    whole = Run.new(profiles).feed(events).finish()
    resumed = Run.restored(state, profiles).feed(events[CUT:]).finish()
    before = Run.new(profiles).feed(events[:CUT])
    rows, findings = final_state(before.outputs + resumed.outputs)
    expected_rows, expected_findings = final_state(whole.outputs)
    same(rows, expected_rows)
    assert findings == expected_findings
    assert before.alerts + resumed.alerts == whole.alerts
