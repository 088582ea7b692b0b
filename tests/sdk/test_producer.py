"""The producer SDK against a real Kafka-protocol broker (noida-db over TCP)."""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from streamwatch import ContractError, Producer, new_request_id
from streamwatch.adapters.kafka import create_topics, read_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.events import LabelEvent, PredictionEvent, parse_event

SCHEMA = json.loads((Path(__file__).parent.parent.parent / "schemas" / "input-event.schema.json").read_text())


def features(i: int) -> dict[str, object]:
    return {
        "age": 20 + i % 50,
        "income": 1000.5 * i,
        "region": ["north", "south"][i % 2],
        "flag": i % 3 == 0,
        "missing": None,
    }


def test_events_published_by_the_sdk_come_back_valid(settings: Settings) -> None:
    with Producer(settings=settings, model="credit-risk", model_version="3.1.0", strict=True) as monitor:
        request_ids = []
        for i in range(300):
            rid = monitor.log_prediction(
                features=features(i),
                prediction=i % 2,
                score=(i % 100) / 100,
                latency_ms=5 + i % 7,
                segments={"gender": "FM"[i % 2]},
                variant="canary" if i % 10 == 0 else "production",
                # numpy arrays, as a service has its embeddings; every third event, so both versions are sent
                embeddings={"text": np.full(384, i / 7, dtype=np.float64)} if i % 3 == 0 else None,
            )
            request_ids.append(rid)
        for rid in request_ids[::2]:
            monitor.log_label(request_id=rid, label=1)
        monitor.log_features(features={"bureau": 700}, request_id=request_ids[0])
    stats = monitor.stats()
    assert (stats.queued, stats.delivered, stats.in_flight, stats.dropped) == (451, 451, 0, 0)

    topics = settings.topics
    messages = read_topics(settings.kafka, [topics.predictions, topics.labels, topics.features], expect=451)
    assert len(messages) == 451
    validator = jsonschema.Draft202012Validator(SCHEMA)
    partition_of: dict[str, int] = {}
    label_partitions = []
    for message in messages:
        validator.validate(orjson.loads(message.value))
        event = parse_event(message.value)
        assert message.key == event.request_id.encode()  # keyed by request id
        if isinstance(event, PredictionEvent):
            partition_of[event.request_id] = message.partition
            # Events without embeddings stay at version 1, which workers of the previous release read.
            assert event.schema_version == (2 if event.embeddings else 1)
            if event.embeddings:
                i = request_ids.index(event.request_id)
                sent = np.float32(event.embeddings["text"])
                assert i % 3 == 0 and np.array_equal(sent, np.full(384, np.float32(i / 7)))
        elif isinstance(event, LabelEvent):
            label_partitions.append((event.request_id, message.partition))
    assert sorted(partition_of) == sorted(request_ids)
    assert len({p for p in partition_of.values()}) == 3  # spread over every partition
    assert all(partition_of[rid] == part for rid, part in label_partitions)


def test_calls_never_block_or_raise_while_the_broker_is_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="streamwatch")
    broker = LocalKafka(data_dir=tmp_path / "kafka")
    broker.start()
    try:
        settings = load_settings(
            kafka={"bootstrap_servers": broker.bootstrap_servers},
            producer={"buffer_max_messages": 500, "message_timeout_ms": 2000},
        )
        create_topics(settings.kafka, [settings.topics.predictions, settings.topics.labels], partitions=1)
        monitor = Producer(settings=settings, model="m", model_version="1", strict=True)
        for i in range(50):
            monitor.log_prediction(features=features(i), prediction=1, latency_ms=1)
        assert monitor.flush(10) == 0
        broker.stop()

        durations = []
        for i in range(3000):
            started = time.perf_counter()
            monitor.log_prediction(features=features(i), prediction=1, latency_ms=1)
            durations.append(time.perf_counter() - started)
        durations.sort()
        p99, worst = durations[int(len(durations) * 0.99)], durations[-1]
        # Well under a millisecond. The worst case may include waiting for the
        # GIL held by another thread, which is scheduling, not blocking.
        assert p99 < 0.0005, f"p99 {p99 * 1e6:.0f} µs"
        assert worst < 0.05, f"worst {worst * 1e3:.1f} ms"

        stats = monitor.stats()
        assert stats.queued == 550 and stats.dropped_buffer_full == 2500
        # After message_timeout_ms the buffered events fail and are counted.
        deadline = time.monotonic() + 15
        while monitor.stats().in_flight and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = monitor.stats()
        assert (stats.delivered, stats.in_flight, stats.delivery_failed) == (50, 0, 500)
        assert stats.logged == 3050 == stats.delivered + stats.dropped

        warnings = [r.getMessage() for r in caplog.records if r.name == "streamwatch.producer"]
        assert sum("buffer full" in w for w in warnings) == 1  # 2500 drops, one line
        failures = [w for w in warnings if "not delivered" in w]
        assert 1 <= len(failures) <= 2, failures

        # The broker comes back: new events flow again.
        broker.start()
        monitor.log_label(request_id="after-outage", label=0)
        assert monitor.flush(20) == 0
        assert monitor.stats().delivered == 51
        monitor.close()
    finally:
        broker.stop()


