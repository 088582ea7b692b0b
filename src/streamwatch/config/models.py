"""What the YAML config file describes: models, alert rules and channels.

This is the shape later issues fill in (drift thresholds, rule evaluation,
notification delivery). It is validated now so that a config written today
keeps working, and so that mistakes are caught when the file is loaded, not
when the first alert should have fired.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from streamwatch.config.durations import Duration, parse_duration
from streamwatch.config.rules import AlertingConfig, Condition, RuleConfig
from streamwatch.contract.events import Key, Name

__all__ = [
    "AlertingConfig",
    "AlertmanagerChannel",
    "Channel",
    "Condition",
    "FeatureConfig",
    "ModelConfig",
    "PagerDutyChannel",
    "RuleConfig",
    "SLOConfig",
    "SlackChannel",
    "WebhookChannel",
    "check_references",
    "http_url",
    "parse_duration",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _monitored(value: bool) -> bool:
    # Accepted and ignored, `monitor: false` left a feature monitored while its config said otherwise.
    if not value:
        raise ValueError("not supported: every feature of the reference is monitored (profile without the column)")
    return value


def _no_kind(value: str | None) -> str | None:
    if value is not None:
        raise ValueError("not supported: a feature's kind is the reference profile's (numeric or categorical)")
    return value


class FeatureConfig(_Strict):
    """Per-feature overrides: drift thresholds. Every feature in the reference is monitored, as its profile says."""

    kind: Annotated[Literal["numeric", "categorical"] | None, AfterValidator(_no_kind)] = Field(
        None, description="Not supported: the kind is the reference profile's. Setting it is an error."
    )
    monitor: Annotated[bool, AfterValidator(_monitored)] = Field(
        True, description="Not supported: every feature of the reference is monitored. `false` is an error."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Drift metric name -> threshold.")


class SLOConfig(_Strict):
    """'target of requests succeed within latency_ms over period', e.g. 99.9% within 300 ms over 30 days."""

    latency_ms: float = Field(300.0, gt=0)
    target: float = Field(0.999, gt=0, lt=1)
    period: Duration = timedelta(days=30)
    min_bad_events: int = Field(
        5,
        ge=1,
        description="Bad requests a burn-rate alert's short window (and so its long one) must hold before it "
        "fires: a count of bad requests is what makes a burn rate evidence (one slow request of a canary serving "
        "10 requests a minute is a burn rate of 100 at a 0.999 target).",
    )


class ModelConfig(_Strict):
    """A monitored model: its task, reference profiles per version, slices and SLO."""

    name: Name
    task: Literal["binary_classification", "multiclass_classification", "regression"] = "binary_classification"
    positive_label: bool | int | str = 1
    references: dict[Name, Path] = Field(default_factory=dict, description="model_version -> reference profile.")
    versions: Literal["referenced", "any"] = Field(
        "referenced",
        description="With worker.unknown_models: dead_letter, which versions are monitored: those under "
        "`references` (any, when it lists none), or `any` (a canary without a reference of its own, say).",
    )
    segments: list[Key | list[Key]] = Field(
        default_factory=list, description="Slices: a segment name, or a list of names for an intersection."
    )
    features: dict[Key, FeatureConfig] = Field(default_factory=dict)
    slo: SLOConfig | None = None
    baseline: dict[Name, float] = Field(
        default_factory=dict,
        description="Performance measured on validation data (metric -> value), for rules with `drop`.",
    )


def http_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; a ``ValueError`` that does not quote it otherwise.

    Channel URLs can carry secrets (Slack's and webhooks' paths), so the error says what is wrong, not the URL.

    >>> http_url("https://hooks.example.com/services/T0/B0/x")
    'https://hooks.example.com/services/T0/B0/x'
    >>> http_url("hooks.example.com/x")
    Traceback (most recent call last):
    ...
    ValueError: must be an http:// or https:// URL
    """
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("must be a URL without spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (parsing the port raises on a bad one)
    except ValueError:
        raise ValueError("must be a well-formed URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    return url


def _secret_http_url(value: SecretStr) -> SecretStr:
    http_url(value.get_secret_value())
    return value


#: A channel URL: an absolute http(s) URL with a host, checked at load; the secret kind never printed.
HttpUrl = Annotated[str, AfterValidator(http_url)]
SecretHttpUrl = Annotated[SecretStr, AfterValidator(_secret_http_url)]


class _Channel(_Strict):
    name: Name
    send_resolved: bool = Field(True, description="Also notify when the alerts of a group resolve.")


class SlackChannel(_Channel):
    """A Slack incoming webhook; the URL is a secret."""

    type: Literal["slack"]
    webhook_url: SecretHttpUrl


class PagerDutyChannel(_Channel):
    """PagerDuty Events API v2: one event per alert, ``dedup_key`` is the alert's fingerprint."""

    type: Literal["pagerduty"]
    routing_key: SecretStr
    events_url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"


class WebhookChannel(_Channel):
    """Any HTTP endpoint: the notification as JSON, signed with HMAC-SHA256 over timestamp and body."""

    type: Literal["webhook"]
    url: SecretHttpUrl
    signing_secret: SecretStr = Field(description="HMAC-SHA256 key; receivers verify the signature with it.")


class AlertmanagerChannel(_Channel):
    """An Alertmanager's API v2 (``url`` is its base, e.g. ``http://alertmanager:9093``)."""

    type: Literal["alertmanager"]
    url: HttpUrl

    valid_for: Duration = Field(
        timedelta(hours=5),
        description="endsAt of a firing alert, from when it is sent: Alertmanager resolves an alert that is not "
        "sent again by then, so keep it above alerting.repeat_interval (streamwatch re-sends at each repeat).",
    )


Channel = Annotated[SlackChannel | PagerDutyChannel | WebhookChannel | AlertmanagerChannel, Field(discriminator="type")]


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
        for channel in rule.channels or ():
            if channel not in known:
                raise ValueError(f"rules[{rule.name!r}].channels: unknown channel {channel!r}")
