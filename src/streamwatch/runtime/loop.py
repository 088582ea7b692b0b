"""The worker's loop, without Faust: Kafka batches through partition stages into ClickHouse.

Why it is exact (no event lost, none counted twice) although workers crash:

- Each input partition number ``p`` (of the predictions, features and labels
  topics alike) is one stream with one :class:`~streamwatch.pipeline.stage.PartitionStage`.
  Producers key events by request id, so a request's prediction and label share ``p``.
- For every batch, what the stage produced goes to ClickHouse first: raw
  events, dead letters, and the partials of completed windows. All of it is
  keyed deterministically (event id; topic, partition and offset; partition,
  window and kind), so writing it again replaces it.
- Every ``checkpoint_interval_ms`` the stage's whole state and the next offset
  of each of its topics are written as one row; only then are offsets
  committed to Kafka (for lag tools: the checkpoint is what a worker resumes
  from). A worker that dies resumes from the last checkpoint and redoes the
  batches after it, which rewrites the same rows.
- One worker (the owner of partition 0) runs the :class:`~streamwatch.runtime.report_runner.ReportRunner`,
  which merges the partials of all partitions from ClickHouse, so results do
  not depend on the number of partitions or workers.

While ClickHouse is unreachable the loop pauses consumption and retries with
exponential backoff and jitter (tenacity), polling Kafka so the group keeps it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import tenacity

from streamwatch.adapters.clickhouse import DeadLetterRecord, RefusedRows, Source, StorageError
from streamwatch.adapters.kafka import Message, PublishError, RefusedMessage
from streamwatch.adapters.prometheus import WorkerMetrics
from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.pipeline.stage import PartitionStage, StageOutput
from streamwatch.runtime.ports import ConsumerFactory, DeadLetterTopic, Headers, WorkerStore

__all__ = ["DEAD_LETTER_MAX_BYTES", "RuntimeSettings", "WorkerRuntime", "raw_event_kept"]

_log = logging.getLogger("streamwatch.worker")
_MIN_REPORT_GAP_MS = 50  # between two reports that closed windows called for
#: The label join's counters exported (see ``core.join``).
_JOIN_COUNTS = ("evicted_predictions", "evicted_labels", "orphan_labels", "duplicate_labels", "unlabelled")
#: The most of a dead letter's value its topic gets (librdkafka's producer refuses messages over
#: ~1 MB, which a broker's default limit still lets a producer write); the rest is in ClickHouse.
DEAD_LETTER_MAX_BYTES = 512 * 1024
_RAW_KINDS = ("prediction", "feature", "label")


def _raw_hash(event: Any) -> int:
    """64 bits of BLAKE2b of the event's request id (its event id when it has none): the same in every process."""
    key = getattr(event, "request_id", None) or event.event_id
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def raw_event_kept(event: Any, rate: float) -> bool:
    """Whether ``raw_events: sample`` at ``rate`` stores ``event``: all events of one request alike, every time."""
    return _raw_hash(event) < int(rate * 2**64)


@dataclass(frozen=True)
class RuntimeSettings:
    """What the loop needs of the settings.

    The defaults live once, in :class:`~streamwatch.config.settings.Settings`: build this with :meth:`from_settings`.
    """

    group: str
    predictions: str
    features: str
    labels: str
    deadletter: str
    batch_size: int
    checkpoint_interval_ms: int
    idle_timeout_ms: int
    report_interval_ms: int
    max_future_ms: int
    max_age_ms: int
    raw_events: Literal["all", "sample", "none"]  # ClickHouseSettings.raw_events
    raw_sample_rate: float
    # Not user settings: how long a poll waits, and how often worker metrics are stored.
    poll_timeout_s: float = 0.2
    metrics_interval_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RuntimeSettings:
        """The loop's settings from the worker's, with ``overrides`` (tests and benchmarks) on top."""
        topics, worker, clickhouse = settings.topics, settings.worker, settings.clickhouse
        chosen: dict[str, Any] = {
            "group": worker.group,
            "predictions": topics.predictions,
            "features": topics.features,
            "labels": topics.labels,
            "deadletter": topics.deadletter,
            "batch_size": worker.batch_size,
            "checkpoint_interval_ms": worker.checkpoint_interval_ms,
            "idle_timeout_ms": worker.idle_timeout_ms,
            "report_interval_ms": worker.report_interval_ms,
            "max_future_ms": worker.max_future_ms,
            "max_age_ms": worker.max_age_ms,
            "raw_events": clickhouse.raw_events,
            "raw_sample_rate": clickhouse.raw_sample_rate,
        }
        return cls(**(chosen | overrides))

    @property
    def inputs(self) -> list[str]:
        return [self.predictions, self.features, self.labels]


