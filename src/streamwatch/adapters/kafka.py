"""The Kafka adapter: the only module that imports ``confluent_kafka``.

It turns :class:`~streamwatch.config.settings.KafkaSettings` into librdkafka
configuration (the one place secrets are revealed) and offers the few
operations the rest of streamwatch needs: a non-blocking producer transport,
topic creation, and reading a topic back.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from streamwatch.config.settings import KafkaSettings, ProducerSettings
from streamwatch.errors import ConfigError, StreamwatchError

__all__ = [
    "COMMITTED",
    "LIBRDKAFKA_LOG_INTERVAL",
    "BatchConsumer",
    "ConfirmedPublisher",
    "KafkaTransport",
    "LibrdkafkaLogFilter",
    "Message",
    "OnAssign",
    "OnRevoke",
    "PublishError",
    "RefusedMessage",
    "TopicTail",
    "client_config",
    "committed_lag",
    "create_topics",
    "librdkafka_log_kind",
    "librdkafka_logger",
    "read_topics",
    "topic_partitions",
]

_log = logging.getLogger("streamwatch.kafka")

#: Seconds between two lines about the same kind of librdkafka log message (as the SDK's warnings).
LIBRDKAFKA_LOG_INTERVAL = 10.0

# What a broker is called in librdkafka's messages: "[thrd:127.0.0.1:1/bootstrap]: ",
# "sasl_ssl://b1.example:9092/3", "ipv4#10.0.0.7:9092", "'b1.example:9092'".
_THREAD = re.compile(r"^\[thrd:\S*\]:\s*")
_BROKER = re.compile(r"(?:\w+://)?(?:ipv[46]#)?(?:\[[0-9A-Fa-f:.%\w]*\]|[\w.-]+):\d+(?:/\w+)?")
_NUMBER = re.compile(r"\d+")


def librdkafka_log_kind(facility: str, message: str) -> str:
    """What makes two librdkafka log lines "the same kind": the facility and the text without brokers or numbers.

    >>> librdkafka_log_kind("FAIL", "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to "
    ...                     "ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)")
    'FAIL <broker>: Connect to <broker> failed: Connection refused (after Nms in state CONNECT)'
    """
    return f"{facility} {_NUMBER.sub('N', _BROKER.sub('<broker>', _THREAD.sub('', message)))}"


class LibrdkafkaLogFilter(logging.Filter):
    """Let through at most one librdkafka log line of each kind per ``interval`` seconds.

    librdkafka logs every failed connection attempt, several a second while a
    broker is down; this keeps them to the SDK's promise of one line per kind
    of failure every 10 s. The next line of a kind says how many were
    suppressed. Debug lines (asked for with the ``debug`` property) all pass.
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        ours = len(args) == 3  # confluent-kafka logs ("%s [%s] %s", facility, client name, message)
        facility, message = (str(args[0]), str(args[2])) if ours else ("", record.getMessage())
        kind = librdkafka_log_kind(facility, message)
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            if len(self._last) > 1000:  # many kinds (an unusual client): forget the stale ones
                stale = [k for k, t in self._last.items() if now - t >= self.interval]
                for k in stale:
                    del self._last[k]
                    self._suppressed.pop(k, None)
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        if suppressed and ours:
            record.msg = f"{record.msg} (%d similar messages suppressed)"
            record.args = (*args, suppressed)
        return True


#: The logger librdkafka writes to (instead of stderr), rate-limited by kind of message.
librdkafka_logger = logging.getLogger("streamwatch.adapters.kafka.librdkafka")
librdkafka_logger.addFilter(LibrdkafkaLogFilter(LIBRDKAFKA_LOG_INTERVAL))


