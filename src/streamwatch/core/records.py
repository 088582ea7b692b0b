"""What the core emits: flat, stable records that storage and alerting consume.

A :class:`MetricRow` is one number about one window; a :class:`Finding` is a
judgement (a threshold crossed, a detector fired) with its evidence. Both stay
flat on purpose: later stages store them as table rows and export them as JSON
lines (:meth:`MetricRow.export`), and changing a field breaks those consumers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from streamwatch.times import rfc3339

__all__ = ["PERFORMANCE_VIEW", "Finding", "FindingKind", "MetricRow", "Segment", "WindowKey"]

#: The ``window`` of the rows of the performance view: performance and fairness over the predictions of a
#: trailing span (``windows.performance_view_ms``), which the default performance and fairness rules judge.
PERFORMANCE_VIEW = "performance"

#: A slice, as sorted (segment name, value) pairs; empty for the whole population.
Segment = tuple[tuple[str, str], ...]
FindingKind = Literal["drift", "data_quality", "performance", "fairness", "slo", "divergence", "change"]


def _finite(value: float | None) -> float | None:
    # JSON has no NaN: an undefined figure is exported as null.
    return None if value is None or not math.isfinite(value) else value


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric of one window (or rolling view) of one model version and variant."""

    model: str
    model_version: str
    variant: str
    window_start_ms: int
    window_end_ms: int
    metric: str
    value: float
    feature: str | None = None
    segment: Segment = ()
    threshold: float | None = None
    window: str = "tumbling"
    reference: str | None = None
    lower: float | None = None
    upper: float | None = None

    def export(self) -> dict[str, Any]:
        """The documented JSON-lines form: RFC 3339 times, the segment as an object, null for NaN."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "variant": self.variant,
            "window_start": rfc3339(self.window_start_ms),
            "window_end": rfc3339(self.window_end_ms),
            "window": self.window,
            "metric": self.metric,
            "feature": self.feature,
            "segment": dict(self.segment) if self.segment else None,
            "value": _finite(self.value),
            "threshold": _finite(self.threshold),
            "lower": _finite(self.lower),
            "upper": _finite(self.upper),
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """A judgement about a window: what crossed which threshold, with the evidence."""

    kind: FindingKind
    severity_hint: Literal["critical", "warning", "info"]
    model: str
    model_version: str
    variant: str
    window_start_ms: int
    window_end_ms: int
    metric: str
    value: float
    threshold: float | None
    feature: str | None = None
    segment: Segment = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class WindowKey:
    """Which model version and variant, over which event-time interval, a record is about."""

    model: str
    model_version: str
    variant: str
    start_ms: int
    end_ms: int

    def finding(
        self,
        kind: FindingKind,
        severity_hint: Literal["critical", "warning", "info"],
        metric: str,
        value: float,
        threshold: float | None,
        **fields: Any,
    ) -> Finding:
        """A finding about this window; ``fields`` are Finding's optional ones (feature, evidence, ...)."""
        return Finding(
            kind,
            severity_hint,
            self.model,
            self.model_version,
            self.variant,
            self.start_ms,
            self.end_ms,
            metric,
            value,
            threshold,
            **fields,
        )

    def row(self, metric: str, value: float, **fields: Any) -> MetricRow:
        """A metric row of this window; ``fields`` are MetricRow's optional ones (feature, threshold, ...)."""
        return MetricRow(
            self.model, self.model_version, self.variant, self.start_ms, self.end_ms, metric, value, **fields
        )
