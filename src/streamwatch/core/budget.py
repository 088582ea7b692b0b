"""The false-alert budget: how rarely each watched series may cross its threshold by chance.

A team can live with about one false alert per model per week (the setting
``alerting.false_alerts_per_week``). The default rules share that budget, and
each turns its share into a per-window false-positive rate ``alpha`` for the
series it watches, accounting for

- how many series it watches (features x variants, slices x rates x variants...);
- how many windows a week brings (10,080 of one minute);
- its ``for``: a rule that needs ``k`` consecutive breaching windows fires by
  chance about ``alpha ** k`` times per window on independent windows.

So ``series * windows_per_week * alpha ** k = budget * share``, a Bonferroni
correction over series and windows (Šidák's differs from it by less than
``alpha ** 2`` at these rates). The statistics' thresholds are then the
``1 - alpha`` quantiles of their null distributions, which
:func:`~streamwatch.core.thresholds.calibrate` estimates on the reference.

>>> budget = AlertBudget(1.0)
>>> alpha = budget.alpha("drift", series=3 * 21, window_ms=60_000)
>>> f"{alpha:.1e}"
'7.4e-04'
>>> round(63 * 10_080 * alpha ** 2, 3) == round(budget.per_week * DEFAULT_SHARES["drift"], 3)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_FOR", "DEFAULT_SHARES", "MAX_ALPHA", "VARIANTS", "WEEK_MS", "AlertBudget"]

WEEK_MS = 7 * 86_400_000
#: Variants a model version can be watched in (production, canary, shadow): every series counts three times.
VARIANTS = 3
#: The budget's split between the default rules' kinds: drift and data quality watch the most series.
#: The SLO alerts are not in it: their factors are the SRE workbook's, and what keeps them quiet is the
#: evidence they need (``core.slo``).
DEFAULT_SHARES: Mapping[str, float] = MappingProxyType(
    {"drift": 0.35, "data_quality": 0.35, "fairness": 0.15, "performance": 0.1, "change": 0.05}
)
#: The ``for`` of the default rules of each kind, which the budget assumes (``alerts.defaults`` uses these).
DEFAULT_FOR: Mapping[str, int] = MappingProxyType(
    {"drift": 2, "data_quality": 2, "fairness": 2, "performance": 3, "change": 1}
)
#: No threshold is looser than this per window, however few series and windows.
MAX_ALPHA = 0.01


@dataclass(frozen=True)
class AlertBudget:
    """``per_week`` false alerts per model, split between rule kinds by ``shares``."""

    per_week: float = 1.0
    shares: Mapping[str, float] = field(default_factory=lambda: DEFAULT_SHARES)

    def __post_init__(self) -> None:
        if not self.per_week > 0:
            raise ValueError("the false-alert budget must be positive")

    def alpha(self, kind: str, series: int, window_ms: int, for_windows: int | None = None) -> float:
        """The per-window false-positive rate of one of ``series`` series of rules of ``kind``.

        >>> AlertBudget(1.0).alpha("fairness", series=54, window_ms=60_000) < AlertBudget(10.0).alpha(
        ...     "fairness", series=54, window_ms=60_000)
        True
        """
        k = DEFAULT_FOR.get(kind, 1) if for_windows is None else for_windows
        windows = WEEK_MS / window_ms
        rate = self.per_week * self.shares.get(kind, 0.0) / (max(1, series) * windows)
        if rate <= 0:
            return 1e-12
        return float(min(MAX_ALPHA, rate ** (1 / max(1, k))))
