"""What each channel type is sent: Slack Block Kit, PagerDuty Events v2, a signed webhook, Alertmanager v2.

Pure: these functions only build request bodies (and the webhook's signature);
:mod:`streamwatch.adapters.http` sends them. A webhook receiver verifies a request with
:func:`verify_webhook`:

>>> from streamwatch.alerts.notification import Notification, part_of
>>> n = Notification(notification_id="n1", channel="hooks", group_key="k", created_at=0, alerts=[])
>>> body, headers = webhook_request(n, "s3cret", timestamp_s=1_800_000_000)
>>> sig = headers["X-Streamwatch-Signature"]
>>> verify_webhook("s3cret", body, "1800000000", sig, now_s=1_800_000_010)
True
>>> verify_webhook("s3cret", body + b" ", "1800000000", sig, now_s=1_800_000_010)  # tampered
False
>>> verify_webhook("s3cret", body, "1800000000", sig, now_s=1_800_009_999)  # replayed later
False
>>> verify_webhook("s3cret", body, None, "v1=\u00e9", now_s=1_800_000_010)  # garbage in, False out
False

Every string a producer controls (model, version, feature, slice, rule, reason,
labels, ids) is escaped before it goes into Slack ``mrkdwn`` (``&``, ``<``,
``>``, as https://api.slack.com/reference/surfaces/formatting#escaping says),
so that a value cannot mention ``<!channel>`` or make a link:

>>> escape_mrkdwn("<!channel> & <https://evil|click>")
'&lt;!channel&gt; &amp; &lt;https://evil|click&gt;'

Each payload stays within its receiver's documented limits, whatever the size
of the notification (the router already splits a large group into parts of at
most 200 alerts and 256 KiB, see :mod:`streamwatch.alerts.routing`): Slack lists
the first alerts and says how many more there are, PagerDuty's events drop their
largest ``custom_details`` before they pass 512 KB, Alertmanager's alerts come in
batches of at most 256 (:func:`alertmanager_batches`), and the webhook's body
leaves out the tail of a list over 1 MiB and says how many in a header. The
limits are the ``*_MAX_*`` constants below, each with its source.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any

from streamwatch.alerts.notification import Notification, part_of
from streamwatch.contract.events import AlertEvent

__all__ = [
    "ALERTMANAGER_MAX_ALERTS_PER_POST",
    "ALERTMANAGER_MAX_BODY_BYTES",
    "PAGERDUTY_MAX_EVENT_BYTES",
    "PAGERDUTY_MAX_SUMMARY_CHARS",
    "SLACK_MAX_BLOCKS",
    "SLACK_MAX_BLOCKS_TEXT_CHARS",
    "SLACK_MAX_TEXT_CHARS",
    "WEBHOOK_MAX_BODY_BYTES",
    "alertmanager_alerts",
    "alertmanager_batches",
    "escape_mrkdwn",
    "pagerduty_events",
    "slack_message",
    "verify_webhook",
    "webhook_request",
]

_MAX_ALERTS_SHOWN = 10  # per Slack message; the rest are counted
_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}  # PagerDuty's own names
_MAX_SECTION_CHARS = 3000  # Slack's limit on a section's text

#: A Slack message's top-level ``text`` is truncated beyond 40,000 characters
#: (https://api.slack.com/changelog/2018-04-truncating-really-long-messages).
SLACK_MAX_TEXT_CHARS = 40_000
#: A Slack message holds at most 50 blocks (https://api.slack.com/reference/block-kit/blocks). We use at most
#: 2 per listed alert (a section, a divider) and 4 more: 24 with :data:`_MAX_ALERTS_SHOWN` at 10.
SLACK_MAX_BLOCKS = 50
#: The most characters of text in all the blocks together. Slack refuses a message with ``msg_blocks_too_long``
#: well before 40,000 characters of blocks (at about 13,000 of mrkdwn, https://github.com/slackapi/bolt-js/issues/2509),
#: so the alerts listed stop at this budget and the rest are counted.
SLACK_MAX_BLOCKS_TEXT_CHARS = 12_000
#: PagerDuty Events API v2: an event (the whole request body) is at most 512 KB (the API overview's "size
#: limits", https://developer.pagerduty.com/docs/ZG9jOjExMDI5NTgw-events-api-v2-overview#size-limits); Alertmanager's
#: PagerDuty notifier holds its events to 512,000 bytes, as we do.
PAGERDUTY_MAX_EVENT_BYTES = 512_000
#: PagerDuty Events API v2: ``payload.summary`` is at most 1024 characters
#: (https://developer.pagerduty.com/docs/ZG9jOjExMDI5NTgx-send-an-alert-event).
PAGERDUTY_MAX_SUMMARY_CHARS = 1024
#: Alertmanager API v2 ``POST /api/v2/alerts`` takes a list of alerts and documents no limit
#: (https://prometheus.io/docs/alerting/latest/alerts_api/); Prometheus itself posts at most 256 alerts per request
#: (``DefaultMaxBatchSize`` in prometheus/notifier), and so do we.
ALERTMANAGER_MAX_ALERTS_PER_POST = 256
#: Our own cap on one Alertmanager request body: 1 MiB, nginx's default ``client_max_body_size``
#: (https://nginx.org/en/docs/http/ngx_http_core_module.html#client_max_body_size), for an Alertmanager behind a proxy.
ALERTMANAGER_MAX_BODY_BYTES = 1 << 20
#: Our own cap on the signed webhook's body: 1 MiB, nginx's default ``client_max_body_size`` (above); alerts past
#: it are left out of the body and counted in the ``X-Streamwatch-Omitted-Alerts`` header.
WEBHOOK_MAX_BODY_BYTES = 1 << 20
_STAMP = re.compile(rb"[0-9]{1,15}")  # a webhook timestamp: plain ASCII digits, seconds


def escape_mrkdwn(text: object) -> str:
    """``text`` for Slack ``mrkdwn``: ``&``, ``<`` and ``>`` as entities, so that it cannot mention or link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    """A Slack link to an http(s) ``url``; anything else (``!channel``, ``@U123``, ``javascript:``) as escaped text."""
    if not url.lower().startswith(("http://", "https://")):
        return f"{label}: {escape_mrkdwn(url)}"
    return f"<{escape_mrkdwn(url).replace('|', '%7C')}|{label}>"


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, never ending inside an entity (``&lt;``) or a link."""
    if len(text) <= limit:
        return text
    text = text[: limit - 1]
    if text.rfind("&") > text.rfind(";"):
        text = text[: text.rfind("&")]
    if text.rfind("<") > text.rfind(">"):
        text = text[: text.rfind("<")]
    return text + "…"


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _where(a: AlertEvent) -> str:
    """Where the alert is, for ``mrkdwn`` (escaped)."""
    parts = [f"{a.model} {a.model_version} ({a.variant})"]
    if a.feature:
        parts.append(f"feature {a.feature}")
    if a.segment:
        parts.append("slice " + ", ".join(f"{k}={v}" for k, v in a.segment.items()))
    return escape_mrkdwn(" · ".join(parts))


def _title(n: Notification) -> str:
    first = n.alerts[0] if n.alerts else None
    count = len(n.firing) if n.status == "firing" else len(n.resolved)
    subject = f"{first.rule} · {first.model} {first.model_version} {first.variant}" if first else n.group_key
    part, parts = part_of(n.notification_id)
    of = f" (part {part} of {parts})" if parts > 1 else ""
    return f"[{n.status.upper()}:{count}] {subject}{of}"


def _json_bytes(value: Any) -> int:
    """The size of ``value`` as JSON, counted high: ASCII-escaped, with spaces after separators (httpx's
    ``json=`` sends it compact, and UTF-8 is never longer than a ``\\uXXXX`` escape)."""
    return len(json.dumps(value).encode())


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not turn bare URLs, #channels or @mentions into links; our own <url|label> still are.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def slack_message(n: Notification) -> dict[str, Any]:
    """An incoming-webhook body: a header, a section per alert (what, where, how bad, since when), links.

    Every string from an event is escaped for ``mrkdwn`` (the header is ``plain_text``, which Slack does not parse).
    """
    title = _title(n)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    budget = SLACK_MAX_BLOCKS_TEXT_CHARS - 1_000  # what the header and the two context lines may take
    shown = 0
    for a in n.alerts[:_MAX_ALERTS_SHOWN]:
        icon = ":white_check_mark:" if a.status == "resolved" else ":rotating_light:"
        lines = [
            f"{icon} *{a.status.upper()}* · {escape_mrkdwn(a.severity)} · {escape_mrkdwn(a.kind)}",
            f"*What:* {escape_mrkdwn(a.reason)}",
            f"*Where:* {_where(a)}",
        ]
        if a.value is not None:
            limit = f" (threshold {a.threshold:g})" if a.threshold is not None else ""
            lines.append(f"*How bad:* {escape_mrkdwn(a.metric or 'value')} = {a.value:.4g}{limit}")
        since = f"*Since:* {_iso(a.starts_at)}"
        if a.ends_at is not None:
            since += f" · *resolved:* {_iso(a.ends_at)}"
        lines.append(since)
        if a.window is not None:
            lines.append(f"*Window:* {_iso(a.window.start)} to {_iso(a.window.end)}")
        if a.example_request_ids:
            ids = (escape_mrkdwn(r.replace("`", "'")) for r in a.example_request_ids[:5])
            lines.append("*Example requests:* " + ", ".join(f"`{r}`" for r in ids))
        pages = (("Runbook", a.runbook_url), ("Dashboard", a.dashboard_url))
        links = [_link(url, label) for label, url in pages if url]
        if links:
            lines.append(" · ".join(links))
        text = _cut("\n".join(lines), _MAX_SECTION_CHARS)
        if len(text) > budget:
            break  # the rest are counted below
        budget -= len(text)
        blocks.append({"type": "section", "text": _mrkdwn(text)})
        blocks.append({"type": "divider"})
        shown += 1
    hidden = n.alerts[shown:]
    if hidden:
        firing = sum(a.status == "firing" for a in hidden)
        kinds = f" ({firing} firing, {len(hidden) - firing} resolved)" if 0 < firing < len(hidden) else ""
        more = f"… and {len(hidden)} more alerts not listed{kinds}"
        blocks.append({"type": "context", "elements": [_mrkdwn(more)]})
    blocks.append({"type": "context", "elements": [_mrkdwn(f"streamwatch · {escape_mrkdwn(n.notification_id)}")]})
    # The top-level text (the notification's preview) is mrkdwn as well.
    return {"text": _cut(escape_mrkdwn(title), SLACK_MAX_TEXT_CHARS), "blocks": blocks[:SLACK_MAX_BLOCKS]}


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
                "summary": f"{a.rule}: {a.reason}"[:PAGERDUTY_MAX_SUMMARY_CHARS],
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
        out.append(_within_pagerduty_limit(event))
    return out


def _within_pagerduty_limit(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` at most :data:`PAGERDUTY_MAX_EVENT_BYTES`: its largest ``custom_details`` go first, named in
    ``custom_details.omitted``; then the links."""
    if _json_bytes(event) <= PAGERDUTY_MAX_EVENT_BYTES:
        return event
    details: dict[str, Any] = event["payload"]["custom_details"]
    omitted: list[str] = []
    for name in sorted(details, key=lambda k: _json_bytes(details[k]), reverse=True):
        del details[name]
        omitted.append(name)
        details["omitted"] = sorted(omitted)
        if _json_bytes(event) <= PAGERDUTY_MAX_EVENT_BYTES:
            return event
    event.pop("links", None)
    return event


