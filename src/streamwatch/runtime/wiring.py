"""Assembling a worker from the settings, and ``streamwatch init``: no logic of its own.

The pieces: a :class:`~streamwatch.adapters.kafka.BatchConsumer` in the worker group, a
:class:`~streamwatch.adapters.kafka.ConfirmedPublisher` for dead letters and alerts, the ClickHouse
:class:`~streamwatch.adapters.clickhouse.Store`, the pipeline the config describes, and
the :class:`~streamwatch.runtime.report_runner.ReportRunner`, put together into a
:class:`~streamwatch.runtime.loop.WorkerRuntime`.
"""

from __future__ import annotations

import logging
from typing import Any

from streamwatch.adapters.clickhouse import Store, connect
from streamwatch.adapters.kafka import BatchConsumer, ConfirmedPublisher, TopicTail, create_topics, topic_partitions
from streamwatch.adapters.prometheus import WorkerMetrics
from streamwatch.alerts.engine import Alerting
from streamwatch.alerts.silence_feed import SilenceFeed
from streamwatch.config.settings import Settings
from streamwatch.errors import ConfigError
from streamwatch.notify.channels import ChannelClient
from streamwatch.notify.dispatcher import Dispatcher
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.runtime.loop import RuntimeSettings, WorkerRuntime
from streamwatch.runtime.report_runner import AlertTopics, ReportRunner
from streamwatch.times import duration_ms

__all__ = [
    "build_alerting",
    "build_runtime",
    "create_deployment_topics",
    "faust_broker",
    "init_deployment",
    "input_partitions",
]

_log = logging.getLogger("streamwatch.worker")


def input_partitions(settings: Settings) -> int:
    """The input topics' partition count; a one-line error when they are missing or differ."""
    topics = settings.topics
    counts = {
        name: topic_partitions(settings.kafka, name) for name in (topics.predictions, topics.features, topics.labels)
    }
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        raise ConfigError(f"topic {missing[0]} does not exist: run `streamwatch init` first")
    if len(set(counts.values())) > 1:
        raise ConfigError(
            f"input topics must have equal partition counts (a request's events meet by number): {counts}"
        )
    return next(iter(counts.values()))


def build_runtime(
    settings: Settings, pipeline: Pipeline, store: Store, partitions: int, on_report: Any = None
) -> WorkerRuntime:
    """A worker runtime joined to the group; call from the thread that will run it."""
    rts = RuntimeSettings.from_settings(settings)
    # Every dead letter, alert and retrain request is confirmed by its delivery report before a
    # checkpoint moves past it (librdkafka's own errors go to its rate-limited logger).
    transport = ConfirmedPublisher(settings.kafka)
    metrics = WorkerMetrics()
    topics = settings.topics
    runner = ReportRunner(
        pipeline,
        store,
        rts.group,
        partitions,
        on_report=on_report,
        alerting=build_alerting(settings, pipeline),
        transport=transport,
        topics=AlertTopics(topics.alerts, topics.retrain, topics.control, topics.notifications),
        silences=SilenceFeed(TopicTail(settings.kafka, topics.silences)),
        metrics=metrics,
    )
    instance = settings.worker.instance_id

    def consumer(on_assign: Any, on_revoke: Any) -> BatchConsumer:
        return BatchConsumer(settings.kafka, rts.group, rts.inputs, on_assign, on_revoke, instance)

    dispatcher = None
    if settings.channels:

        def outbox(on_assign: Any, on_revoke: Any) -> BatchConsumer:
            notifier = f"{instance}-notifier" if instance else None
            return BatchConsumer(
                settings.kafka, f"{rts.group}-notifier", [topics.notifications], on_assign, on_revoke, notifier
            )

        alerting = settings.alerting
        dispatcher = Dispatcher(
            outbox,
            ChannelClient(timeout_s=alerting.delivery_timeout.total_seconds()),
            {channel.name: channel for channel in settings.channels},
            max_age_s=alerting.delivery_max_age.total_seconds(),
            metrics=metrics,
            max_outbox_age_ms=duration_ms(alerting.outbox_max_age),
        )
        dispatcher.start()
    return WorkerRuntime(
        pipeline, store, consumer, transport, rts, report_runner=runner, metrics=metrics, dispatcher=dispatcher
    )


def build_alerting(settings: Settings, pipeline: Pipeline) -> Alerting:
    """Rules (configured and built-in), routing and actions, as the settings describe them."""
    return Alerting(
        settings.rules,
        {channel.name: channel.send_resolved for channel in settings.channels},
        settings.alerting,
        pipeline.profiles,
        settings.models,
        pipeline.window_ms,
    )


def faust_broker(settings: Settings) -> str:
    """The Faust app's broker URL (Faust's own connection carries no events, only the app's lifecycle)."""
    return ";".join(f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(","))


def init_deployment(settings: Settings) -> tuple[list[str], list[str]]:
    """Create the topics that are missing and apply the ClickHouse schema; return what was created."""
    created = create_deployment_topics(settings)
    store = connect(settings.clickhouse)
    applied = store.migrate(settings.clickhouse.raw_ttl_days)
    return created, applied


def create_deployment_topics(settings: Settings) -> list[str]:
    """Create the topics streamwatch reads and writes that are missing; return their names."""
    topics = settings.topics
    # None: the broker's default.replication.factor (-1 asks for it), so a cluster's own policy holds.
    replication = topics.replication_factor or -1

    def create(names: list[str], partitions: int, config: dict[str, str] | None = None) -> list[str]:
        return create_topics(settings.kafka, names, partitions=partitions, replication=replication, config=config)

    created = create([topics.predictions, topics.features, topics.labels], topics.partitions)
    created += create([topics.alerts, topics.retrain, topics.deadletter, topics.control], 1)
    # Keyed by channel: each channel's notifications stay in order, and one that is down holds up
    # (and, after a restart, repeats) only what shares its partition.
    created += create([topics.notifications], 6)
    # One record per silence id survives compaction: the latest, which is the one in force.
    created += create([topics.silences], 1, {"cleanup.policy": "compact"})
    return created
