"""Delivering notifications from the outbox topic: at least once, in order per channel, off the stream's thread.

The report runner publishes each :class:`~streamwatch.alerts.notification.Notification`
to the notifications topic before it checkpoints; that topic is the durable
outbox. A :class:`Dispatcher` consumes it in its own consumer group and hands
each notification to its channel's thread, which sends it with retries
(exponential backoff with jitter, at least ``Retry-After`` after a 429 or
503) until it is accepted, refused for good (a 4xx, or any error that is not a
:class:`DeliveryError`: a payload that cannot be built, a reply that cannot
be read), or ``max_age_s`` old. A channel's thread outlives every failure of a
notification: a notification given up is logged and counted, and the next one
is sent.
An offset is committed only once every notification before it is done, so a
restart redelivers whatever was still pending: at least once, never lost.
One slow channel delays only itself.

A notification whose ``created_at`` is more than ``max_outbox_age_ms`` before
the dispatcher's clock is not sent: it is counted, summarised in the log (at
most once a minute) and its offset committed. A consumer group that starts from
the beginning of the topic (a renamed group, reset offsets) so skips the
outbox's history instead of paging about incidents long over.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import tenacity
from pydantic import ValidationError

from streamwatch.adapters.kafka import COMMITTED, Message, OnAssign, OnRevoke
from streamwatch.alerts.notification import Notification
from streamwatch.clock import now_ms
from streamwatch.config.models import Channel
from streamwatch.notify.channels import DeliveryError, NotificationSender
from streamwatch.times import to_ms

__all__ = ["Dispatcher", "OutboxConsumer"]

_log = logging.getLogger("streamwatch.delivery")
_MAX_WAIT_S = 300.0  # the longest pause between two attempts, whatever Retry-After says
_EXPIRED_LOG_INTERVAL_MS = 60_000  # at most one summary line a minute about outbox entries too old to send


class OutboxConsumer(Protocol):
    """What the dispatcher needs of its consumer on the notifications topic (a
    :class:`~streamwatch.adapters.kafka.BatchConsumer`): batches, commits of the offsets it is done with, a close."""

    def consume(self, max_messages: int, timeout: float) -> list[Message]: ...

    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...

    def close(self) -> None: ...


def _describe(error: BaseException) -> str:
    """An unexpected error without its text (which may quote a URL or a key): its type and where it was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