def test_a_broker_that_never_existed_costs_nothing() -> None:
    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"}, producer={"buffer_max_messages": 100})
    monitor = Producer(settings=settings, model="m", model_version="1")
    started = time.perf_counter()
    for i in range(1000):
        monitor.log_prediction(features=features(i), prediction=1, latency_ms=1)
    assert time.perf_counter() - started < 0.5
    assert monitor.stats().dropped_buffer_full == 900
    started = time.perf_counter()
    assert monitor.close(timeout=0.1) == 100
    assert time.perf_counter() - started < 2  # close gives up rather than hang
    stats = monitor.stats()
    assert (stats.in_flight, stats.delivery_failed, stats.logged) == (0, 100, 1000)
    monitor.log_label(request_id="r", label=1)  # after close: counted, not raised
    assert monitor.stats().dropped_error == 1


def test_invalid_events_are_dropped_and_counted(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="streamwatch")
    with Producer(settings=settings, model="m", model_version="1") as monitor:
        monitor.log_prediction(features={"age": [1]}, prediction=1, latency_ms=1)
        monitor.log_prediction(features={"age": 1}, prediction=1, latency_ms=-3)
        monitor.log_label(request_id="r", label=None)
        monitor.log_prediction(features={"age": 1}, prediction=1, latency_ms=3)
    stats = monitor.stats()
    assert (stats.dropped_invalid, stats.delivered) == (3, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("features.age: must be a number, string, boolean or null, not list" in m for m in messages)
    assert any("label: must be a number, string or boolean, not NoneType" in m for m in messages)


def test_strict_mode_raises_into_the_caller(settings: Settings) -> None:
    with Producer(settings=settings, model="m", model_version="1", strict=True) as monitor:
        with pytest.raises(ContractError, match="^score: must be a number between 0 and 1$"):
            monitor.log_prediction(prediction=1, score=7, latency_ms=1)
    with Producer(settings=settings, strict=True) as anonymous:  # no default model to fall back on
        with pytest.raises(ContractError, match="^model: must be a string, not NoneType$"):
            anonymous.log_label(request_id="r", label=1)
    assert monitor.stats().dropped_invalid == 0


def test_many_threads_are_counted_exactly(settings: Settings) -> None:
    monitor = Producer(settings=settings, model="m", model_version="1")

    def serve() -> None:
        for i in range(3000):
            monitor.log_prediction(features=features(i), prediction=1, latency_ms=1, request_id=new_request_id())

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monitor.close(timeout=20)
    stats = monitor.stats()
    assert (stats.logged, stats.queued, stats.delivered) == (12000, 12000, 12000)


def test_secrets_are_never_logged(
    broker: LocalKafka, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "pa55-w0rd-do-not-print"
    settings = load_settings(
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "svc",
            "sasl_password": secret,
            "librdkafka": {"debug": "security,broker"},
        },
        producer={"message_timeout_ms": 1500},
    )
    monitor = Producer(settings=settings, model="m", model_version="1")
    monitor.log_prediction(prediction=1, latency_ms=1)
    monitor.flush(3)
    monitor.close(timeout=0.5)
    out, err = capfd.readouterr()
    logged = caplog.text + out + err + repr(monitor) + str(settings)
    assert "SASL" in logged  # librdkafka's security debug logs did reach the captured output
    assert secret not in logged


def test_a_producer_made_before_fork_works_in_the_child(settings: Settings) -> None:
    # gunicorn --preload and multiprocessing fork a process that already made its producer.
    monitor = Producer(settings=settings, model="m", model_version="1")
    monitor.log_prediction(prediction=1, latency_ms=1, request_id="parent")
    assert monitor.flush(10) == 0
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 3
        try:
            monitor.log_prediction(prediction=1, latency_ms=1, request_id="child")
            delivered = monitor.flush(10) == 0 and monitor.stats().delivered == 1
            code = 0 if delivered else 1
            monitor.close(1)
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    messages = read_topics(settings.kafka, [settings.topics.predictions], expect=2)
    assert sorted(m.key for m in messages) == [b"child", b"parent"]
    # The child counts its event ids from a prefix of its own: it would otherwise repeat the parent's.
    prefixes = {orjson.loads(m.value)["event_id"].rsplit("-", 1)[0] for m in messages}
    assert len(prefixes) == 2
    monitor.log_prediction(prediction=1, latency_ms=1, request_id="parent-again")  # the parent is unaffected
    assert monitor.close(10) == 0 and monitor.stats().delivered == 2


def run_python(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done


def test_a_service_that_exits_without_close_still_delivers(settings: Settings) -> None:
    # A long linger keeps the events in librdkafka's queue until the exit hook flushes them.
    script = """
import json, sys
from streamwatch import Producer
from streamwatch.config.settings import load_settings
settings = load_settings(
    kafka={"bootstrap_servers": sys.argv[1]}, topics=json.loads(sys.argv[2]), producer={"linger_ms": 3000}
)
monitor = Producer(settings=settings, model="m", model_version="1")
for i in range(500):
    monitor.log_prediction(prediction=1, latency_ms=1, request_id=f"exit-{i}")
"""
    run_python(script, settings.kafka.bootstrap_servers, settings.topics.model_dump_json())
    messages = read_topics(settings.kafka, [settings.topics.predictions], expect=500, timeout=20)
    assert sorted(m.key or b"" for m in messages) == sorted(f"exit-{i}".encode() for i in range(500))


def test_the_exit_flush_waits_at_most_close_timeout_and_not_after_close() -> None:
    # The script prints the time its last line ran; the interpreter's exit is what comes after.
    script = """
import sys, time
from streamwatch import Producer
from streamwatch.config.settings import load_settings
settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"})
monitor = Producer(settings=settings, model="m", model_version="1", close_timeout=2)
monitor.log_prediction(prediction=1, latency_ms=1)
if sys.argv[1] == "close":
    monitor.close(0.1)
print(time.time())
"""
    exits = {}
    for mode in ("close", "exit"):
        done = run_python(script, mode)
        exits[mode] = time.time() - float(done.stdout)
        assert done.stderr.count("not delivered") == 1, done.stderr  # the purged event, counted and logged once
    assert exits["close"] < 1.5, exits  # closed: nothing left for the exit hook to do
    assert 1.9 < exits["exit"] < 6, exits  # flushed for close_timeout, then gave up


def test_a_dropped_producer_is_not_kept_alive_and_still_delivers(settings: Settings) -> None:
    threads_before = set(threading.enumerate())
    monitor = Producer(settings=settings, model="m", model_version="1")
    monitor.log_prediction(prediction=1, latency_ms=1, request_id="dropped")
    alive = weakref.ref(monitor)
    del monitor
    gc.collect()
    assert alive() is None  # neither the exit hook, the poll thread nor the client's callbacks hold it
    messages = read_topics(settings.kafka, [settings.topics.predictions], expect=1, timeout=20)
    assert [m.key for m in messages] == [b"dropped"]  # it was closed, so flushed, in the background
    deadline = time.monotonic() + 10
    while any(t.name.startswith("streamwatch-producer") for t in set(threading.enumerate()) - threads_before):
        assert time.monotonic() < deadline, "the dropped producer's threads did not stop"
        time.sleep(0.05)


def test_librdkafka_logs_with_the_broker_down_are_rate_limited_too() -> None:
    # librdkafka logs each failed connect (several a second). Before its log went through the
    # rate-limited logger, this wrote 21 "Connection refused" lines in 3 s (~160 in 15 s).
    script = """
import time
from streamwatch import Producer
from streamwatch.config.settings import load_settings
monitor = Producer(settings=load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"}), model="m", model_version="1")
monitor.log_prediction(prediction=1, latency_ms=1)
time.sleep(3)
monitor.close(0.1)
"""
    lines = run_python(script).stderr.splitlines()
    refused = [line for line in lines if "Connection refused" in line]
    # librdkafka's own FAIL line and the SDK's "client error" warning, once each
    assert sorted(line.split()[0] for line in refused) == ["FAIL", "Kafka"], lines
    assert len(lines) <= 4, lines  # and the event purged by close()
