"""Alerts into notifications, with Alertmanager's discipline: route, group, wait, repeat, silence.

Each firing or resolved alert goes to the channels its rule names (every
channel when it names none), into one *group* per channel and value of the
grouping labels. A group is notified

- ``group_wait`` after its first alert arrived (so that alerts of one incident
  arriving together make one message),
- then, when alerts joined, changed or resolved, ``group_interval`` after the
  previous notification,
- and, while any of its alerts still fires, ``repeat_interval`` after it.

A notification lists the group's firing alerts that no silence matches, and
the alerts resolved since the previous one that were announced as firing.
Time is passed in (``now_ms``): the router reads no clock, so a test or a
replay drives it exactly.

A notification is one Kafka message on the outbox topic, and Kafka refuses a
message over about 1 MB. So a group with more than
:data:`MAX_ALERTS_PER_NOTIFICATION` alerts, or whose notification would
serialise to more than :data:`MAX_NOTIFICATION_BYTES`, is split into parts, in
order: each alert in exactly one part, each part a notification of its own whose
id is the group's id plus ``/part-K-of-N`` (deterministic, so that a resend
after a restart has the same ids). A group of ordinary size is one
notification, with the id it always had.

>>> from streamwatch.contract.events import AlertEvent
>>> from streamwatch.config.rules import AlertingConfig
>>> router = AlertRouter({}, {"oncall": True}, AlertingConfig(group_wait="30s"))
>>> alert = {"event_id": "e1", "timestamp": 0, "fingerprint": "f1", "rule": "psi", "kind": "drift",
...          "severity": "warning", "status": "firing", "model": "credit", "model_version": "3", "reason": "psi",
...          "starts_at": 0}
>>> router.add([AlertEvent.model_validate(alert)], now_ms=1_000)
>>> router.due(now_ms=20_000)
[]
>>> [(n.channel, n.status, len(n.alerts)) for n in router.due(now_ms=31_000)]
[('oncall', 'firing', 1)]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamwatch.alerts.events import alert_labels
from streamwatch.alerts.notification import Notification, part_suffix
from streamwatch.config.rules import AlertingConfig, RuleConfig
from streamwatch.contract.events import AlertEvent
from streamwatch.times import duration_ms

__all__ = ["MAX_ALERTS_PER_NOTIFICATION", "MAX_NOTIFICATION_BYTES", "AlertRouter", "RouterGroup", "split_alerts"]

#: The most alerts in one notification: a bigger group is sent in parts. Below the 256 alerts per POST that
#: Prometheus sends Alertmanager (``DefaultMaxBatchSize`` in prometheus/notifier), so that a part is one POST there,
#: and few enough that a part's PagerDuty events (one per alert) go out in one retryable batch.
MAX_ALERTS_PER_NOTIFICATION = 200
#: The most bytes of a notification's JSON (``model_dump_json()``), the outbox message: a quarter of Kafka's
#: default ``message.max.bytes`` (1,048,588) and of the producer's ``message.max.bytes`` (1,000,000), so that a
#: part is never refused, and within what every channel's payload may carry.
MAX_NOTIFICATION_BYTES = 256 * 1024
# Room for the longest id suffix ("/part-NNNNNN-of-NNNNNN") and a status of "resolved" in the envelope.
_ENVELOPE_SLACK = 64


@dataclass
class RouterGroup:
    channel: str
    labels: dict[str, str]
    created_ms: int
    alerts: dict[str, AlertEvent] = field(default_factory=dict)  # the latest event per fingerprint
    last_sent_ms: int | None = None
    changed: bool = True
    announced: set[str] = field(default_factory=set)  # fingerprints last notified as firing
    sent: int = 0


class AlertRouter:
    """Groups alerts per channel and says which notifications are due.

    Parameters
    ----------
    rules
        Rule name -> its config, for the channels and grouping of its alerts.
    channels
        Channel name -> whether it is told about resolved alerts.
    config
        Grouping labels and timings.
    """

    def __init__(self, rules: Mapping[str, RuleConfig], channels: Mapping[str, bool], config: AlertingConfig) -> None:
        self.rules = dict(rules)
        self.channels = dict(channels)
        self.config = config
        self._groups: dict[str, RouterGroup] = {}

    def add(self, events: Sequence[AlertEvent], now_ms: int) -> None:
        """Route firing and resolved alerts into their groups (pending ones wait for their ``for``)."""
        for event in events:
            if event.status == "pending":
                continue
            rule = self.rules.get(event.rule)
            names = list(self.channels) if rule is None or rule.channels is None else rule.channels
            group_by = self.config.group_by if rule is None or rule.group_by is None else rule.group_by
            labels = alert_labels(event)
            grouped = {name: labels.get(name, "") for name in group_by}
            for channel in names:
                if channel not in self.channels:
                    continue
                key = _group_key(channel, grouped)
                group = self._groups.get(key)
                if group is None:
                    group = self._groups[key] = RouterGroup(channel, grouped, now_ms)
                previous = group.alerts.get(event.fingerprint)
                if previous is None or previous.status != event.status:
                    group.changed = True
                group.alerts[event.fingerprint] = event

    def due(self, now_ms: int, silenced: Callable[[dict[str, str]], bool] = lambda labels: False) -> list[Notification]:
        """The notifications due at ``now_ms``; ``silenced(labels)`` says whether a silence mutes an alert."""
        out = []
        for key in sorted(self._groups):
            group = self._groups[key]
            if not self._is_due(group, now_ms):
                continue
            firing = [a for a in group.alerts.values() if a.status == "firing" and not silenced(alert_labels(a))]
            resolved = [a for a in group.alerts.values() if a.status == "resolved" and a.fingerprint in group.announced]
            if not self.channels[group.channel]:
                resolved = []  # the channel does not want to hear about resolutions
            for fp in [fp for fp, a in group.alerts.items() if a.status == "resolved"]:
                del group.alerts[fp]  # told (or not worth telling): resolved alerts leave the group
                group.announced.discard(fp)
            if firing or resolved:
                out += self._notifications(key, group, firing + resolved, now_ms)
                group.last_sent_ms, group.changed = now_ms, False
                group.announced = {a.fingerprint for a in firing}
            if not group.alerts:
                del self._groups[key]
        return out

    def _is_due(self, group: RouterGroup, now_ms: int) -> bool:
        config = self.config
        if group.last_sent_ms is None:
            return now_ms >= group.created_ms + duration_ms(config.group_wait)
        if group.changed:
            return now_ms >= group.last_sent_ms + duration_ms(config.group_interval)
        firing = any(a.status == "firing" for a in group.alerts.values())
        return firing and now_ms >= group.last_sent_ms + duration_ms(config.repeat_interval)

    def _notifications(self, key: str, group: RouterGroup, alerts: list[AlertEvent], now_ms: int) -> list[Notification]:
        """The group's notification, or its parts when it is too big for one (see the module's docstring)."""
        group.sent += 1
        # Stable across a restart that sends it again: receivers may deduplicate on it.
        identity = f"{key}:{group.created_ms}:{group.sent}"
        base_id = hashlib.sha256(identity.encode()).hexdigest()[:32]

        def notification(notification_id: str, part: list[AlertEvent]) -> Notification:
            return Notification(
                notification_id=notification_id,
                channel=group.channel,
                group_key=key,
                group_labels=group.labels,
                created_at=now_ms,
                alerts=part,
            )

        envelope = len(notification(base_id, []).model_dump_json().encode()) + _ENVELOPE_SLACK
        parts = split_alerts(alerts, MAX_ALERTS_PER_NOTIFICATION, MAX_NOTIFICATION_BYTES - envelope)
        if len(parts) == 1:
            return [notification(base_id, parts[0])]
        return [notification(base_id + part_suffix(i, len(parts)), part) for i, part in enumerate(parts, 1)]

    def active(self) -> list[AlertEvent]:
        """Every alert currently held in a group, once each."""
        seen: dict[str, AlertEvent] = {}
        for group in self._groups.values():
            seen.update(group.alerts)
        return list(seen.values())

    def state(self) -> dict[str, Any]:
        return {"groups": self._groups}

    def restore(self, state: dict[str, Any]) -> None:
        self._groups = state["groups"]


def _group_key(channel: str, labels: dict[str, str]) -> str:
    return channel + "{" + ",".join(f"{k}={v!r}" for k, v in sorted(labels.items())) + "}"


def split_alerts(alerts: Sequence[AlertEvent], max_alerts: int, max_bytes: int) -> list[list[AlertEvent]]:
    """``alerts`` in order, cut into runs of at most ``max_alerts`` whose JSON list takes at most ``max_bytes``.

    An alert bigger than ``max_bytes`` on its own makes a run of one (an alert is never cut). Always at
    least one run, empty for no alerts.

    >>> from streamwatch.contract.events import AlertEvent
    >>> a = AlertEvent.model_validate({"event_id": "e", "timestamp": 0, "fingerprint": "f", "rule": "r",
    ...     "kind": "drift", "severity": "info", "status": "firing", "model": "m", "model_version": "1",
    ...     "reason": "x", "starts_at": 0})
    >>> [len(run) for run in split_alerts([a] * 5, max_alerts=2, max_bytes=10**6)]
    [2, 2, 1]
    """
    runs: list[list[AlertEvent]] = [[]]
    used = 2  # the list's brackets
    for alert in alerts:
        size = len(alert.model_dump_json().encode()) + 1  # and its comma
        run = runs[-1]
        if run and (len(run) >= max_alerts or used + size > max_bytes):
            runs.append([])
            run, used = runs[-1], 2
        run.append(alert)
        used += size
    return runs
