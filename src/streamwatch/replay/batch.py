"""What a replay emits per pipeline call, shared by the replay and its export.

>>> ReplayBatch(rows=[], findings=[], dead_letters=[LineDeadLetter("e.jsonl", 1, "bad", b"{")]).dead_letters[0].line
1
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from streamwatch.contract.events import AlertEvent, RetrainEvent
from streamwatch.core.records import Finding, MetricRow

__all__ = ["LineDeadLetter", "ReplayBatch"]


@dataclass(frozen=True, slots=True)
class LineDeadLetter:
    """An input line the contract refused: where it came from, why, and its bytes (newline stripped)."""

    source: str
    line: int
    reason: str
    raw: bytes

    def export(self) -> dict[str, Any]:
        """The documented JSON-lines form.

        >>> LineDeadLetter("e.jsonl", 2, "bad", b"\\xff{").export()
        {'source': 'e.jsonl', 'line': 2, 'reason': 'bad', 'raw': None, 'raw_base64': '/3s='}
        """
        out: dict[str, Any] = {"source": self.source, "line": self.line, "reason": self.reason}
        try:
            out["raw"] = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            # JSON strings are Unicode: bytes that are not UTF-8 travel as base64 instead.
            out["raw"] = None
            out["raw_base64"] = base64.b64encode(self.raw).decode("ascii")
        return out


@dataclass
class ReplayBatch:
    """What one pipeline call emitted, dead letters traced back to their lines."""

    rows: list[MetricRow]
    findings: list[Finding]
    dead_letters: list[LineDeadLetter]
    alerts: list[AlertEvent] = field(default_factory=list)
    retrain: list[RetrainEvent] = field(default_factory=list)
