"""Multivariate drift through the pipeline: two correlated features that become independent, each
marginal unchanged, cross the reconstruction error's threshold while no univariate drift fires; stationary
windows stay under it; partitions merge to the whole."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streamwatch.alerts.defaults import DEFAULT_RULES
from streamwatch.alerts.rules import RuleEngine
from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.profiles.model import Lineage, build_profile
from tests.pipeline.test_pipeline import START

LINEAGE = Lineage(
    model="ads",
    model_version="1",
    data_uri="train.parquet",
    rows=20_000,
    content_sha256="d" * 64,
    created_at="2026-11-23T00:00:00Z",
    streamwatch_version="0.1.0",
)
RHO = 0.9


def correlated(rng: np.random.Generator, n: int, independent: bool = False) -> tuple[np.ndarray, np.ndarray]:
    a = rng.normal(0, 1, n)
    noise = rng.normal(0, 1, n)
    b = noise if independent else RHO * a + np.sqrt(1 - RHO**2) * noise
    return a, b


def reference():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(31)
    a, b = correlated(rng, 20_000)
    return build_profile(
        {
            "spend": a,
            "clicks": b,
            "age": rng.normal(40, 10, 20_000),
            "device": rng.choice(np.array(["ios", "android", "web"], dtype=object), 20_000),
        },
        lineage=LINEAGE,
    )


PROFILE = reference()


def stream(minutes: int, per_minute: int, broken_from: int | None) -> list[bytes]:
    rng = np.random.default_rng(32)
    encoder = Encoder(clock_ms=now_ms)
    raws = []
    for minute in range(minutes):
        a, b = correlated(rng, per_minute, independent=broken_from is not None and minute >= broken_from)
        age = rng.normal(40, 10, per_minute)
        device = rng.choice(["ios", "android", "web"], per_minute)
        for i in range(per_minute):
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            features: dict[str, Any] = {
                "spend": float(a[i]),
                "clicks": None if i % 97 == 0 else float(b[i]),
                "age": float(age[i]),
                "device": str(device[i]),
            }
            raws.append(encoder.prediction("ads", "1", f"a{minute}-{i}", 10.0, features, 1, None, timestamp=at))
    return raws


def run(broken_from: int | None, minutes: int = 30, per_minute: int = 300) -> dict[str, Any]:
    pipeline = Pipeline({("ads", "1"): PROFILE}, rolling_windows=0, calibrate_for="auto")
    engine = RuleEngine([r for r in DEFAULT_RULES if r.name in ("multivariate-drift", "feature-drift")])
    raws = stream(minutes, per_minute, broken_from)
    rows, fired = [], []
    for start in range(0, len(raws), per_minute):
        out = pipeline.process(raws[start : start + per_minute])
        rows += out.rows
        fired += [
            (t.rule, (t.window_start_ms - START) // 60_000)
            for t in engine.evaluate(out.rows, out.findings)
            if t.status == "firing"
        ]
    return {"rows": rows, "fired": fired}


def test_the_profile_holds_the_joint_distribution() -> None:
    joint = PROFILE.multivariate
    assert joint is not None and joint.numeric == ["age", "clicks", "spend"] and joint.categorical == ["device"]
    assert 1 <= len(joint.components) < len(joint.means) and sum(joint.counts) == 20_000


@pytest.fixture(scope="module")
def broken() -> dict[str, Any]:
    return run(broken_from=15)


def test_two_features_that_stop_moving_together_are_caught_while_each_alone_looks_the_same(broken: dict) -> None:
    drift = {(r.window_start_ms - START) // 60_000: r for r in broken["rows"] if r.metric == "multivariate_drift"}
    assert all(drift[m].value <= drift[m].threshold for m in range(15))
    assert all(drift[m].value > drift[m].threshold for m in range(15, 29))
    rules = {rule for rule, _ in broken["fired"]}
    assert rules == {"multivariate-drift"}  # no univariate drift: the marginals did not move
    assert min(minute for rule, minute in broken["fired"]) in (15, 16)  # two windows running
    imputed = [r.value for r in broken["rows"] if r.metric == "multivariate_imputed"]
    assert imputed and all(v >= 3 for v in imputed[:-1])  # every 97th `clicks` missing: imputed, and counted


def test_stationary_windows_stay_under_the_threshold() -> None:
    quiet = run(broken_from=None, minutes=40, per_minute=150)
    assert quiet["fired"] == []
    crossed = [r for r in quiet["rows"] if r.metric == "multivariate_drift" and r.value > r.threshold]
    assert len(crossed) <= 2  # at the budget's per-window rate (~0.01 at most), 40 windows


def test_partitions_merge_to_the_whole() -> None:
    raws = stream(4, 200, broken_from=2)
    whole = Pipeline({("ads", "1"): PROFILE}, rolling_windows=0)
    expected = [
        (r.window_start_ms, r.value)
        for r in whole.process(raws).rows + whole.flush().rows
        if r.metric == "multivariate_drift"
    ]
    split = Pipeline({("ads", "1"): PROFILE}, rolling_windows=0)
    stages = [split.new_stage(), split.new_stage(), split.new_stage()]
    merger = PartialMerger(range(3), split.window_ms)
    for i, stage in enumerate(stages):
        merger.add(i, stage.process(raws[i::3]))
    for i, stage in enumerate(stages):
        merger.add(i, stage.flush())
    out = PipelineOutput()
    split.report_partials(merger.release(), out)
    found = [(r.window_start_ms, r.value) for r in out.rows if r.metric == "multivariate_drift"]
    assert found == expected and len(found) == 4


def sliced_stream(minutes: int, per_minute: int, broken_from: int) -> list[bytes]:
    """Region "b" stops keeping the correlation from ``broken_from``; region "a" keeps it."""
    rng = np.random.default_rng(33)
    encoder = Encoder(clock_ms=now_ms)
    raws = []
    for minute in range(minutes):
        a, b = correlated(rng, per_minute)
        a2, b2 = correlated(rng, per_minute, independent=minute >= broken_from)
        age = rng.normal(40, 10, per_minute)
        device = rng.choice(["ios", "android", "web"], per_minute)
        for i in range(per_minute):
            region = "ab"[i % 2]
            x, y = (a[i], b[i]) if region == "a" else (a2[i], b2[i])
            features = {"spend": float(x), "clicks": float(y), "age": float(age[i]), "device": str(device[i])}
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            raws.append(
                encoder.prediction(
                    "ads", "1", f"r{minute}-{i}", 10.0, features, 1, None, segments={"region": region}, timestamp=at
                )
            )
    return raws


def test_multivariate_drift_per_slice_finds_the_slice_that_broke() -> None:
    pipeline = Pipeline({("ads", "1"): PROFILE}, rolling_windows=0, calibrate_for="auto", slices={"ads": [["region"]]})
    raws = sliced_stream(12, 400, broken_from=6)
    rows = pipeline.process(raws).rows
    sliced = [r for r in rows if r.metric == "multivariate_drift" and r.segment]
    by = {(r.segment, (r.window_start_ms - START) // 60_000): r for r in sliced}
    for minute in range(11):
        a, b = by[((("region", "a"),), minute)], by[((("region", "b"),), minute)]
        assert a.value <= a.threshold
        assert (b.value > b.threshold) == (minute >= 6), minute
    # The slice's threshold is its own size's (200 events), and the two slices share one series' rate.
    overall = {
        (r.window_start_ms - START) // 60_000: r for r in rows if r.metric == "multivariate_drift" and not r.segment
    }
    assert by[((("region", "a"),), 0)].threshold > overall[0].threshold


def test_slices_merge_to_the_whole() -> None:
    raws = sliced_stream(3, 300, broken_from=1)
    kwargs: dict[str, Any] = {"rolling_windows": 0, "slices": {"ads": [["region"]]}}
    whole = Pipeline({("ads", "1"): PROFILE}, **kwargs)
    expected = sorted(
        (r.window_start_ms, r.segment, r.value)
        for r in whole.process(raws).rows + whole.flush().rows
        if r.metric == "multivariate_drift"
    )
    split = Pipeline({("ads", "1"): PROFILE}, **kwargs)
    stages = [split.new_stage(), split.new_stage()]
    merger = PartialMerger(range(2), split.window_ms)
    for i, stage in enumerate(stages):
        merger.add(i, stage.process(raws[i::2]))
        merger.add(i, stage.flush())
    out = PipelineOutput()
    split.report_partials(merger.release(), out)
    found = sorted((r.window_start_ms, r.segment, r.value) for r in out.rows if r.metric == "multivariate_drift")
    assert found == expected and len(found) == 9  # 3 windows: overall, region a, region b
