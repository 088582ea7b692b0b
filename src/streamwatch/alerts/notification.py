"""What a channel is told: a group of alerts, firing or resolved, in one notification.

The alert router (:mod:`streamwatch.alerts.routing`) groups alerts the way
Alertmanager does and emits one :class:`Notification` per channel and group
when it is due. Notifications travel on the ``streamwatch.notifications``
topic (the durable outbox) to the dispatcher, which turns each into the
channel's own payload (:mod:`streamwatch.notify.payloads`) and sends it.

The generic webhook receives exactly this model as its JSON body, so it is
part of the contract (``schemas/notification.schema.json``).

A group too large for one message (more than
:data:`~streamwatch.alerts.routing.MAX_ALERTS_PER_NOTIFICATION` alerts, or a
serialised notification over :data:`~streamwatch.alerts.routing.MAX_NOTIFICATION_BYTES`)
is sent as several *parts*: each is a notification of its own whose
``notification_id`` is the group's id followed by :func:`part_suffix`, and
:func:`part_of` reads it back:

>>> part_suffix(2, 3), part_of("abc" + part_suffix(2, 3)), part_of("abc")
('/part-2-of-3', (2, 3), (1, 1))

>>> n = Notification(notification_id="n1", channel="oncall", group_key="k", created_at=0, alerts=[])
>>> n.status, n.firing, n.resolved
('resolved', [], [])
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamwatch.contract.events import AlertEvent, Id, Name, StringMap, Timestamp

__all__ = ["Notification", "part_of", "part_suffix"]

_PART = re.compile(r"/part-([1-9][0-9]*)-of-([1-9][0-9]*)$")


def part_suffix(part: int, parts: int) -> str:
    """What ends the ``notification_id`` of part ``part`` (from 1) of ``parts`` of a split group."""
    return f"/part-{part}-of-{parts}"


def part_of(notification_id: str) -> tuple[int, int]:
    """``(part, parts)`` of a notification, from its id: ``(1, 1)`` for a group sent whole."""
    match = _PART.search(notification_id)
    return (int(match.group(1)), int(match.group(2))) if match else (1, 1)


class Notification(BaseModel):
    """One message to one channel about one group of alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    notification_id: Id = Field(
        description="Stable per group and send: receivers may deduplicate on it. A large group is sent in parts, "
        "each with an id of its own ending in /part-K-of-N."
    )
    channel: Name = Field(description="The configured channel this is for.")
    group_key: str = Field(description="Identity of the alert group (channel and grouping labels).")
    group_labels: StringMap = Field(default_factory=dict, description="The labels the alerts are grouped by.")
    created_at: Timestamp
    alerts: list[AlertEvent] = Field(
        description="The group's alerts, firing ones then resolved ones; every one of them, or, when the group "
        "is sent in parts, this part's share (each alert in exactly one part)."
    )

    status: Literal["firing", "resolved"] = Field(
        "resolved", description="``firing`` while any alert of the group fires; set from the alerts."
    )

    @model_validator(mode="after")
    def _status_from_alerts(self) -> Notification:
        firing = any(a.status == "firing" for a in self.alerts)
        object.__setattr__(self, "status", "firing" if firing else "resolved")
        return self

    @property
    def firing(self) -> list[AlertEvent]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[AlertEvent]:
        return [a for a in self.alerts if a.status == "resolved"]
