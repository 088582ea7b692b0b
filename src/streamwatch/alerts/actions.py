"""Actions for downstream jobs: retrain requests and circuit-break control events.

A firing alert whose rule lists ``retrain`` asks for a retrain of its model
version. Alerts of one model version firing in the same report make one
:class:`~streamwatch.contract.events.RetrainEvent`, carrying every drifted feature and
degraded metric with its value. A cooldown per model version (in event time,
so a replay makes the same requests) keeps an incident from becoming a storm.

The suggested training data runs from when the oldest of those alerts started
to the end of the latest window, stretched back to at least ``min_data``: the
data that shows the new behaviour, plus enough history to learn from.

A rule listing ``circuit_break`` makes a :class:`~streamwatch.contract.events.CircuitBreakEvent`
(``open`` when it fires, ``closed`` when it resolves), only when
``alerting.circuit_break`` is on.

>>> from streamwatch.contract.events import AlertEvent
>>> from streamwatch.config.rules import RetrainConfig, RuleConfig
>>> rule = RuleConfig(name="share", kind="drift", when={"metric": "drifted_share"}, actions=["retrain"])
>>> planner = ActionPlanner({"share": rule}, RetrainConfig(cooldown="1h", min_data="1d"))
>>> alert = AlertEvent.model_validate({"event_id": "e", "timestamp": 7_200_000, "fingerprint": "f", "rule": "share",
...     "kind": "drift", "severity": "critical", "status": "firing", "model": "credit", "model_version": "3",
...     "reason": "drifted_share is 0.6", "metric": "drifted_share", "value": 0.6, "threshold": 0.5,
...     "window": {"start": 7_140_000, "end": 7_200_000}, "starts_at": 7_080_000})
>>> [(e.model, e.model_version, e.evidence["metrics"]) for e in planner.retrain([alert])]
[('credit', '3', {'drifted_share': {'value': 0.6, 'threshold': 0.5}})]
>>> planner.retrain([alert])  # within the cooldown
[]
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from streamwatch.config.rules import RetrainConfig, RuleConfig
from streamwatch.contract.events import AlertEvent, CircuitBreakEvent, RetrainEvent
from streamwatch.times import to_ms

__all__ = ["ActionPlanner"]

_SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


class ActionPlanner:
    """Turns alerts into retrain requests (with a cooldown) and circuit-break events."""

    def __init__(self, rules: Mapping[str, RuleConfig], retrain: RetrainConfig, circuit_break: bool = False) -> None:
        self.rules = dict(rules)
        self.config = retrain
        self.circuit_break = circuit_break
        self._last_request: dict[tuple[str, str], int] = {}
        self.suppressed = 0  # retrain requests the cooldown held back

    def _wants(self, alert: AlertEvent, action: str) -> bool:
        rule = self.rules.get(alert.rule)
        return rule is not None and action in rule.actions

    def retrain(self, alerts: Sequence[AlertEvent]) -> list[RetrainEvent]:
        """The retrain requests these alert transitions make."""
        by_version: dict[tuple[str, str], list[AlertEvent]] = {}
        for alert in alerts:
            if alert.status == "firing" and self._wants(alert, "retrain"):
                by_version.setdefault((alert.model, alert.model_version), []).append(alert)
        out = []
        cooldown = int(self.config.cooldown.total_seconds() * 1000)
        for key, group in sorted(by_version.items()):
            end = max(to_ms(a.window.end) if a.window else to_ms(a.timestamp) for a in group)
            last = self._last_request.get(key)
            if last is not None and end < last + cooldown:
                self.suppressed += 1
                continue
            self._last_request[key] = end
            out.append(self._request(group, end))
        return out

    def _request(self, alerts: list[AlertEvent], end: int) -> RetrainEvent:
        first = alerts[0]
        start = min(to_ms(a.starts_at) for a in alerts)
        start = max(0, min(start, end - int(self.config.min_data.total_seconds() * 1000)))
        features: dict[str, Any] = {}
        metrics: dict[str, Any] = {}
        for a in alerts:
            figure = {"value": a.value, "threshold": a.threshold}
            if a.feature:
                features[a.feature] = {"metric": a.metric, **figure}
            else:
                segment = {"segment": a.segment} if a.segment else {}
                metrics[a.metric or a.rule] = figure | segment
        windows = sorted({(a.window.start, a.window.end) for a in alerts if a.window})
        identity = f"{first.model}:{first.model_version}:{end}"
        return RetrainEvent.model_validate(
            {
                "event_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
                "timestamp": end,
                "model": first.model,
                "model_version": first.model_version,
                "severity": max((a.severity for a in alerts), key=_SEVERITY_ORDER.__getitem__),
                "reason": "; ".join(f"{a.rule}: {a.reason}" for a in alerts),
                "alert_fingerprints": [a.fingerprint for a in alerts],
                "evidence": {"features": features, "metrics": metrics},
                "windows": [{"start": s, "end": e} for s, e in windows],
                "lineage": dict(first.lineage),
                "suggested_data_start": start,
                "suggested_data_end": end,
            }
        )

    def circuit_breaks(self, alerts: Sequence[AlertEvent]) -> list[CircuitBreakEvent]:
        """Open on a firing alert whose rule asks for it, close when it resolves; none while switched off."""
        if not self.circuit_break:
            return []
        out = []
        for a in alerts:
            if a.status == "pending" or not self._wants(a, "circuit_break"):
                continue
            state = "open" if a.status == "firing" else "closed"
            identity = f"{a.fingerprint}:{state}:{to_ms(a.timestamp)}"
            out.append(
                CircuitBreakEvent.model_validate(
                    {
                        "event_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
                        "timestamp": to_ms(a.timestamp),
                        "state": state,
                        "model": a.model,
                        "model_version": a.model_version,
                        "variant": a.variant,
                        "reason": a.reason,
                        "alert_fingerprint": a.fingerprint,
                        "rule": a.rule,
                    }
                )
            )
        return out

    def state(self) -> dict[str, Any]:
        return {"last_request": self._last_request}

    def restore(self, state: dict[str, Any]) -> None:
        self._last_request = state["last_request"]
