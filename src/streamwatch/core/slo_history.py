"""The SLO of one model version and variant over time: burn rates, budget and alerts per closed window.

Each closed window adds its good and total request counts. Trailing sums
over the burn-rate windows (5 minutes to 3 days) and over the SLO period give
the burn rates, the error budget used and left, and the Google SRE
workbook's multi-window, multi-burn-rate alerts (see ``core.slo``). Memory is
two integers per window over the SLO period: 43,200 windows of one minute
for a 30-day SLO.

An alert needs evidence: ``slo.min_bad_events`` bad requests in its short
window, and a history at least as long as that short window (from the start
of the oldest window held to the end of the report), so that a stream's first
minute cannot stand for a day or three.

>>> slo = SLO(target=0.999, latency_ms=300.0)
>>> history = SLOHistory(slo, window_ms=60_000)
>>> history.add(0, SLICounts.from_counts(slo, good=499, total=500))  # a first minute with one error
>>> rows, alerts = history.report(60_000)
>>> round(dict(rows)["burn_rate_3d"], 6), alerts, history.observed_minutes(60_000)
(2.0, [], 1.0)
"""

from __future__ import annotations

from collections import deque

import numpy as np

from streamwatch.core.slo import (
    BURN_RATE_WINDOWS_MINUTES,
    SLO,
    BurnRateAlert,
    SLICounts,
    budget_consumed,
    burn_rate,
    burn_rate_alerts,
)

__all__ = ["SLOHistory"]

_MINUTE_MS = 60_000


class SLOHistory:
    """Per-window SLI counts over the SLO period, and what they say at the end of each window."""

    def __init__(self, slo: SLO, window_ms: int) -> None:
        self.slo = slo
        self.window_ms = window_ms
        self._starts: deque[int] = deque()
        self._good: deque[int] = deque()
        self._total: deque[int] = deque()

    def add(self, start_ms: int, counts: SLICounts) -> None:
        """Record a closed window (windows arrive in event-time order) and forget what the period left behind."""
        self._starts.append(start_ms)
        self._good.append(counts.good)
        self._total.append(counts.total)
        horizon = start_ms + self.window_ms - self.slo.period_minutes * _MINUTE_MS
        while self._starts and self._starts[0] < horizon:
            self._starts.popleft()
            self._good.popleft()
            self._total.popleft()

    def _trailing(
        self, end_ms: int, minutes: int, starts: np.ndarray, good: np.ndarray, total: np.ndarray
    ) -> SLICounts:
        first = int(np.searchsorted(starts, end_ms - minutes * _MINUTE_MS, side="left"))
        return SLICounts.from_counts(self.slo, int(good[first:].sum()), int(total[first:].sum()))

    def observed_minutes(self, end_ms: int) -> float:
        """Minutes from the start of the oldest window held to ``end_ms`` (0 with none held)."""
        return max(0, end_ms - self._starts[0]) / _MINUTE_MS if self._starts else 0.0

    def report(self, end_ms: int) -> tuple[list[tuple[str, float]], list[BurnRateAlert]]:
        """``(metric, value)`` rows and the burn-rate alerts firing as of ``end_ms``.

        A condition fires only once the history spans its short window (see :meth:`observed_minutes`).
        """
        starts = np.fromiter(self._starts, np.int64, len(self._starts))
        good = np.fromiter(self._good, np.int64, len(self._good))
        total = np.fromiter(self._total, np.int64, len(self._total))
        trailing = {
            m: self._trailing(end_ms, m, starts, good, total)
            for m in BURN_RATE_WINDOWS_MINUTES
            if m * _MINUTE_MS >= self.window_ms
        }
        rows = [(f"burn_rate_{_label(m)}", burn_rate(c, self.slo)) for m, c in trailing.items() if c.total]
        period = self._trailing(end_ms, self.slo.period_minutes, starts, good, total)
        if period.total:
            consumed = budget_consumed(period, self.slo)
            rows += [("error_budget_consumed", consumed), ("error_budget_remaining", 1 - consumed)]
        return rows, burn_rate_alerts(trailing, self.slo, observed_minutes=self.observed_minutes(end_ms))


def _label(minutes: int) -> str:
    """The window's name in metric names.

    >>> [_label(m) for m in (5, 60, 1440, 4320)]
    ['5m', '1h', '1d', '3d']
    """
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
