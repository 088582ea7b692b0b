"""The worker's own health, as Prometheus metrics: the only module that imports ``prometheus_client``.

Each worker has its own registry (no global state), which the worker's web
server exposes at ``/metrics``; :meth:`WorkerMetrics.samples` gives the same
figures as rows for the ``worker_metrics`` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """Counters and gauges of one worker; ``registry`` is what ``/metrics`` serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("streamwatch_events", "Messages consumed, by topic.", ["topic"], registry=r)
        self.dead_letters = Counter("streamwatch_dead_letters", "Messages sent to the dead-letter topic.", registry=r)
        self.late_events = Counter("streamwatch_late_events", "Events after their window closed.", registry=r)
        self.labels_matched = Counter("streamwatch_labels_matched", "Labels joined to predictions.", registry=r)
        self.storage_errors = Counter("streamwatch_storage_errors", "Failed ClickHouse writes (retried).", registry=r)
        self.raw_events_skipped = Counter(
            "streamwatch_raw_events_skipped",
            "Raw events not stored because of clickhouse.raw_events (sample or none), by kind.",
            ["kind"],
            registry=r,
        )
        self.screened = Counter(
            "streamwatch_screened",
            "Events dead-lettered by a screen (unknown_model, request_id_reused, implausible_time) or held back "
            "(future_leap: counted, but moving event time only once confirmed), by reason.",
            ["reason"],
            registry=r,
        )
        self.stage_counts = Gauge(
            "streamwatch_stage_counts",
            "Totals kept in the state of this worker's partitions (they move with them): label-join evictions, "
            "orphan and duplicate labels, unlabelled predictions, twin evictions, late events; the reporter's "
            "late partials.",
            ["count"],
            registry=r,
        )
        self.refused_rows = Counter(
            "streamwatch_refused",
            "Rows or messages refused for good (dead-lettered when they are events, else logged), by target.",
            ["target"],
            registry=r,
        )
        self.checkpoints = Counter("streamwatch_checkpoints", "Partition checkpoints written.", registry=r)
        self.process_seconds = Histogram(
            "streamwatch_process_seconds", "Time to process one partition batch.", registry=r
        )
        self.insert_seconds = Histogram(
            "streamwatch_insert_seconds", "Time to store one partition batch in ClickHouse.", registry=r
        )
        self.consumer_lag = Gauge(
            "streamwatch_consumer_lag", "Messages behind the end of the partition.", ["topic", "partition"], registry=r
        )
        self.open_windows = Gauge("streamwatch_open_windows", "Windows open in this worker's stages.", registry=r)
        self.join_pending = Gauge(
            "streamwatch_label_join_pending", "Predictions waiting for their label in this worker.", registry=r
        )
        self.notifications = Counter(
            "streamwatch_notifications", "Notifications accepted by their channel.", ["channel"], registry=r
        )
        self.notification_retries = Counter(
            "streamwatch_notification_retries",
            "Notification attempts that failed and were retried.",
            ["channel"],
            registry=r,
        )
        self.notification_failures = Counter(
            "streamwatch_notification_failures",
            "Notifications given up: refused for good, or still failing after the maximum age.",
            ["channel"],
            registry=r,
        )
        self.outbox_expired_total = Counter(
            "streamwatch_outbox_expired",
            "Outbox notifications not sent because they were older than alerting.outbox_max_age.",
            ["channel"],
            registry=r,
        )
        self.outbox = Gauge("streamwatch_outbox_pending", "Notifications read but not yet delivered.", registry=r)
        self.checkpoint_bytes = Gauge(
            "streamwatch_checkpoint_bytes", "Size of the latest checkpoint per partition.", ["partition"], registry=r
        )

    def processed(self, batch: Sequence[Any], output: Any, seconds: float) -> None:
        counts: dict[str, int] = {}
        for message in batch:
            counts[message.topic] = counts.get(message.topic, 0) + 1
        for topic, n in counts.items():
            self.events.labels(topic).inc(n)
        self.dead_letters.inc(len(output.dead_letters))
        self.late_events.inc(output.late_events)
        for reason, n in output.screened.items():
            self.screened.labels(reason).inc(n)
        self.labels_matched.inc(output.labels_matched)
        self.process_seconds.observe(seconds)

    def inserted(self, seconds: float) -> None:
        self.insert_seconds.observe(seconds)

    def storage_error(self) -> None:
        self.storage_errors.inc()

    def refused(self, target: str, n: int) -> None:
        self.refused_rows.labels(target).inc(n)

    def checkpointed(self, partition: int, size: int) -> None:
        self.checkpoints.inc()
        self.checkpoint_bytes.labels(str(partition)).set(size)

    def lag(self, lags: dict[tuple[str, int], int]) -> None:
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic, str(partition)).set(lag)

    def state(self, open_windows: int, join_pending: int, counts: dict[str, int] | None = None) -> None:
        self.open_windows.set(open_windows)
        self.join_pending.set(join_pending)
        for name, value in (counts or {}).items():
            self.stage_counts.labels(name).set(value)

    def delivered(self, channel: str) -> None:
        self.notifications.labels(channel).inc()

    def delivery_retry(self, channel: str) -> None:
        self.notification_retries.labels(channel).inc()

    def delivery_failed(self, channel: str) -> None:
        self.notification_failures.labels(channel).inc()

    def outbox_expired(self, channel: str) -> None:
        self.outbox_expired_total.labels(channel).inc()

    def outbox_pending(self, n: int) -> None:
        self.outbox.set(n)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Every sample as (name, labels, value), for the worker_metrics table."""
        return [
            (sample.name, dict(sample.labels), float(sample.value))
            for family in self.registry.collect()
            for sample in family.samples
            if not sample.name.endswith(("_created", "_bucket"))
        ]