@dataclass
class _Stream:
    """One owned partition number: its stage, where it has read to, and its checkpoint bookkeeping."""

    stage: PartitionStage
    generation: int
    seq: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # next offset to read, per topic
    checkpointed_at: float = 0.0
    last_message_at: float = 0.0
    dirty: bool = False

    @property
    def version(self) -> int:
        # A restarted stage writes with a new generation, above anything its predecessor wrote.
        return (self.generation << 32) | self.seq


class WorkerRuntime:
    """Consume, process, store, checkpoint; call :meth:`step` in a loop.

    ``consumer_factory(on_assign, on_revoke)`` builds the
    :class:`~streamwatch.adapters.kafka.BatchConsumer` (or anything with its methods: a
    :class:`~streamwatch.runtime.ports.GroupConsumer`); ``store`` is the ClickHouse
    :class:`~streamwatch.adapters.clickhouse.Store` (a :class:`~streamwatch.runtime.ports.WorkerStore`);
    ``dead_letter_topic`` publishes dead letters (``send(topic, value, headers=...)``
    and ``flush(timeout)``, like :class:`~streamwatch.adapters.kafka.ConfirmedPublisher`: a
    :class:`~streamwatch.runtime.ports.DeadLetterTopic`); ``clock`` gives wall-clock seconds
    (only timeouts and intervals use it, never results).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        store: WorkerStore,
        consumer_factory: ConsumerFactory,
        dead_letter_topic: DeadLetterTopic,
        settings: RuntimeSettings,
        *,
        report_runner: Any = None,
        metrics: WorkerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        dispatcher: Any = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.settings = settings
        self.dead_letter_topic = dead_letter_topic
        self.report_runner = report_runner  # a ReportRunner: active while this worker owns partition 0
        self.dispatcher = dispatcher  # delivers notifications on threads of its own (stopped by close)
        self.metrics = metrics or WorkerMetrics()
        self.clock = clock
        self.streams: dict[int, _Stream] = {}
        self._reporting = False
        self._deferred: list[Message] = []
        self._recorded_at = 0.0
        self._reported_at = 0.0
        self._wrote_partials = False
        self.failed = False
        #: Raw events not stored because of ``raw_events`` (sample or none), by kind.
        self.raw_events_skipped = dict.fromkeys(_RAW_KINDS, 0)
        self._raw_threshold = int(settings.raw_sample_rate * 2**64)
        self.worker_id = f"{settings.group}-{os.getpid()}"
        self.consumer = consumer_factory(self._assigned, self._revoked)

    # -- partitions coming and going (called from inside consume) --------------------------------

    def _assigned(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        starts: dict[tuple[str, int], int | None] = {}
        for number in sorted({p for _, p in partitions}):
            stream = self.streams.get(number) or self._load(number)
            self.streams[number] = stream
            for topic, p in partitions:
                if p == number:
                    starts[topic, p] = stream.offsets.get(topic)
        if (self.settings.predictions, 0) in partitions and self.report_runner is not None:
            self.report_runner.activate()
            self._reporting = True
        _log.info("assigned partitions %s", sorted({p for _, p in partitions}))
        return starts

    def _load(self, number: int) -> _Stream:
        stage = self.pipeline.new_stage()
        checkpoint = self.store.load_checkpoint(self._name, number)
        if checkpoint is None:
            return _Stream(stage, generation=1, last_message_at=self.clock())
        try:
            state = state_codec.loads(checkpoint.state, self.pipeline.profiles)
            if not isinstance(state, dict):
                raise state_codec.StateFormatError(f"it holds a {type(state).__name__}, not a stage's state")
        except state_codec.StateFormatError as exc:
            # The table keeps only the latest checkpoint of a partition, so the last good state is the
            # empty one: start from the earliest offsets Kafka keeps, as a partition never checkpointed
            # does. Nothing is lost; the rows written again replace the old ones (a newer generation).
            _log.warning(
                "checkpoint of partition %d (%s, version %d) is unreadable, starting the partition afresh "
                "from the earliest offsets kept: %s",
                number,
                self._name,
                checkpoint.version,
                exc,
            )
            return _Stream(stage, generation=(checkpoint.version >> 32) + 1, last_message_at=self.clock())
        stage.restore(state)
        return _Stream(
            stage,
            generation=(checkpoint.version >> 32) + 1,
            offsets=dict(checkpoint.offsets),
            last_message_at=self.clock(),
        )

    def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        for number in sorted({p for _, p in partitions}):
            stream = self.streams.pop(number, None)
            if stream is not None and stream.dirty and not self.failed:
                try:
                    self._checkpoint(number, stream)
                except StorageError as exc:  # the next owner redoes the batches since the last checkpoint
                    _log.warning("could not checkpoint partition %d on revoke: %s", number, exc)
        self._deferred = [m for m in self._deferred if m.partition in self.streams]
        if (self.settings.predictions, 0) in partitions and self._reporting:
            self._reporting = False
            self.report_runner.deactivate()
        _log.info("revoked partitions %s", sorted({p for _, p in partitions}))

    @property
    def _name(self) -> str:
        return f"stage:{self.settings.group}"

    # -- the loop ---------------------------------------------------------------------------------

    def step(self) -> int:
        """One batch: consume, process, store; checkpoint, idle partitions and reports when due.

        After any exception the runtime is failed: the stages hold batches whose results may not be
        stored, so :meth:`close` and a revocation checkpoint nothing; the next owner resumes from the
        last checkpoint, which is before them.
        """
        if self.failed:
            raise RuntimeError("this worker runtime failed in an earlier step: close it and start another")
        try:
            return self._step()
        except BaseException:
            self.failed = True
            raise

    def _step(self) -> int:
        messages = self._deferred or self.consumer.consume(self.settings.batch_size, self.settings.poll_timeout_s)
        self._deferred = []
        now = self.clock()
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for message in messages:
            if message.partition in self.streams:
                by_partition[message.partition].append(message)
        writes = []
        for number, batch in by_partition.items():
            stream = self.streams[number]
            stream.last_message_at = now
            writes.append((number, stream, batch, self._process(stream, batch)))
        if writes:
            # One insert per table for the whole step, not per partition: each insert has a fixed cost.
            self._write(writes)
        self._advance_idle(now)
        for number, stream in list(self.streams.items()):
            if stream.dirty and (now - stream.checkpointed_at) * 1000 >= self.settings.checkpoint_interval_ms:
                self._retrying(partial(self._checkpoint, number, stream))
        since = (now - self._reported_at) * 1000
        # At the head of the stream (a batch short of full), windows this worker just closed are reported
        # at once: alerts should not wait. Catching up on a backlog, every report_interval_ms is enough.
        live = len(messages) < self.settings.batch_size
        fresh = self._wrote_partials and live and since >= _MIN_REPORT_GAP_MS
        if self._reporting and (since >= self.settings.report_interval_ms or fresh):
            # Not every batch: each report reads every partition's partials and saves its state.
            self._reported_at = now
            self._wrote_partials = False
            self._retrying(self.report_runner.tick)
        if now - self._recorded_at >= self.settings.metrics_interval_s:
            self._record_metrics(now)
        return len(messages)

    def _record_metrics(self, now: float) -> None:
        """Refresh the gauges, and store every figure in ``worker_metrics`` (best effort)."""
        self._recorded_at = now
        self.metrics.lag(self.consumer.lag())
        stages = [s.stage for s in self.streams.values()]
        counts = {name: sum(getattr(s.join, name) for s in stages) for name in _JOIN_COUNTS}
        counts["twin_evicted"] = sum(s.twins.evicted for s in stages)
        counts["late_events"] = sum(s.windows.late_events for s in stages)
        counts["future_leaps"] = sum(s.windows.leaps for s in stages)
        if self._reporting:
            counts["late_partials"] = self.report_runner.late_partials
        self.metrics.state(
            sum(len(s.windows._open) for s in stages), sum(s.join.pending_predictions for s in stages), counts
        )
        try:
            self.store.insert_worker_metrics(self.worker_id, now_ms(), self.metrics.samples())
        except StorageError as exc:
            _log.warning("could not store worker metrics: %s", exc)

    def _process(self, stream: _Stream, batch: list[Message]) -> StageOutput:
        started = time.perf_counter()
        future, past = self.settings.max_future_ms, self.settings.max_age_ms
        plausible = [
            (m.timestamp_ms - past, m.timestamp_ms + future) if m.timestamp_ms > 0 else (-(2**62), 2**62) for m in batch
        ]
        output = stream.stage.process([m.value for m in batch], plausible)
        stream.seq += 1
        stream.dirty = True
        for m in batch:
            stream.offsets[m.topic] = max(stream.offsets.get(m.topic, 0), m.offset + 1)
        self.metrics.processed(batch, output, time.perf_counter() - started)
        return output

    def _write(self, writes: list[tuple[int, _Stream, list[Message], StageOutput]]) -> None:
        """Store what the batches produced, each table's insert retried on its own (never recomputed)."""
        started = time.perf_counter()
        raw: dict[str, tuple[list[Any], list[Source]]] = {k: ([], []) for k in _RAW_KINDS}
        letters: list[DeadLetterRecord] = []
        received = now_ms()
        values: dict[Source, bytes] = {}
        for number, _, batch, output in writes:
            decoded = output.decoded
            if decoded is not None:
                for kind, events in (
                    ("prediction", decoded.predictions),
                    ("feature", decoded.features),
                    ("label", decoded.labels),
                ):
                    kept, positions = self._raw_share(kind, events, decoded.positions[kind])
                    raw[kind][0].extend(kept)
                    for i in positions:
                        source = Source(batch[i].topic, number, batch[i].offset)
                        raw[kind][1].append(source)
                        values[source] = batch[i].value
            letters += [
                DeadLetterRecord(
                    Source(batch[d.index].topic, number, batch[d.index].offset),
                    d.reason,
                    batch[d.index].value,
                    received,
                )
                for d in output.dead_letters
            ]
        for kind, insert in (
            ("prediction", self.store.insert_predictions),
            ("feature", self.store.insert_feature_events),
            ("label", self.store.insert_labels),
        ):
            events, sources = raw[kind]
            if events:
                refused = self._insert(partial(insert, events, sources))
                if refused is not None:
                    # The event passed the contract but ClickHouse cannot hold it: a dead letter, not a loss.
                    for i in refused.rows:
                        reason = f"{kind} event: ClickHouse refused it: {refused.reason}"
                        letters.append(DeadLetterRecord(sources[i], reason, values[sources[i]], received))
        if letters:
            self._insert(partial(self.store.insert_dead_letters, letters))
            self._publish_dead_letters(letters)
        self._write_partials([(number, stream, output) for number, stream, _, output in writes])
        self.metrics.inserted(time.perf_counter() - started)

    def _raw_share(self, kind: str, events: list[Any], positions: list[int]) -> tuple[list[Any], list[int]]:
        """The events of a batch that ``raw_events`` stores, with their positions; the others are counted."""
        mode = self.settings.raw_events
        if mode == "all" or not events:
            return events, positions
        kept_events: list[Any] = []
        kept_positions: list[int] = []
        if mode == "sample":
            threshold = self._raw_threshold
            for event, position in zip(events, positions, strict=True):
                if _raw_hash(event) < threshold:
                    kept_events.append(event)
                    kept_positions.append(position)
        self.raw_events_skipped[kind] += len(events) - len(kept_events)
        self.metrics.raw_events_skipped.labels(kind).inc(len(events) - len(kept_events))
        return kept_events, kept_positions

    def _publish_dead_letters(self, letters: list[DeadLetterRecord]) -> None:
        for record in letters:
            value = record.raw
            headers: Headers = [
                ("streamwatch-reason", record.reason.encode()),
                ("streamwatch-topic", record.source.topic.encode()),
                ("streamwatch-partition", str(record.source.partition).encode()),
                ("streamwatch-offset", str(record.source.offset).encode()),
            ]
            if len(value) > DEAD_LETTER_MAX_BYTES:
                # A message the broker took can still be over the producer's limit once headers are
                # added; the topic gets its head, ClickHouse's dead_letters table the whole of it.
                headers.append(("streamwatch-truncated-from", str(len(value)).encode()))
                value = value[:DEAD_LETTER_MAX_BYTES]
            try:
                self._retrying(partial(self.dead_letter_topic.send, self.settings.deadletter, value, headers=headers))
            except RefusedMessage as exc:
                self._refused(f"{self.settings.deadletter} topic", 1, str(exc))

    def _insert(self, write: Callable[[], None]) -> RefusedRows | None:
        """``write`` retried while ClickHouse is away; rows it refuses for good are counted and returned."""
        try:
            self._retrying(write)
        except RefusedRows as exc:
            self._refused(exc.table, len(exc.rows), exc.reason)
            return exc
        return None

    def _refused(self, where: str, n: int, reason: str) -> None:
        self.metrics.refused(where, n)
        _log.error("%d row(s) refused for good by %s, not retried: %s", n, where, reason)

    def _write_partials(self, outputs: list[tuple[int, _Stream, StageOutput]]) -> None:
        rows: list[tuple[int, int, str, tuple[Any, ...], int, bytes]] = []
        for number, stream, output in outputs:
            if output.partials:
                rows += [
                    (number, stream.version, p.kind, p.key, p.start, state_codec.dumps(p.aggregate))
                    for p in output.partials
                ]
                # The stage's watermark goes in the same insert: once the reporter sees it, it has every
                # partial of the windows before it, without waiting for the next checkpoint.
                rows.append((number, stream.version, "watermark", (), 0, str(output.watermark).encode()))
        if rows:
            self._insert(partial(self.store.insert_partials, self.settings.group, rows))
            self._wrote_partials = True

    def _checkpoint(self, number: int, stream: _Stream) -> None:
        # Dead letters reach their topic at least once, confirmed by their delivery reports, before
        # the offsets that produced them move on.
        if self.dead_letter_topic.flush(10.0):
            raise StorageError("dead-letter topic: messages still unconfirmed after 10 s")
        for topic, reason in self.dead_letter_topic.refused():
            self._refused(f"{topic} topic", 1, reason)
        state = state_codec.dumps(stream.stage.state())
        stream.checkpointed_at = self.clock()
        try:
            self.store.save_checkpoint(
                self._name, number, stream.version, stream.stage.watermark, stream.offsets, state
            )
        except RefusedRows as exc:
            # Not fatal: the partition resumes from its previous checkpoint, redoing more. Tried again
            # a checkpoint interval later, not at once.
            self._refused(exc.table, 1, exc.reason)
            return
        stream.dirty = False
        self.consumer.commit({(topic, number): offset for topic, offset in stream.offsets.items()})
        self.metrics.checkpointed(number, len(state))

    def _advance_idle(self, now: float) -> None:
        """A partition quiet for ``idle_timeout_ms`` follows the others' event time, closing its windows."""
        quiet = []
        for number, stream in self.streams.items():
            if (now - stream.last_message_at) * 1000 < self.settings.idle_timeout_ms:
                continue
            if self.consumer.caught_up({(t, number): stream.offsets.get(t) for t in self.settings.inputs}):
                quiet.append((number, stream))
            else:  # quiet is not idle while a backlog waits to be fetched: look again a timeout later
                stream.last_message_at = now
        if not quiet:
            return
        watermarks = self.store.checkpoint_watermarks(self._name)
        target = max(watermarks.values(), default=-(2**62))
        for number, stream in quiet:
            if target > stream.stage.watermark or stream.stage.performance_pending:
                output = stream.stage.advance_to(
                    max(target, stream.stage.watermark) + self.pipeline.allowed_lateness_ms
                )
                stream.seq += 1
                stream.dirty = True
                self._write_partials([(number, stream, output)])
                self._retrying(partial(self._checkpoint, number, stream))
            stream.last_message_at = now

    def _retrying(self, write: Callable[[], None]) -> None:
        """Run ``write`` until ClickHouse takes it, consuming nothing meanwhile."""
        paused = False

        def wait_polling(seconds: float) -> None:
            nonlocal paused
            if not paused:
                self.consumer.pause()
                paused = True
            deadline = self.clock() + seconds
            while self.clock() < deadline:
                # Polling keeps the group membership; anything that still arrives is kept for later.
                self._deferred += self.consumer.consume(self.settings.batch_size, min(0.2, seconds))

        def storage_error(state: tenacity.RetryCallState) -> None:
            self.metrics.storage_error()
            _log.warning("write failed, retrying: %s", state.outcome.exception() if state.outcome else None)

        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((StorageError, PublishError)),
            wait=tenacity.wait_exponential_jitter(multiplier=0.2, max=10.0),
            sleep=wait_polling,
            before_sleep=storage_error,
        ):
            with attempt:
                write()
        if paused:
            self.consumer.resume()

    def close(self) -> None:
        """Checkpoint every owned partition (unless a step failed: see :meth:`step`) and leave the group."""
        if self.failed:
            _log.warning("closing after a failed step: no checkpoint, the next start redoes what followed the last")
        for number, stream in list(self.streams.items()):
            if stream.dirty and not self.failed:
                try:
                    self._checkpoint(number, stream)
                except StorageError as exc:
                    _log.warning("could not checkpoint partition %d at shutdown: %s", number, exc)
        if self._reporting and not self.failed:
            try:
                self.report_runner.tick()
            except StorageError as exc:
                _log.warning("could not report at shutdown: %s", exc)
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.consumer.close()
