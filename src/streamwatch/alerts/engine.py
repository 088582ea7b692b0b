"""From a report's rows and findings to everything alerting sends: one pure step, shared by workers and replay.

:class:`Alerting` strings together the rule engine (transitions), the alert
events with their lineage and dashboard link, the router (grouped, silenced
notifications) and the action planner (retrain and circuit-break events).
Publishing them is the caller's business: the worker's report runner sends
them to Kafka and ClickHouse, ``streamwatch replay`` writes them to files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamwatch.alerts.actions import ActionPlanner
from streamwatch.alerts.defaults import with_defaults
from streamwatch.alerts.events import alert_event
from streamwatch.alerts.notification import Notification
from streamwatch.alerts.observations import SeriesId
from streamwatch.alerts.routing import AlertRouter, RouterGroup
from streamwatch.alerts.rules import RuleEngine, RuleSeries
from streamwatch.config.models import ModelConfig
from streamwatch.config.rules import AlertingConfig, RuleConfig
from streamwatch.contract.events import AlertEvent, CircuitBreakEvent, RetrainEvent
from streamwatch.core.records import Finding, MetricRow
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["STATE_TYPES", "Alerting", "AlertingOutput"]

#: The alerting's classes that a reporter checkpoint holds, under stable names. The runtime, which
#: checkpoints them, registers them with the state format (the pipeline may not import the alerting).
STATE_TYPES: Mapping[str, type] = {
    "alerts.RuleSeries": RuleSeries,
    "alerts.SeriesId": SeriesId,
    "alerts.RouterGroup": RouterGroup,
}


@dataclass
class AlertingOutput:
    alerts: list[AlertEvent] = field(default_factory=list)
    retrain: list[RetrainEvent] = field(default_factory=list)
    circuit_breaks: list[CircuitBreakEvent] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.retrain or self.circuit_breaks or self.notifications)


class Alerting:
    """Rules, routing and actions over reports.

    Parameters
    ----------
    rules
        The configured rules (the built-in ones are added unless ``config.default_rules`` is off).
    channels
        Channel name -> whether it wants resolve notifications.
    config
        The ``alerting:`` section.
    profiles
        Reference profiles per (model, version), for the lineage alerts carry.
    models
        The configured models, for their performance baselines.
    window_ms
        The tumbling window size.
    """

    def __init__(
        self,
        rules: Sequence[RuleConfig],
        channels: Mapping[str, bool],
        config: AlertingConfig,
        profiles: Mapping[tuple[str, str], ReferenceProfile],
        models: Sequence[ModelConfig] = (),
        window_ms: int = 60_000,
    ) -> None:
        self.config = config
        self.rules = with_defaults(rules, config.default_rules)
        self.profiles = profiles
        by_name = {rule.name: rule for rule in self.rules}
        self.engine = RuleEngine(self.rules, window_ms, {m.name: m.baseline for m in models})
        self.router = AlertRouter(by_name, channels, config)
        self.actions = ActionPlanner(by_name, config.retrain, config.circuit_break)

    def report(
        self,
        rows: Sequence[MetricRow],
        findings: Sequence[Finding],
        examples: Mapping[Any, Sequence[str]] | None,
        now_ms: int | None,
        silenced: Callable[[dict[str, str]], bool] = lambda labels: False,
    ) -> AlertingOutput:
        """Judge one report; ``now_ms`` (wall clock) drives notifications, ``None`` makes none (replay)."""
        out = AlertingOutput()
        for transition in self.engine.evaluate(rows, findings, examples):
            profile = self.profiles.get((transition.model, transition.model_version))
            lineage = {k: str(v) for k, v in profile.lineage.model_dump().items() if v is not None} if profile else {}
            out.alerts.append(alert_event(transition, lineage, self.config.dashboard_url, self.config.docs_url))
        out.retrain = self.actions.retrain(out.alerts)
        out.circuit_breaks = self.actions.circuit_breaks(out.alerts)
        if now_ms is not None:
            # One transition at a time: with no group wait, an alert that fired and resolved within one
            # report (a backlog caught up) is announced, then resolved, rather than never heard of.
            for alert in out.alerts:
                self.router.add([alert], now_ms)
                out.notifications += self.router.due(now_ms, silenced)
            out.notifications += self.router.due(now_ms, silenced)
        return out

    def tick(self, now_ms: int, silenced: Callable[[dict[str, str]], bool] = lambda labels: False) -> AlertingOutput:
        """Notifications that came due with time alone (group waits, intervals, repeats)."""
        return AlertingOutput(notifications=self.router.due(now_ms, silenced))

    def retire(self, before_ms: int) -> int:
        """Forget rule series of windows before ``before_ms`` that are not firing (see ``RuleEngine.retire``)."""
        return self.engine.retire(before_ms)

    def state(self) -> dict[str, Any]:
        return {"rules": self.engine.state(), "router": self.router.state(), "actions": self.actions.state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.engine.restore(state["rules"])
        if "router" in state:
            self.router.restore(state["router"])
            self.actions.restore(state["actions"])
