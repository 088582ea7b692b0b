"""Shared fixtures: one real Kafka-protocol broker (noida-db) for the session."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from streamwatch.adapters.kafka import create_topics
from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import Settings, TopicSettings, load_settings

_names = itertools.count()

# `make test` must pass or fail the same way on every run: the default profile draws the same
# examples each time (derandomize) and keeps no example database. `make fuzz` explores with
# random seeds (HYPOTHESIS_PROFILE=fuzz); what it finds becomes an @example pinned in the test.
# No deadline and no too-slow health check either: both time the machine, and CI's is shared.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The one embedded ClickHouse engine of the session: chdb allows one per process."""
    from streamwatch.adapters.clickhouse import connect
    from streamwatch.config.settings import ClickHouseSettings

    return connect(ClickHouseSettings(dsn=f"chdb://{tmp_path_factory.mktemp('chdb')}")).client


@pytest.fixture
def store(chdb_client):  # type: ignore[no-untyped-def]
    """A migrated store in a database of its own, raw events kept forever (no TTL)."""
    from uuid import uuid4

    from streamwatch.adapters.clickhouse import Store

    made = Store(chdb_client, database=f"t_{uuid4().hex[:12]}")
    made.migrate(raw_ttl_days=0)
    return made
