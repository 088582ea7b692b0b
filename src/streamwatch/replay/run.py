"""Replay files of events through the monitoring pipeline, into sinks.

A replay reads JSON Lines files (``.gz`` ones through gzip) line by line, in
batches, through the very :class:`~streamwatch.pipeline.pipeline.Pipeline` the Kafka
workers run, then flushes it: every window is closed and reported at the end.
The files are one stream in the order given, so predictions, features and
labels may be mixed in any order (the pipeline joins them), and what counts as
late depends on that order, as it would on a topic.

Memory does not grow with the files: only one batch of lines is held, besides
the pipeline's own state. What the pipeline emits goes to *sinks*, anything
with the two methods of :class:`Sink`: an :class:`ExportSink` writes the
JSON Lines export (:mod:`streamwatch.replay.export`), a :class:`ClickHouseSink`
stores results through :mod:`streamwatch.adapters.clickhouse`. Every refused line
reaches the sinks as a :class:`~streamwatch.replay.export.LineDeadLetter` naming its
file and 1-based line number.
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from io import BufferedIOBase
from pathlib import Path
from typing import Any, Protocol

from streamwatch.alerts.engine import Alerting
from streamwatch.alerts.events import alert_row, retrain_row
from streamwatch.config.settings import Settings
from streamwatch.contract.limits import MAX_EVENT_BYTES
from streamwatch.errors import StreamwatchError
from streamwatch.pipeline.pipeline import Pipeline, PipelineOutput
from streamwatch.profiles.model import ReferenceProfile
from streamwatch.replay.batch import LineDeadLetter, ReplayBatch
from streamwatch.replay.export import ExportSink

__all__ = ["ClickHouseSink", "ExportSink", "ReplayBatch", "ReplaySummary", "Sink", "check_files", "replay"]


class Sink(Protocol):
    """Where a replay's results go. The caller opens and closes sinks; a replay only calls these."""

    def start(self, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> None:
        """Called once, before the first batch, with the reference profiles the pipeline judges against."""

    def write(self, batch: ReplayBatch) -> None:
        """Called after every pipeline call that emitted something, the final flush included."""


@dataclass
class ReplaySummary:
    """What a replay read and emitted. ``events`` counts the non-blank lines, dead letters included."""

    files: list[str]
    bytes_read: int = 0
    events: int = 0
    dead_letters: int = 0
    late_events: int = 0
    labels_received: int = 0
    labels_matched: int = 0
    screened: Counter[str] = field(default_factory=Counter)  # by reason (see PipelineOutput.screened)
    metric_rows: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    models: set[tuple[str, str]] = field(default_factory=set)
    alerts: Counter[str] = field(default_factory=Counter)  # transitions by status
    retrain: int = 0


def replay(
    paths: Sequence[Path | str],
    profiles: Mapping[tuple[str, str], ReferenceProfile],
    pipeline: Pipeline,
    sinks: Sequence[Sink],
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    alerting: Alerting | None = None,
) -> ReplaySummary:
    """Feed the files' lines to ``pipeline`` in batches, flush it, and pass what it emits to ``sinks``.

    With ``alerting`` the rules judge every report as a worker's would (in event
    time), and the alerts and retrain requests go to the sinks too; a replay
    sends no notification.

    ``profiles`` go to each sink's ``start`` (the pipeline already has them).
    ``progress`` is called now and then with how many more bytes of the files
    (compressed, for ``.gz``) were read. A file that cannot be opened raises a
    :class:`~streamwatch.errors.StreamwatchError` before anything is read.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    files = check_files(paths)
    summary = ReplaySummary(files=[str(p) for p in files])

    def advance(size: int) -> None:
        summary.bytes_read += size
        if progress is not None:
            progress(size)

    for sink in sinks:
        sink.start(profiles)
    raws: list[bytes] = []
    origins: list[tuple[str, int]] = []
    # Lines refused before the pipeline (too long), with how many batch lines preceded them.
    refused: list[tuple[int, LineDeadLetter]] = []
    for path in files:
        for number, raw, problem in _lines(path, advance):
            summary.events += 1
            if problem is not None:
                refused.append((len(raws), LineDeadLetter(str(path), number, problem, raw)))
                continue
            raws.append(raw)
            origins.append((str(path), number))
            if len(raws) >= batch_size:
                _emit(pipeline.process(raws), raws, origins, refused, sinks, summary, alerting)
                raws, origins, refused = [], [], []
    if raws or refused:
        _emit(pipeline.process(raws), raws, origins, refused, sinks, summary, alerting)
    _emit(pipeline.flush(), [], [], [], sinks, summary, alerting)
    return summary


def check_files(paths: Iterable[Path | str]) -> list[Path]:
    """The paths, once each is known to be a file; else a one-line StreamwatchError naming it."""
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            reason = "is not a file" if path.exists() else "no such file"
            raise StreamwatchError(f"{path}: cannot be read ({reason})")
    return files


def _emit(
    out: PipelineOutput,
    raws: list[bytes],
    origins: list[tuple[str, int]],
    refused: list[tuple[int, LineDeadLetter]],
    sinks: Sequence[Sink],
    summary: ReplaySummary,
    alerting: Alerting | None = None,
) -> None:
    # In reading order: a line refused early sorts before the batch line that followed it.
    positioned = [(d.index, 1, LineDeadLetter(*origins[d.index], d.reason, raws[d.index])) for d in out.dead_letters]
    positioned += [(before, 0, letter) for before, letter in refused]
    dead = [letter for _, _, letter in sorted(positioned, key=lambda p: p[:2])]
    summary.dead_letters += len(dead)
    summary.late_events += out.late_events
    summary.screened.update(out.screened)
    summary.labels_received += out.labels_received
    summary.labels_matched += out.labels_matched
    summary.metric_rows += len(out.rows)
    summary.findings.update(f.kind for f in out.findings)
    summary.models.update((r.model, r.model_version) for r in out.rows)
    judged = alerting.report(out.rows + out.view, out.findings, out.examples, None) if alerting is not None else None
    alerts = judged.alerts if judged else []
    retrain = judged.retrain if judged else []
    summary.alerts.update(a.status for a in alerts)
    summary.retrain += len(retrain)
    if out.rows or out.findings or dead or alerts:
        batch = ReplayBatch(out.rows, out.findings, dead, alerts, retrain)
        for sink in sinks:
            sink.write(batch)


def _lines(path: Path, advance: Callable[[int], None]) -> Iterator[tuple[int, bytes, str | None]]:
    """Non-blank lines as (1-based number, bytes without the line end, reason to refuse or None)."""
    # readline with a limit keeps a file without line breaks (a JSON array, say) out of memory.
    limit = MAX_EVENT_BYTES + 2
    with path.open("rb") as file:
        stream: BufferedIOBase = gzip.GzipFile(fileobj=file, mode="rb") if path.suffix == ".gz" else file
        reported = 0
        number = 0
        try:
            while line := stream.readline(limit):
                number += 1
                problem = None
                if len(line) == limit and not line.endswith(b"\n"):
                    head, size = line, 0
                    while line and not line.endswith(b"\n"):  # read the rest of the line, and drop it
                        size += len(line)
                        line = stream.readline(limit)
                    size += len(line.rstrip(b"\r\n"))
                    problem = f"event: {size} bytes exceeds the {MAX_EVENT_BYTES}-byte limit"
                    line = head[:MAX_EVENT_BYTES]  # kept as evidence, cut short
                if number % 1024 == 0:
                    position = file.tell()
                    advance(position - reported)
                    reported = position
                if line.strip():
                    yield number, line.rstrip(b"\r\n"), problem
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz, or a disk error
            raise StreamwatchError(f"{path}: line {number + 1}: cannot be read ({exc})") from None
        advance(file.tell() - reported)


class ClickHouseSink:
    """Stores results through a :mod:`streamwatch.adapters.clickhouse` ``Store``.

    Each write has a larger ``version`` than the last, so that a window's
    performance rows, written again as labels arrive, replace the earlier ones.
    A dead letter's source is its file as topic, partition 0, its line number as offset.
    """

    def __init__(self, store: Any, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.clock_ns = clock_ns
        self._version = 0

    @classmethod
    def connect(cls, settings: Settings) -> ClickHouseSink:
        """Connect to the settings' ClickHouse (embedded chdb by default) and bring its tables up to date."""
        clickhouse = _clickhouse()
        try:
            store = clickhouse.connect(settings.clickhouse)
            store.migrate(settings.clickhouse.raw_ttl_days)
        except clickhouse.StorageError as exc:
            raise StreamwatchError(f"ClickHouse: {exc}") from None
        return cls(store)

    def start(self, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> None:
        for profile in profiles.values():
            self.store.insert_profile(profile)

    def write(self, batch: ReplayBatch) -> None:
        now_ns = self.clock_ns()
        self._version = max(now_ns, self._version + 1)
        if batch.rows:
            self.store.insert_metrics(batch.rows, self._version)
        if batch.findings:
            self.store.insert_findings(batch.findings, self._version)
        if batch.dead_letters:
            clickhouse = _clickhouse()
            received_ms = now_ns // 1_000_000
            records = [
                clickhouse.DeadLetterRecord(clickhouse.Source(d.source, 0, d.line), d.reason, d.raw, received_ms)
                for d in batch.dead_letters
            ]
            self.store.insert_dead_letters(records)
        if batch.alerts:
            self.store.insert_alerts([alert_row(a, self._version) for a in batch.alerts])
        if batch.retrain:
            self.store.insert_retrain_events([retrain_row(e) for e in batch.retrain])


def _clickhouse() -> Any:
    # Imported on use: replaying into files needs no database driver.
    try:
        from streamwatch.adapters import clickhouse
    except ImportError as exc:
        raise StreamwatchError(f"ClickHouse storage is not available ({exc}); use --no-store") from None
    return clickhouse
