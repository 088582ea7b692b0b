"""The examples in examples/ run against a real broker, so they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streamwatch.adapters.kafka import create_topics, read_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import Settings, load_settings

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def test_inference_service_example(broker: LocalKafka) -> None:
    settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    topics = [settings.topics.predictions, settings.topics.labels]
    create_topics(settings.kafka, topics, partitions=3)
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "inference_service.py"),
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--requests",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "delivered 150, dropped 0"
    messages = read_topics(settings.kafka, topics, expect=150)
    errors = [m for m in messages if b'"status":"error"' in m.value]
    assert len(messages) == 150 and len(errors) == 2  # the two requests without income


def test_the_demo_traffic_goes_through_the_sdk_valid_and_co_partitioned(settings: Settings) -> None:
    from streamwatch.contract.events import LabelEvent, PredictionEvent, parse_event
    from streamwatch.demo.run import publish_scenario
    from streamwatch.demo.scenario import DemoScenario

    scenario = DemoScenario(minutes=6, per_minute=60)
    sent = publish_scenario(settings, scenario, speed=600)
    topics = [settings.topics.predictions, settings.topics.labels]
    messages = read_topics(settings.kafka, topics, expect=sent)
    events = [(parse_event(m.value), m.partition) for m in messages]
    assert len(events) == sent == sum(1 for _ in scenario.events())
    partition = {e.request_id: p for e, p in events if isinstance(e, PredictionEvent)}
    labels = [(e.request_id, p) for e, p in events if isinstance(e, LabelEvent)]
    assert labels and all(partition[rid] == p for rid, p in labels)  # a label meets its prediction
    variants = {e.variant for e, _ in events if isinstance(e, PredictionEvent)}
    assert variants == {"production", "canary"}


def test_retrain_consumer_example_handles_each_request_once_and_skips_bad_messages(broker: LocalKafka) -> None:
    from streamwatch.adapters.kafka import KafkaTransport
    from streamwatch.contract.events import RetrainEvent

    settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    topic = f"retrain-example-{id(settings)}"
    create_topics(settings.kafka, [topic], partitions=1)

    def request(n: int) -> RetrainEvent:
        return RetrainEvent.model_validate(
            {
                "event_id": f"rt-{n}",
                "timestamp": 1_800_000_000_000,
                "model": "credit",
                "model_version": str(n),
                "severity": "critical",
                "reason": "drifted-share: 3 of 4 features drifted",
                "evidence": {
                    "features": {"income": {"metric": "wasserstein", "value": 0.8, "threshold": 0.1}},
                    "metrics": {},
                },
                "windows": [{"start": 1_799_999_940_000, "end": 1_800_000_000_000}],
                "lineage": {"data_uri": "s3://ml/credit/train.parquet", "content_sha256": "ab" * 32},
                "suggested_data_start": 1_799_395_200_000,
                "suggested_data_end": 1_800_000_000_000,
            }
        )

    transport = KafkaTransport(settings.kafka, settings.producer, on_failure=lambda *a: None, on_error=lambda *a: None)
    for raw in (request(1).model_dump_json(), b"not json", request(1).model_dump_json(), request(2).model_dump_json()):
        transport.send(topic, raw.encode() if isinstance(raw, str) else raw)
    assert transport.close(10.0) == 0
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "retrain_consumer.py"),
            "--bootstrap",
            broker.bootstrap_servers,
            "--topic",
            topic,
            "--group",
            "training-job",
            "--max-events",
            "2",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    import json

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["event_id"], x["model_version"]) for x in lines] == [("rt-1", "1"), ("rt-2", "2")]
    assert lines[0]["drifted_features"]["income"]["value"] == 0.8
    assert (
        lines[0]["reference_data"] == "s3://ml/credit/train.parquet" and lines[0]["train_from"] < lines[0]["train_to"]
    )
    assert "skipped offset 1: event: not valid JSON" in result.stderr


def test_the_traffic_command_publishes_one_scenario_and_stops(settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "streamwatch.yaml"
    t = settings.topics
    config.write_text(
        f"kafka: {{bootstrap_servers: '{settings.kafka.bootstrap_servers}'}}\n"
        f"topics: {{predictions: {t.predictions}, labels: {t.labels}, features: {t.features}}}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamwatch",
            "traffic",
            "-c",
            str(config),
            "--minutes",
            "6",
            "--per-minute",
            "20",
            "--speed",
            "600",
            "--no-loop",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    sent = int(result.stdout.split("scenario 1: ")[1].split()[0].replace(",", ""))
    assert sent > 6 * 20 and len(read_topics(settings.kafka, [t.predictions, t.labels], expect=sent)) == sent
