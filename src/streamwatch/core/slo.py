"""Error budgets and multi-window, multi-burn-rate alerts, as in the Google SRE workbook.

Everything works on counts of good and total requests; the caller keeps those
counts over each trailing window (merging per-minute partials, say), since
the core reads no clock. A request is *good* when its status is ok and, if
the SLO sets a latency threshold, its latency is at most that threshold.

The *burn rate* over a window is its error rate divided by the error budget
``1 - target``: at burn rate 1 the budget lasts exactly the SLO period. An
alert fires when both a long window and a short one burn at least a factor
fast: the long window makes it significant, the short one makes it stop soon
after the problem does.

>>> slo = SLO(target=0.999, latency_ms=300.0)
>>> counts = SLICounts(slo)
>>> counts.update(np.arange(1000) >= 20, np.full(1000, 120.0))  # 20 errors in 1000 requests
>>> counts.good, counts.total, counts.error_rate, round(burn_rate(counts, slo), 6)
(980, 1000, 0.02, 20.0)
>>> [(a.severity, a.factor) for a in burn_rate_alerts({60: counts, 5: counts}, slo)]
[('page', 14.4)]

A burn rate is evidence only when enough happened behind it (the workbook's
"low-traffic services" and "new deployments"), so a condition also needs:

* :data:`MIN_BURN_EVENTS` requests in its long window: one error in a model's
  only request burns the budget 1,000 times over, and is not worth a page;
* ``slo.min_bad_events`` bad requests (5 by default) in its short window, and
  so in its long one: one slow request of a canary serving 10 requests a
  minute burns a 0.999 budget 100 times over for that minute;
* when the caller says how long it has been watching (``observed_minutes``),
  at least the condition's short window of it: a 3-day window holding the
  first minute of a stream says nothing about three days. The 1-hour page can
  fire after 5 minutes, the 1-day ticket after 2 hours, the 3-day one after 6 hours.

>>> one = SLICounts(slo)
>>> one.update(np.array([False]), np.array([120.0]))
>>> round(burn_rate(one, slo)), burn_rate_alerts({60: one, 5: one}, slo)
(1000, [])
>>> few = SLICounts.from_counts(slo, good=996, total=1000)  # 4 bad: a burn rate of 4, too few to tell
>>> round(burn_rate(few, slo)), burn_rate_alerts({w: few for w in BURN_RATE_WINDOWS_MINUTES}, slo)
(4, [])
>>> first_minute = SLICounts.from_counts(slo, good=490, total=500)  # 10 bad, but a minute's worth
>>> windows = {w: first_minute for w in BURN_RATE_WINDOWS_MINUTES}
>>> [a.factor for a in burn_rate_alerts(windows, slo, observed_minutes=1)]
[]
>>> [a.factor for a in burn_rate_alerts(windows, slo, observed_minutes=5)]  # a new deployment burning at 20x
[14.4]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import poisson

__all__ = [
    "BURN_RATE_ALERTS",
    "BURN_RATE_WINDOWS_MINUTES",
    "BURN_SIGNIFICANCE",
    "MIN_BURN_EVENTS",
    "SLO",
    "BurnRateAlert",
    "BurnRateCondition",
    "SLICounts",
    "Severity",
    "budget_consumed",
    "budget_remaining",
    "burn_rate",
    "burn_rate_alerts",
]

#: Tolerance when comparing a burn rate with a factor: targets such as 0.999
#: are not exact in binary, so a burn rate of exactly 14.4 computes as
#: 14.399999999999986 and would otherwise not fire. Integer counts keep real
#: burn rates far further apart than this.
_RELATIVE_TOLERANCE = 1e-9

Severity = Literal["page", "ticket"]


@dataclass(frozen=True, slots=True)
class SLO:
    """``target`` of requests succeed (within ``latency_ms``, if set) over ``period_minutes``.

    Parameters
    ----------
    target
        Share of good requests promised, strictly between 0 and 1 (e.g. 0.999).
    latency_ms
        A request slower than this is bad even when its status is ok; None
        means only the status counts.
    period_minutes
        The SLO period, 30 days by default, which the default alert windows assume.
    min_bad_events
        Bad requests a burn-rate condition's short window (and so its long one)
        must hold before the condition can fire; 5 by default. A count of bad
        requests is what makes a burn rate evidence: one slow request of a
        canary serving 10 requests a minute is a burn rate of 100 at a 0.999
        target. At least 1.
    """

    target: float
    latency_ms: float | None = None
    period_minutes: int = 43_200
    min_bad_events: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.target < 1:
            raise ValueError("target must lie strictly between 0 and 1")
        if self.latency_ms is not None and not 0 < self.latency_ms < math.inf:
            raise ValueError("latency_ms must be positive and finite, or None")
        if self.period_minutes <= 0:
            raise ValueError("period_minutes must be positive")
        if self.min_bad_events < 1:
            raise ValueError("min_bad_events must be at least 1")

    @property
    def error_budget(self) -> float:
        """Share of requests allowed to be bad: ``1 - target``."""
        return 1 - self.target


class SLICounts:
    """Mergeable counts of good and total requests under one SLO.

    Parameters
    ----------
    slo
        Decides which requests are good (its ``latency_ms``); partials merge
        only with partials for the same SLO.

    Examples
    --------
    >>> slo = SLO(target=0.99, latency_ms=100.0)
    >>> a, b = SLICounts(slo), SLICounts(slo)
    >>> a.update(np.array([True, True, False]), np.array([20.0, 150.0, 30.0]))  # slow, then an error
    >>> b.update(np.array([True]), np.array([100.0]))  # exactly at the threshold is good
    >>> a.merge(b)
    >>> a.good, a.bad, a.total, a.error_rate
    (2, 2, 4, 0.5)
    """

    def __init__(self, slo: SLO) -> None:
        self.slo = slo
        self._good = 0
        self._total = 0

    @classmethod
    def from_counts(cls, slo: SLO, good: int, total: int) -> SLICounts:
        """Counts summed elsewhere (over a trailing window, or read from storage)."""
        if not 0 <= good <= total:
            raise ValueError("need 0 <= good <= total")
        counts = cls(slo)
        counts._good, counts._total = int(good), int(total)
        return counts

    def update(self, ok: ArrayLike, latency_ms: ArrayLike | None = None) -> None:
        """Count a batch of requests: whether each succeeded, and its latency.

        Latencies are needed only when the SLO has a latency threshold; a NaN
        latency is then bad, since the request cannot be shown to be fast enough.
        """
        ok = np.asarray(ok).ravel()
        if ok.size and ok.dtype != bool:  # status strings would all read as True
            raise ValueError(f"ok must be booleans, not {ok.dtype}")
        ok = ok.astype(bool)
        good = ok
        if self.slo.latency_ms is not None:
            if latency_ms is None:
                raise ValueError("this SLO has a latency threshold: pass latency_ms")
            latency = np.asarray(latency_ms, dtype=float).ravel()
            if latency.shape != ok.shape:
                raise ValueError(f"ok and latency_ms differ in length: {ok.size} and {latency.size}")
            good = ok & (latency <= self.slo.latency_ms)
        self._good += int(np.count_nonzero(good))
        self._total += ok.size

    def merge(self, other: SLICounts) -> None:
        """Add ``other``'s counts (same SLO) to these."""
        if self.slo != other.slo:
            raise ValueError("cannot merge counts kept for different SLOs")
        self._good += other._good
        self._total += other._total

    @property
    def good(self) -> int:
        return self._good

    @property
    def total(self) -> int:
        return self._total

    @property
    def bad(self) -> int:
        return self._total - self._good

    @property
    def error_rate(self) -> float:
        """Share of bad requests (NaN with no traffic)."""
        return self.bad / self._total if self._total else float("nan")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SLICounts)
            and self.slo == other.slo
            and (self._good, self._total) == (other._good, other._total)
        )

    def __repr__(self) -> str:
        return f"SLICounts(target={self.slo.target}, good={self._good}, total={self._total})"