def client_config(kafka: KafkaSettings) -> dict[str, object]:
    """librdkafka properties for ``kafka``, secrets included. Never log the result."""
    conf: dict[str, object] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": kafka.client_id,
        "security.protocol": kafka.security_protocol,
        # librdkafka logs through Python logging rather than straight to stderr,
        # at most one line per kind of message every 10 s (see LibrdkafkaLogFilter).
        "logger": librdkafka_logger,
        # A broker closing an idle connection is routine (cloud brokers do it every few
        # minutes) and librdkafka reconnects; a broker that is really gone still shows
        # as failed connects and as an error (the SDK's "client error" warning).
        "log.connection.close": False,
    }
    optional = {
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.username": kafka.sasl_username,
        "sasl.password": kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        "ssl.ca.location": kafka.ssl_ca_location,
        "ssl.certificate.location": kafka.ssl_certificate_location,
        "ssl.key.location": kafka.ssl_key_location,
        "ssl.key.password": kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None,
    }
    conf.update({k: str(v) for k, v in optional.items() if v is not None})
    conf.update({k: v.get_secret_value() for k, v in kafka.librdkafka.items()})
    return conf


class KafkaTransport:
    """A confluent-kafka producer that never blocks the caller.

    ``send(topic, value, key)`` raises :class:`BufferError` when the bounded
    buffer is full and one of ``send_errors`` when librdkafka refuses the
    message; both are for the caller to count. ``on_failure(topic, reason)`` is called (from
    ``poll``) for each message that could not be delivered, e.g. because the
    broker stayed unreachable for ``message_timeout_ms``; ``on_error(reason)``
    for client-wide errors such as all brokers being down.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        producer: ProducerSettings,
        *,
        on_failure: Callable[[str, str], object],
        on_error: Callable[[str], object],
    ) -> None:
        def delivered(err: confluent_kafka.KafkaError | None, msg: confluent_kafka.Message) -> None:
            if err is not None:
                on_failure(msg.topic() or "", err.str())

        conf = client_config(kafka)
        conf.update(
            {
                "enable.idempotence": True,
                # Java's default partitioner, so producers in any language put a
                # request's prediction and label on the same partition number.
                "partitioner": "murmur2_random",
                "queue.buffering.max.messages": producer.buffer_max_messages,
                "queue.buffering.max.kbytes": producer.buffer_max_kbytes,
                "linger.ms": producer.linger_ms,
                "message.timeout.ms": producer.message_timeout_ms,
                "compression.type": producer.compression,
                # Only failures call back into Python; successes are counted as
                # "sent minus in flight minus failed", which saves ~0.3 µs an event.
                "delivery.report.only.error": True,
                "on_delivery": delivered,
                "error_cb": lambda err: on_error(err.str()),
            }
        )
        self._producer = confluent_kafka.Producer(conf)
        # The hot path calls librdkafka's produce() directly: a Python wrapper
        # around it would cost a tenth of the whole call.
        self.send = self._producer.produce

    #: What ``send`` raises, besides BufferError, when it refuses a message.
    send_errors: tuple[type[Exception], ...] = (confluent_kafka.KafkaException, TypeError, ValueError)

    def poll(self, timeout: float) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self._producer.flush(timeout)

    def pending(self) -> int:
        return len(self._producer)

    def close(self, timeout: float) -> int:
        """Flush for up to ``timeout`` s, then purge what is left; return how many were purged.

        confluent-kafka's own ``close()`` flushes without a bound, which would
        hang a shutting-down service while the broker is down. Purged events
        are reported to ``on_failure`` like any other undelivered event.
        """
        remaining = self._producer.flush(timeout)
        if remaining:
            self._producer.purge()
            self._producer.flush(1.0)  # serves the purged events' reports
        self._producer.close()
        return remaining


class PublishError(StreamwatchError):
    """A message could not be handed to librdkafka now (its queue stayed full): worth retrying."""


class RefusedMessage(StreamwatchError):
    """A message Kafka refuses for good (too large, invalid): retrying would fail the same way."""


# Delivery errors after which the same message can never be delivered.
_REFUSED_CODES = frozenset(
    {
        confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE,
        confluent_kafka.KafkaError.RECORD_LIST_TOO_LARGE,
        confluent_kafka.KafkaError.INVALID_RECORD,
        confluent_kafka.KafkaError.INVALID_MSG,
        confluent_kafka.KafkaError.INVALID_MSG_SIZE,
    }
)

_Outgoing = tuple[str, bytes | None, bytes | None, list[tuple[str, str | bytes | None]] | None]


class ConfirmedPublisher:
    """A producer for the few messages the worker must not lose: dead letters, alerts, retrain requests.

    Unlike :class:`KafkaTransport` (the SDK's hot path, which only counts failures), every message
    is held until its delivery report confirms it. ``flush(timeout)`` returns how many are not
    confirmed yet, after sending again those whose delivery failed for a reason that may pass
    (the broker unreachable past ``message.timeout.ms``, a leader moving): a caller checkpoints
    only when it returns 0. ``send`` waits while librdkafka's queue is full (raising
    :class:`PublishError` after ``block_s``) and raises :class:`RefusedMessage` for a message Kafka
    will never take; a delivery refused for good the same way is kept for :meth:`refused`.

    ``producer`` (tests) replaces the confluent-kafka producer built from ``kafka``.
    """

    def __init__(
        self, kafka: KafkaSettings, *, block_s: float = 30.0, producer: confluent_kafka.Producer | None = None
    ) -> None:
        conf = client_config(kafka)
        conf.update({"enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60_000})
        self._producer = producer if producer is not None else confluent_kafka.Producer(conf)
        self.block_s = block_s
        self._unconfirmed = 0
        self._retry: list[_Outgoing] = []
        self._refused: list[tuple[str, str]] = []

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        self._produce((topic, value, key, headers))

    def _produce(self, record: _Outgoing) -> None:
        topic, value, key, headers = record

        def delivered(err: confluent_kafka.KafkaError | None, _msg: object) -> None:
            self._unconfirmed -= 1
            if err is None:
                return
            if err.code() in _REFUSED_CODES:
                self._refused.append((topic, err.str()))
            else:
                self._retry.append(record)

        deadline = time.monotonic() + self.block_s
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
                self._unconfirmed += 1
                return
            except BufferError:
                if time.monotonic() >= deadline:
                    full = f"Kafka producer queue full for {self.block_s:g} s (sending to {topic})"
                    raise PublishError(full) from None
                self._producer.poll(0.1)  # serves delivery reports, which frees the queue
            except confluent_kafka.KafkaException as exc:
                error = exc.args[0] if exc.args else None
                code = error.code() if isinstance(error, confluent_kafka.KafkaError) else None
                reason = error.str() if isinstance(error, confluent_kafka.KafkaError) else str(exc)
                if code in _REFUSED_CODES:
                    raise RefusedMessage(f"Kafka refuses the message to {topic}: {reason}") from None
                raise PublishError(f"Kafka producer failed sending to {topic}: {reason}") from None

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s until every message is confirmed; return how many are not."""
        deadline = time.monotonic() + timeout
        while True:
            self._producer.flush(max(0.0, deadline - time.monotonic()))
            again, self._retry = self._retry, []
            for record in again:
                self._produce(record)
            if (not again and self._unconfirmed == 0) or time.monotonic() >= deadline:
                return self._unconfirmed + len(self._retry)

    def refused(self) -> list[tuple[str, str]]:
        """The (topic, reason) of every delivery refused for good since the last call."""
        refused, self._refused = self._refused, []
        return refused

    def close(self, timeout: float) -> int:
        """Flush for up to ``timeout`` s; return how many stay unconfirmed."""
        return self.flush(timeout)


