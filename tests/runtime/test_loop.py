"""The worker runtime against a real broker (noida-db) and real ClickHouse (chdb): exact, whatever happens."""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamwatch.adapters.clickhouse import StorageError, Store
from streamwatch.adapters.kafka import BatchConsumer, ConfirmedPublisher, KafkaTransport, create_topics, read_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.clock import now_ms
from streamwatch.config.settings import load_settings
from streamwatch.contract.events import parse_event
from streamwatch.errors import ContractError
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.runtime.loop import RuntimeSettings, WorkerRuntime
from streamwatch.runtime.report_runner import AlertTopics, ReportRunner
from tests.pipeline.test_merge import PROFILE, RAWS, WHOLE, same
from tests.pipeline.test_pipeline import START

pytestmark = pytest.mark.kafka
PARTITIONS = 3
_groups = itertools.count()
BAD = [b"not json", b'{"type":"prediction"}', b"[1,2]", b'{"type":"label","model":"\xff"}', b"{" * 70_000]


def pipeline() -> Pipeline:
    return Pipeline({("credit", "3"): PROFILE}, rolling_windows=3, min_samples=5, slices={"credit": [["gender"]]})


def request_id(raw: bytes) -> bytes:
    return raw.split(b'"request_id":"')[1].split(b'"')[0]


def heartbeats(start_ms: int) -> list[tuple[bytes, bytes]]:
    """One prediction of another model per partition, far later, so every window of ``credit`` closes."""
    from streamwatch.contract.encode import Encoder

    encoder = Encoder(clock_ms=now_ms)
    return [
        (
            f"tick-{n}".encode(),
            encoder.prediction(
                "clock", "1", f"tick-{n}", 1.0, None, 1, 0.5, "production", "ok", None, None, None, start_ms + n, None
            ),
        )
        for n in range(40)  # keys spread over every partition (murmur2)
    ]


class Setup:
    def __init__(self, broker: LocalKafka) -> None:
        n = next(_groups)
        self.settings = load_settings(
            kafka={"bootstrap_servers": broker.bootstrap_servers},
            topics={
                "predictions": f"rt{n}.predictions",
                "features": f"rt{n}.features",
                "labels": f"rt{n}.labels",
                "deadletter": f"rt{n}.deadletter",
                "partitions": PARTITIONS,
            },
        )
        t = self.settings.topics
        create_topics(self.settings.kafka, [t.predictions, t.features, t.labels], partitions=PARTITIONS)
        create_topics(self.settings.kafka, [t.deadletter], partitions=1)
        self.rts = RuntimeSettings.from_settings(
            self.settings,
            group=f"rt{n}",
            batch_size=500,
            checkpoint_interval_ms=300,
            idle_timeout_ms=2_000,
            metrics_interval_s=0.5,
            max_age_ms=3650 * 86_400_000,  # the test streams are dated November 2026, whenever the tests run
        )

    def publish(self, raws: list[bytes], bad: list[bytes] = ()) -> int:  # type: ignore[assignment]
        transport = KafkaTransport(
            self.settings.kafka, self.settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None
        )
        t = self.rts

        def send(topic: str, raw: bytes, key: bytes) -> None:
            while True:
                try:
                    return transport.send(topic, raw, key)
                except BufferError:  # the producer's buffer is full: let it drain
                    transport.poll(0.1)

        for raw in raws:
            send(t.labels if raw.startswith(b'{"type":"label"') else t.predictions, raw, request_id(raw))
        for i, raw in enumerate(bad):
            send(t.predictions, raw, f"bad-{i}".encode())
        end = max(int(r.split(b'"timestamp":')[1].split(b",")[0].split(b"}")[0]) for r in raws)
        for key, raw in heartbeats(end + 600_000):
            send(t.predictions, raw, key)
        assert transport.close(30.0) == 0
        return len(raws) + len(bad) + 40

    @property
    def alert_topics(self) -> AlertTopics:
        g = self.rts.group
        return AlertTopics(f"{g}.alerts", f"{g}.retrain", f"{g}.control", f"{g}.notifications")

    def runtime(self, store: Store, pipe: Pipeline | None = None, alerting: Any = None, **runner: Any) -> WorkerRuntime:
        pipe = pipe or pipeline()
        transport = ConfirmedPublisher(self.settings.kafka)
        create_topics(self.settings.kafka, list(vars(self.alert_topics).values()), partitions=1)
        reporter = ReportRunner(
            pipe,
            store,
            self.rts.group,
            PARTITIONS,
            alerting=alerting,
            transport=transport,
            topics=self.alert_topics,
            **runner,
        )

        def consumer(on_assign: Any, on_revoke: Any) -> BatchConsumer:
            return BatchConsumer(self.settings.kafka, self.rts.group, self.rts.inputs, on_assign, on_revoke)

        return WorkerRuntime(pipe, store, consumer, transport, self.rts, report_runner=reporter)


