"""Shared fixtures: one real Kafka-protocol broker (noida-db) for the session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from streamwatch.kafka import create_topics
from streamwatch.localbroker import LocalKafka
from streamwatch.settings import Settings, TopicSettings, load_settings

_names = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalKafka]:
    with LocalKafka() as running:
        yield running


@pytest.fixture
def settings(broker: LocalKafka) -> Settings:
    """Settings pointing at the session broker, with topics unique to the test (3 partitions each)."""
    n = next(_names)
    topics = TopicSettings(
        predictions=f"t{n}.predictions", features=f"t{n}.features", labels=f"t{n}.labels", partitions=3
    )
    chosen = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}, topics=topics.model_dump())
    create_topics(chosen.kafka, [topics.predictions, topics.features, topics.labels], partitions=3)
    return chosen


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no STREAMWATCH_* variables from the machine they run on."""
    import os

    for name in list(os.environ):
        if name.startswith("STREAMWATCH_"):
            monkeypatch.delenv(name)
