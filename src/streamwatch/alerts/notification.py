"""What a channel is told: a group of alerts, firing or resolved, in one notification.

The alert router (:mod:`streamwatch.alerts.routing`) groups alerts the way
Alertmanager does and emits one :class:`Notification` per channel and group
when it is due. Notifications travel on the ``streamwatch.notifications``
topic (the durable outbox) to the dispatcher, which turns each into the
channel's own payload (:mod:`streamwatch.notify.payloads`) and sends it.

The generic webhook receives exactly this model as its JSON body, so it is
part of the contract (``schemas/notification.schema.json``).

>>> n = Notification(notification_id="n1", channel="oncall", group_key="k", created_at=0, alerts=[])
>>> n.status, n.firing, n.resolved
('resolved', [], [])
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamwatch.contract.events import AlertEvent, Id, Name, StringMap, Timestamp

__all__ = ["Notification"]


class Notification(BaseModel):
    """One message to one channel about one group of alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    notification_id: Id = Field(description="Stable per group and send: receivers may deduplicate on it.")
    channel: Name = Field(description="The configured channel this is for.")
    group_key: str = Field(description="Identity of the alert group (channel and grouping labels).")
    group_labels: StringMap = Field(default_factory=dict, description="The labels the alerts are grouped by.")
    created_at: Timestamp
    alerts: list[AlertEvent] = Field(description="Every alert of the group: firing ones, then resolved ones.")

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
