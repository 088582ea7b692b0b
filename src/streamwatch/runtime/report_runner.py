"""The reporting side of the workers: merge every partition's partials from ClickHouse, judge, store.

Exactly one worker runs it at a time: the owner of partition 0 of the
predictions topic (Kafka's group protocol elects it, and a rebalance moves
it). Each :meth:`ReportRunner.tick` reads the partials written since the last
tick and the watermark of every partition's latest checkpoint, feeds them to a
:class:`~streamwatch.pipeline.merge.PartialMerger`, reports the windows now
complete through the pipeline's :class:`~streamwatch.pipeline.reporter.Reporter`, stores
the rows and findings, and checkpoints its own state. After a crash it resumes
from that checkpoint and reports the same windows again, which writes the same
rows (the metrics table keeps the latest version of each).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from streamwatch.adapters.clickhouse import RefusedRows, StorageError
from streamwatch.adapters.kafka import RefusedMessage
from streamwatch.alerts.engine import STATE_TYPES, Alerting, AlertingOutput
from streamwatch.alerts.events import alert_row, retrain_row
from streamwatch.clock import now_ms
from streamwatch.pipeline import state as state_codec
from streamwatch.pipeline.merge import PartialMerger
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.pipeline.stage import Partial, StageOutput
from streamwatch.runtime.ports import EventPublisher, ReportStore

__all__ = ["RETIRE_AFTER_MS", "AlertTopics", "ReportRunner"]

#: Event time after which a model version (or variant) with no window is retired from the reporter's state.
RETIRE_AFTER_MS = 7 * 86_400_000

for _name, _cls in STATE_TYPES.items():  # a reporter checkpoint carries the alerting's state
    state_codec.register(_name, _cls)

_log = logging.getLogger("streamwatch.worker")


@dataclass(frozen=True)
class AlertTopics:
    """Where alerting publishes: every topic is read by someone else (see the documentation)."""

    alerts: str = "streamwatch.alerts"
    retrain: str = "streamwatch.retrain"
    control: str = "streamwatch.control"
    notifications: str = "streamwatch.notifications"


class ReportRunner:
    """Merges partials of ``partitions`` partition numbers and reports complete windows.

    ``store`` is the ClickHouse :class:`~streamwatch.adapters.clickhouse.Store` (a
    :class:`~streamwatch.runtime.ports.ReportStore`). ``on_report(output)`` (optional) sees
    every batch of rows and findings after they are stored. With ``alerting``, every report
    is judged by the alert rules; what that produces is stored and published through
    ``transport`` (``send(topic, value, key)`` and ``flush(timeout)``: an
    :class:`~streamwatch.runtime.ports.EventPublisher`) before the checkpoint that moves past it.
    ``silences`` (``silenced(labels, now_ms)``) mutes notifications; ``clock_ms`` is the wall
    clock notifications are timed by; ``metrics`` (a :class:`~streamwatch.adapters.prometheus.WorkerMetrics`)
    counts rows and messages refused for good.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        store: ReportStore,
        group: str,
        partitions: int,
        on_report: Any = None,
        alerting: Alerting | None = None,
        transport: EventPublisher | None = None,
        topics: AlertTopics = AlertTopics(),
        silences: Any = None,
        clock_ms: Callable[[], int] = now_ms,
        metrics: Any = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.group = group
        self.partitions = partitions
        self.on_report = on_report
        self.alerting = alerting
        self.transport = transport
        self.topics = topics
        self.silences = silences
        self.clock_ms = clock_ms
        self.metrics = metrics  # counts what is refused for good (a WorkerMetrics)
        self.active = False
        self.reported_rows = 0
        self._merger: PartialMerger | None = None
        self._seen: dict[int, int] = {}
        self._fed: dict[int, int] = {}  # the checkpoint watermark of each partition last fed to the merger
        self._pending: list[Callable[[], None]] = []  # the writes of the last report not done yet
        self._generation = 0
        self._seq = 0

    def _silenced(self, now_ms: int) -> Callable[[dict[str, str]], bool]:
        silences = self.silences
        if silences is None:
            return lambda labels: False
        if hasattr(silences, "refresh"):
            silences.refresh()  # once per tick: silences published since the last one
        return lambda labels: silences.silenced(labels, now_ms) is not None

    def _alerting_writes(self, out: AlertingOutput, version: int) -> list[Callable[[], None]]:
        """Store and publish what alerting produced, before the checkpoint that moves past it."""
        writes: list[Callable[[], None]] = []
        if out.alerts:
            alert_rows = [alert_row(event, version) for event in out.alerts]
            writes.append(lambda: self._insert(self.store.insert_alerts, alert_rows))
        if out.retrain:
            retrain_rows = [retrain_row(e) for e in out.retrain]
            writes.append(lambda: self._insert(self.store.insert_retrain_events, retrain_rows))
        if self.transport is not None:
            t = self.topics
            sends: list[tuple[str, Any, str]] = [(t.alerts, e, e.fingerprint) for e in out.alerts]
            sends += [(t.retrain, e, f"{e.model}/{e.model_version}") for e in out.retrain]
            sends += [(t.control, e, f"{e.model}/{e.model_version}") for e in out.circuit_breaks]
            sends += [(t.notifications, n, n.channel) for n in out.notifications]
            # One write per message: a retry after a refusal goes on from the message refused.
            writes += [partial(self._send, topic, event.model_dump_json().encode(), key) for topic, event, key in sends]
            if sends:
                writes.append(self._flush)

        def log() -> None:
            for event in out.alerts:
                _log.info(
                    "alert %s %s: %s",
                    event.status,
                    event.rule,
                    event.reason,
                    extra={
                        "model": event.model,
                        "model_version": event.model_version,
                        "fingerprint": event.fingerprint,
                    },
                )
            for request in out.retrain:
                _log.info("retrain requested for %s %s: %s", request.model, request.model_version, request.reason)

        writes.append(log)
        return writes

    def _insert(self, insert: Callable[[Any], None], rows: Any) -> None:
        try:
            insert(rows)
        except RefusedRows as exc:  # the other rows are stored; these would be refused again
            self._refused(exc.table, len(exc.rows), exc.reason)

    def _send(self, topic: str, value: bytes, key: str) -> None:
        assert self.transport is not None
        try:
            self.transport.send(topic, value, key.encode())
        except RefusedMessage as exc:
            self._refused(f"{topic} topic", 1, str(exc))

    def _flush(self) -> None:
        assert self.transport is not None
        if self.transport.flush(10.0):
            raise StorageError("alerting topics: events still unconfirmed after 10 s")
        for topic, reason in self.transport.refused():
            self._refused(f"{topic} topic", 1, reason)

    def _refused(self, target: str, n: int, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.refused(target, n)
        _log.error("%d row(s) refused for good by %s, not retried: %s", n, target, reason)

    @property
    def late_partials(self) -> int:
        """Partials that came for windows already reported (a counter of the merger's, kept in its state)."""
        return self._merger.late_partials if self._merger is not None else 0

    @property
    def _name(self) -> str:
        return f"reporter:{self.group}"

    def activate(self) -> None:
        """Take over reporting: resume from the last reporter checkpoint, or start afresh."""
        checkpoint = self.store.load_checkpoint(self._name, 0)
        self._merger = PartialMerger(range(self.partitions), self.pipeline.window_ms)
        self._seen = dict.fromkeys(range(self.partitions), 0)
        self._fed = {}
        self._pending = []
        self._generation, self._seq = 1, 0
        if checkpoint is not None:
            try:
                state = state_codec.loads(checkpoint.state, self.pipeline.profiles)
                if not isinstance(state, dict) or not {"merger", "seen", "reporter"} <= state.keys():
                    raise state_codec.StateFormatError(f"it holds a {type(state).__name__}, not a reporter's state")
            except state_codec.StateFormatError as exc:
                # Only the latest checkpoint is kept: start afresh, as with none, rereading every partial
                # still stored. The windows reported again replace their rows (a newer generation).
                _log.warning(
                    "reporter checkpoint (%s, version %d) is unreadable, reporting afresh from the stored partials: %s",
                    self._name,
                    checkpoint.version,
                    exc,
                )
            else:
                self._merger, self._seen = state["merger"], state["seen"]
                self.pipeline.reporter.restore(state["reporter"])
                if self.alerting is not None and "alerting" in state:
                    self.alerting.restore(state["alerting"])
            self._generation = (checkpoint.version >> 32) + 1
        self.active = True

    def deactivate(self) -> None:
        self.active = False
        self._merger = None
        self._pending = []

    def _drain(self) -> None:
        """Do the writes of the last computed report, in order, each once; a refusal leaves the rest."""
        while self._pending:
            self._pending[0]()  # raises StorageError/PublishError: retried by the caller, from this write
            self._pending.pop(0)

    def tick(self) -> int:
        """Report what became complete since the last tick; return the rows stored.

        A tick computes its results once, then writes them one write at a time: metrics, findings,
        alerts, retrain events, each message to its topic, their delivery confirmed, then the
        checkpoint of the state that produced them. When a write fails (ClickHouse or Kafka away),
        the next tick goes on from that write; nothing is computed twice, so nothing computed is lost.
        """
        if not self.active or self._merger is None:
            return 0
        self._drain()
        merger = self._merger
        watermarks = self.store.checkpoint_watermarks(f"stage:{self.group}")
        fed = False
        for partition in range(self.partitions):
            rows = self.store.partials_since(self.group, partition, self._seen.get(partition, 0))
            if rows:
                self._seen[partition] = max(version for *_, version, _ in rows)
            partials, watermark = [], watermarks.get(partition, -(2**62))
            for kind, key, start, written, blob in rows:
                if kind == "watermark":
                    # Written with the partials of the batch that reached it: all before it are read.
                    watermark = max(watermark, int(blob))
                else:
                    try:
                        aggregate = state_codec.loads(blob, self.pipeline.profiles)
                    except state_codec.StateFormatError as exc:
                        _log.warning(
                            "skipped an unreadable %s partial of partition %d, window %s at %d (version %d): %s",
                            kind,
                            partition,
                            key,
                            start,
                            written,
                            exc,
                        )
                        continue
                    partials.append(Partial(kind, key, start, aggregate))  # type: ignore[arg-type]  # the loop wrote a Partial's kind
            # A checkpoint's watermark counts too: every partial written before it is read above. One
            # that has not moved since the last tick brings nothing (and would only churn checkpoints).
            if rows or (partition in watermarks and watermarks[partition] != self._fed.get(partition)):
                merger.add(partition, StageOutput(partials, watermark=watermark))
                self._fed[partition] = watermarks.get(partition, self._fed.get(partition, -(2**62)))
                fed = True
        if not fed:
            return self._tick_alerting()
        out = PipelineOutput()
        released = merger.release()
        self.pipeline.report_partials(released, out)
        for partial_ in released:
            model, version_, variant = partial_.key[:3]
            _log.info(
                "reported %s window %s %s %s at %d",
                partial_.kind,
                model,
                version_,
                variant,
                partial_.start,
                extra={
                    "model": model,
                    "model_version": version_,
                    "variant": variant,
                    "window_start": partial_.start,
                },
            )
        merger.forget_before(merger.watermark - self.pipeline.window_ms - self.pipeline.label_horizon_ms)
        # Versions with no window for RETIRE_AFTER_MS of event time are retired: their state goes.
        retired = self.pipeline.reporter.retire(merger.watermark - RETIRE_AFTER_MS)
        if retired:
            _log.info("retired %d model version(s) without a window for 7 days: %s", len(retired), retired[:5])
        if self.alerting is not None:
            self.alerting.retire(merger.watermark - RETIRE_AFTER_MS)
        self._seq += 1
        version = (self._generation << 32) | self._seq
        writes: list[Callable[[], None]] = []
        if out.rows:
            writes.append(partial(self._insert, partial(self.store.insert_metrics, version=version), out.rows))
        if out.findings:
            writes.append(partial(self._insert, partial(self.store.insert_findings, version=version), out.findings))
        if self.alerting is not None:
            now = self.clock_ms()
            judged = self.alerting.report(out.rows + out.view, out.findings, out.examples, now, self._silenced(now))
            writes += self._alerting_writes(judged, version)
        writes.append(self._checkpoint_write(version))
        if self.on_report is not None and (out.rows or out.findings):
            writes.append(partial(self.on_report, out))
        self._pending = writes
        self._drain()
        self.reported_rows += len(out.rows)
        return len(out.rows)

    def _tick_alerting(self) -> int:
        """With no new report, notifications may still come due (group waits, intervals, repeats)."""
        if self.alerting is None:
            return 0
        now = self.clock_ms()
        out = self.alerting.tick(now, self._silenced(now))
        if out:
            self._seq += 1
            version = (self._generation << 32) | self._seq
            self._pending = [*self._alerting_writes(out, version), self._checkpoint_write(version)]
            self._drain()
        return 0

    def _checkpoint_write(self, version: int) -> Callable[[], None]:
        """The checkpoint of the state as it is now (serialised now: later ticks change it), as a write."""
        assert self._merger is not None
        state: dict[str, Any] = {"merger": self._merger, "seen": self._seen, "reporter": self.pipeline.reporter.state()}
        if self.alerting is not None:
            state["alerting"] = self.alerting.state()
        blob, watermark = state_codec.dumps(state), self._merger.watermark

        def save() -> None:
            try:
                self.store.save_checkpoint(self._name, 0, version, watermark, {}, blob)
            except RefusedRows as exc:  # resumes from the previous checkpoint, redoing more: no loss
                self._refused(exc.table, 1, exc.reason)

        return save