def run_until(runtimes: list[WorkerRuntime], done: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the workers did not finish in time"
        for runtime in runtimes:
            runtime.step()


def credit_rows(store: Store) -> dict[Any, Any]:
    return {
        (r.model, r.model_version, r.variant, r.window, r.window_start_ms, r.metric, r.feature, r.segment): (
            r.value,
            r.lower,
            r.upper,
            r.threshold,
        )
        for r in store.metrics(model="credit")
    }


def complete(runtimes: list[WorkerRuntime], published: int) -> Callable[[], bool]:
    """Done once every message is consumed and, after that, every partition had time to go idle."""
    wait_s = 2 * runtimes[0].settings.idle_timeout_ms / 1000 + 1
    consumed_at: list[float] = []

    def done() -> bool:
        consumed = sum(r.metrics.events.labels(t)._value.get() for r in runtimes for t in r.settings.inputs)
        if consumed < published:
            return False
        consumed_at.append(time.monotonic())
        return time.monotonic() - consumed_at[0] > wait_s

    return done


def test_a_worker_stores_exactly_what_the_pipeline_computes_and_dead_letters_every_bad_message(
    broker: LocalKafka, store: Store
) -> None:
    setup = Setup(broker)
    published = setup.publish(RAWS, BAD)
    runtime = setup.runtime(store)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    same(credit_rows(store), WHOLE[0])
    letters = store.dead_letters()
    assert sorted(d.raw for d in letters) == sorted(BAD)
    assert all(d.reason and d.source.topic == setup.rts.predictions for d in letters)
    published = read_topics(setup.settings.kafka, [setup.rts.deadletter], expect=len(BAD), timeout=10)
    assert sorted(m.value for m in published) == sorted(BAD)
    assert store.count("predictions") == sum(b'"type":"prediction"' in r for r in RAWS) + 40
    assert store.count("labels") == sum(r.startswith(b'{"type":"label"') for r in RAWS)


def test_a_tombstone_on_an_input_topic_is_a_dead_letter_not_a_crash(broker: LocalKafka, store: Store) -> None:
    # A record with a null value (a tombstone, e.g. from a compaction tool) once crashed the loop
    # at len(None) in decode, and a worker that raises never advances its offsets.
    setup = Setup(broker)
    transport = KafkaTransport(
        setup.settings.kafka, setup.settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None
    )
    transport.send(setup.rts.predictions, None, b"tombstone")
    assert transport.close(30.0) == 0
    published = setup.publish(RAWS) + 1
    runtime = setup.runtime(store)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    same(credit_rows(store), WHOLE[0])
    [letter] = store.dead_letters()
    assert letter.raw == b"" and "tombstone" in letter.reason


def test_two_workers_give_what_one_gives_and_one_leaving_loses_nothing(broker: LocalKafka, store: Store) -> None:
    setup = Setup(broker)
    published = setup.publish(RAWS, BAD)
    first, second = setup.runtime(store), setup.runtime(store)
    try:
        run_until([first, second], lambda: first.streams and second.streams, timeout=60)
        assert set(first.streams).isdisjoint(second.streams)
        for _ in range(3):
            first.step()
            second.step()
        first.close()  # leaves the group mid-run: the second takes its partitions over
        run_until([second], lambda: len(second.streams) == PARTITIONS, timeout=60)
        run_until([second], complete([first, second], published))
    finally:
        second.close()
    same(credit_rows(store), WHOLE[0])
    assert sorted(d.raw for d in store.dead_letters()) == sorted(BAD)


class FlakyStore:
    """The real store, unreachable for the first ``outage`` seconds after the first write."""

    def __init__(self, store: Store, outage: float) -> None:
        self.store, self.outage, self.began, self.refused = store, outage, None, 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.store, name)
        if not name.startswith(("insert_", "save_")):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            now = time.monotonic()
            self.began = self.began or now
            if now - self.began < self.outage:
                self.refused += 1
                raise StorageError("connection refused (injected)")
            return target(*args, **kwargs)

        return call


