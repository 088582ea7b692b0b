"""The router: group wait, group interval, repeat interval, resolve notifications, silences, channels."""

from __future__ import annotations

import pickle
from typing import Any

from streamwatch.alerts.routing import AlertRouter
from streamwatch.config.rules import AlertingConfig, RuleConfig
from streamwatch.contract.events import AlertEvent

S = 1000
CONFIG = AlertingConfig(group_wait="30s", group_interval="5m", repeat_interval="4h")


def alert(fp: str, status: str = "firing", rule: str = "psi", model: str = "credit", **fields: Any) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "event_id": f"{fp}-{status}",
            "timestamp": 0,
            "fingerprint": fp,
            "rule": rule,
            "kind": "drift",
            "severity": "warning",
            "status": status,
            "model": model,
            "model_version": "3",
            "reason": "r",
            "starts_at": 0,
            **fields,
        }
    )


def sent(notifications: list[Any]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [(n.channel, n.status, [(a.fingerprint, a.status) for a in n.alerts]) for n in notifications]


def test_group_wait_batches_alerts_then_interval_then_repeat_then_resolve() -> None:
    router = AlertRouter({}, {"slack": True}, CONFIG)
    router.add([alert("a")], now_ms=0)
    router.add([alert("b", feature="income")], now_ms=10 * S)  # same group (rule, model, version, variant)
    assert router.due(29 * S) == []
    first = router.due(30 * S)
    assert sent(first) == [("slack", "firing", [("a", "firing"), ("b", "firing")])]
    router.add([alert("c")], now_ms=40 * S)
    assert router.due(60 * S) == []  # a change waits for the group interval
    assert sent(router.due(330 * S)) == [("slack", "firing", [("a", "firing"), ("b", "firing"), ("c", "firing")])]
    assert router.due(331 * S) == []
    assert len(router.due(330 * S + 4 * 3600 * S)) == 1  # the repeat interval reminds
    router.add([alert("a", "resolved"), alert("b", "resolved"), alert("c", "resolved")], now_ms=15_000 * S)
    resolved = router.due(15_000 * S + 300 * S)
    assert sent(resolved) == [("slack", "resolved", [("a", "resolved"), ("b", "resolved"), ("c", "resolved")])]
    assert router.due(10**9) == [] and router.active() == []
    assert len({n.notification_id for n in first + resolved}) == 2


def test_pending_is_not_notified_and_an_alert_resolved_before_it_was_told_stays_quiet() -> None:
    router = AlertRouter({}, {"slack": True}, CONFIG)
    router.add([alert("a", "pending")], now_ms=0)
    assert router.due(10**6) == []
    router.add([alert("a")], now_ms=0)
    router.add([alert("a", "resolved")], now_ms=5 * S)
    assert router.due(60 * S) == []  # never announced as firing: nothing to resolve


def test_rules_choose_channels_and_grouping_and_channels_may_skip_resolutions() -> None:
    rules = {
        "psi": RuleConfig(name="psi", kind="drift", when={"finding": "drift"}, channels=["pager"]),
        "quiet": RuleConfig(name="quiet", kind="drift", when={"finding": "drift"}, channels=[]),
        "per-feature": RuleConfig(name="per-feature", kind="drift", when={"finding": "drift"}, group_by=["feature"]),
    }
    router = AlertRouter(rules, {"slack": True, "pager": False}, AlertingConfig(group_wait="0s"))
    router.add([alert("a"), alert("q", rule="quiet")], now_ms=0)
    router.add([alert("x", rule="per-feature", feature="income"), alert("y", rule="per-feature", feature="age")], 0)
    out = router.due(0)
    assert sorted((n.channel, n.group_labels.get("feature", "-"), len(n.alerts)) for n in out) == [
        ("pager", "-", 1),
        ("pager", "age", 1),
        ("pager", "income", 1),
        ("slack", "age", 1),
        ("slack", "income", 1),
    ]
    router.add([alert("a", "resolved")], now_ms=1 * S)
    assert router.due(10**7) == []  # the pager channel does not want resolutions


def test_silenced_alerts_are_not_notified_until_the_silence_ends() -> None:
    router = AlertRouter({}, {"slack": True}, AlertingConfig(group_wait="0s"))
    router.add([alert("a", model="credit"), alert("b", model="fraud")], now_ms=0)
    muted = {"credit"}
    out = router.due(0, silenced=lambda labels: labels["model"] in muted)
    assert sent(out) == [("slack", "firing", [("b", "firing")])]
    muted.clear()
    assert sent(router.due(1)) == [("slack", "firing", [("a", "firing")])]


def test_state_survives_a_restart() -> None:
    router = AlertRouter({}, {"slack": True}, CONFIG)
    router.add([alert("a")], now_ms=0)
    restored = AlertRouter({}, {"slack": True}, CONFIG)
    restored.restore(pickle.loads(pickle.dumps(router.state())))  # as a checkpoint carries it
    assert [n.notification_id for n in restored.due(30 * S)] == [n.notification_id for n in router.due(30 * S)]
