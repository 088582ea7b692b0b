"""The reporting side of the workers: merge every partition's partials from ClickHouse, judge, store.

Exactly one worker runs it at a time: the owner of partition 0 of the
predictions topic (Kafka's group protocol elects it, and a rebalance moves
it). Each :meth:`ReportRunner.tick` reads the partials written since the last
tick and the watermark of every partition's latest checkpoint, feeds them to a
:class:`~streamwatch.partial_merge.PartialMerger`, reports the windows now
complete through the pipeline's :class:`~streamwatch.reporter.Reporter`, stores
the rows and findings, and checkpoints its own state. After a crash it resumes
from that checkpoint and reports the same windows again, which writes the same
rows (the metrics table keeps the latest version of each).
"""

from __future__ import annotations

import logging
from typing import Any

from . import state_codec
from .alert_events import alert_event, alert_row
from .alert_rules import RuleEngine
from .clickhouse import StorageError, Store
from .partial_merge import PartialMerger
from .partition_stage import Partial, StageOutput
from .pipeline import Pipeline, PipelineOutput

__all__ = ["ReportRunner"]

_log = logging.getLogger("streamwatch.worker")


class ReportRunner:
    """Merges partials of ``partitions`` partition numbers and reports complete windows.

    ``on_report(output)`` (optional) sees every batch of rows and findings
    after they are stored: where alert rules will hook in.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        store: Store,
        group: str,
        partitions: int,
        on_report: Any = None,
        rules: RuleEngine | None = None,
        alerts: tuple[Any, str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.group = group
        self.partitions = partitions
        self.on_report = on_report
        self.rules = rules  # alert rules judged on every report's rows
        self.alerts = alerts  # (a transport with send and flush, the alerts topic)
        self.active = False
        self.reported_rows = 0
        self._merger: PartialMerger | None = None
        self._seen: dict[int, int] = {}
        self._generation = 0
        self._seq = 0

    def _alert(self, transitions: list[Any], version: int) -> None:
        """Store every transition and publish it, before the checkpoint that moves past it."""
        events = []
        for transition in transitions:
            profile = self.pipeline.profiles.get((transition.model, transition.model_version))
            lineage = {k: str(v) for k, v in profile.lineage.model_dump().items() if v is not None} if profile else {}
            events.append(alert_event(transition, lineage))
        if not events:
            return
        self.store.insert_alerts([alert_row(event, version) for event in events])
        if self.alerts is not None:
            transport, topic = self.alerts
            for event in events:
                transport.send(topic, event.model_dump_json().encode(), event.fingerprint.encode())
            if transport.flush(10.0):
                raise StorageError("alerts topic: alerts still undelivered after 10 s")
        for event in events:
            _log.info(
                "alert %s %s: %s",
                event.status,
                event.rule,
                event.reason,
                extra={"model": event.model, "model_version": event.model_version, "fingerprint": event.fingerprint},
            )

    @property
    def _name(self) -> str:
        return f"reporter:{self.group}"

    def activate(self) -> None:
        """Take over reporting: resume from the last reporter checkpoint, or start afresh."""
        checkpoint = self.store.load_checkpoint(self._name, 0)
        self._merger = PartialMerger(range(self.partitions), self.pipeline.window_ms)
        self._seen = dict.fromkeys(range(self.partitions), 0)
        self._generation, self._seq = 1, 0
        if checkpoint is not None:
            state = state_codec.loads(checkpoint.state, self.pipeline.profiles)
            self._merger, self._seen = state["merger"], state["seen"]
            self.pipeline.reporter.restore(state["reporter"])
            if self.rules is not None and "rules" in state:
                self.rules.restore(state["rules"])
            self._generation = (checkpoint.version >> 32) + 1
        self.active = True

    def deactivate(self) -> None:
        self.active = False
        self._merger = None

    def tick(self) -> int:
        """Report what became complete since the last tick; return the rows stored."""
        if not self.active or self._merger is None:
            return 0
        merger = self._merger
        watermarks = self.store.checkpoint_watermarks(f"stage:{self.group}")
        fed = False
        for partition in range(self.partitions):
            rows = self.store.partials_since(self.group, partition, self._seen.get(partition, 0))
            if rows:
                self._seen[partition] = max(version for *_, version, _ in rows)
            partials, watermark = [], watermarks.get(partition, -(2**62))
            for kind, key, start, _, blob in rows:
                if kind == "watermark":
                    # Written with the partials of the batch that reached it: all before it are read.
                    watermark = max(watermark, int(blob))
                else:
                    partials.append(Partial(kind, key, start, state_codec.loads(blob, self.pipeline.profiles)))
            if rows or partition in watermarks:
                # A checkpoint's watermark counts too: every partial written before it is read above.
                merger.add(partition, StageOutput(partials, watermark=watermark))
                fed = True
        if not fed:
            return 0
        out = PipelineOutput()
        released = merger.release()
        self.pipeline.report_partials(released, out)
        for partial in released:
            model, version, variant = partial.key[:3]
            _log.info(
                "reported %s window %s %s %s at %d",
                partial.kind,
                model,
                version,
                variant,
                partial.start,
                extra={"model": model, "model_version": version, "variant": variant, "window_start": partial.start},
            )
        merger.forget_before(merger.watermark - self.pipeline.window_ms - self.pipeline.label_horizon_ms)
        self._seq += 1
        version = (self._generation << 32) | self._seq
        if out.rows:
            self.store.insert_metrics(out.rows, version)
        if out.findings:
            self.store.insert_findings(out.findings, version)
        if self.rules is not None and out.rows:
            self._alert(self.rules.evaluate(out.rows), version)
        state = {"merger": merger, "seen": self._seen, "reporter": self.pipeline.reporter.state()}
        if self.rules is not None:
            state["rules"] = self.rules.state()
        self.store.save_checkpoint(self._name, 0, version, merger.watermark, {}, state_codec.dumps(state))
        if self.on_report is not None and (out.rows or out.findings):
            self.on_report(out)
        self.reported_rows += len(out.rows)
        return len(out.rows)