def test_clickhouse_down_for_a_while_pauses_the_worker_which_then_catches_up(broker: LocalKafka, store: Store) -> None:
    setup = Setup(broker)
    published = setup.publish(RAWS, BAD)
    flaky = FlakyStore(store, outage=4.0)
    runtime = setup.runtime(flaky)  # type: ignore[arg-type]
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    assert flaky.refused >= 3
    assert runtime.metrics.storage_errors._value.get() >= 3
    same(credit_rows(store), WHOLE[0])


def mutate(raw: bytes, rng: random.Random) -> bytes:
    """A bad message made from a good one: the ways real producers and networks break events."""
    kind = rng.randrange(9)
    if kind == 0:  # a byte flipped anywhere
        i = rng.randrange(len(raw))
        return raw[:i] + bytes([raw[i] ^ (1 << rng.randrange(8))]) + raw[i + 1 :]
    if kind == 1:  # cut short
        return raw[: rng.randrange(len(raw))]
    if kind == 2:  # a timestamp centuries off
        event = orjson.loads(raw)
        event["timestamp"] = rng.choice([-(10**15), 10**15, "1066-10-14T12:00:00Z", "3026-01-01T00:00:00Z"])
        return orjson.dumps(event)
    if kind == 3:  # a required field missing
        event = orjson.loads(raw)
        event.pop(rng.choice(["event_id", "request_id", "model", "timestamp"]))
        return orjson.dumps(event)
    if kind == 4:  # a field of the wrong type
        event = orjson.loads(raw)
        event[rng.choice(["latency_ms", "score", "model", "features"])] = rng.choice([[], {"x": [1]}, "NaN", -1])
        return orjson.dumps(event)
    if kind == 5:  # over the size limit
        return raw[:-1] + b',"metadata":{"pad":"' + b"x" * 70_000 + b'"}}'
    if kind == 6:  # not UTF-8
        return raw.replace(b'"credit"', b'"cr\xff\xfedit"', 1)
    if kind == 7:  # not an object at all
        return rng.choice([b"null", b"[]", b"42", b'"text"', b"", b"\x00\x01\x02"])
    return raw + b"}"  # trailing garbage


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_ten_thousand_bad_messages_among_good_ones_are_all_accounted_for(
    seed: int, broker: LocalKafka, store: Store
) -> None:
    # Hypothesis picks the seed (and reports it on failure); 10,000 draws from its buffer would not fit.
    rng = random.Random(seed)
    setup = Setup(broker)
    # 10,000 messages the contract itself refuses (a flipped byte can leave an event valid: skipped).
    refused: list[bytes] = []
    while len(refused) < 10_000:
        raw = mutate(rng.choice(RAWS), rng)
        try:
            parse_event(raw)
        except ContractError:
            refused.append(raw)
    bad = refused
    published = setup.publish(RAWS, bad)
    runtime = setup.runtime(store)
    try:
        run_until([runtime], complete([runtime], published), timeout=180)
    finally:
        runtime.close()
    consumed = sum(runtime.metrics.events.labels(t)._value.get() for t in runtime.settings.inputs)
    assert consumed == published
    assert sorted(d.raw for d in store.dead_letters()) == sorted(refused)
    assert runtime.metrics.dead_letters._value.get() == len(refused)
    good_ids = {orjson.loads(r)["event_id"] for r in RAWS if r.startswith(b'{"type":"prediction"')}
    stored_ids = {row[0] for row in store.query("SELECT event_id FROM {db}.predictions FINAL WHERE model = 'credit'")}
    assert stored_ids == good_ids  # every good prediction stored, once
    same(credit_rows(store), WHOLE[0])  # and the bad ones changed no figure


