"""The pipeline end to end without a broker: bytes in, metric rows and findings out."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import Lineage, build_profile

START = 1_795_000_020_000 - 1_795_000_020_000 % 60_000
LINEAGE = Lineage(
    model="credit",
    model_version="3",
    data_uri="train.parquet",
    rows=20_000,
    content_sha256="f" * 64,
    created_at="2026-11-23T00:00:00Z",
    streamwatch_version="0.1.0",
)


def profile():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    return build_profile(
        {
            "income": rng.normal(50, 10, 20_000),
            "age": rng.integers(18, 80, 20_000).astype(float),
            "region": rng.choice(np.array(["north", "south"], dtype=object), 20_000),
            "score": rng.random(20_000),
        },
        lineage=LINEAGE,
        score_column="score",
    )


def events(minutes: int = 3, per_minute: int = 600, drift_minute: int = 2) -> tuple[list[bytes], dict]:
    """Predictions over `minutes` minutes; income shifts by 2 std in `drift_minute`."""
    rng = np.random.default_rng(1)
    encoder = Encoder(clock_ms=now_ms)
    raws, truth = [], {"latency": {}, "errors": {}, "missing": {}, "mismatch": {}}
    for minute in range(minutes):
        shift = 20 if minute == drift_minute else 0
        latencies = rng.lognormal(3, 0.5, per_minute)
        truth["latency"][minute] = latencies
        truth["errors"][minute] = truth["missing"][minute] = truth["mismatch"][minute] = 0
        for i in range(per_minute):
            income: object = float(rng.normal(50 + shift, 10))
            if i % 50 == 0:
                income, truth["missing"][minute] = None, truth["missing"][minute] + 1
            elif i % 75 == 1:
                income, truth["mismatch"][minute] = "n/a", truth["mismatch"][minute] + 1
            error = i % 40 == 0
            truth["errors"][minute] += error
            raws.append(
                encoder.prediction(
                    "credit",
                    "3",
                    f"r{minute}-{i}",
                    float(latencies[i]),
                    {"income": income, "age": int(rng.integers(18, 80)), "region": str(rng.choice(["north", "south"]))},
                    None if error else 1,
                    None if error else float(rng.random()),
                    "production",
                    "error" if error else "ok",
                    "boom" if error else None,
                    None,
                    None,
                    START + minute * 60_000 + i * 90,
                    None,
                )
            )
    return raws, truth


def by(rows, minute, metric, feature=None):  # type: ignore[no-untyped-def]
    [row] = [
        r for r in rows if r.window_start_ms == START + minute * 60_000 and r.metric == metric and r.feature == feature
    ]
    return row.value


def run(raws: list[bytes], batch: int, **options: int):  # type: ignore[no-untyped-def]
    pipeline = Pipeline({("credit", "3"): profile()}, **options)
    rows, findings = [], []
    for start in range(0, len(raws), batch):
        out = pipeline.process(raws[start : start + batch])
        rows += out.rows
        findings += out.findings
    final = pipeline.flush()
    return rows + final.rows, findings + final.findings


def test_metrics_and_findings_per_window() -> None:
    raws, truth = events()
    rows, findings = run(raws, batch=500)
    drift = [f for f in findings if f.kind == "drift"]
    assert [(f.feature, f.window_start_ms) for f in drift] == [("income", START + 120_000)]
    # The window's smallest request ids (a choice that merges exactly across partitions).
    assert drift[0].evidence["example_request_ids"] == sorted(f"r2-{i}" for i in range(600))[:5]
    assert drift[0].reference == "f" * 64
    # 2.5% errors against a 0.1% budget burns it 25 times too fast, but three minutes of history are no
    # evidence for any burn-rate window: the fastest page reads an hour, and needs its five-minute short
    # window covered first (core.slo). Six minutes page; the tickets need hours of history.
    assert {f.severity_hint for f in findings if f.kind == "slo"} == set()
    _, longer = run(events(minutes=6)[0], batch=500)
    assert {f.severity_hint for f in longer if f.kind == "slo"} == {"critical"}
    for minute in range(3):
        assert by(rows, minute, "requests") == 600
        assert by(rows, minute, "error_rate") == truth["errors"][minute] / 600
        assert by(rows, minute, "missing_rate", "income") == truth["missing"][minute] / 600
        assert by(rows, minute, "type_mismatch_rate", "income") == truth["mismatch"][minute] / 600
        for q in (50, 95, 99):
            exact = np.quantile(truth["latency"][minute], q / 100, method="inverted_cdf")
            assert by(rows, minute, f"latency_p{q}") == pytest.approx(exact, rel=0.01)
    assert by(rows, 2, "drifted_share") == pytest.approx(1 / 4)  # income of income, age, region and the score
    assert by(rows, 0, "drifted_share") == 0
    assert by(rows, 2, "out_of_range_rate", "income") > by(rows, 0, "out_of_range_rate", "income")


def test_results_do_not_depend_on_batching() -> None:
    raws, _ = events(minutes=2, per_minute=200)
    reference = run(raws, batch=10_000)
    for size in (1, 7, 128):
        assert run(raws, batch=size) == reference


def test_partials_from_two_partitions_merge_into_the_whole() -> None:
    raws, _ = events(minutes=2, per_minute=300)
    whole = Pipeline({("credit", "3"): profile()}, allowed_lateness_ms=10**9)
    whole.process(raws)
    parts = [Pipeline({("credit", "3"): profile()}, allowed_lateness_ms=10**9) for _ in range(2)]
    for raw in raws:  # keyed by request id, as the producer does
        request_id = raw.split(b'"request_id":"')[1].split(b'"')[0]
        parts[zlib.crc32(request_id) % 2].process([raw])
    expected = whole.open_windows()
    for slot, aggregate in expected.items():
        merged = parts[0].open_windows()[slot]
        merged.merge(parts[1].open_windows()[slot])
        for name in aggregate.features:
            assert merged.features[name] == aggregate.features[name]
        assert merged.latency == aggregate.latency and merged.score == aggregate.score
        assert (merged.requests, merged.errors) == (aggregate.requests, aggregate.errors)
        assert dict(merged.type_mismatch) == dict(aggregate.type_mismatch)


def test_bad_and_late_events_are_accounted_for() -> None:
    raws, _ = events(minutes=2, per_minute=100)
    pipeline = Pipeline({("credit", "3"): profile()}, allowed_lateness_ms=1_000)
    out = pipeline.process([*raws, b"{broken", raws[0]])
    assert [d.index for d in out.dead_letters] == [200]
    assert out.late_events == 1  # the replay of the first event, two minutes later


def test_a_version_without_a_profile_still_gets_operational_metrics() -> None:
    raws, _ = events(minutes=1, per_minute=50)
    pipeline = Pipeline({})
    pipeline.process(raws)
    rows = pipeline.flush().rows
    assert {r.metric for r in rows} == {
        "requests",
        "error_rate",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "burn_rate_5m",
        "burn_rate_30m",
        "burn_rate_1h",
        "burn_rate_2h",
        "burn_rate_6h",
        "burn_rate_1d",
        "burn_rate_3d",
        "error_budget_consumed",
        "error_budget_remaining",
    }


def test_a_canary_latency_regression_burns_only_the_canarys_budget() -> None:
    from streamwatch.core.slo import SLO

    rng = np.random.default_rng(4)
    encoder = Encoder(clock_ms=now_ms)
    raws = []
    for i in range(6_000):  # ten minutes, 600 requests a minute, one in ten on the canary
        canary = i % 10 == 0
        latency = float(rng.lognormal(3, 0.3)) + (400.0 if canary and rng.random() < 0.3 else 0.0)
        raws.append(
            encoder.prediction(
                "credit",
                "3" if not canary else "4",
                f"r{i}",
                latency,
                {"x": 1.0},
                1,
                0.5,
                "canary" if canary else "production",
                "ok",
                None,
                None,
                None,
                START + i * 100,
                None,
            )
        )
    pipeline = Pipeline({}, slos={"credit": SLO(target=0.99, latency_ms=300.0)})
    out = pipeline.process(raws)
    findings = out.findings + pipeline.flush().findings
    fired = {(f.variant, f.evidence["severity"]) for f in findings if f.kind == "slo"}
    assert fired == {("canary", "page")}  # ten minutes are no evidence for a ticket's day-long window
    rows = out.rows
    burn = [r.value for r in rows if r.metric == "burn_rate_5m" and r.variant == "canary"]
    assert burn and min(burn[4:]) > 14.4  # ~30% slow against a 1% budget, once five minutes are in
    assert all(r.value < 1 for r in rows if r.metric == "burn_rate_5m" and r.variant == "production")


def test_a_sudden_rise_in_errors_is_a_change_finding() -> None:
    encoder = Encoder(clock_ms=now_ms)
    raws = [
        encoder.prediction(
            "credit",
            "3",
            f"r{i}",
            5.0,
            {"x": 1.0},
            None if i % 100 < (2 if i < 30_000 else 40) else 1,
            0.5,
            "production",
            "error" if i % 100 < (2 if i < 30_000 else 40) else "ok",
            None,
            None,
            None,
            START + i * 1_000,
            None,
        )
        for i in range(40_000)  # 1 event a second: 500 windows at 2% errors, then 40%
    ]
    pipeline = Pipeline({})
    findings = [
        f for batch in range(0, len(raws), 5_000) for f in pipeline.process(raws[batch : batch + 5_000]).findings
    ]
    changes = [f for f in findings if f.kind == "change"]
    assert changes and changes[0].metric == "error_rate"
    first_minute = (changes[0].window_start_ms - START) // 60_000
    assert 500 <= first_minute <= 510


def test_the_rolling_view_merges_the_last_windows() -> None:
    raws, truth = events(minutes=3, per_minute=600, drift_minute=2)
    pipeline = Pipeline({("credit", "3"): profile()}, rolling_windows=3)
    rows = pipeline.process(raws).rows + pipeline.flush().rows
    rolling = [r for r in rows if r.window == "3m"]
    last = {r.metric: r for r in rolling if r.window_end_ms == START + 180_000 and r.feature in (None, "income")}
    assert last["requests"].value == 1_800 and last["requests"].window_start_ms == START
    every = np.concatenate([truth["latency"][m] for m in range(3)])
    assert last["latency_p99"].value == pytest.approx(np.quantile(every, 0.99, method="inverted_cdf"), rel=0.01)
    # Income drifted in the last minute only: the 3-minute view sees a third of it.
    minute = next(
        r.value
        for r in rows
        if r.window == "tumbling"
        and r.metric == "wasserstein"
        and r.feature == "income"
        and r.window_start_ms == START + 120_000
    )
    assert 0.2 * minute < last["wasserstein"].value < 0.5 * minute


def test_thresholds_from_the_config_and_from_calibration() -> None:
    raws, _ = events(minutes=3, per_minute=600, drift_minute=2)
    relaxed = Pipeline({("credit", "3"): profile()}, thresholds={"credit": {"income": {"wasserstein": 10.0}}})
    findings = relaxed.process(raws).findings + relaxed.flush().findings
    assert not [f for f in findings if f.kind == "drift"]  # the override silenced income
    calibrated = Pipeline({("credit", "3"): profile()}, calibrate_for=600)
    first, last = calibrated.process(raws), calibrated.flush()
    rows, findings = first.rows + last.rows, first.findings + last.findings
    limits = {m: {r.threshold for r in rows if r.metric == m and r.feature == "income"} for m in ("psi", "wasserstein")}
    # Windows of 600 values: Wasserstein's noise is above its default, PSI's on deciles is not.
    assert len(limits["wasserstein"]) == 1 and limits["wasserstein"].pop() > 0.1
    assert limits["psi"] == {0.2}
    # The real shift (two standard deviations in minute 2) still crosses the calibrated threshold.
    assert [(f.feature, f.window_start_ms) for f in findings if f.kind == "drift"] == [("income", START + 120_000)]


def test_quality_is_judged_against_the_reference() -> None:
    raws, _ = events(minutes=3, per_minute=600)
    rows, findings = run(raws, batch=1000)
    quality = [
        (f.feature, f.metric, (f.window_start_ms - START) // 60_000) for f in findings if f.kind == "data_quality"
    ]
    # 8 strings in 600 incomes (1.3%) break the 1% type-mismatch limit every minute; 2% missing stays within
    # the training rate (0%) plus 5 points, and no other feature has quality issues.
    assert quality == [("income", "type_mismatch_rate", minute) for minute in range(3)]
    missing = next(r for r in rows if r.metric == "missing_rate" and r.feature == "income")
    assert missing.threshold == pytest.approx(0.05)


def test_a_window_whose_labels_trickle_in_is_reported_again_at_most_once_per_interval() -> None:
    """One window's predictions, then a label for one of them in each later minute: with an interval of
    five minutes the window goes out when it first has labels, then every five minutes, then at the end."""
    encoder = Encoder(clock_ms=now_ms)
    raws = [
        encoder.prediction("credit", "3", f"p{i}", 10.0, {}, 1, 0.5, "production", "ok", None, None, None, START + i)
        for i in range(30)
    ]
    for minute in range(1, 21):  # a label and an unrelated prediction (which moves event time) per minute
        at = START + minute * 60_000
        raws.append(encoder.label(model="credit", request_id=f"p{minute}", label=1, timestamp=at))
        raws.append(
            encoder.prediction("credit", "3", f"q{minute}", 10.0, {}, 1, 0.5, "production", "ok", None, None, None, at)
        )

    def handed_out(interval_ms: int, view_ms: int = 0) -> list[int]:
        pipeline = Pipeline({}, performance_interval_ms=interval_ms, performance_view_ms=view_ms)
        minutes = []
        for raw in raws:  # one event at a time: the watermark moves as in a stream
            for partial in pipeline.stage.process([raw]).partials:
                if partial.kind == "performance" and partial.start == START:
                    minutes.append((pipeline.stage.watermark - START) // 60_000)
        minutes += [-1 for p in pipeline.stage.flush().partials if p.kind == "performance" and p.start == START]
        return minutes

    every_window = handed_out(0)
    throttled = handed_out(300_000)
    assert len(every_window) >= 18  # each minute's label, once event time left the window
    assert throttled[-1] == -1 and len(throttled) <= 6  # first, then every 5 minutes, then the flush
    assert all(b - a >= 5 for a, b in itertools.pairwise(throttled[:-1]))
    # Within the performance view's span (what the rules judge), every close still reports it.
    assert handed_out(300_000, view_ms=1_800_000) == every_window
