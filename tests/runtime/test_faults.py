"""Fault injection at every write of the worker and the reporter: nothing lost, nothing doubled, still consuming.

The parts are the real ones (chdb, noida-db); the faults come from two thin wrappers:
:class:`RefusingClient` around the ClickHouse client (a connection error, or "too many
partitions" for a block of more than one row: the error a batch spanning 150 months gets) and
:class:`RefusingProducer` around librdkafka's producer (a full queue, a delivery that times out
after the send, or a message Kafka refuses for good).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka
import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.kafka import ConfirmedPublisher, read_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.alerts.engine import Alerting
from streamwatch.config.models import RuleConfig
from streamwatch.config.rules import AlertingConfig
from streamwatch.runtime.loop import DEAD_LETTER_MAX_BYTES, WorkerRuntime
from tests.pipeline.test_merge import RAWS, WHOLE, same
from tests.pipeline.test_pipeline import START
from tests.runtime.test_loop import BAD, PARTITIONS, Setup, complete, credit_rows, pipeline, run_until

pytestmark = pytest.mark.kafka

TABLES = ("predictions", "labels", "dead_letters", "partials", "checkpoints", "metrics", "findings", "alerts")
DRIFTED = START + 2 * 60_000  # the stream shifts income in its third minute


class RefusingClient:
    """The real ClickHouse client, refusing the first ``times`` inserts into each of ``tables``.

    ``kind`` "transient" is a lost connection; "split" is ClickHouse's "too many partitions for
    single INSERT block", raised for any block of more than one row (a one-row block is taken),
    which only splitting gets past (a checkpoint, one row, is refused as it is: as if too large);
    "poison" refuses for good any block holding ``poison``.
    """

    def __init__(self, client: Any, tables: tuple[str, ...], kind: str, times: int = 2, poison: str = "") -> None:
        self.client, self.tables, self.kind, self.poison = client, tables, kind, poison
        self.left = dict.fromkeys(tables, times)
        self.refused = dict.fromkeys(tables, 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def insert(self, table: str, columns: Any, **kwargs: Any) -> Any:
        name = table.rsplit(".", 1)[-1]
        if name in self.tables:
            if self.kind == "poison":
                if any(self.poison in str(value) for column in columns for value in column):
                    self.refused[name] += 1
                    raise DatabaseError("Code: 53. DB::Exception: Type mismatch (injected). (TYPE_MISMATCH)")
            elif self.left[name] > 0 and (self.kind == "transient" or len(columns[0]) > 1 or name == "checkpoints"):
                self.left[name] -= 1
                self.refused[name] += 1
                if self.kind == "transient":
                    raise OperationalError("Error HTTPConnectionPool: connection refused (injected)")
                raise DatabaseError(
                    "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). "
                    "(TOO_MANY_PARTS)"
                )
        return self.client.insert(table, columns, **kwargs)


class RefusingProducer:
    """librdkafka's producer, refusing the first ``times`` messages to each of ``topics``.

    "transient" alternates a full queue (``BufferError`` at the send) with a delivery that fails
    after it (its report says timed out); "permanent" is Kafka refusing the message as too large.
    """

    def __init__(self, producer: confluent_kafka.Producer, topics: tuple[str, ...], kind: str, times: int = 2):
        self.producer, self.topics, self.kind = producer, topics, kind
        self.left = dict.fromkeys(topics, times)
        self.refused = dict.fromkeys(topics, 0)
        self._failed: list[Callable[..., None]] = []

    def produce(self, topic: str, value: Any, key: Any = None, **kwargs: Any) -> None:
        if self.left.get(topic, 0) > 0:
            self.left[topic] -= 1
            self.refused[topic] += 1
            if self.kind == "permanent":
                raise confluent_kafka.KafkaException(
                    confluent_kafka.KafkaError(confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE)
                )
            if self.left[topic] % 2:
                raise BufferError("Local: Queue full (injected)")
            self._failed.append(kwargs["on_delivery"])  # accepted, then its delivery fails
            return None
        return self.producer.produce(topic, value, key, **kwargs)

    def _report_failures(self) -> None:
        failed, self._failed = self._failed, []
        for report in failed:
            report(confluent_kafka.KafkaError(confluent_kafka.KafkaError._MSG_TIMED_OUT), None)

    def poll(self, timeout: float) -> int:
        self._report_failures()
        return self.producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        self._report_failures()
        return self.producer.flush(timeout)


def drift_alerting(pipe: Any) -> Alerting:
    drift = RuleConfig(
        name="income-drift", kind="drift", feature="income", when={"metric": "wasserstein", "op": ">", "threshold": 0.5}
    )
    return Alerting([drift], {}, AlertingConfig(default_rules=False), pipe.profiles, window_ms=pipe.window_ms)


def faulty_runtime(setup: Setup, store: Store, producer_faults: tuple[tuple[str, ...], str] | None) -> WorkerRuntime:
    pipe = pipeline()
    runtime = setup.runtime(store, pipe, drift_alerting(pipe))
    if producer_faults is not None:
        topics, kind = producer_faults
        publisher = ConfirmedPublisher(setup.settings.kafka)
        publisher._producer = RefusingProducer(publisher._producer, topics, kind)  # type: ignore[assignment]
        runtime.dead_letter_topic = publisher
        runtime.report_runner.transport = publisher
    return runtime


def still_consuming(setup: Setup, runtime: WorkerRuntime) -> None:
    """One more message goes through the worker after the faults."""
    topic = setup.rts.predictions
    before = runtime.metrics.events.labels(topic)._value.get()
    producer = ConfirmedPublisher(setup.settings.kafka)
    producer.send(topic, b'{"type":"prediction"}', b"after-the-faults")
    assert producer.flush(10.0) == 0
    run_until([runtime], lambda: runtime.metrics.events.labels(topic)._value.get() > before, timeout=30)


def finding_identities(findings: Any) -> set[Any]:
    return {(f.kind, f.model_version, f.variant, f.window_start_ms, f.metric, f.feature, f.segment) for f in findings}


def assert_exact(setup: Setup, store: Store, runtime: WorkerRuntime, published: int) -> None:
    """Every row, finding, alert and dead letter once, as an uninterrupted run stores them."""
    same(credit_rows(store), WHOLE[0])
    assert finding_identities(store.findings(model="credit")) == {f[:7] for f in WHOLE[1]}
    statuses = store.query("SELECT status, toUnixTimestamp64Milli(window_start) FROM {db}.alerts FINAL ORDER BY 2")
    assert statuses == [("firing", DRIFTED), ("resolved", DRIFTED + 60_000)]
    assert sorted(d.raw for d in store.dead_letters()) == sorted(BAD)
    for table, expected in (
        ("predictions", published - len(BAD) - sum(r.startswith(b'{"type":"label"') for r in RAWS)),
    ):
        assert store.count(table) == expected
    # FINAL shows each row once; without it, a retried insert may still show twice until a merge.
    [(dupes,)] = store.query(
        "SELECT count() - uniqExact(model, model_version, variant, window, window_start, metric, feature, segment_key) "
        "FROM {db}.metrics FINAL"
    )
    assert dupes == 0
    assert runtime.metrics.events.labels(setup.rts.predictions)._value.get() > 0


@pytest.mark.parametrize("kind", ["transient", "split"])
def test_clickhouse_refusing_every_write_loses_nothing_and_doubles_nothing(
    broker: LocalKafka, store: Store, kind: str
) -> None:
    setup = Setup(broker)
    published = setup.publish(RAWS, BAD)
    refusing = RefusingClient(store.client, TABLES, kind)
    faulty = Store(refusing, store.database)
    runtime = faulty_runtime(setup, faulty, None)
    try:
        run_until([runtime], complete([runtime], published))
        assert all(n > 0 for n in refusing.refused.values()), refusing.refused  # every write was refused
        assert_exact(setup, store, runtime, published)
        if kind == "transient":
            assert runtime.metrics.storage_errors._value.get() >= len(TABLES)
        alerts = read_topics(setup.settings.kafka, [setup.alert_topics.alerts], expect=2, timeout=10)
        assert sorted(orjson.loads(m.value)["status"] for m in alerts) == ["firing", "resolved"]
        still_consuming(setup, runtime)
    finally:
        runtime.close()


def test_an_event_clickhouse_refuses_for_good_is_a_dead_letter_and_the_rest_is_stored(
    broker: LocalKafka, store: Store
) -> None:
    setup = Setup(broker)
    published = setup.publish(RAWS)
    poison = orjson.loads(next(r for r in RAWS if b'"type":"prediction"' in r))["request_id"]
    refusing = RefusingClient(store.client, ("predictions",), "poison", poison=poison)
    runtime = faulty_runtime(setup, Store(refusing, store.database), None)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    poisoned = [r for r in RAWS if b'"type":"prediction"' in r and orjson.loads(r)["request_id"] == poison]
    assert len(poisoned) == 2  # production's and the canary's prediction of that request
    letters = store.dead_letters()
    assert sorted(d.raw for d in letters) == sorted(poisoned)
    assert all(d.reason.startswith("prediction event: ClickHouse refused it: ") for d in letters)
    assert all("TYPE_MISMATCH" in d.reason for d in letters)
    [(stored,)] = store.query("SELECT count() FROM {db}.predictions FINAL WHERE request_id = {r:String}", {"r": poison})
    assert stored == 0
    assert store.count("predictions") == published - sum(r.startswith(b'{"type":"label"') for r in RAWS) - 2
    assert runtime.metrics.refused_rows.labels("predictions")._value.get() == 2


@pytest.mark.parametrize("kind", ["transient", "permanent"])
def test_kafka_refusing_dead_letters_and_alerting_messages(broker: LocalKafka, store: Store, kind: str) -> None:
    setup = Setup(broker)
    published = setup.publish(RAWS, BAD)
    topics = (setup.rts.deadletter, setup.alert_topics.alerts)
    runtime = faulty_runtime(setup, store, (topics, kind))
    producer = runtime.dead_letter_topic._producer  # type: ignore[attr-defined]
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    assert all(n > 0 for n in producer.refused.values()), producer.refused
    assert_exact(setup, store, runtime, published)  # the tables have every dead letter and alert
    letters = read_topics(setup.settings.kafka, [setup.rts.deadletter], expect=len(BAD), timeout=10)
    alerts = read_topics(setup.settings.kafka, [setup.alert_topics.alerts], expect=2, timeout=10)
    if kind == "transient":  # each message delivered in the end (at least once)
        assert sorted(set(m.value for m in letters)) == sorted(BAD)
        assert sorted({orjson.loads(m.value)["status"] for m in alerts}) == ["firing", "resolved"]
    else:  # refused for good: counted and logged, never retried; the tables above still hold them
        assert len(letters) == len(BAD) - 2 and len(alerts) == 0
        refused = runtime.metrics.refused_rows
        assert refused.labels(f"{setup.rts.deadletter} topic")._value.get() == 2


def test_a_dead_letter_over_the_producers_limit_reaches_its_topic_truncated_and_clickhouse_whole(
    broker: LocalKafka, store: Store
) -> None:
    # The broker takes ~1 MB messages that librdkafka's producer (message.max.bytes 1,000,000) refuses.
    huge = b"{" + b" " * 1_020_000
    setup = Setup(broker)
    big = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap_servers, "message.max.bytes": 2_000_000})
    big.produce(setup.rts.predictions, huge, b"huge")
    assert big.flush(10.0) == 0
    published = setup.publish(RAWS) + 1
    runtime = setup.runtime(store)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    [letter] = store.dead_letters()
    assert letter.raw == huge
    [message] = read_topics(setup.settings.kafka, [setup.rts.deadletter], expect=1, timeout=10)
    assert message.value == huge[:DEAD_LETTER_MAX_BYTES]
    same(credit_rows(store), WHOLE[0])


def settled(runtime: WorkerRuntime, settle_s: float) -> Callable[[], bool]:
    """Done once ``runtime`` owns every partition, has read each to its end and shown every label it holds
    in a performance partial, and ``settle_s`` more seconds (a report) went by.

    (Counting stored rows is not enough: every row exists long before its last value does.)
    """
    settled_at: list[float] = []

    def done() -> bool:
        streams = runtime.streams
        if len(streams) < PARTITIONS or not runtime._reporting:
            return False
        inputs = runtime.settings.inputs
        for number, stream in streams.items():
            if stream.stage.performance_pending:
                return False
            if not runtime.consumer.caught_up({(t, number): stream.offsets.get(t) for t in inputs}):
                return False
        settled_at.append(time.monotonic())
        return time.monotonic() - settled_at[0] > settle_s

    return done


class ExplodingTopic:
    """A dead-letter topic whose send raises what librdkafka raised once: an unexpected error."""

    def __init__(self, real: Any) -> None:
        self.real, self.exploded = real, False

    def send(self, *args: Any, **kwargs: Any) -> None:
        self.exploded = True
        raise RuntimeError("unexpected (injected)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_step_that_raises_checkpoints_nothing_and_a_restart_redoes_it_exactly(
    broker: LocalKafka, store: Store
) -> None:
    setup = Setup(broker)
    setup.rts = dataclasses.replace(setup.rts, checkpoint_interval_ms=0)
    setup.publish(RAWS, BAD)
    first = setup.runtime(store)
    first.dead_letter_topic = ExplodingTopic(first.dead_letter_topic)  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="injected"):
        run_until([first], lambda: False, timeout=60)
    first.close()  # after a failed step: no checkpoint past the batch whose dead letters were not sent
    assert first.failed
    with pytest.raises(RuntimeError, match="failed in an earlier step"):
        first.step()
    second = setup.runtime(store)
    try:
        run_until([second], settled(second, 2 * setup.rts.report_interval_ms / 1000 + 1))
    finally:
        second.close()
    same(credit_rows(store), WHOLE[0])
    assert sorted(d.raw for d in store.dead_letters()) == sorted(BAD)
    letters = read_topics(setup.settings.kafka, [setup.rts.deadletter], expect=len(BAD), timeout=10)
    assert sorted(set(m.value for m in letters)) == sorted(BAD)
