"""Alert rules and alerting behaviour as the YAML file writes them.

A rule judges one window at a time. Its condition is either

- a **metric** row against a threshold (``{metric: psi, op: ">", threshold: 0.2}``);
  without ``threshold`` the row's own threshold is used, which for drift and
  quality is the one calibrated on the reference profile;
- a metric against the model's configured ``baseline`` minus ``drop``
  (``{metric: roc_auc, drop: 0.05}``): a performance drop against the reference; rows that carry
  their reference's own figure as ``threshold`` (``estimated_*``) are measured from it when no
  baseline is configured;
- a slice's **parity** gap (``{metric: fpr, parity: true, threshold: 0.1}``): how
  far one slice's rate is from the best slice of the same segment, so that only
  the slice that is worse alerts, and only when the two slices' confidence
  intervals do not overlap (enough samples to tell);
- a **finding** of a kind (``{finding: drift}``): the core's own judgement, with
  its calibrated thresholds and its minimum sample sizes.

``for`` is the number of consecutive windows the condition must hold, or a
duration (``10m``) that is turned into windows of the configured size.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from streamwatch.config.durations import Duration, NonNegativeDuration, parse_duration
from streamwatch.contract.events import AlertKind, Key, Name, Severity, Variant

__all__ = ["AlertingConfig", "Condition", "RuleConfig"]

FindingKind = Literal["drift", "data_quality", "performance", "fairness", "slo", "divergence", "change"]


# Where the documentation site is served when built locally (README "Documentation"): runbook links and the CLI's
# errors point into it. Set alerting.docs_url (STREAMWATCH_ALERTING__DOCS_URL) to where you host it.
DEFAULT_DOCS_URL = "http://localhost:8000"
DOCS_URL_ENV = "STREAMWATCH_ALERTING__DOCS_URL"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """What makes one window breach (see the module's docstring)."""

    metric: Name | None = Field(None, description="A metric row's name; with `finding`, the finding's metric.")
    finding: FindingKind | None = Field(None, description="Breach when the core reports a finding of this kind.")
    finding_severity: Severity | None = Field(None, description="Only findings of this severity (SLO page/ticket).")
    op: Literal[">", ">=", "<", "<="] | None = Field(None, description="Default `>`, or `<` with `drop`.")
    threshold: float | None = Field(None, description="Default: the row's own (reference-calibrated) threshold.")
    drop: float | None = Field(None, gt=0, description="Breach below the model's baseline minus this.")
    parity: bool = Field(False, description="Judge the gap between a slice and the best slice of its segment.")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        if self.finding is None and self.metric is None:
            raise ValueError("needs `metric` or `finding`")
        if self.finding is not None and (self.threshold is not None or self.drop is not None or self.parity):
            raise ValueError("a `finding` condition takes no threshold, drop or parity: the finding is the judgement")
        if self.drop is not None and (self.threshold is not None or self.parity):
            raise ValueError("`drop` is measured from the model's baseline: give no threshold or parity with it")
        if self.parity and self.threshold is None:
            raise ValueError("`parity` needs a threshold: the largest gap tolerated")
        if self.finding is None and self.finding_severity is not None:
            raise ValueError("`finding_severity` needs `finding`")
        return self

    @property
    def comparison(self) -> str:
        return self.op or ("<" if self.drop is not None else ">")


#: The most windows ``for`` may count: beyond it, a rule could never fire.
MAX_FOR_WINDOWS = 1_000_000


def _windows_or_duration(value: Any) -> int | timedelta:
    """``for``: a count of windows (1 to :data:`MAX_FOR_WINDOWS`) or a duration, one clear error for either."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()) if len(value.strip()) <= 20 else MAX_FOR_WINDOWS + 1
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= MAX_FOR_WINDOWS:
            return value
        raise ValueError(f"must be a number of windows from 1 to {MAX_FOR_WINDOWS}, or a duration such as 10m")
    return parse_duration(value)


WindowsOrDuration = Annotated[int | timedelta, BeforeValidator(_windows_or_duration)]


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
    for_windows: WindowsOrDuration = Field(
        1,
        validation_alias=AliasChoices("for", "for_windows"),
        description="Consecutive windows the condition must hold before firing, or a duration such as 10m.",
    )
    view: Literal["tumbling", "performance"] = Field(
        "tumbling",
        description="What the rule judges: each tumbling window, or the performance view (the predictions of "
        "the trailing `windows.performance_view_ms`, for rules that need many labelled samples).",
    )
    severity: Severity = "warning"
    labels: dict[Key, str] = Field(default_factory=dict)
    runbook_url: str | None = None
    channels: list[Name] | None = Field(None, description="Channels to notify; unset: every configured channel.")
    group_by: list[Key] | None = Field(None, description="Labels alerts are grouped by; unset: alerting.group_by.")
    actions: list[Literal["retrain", "circuit_break"]] = Field(default_factory=list)

    def windows_needed(self, window_ms: int) -> int:
        """``for`` in windows of ``window_ms``.

        >>> RuleConfig(name="r", kind="drift", when={"finding": "drift"}, **{"for": "5m"}).windows_needed(60_000)
        5
        """
        if isinstance(self.for_windows, timedelta):
            return max(1, -(-int(self.for_windows.total_seconds() * 1000) // window_ms))
        return self.for_windows


class RetrainConfig(_Strict):
    cooldown: Duration = Field(timedelta(hours=6), description="Per model version, between two retrain events.")
    min_data: Duration = Field(timedelta(days=7), description="The suggested training range spans at least this.")


class AlertingConfig(_Strict):
    """How alerts are grouped, repeated, linked and acted on (the YAML file's ``alerting:`` section)."""

    default_rules: bool = Field(True, description="Add the built-in rules (a rule of the same name replaces one).")
    false_alerts_per_week: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="The false-alert budget per model: the default rules' thresholds are set so that stationary "
        "traffic fires about this many alerts a week, whatever the number of features, slices and windows.",
    )
    group_by: list[Key] = Field(default_factory=lambda: ["rule", "model", "model_version", "variant"])
    group_wait: NonNegativeDuration = Field(
        timedelta(seconds=30), description="Wait before a new group's first notification."
    )
    group_interval: NonNegativeDuration = Field(
        timedelta(minutes=5), description="Wait before notifying a group's changes."
    )
    repeat_interval: Duration = Field(timedelta(hours=4), description="Remind of a group that keeps firing.")
    dashboard_url: str | None = Field(
        "http://localhost:3000/d/streamwatch-model/streamwatch-model?var-model={model}&var-version={model_version}"
        "&var-variant={variant}&from={window_start}&to={window_end}",
        description="Grafana link put on every alert; {model}, {model_version}, {variant}, {window_start}, "
        "{window_end} (epoch ms) are filled in.",
    )
    docs_url: str | None = Field(
        DEFAULT_DOCS_URL,
        description="The documentation site (`make docs` builds it; `python -m http.server -d site 8000` serves it "
        "there). An alert whose rule has no runbook_url links to the rule's page, {docs_url}/reference/rules/#<rule>, "
        "for a built-in rule, and to its metric's entry in the metric catalogue otherwise. None: no link.",
    )
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    circuit_break: bool = Field(
        False, description="Publish circuit_break control events for rules that ask. Off: such rules only alert."
    )
    delivery_timeout: Duration = Field(timedelta(seconds=10), description="Per HTTP request to a channel.")
    delivery_max_age: Duration = Field(timedelta(hours=24), description="Give up retrying a notification after.")
    outbox_max_age: Duration = Field(
        timedelta(hours=24),
        description="The dispatcher skips (and counts) an outbox notification created longer ago than this, "
        "e.g. when a new consumer group reads the outbox from its beginning.",
    )