def _signature(secret: bytes, timestamp: bytes, body: bytes) -> bytes:
    return b"v1=" + hmac.new(secret, timestamp + b"." + body, hashlib.sha256).hexdigest().encode()


def _bytes(value: object) -> bytes | None:
    """``value`` as UTF-8 bytes, or None if it is neither bytes nor an encodable str."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode()
        except UnicodeEncodeError:  # a lone surrogate
            return None
    return None


def webhook_request(n: Notification, secret: str, timestamp_s: int) -> tuple[bytes, dict[str, str]]:
    """The notification as JSON (the contract) and headers signing ``timestamp.body`` with HMAC-SHA256.

    A body over :data:`WEBHOOK_MAX_BODY_BYTES` keeps the first alerts that fit (still a valid notification) and
    says how many were left out in ``X-Streamwatch-Omitted-Alerts``.
    """
    body = n.model_dump_json().encode()
    omitted = 0
    if len(body) > WEBHOOK_MAX_BODY_BYTES:
        envelope = len(n.model_copy(update={"alerts": []}).model_dump_json().encode())
        used, kept = envelope, 0
        for a in n.alerts:
            used += len(a.model_dump_json().encode()) + 1
            if used > WEBHOOK_MAX_BODY_BYTES:
                break
            kept += 1
        omitted = len(n.alerts) - kept
        body = n.model_copy(update={"alerts": n.alerts[:kept]}).model_dump_json().encode()
    stamp = str(int(timestamp_s))
    headers = {
        "Content-Type": "application/json",
        "X-Streamwatch-Timestamp": stamp,
        "X-Streamwatch-Signature": _signature(secret.encode(), stamp.encode(), body).decode(),
        "X-Streamwatch-Notification-Id": n.notification_id,
    }
    if omitted:
        headers["X-Streamwatch-Omitted-Alerts"] = str(omitted)
    return body, headers


def verify_webhook(
    secret: str | bytes | None,
    body: bytes | str | None,
    timestamp: str | bytes | None,
    signature: str | bytes | None,
    now_s: float,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether a webhook request is ours and fresh: the signature matches (in constant time) and the
    timestamp is within ``tolerance_s`` of ``now_s``, so that a captured request cannot be replayed later.

    Never raises: whatever a request carries (a missing header, non-ASCII text, bytes, no secret) is
    False unless it is a valid signature. ``str`` arguments are taken as UTF-8.
    """
    key, payload, stamp, given = _bytes(secret), _bytes(body), _bytes(timestamp), _bytes(signature)
    if not key or payload is None or stamp is None or given is None or not _STAMP.fullmatch(stamp):
        return False
    if not isinstance(now_s, int | float) or not isinstance(tolerance_s, int | float):
        return False
    try:
        fresh = abs(now_s - int(stamp)) <= tolerance_s  # False for a NaN as well
    except OverflowError:
        return False
    return fresh and hmac.compare_digest(_signature(key, stamp, payload), given)


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


def alertmanager_batches(n: Notification, valid_for_s: float = 5 * 3600) -> list[list[dict[str, Any]]]:
    """:func:`alertmanager_alerts` in requests of at most :data:`ALERTMANAGER_MAX_ALERTS_PER_POST` alerts and
    :data:`ALERTMANAGER_MAX_BODY_BYTES`, in order, each alert in exactly one (one request for a routed part)."""
    batches: list[list[dict[str, Any]]] = [[]]
    used = 2
    for alert in alertmanager_alerts(n, valid_for_s):
        size = _json_bytes(alert) + 1
        batch = batches[-1]
        if batch and (len(batch) >= ALERTMANAGER_MAX_ALERTS_PER_POST or used + size > ALERTMANAGER_MAX_BODY_BYTES):
            batches.append([])
            batch, used = batches[-1], 2
        batch.append(alert)
        used += size
    return [batch for batch in batches if batch]
