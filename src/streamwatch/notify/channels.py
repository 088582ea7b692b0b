"""Which HTTP requests a notification makes on its channel, and sending them through one client.

Each channel type has its payload (:mod:`streamwatch.notify.payloads`, pure)
and its URL; :class:`ChannelClient` picks them and posts through an
:class:`HttpPoster` (by default :class:`~streamwatch.adapters.http.HttpClient`),
one attempt per request. Retrying is the dispatcher's business. ``timeout_s``
bounds each phase of a request, ``total_timeout_s`` (by default twice
``timeout_s``) the whole request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from streamwatch.adapters.http import DeliveryError, HttpClient
from streamwatch.alerts.notification import Notification
from streamwatch.config.models import AlertmanagerChannel, Channel, PagerDutyChannel, SlackChannel, WebhookChannel
from streamwatch.notify.payloads import alertmanager_batches, pagerduty_events, slack_message, webhook_request

__all__ = ["ChannelClient", "DeliveryError", "HttpPoster", "NotificationSender"]


class HttpPoster(Protocol):
    """What :class:`ChannelClient` needs of an HTTP client: one POST attempt, and a close."""

    def post(self, name: str, url: str, **request: Any) -> None: ...

    def close(self) -> None: ...


class NotificationSender(Protocol):
    """What the dispatcher needs of a channel client: one delivery attempt of a notification."""

    def send(self, channel: Channel, notification: Notification) -> None: ...


class ChannelClient:
    """Sends a notification to Slack, PagerDuty, a signed webhook or Alertmanager; one attempt per request."""

    def __init__(
        self,
        http: HttpPoster | None = None,
        *,
        timeout_s: float = 5.0,
        total_timeout_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.http: HttpPoster = (
            http if http is not None else HttpClient(timeout_s=timeout_s, total_timeout_s=total_timeout_s, clock=clock)
        )

    def __enter__(self) -> ChannelClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, channel: Channel, notification: Notification) -> None:
        """Deliver ``notification`` to ``channel`` once; :class:`DeliveryError` if it was not accepted."""
        if notification.status == "resolved" and not channel.send_resolved:
            return  # this channel is not told about resolutions
        if isinstance(channel, SlackChannel):
            self.http.post(channel.name, channel.webhook_url.get_secret_value(), json=slack_message(notification))
        elif isinstance(channel, PagerDutyChannel):
            key = channel.routing_key.get_secret_value()
            for event in pagerduty_events(notification, key):
                self.http.post(channel.name, channel.events_url, json=event)
        elif isinstance(channel, WebhookChannel):
            body, headers = webhook_request(notification, channel.signing_secret.get_secret_value(), int(self.clock()))
            self.http.post(channel.name, channel.url.get_secret_value(), content=body, headers=headers)
        elif isinstance(channel, AlertmanagerChannel):
            url = channel.url.rstrip("/") + "/api/v2/alerts"
            for alerts in alertmanager_batches(notification, channel.valid_for.total_seconds()):
                self.http.post(channel.name, url, json=alerts)
        else:
            raise DeliveryError(getattr(channel, "name", "?"), "unknown channel type", retryable=False)
