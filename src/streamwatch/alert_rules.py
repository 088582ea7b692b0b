"""Alert rules over metric rows: which series breach, for how many windows, and when they recover.

Pure, like the core: a :class:`RuleEngine` is fed the metric rows a reporter
emits and returns lifecycle :class:`Transition` s, in the discipline of
Prometheus and Alertmanager:

- a *series* is one rule applied to one model, version, variant, feature and
  segment; its identity is a stable ``fingerprint``;
- a window whose value meets the rule's condition makes the series ``pending``;
  ``for_windows`` consecutive such windows make it ``firing``;
- a window that does not meet it resolves a firing series (``resolved``) and
  silently clears a pending one.

Rows are judged in window order per series. A window reported again (a
window's performance is re-reported as late labels arrive) replaces its
earlier verdict instead of counting twice. Only tumbling windows are judged:
rolling views overlap and would count one breach many times.

>>> from streamwatch.config import RuleConfig
>>> from streamwatch.core.records import MetricRow
>>> rule = RuleConfig(name="psi", kind="drift", when={"metric": "psi", "op": ">", "threshold": 0.2}, for_windows=2)
>>> engine = RuleEngine([rule])
>>> def psi(minute, value):
...     return MetricRow("credit", "3", "production", minute * 60_000, (minute + 1) * 60_000, "psi", value, "income")
>>> [t.status for t in engine.evaluate([psi(0, 0.3)])]
['pending']
>>> [t.status for t in engine.evaluate([psi(1, 0.4)])]
['firing']
>>> [(t.status, t.starts_at_ms, t.ends_at_ms) for t in engine.evaluate([psi(2, 0.1)])]
[('resolved', 0, 180000)]
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from .config import RuleConfig
from .core.records import MetricRow, Segment

__all__ = ["RuleEngine", "Transition", "fingerprint"]

Status = Literal["pending", "firing", "resolved"]
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def fingerprint(rule: str, model: str, version: str, variant: str, feature: str | None, segment: Segment) -> str:
    """A stable id of one series: the same on every worker and after every restart.

    >>> fingerprint("psi", "credit", "3", "production", "income", ())
    'cea38d990326e042'
    """
    identity = orjson.dumps([rule, model, version, variant, feature, [list(p) for p in segment]])
    return hashlib.sha256(identity).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Transition:
    """A series changed state: what an alert row and a notification are made from."""

    fingerprint: str
    rule: str
    kind: str
    severity: str
    status: Status
    model: str
    model_version: str
    variant: str
    feature: str | None
    segment: Segment
    metric: str
    value: float
    threshold: float
    window_start_ms: int
    window_end_ms: int
    starts_at_ms: int
    ends_at_ms: int | None
    reference: str | None
    labels: dict[str, str] = field(default_factory=dict)
    runbook_url: str | None = None
    op: str = ">"


@dataclass
class _Series:
    streak: int = 0  # consecutive breaching windows up to the last one judged
    streak_before: int = 0  # the same, before the last window (to judge it again)
    last_start: int | None = None
    status: Status | None = None  # None: inactive
    starts_at: int = 0


class RuleEngine:
    """Evaluates ``rules`` on metric rows and keeps each series' state (see :meth:`state`)."""

    def __init__(self, rules: Sequence[RuleConfig]) -> None:
        self.rules = list(rules)
        self._series: dict[str, _Series] = {}

    def evaluate(self, rows: Sequence[MetricRow]) -> list[Transition]:
        """The transitions these rows cause, in window order."""
        out: list[Transition] = []
        ordered = sorted((r for r in rows if r.window == "tumbling"), key=lambda r: r.window_start_ms)
        for row in ordered:
            for rule in self.rules:
                if _matches(rule, row):
                    transition = self._judge(rule, row)
                    if transition is not None:
                        out.append(transition)
        return out

    def _judge(self, rule: RuleConfig, row: MetricRow) -> Transition | None:
        key = fingerprint(rule.name, row.model, row.model_version, row.variant, row.feature, row.segment)
        series = self._series.setdefault(key, _Series())
        if series.last_start is not None and row.window_start_ms < series.last_start:
            return None  # an older window, judged already
        if row.window_start_ms == series.last_start:
            series.streak = series.streak_before  # the last window again: judge it anew
        else:
            series.streak_before, series.last_start = series.streak, row.window_start_ms
        breach = not math.isnan(row.value) and _OPS[rule.when.op](row.value, rule.when.threshold)
        series.streak = series.streak + 1 if breach else 0
        previous = series.status
        if breach:
            if previous in (None, "resolved"):
                series.starts_at = row.window_start_ms
            series.status = "firing" if series.streak >= rule.for_windows or previous == "firing" else "pending"
        else:
            series.status = "resolved" if previous == "firing" else None
        if series.status == previous or series.status is None:
            return None
        ends = row.window_end_ms if series.status == "resolved" else None
        return Transition(
            key, rule.name, rule.kind, rule.severity, series.status, row.model, row.model_version, row.variant,
            row.feature, row.segment, row.metric, row.value, rule.when.threshold, row.window_start_ms,
            row.window_end_ms, series.starts_at, ends, row.reference, dict(rule.labels), rule.runbook_url,
            rule.when.op,
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Every series' state, for a checkpoint."""
        return {"series": self._series}

    def restore(self, state: dict[str, Any]) -> None:
        self._series = state["series"]


def _matches(rule: RuleConfig, row: MetricRow) -> bool:
    return (
        row.metric == rule.when.metric
        and rule.model in (None, row.model)
        and rule.model_version in (None, row.model_version)
        and rule.variant in (None, row.variant)
        and rule.feature in (None, row.feature)
        and (rule.segment is None or dict(row.segment) == rule.segment)
    )
