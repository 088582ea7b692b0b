"""What one report says about each rule's series: one observation per series and window.

A rule's condition (see :mod:`streamwatch.config.rules`) is applied to the
tumbling metric rows and the findings of a report. Each matching row or
finding is an :class:`Observation`: a series (rule, model, version, variant,
feature, segment) breached or did not in one window.

A series that is active (pending or firing) but has no row or finding in a
window that was reported is observed as *not* breaching, as Prometheus
resolves an alert whose series vanished: a drift finding that stops appearing,
or a slice that no longer has enough samples to be reported.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamwatch.config.rules import RuleConfig
from streamwatch.core.records import PERFORMANCE_VIEW, Finding, MetricRow, Segment

__all__ = ["Observation", "SeriesId", "observe"]

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
#: Slice rates where lower is better; the gap of a slice is measured from the best slice.
_LOWER_IS_BETTER = {"fpr", "fnr", "error_rate", "log_loss"}
#: Metric rows that say a window (or a window's performance) was reported.
_PERFORMANCE_MARK = "labelled"
_WINDOW_MARKS = ("requests", "drifted_share")


@dataclass(frozen=True, slots=True)
class SeriesId:
    rule: str
    model: str
    model_version: str
    variant: str
    feature: str | None
    segment: Segment


@dataclass(frozen=True, slots=True)
class Observation:
    series: SeriesId
    start_ms: int
    end_ms: int
    breach: bool
    metric: str
    value: float
    threshold: float
    reference: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def observe(
    rule: RuleConfig,
    rows: Sequence[MetricRow],
    findings: Sequence[Finding],
    active: Iterable[SeriesId],
    baselines: Mapping[str, Mapping[str, float]],
) -> list[Observation]:
    """Every observation of ``rule`` in one report; ``active`` are its pending or firing series."""
    when = rule.when
    if when.finding is not None:
        seen = [_of_finding(rule, f) for f in findings if _finding_matches(rule, f)]
        marks = (_PERFORMANCE_MARK,) if when.finding in ("fairness", "performance") else _WINDOW_MARKS
        reported = {_window(r) for r in rows if r.metric in marks}
        return seen + _absent(rule, seen, active, reported, math.nan)
    candidates = [r for r in rows if r.metric == when.metric and _row_matches(rule, r)]
    if when.parity:
        seen = _parity(rule, candidates)
    else:
        seen = [o for r in candidates if (o := _of_row(rule, r, baselines)) is not None]
    reported = {_window(r) for r in rows if r.metric == when.metric}
    return seen + _absent(rule, seen, active, reported, when.threshold)


def _window(row: MetricRow) -> tuple[str, str, str, int, int]:
    return row.model, row.model_version, row.variant, row.window_start_ms, row.window_end_ms


def _absent(
    rule: RuleConfig,
    seen: list[Observation],
    active: Iterable[SeriesId],
    reported: set[tuple[str, str, str, int, int]],
    threshold: float | None,
) -> list[Observation]:
    # A view's series are placed by the view's end: its span (so its start) may differ between series of
    # one report (each slice's shortest span that shows a change), and that is not a window the series missed.
    by_end = rule.view == PERFORMANCE_VIEW
    observed = {(o.series, o.end_ms if by_end else o.start_ms) for o in seen}
    out = []
    for series in active:
        for model, version, variant, start, end in reported:
            same = (series.model, series.model_version, series.variant) == (model, version, variant)
            if same and (series, end if by_end else start) not in observed:
                limit = math.nan if threshold is None else threshold
                out.append(Observation(series, start, end, False, rule.when.metric or "", math.nan, limit))
    return out


def _selected(rule: RuleConfig, model: str, version: str, variant: str, feature: str | None, segment: Segment) -> bool:
    return (
        rule.model in (None, model)
        and rule.model_version in (None, version)
        and rule.variant in (None, variant)
        and rule.feature in (None, feature)
        and (rule.segment is None or dict(segment) == rule.segment)
    )


def _row_matches(rule: RuleConfig, row: MetricRow) -> bool:
    return _selected(rule, row.model, row.model_version, row.variant, row.feature, row.segment)


def _finding_matches(rule: RuleConfig, finding: Finding) -> bool:
    when = rule.when
    return (
        finding.kind == when.finding
        and when.metric in (None, finding.metric)
        and when.finding_severity in (None, finding.severity_hint)
        and _selected(rule, finding.model, finding.model_version, finding.variant, finding.feature, finding.segment)
    )


def _series(rule: RuleConfig, of: MetricRow | Finding) -> SeriesId:
    return SeriesId(rule.name, of.model, of.model_version, of.variant, of.feature, of.segment)


def _of_finding(rule: RuleConfig, finding: Finding) -> Observation:
    threshold = math.nan if finding.threshold is None else finding.threshold
    return Observation(
        _series(rule, finding),
        finding.window_start_ms,
        finding.window_end_ms,
        True,
        finding.metric,
        finding.value,
        threshold,
        finding.reference,
        dict(finding.evidence),
    )


def _of_row(rule: RuleConfig, row: MetricRow, baselines: Mapping[str, Mapping[str, float]]) -> Observation | None:
    when = rule.when
    threshold: float | None
    if when.drop is not None:
        baseline = baselines.get(row.model, {}).get(row.metric)
        if baseline is None:
            # Rows that carry their reference's figure (estimated_* rows: the reference's own estimate)
            # are measured from it.
            baseline = row.threshold
        if baseline is None:
            return None  # no baseline configured for this model: nothing to drop from
        threshold = baseline - when.drop
        evidence: dict[str, Any] = {"baseline": baseline, "drop": when.drop}
    else:
        threshold = when.threshold if when.threshold is not None else row.threshold
        evidence = {}
        if threshold is None:
            return None
    breach = not math.isnan(row.value) and OPS[when.comparison](row.value, threshold)
    if breach and when.drop is not None and row.upper is not None:
        # A drop counts when significant: even the top of the row's interval is under the baseline minus
        # the drop (a view of 300 labelled requests reads an accuracy 0.05 low in 2% of views by chance).
        breach = row.upper < threshold
        evidence["upper"] = row.upper
    return Observation(
        _series(rule, row),
        row.window_start_ms,
        row.window_end_ms,
        breach,
        row.metric,
        row.value,
        threshold,
        row.reference,
        evidence,
    )


def _apart(row: MetricRow, best: MetricRow, lower_is_better: bool) -> bool:
    """Whether ``row``'s interval lies wholly on the worse side of ``best``'s (True without intervals)."""
    if row.lower is None or row.upper is None or best.lower is None or best.upper is None:
        return True
    if lower_is_better:
        return row.lower > best.upper
    return row.upper < best.lower


def _parity(rule: RuleConfig, rows: list[MetricRow]) -> list[Observation]:
    """Each slice's gap from the best slice of its segment, in the same window."""
    groups: dict[Any, list[MetricRow]] = {}
    for row in rows:
        if row.segment and all(value != "*" for _, value in row.segment) and not math.isnan(row.value):
            names = tuple(name for name, _ in row.segment)
            # (per feature too: a multiclass model's per-class rates carry the class there)
            groups.setdefault((*_window(row), names, row.feature), []).append(row)
    out = []
    threshold = rule.when.threshold if rule.when.threshold is not None else math.inf
    for members in groups.values():
        if len(members) < 2:
            continue  # one slice has nothing to be compared with
        lower = members[0].metric in _LOWER_IS_BETTER
        best = min(members, key=lambda r: r.value) if lower else max(members, key=lambda r: r.value)
        for row in members:
            gap = row.value - best.value if lower else best.value - row.value
            evidence = {row.metric: row.value, "best_slice": dict(best.segment), "best_value": best.value}
            # A gap counts only when the two slices' confidence intervals do not overlap: a minute of a
            # few hundred requests differs by chance, and a fairness alert on noise is worse than none.
            breach = OPS[rule.when.comparison](gap, threshold) and _apart(row, best, lower)
            out.append(
                Observation(
                    _series(rule, row),
                    row.window_start_ms,
                    row.window_end_ms,
                    breach,
                    f"{row.metric}_gap",
                    gap,
                    threshold,
                    row.reference,
                    evidence,
                )
            )
    return out
