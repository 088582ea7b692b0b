"""`streamwatch init`'s topics on a real broker: the replication the settings ask for, or the broker's default."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.config.settings import load_settings
from streamwatch.errors import StreamwatchError
from streamwatch.runtime.wiring import create_deployment_topics


def test_init_creates_every_topic_with_the_brokers_default_replication(broker: LocalKafka) -> None:
    settings = load_settings(
        kafka={"bootstrap_servers": broker.bootstrap_servers},
        topics={
            name: f"init1.{name}"
            for name in (
                "predictions",
                "features",
                "labels",
                "alerts",
                "retrain",
                "deadletter",
                "control",
                "notifications",
                "silences",
            )
        },
    )
    assert settings.topics.replication_factor is None
    created = create_deployment_topics(settings)
    assert len(created) == 9
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
    # one broker: its default.replication.factor is 1
    assert {len(p.replicas) for t in created for p in metadata.topics[t].partitions.values()} == {1}
    assert len(metadata.topics["init1.predictions"].partitions) == settings.topics.partitions


def test_a_replication_factor_the_cluster_cannot_meet_is_one_error_naming_the_topic(broker: LocalKafka) -> None:
    settings = load_settings(
        kafka={"bootstrap_servers": broker.bootstrap_servers},
        topics={"predictions": "init2.predictions", "replication_factor": 3},
    )
    with pytest.raises(StreamwatchError, match="refused to create topic init2.predictions: .*replication factor"):
        create_deployment_topics(settings)
