"""What ``streamwatch alerts``, ``silence`` and ``notify test`` do, apart from parsing and printing.

Alerts are read from ClickHouse's ``alerts`` table, where every transition is
kept. When ClickHouse cannot be opened (an embedded chdb path is locked by a
running worker, or the server is down) they are read from the alerts topic
instead, which carries the same events. Silences live in the silences topic
(see :mod:`streamwatch.alerts.silence_feed`), so they work while workers run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from streamwatch.adapters.clickhouse import StorageError, connect
from streamwatch.adapters.kafka import KafkaTransport, TopicTail
from streamwatch.alerts.notification import Notification
from streamwatch.alerts.silence_feed import fold_silences
from streamwatch.alerts.silences import Silence, new_silence
from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings
from streamwatch.contract.events import AlertEvent
from streamwatch.errors import StreamwatchError
from streamwatch.notify.channels import ChannelClient, DeliveryError

__all__ = ["AlertHistory", "add_silence", "alert_history", "expire_silence", "list_silences", "notify_test"]

_STATUS_ORDER = {"pending": 0, "firing": 1, "resolved": 2}


@dataclass
class AlertHistory:
    """Every transition of one alert (one fingerprint), oldest first."""

    transitions: list[AlertEvent]

    @property
    def latest(self) -> AlertEvent:
        return self.transitions[-1]


def fold_alerts(events: Iterable[AlertEvent]) -> dict[str, AlertHistory]:
    """Alert events grouped by fingerprint, each history in the order the transitions happened."""
    unique = {(e.fingerprint, e.event_id): e for e in events}  # the topic may carry an event twice
    histories: dict[str, AlertHistory] = {}
    for event in sorted(unique.values(), key=lambda e: (e.timestamp, _STATUS_ORDER[e.status])):
        histories.setdefault(event.fingerprint, AlertHistory([])).transitions.append(event)
    return histories


def alert_history(settings: Settings) -> tuple[dict[str, AlertHistory], str]:
    """Every alert's history, and where it was read from (a sentence for the user)."""
    try:
        store = connect(settings.clickhouse)
        store.migrate(settings.clickhouse.raw_ttl_days)
        payloads = [row[0] for row in store.query("SELECT payload FROM {db}.alerts FINAL")]
        source = f"ClickHouse ({settings.clickhouse.dsn})"
    except StorageError as exc:
        tail = TopicTail(settings.kafka, settings.topics.alerts)
        try:
            payloads = [m.value for m in tail.read_to_end()]
        finally:
            tail.close()
        source = f"the {settings.topics.alerts} topic (ClickHouse unavailable: {str(exc).splitlines()[0][:120]})"
    events = []
    for payload in payloads:
        try:
            events.append(AlertEvent.model_validate_json(payload))
        except ValidationError:
            continue  # not an alert of this contract version
    return fold_alerts(events), source


def find_alert(histories: dict[str, AlertHistory], prefix: str) -> AlertHistory:
    """The alert whose fingerprint starts with ``prefix``; a one-line error if none or several do."""
    matches = [fp for fp in histories if fp.startswith(prefix)]
    if len(matches) != 1:
        found = "no alert" if not matches else f"{len(matches)} alerts"
        raise StreamwatchError(f"fingerprint {prefix!r}: {found} match; see `streamwatch alerts list --all`")
    return histories[matches[0]]


def _publish(settings: Settings, silence: Silence) -> None:
    failures: list[str] = []
    transport = KafkaTransport(
        settings.kafka,
        settings.producer,
        on_failure=lambda topic, reason: failures.append(reason),
        on_error=lambda reason: None,
    )
    transport.send(settings.topics.silences, silence.model_dump_json().encode(), silence.silence_id.encode())
    if transport.close(15.0) or failures:
        reason = failures[0] if failures else "broker unreachable"
        raise StreamwatchError(f"silence not published to {settings.topics.silences}: {reason}")


def list_silences(settings: Settings) -> list[Silence]:
    tail = TopicTail(settings.kafka, settings.topics.silences)
    try:
        return fold_silences(tail.read_to_end()).list(now_ms(), include_expired=True)
    finally:
        tail.close()


def add_silence(settings: Settings, matchers: list[str], duration_ms: int, author: str, comment: str) -> Silence:
    """Publish a new silence; matchers are checked first (``ValueError`` names a bad one)."""
    silence = new_silence(matchers, duration_ms, now_ms(), author, comment)
    _publish(settings, silence)
    return silence


def expire_silence(settings: Settings, silence_id: str) -> Silence:
    """End a silence now (publishes its expired version)."""
    now = now_ms()
    matches = [s for s in list_silences(settings) if s.silence_id.startswith(silence_id)]
    if len(matches) != 1:
        found = "no silence" if not matches else f"{len(matches)} silences"
        raise StreamwatchError(f"silence {silence_id!r}: {found} match; see `streamwatch silence list`")
    expired = matches[0].expired_at(now)
    _publish(settings, expired)
    return expired


def sample_notification(channel: str, now_ms: int) -> Notification:
    """A firing drift alert that says it is a test, for ``notify test``."""
    alert = AlertEvent.model_validate(
        {
            "event_id": hashlib.sha256(f"test:{now_ms}".encode()).hexdigest()[:32],
            "timestamp": now_ms,
            "fingerprint": "streamwatch-test",
            "rule": "notify-test",
            "kind": "drift",
            "severity": "info",
            "status": "firing",
            "model": "example-model",
            "model_version": "1",
            "reason": "This is a test notification from `streamwatch notify test`: nothing is wrong.",
            "metric": "psi",
            "feature": "example_feature",
            "value": 0.31,
            "threshold": 0.2,
            "window": {"start": now_ms - 60_000, "end": now_ms},
            "starts_at": now_ms - 60_000,
            "example_request_ids": ["req-0001", "req-0002"],
        }
    )
    return Notification(
        notification_id=f"test-{now_ms}",
        channel=channel,
        group_key=f"{channel}{{test}}",
        group_labels={"rule": "notify-test"},
        created_at=now_ms,
        alerts=[alert],
    )


def notify_test(settings: Settings, channel_name: str) -> Notification:
    """Send a sample alert to one configured channel, once; raise a one-line error if it is not accepted."""
    channels = {c.name: c for c in settings.channels}
    if channel_name not in channels:
        known = ", ".join(sorted(channels)) or "none configured"
        raise StreamwatchError(f"channel {channel_name!r} is not configured (channels: {known})")
    notification = sample_notification(channel_name, now_ms())
    with ChannelClient(timeout_s=settings.alerting.delivery_timeout.total_seconds()) as client:
        try:
            client.send(channels[channel_name], notification)
        except DeliveryError as exc:
            raise StreamwatchError(f"channel {channel_name!r}: {exc}") from None
    return notification
