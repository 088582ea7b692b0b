"""The stable export format: what a replay (or any run) emits, as JSON Lines files.

An :class:`ExportWriter` writes five files into one directory, one JSON object
per line, appended batch by batch so nothing is held in memory. All five exist
once the writer is open, even if they stay empty; opening the writer again
replaces them.

``metrics.jsonl``
    One :class:`~streamwatch.core.records.MetricRow` per line, exactly as
    :meth:`~streamwatch.core.records.MetricRow.export` gives it: ``model``,
    ``model_version``, ``variant``, ``window_start``, ``window_end`` (RFC 3339
    UTC), ``window`` (``tumbling`` or a rolling span such as ``1h``),
    ``metric``, ``feature``, ``segment`` (object or null), ``value``,
    ``threshold``, ``lower``, ``upper``, ``reference``. A window's performance
    rows are written again whenever late labels change them: the last line of
    a window, metric and segment is the current one.
``findings.jsonl``
    One :class:`~streamwatch.core.records.Finding` per line: ``kind``,
    ``severity_hint``, ``model``, ``model_version``, ``variant``,
    ``window_start``, ``window_end``, ``metric``, ``feature``, ``segment``
    (object or null), ``value``, ``threshold``, ``evidence`` (object),
    ``reference``.
``deadletters.jsonl``
    One rejected input line per line: ``source`` (the file), ``line``
    (1-based), ``reason``, and ``raw``, the line as it was; a line that is not
    valid UTF-8 has ``raw`` null and its bytes in ``raw_base64`` instead.
``alerts.jsonl``, ``retrain.jsonl``
    Alert transitions and retrain requests, one contract event per line
    (``schemas/alert.schema.json``, ``schemas/retrain.schema.json``): every
    pending, firing and resolved transition the rules made, with its ``kind``.

Numbers that are not finite (NaN, infinity) are written as null, since JSON
has none.

>>> import tempfile
>>> from streamwatch.core.records import MetricRow
>>> with tempfile.TemporaryDirectory() as directory:
...     with ExportWriter(directory) as writer:
...         rows = writer.write_metrics([MetricRow("credit", "3", "production", 0, 60_000, "psi", 0.01)])
...         dead = writer.write_dead_letters([LineDeadLetter("events.jsonl", 7, "not JSON", b"{oops")])
...     print(rows, dead, sorted(p.name for p in Path(directory).iterdir()))
...     print((Path(directory) / "deadletters.jsonl").read_text(), end="")
1 1 ['alerts.jsonl', 'deadletters.jsonl', 'findings.jsonl', 'metrics.jsonl', 'retrain.jsonl']
{"source":"events.jsonl","line":7,"reason":"not JSON","raw":"{oops"}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import orjson

from streamwatch.core.records import Finding, MetricRow
from streamwatch.replay.batch import LineDeadLetter, ReplayBatch
from streamwatch.times import rfc3339

if TYPE_CHECKING:
    from streamwatch.profiles.model import ReferenceProfile

__all__ = ["EXPORT_FILES", "ExportSink", "ExportWriter", "export_finding"]

#: The files an export directory holds, by kind.
EXPORT_FILES = {
    "metrics": "metrics.jsonl",
    "findings": "findings.jsonl",
    "alerts": "alerts.jsonl",
    "retrain": "retrain.jsonl",
    "deadletters": "deadletters.jsonl",
}
# Evidence may hold numpy scalars or arrays; NaN becomes null either way.
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def export_finding(finding: Finding) -> dict[str, Any]:
    """A finding in the documented JSON-lines form.

    >>> from streamwatch.core.records import Finding
    >>> export_finding(Finding("drift", "warning", "credit", "3", "production", 0, 60_000, "psi", 0.3, 0.2,
    ...                        feature="age", segment=(("gender", "F"),)))["segment"]
    {'gender': 'F'}
    """
    return {
        "kind": finding.kind,
        "severity_hint": finding.severity_hint,
        "model": finding.model,
        "model_version": finding.model_version,
        "variant": finding.variant,
        "window_start": rfc3339(finding.window_start_ms),
        "window_end": rfc3339(finding.window_end_ms),
        "metric": finding.metric,
        "feature": finding.feature,
        "segment": dict(finding.segment) if finding.segment else None,
        "value": _finite(finding.value),
        "threshold": _finite(finding.threshold),
        "evidence": finding.evidence,
        "reference": finding.reference,
    }


def _default(value: Any) -> Any:
    # Evidence is free-form: sets become sorted lists, anything else unknown its text.
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


class ExportWriter:
    """Append records to the five export files of ``directory`` (created if missing).

    Use it as a context manager; each ``write_*`` method returns how many lines it wrote.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._files: dict[str, IO[bytes]] = {}

    def __enter__(self) -> ExportWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            for kind, name in EXPORT_FILES.items():
                self._files[kind] = (self.directory / name).open("wb")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every file; what was written stays."""
        files, self._files = self._files, {}
        for file in files.values():
            file.close()

    def _write(self, kind: str, objects: Iterable[Mapping[str, Any]]) -> int:
        file = self._files.get(kind)
        if file is None:
            raise RuntimeError("ExportWriter is not open: use it in a with statement")
        # One write per batch: a single bytes join is far cheaper than a write per line.
        lines = [orjson.dumps(o, default=_default, option=_OPTIONS) for o in objects]
        file.write(b"".join(lines))
        return len(lines)

    def write_metrics(self, rows: Iterable[MetricRow]) -> int:
        """Append metric rows, each as :meth:`MetricRow.export` gives it."""
        return self._write("metrics", (row.export() for row in rows))

    def write_findings(self, findings: Iterable[Finding]) -> int:
        """Append findings, each as :func:`export_finding` gives it."""
        return self._write("findings", (export_finding(f) for f in findings))

    def write_dead_letters(self, dead_letters: Iterable[LineDeadLetter]) -> int:
        """Append rejected input lines, each as :meth:`LineDeadLetter.export` gives it."""
        return self._write("deadletters", (d.export() for d in dead_letters))

    def write_alerts(self, alerts: Iterable[Mapping[str, Any]]) -> int:
        """Append alert events (each a contract AlertEvent as JSON): every transition the rules made."""
        return self._write("alerts", alerts)

    def write_retrain(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Append retrain events as they are."""
        return self._write("retrain", events)


class ExportSink(ExportWriter):
    """An :class:`ExportWriter` as a replay's sink (see :class:`streamwatch.replay.run.Sink`)."""

    def __enter__(self) -> ExportSink:
        super().__enter__()
        return self

    def start(self, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> None:
        """Profiles are not part of the export."""

    def write(self, batch: ReplayBatch) -> None:
        """Append a batch's metric rows, findings and dead letters."""
        self.write_metrics(batch.rows)
        self.write_findings(batch.findings)
        self.write_dead_letters(batch.dead_letters)
        self.write_alerts(a.model_dump(mode="json") for a in batch.alerts)
        self.write_retrain(e.model_dump(mode="json") for e in batch.retrain)
