"""docker-compose.yml cannot start here (no Docker engine); check it statically."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_compose_file_runs_an_official_kraft_kafka() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert "9092:9092" in kafka["ports"]
    assert "EXTERNAL://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]  # what the SDK's default reaches
    assert kafka["healthcheck"]["test"]
    for volume in kafka.get("volumes", []):
        assert volume.split(":")[0] in compose["volumes"]
