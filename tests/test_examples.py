"""The examples in examples/ run against a real broker, so they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streamwatch.demo import run_demo
from streamwatch.kafka import create_topics, read_topics
from streamwatch.localbroker import LocalKafka
from streamwatch.settings import Settings, load_settings

EXAMPLES = Path(__file__).parent.parent / "examples"


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


def test_demo_scenario(settings: Settings) -> None:
    result = run_demo(400, settings=settings)
    assert result.ok, result
    assert result.produced["prediction"] == 400 and result.produced["feature"] == 80
    assert result.consumed == result.produced