class _Offsets:
    """Offsets handed out per partition, and how far each is done without a gap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int], deque[list[Any]]] = {}

    def add(self, message: Message) -> list[Any]:
        entry = [message.offset, False]
        with self._lock:
            self._pending.setdefault((message.topic, message.partition), deque()).append(entry)
        return entry

    def done(self, entry: list[Any]) -> None:
        with self._lock:
            entry[1] = True

    def committable(self) -> dict[tuple[str, int], int]:
        out = {}
        with self._lock:
            for key, entries in self._pending.items():
                while entries and entries[0][1]:
                    out[key] = entries.popleft()[0] + 1
        return out

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        with self._lock:
            for key in partitions:
                self._pending.pop(key, None)

    def in_flight(self) -> int:
        with self._lock:
            return sum(len(e) for e in self._pending.values())


class Dispatcher:
    """Consumes the outbox and sends each notification to its channel.

    Parameters
    ----------
    consumer_factory
        ``(on_assign, on_revoke) -> BatchConsumer`` (an :class:`OutboxConsumer`) on the notifications topic,
        in the dispatchers' group.
    client
        The channel client (:class:`~streamwatch.notify.channels.ChannelClient`) that makes one attempt per call.
    channels
        The configured channels by name.
    max_age_s
        How long a notification is retried before it is given up (and counted).
    metrics
        Anything with ``delivered(channel)``, ``delivery_retry(channel)``,
        ``delivery_failed(channel)`` and ``outbox_pending(n)``; ``None`` counts nothing. A notification
        skipped as too old is counted by ``outbox_expired(channel)``.
    max_outbox_age_ms
        A notification created longer ago than this (by ``clock``) is skipped, not sent; ``None``: none is.
    clock
        The wall clock in epoch milliseconds, read for that age only (injected by tests).
    """

    def __init__(
        self,
        consumer_factory: Callable[[OnAssign, OnRevoke], OutboxConsumer],
        client: NotificationSender,
        channels: Mapping[str, Channel],
        max_age_s: float = 86_400.0,
        metrics: Any = None,
        backoff_s: float = 0.5,
        max_outbox_age_ms: int | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.client = client
        self.channels = dict(channels)
        self.max_age_s = max_age_s
        self.metrics = metrics
        self.backoff_s = backoff_s
        self.max_outbox_age_ms = max_outbox_age_ms
        self.clock = clock
        self._expired = 0  # skipped as too old since the last summary line (the consuming thread's alone)
        self._expired_oldest_ms: int | None = None
        self._expired_logged_ms: int | None = None
        self._consumer_factory = consumer_factory
        self._offsets = _Offsets()
        self._queues: dict[str, queue.Queue[tuple[Notification, list[Any]] | None]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None

    def start(self) -> None:
        self._loop = threading.Thread(target=self._run, name="streamwatch-dispatcher", daemon=True)
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending; what is still pending is sent again by the next dispatcher."""
        self._stop.set()
        for q in self._queues.values():
            q.put(None)
        if self._loop is not None:
            self._loop.join(timeout)

    def _run(self) -> None:
        consumer = self._consumer_factory(lambda partitions: dict.fromkeys(partitions, COMMITTED), self._offsets.forget)
        try:
            while not self._stop.is_set():
                try:
                    for message in consumer.consume(100, 0.1):
                        self._accept(message)
                    self._log_expired()
                    consumer.commit(self._offsets.committable())
                except Exception:  # a broker hiccup must not end delivery: log it and go on
                    _log.exception("dispatcher loop error")
                    self._stop.wait(1.0)
                if self.metrics is not None:
                    self.metrics.outbox_pending(self._offsets.in_flight())
            for thread in self._threads:
                thread.join(5.0)
            self._log_expired(force=True)
            consumer.commit(self._offsets.committable())
        finally:
            consumer.close()

    def _accept(self, message: Message) -> None:
        entry = self._offsets.add(message)
        try:
            notification = Notification.model_validate_json(message.value)
        except ValidationError as exc:
            _log.error("outbox message at offset %d is not a notification, skipped: %s", message.offset, exc)
            self._offsets.done(entry)
            return
        if self._too_old(notification):
            self._offsets.done(entry)
            return
        if notification.channel not in self.channels:
            _log.error("notification %s names no configured channel, skipped", notification.notification_id)
            self._failed(notification.channel)
            self._offsets.done(entry)
            return
        lane = self._queues.get(notification.channel)
        if lane is None:
            lane = self._queues[notification.channel] = queue.Queue()
            thread = threading.Thread(
                target=self._lane, args=(lane,), name=f"streamwatch-notify-{notification.channel}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        lane.put((notification, entry))

    def _too_old(self, notification: Notification) -> bool:
        """Whether ``notification`` is older than ``max_outbox_age_ms``; if so it is counted (and summarised later)."""
        if self.max_outbox_age_ms is None:
            return False
        created = to_ms(notification.created_at)
        if self.clock() - created <= self.max_outbox_age_ms:
            return False
        self._expired += 1
        self._expired_oldest_ms = created if self._expired_oldest_ms is None else min(self._expired_oldest_ms, created)
        if self.metrics is not None:
            self.metrics.outbox_expired(notification.channel)
        return True

    def _log_expired(self, force: bool = False) -> None:
        """One line for the notifications skipped as too old since the last one, at most once a minute."""
        if not self._expired:
            return
        now = self.clock()
        last = self._expired_logged_ms
        if not force and last is not None and now - last < _EXPIRED_LOG_INTERVAL_MS:
            return
        _log.warning(
            "skipped %d outbox notifications created more than %d ms ago (the oldest at %d ms): not sent",
            self._expired,
            self.max_outbox_age_ms,
            self._expired_oldest_ms,
        )
        self._expired, self._expired_oldest_ms, self._expired_logged_ms = 0, None, now

    def _lane(self, lane: queue.Queue[tuple[Notification, list[Any]] | None]) -> None:
        while not self._stop.is_set():
            item = lane.get()
            if item is None:
                return
            notification, entry = item
            try:
                done = self._deliver(notification)
            except Exception as exc:  # _deliver gives up on every error; this is in case it fails itself
                with contextlib.suppress(Exception):
                    self._give_up(notification, f"unexpected {_describe(exc)}")
                done = True
            if done:
                self._offsets.done(entry)

    def _deliver(self, notification: Notification) -> bool:
        """Send until accepted or given up (True), or until the dispatcher stops (False: send again later)."""
        channel = self.channels[notification.channel]
        backoff = tenacity.wait_exponential_jitter(multiplier=self.backoff_s, max=_MAX_WAIT_S, jitter=self.backoff_s)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            after = getattr(error, "retry_after_s", None) or 0.0
            return min(_MAX_WAIT_S, max(backoff(state), after))

        def sleep(seconds: float) -> None:  # until the next attempt, or until the dispatcher stops
            self._stop.wait(seconds)

        def retried(state: tenacity.RetryCallState) -> None:
            if self.metrics is not None:
                self.metrics.delivery_retry(notification.channel)
            error = state.outcome.exception() if state.outcome else None
            _log.warning("notification to %s not accepted, retrying: %s", notification.channel, error)

        try:
            for attempt in tenacity.Retrying(
                retry=tenacity.retry_if_exception(lambda e: isinstance(e, DeliveryError) and e.retryable),
                wait=wait,
                stop=tenacity.stop_after_delay(self.max_age_s) | tenacity.stop_when_event_set(self._stop),
                sleep=sleep,
                before_sleep=retried,
                reraise=True,
            ):
                with attempt:
                    self.client.send(channel, notification)
        except DeliveryError as exc:
            if self._stop.is_set() and exc.retryable:
                return False
            self._give_up(notification, str(exc))
            return True
        except Exception as exc:  # not worth retrying: given up like a 4xx, and the channel goes on
            self._give_up(notification, f"unexpected {_describe(exc)}")
            return True
        if self.metrics is not None:
            self.metrics.delivered(notification.channel)
        return True

    def _give_up(self, notification: Notification, why: str) -> None:
        """Log and count a notification that will not be sent (its offset is done all the same)."""
        _log.error("notification %s to %s given up: %s", notification.notification_id, notification.channel, why)
        self._failed(notification.channel)

    def _failed(self, channel: str) -> None:
        if self.metrics is not None:
            self.metrics.delivery_failed(channel)
