"""What each channel type is sent: Slack Block Kit, PagerDuty Events v2, a signed webhook, Alertmanager v2.

Pure: these functions only build request bodies (and the webhook's signature);
:mod:`streamwatch.adapters.http` sends them. A webhook receiver verifies a request with
:func:`verify_webhook`:

>>> from streamwatch.alerts.notification import Notification
>>> n = Notification(notification_id="n1", channel="hooks", group_key="k", created_at=0, alerts=[])
>>> body, headers = webhook_request(n, "s3cret", timestamp_s=1_800_000_000)
>>> sig = headers["X-Streamwatch-Signature"]
>>> verify_webhook("s3cret", body, "1800000000", sig, now_s=1_800_000_010)
True
>>> verify_webhook("s3cret", body + b" ", "1800000000", sig, now_s=1_800_000_010)  # tampered
False
>>> verify_webhook("s3cret", body, "1800000000", sig, now_s=1_800_009_999)  # replayed later
False
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from streamwatch.alerts.notification import Notification
from streamwatch.contract.events import AlertEvent

__all__ = ["alertmanager_alerts", "pagerduty_events", "slack_message", "verify_webhook", "webhook_request"]

_MAX_ALERTS_SHOWN = 10  # per Slack message; the rest are counted
_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}  # PagerDuty's own names


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _where(a: AlertEvent) -> str:
    parts = [f"{a.model} {a.model_version} ({a.variant})"]
    if a.feature:
        parts.append(f"feature {a.feature}")
    if a.segment:
        parts.append("slice " + ", ".join(f"{k}={v}" for k, v in a.segment.items()))
    return " · ".join(parts)


def _title(n: Notification) -> str:
    first = n.alerts[0] if n.alerts else None
    count = len(n.firing) if n.status == "firing" else len(n.resolved)
    subject = f"{first.rule} · {first.model} {first.model_version} {first.variant}" if first else n.group_key
    return f"[{n.status.upper()}:{count}] {subject}"


def slack_message(n: Notification) -> dict[str, Any]:
    """An incoming-webhook body: a header, a section per alert (what, where, how bad, since when), links."""
    title = _title(n)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    for a in n.alerts[:_MAX_ALERTS_SHOWN]:
        icon = ":white_check_mark:" if a.status == "resolved" else ":rotating_light:"
        lines = [
            f"{icon} *{a.status.upper()}* · {a.severity} · {a.kind}",
            f"*What:* {a.reason}",
            f"*Where:* {_where(a)}",
        ]
        if a.value is not None:
            limit = f" (threshold {a.threshold:g})" if a.threshold is not None else ""
            lines.append(f"*How bad:* {a.metric or 'value'} = {a.value:.4g}{limit}")
        since = f"*Since:* {_iso(a.starts_at)}"
        if a.ends_at is not None:
            since += f" · *resolved:* {_iso(a.ends_at)}"
        lines.append(since)
        if a.window is not None:
            lines.append(f"*Window:* {_iso(a.window.start)} to {_iso(a.window.end)}")
        if a.example_request_ids:
            lines.append("*Example requests:* " + ", ".join(f"`{r}`" for r in a.example_request_ids[:5]))
        links = [
            f"<{url}|{label}>" for label, url in (("Runbook", a.runbook_url), ("Dashboard", a.dashboard_url)) if url
        ]
        if links:
            lines.append(" · ".join(links))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
        blocks.append({"type": "divider"})
    hidden = len(n.alerts) - _MAX_ALERTS_SHOWN
    if hidden > 0:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {hidden} more alerts"}]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"streamwatch · {n.notification_id}"}]})
    return {"text": title, "blocks": blocks[:50]}


def pagerduty_events(n: Notification, routing_key: str) -> list[dict[str, Any]]:
    """One Events API v2 body per alert: ``trigger`` or ``resolve``, ``dedup_key`` = the alert's fingerprint."""
    out = []
    for a in n.alerts:
        if a.status == "resolved":
            out.append({"routing_key": routing_key, "event_action": "resolve", "dedup_key": a.fingerprint})
            continue
        details = {
            "metric": a.metric,
            "value": a.value,
            "threshold": a.threshold,
            "feature": a.feature,
            "segment": a.segment,
            "window": a.window.model_dump(mode="json") if a.window else None,
            "lineage": a.lineage,
            "example_request_ids": a.example_request_ids,
            "labels": a.labels,
        }
        event: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": a.fingerprint,
            "payload": {
                "summary": f"{a.rule}: {a.reason}"[:1024],
                "source": f"streamwatch/{a.model}/{a.model_version}/{a.variant}",
                "severity": _SEVERITY[a.severity],
                "timestamp": _iso(a.starts_at),
                "component": a.model,
                "group": a.model_version,
                "class": a.kind,
                "custom_details": {k: v for k, v in details.items() if v not in (None, {}, [])},
            },
        }
        pages = (("Runbook", a.runbook_url), ("Dashboard", a.dashboard_url))
        links = [{"href": url, "text": text} for text, url in pages if url]
        if links:
            event["links"] = links
        out.append(event)
    return out


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_request(n: Notification, secret: str, timestamp_s: int) -> tuple[bytes, dict[str, str]]:
    """The notification as JSON (the contract) and headers signing ``timestamp.body`` with HMAC-SHA256."""
    body = n.model_dump_json().encode()
    stamp = str(int(timestamp_s))
    return body, {
        "Content-Type": "application/json",
        "X-Streamwatch-Timestamp": stamp,
        "X-Streamwatch-Signature": _signature(secret, stamp, body),
        "X-Streamwatch-Notification-Id": n.notification_id,
    }


def verify_webhook(
    secret: str, body: bytes, timestamp: str, signature: str, now_s: float, tolerance_s: float = 300.0
) -> bool:
    """Whether a webhook request is ours and fresh: the signature matches (in constant time) and the
    timestamp is within ``tolerance_s`` of ``now_s``, so that a captured request cannot be replayed later."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(_signature(secret, timestamp, body), signature)


def alertmanager_alerts(n: Notification, valid_for_s: float = 5 * 3600) -> list[dict[str, Any]]:
    """Alertmanager API v2 ``postableAlerts``: labels identify an alert, ``endsAt`` resolves it.

    A firing alert's ``endsAt`` is ``valid_for_s`` after the notification: if
    streamwatch stops re-sending it (every repeat interval), Alertmanager
    resolves it then, instead of after its own short ``resolve_timeout``.
    """
    out = []
    for a in n.alerts:
        labels = {
            "alertname": a.rule,
            "severity": a.severity,
            "kind": a.kind,
            "model": a.model,
            "model_version": a.model_version,
            "variant": a.variant,
            "fingerprint": a.fingerprint,
            "feature": a.feature or "",
            **(a.segment or {}),
            **a.labels,
        }
        annotations = {"summary": a.reason, "runbook_url": a.runbook_url or "", "dashboard_url": a.dashboard_url or ""}
        alert: dict[str, Any] = {
            "labels": {k: v for k, v in labels.items() if v},
            "annotations": {k: v for k, v in annotations.items() if v},
            "startsAt": _iso(a.starts_at),
        }
        if a.status == "resolved":
            alert["endsAt"] = _iso(a.ends_at or a.timestamp)
        else:
            alert["endsAt"] = _iso(n.created_at + timedelta(seconds=valid_for_s))
        if a.dashboard_url:
            alert["generatorURL"] = a.dashboard_url
        out.append(alert)
    return out
