"""The dispatcher: the outbox topic to real HTTP receivers, at least once, through failures and restarts."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from streamwatch.adapters.kafka import BatchConsumer, KafkaTransport, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.adapters.prometheus import WorkerMetrics
from streamwatch.alerts.notification import Notification
from streamwatch.config.models import Channel, PagerDutyChannel, SlackChannel, WebhookChannel
from streamwatch.config.settings import load_settings
from streamwatch.contract.events import AlertEvent
from streamwatch.notify.channels import ChannelClient
from streamwatch.notify.dispatcher import Dispatcher
from streamwatch.notify.payloads import verify_webhook
from tests.receivers import RecordingReceiver

_n = itertools.count()
SECRET = "whsec-test-9f8e7d"


def alert(fp: str, status: str) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "event_id": f"{fp}-{status}",
            "timestamp": 60_000,
            "fingerprint": fp,
            "rule": "psi",
            "kind": "drift",
            "severity": "critical",
            "status": status,
            "model": "credit",
            "model_version": "3",
            "reason": f"{fp} drifted",
            "starts_at": 0,
            "window": {"start": 0, "end": 60_000},
        }
    )


def notification(i: int, channel: str, status: str = "firing") -> Notification:
    return Notification(
        notification_id=f"n{i}-{channel}-{status}",
        channel=channel,
        group_key=f"{channel}{{rule='psi'}}",
        created_at=60_000 + i,
        alerts=[alert(f"fp{i}", status)],
    )


class Outbox:
    """A notifications topic of the session broker, and dispatchers reading it as one group."""

    def __init__(self, broker: LocalKafka) -> None:
        n = next(_n)
        self.settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
        self.topic, self.group = f"dl{n}.notifications", f"dl{n}-notifier"
        create_topics(self.settings.kafka, [self.topic], partitions=1)

    def publish(self, notifications: list[Notification]) -> None:
        transport = KafkaTransport(
            self.settings.kafka, self.settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None
        )
        for n in notifications:
            transport.send(self.topic, n.model_dump_json().encode(), n.channel.encode())
        assert transport.close(10.0) == 0

    def dispatcher(self, channels: list[Any], metrics: WorkerMetrics, client: Any = None, **options: Any) -> Dispatcher:
        def consumer(on_assign: Any, on_revoke: Any) -> BatchConsumer:
            return BatchConsumer(self.settings.kafka, self.group, [self.topic], on_assign, on_revoke, self.group)

        options = {"backoff_s": 0.05} | options
        client = client if client is not None else ChannelClient(timeout_s=1.0)
        return Dispatcher(consumer, client, {c.name: c for c in channels}, metrics=metrics, **options)


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    with RecordingReceiver() as running:
        yield running


def value(metric: Any, channel: str) -> float:
    return metric.labels(channel)._value.get()


def test_every_notification_arrives_through_5xx_429_and_timeouts_signed_and_deduplicable(
    broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    pager = PagerDutyChannel(
        name="pager", type="pagerduty", routing_key="pd-key-1", events_url=f"{receiver.url}/v2/enqueue"
    )
    receiver.fail_next(2, status=503)
    receiver.fail_next(1, status=429, headers={"Retry-After": "1"})
    receiver.delay_next(1, 2.0)  # longer than the client's 1 s timeout
    sent = [notification(i, "hook") for i in range(3)]
    sent += [notification(i, "pager") for i in range(3)] + [notification(i, "pager", "resolved") for i in range(3)]
    outbox.publish(sent)
    metrics = WorkerMetrics()
    dispatcher = outbox.dispatcher([hook, pager], metrics)
    dispatcher.start()
    try:
        receiver.wait_for(len(sent), timeout=60)
    finally:
        dispatcher.stop()
    hooks = [(h, orjson.loads(b)) for _, path, h, b in receiver.requests if path == "/hook"]
    assert sorted({body["notification_id"] for _, body in hooks}) == [f"n{i}-hook-firing" for i in range(3)]
    for _method, path, headers, raw in receiver.requests:
        if path == "/hook":
            assert verify_webhook(
                SECRET, raw, headers["X-Streamwatch-Timestamp"], headers["X-Streamwatch-Signature"], time.time()
            )
    pages = [orjson.loads(b) for _, path, _, b in receiver.requests if path == "/v2/enqueue"]
    keys = {(p["dedup_key"], p["event_action"]) for p in pages}
    assert keys == {(f"fp{i}", action) for i in range(3) for action in ("trigger", "resolve")}
    assert all(p["routing_key"] == "pd-key-1" for p in pages)
    retries = value(metrics.notification_retries, "hook") + value(metrics.notification_retries, "pager")
    assert retries >= 4 and value(metrics.notification_failures, "hook") == 0
    assert value(metrics.notifications, "hook") + value(metrics.notifications, "pager") == len(sent)


def test_retry_after_is_honoured(broker: LocalKafka, receiver: RecordingReceiver) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    receiver.fail_next(1, status=429, headers={"Retry-After": "2"})
    outbox.publish([notification(0, "hook")])
    dispatcher = outbox.dispatcher([hook], WorkerMetrics())
    dispatcher.start()
    try:
        receiver.wait_for(1, timeout=30)
    finally:
        dispatcher.stop()
    [refused, *_] = receiver.attempts
    [(_, _, _, _)] = receiver.requests
    assert receiver.request_times[0] - refused[0] >= 1.9


def test_a_restart_loses_nothing_pending_and_a_dead_channel_does_not_hold_up_the_others(
    broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    slack = SlackChannel(name="slack", type="slack", webhook_url=f"{receiver.url}/slack")
    receiver.fail_paths({"/hook"})  # the webhook receiver is down; Slack is fine
    outbox.publish([notification(i, "hook") for i in range(3)] + [notification(i, "slack") for i in range(3)])
    first = outbox.dispatcher([hook, slack], WorkerMetrics())
    first.start()
    receiver.wait_for(3, timeout=30)  # Slack got its three while the webhook kept failing
    assert {p for _, p, _, _ in receiver.requests} == {"/slack"}
    first.stop()  # a restart with three webhook notifications still pending
    receiver.fail_paths(set())
    second = outbox.dispatcher([hook, slack], WorkerMetrics())
    second.start()

    def hooks() -> set[str]:
        return {orjson.loads(b)["notification_id"] for _, p, _, b in list(receiver.requests) if p == "/hook"}

    deadline = time.monotonic() + 60
    try:
        while len(hooks()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        second.stop()
    # At least once: Slack's may come again (their offsets sat behind the webhook's), the webhook's all came.
    assert sorted(hooks()) == [f"n{i}-hook-firing" for i in range(3)]


def test_a_refused_notification_is_given_up_counted_and_the_next_one_goes_through(
    broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    receiver.fail_next(1, status=400)
    outbox.publish([notification(0, "hook"), notification(1, "hook")])
    metrics = WorkerMetrics()
    dispatcher = outbox.dispatcher([hook], metrics)
    dispatcher.start()
    try:
        receiver.wait_for(1, timeout=30)
        deadline = time.monotonic() + 10
        while value(metrics.notification_failures, "hook") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    assert value(metrics.notification_failures, "hook") == 1
    assert [orjson.loads(b)["notification_id"] for *_, b in receiver.requests] == ["n1-hook-firing"]
    assert b"streamwatch_notification_failures_total" in metrics.exposition()


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_garbled_gzip_reply_does_not_end_the_channel(broker: LocalKafka, receiver: RecordingReceiver) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    gzip = {"Content-Encoding": "gzip"}  # over a body that is not gzip: httpx could not decode it
    receiver.fail_next(1, status=503, headers=gzip)  # retried
    receiver.fail_next(1, status=200, headers=gzip)  # accepted: only the status is read
    outbox.publish([notification(0, "hook"), notification(1, "hook")])
    metrics = WorkerMetrics()
    dispatcher = outbox.dispatcher([hook], metrics)
    dispatcher.start()
    try:
        receiver.wait_for(2, timeout=30)
        wait_until(lambda: value(metrics.notifications, "hook") == 2)
    finally:
        dispatcher.stop()
    assert [orjson.loads(b)["notification_id"] for *_, b in receiver.requests] == ["n0-hook-firing", "n1-hook-firing"]
    assert [status for _, _, status in receiver.attempts] == [503, 200, 200]
    assert value(metrics.notification_failures, "hook") == 0


class Breaking:
    """A ChannelClient whose sends of some notifications raise what is not a DeliveryError."""

    def __init__(self, client: ChannelClient, breaks: dict[str, Exception]) -> None:
        self.client, self.breaks = client, breaks
        self.calls: list[str] = []

    def send(self, channel: Channel, notification: Notification) -> None:
        self.calls.append(notification.notification_id)
        error = self.breaks.get(notification.notification_id)
        if error is not None:
            raise error
        self.client.send(channel, notification)


def test_an_unexpected_error_gives_the_notification_up_and_the_channel_goes_on(
    broker: LocalKafka, receiver: RecordingReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamwatch.delivery")
    outbox = Outbox(broker)
    slack = SlackChannel(name="slack", type="slack", webhook_url=f"{receiver.url}/services/T0SECRET")
    client = Breaking(
        ChannelClient(timeout_s=1.0),
        {
            "n0-slack-firing": ValueError("cannot build the payload for https://hooks/services/T0SECRET"),
            "n2-slack-firing": httpx.DecodingError("garbled reply from https://hooks/services/T0SECRET"),
            "n3-slack-firing": KeyError("T0SECRET"),
        },
    )
    outbox.publish([notification(i, "slack") for i in range(5)])
    metrics = WorkerMetrics()
    dispatcher = outbox.dispatcher([slack], metrics, client=client)
    dispatcher.start()
    try:
        receiver.wait_for(2, timeout=30)
        wait_until(lambda: value(metrics.notification_failures, "slack") == 3)
    finally:
        dispatcher.stop()
    assert client.calls == [f"n{i}-slack-firing" for i in range(5)]  # each tried once: not worth retrying
    assert value(metrics.notifications, "slack") == 2
    delivered = [orjson.loads(b)["blocks"][-1]["elements"][0]["text"] for *_, b in receiver.requests]
    assert delivered == ["streamwatch · n1-slack-firing", "streamwatch · n4-slack-firing"]
    given_up = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert len(given_up) == 3 and all("unexpected" in m for m in given_up)
    assert "ValueError at " in given_up[0] and "DecodingError at " in given_up[1]
    assert "T0SECRET" not in caplog.text


def test_the_outbox_moves_past_a_notification_given_up_for_an_unexpected_error(
    broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    outbox.publish([notification(0, "hook"), notification(1, "hook")])
    first = outbox.dispatcher(
        [hook],
        WorkerMetrics(),
        client=Breaking(
            ChannelClient(timeout_s=1.0),
            {
                "n0-hook-firing": ValueError("boom"),
            },
        ),
    )
    first.start()
    try:
        receiver.wait_for(1, timeout=30)
        time.sleep(1.0)  # a commit or two
    finally:
        first.stop()
    second_client = Breaking(ChannelClient(timeout_s=1.0), {})
    outbox.publish([notification(2, "hook")])
    second = outbox.dispatcher([hook], WorkerMetrics(), client=second_client)
    second.start()
    try:
        receiver.wait_for(2, timeout=30)
    finally:
        second.stop()
    assert second_client.calls == ["n2-hook-firing"]  # nothing before it was sent again: its offset was committed


def created(notification_id: str, at_ms: int) -> Notification:
    """A notification to the webhook channel created at ``at_ms``."""
    return Notification(
        notification_id=notification_id, channel="hook", group_key="k", created_at=at_ms, alerts=[alert("f", "firing")]
    )


def test_notifications_older_than_max_outbox_age_are_skipped_counted_and_committed(
    broker: LocalKafka, receiver: RecordingReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streamwatch.delivery")
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    hour = 3_600_000
    now = 60_000 + 100 * hour  # the injected clock: 100 hours after the old notifications were created
    old = [notification(i, "hook") for i in range(4)]  # created at 60,000 + i ms: long past the hour allowed
    fresh = [created(f"fresh{i}", now - hour + i) for i in range(2)]
    outbox.publish([old[0], old[1], fresh[0], old[2], old[3], fresh[1]])  # a replay from the topic's beginning
    metrics = WorkerMetrics()
    first_client = Breaking(ChannelClient(timeout_s=1.0), {})
    first = outbox.dispatcher([hook], metrics, client=first_client, max_outbox_age_ms=hour, clock=lambda: now)
    first.start()
    try:
        receiver.wait_for(2, timeout=30)
        wait_until(lambda: value(metrics.outbox_expired_total, "hook") == 4)
        time.sleep(1.0)  # a commit or two
    finally:
        first.stop()
    assert first_client.calls == ["fresh0", "fresh1"]  # the old ones were never tried
    assert [orjson.loads(b)["notification_id"] for *_, b in receiver.requests] == ["fresh0", "fresh1"]
    assert value(metrics.notifications, "hook") == 2 and value(metrics.outbox_expired_total, "hook") == 4
    assert value(metrics.notification_failures, "hook") == 0
    skipped = [r.getMessage() for r in caplog.records if "outbox notifications created more than" in r.getMessage()]
    assert skipped and sum(int(m.split()[1]) for m in skipped) == 4 and len(skipped) <= 2  # a summary, not 4 lines
    # Their offsets were committed with the rest: the next dispatcher of the group starts after them.
    outbox.publish([created("fresh2", now)])
    second_client = Breaking(ChannelClient(timeout_s=1.0), {})
    second = outbox.dispatcher([hook], WorkerMetrics(), client=second_client, max_outbox_age_ms=hour, clock=lambda: now)
    second.start()
    try:
        receiver.wait_for(3, timeout=30)
    finally:
        second.stop()
    assert second_client.calls == ["fresh2"]


def test_without_a_max_outbox_age_every_notification_is_sent_whatever_its_age(
    broker: LocalKafka, receiver: RecordingReceiver
) -> None:
    outbox = Outbox(broker)
    hook = WebhookChannel(name="hook", type="webhook", url=f"{receiver.url}/hook", signing_secret=SECRET)
    outbox.publish([notification(0, "hook")])  # created in 1970
    dispatcher = outbox.dispatcher([hook], WorkerMetrics(), clock=lambda: 10**13)
    dispatcher.start()
    try:
        receiver.wait_for(1, timeout=30)
    finally:
        dispatcher.stop()
