"""Retrain requests (one per model version and report, with a cooldown) and circuit-break events."""

from __future__ import annotations

from typing import Any

from streamwatch.alerts.actions import ActionPlanner
from streamwatch.config.rules import RetrainConfig, RuleConfig
from streamwatch.contract.events import AlertEvent, parse_event

HOUR = 3_600_000
RULES = {
    "drift": RuleConfig(name="drift", kind="drift", when={"finding": "drift"}, actions=["retrain"]),
    "auc": RuleConfig(
        name="auc", kind="performance", when={"metric": "roc_auc", "drop": 0.05}, actions=["retrain", "circuit_break"]
    ),
    "quiet": RuleConfig(name="quiet", kind="drift", when={"finding": "drift"}),
}


def alert(rule: str, end: int, status: str = "firing", **fields: Any) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "event_id": f"{rule}{end}{status}",
            "timestamp": end,
            "fingerprint": f"fp-{rule}-{fields.get('feature')}",
            "rule": rule,
            "kind": RULES[rule].kind,
            "severity": "warning",
            "status": status,
            "model": "credit",
            "model_version": "3",
            "reason": f"{rule} breached",
            "window": {"start": end - 60_000, "end": end},
            "starts_at": end - 120_000,
            "lineage": {"data_uri": "s3://train.parquet"},
            **fields,
        }
    )


def test_one_request_per_version_with_every_feature_and_metric_then_a_cooldown() -> None:
    planner = ActionPlanner(RULES, RetrainConfig(cooldown="6h", min_data="7d"))
    end = 30 * 24 * HOUR
    alerts = [
        alert("drift", end, feature="income", metric="psi", value=0.4, threshold=0.2),
        alert("drift", end, feature="age", metric="psi", value=0.3, threshold=0.2),
        alert("auc", end, metric="roc_auc", value=0.8, threshold=0.85),
        alert("quiet", end, feature="zip", metric="psi", value=0.9, threshold=0.2),
        alert("drift", end, "pending", feature="tenure", metric="psi", value=0.5, threshold=0.2),
    ]
    [request] = planner.retrain(alerts)
    assert request.evidence == {
        "features": {
            "income": {"metric": "psi", "value": 0.4, "threshold": 0.2},
            "age": {"metric": "psi", "value": 0.3, "threshold": 0.2},
        },
        "metrics": {"roc_auc": {"value": 0.8, "threshold": 0.85}},
    }
    assert int(request.suggested_data_end.timestamp() * 1000) == end
    assert int(request.suggested_data_start.timestamp() * 1000) == end - 7 * 24 * HOUR
    assert request.lineage == {"data_uri": "s3://train.parquet"} and len(request.alert_fingerprints) == 3
    assert parse_event(request.model_dump_json(), any_type=True) == request
    assert planner.retrain([alert("drift", end + 5 * HOUR, feature="income")]) == []
    assert planner.suppressed == 1
    assert len(planner.retrain([alert("drift", end + 6 * HOUR, feature="income")])) == 1


def test_circuit_breaks_only_when_switched_on_open_then_closed() -> None:
    end = 10 * HOUR
    fired, resolved = alert("auc", end, metric="roc_auc"), alert("auc", end + HOUR, "resolved", metric="roc_auc")
    assert ActionPlanner(RULES, RetrainConfig()).circuit_breaks([fired]) == []
    on = ActionPlanner(RULES, RetrainConfig(), circuit_break=True)
    events = on.circuit_breaks([fired, alert("drift", end), resolved])
    assert [(e.state, e.rule, e.model_version) for e in events] == [("open", "auc", "3"), ("closed", "auc", "3")]