def _check(counts: SLICounts, slo: SLO) -> None:
    if counts.slo != slo:
        raise ValueError("counts were kept for a different SLO")


def burn_rate(counts: SLICounts, slo: SLO) -> float:
    """How fast the window's requests spend the budget: ``error_rate / (1 - target)``; NaN with no traffic."""
    _check(counts, slo)
    return counts.error_rate / slo.error_budget


def budget_consumed(counts_over_period: SLICounts, slo: SLO) -> float:
    """Share of the period's error budget spent: ``bad / ((1 - target) * total)``; NaN with no traffic.

    The budget is a share of the traffic counted so far in the period, so this
    is the period's burn rate. It exceeds 1 once the SLO is missed.

    >>> slo = SLO(target=0.99)
    >>> counts = SLICounts(slo)
    >>> counts.update(np.arange(1000) >= 4)  # 4 errors where 10 are allowed
    >>> round(budget_consumed(counts, slo), 6), round(budget_remaining(counts, slo), 6)
    (0.4, 0.6)
    """
    _check(counts_over_period, slo)
    if counts_over_period.total == 0:
        return float("nan")
    return counts_over_period.bad / (slo.error_budget * counts_over_period.total)


def budget_remaining(counts_over_period: SLICounts, slo: SLO) -> float:
    """Share of the period's error budget left, ``1 - budget_consumed``: negative once the SLO is missed."""
    return 1 - budget_consumed(counts_over_period, slo)