def test_an_event_dated_far_from_when_it_was_published_is_a_dead_letter(broker: LocalKafka, store: Store) -> None:
    from streamwatch.contract.encode import Encoder

    setup = Setup(broker)
    setup.rts = dataclasses.replace(setup.rts, max_age_ms=7 * 86_400_000, max_future_ms=86_400_000)
    now = now_ms()
    encoder = Encoder(clock_ms=now_ms)
    at = {"now": now, "year 2999": 32_500_000_000_000, "a month ago": now - 30 * 86_400_000}
    raws = [
        encoder.prediction("credit", "3", f"r-{name}", 5.0, None, 1, 0.5, "production", "ok", None, None, None, t, None)
        for name, t in at.items()
    ]
    published = setup.publish(raws)
    runtime = setup.runtime(store)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    letters = {orjson.loads(d.raw)["request_id"]: d.reason for d in store.dead_letters()}
    letters = {k: v for k, v in letters.items() if k.startswith("r-")}  # (publish's heartbeats follow year 2999)
    assert letters == {
        "r-year 2999": "prediction event: timestamp: too far in the future of when it was published",
        "r-a month ago": "prediction event: timestamp: too far in the past of when it was published",
    }
    assert store.query("SELECT request_id FROM {db}.predictions FINAL WHERE model = 'credit'") == [("r-now",)]
    # counted in /metrics and in the worker_metrics table
    screened = 2 + 40  # the two above, and publish's heartbeats (dated after year 2999's event)
    assert runtime.metrics.screened.labels("implausible_time")._value.get() == screened
    stored = store.query("SELECT max(value) FROM {db}.worker_metrics WHERE name = 'streamwatch_screened_total'")
    assert stored == [(float(screened),)]


def test_an_alert_rule_fires_on_the_drifted_window_and_resolves_and_both_are_stored_and_published(
    broker: LocalKafka, store: Store
) -> None:
    from streamwatch.alerts.engine import Alerting
    from streamwatch.config.models import RuleConfig
    from streamwatch.config.rules import AlertingConfig
    from streamwatch.contract.events import AlertEvent

    setup = Setup(broker)
    drift = RuleConfig(
        name="income-drift",
        kind="drift",
        feature="income",
        # 0.5 std: the stream's shift is 1.5 std, and 150-value windows wander past 0.1 by chance.
        when={"metric": "wasserstein", "op": ">", "threshold": 0.5},
        runbook_url="https://runbooks.example.com/drift",
    )
    published = setup.publish(RAWS)
    pipe = pipeline()
    alerting = Alerting([drift], {}, AlertingConfig(default_rules=False), pipe.profiles, window_ms=pipe.window_ms)
    runtime = setup.runtime(store, pipe, alerting)
    try:
        run_until([runtime], complete([runtime], published))
    finally:
        runtime.close()
    rows = store.query(
        "SELECT status, toUnixTimestamp64Milli(window_start), fingerprint FROM {db}.alerts FINAL ORDER BY window_start"
    )
    drifted = START + 2 * 60_000  # the stream shifts income in its third minute
    assert [(status, start) for status, start, _ in rows] == [("firing", drifted), ("resolved", drifted + 60_000)]
    events = [
        AlertEvent.model_validate_json(m.value)
        for m in read_topics(setup.settings.kafka, [f"{setup.rts.group}.alerts"], expect=2, timeout=10)
    ]
    assert [e.status for e in events] == ["firing", "resolved"] and len({e.fingerprint for e in events}) == 1
    firing = events[0]
    assert firing.feature == "income" and firing.lineage["content_sha256"] == "f" * 64
    assert firing.runbook_url == "https://runbooks.example.com/drift" and "wasserstein of income" in firing.reason
