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

Which rows and findings a rule observes is the business of
:mod:`streamwatch.alerts.observations`; this module keeps each series' state. Observations are judged in
window order per series. A window reported again (a window's performance is
re-reported as late labels arrive) replaces its earlier verdict instead of
counting twice. A rule judges the tumbling windows, or with ``view: performance`` the
performance view (the predictions of a trailing span, one view per window's end:
rules that need many labelled samples); the other rolling views overlap and
would count one breach many times.

>>> from streamwatch.config.models import RuleConfig
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from streamwatch.alerts.observations import Observation, SeriesId, observe
from streamwatch.config.rules import RuleConfig
from streamwatch.core.records import PERFORMANCE_VIEW, Finding, MetricRow, Segment

__all__ = ["RuleEngine", "RuleSeries", "Transition", "fingerprint"]

Status = Literal["pending", "firing", "resolved"]
#: Windows whose example request ids are remembered, for alerts judged when their labels arrive.
_EXAMPLE_WINDOWS = 10_000
_MAX_EXAMPLES = 5


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
    evidence: dict[str, Any] = field(default_factory=dict)
    example_request_ids: tuple[str, ...] = ()


@dataclass
class RuleSeries:
    streak: int = 0  # consecutive breaching windows up to the last one judged
    streak_before: int = 0  # the same, before the last window (to judge it again)
    last_start: int | None = None  # where the last window judged stands: its start, or a view's end (see _position)
    status: Status | None = None  # None: inactive
    starts_at: int = 0
    id: SeriesId | None = None
    metric: str = ""  # the last metric observed (a window with no finding observes none)


class RuleEngine:
    """Evaluates ``rules`` on reports and keeps each series' state (see :meth:`state`).

    Parameters
    ----------
    rules
        The rules, in the order their transitions are listed within a window.
    window_ms
        The tumbling window size, to turn a rule's ``for`` duration into windows.
    baselines
        Per model, the performance measured on validation data, for rules with ``drop``.
    """

    def __init__(
        self,
        rules: Sequence[RuleConfig],
        window_ms: int = 60_000,
        baselines: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.rules = list(rules)
        self.window_ms = window_ms
        self.baselines = dict(baselines or {})
        self._series: dict[str, RuleSeries] = {}
        self._examples: dict[tuple[str, str, str, int], tuple[str, ...]] = {}

    def evaluate(
        self,
        rows: Sequence[MetricRow],
        findings: Sequence[Finding] = (),
        examples: Mapping[tuple[str, str, str, int], Sequence[str]] | None = None,
    ) -> list[Transition]:
        """The transitions one report causes, in window order.

        ``examples`` maps ``(model, version, variant, window start)`` to request
        ids seen in that window; alerts carry a few of them as evidence.
        """
        self._remember(findings, examples or {})
        views = {view: [r for r in rows if r.window == view] for view in ("tumbling", PERFORMANCE_VIEW)}
        observed: list[tuple[RuleConfig, Observation]] = []
        for rule in self.rules:
            active = [s.id for s in self._series.values() if s.id is not None and s.id.rule == rule.name and s.status]
            judged = views[rule.view]
            observed += [(rule, o) for o in observe(rule, judged, findings, active, self.baselines)]
        observed.sort(key=lambda pair: _position(*pair))  # stable: rules keep their order within a window
        return [t for rule, o in observed if (t := self._judge(rule, o)) is not None]

    def _remember(self, findings: Sequence[Finding], examples: Mapping[Any, Sequence[str]]) -> None:
        for key, ids in examples.items():
            self._examples[key] = tuple(ids[:_MAX_EXAMPLES])
        for f in findings:
            found = f.evidence.get("example_request_ids")
            if found:
                key = (f.model, f.model_version, f.variant, f.window_start_ms)
                self._examples.setdefault(key, tuple(found[:_MAX_EXAMPLES]))
        if len(self._examples) > _EXAMPLE_WINDOWS:
            # The oldest windows go first: late labels reach recent windows.
            for key in sorted(self._examples, key=lambda k: k[3])[: len(self._examples) - _EXAMPLE_WINDOWS]:
                del self._examples[key]

    def _judge(self, rule: RuleConfig, o: Observation) -> Transition | None:
        sid = o.series
        key = fingerprint(sid.rule, sid.model, sid.model_version, sid.variant, sid.feature, sid.segment)
        series = self._series.get(key)
        if series is None:
            if not o.breach:
                return None  # nothing to remember about a series that never breached
            series = self._series[key] = RuleSeries(id=sid)
        position = _position(rule, o)
        if series.last_start is not None and position < series.last_start:
            return None  # an older window, judged already
        if position == series.last_start:
            series.streak = series.streak_before  # the last window again: judge it anew
        else:
            series.streak_before, series.last_start = series.streak, position
        series.streak = series.streak + 1 if o.breach else 0
        series.metric = o.metric or series.metric
        previous = series.status
        if o.breach:
            if previous in (None, "resolved"):
                series.starts_at = o.start_ms
            needed = rule.windows_needed(self.window_ms)
            series.status = "firing" if series.streak >= needed or previous == "firing" else "pending"
        else:
            series.status = "resolved" if previous == "firing" else None
        if series.status is None and previous is None:
            del self._series[key]  # a pending series cleared: forget it, as Prometheus does
            return None
        if series.status == previous or series.status is None:
            return None
        ends = o.end_ms if series.status == "resolved" else None
        examples = o.evidence.get("example_request_ids") or self._examples.get(
            (sid.model, sid.model_version, sid.variant, o.start_ms), ()
        )
        evidence = {k: v for k, v in o.evidence.items() if k != "example_request_ids"}
        metric = series.metric or rule.when.finding or rule.name
        return Transition(
            key,
            rule.name,
            rule.kind,
            rule.severity,
            series.status,
            sid.model,
            sid.model_version,
            sid.variant,
            sid.feature,
            sid.segment,
            metric,
            o.value,
            o.threshold,
            o.start_ms,
            o.end_ms,
            series.starts_at,
            ends,
            o.reference,
            dict(rule.labels),
            rule.runbook_url,
            rule.when.comparison,
            evidence,
            tuple(examples[:_MAX_EXAMPLES]),
        )

    def retire(self, before_ms: int) -> int:
        """Forget series not firing whose last window started before ``before_ms``; return how many.

        A firing series stays until it resolves: forgetting it would leave its alert firing in
        every receiver with nothing left to resolve it.
        """
        gone = [
            key
            for key, series in self._series.items()
            if series.status != "firing" and series.last_start is not None and series.last_start < before_ms
        ]
        for key in gone:
            del self._series[key]
        return len(gone)

    def state(self) -> dict[str, Any]:
        """Every series' state, for a checkpoint."""
        return {"series": self._series, "examples": self._examples}

    def restore(self, state: dict[str, Any]) -> None:
        self._series = state["series"]
        self._examples = state.get("examples", {})


def _position(rule: RuleConfig, observation: Observation) -> int:
    """Where an observation stands in its series' order: a window's start, or a performance view's end.

    A view's span changes from one report to the next (see ``Reporter._performance_view``), so its start
    may move back while its end moves on: ordered by start, a newer view would be taken for one judged.
    """
    return observation.end_ms if rule.view == PERFORMANCE_VIEW else observation.start_ms
