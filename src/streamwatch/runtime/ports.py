"""What the worker's loop and report runner need of Kafka and ClickHouse, as protocols.

:class:`~streamwatch.runtime.loop.WorkerRuntime` and
:class:`~streamwatch.runtime.report_runner.ReportRunner` are typed against these,
not against the adapters: anything with the same methods fits (the type checker
matches them by shape), so a test can hand in a fake. The real ones are
:class:`~streamwatch.adapters.kafka.BatchConsumer` (a :class:`GroupConsumer`),
:class:`~streamwatch.adapters.kafka.ConfirmedPublisher` (a :class:`DeadLetterTopic`
and an :class:`EventPublisher`) and :class:`~streamwatch.adapters.clickhouse.Store`
(a :class:`WorkerStore` and a :class:`ReportStore`); :mod:`~streamwatch.runtime.wiring`
passes them in, which is where the type checker holds them to these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from streamwatch.adapters.clickhouse import Checkpoint, DeadLetterRecord, Source
from streamwatch.adapters.kafka import Message, OnAssign, OnRevoke
from streamwatch.core.records import Finding, MetricRow

__all__ = [
    "CheckpointStore",
    "ConsumerFactory",
    "DeadLetterTopic",
    "EventPublisher",
    "GroupConsumer",
    "Headers",
    "ReportStore",
    "WorkerStore",
]

#: Kafka record headers, as (name, value) pairs.
Headers = list[tuple[str, str | bytes | None]]


class GroupConsumer(Protocol):
    """A member of the worker group on the input topics; offsets are committed by the caller only."""

    def consume(self, max_messages: int, timeout: float) -> list[Message]: ...

    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def lag(self) -> dict[tuple[str, int], int]: ...

    def caught_up(self, next_offsets: dict[tuple[str, int], int | None]) -> bool: ...

    def close(self) -> None: ...


#: ``(on_assign, on_revoke) -> consumer``: joins the group; the callbacks run inside ``consume``.
ConsumerFactory = Callable[[OnAssign, OnRevoke], GroupConsumer]


class DeadLetterTopic(Protocol):
    """Where the loop publishes dead letters: a send that does not block, and a bounded flush.

    :class:`~streamwatch.adapters.kafka.ConfirmedPublisher`: ``send`` raises ``PublishError`` (retry)
    or ``RefusedMessage`` (never deliverable).
    """

    def send(self, topic: str, value: bytes, *, headers: Headers) -> None: ...

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for what was sent; return how many are still unconfirmed."""
        ...

    def refused(self) -> list[tuple[str, str]]:
        """(topic, reason) of each delivery refused for good since the last call."""
        ...


class EventPublisher(Protocol):
    """Where the report runner publishes alerts, retrain requests, circuit breaks and notifications."""

    def send(self, topic: str, value: bytes, key: bytes) -> None: ...

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for what was sent; return how many are still unconfirmed."""
        ...

    def refused(self) -> list[tuple[str, str]]:
        """(topic, reason) of each delivery refused for good since the last call."""
        ...


class CheckpointStore(Protocol):
    """Checkpoints: a stage's (or the reporter's) state and offsets, one row per name and partition."""

    def load_checkpoint(self, name: str, partition: int) -> Checkpoint | None: ...

    def save_checkpoint(
        self, name: str, partition: int, version: int, watermark: int, offsets: dict[str, int], state: bytes
    ) -> None: ...

    def checkpoint_watermarks(self, name: str) -> dict[int, int]: ...


class WorkerStore(CheckpointStore, Protocol):
    """What the loop writes: raw events, dead letters, partials, checkpoints and its own metrics."""

    def insert_predictions(self, events: Sequence[Any], sources: Sequence[Source]) -> None: ...

    def insert_feature_events(self, events: Sequence[Any], sources: Sequence[Source]) -> None: ...

    def insert_labels(self, events: Sequence[Any], sources: Sequence[Source]) -> None: ...

    def insert_dead_letters(self, records: Sequence[DeadLetterRecord]) -> None: ...

    def insert_partials(self, group: str, rows: Sequence[tuple[int, int, str, Any, int, bytes]]) -> None: ...

    def insert_worker_metrics(
        self, worker: str, at_ms: int, samples: Sequence[tuple[str, dict[str, str], float]]
    ) -> None: ...


class ReportStore(CheckpointStore, Protocol):
    """What the report runner reads (every partition's partials) and writes (rows, findings, alerts)."""

    def partials_since(
        self, group: str, partition: int, version: int
    ) -> list[tuple[str, tuple[Any, ...], int, int, bytes]]: ...

    def insert_metrics(self, rows: Sequence[MetricRow], version: int) -> None: ...

    def insert_findings(self, findings: Sequence[Finding], version: int) -> None: ...

    def insert_alerts(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def insert_retrain_events(self, rows: Sequence[dict[str, Any]]) -> None: ...
