"""What the YAML config file describes: models, alert rules and channels.

This is the shape later issues fill in (drift thresholds, rule evaluation,
notification delivery). It is validated now so that a config written today
keeps working, and so that mistakes are caught when the file is loaded, not
when the first alert should have fired.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from .events import AlertKind, Key, Name, Severity, Variant

__all__ = [
    "AlertmanagerChannel",
    "Channel",
    "FeatureConfig",
    "ModelConfig",
    "PagerDutyChannel",
    "RuleConfig",
    "SLOConfig",
    "SlackChannel",
    "WebhookChannel",
    "check_references",
    "parse_duration",
]

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """Parse ``"5m"``, ``"1h"``, ``"30d"``: the notation of Prometheus and Sloth.

    >>> parse_duration("90s"), parse_duration("30d").days
    (datetime.timedelta(seconds=90), 30)
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and (match := _DURATION.match(value.strip())):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds > 0:
            return timedelta(seconds=seconds)
    raise ValueError("must be a positive duration such as 500ms, 30s, 5m, 1h, 30d or 2w")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureConfig(_Strict):
    """Per-feature overrides; by default every feature in the reference is monitored."""

    kind: Literal["numeric", "categorical"] | None = Field(None, description="Override the inferred kind.")
    monitor: bool = True
    thresholds: dict[str, float] = Field(default_factory=dict, description="Drift metric name -> threshold.")


class SLOConfig(_Strict):
    """'target of requests succeed within latency_ms over period', e.g. 99.9% within 300 ms over 30 days."""

    latency_ms: float = Field(300.0, gt=0)
    target: float = Field(0.999, gt=0, lt=1)
    period: Duration = timedelta(days=30)


class ModelConfig(_Strict):
    """A monitored model: its task, reference profiles per version, slices and SLO."""

    name: Name
    task: Literal["binary_classification", "multiclass_classification", "regression"] = "binary_classification"
    positive_label: bool | int | str = 1
    references: dict[Name, Path] = Field(default_factory=dict, description="model_version -> reference profile.")
    segments: list[Key | list[Key]] = Field(
        default_factory=list, description="Slices: a segment name, or a list of names for an intersection."
    )
    features: dict[Key, FeatureConfig] = Field(default_factory=dict)
    slo: SLOConfig | None = None


class Condition(_Strict):
    metric: Name
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float


class RuleConfig(_Strict):
    """An alert rule. Selectors left empty match everything."""

    name: Name
    kind: AlertKind
    model: Name | None = None
    model_version: Name | None = None
    variant: Variant | None = None
    feature: Key | None = None
    segment: dict[Key, str] | None = None
    when: Condition
    for_windows: int = Field(1, ge=1, description="Consecutive windows the condition must hold before firing.")
    severity: Severity = "warning"
    labels: dict[Key, str] = Field(default_factory=dict)
    runbook_url: str | None = None
    channels: list[Name] = Field(default_factory=list)
    actions: list[Literal["retrain", "circuit_break"]] = Field(default_factory=list)


class SlackChannel(_Strict):
    name: Name
    type: Literal["slack"]
    webhook_url: SecretStr


class PagerDutyChannel(_Strict):
    name: Name
    type: Literal["pagerduty"]
    routing_key: SecretStr


class WebhookChannel(_Strict):
    name: Name
    type: Literal["webhook"]
    url: SecretStr
    signing_secret: SecretStr = Field(description="HMAC-SHA256 key; receivers verify the signature with it.")


class AlertmanagerChannel(_Strict):
    name: Name
    type: Literal["alertmanager"]
    url: str


Channel = Annotated[SlackChannel | PagerDutyChannel | WebhookChannel | AlertmanagerChannel, Field(discriminator="type")]


class MonitorConfig(_Strict):
    """The YAML-file part of the settings, checked as a whole."""

    models: list[ModelConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> MonitorConfig:
        check_references(self.models, self.rules, self.channels)
        return self


def check_references(models: list[ModelConfig], rules: list[RuleConfig], channels: list[Any]) -> None:
    """Names are unique per kind, and every channel a rule names exists."""
    for kind, items in (("models", models), ("rules", rules), ("channels", channels)):
        seen: set[str] = set()
        for item in items:
            if item.name in seen:
                raise ValueError(f"{kind}[{item.name!r}]: duplicate name")
            seen.add(item.name)
    known = {c.name for c in channels}
    for rule in rules:
        for channel in rule.channels:
            if channel not in known:
                raise ValueError(f"rules[{rule.name!r}].channels: unknown channel {channel!r}")
