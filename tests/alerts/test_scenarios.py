"""The built-in rules on replayed scenarios, through the real pipeline: quiet when nothing is wrong, precise when
something is (the right rule, for the right feature, slice or variant, within its `for` windows, then resolved)."""

from __future__ import annotations

from pathlib import Path

from streamwatch.alerts.engine import Alerting
from streamwatch.config.settings import load_settings
from streamwatch.contract.events import AlertEvent, RetrainEvent
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.replay.export import ExportSink
from streamwatch.replay.run import replay
from tests.pipeline.test_pipeline import START, profile
from tests.scenarios import traffic

MINUTE = 60_000


def judge(raws: list[bytes], batch: int = 1000) -> list[AlertEvent]:
    settings = load_settings(
        models=[{"name": "credit", "segments": ["gender"], "slo": {"latency_ms": 300, "target": 0.99}}],
        windows={"rolling_windows": 0},
    )
    profiles = {("credit", "3"): profile()}
    pipeline = pipeline_from_settings(settings, profiles)
    alerting = Alerting(settings.rules, {}, settings.alerting, profiles, settings.models, pipeline.window_ms)
    alerts = []
    for start in range(0, len(raws), batch):
        out = pipeline.process(raws[start : start + batch])
        alerts += alerting.report(out.rows + out.view, out.findings, out.examples, None).alerts
    out = pipeline.flush()
    return alerts + alerting.report(out.rows + out.view, out.findings, out.examples, None).alerts


def minute(alert: AlertEvent) -> int:
    assert alert.window is not None
    return int((alert.window.start.timestamp() * 1000 - START) // MINUTE)


def test_a_stationary_stream_raises_nothing() -> None:
    alerts = judge(traffic(minutes=8))
    assert [a for a in alerts if a.status != "pending"] == []
    # Pending is not raised (nothing is notified); only single-window drift noise may get that far.
    assert {(a.rule, a.status) for a in alerts} <= {("feature-drift", "pending")}


def test_an_injected_drift_fires_within_its_for_windows_carries_its_evidence_and_resolves() -> None:
    raws = traffic(minutes=9, drift_minutes=range(3, 6))
    income = [a for a in judge(raws) if a.feature == "income"]
    assert [(a.rule, a.status, minute(a)) for a in income] == [
        ("feature-drift", "pending", 3),
        ("feature-drift", "firing", 4),  # for: 2 windows
        ("feature-drift", "resolved", 6),  # the first window back to normal
    ]
    firing = income[1]
    assert firing.kind == "drift" and firing.metric == "wasserstein" and firing.value > firing.threshold
    assert firing.example_request_ids == [f"m04-{i:04d}" for i in range(5)]
    assert firing.lineage["content_sha256"] == "f" * 64 and firing.lineage["data_uri"] == "train.parquet"
    assert firing.dashboard_url is not None and "var-model=credit" in firing.dashboard_url
    assert income[0].fingerprint == income[1].fingerprint == income[2].fingerprint
    assert all(a.rule != "feature-drift" or a.feature != "income" for a in judge(traffic(minutes=9)))


def test_the_replay_export_carries_alerts_and_the_retrain_request(tmp_path: Path) -> None:
    # Two of the three features drift at once: drifted-share (half or more) fires and asks for a retrain.
    raws = [
        raw.replace(b'"region":"north"', b'"region":"south"') if b'"request_id":"m04' in raw else raw
        for raw in traffic(minutes=7, drift_minutes=[4])
    ]
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(raws) + b"\n")
    settings = load_settings(windows={"rolling_windows": 0})
    profiles = {("credit", "3"): profile()}
    pipeline = pipeline_from_settings(settings, profiles)
    alerting = Alerting([], {}, settings.alerting, profiles, window_ms=pipeline.window_ms)
    with ExportSink(tmp_path / "out") as sink:
        summary = replay([source], profiles, pipeline, [sink], alerting=alerting)
    alerts = [
        AlertEvent.model_validate_json(line) for line in (tmp_path / "out/alerts.jsonl").read_bytes().splitlines()
    ]
    shares = [(a.status, minute(a)) for a in alerts if a.rule == "drifted-share"]
    assert shares == [("firing", 4), ("resolved", 5)] and all(a.kind for a in alerts)
    [retrain] = [
        RetrainEvent.model_validate_json(x) for x in (tmp_path / "out/retrain.jsonl").read_bytes().splitlines()
    ]
    assert retrain.model == "credit" and retrain.model_version == "3" and retrain.evidence["metrics"]["drifted_share"]
    assert retrain.windows[0].start.timestamp() * 1000 == START + 4 * MINUTE
    assert summary.retrain == 1 and summary.alerts["firing"] >= 1


def test_a_slice_with_a_worse_false_positive_rate_raises_the_fairness_alert_for_that_slice_alone() -> None:
    alerts = judge(traffic(minutes=6, biased_minutes=range(6)))
    fpr = [(a.status, a.variant, a.segment) for a in alerts if a.rule == "slice-fpr-gap"]
    production = [(s, seg) for s, variant, seg in fpr if variant == "production"]
    assert production[:2] == [("pending", {"gender": "F"}), ("firing", {"gender": "F"})]
    assert {seg["gender"] for _, seg in production} == {"F"}  # never M, never the whole population
    assert all(a.kind == "fairness" for a in alerts if a.rule == "slice-fpr-gap")
    assert [a for a in judge(traffic(minutes=6)) if a.kind == "fairness"] == []


def test_a_canary_latency_regression_raises_the_slo_burn_alert_for_the_canary_alone() -> None:
    alerts = judge(traffic(minutes=6, slow_canary_minutes=range(2, 6)))
    slo = {(a.rule, a.status, a.model_version, a.variant) for a in alerts if a.kind == "slo"}
    # The page only: six minutes of history are no evidence for the ticket's one-day window (core.slo).
    assert slo == {("slo-burn-page", "firing", "4", "canary")}
    page = next(a for a in alerts if a.rule == "slo-burn-page")
    # The slow windows burn the budget at once, and the page fires once the history covers its 5-minute
    # short window (minute 4 of a stream that starts at minute 0).
    assert page.severity == "critical" and minute(page) == 4
    latency = [a for a in alerts if a.rule == "divergence-latency" and a.status == "firing"]
    assert [(a.variant, a.segment) for a in latency] == [("canary", {"production_version": "3"})]