@dataclass(frozen=True, slots=True)
class BurnRateCondition:
    """Fire ``severity`` when both windows (minutes) burn at least ``factor`` times the sustainable rate."""

    severity: Severity
    factor: float
    long_minutes: int
    short_minutes: int


@dataclass(frozen=True, slots=True)
class BurnRateAlert:
    """A condition that fired, with the burn rates that made it fire."""

    severity: Severity
    factor: float
    long_minutes: int
    short_minutes: int
    long_burn_rate: float
    short_burn_rate: float


#: The SRE workbook's recommendation, as Sloth ships it, for a 30-day SLO:
#: page on 2% of the budget spent in an hour or 5% in six hours, open a ticket
#: on 10% in a day or 10% in three days. Short windows are 1/12 of the long ones.
BURN_RATE_ALERTS: tuple[BurnRateCondition, ...] = (
    BurnRateCondition("page", 14.4, 60, 5),
    BurnRateCondition("page", 6.0, 360, 30),
    BurnRateCondition("ticket", 3.0, 1440, 120),
    BurnRateCondition("ticket", 1.0, 4320, 360),
)
#: Every trailing window the default alerts read, in minutes.
BURN_RATE_WINDOWS_MINUTES = (5, 30, 60, 120, 360, 1440, 4320)


#: Requests a burn-rate condition's long window must hold before it can fire (the rows are reported
#: whatever the volume). At 50, a model serving one request a minute can page within its first hour.
MIN_BURN_EVENTS = 50


#: How unlikely the long window's bad requests must be for a service exactly on its SLO before a condition
#: fires: evidence that the SLO is being missed, not sampling noise of a quiet service.
BURN_SIGNIFICANCE = 1e-3


def _reaches(rate: float, factor: float) -> bool:
    return rate >= factor or math.isclose(rate, factor, rel_tol=_RELATIVE_TOLERANCE)


def burn_rate_alerts(
    counts_by_window: Mapping[int, SLICounts],
    slo: SLO,
    conditions: Sequence[BurnRateCondition] = BURN_RATE_ALERTS,
    min_events: int = MIN_BURN_EVENTS,
    *,
    observed_minutes: float | None = None,
) -> list[BurnRateAlert]:
    """The conditions that fire, in the order given.

    ``counts_by_window`` maps a trailing window's length in minutes to the
    counts over it. A condition fires when the burn rate reaches its factor
    (at it counts) in both its long and its short window, and there is
    evidence behind it. A condition does not fire when a window is missing or
    saw no traffic, when its long window holds fewer than ``min_events``
    requests, when either window holds fewer than ``slo.min_bad_events`` bad
    requests, or when ``observed_minutes`` (how long the caller has been
    counting, up to the end of the windows) is shorter than its short window.
    ``observed_minutes=None`` means unknown: no such check. Nor does it fire
    when the long window's bad requests are ones a service exactly on its SLO
    gives by chance in more than :data:`BURN_SIGNIFICANCE` of windows (a
    one-sided Poisson test against ``total * (1 - target)``): at 10 requests a
    minute, a day holds 14 bad requests on average at the SLO, and a service at
    half its budget reads a 1x burn over it in 1% of days.
    """
    fired = []
    for condition in conditions:
        long, short = counts_by_window.get(condition.long_minutes), counts_by_window.get(condition.short_minutes)
        if long is None or short is None or long.total < max(1, min_events) or short.total == 0:
            continue
        if short.bad < slo.min_bad_events or long.bad < slo.min_bad_events:
            continue
        if observed_minutes is not None and observed_minutes < condition.short_minutes:
            continue
        if float(poisson.sf(long.bad - 1, long.total * slo.error_budget)) >= BURN_SIGNIFICANCE:
            continue
        long_rate, short_rate = burn_rate(long, slo), burn_rate(short, slo)
        if _reaches(long_rate, condition.factor) and _reaches(short_rate, condition.factor):
            fired.append(
                BurnRateAlert(
                    condition.severity,
                    condition.factor,
                    condition.long_minutes,
                    condition.short_minutes,
                    long_rate,
                    short_rate,
                )
            )
    return fired
