"""A worker assembled as `streamwatch worker` assembles it: rules to a real webhook receiver, silences, retrain."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.kafka import KafkaTransport, create_topics, read_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.cli.alert_admin import add_silence, alert_history, list_silences
from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.events import RetrainEvent
from streamwatch.notify.payloads import verify_webhook
from streamwatch.runtime.wiring import build_runtime
from tests.pipeline.test_merge import RAWS
from tests.pipeline.test_pipeline import START
from tests.receivers import RecordingReceiver
from tests.runtime.test_loop import heartbeats, pipeline, request_id

pytestmark = pytest.mark.kafka
_n = itertools.count()
SECRET = "whsec-worker-test-51c2"


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    with RecordingReceiver() as running:
        yield running


def settings_for(broker: LocalKafka, receiver: RecordingReceiver) -> Settings:
    n = next(_n)
    names = (
        "predictions",
        "features",
        "labels",
        "deadletter",
        "alerts",
        "retrain",
        "control",
        "notifications",
        "silences",
    )
    settings = load_settings(
        kafka={"bootstrap_servers": broker.bootstrap_servers},
        topics={name: f"aw{n}.{name}" for name in names} | {"partitions": 3},
        worker={
            "group": f"aw{n}",
            "instance_id": f"aw{n}-0",
            "checkpoint_interval_ms": 300,
            "idle_timeout_ms": 2_000,
            "report_interval_ms": 200,
            "max_age_ms": 3650 * 86_400_000,  # the maximum: the test streams are dated November 2026
        },
        rules=[
            {
                "name": "income-drift",
                "kind": "drift",
                "feature": "income",
                "when": {"metric": "wasserstein", "op": ">", "threshold": 0.5},
                "channels": ["hook"],
                "actions": ["retrain"],
                "runbook_url": "https://runbooks.example.com/drift",
            }
        ],
        channels=[{"name": "hook", "type": "webhook", "url": f"{receiver.url}/hook", "signing_secret": SECRET}],
        alerting={"default_rules": False, "group_wait": "0s", "group_interval": "0s"},
    )
    t = settings.topics
    create_topics(settings.kafka, [t.predictions, t.features, t.labels], partitions=3)
    create_topics(
        settings.kafka, [t.deadletter, t.alerts, t.retrain, t.control, t.notifications, t.silences], partitions=1
    )
    return settings


def publish(settings: Settings) -> int:
    transport = KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *a: None, on_error=print)
    t = settings.topics
    for raw in RAWS:
        transport.send(t.labels if raw.startswith(b'{"type":"label"') else t.predictions, raw, request_id(raw))
    end = max(int(r.split(b'"timestamp":')[1].split(b",")[0].split(b"}")[0]) for r in RAWS)
    for key, raw in heartbeats(end + 600_000):
        transport.send(t.predictions, raw, key)
    assert transport.close(30.0) == 0
    return len(RAWS) + 40


def run(settings: Settings, store: Store, until: Any, timeout: float = 90.0) -> None:
    runtime = build_runtime(settings, pipeline(), store, partitions=3)
    deadline = time.monotonic() + timeout
    try:
        while not until(store):
            assert time.monotonic() < deadline, "the worker did not get there in time"
            runtime.step()
    finally:
        runtime.close()


def alert_statuses(store: Store) -> list[str]:
    return [s for (s,) in store.query("SELECT status FROM {db}.alerts FINAL ORDER BY window_start, status")]


def test_a_drift_reaches_the_webhook_firing_then_resolved_with_its_evidence_and_asks_for_a_retrain(
    broker: LocalKafka, store: Store, receiver: RecordingReceiver
) -> None:
    settings = settings_for(broker, receiver)
    publish(settings)
    run(settings, store, lambda s: len(receiver.requests) >= 2)
    bodies = []
    for _, path, headers, raw in receiver.requests:
        assert path == "/hook"
        stamp, signature = headers["X-Streamwatch-Timestamp"], headers["X-Streamwatch-Signature"]
        assert verify_webhook(SECRET, raw, stamp, signature, time.time())
        assert not verify_webhook(SECRET, raw + b" ", stamp, signature, time.time())
        bodies.append(orjson.loads(raw))
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    firing = bodies[0]["alerts"][0]
    drifted = START + 2 * 60_000  # the stream shifts income in its third minute
    in_window = {
        request_id(r).decode()
        for r in RAWS
        if r.startswith(b'{"type":"prediction"')
        and drifted <= int(r.split(b'"timestamp":')[1].split(b",")[0]) < drifted + 60_000
    }
    assert firing["feature"] == "income" and firing["rule"] == "income-drift" and firing["kind"] == "drift"
    assert 0 < len(firing["example_request_ids"]) <= 5 and set(firing["example_request_ids"]) <= in_window
    assert firing["lineage"]["content_sha256"] == "f" * 64
    assert "var-model=credit" in firing["dashboard_url"] and firing["runbook_url"].startswith("https://runbooks")
    [retrain] = [
        RetrainEvent.model_validate_json(m.value)
        for m in read_topics(settings.kafka, [settings.topics.retrain], expect=1, timeout=10)
    ]
    assert retrain.model == "credit" and "income" in retrain.evidence["features"]
    assert retrain.suggested_data_end is not None and retrain.suggested_data_start < retrain.suggested_data_end
    histories, _source = alert_history_from(store, settings)
    assert [e.status for h in histories.values() for e in h.transitions] == ["firing", "resolved"]


def alert_history_from(store: Store, settings: Settings) -> Any:
    # The CLI reads ClickHouse; here the session's engine holds the worker's database, so read the topic view.
    del store
    return alert_history(
        settings.model_copy(update={"clickhouse": settings.clickhouse.model_copy(update={"dsn": "http://127.0.0.1:9"})})
    )


def test_a_silence_mutes_the_notification_but_the_alert_is_still_recorded(
    broker: LocalKafka, store: Store, receiver: RecordingReceiver
) -> None:
    settings = settings_for(broker, receiver)
    silence = add_silence(settings, ["feature=income", "model=~cred.*"], 3_600_000, "tester", "known shift")
    assert [s.silence_id for s in list_silences(settings)] == [silence.silence_id]
    publish(settings)
    run(settings, store, lambda s: alert_statuses(s) == ["firing", "resolved"])
    time.sleep(1.0)  # the dispatcher would have had every chance
    assert receiver.requests == []
