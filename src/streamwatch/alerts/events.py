"""Alert transitions as the contract's alert events and as rows of the ``alerts`` table.

An event's id is derived from the series fingerprint, the status and the
window, so an alert published again after a restart carries the same id and
consumers deduplicate it.

>>> from streamwatch.alerts.rules import Transition
>>> t = Transition("cea38d990326e042", "psi", "drift", "warning", "firing", "credit", "3", "production", "income",
...                (), "psi", 0.4, 0.2, 60_000, 120_000, 0, None, None)
>>> event = alert_event(t, {})
>>> event.status, event.reason
('firing', 'psi of income is 0.4 (> 0.2) for credit 3 production')
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from streamwatch.alerts.defaults import DEFAULT_RULES
from streamwatch.alerts.rules import Transition
from streamwatch.contract.events import AlertEvent, RetrainEvent

__all__ = ["alert_event", "alert_labels", "alert_row", "retrain_row", "runbook_url"]

DEFAULT_RULE_NAMES = frozenset(rule.name for rule in DEFAULT_RULES)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def runbook_url(t: Transition, docs_url: str | None) -> str | None:
    """The rule's own runbook, else its page in the documentation: a built-in rule's entry in the rules reference,
    another rule's metric in the metric catalogue.

    >>> from streamwatch.alerts.rules import Transition
    >>> t = Transition("f", "feature-drift", "drift", "warning", "firing", "m", "1", "production", "income",
    ...                (), "wasserstein", 0.4, 0.2, 60_000, 120_000, 0, None, None)
    >>> runbook_url(t, "https://docs.example.com/streamwatch/")
    'https://docs.example.com/streamwatch/reference/rules/#feature-drift'
    >>> from dataclasses import replace
    >>> runbook_url(replace(t, rule="my-rule"), "https://docs.example.com"), runbook_url(t, None)
    ('https://docs.example.com/reference/metrics/#wasserstein', None)
    """
    if t.runbook_url or not docs_url:
        return t.runbook_url
    base = docs_url.rstrip("/")
    if t.rule in DEFAULT_RULE_NAMES:
        return f"{base}/reference/rules/#{quote(t.rule)}"
    return f"{base}/reference/metrics/#{quote(t.metric)}"


def alert_event(
    t: Transition, lineage: Mapping[str, str], dashboard_url: str | None = None, docs_url: str | None = None
) -> AlertEvent:
    """The alert event of a transition.

    ``lineage`` is the reference profile's, as strings; ``dashboard_url`` a
    template with ``{model}``, ``{model_version}``, ``{variant}``,
    ``{window_start}`` and ``{window_end}`` (epoch ms) placeholders;
    ``docs_url`` the documentation site that :func:`runbook_url` links into.
    """
    link = None
    if dashboard_url:
        # The dashboard opens on the hour before the window, so the change is in view.
        link = dashboard_url.format(
            model=quote(t.model),
            model_version=quote(t.model_version),
            variant=t.variant,
            window_start=t.window_start_ms - 3_600_000,
            window_end=t.window_end_ms,
        )
    limit = f" ({t.op} {t.threshold:g})" if math.isfinite(t.threshold) else ""
    event_id = hashlib.sha256(f"{t.fingerprint}:{t.status}:{t.window_start_ms}".encode()).hexdigest()[:32]
    subject = f"{t.metric} of {t.feature}" if t.feature else t.metric
    where = f"{t.model} {t.model_version} {t.variant}" + "".join(f" {k}={v}" for k, v in t.segment)
    return AlertEvent.model_validate(
        {
            "event_id": event_id,
            "timestamp": t.ends_at_ms if t.ends_at_ms is not None else t.window_end_ms,
            "fingerprint": t.fingerprint,
            "rule": t.rule,
            "kind": t.kind,
            "severity": t.severity,
            "status": t.status,
            "model": t.model,
            "model_version": t.model_version,
            "variant": t.variant,
            "reason": f"{subject} is {t.value:.4g}{limit} for {where}"
            if math.isfinite(t.value)
            else f"{subject} no longer breaches for {where}",
            "metric": t.metric,
            "feature": t.feature,
            "segment": dict(t.segment) or None,
            "value": _finite(t.value),
            "threshold": _finite(t.threshold),
            "window": {"start": t.window_start_ms, "end": t.window_end_ms},
            "starts_at": t.starts_at_ms,
            "ends_at": t.ends_at_ms,
            "lineage": dict(lineage),
            "labels": dict(t.labels),
            "runbook_url": runbook_url(t, docs_url),
            "dashboard_url": link,
            "evidence": _jsonable(t.evidence),
            "example_request_ids": list(t.example_request_ids),
        }
    )


def _jsonable(evidence: Mapping[str, Any]) -> dict[str, Any]:
    # NaN is not JSON: an undefined figure in the evidence becomes null.
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return clean(dict(evidence))


def alert_labels(event: AlertEvent) -> dict[str, str]:
    """The labels an alert is grouped, silenced and routed by.

    >>> from streamwatch.alerts.rules import Transition
    >>> t = Transition("f", "psi", "drift", "warning", "firing", "credit", "3", "canary", "income",
    ...                (("region", "eu"),), "psi", 0.4, 0.2, 0, 60_000, 0, None, None, {"team": "risk"})
    >>> alert_labels(alert_event(t, {}))["region"], alert_labels(alert_event(t, {}))["team"]
    ('eu', 'risk')
    """
    labels = {
        "rule": event.rule,
        "alertname": event.rule,
        "kind": event.kind,
        "severity": event.severity,
        "model": event.model,
        "model_version": event.model_version,
        "variant": event.variant,
        "feature": event.feature or "",
        **(event.segment or {}),
        **event.labels,
    }
    return {k: v for k, v in labels.items() if v}


def alert_row(event: AlertEvent, version: int) -> dict[str, Any]:
    """The ``alerts`` table row of an event (times in epoch ms)."""

    def ms(moment: Any) -> int | None:
        return None if moment is None else int(moment.timestamp() * 1000)

    return {
        "fingerprint": event.fingerprint,
        "rule": event.rule,
        "kind": event.kind,
        "severity": event.severity,
        "status": event.status,
        "model": event.model,
        "model_version": event.model_version,
        "variant": event.variant,
        "feature": event.feature or "",
        "segment": dict(event.segment or {}),
        "value": event.value if event.value is not None else float("nan"),
        "threshold": event.threshold,
        "starts_at": ms(event.starts_at),
        "ends_at": ms(event.ends_at),
        "window_start": ms(event.window.start) if event.window else 0,
        "window_end": ms(event.window.end) if event.window else 0,
        "labels": dict(event.labels),
        "payload": event.model_dump_json(),
        "version": version,
    }


def retrain_row(event: RetrainEvent) -> dict[str, Any]:
    """The ``retrain_events`` table row of a retrain request."""
    return {
        "event_id": event.event_id,
        "model": event.model,
        "model_version": event.model_version,
        "reason": event.reason,
        "created_at": int(event.timestamp.timestamp() * 1000),
        "payload": event.model_dump_json(),
    }
