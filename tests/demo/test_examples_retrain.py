"""examples/retrain_consumer.py against the real broker: each request handled once, bad messages skipped, resumable.

tests/test_examples.py runs the example once; this follows it further: every
field a training job reads, messages that are on the topic but are not retrain
requests (a tombstone, another event type), and a second run of the same
consumer group resuming after what the first committed (at least once, not
from the start).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

from streamwatch.adapters.kafka import KafkaTransport, committed_lag, create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import Settings, load_settings
from streamwatch.contract.events import AlertEvent, RetrainEvent

SCRIPT = Path(__file__).parent.parent.parent / "examples" / "retrain_consumer.py"
END = 1_800_000_000_000  # 2027-01-15T08:00:00Z


def retrain(n: int, **fields: Any) -> RetrainEvent:
    return RetrainEvent.model_validate(
        {
            "event_id": f"rt-{n}",
            "timestamp": END,
            "model": "credit",
            "model_version": str(n),
            "severity": "critical",
            "reason": f"drifted-share: {n} of 4 features drifted",
            "evidence": {
                "features": {"income": {"metric": "wasserstein", "value": 0.8, "threshold": 0.1}},
                "metrics": {"accuracy": {"value": 0.71, "threshold": 0.8}},
            },
            "windows": [{"start": END - 60_000, "end": END}],
            "lineage": {"data_uri": f"s3://ml/credit/train-{n}.parquet", "content_sha256": f"{n:064x}"},
            "suggested_data_start": END - 7 * 86_400_000,
            "suggested_data_end": END,
            **fields,
        }
    )


def an_alert() -> AlertEvent:
    """A valid event of the contract that is not a retrain request."""
    return AlertEvent.model_validate(
        {
            "event_id": "alert-1",
            "timestamp": END,
            "fingerprint": "f",
            "rule": "share",
            "kind": "drift",
            "severity": "critical",
            "status": "firing",
            "model": "credit",
            "model_version": "1",
            "reason": "drifted_share is 0.6",
            "starts_at": END,
        }
    )


def publish(settings: Settings, topic: str, values: list[bytes | None]) -> None:
    transport = KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None)
    for value in values:
        transport.send(topic, value)
    assert transport.close(10.0) == 0


def consume(broker: LocalKafka, topic: str, group: str, max_events: int, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--bootstrap",
            broker.bootstrap_servers,
            "--topic",
            topic,
            "--group",
            group,
            "--max-events",
            str(max_events),
            "--timeout",
            str(timeout),
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
    )


def test_each_request_is_handled_once_with_what_training_needs_and_the_group_resumes(broker: LocalKafka) -> None:
    settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    topic = f"retrain-consumer-{uuid4().hex[:12]}"
    create_topics(settings.kafka, [topic], partitions=1)
    valid = [retrain(1), retrain(2, severity="warning", evidence={"metrics": {"auc": {"value": 0.6}}})]
    publish(
        settings,
        topic,
        [
            valid[0].model_dump_json().encode(),
            b"not json",  # offset 1
            valid[0].model_dump_json().encode(),  # delivered twice: at least once
            None,  # offset 3: a tombstone
            an_alert().model_dump_json().encode(),  # offset 4: valid, but not a retrain request
            b'{"type": "retrain", "event_id": "rt-9"}',  # offset 5: a retrain request missing its fields
            valid[1].model_dump_json().encode(),
        ],
    )

    result = consume(broker, topic, "training-job", max_events=2, timeout=30)

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event_id"] for line in lines] == ["rt-1", "rt-2"]
    first, second = lines
    assert first == {
        "event_id": "rt-1",
        "model": "credit",
        "model_version": "1",
        "severity": "critical",
        "reason": "drifted-share: 1 of 4 features drifted",
        "train_from": "2027-01-08T08:00:00+00:00",
        "train_to": "2027-01-15T08:00:00+00:00",
        "reference_data": "s3://ml/credit/train-1.parquet",
        "reference_sha256": f"{1:064x}",
        "drifted_features": {"income": {"metric": "wasserstein", "value": 0.8, "threshold": 0.1}},
        "degraded_metrics": {"accuracy": {"value": 0.71, "threshold": 0.8}},
    }
    assert (second["model_version"], second["severity"], second["drifted_features"], second["degraded_metrics"]) == (
        "2",
        "warning",
        {},
        {"auc": {"value": 0.6}},
    )
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped offset")]
    assert [line.split(":")[0] for line in skipped] == [f"skipped offset {n}" for n in (1, 3, 4, 5)]
    assert "expected a retrain event, got 'alert'" in skipped[2]
    # Everything up to the last request handled is committed, the skipped messages included.
    assert committed_lag(settings.kafka, "training-job", [topic]) == 0

    # The same group starts after what it committed; another group starts from the beginning.
    publish(settings, topic, [retrain(3).model_dump_json().encode()])
    again = consume(broker, topic, "training-job", max_events=1, timeout=30)
    assert again.returncode == 0, again.stderr
    assert [json.loads(line)["event_id"] for line in again.stdout.splitlines()] == ["rt-3"]
    other = consume(broker, topic, "another-job", max_events=3, timeout=30)
    assert [json.loads(line)["event_id"] for line in other.stdout.splitlines()] == ["rt-1", "rt-2", "rt-3"]


def test_stopping_short_of_max_events_is_a_failure(broker: LocalKafka) -> None:
    settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    topic = f"retrain-consumer-{uuid4().hex[:12]}"
    create_topics(settings.kafka, [topic], partitions=1)
    publish(settings, topic, [retrain(1).model_dump_json().encode()])

    result = consume(broker, topic, "training-job", max_events=2, timeout=3)

    assert result.returncode == 1
    assert [json.loads(line)["event_id"] for line in result.stdout.splitlines()] == ["rt-1"]
    assert "stopped after 3.0 s with 1 events handled" in result.stderr