def create_topics(
    kafka: KafkaSettings,
    names: Iterable[str],
    *,
    partitions: int,
    replication: int = 1,
    timeout: float = 30.0,
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create topics that do not exist yet (with topic ``config``, e.g. compaction); return the names created.

    ``replication`` -1 takes the broker's ``default.replication.factor``. A topic the cluster refuses (a
    replication factor beyond its brokers, a missing ACL) is a :class:`StreamwatchError` with Kafka's reason.
    """
    admin = AdminClient(client_config(kafka))  # type: ignore[arg-type]  # its stub takes no object values (our logger)
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [n for n in dict.fromkeys(names) if n not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(n, partitions, replication, config=config or {}) for n in wanted], operation_timeout=timeout
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0]
            if error.code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise StreamwatchError(f"Kafka refused to create topic {name}: {error.str()}") from None
    return created


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    #: The record's Kafka timestamp (epoch ms; the producer's or broker's clock), 0 when unknown.
    timestamp_ms: int = 0


class _Record(Protocol):
    """A consumed ``confluent_kafka.Message`` as read here, once its ``error()`` is None.

    The library types every field optional because an error event has none; a record
    always has its topic, partition and offset. Its value is None only for a tombstone
    (a null value), which no streamwatch producer writes: the silences feed skips one.
    """

    def topic(self) -> str: ...

    def partition(self) -> int: ...

    def offset(self) -> int: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes: ...

    def error(self) -> confluent_kafka.KafkaError | None: ...

    def timestamp(self) -> tuple[int, int]: ...


def read_topics(
    kafka: KafkaSettings, topics: list[str], *, expect: int, timeout: float = 30.0, group: str | None = None
) -> list[Message]:
    """Read from the beginning until ``expect`` messages arrived or ``timeout`` passed."""
    conf = client_config(kafka)
    conf.update(
        {
            "group.id": group or f"streamwatch-reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "receive.message.max.bytes": 1_000_000_000,
        }
    )
    consumer = confluent_kafka.Consumer(conf)
    consumer.subscribe(topics)
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for msg in cast(list[_Record], consumer.consume(1000, timeout=0.2)):
                error = msg.error()
                if error:
                    _log.warning("consumer error: %s", error.str())
                    continue
                out.append(Message(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


#: What ``on_assign`` returns for a partition to resume from the group's committed offset.
COMMITTED = confluent_kafka.OFFSET_STORED

#: ``on_assign(partitions)``: the offset to start each ``(topic, partition)`` at (see :class:`BatchConsumer`).
OnAssign = Callable[[list[tuple[str, int]]], dict[tuple[str, int], int | None]]
#: ``on_revoke(partitions)``: called before the partitions go to another member.
OnRevoke = Callable[[list[tuple[str, int]]], None]


class BatchConsumer:
    """A consumer-group member that hands out batches of raw messages; offsets are the caller's.

    Nothing is committed automatically: the worker seeks each partition it is
    given to where its checkpoint says, and commits only what it has stored.
    Partitions are assigned with the *range* strategy, so that partition ``p``
    of every input topic (equal partition counts) goes to the same member:
    keyed by request id, a prediction and its label meet there.

    ``on_assign(partitions)`` must return the offset to start each
    ``(topic, partition)`` at (``None``: the earliest kept; :data:`COMMITTED`:
    where the group committed, else the earliest). ``on_revoke(partitions)``
    is called before they go to another member, for the caller to checkpoint.
    Both run inside :meth:`consume`.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        group: str,
        topics: list[str],
        on_assign: OnAssign,
        on_revoke: OnRevoke,
        instance_id: str | None = None,
    ) -> None:
        conf = client_config(kafka)
        if instance_id:
            # Static membership: a restarted worker with the same id takes its partitions back at
            # once, instead of waiting for the group to notice that its predecessor died.
            conf["group.instance.id"] = instance_id
        conf.update(
            {
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                # noida-db ignores fetch size limits; a backlog must still fit in one response.
                "receive.message.max.bytes": 1_000_000_000,
                # A crashed member's partitions move on after this long.
                "session.timeout.ms": 6_000,
                # Also the rebalance timeout: how long a join waits for members that stopped
                # polling. The loop polls at least every few seconds, even while ClickHouse is down.
                "max.poll.interval.ms": 20_000,
                "heartbeat.interval.ms": 1_000,
            }
        )
        self._consumer = confluent_kafka.Consumer(conf)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked)

    def _assigned(self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]) -> None:
        starts = self._on_assign([(tp.topic, tp.partition) for tp in partitions])
        for tp in partitions:
            offset = starts.get((tp.topic, tp.partition))
            tp.offset = confluent_kafka.OFFSET_BEGINNING if offset is None else offset
        consumer.assign(partitions)

    def _revoked(self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]) -> None:
        self._on_revoke([(tp.topic, tp.partition) for tp in partitions])
        consumer.unassign()

    def consume(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages (fewer after ``timeout`` seconds); client errors are logged."""
        out = []
        for msg in cast(list[_Record], self._consumer.consume(max_messages, timeout=timeout)):
            error = msg.error()
            if error is not None:
                if error.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                    _log.warning("consumer error: %s", error.str())
                continue
            kind, stamp = msg.timestamp()
            stamp = stamp if kind != confluent_kafka.TIMESTAMP_NOT_AVAILABLE else 0
            # A record with no value (a tombstone) reaches the stage as b"", which it dead-letters.
            out.append(Message(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value() or b"", stamp))
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit the next offset to read per partition (informational: checkpoints hold the truth)."""
        if offsets:
            self._consumer.commit(
                offsets=[confluent_kafka.TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=True
            )

    def pause(self) -> None:
        self._consumer.pause(self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(self._consumer.assignment())

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each assigned partition, from the positions consumed so far."""
        out = {}
        positions = self._consumer.position(self._consumer.assignment())
        for tp in positions:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
            if high is None or high < 0:
                continue
            out[tp.topic, tp.partition] = max(0, high - tp.offset) if tp.offset >= 0 else high
        return out

    def caught_up(self, next_offsets: dict[tuple[str, int], int | None]) -> bool:
        """Whether each partition's end is at the given next offset to read (None: nothing read yet)."""
        for (topic, partition), offset in next_offsets.items():
            low, high = self._consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition(topic, partition), timeout=5.0, cached=False
            )
            if high > (low if offset is None else offset):
                return False
        return True

    def close(self) -> None:
        self._consumer.close()


class TopicTail:
    """Reads every partition of a topic from its beginning, outside any group: for small state topics.

    :meth:`poll` returns what arrived since the last call without waiting long;
    :meth:`read_to_end` everything up to the partitions' current ends.
    """

    def __init__(self, kafka: KafkaSettings, topic: str, timeout: float = 10.0) -> None:
        conf = client_config(kafka)
        conf.update({"group.id": f"streamwatch-tail-{time.time_ns()}", "enable.auto.commit": False})
        self._consumer = confluent_kafka.Consumer(conf)
        metadata = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            self._consumer.close()
            raise ConfigError(f"topic {topic} does not exist: run `streamwatch init` first")
        self._partitions = [
            confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in metadata.partitions
        ]
        self._consumer.assign(self._partitions)
        self._next = {tp.partition: 0 for tp in self._partitions}

    def poll(self, timeout: float = 0.0) -> list[Message]:
        out = []
        for msg in cast(list[_Record], self._consumer.consume(1000, timeout=timeout)):
            if msg.error() is None:
                out.append(Message(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))
                self._next[msg.partition()] = msg.offset() + 1
        return out

    def read_to_end(self, timeout: float = 10.0) -> list[Message]:
        ends = {
            tp.partition: self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)[1]
            for tp in self._partitions
        }
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while any(self._next[p] < end for p, end in ends.items()) and time.monotonic() < deadline:
            out += self.poll(0.2)
        return out

    def close(self) -> None:
        self._consumer.close()


def topic_partitions(kafka: KafkaSettings, topic: str, timeout: float = 10.0) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    admin = AdminClient(client_config(kafka))  # type: ignore[arg-type]  # its stub takes no object values (our logger)
    metadata = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    return 0 if metadata is None or metadata.error is not None else len(metadata.partitions)


def committed_lag(kafka: KafkaSettings, group: str, topics: list[str], timeout: float = 10.0) -> int:
    """Messages of ``topics`` beyond what ``group`` has committed (all of a partition it never committed)."""
    conf = client_config(kafka)
    conf.update({"group.id": group, "enable.auto.commit": False})
    consumer = confluent_kafka.Consumer(conf)
    try:
        partitions = [
            confluent_kafka.TopicPartition(topic, p)
            for topic in topics
            for p in consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        ]
        total = 0
        for tp in consumer.committed(partitions, timeout=timeout):
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total
    finally:
        consumer.close()
