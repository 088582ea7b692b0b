"""Retired model versions leave the reporter's and the alert rules' state."""

from __future__ import annotations

from streamwatch.alerts.engine import Alerting
from streamwatch.clock import now_ms
from streamwatch.config.models import RuleConfig
from streamwatch.config.rules import AlertingConfig
from streamwatch.contract.encode import Encoder
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.pipeline import Pipeline

DAY = 86_400_000
START = 1_795_000_020_000 - 1_795_000_020_000 % 60_000
ENCODER = Encoder(clock_ms=now_ms)


def events(version: str, start: int, n: int = 120) -> list[bytes]:
    return [
        ENCODER.prediction(
            "credit",
            version,
            f"{version}-{start}-{i}",
            10.0 + i,
            {"x": 1.0},
            1,
            0.5,
            "production",
            "error" if i % 3 == 0 else "ok",
            None,
            None,
            None,
            start + i * 1_000,
            None,
        )
        for i in range(n)
    ]


def test_a_version_without_windows_for_a_week_is_forgotten_and_the_state_shrinks() -> None:
    pipeline = Pipeline(rolling_windows=10)
    pipeline.process(events("1", START) + events("2", START))
    pipeline.process(events("2", START + 3 * DAY))
    before = len(state_codec.dumps(pipeline.reporter.state()))
    assert pipeline.reporter.retire(START + 2 * DAY) == [("credit", "1", "production")]
    assert all(key[1] == "2" for key in pipeline.reporter.state()["recent"])
    assert all(key[1] == "2" for key in pipeline.reporter.state()["slo"])
    assert all(key[0][1] == "2" for key in pipeline.reporter.state()["detectors"])
    assert len(state_codec.dumps(pipeline.reporter.state())) < before
    assert pipeline.reporter.retire(START + 2 * DAY) == []  # version 2 had a window since


def test_retiring_keeps_firing_series_and_forgets_the_others() -> None:
    when = {"metric": "error_rate", "op": ">", "threshold": 0.2}
    rules = [
        RuleConfig(name="errors-now", kind="slo", when=when),
        RuleConfig(name="errors-slow", kind="slo", when=when, **{"for": 10}),  # still pending after a window
    ]
    alerting = Alerting(rules, {}, AlertingConfig(default_rules=False), {}, window_ms=60_000)
    pipeline = Pipeline()
    out = pipeline.process(events("1", START))
    out.rows += pipeline.process(events("1", START + 120_000, 3)).rows
    alerting.report(out.rows + out.view, out.findings, None, None)
    statuses = sorted((s.id.rule, s.status) for s in alerting.engine.state()["series"].values())
    assert statuses == [("errors-now", "firing"), ("errors-slow", "pending")]
    assert alerting.retire(START + DAY) == 1
    assert [s.id.rule for s in alerting.engine.state()["series"].values()] == ["errors-now"]  # until it resolves
