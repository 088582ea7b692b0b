"""Fairness per slice: rates with Wilson intervals, and parity between slices.

Everything is computed from :class:`~streamwatch.core.confusion.ConfusionCounts`,
never from raw events, so it works on merged partials and windows alike.
The parity functions follow fairlearn 0.15's definitions, so figures compare
with it exactly:

* ``method="between_groups"``: a difference is the largest rate minus the
  smallest across slices, a ratio the smallest divided by the largest;
* ``method="to_overall"``: a difference is the largest absolute difference
  between a slice's rate and the rate over all rows whose segment is known
  (fairlearn's *overall*, over the rows it is given); a ratio is the smallest
  of ``g / overall`` over slices, each turned into its inverse when above 1;
* ``reference_group=...``: as ``to_overall``, against one slice's rate
  instead (for instance the group a regulation calls the reference).

Slices whose rate is undefined (NaN: no positives for a true positive rate,
say) are left out, like fairlearn's pandas aggregations skip NaN; a figure is
NaN when no slice is left. Slices beyond the cap of the counts (their
overflow) are no group and take part only in the overall rate.

>>> from streamwatch.core.confusion import ConfusionCounts
>>> counts = ConfusionCounts([["gender"]])
>>> counts.update(np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=bool), np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool),
...               {"gender": np.array(["F", "F", "F", "F", "M", "M", "M", "M"], dtype=object)})
>>> demographic_parity_difference(counts, "gender"), demographic_parity_ratio(counts, "gender")
(0.5, 0.3333333333333333)
>>> equalized_odds_difference(counts, "gender", method="to_overall")
0.25
>>> demographic_parity_ratio(counts, "gender", reference_group="F")
0.3333333333333333
>>> four_fifths_rule(counts, "gender")
False
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtri

from streamwatch.core.confusion import ConfusionCounts, Counts, SliceKey

__all__ = [
    "FOUR_FIFTHS",
    "Proportion",
    "SliceReport",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "four_fifths_rule",
    "slice_reports",
    "wilson_interval",
]

#: Smallest selection-rate ratio the four-fifths (80%) rule of US employment law accepts.
FOUR_FIFTHS = 0.8

Method = Literal["between_groups", "to_overall"]
Aggregate = Literal["worst_case", "mean"]
Metric = Callable[[Counts], float]


@functools.lru_cache(maxsize=1024)
def normal_quantile(p: float) -> float:
    """The standard normal quantile of ``p``: ``scipy.stats.norm.ppf(p)``, to the bit.

    Intervals are computed for a handful of confidences, thousands of times: scipy's
    distribution machinery costs ~100 µs a call, its ``ndtri`` ufunc (which ``norm.ppf``
    runs) ~1 µs, and a cached value nothing.

    >>> from scipy.stats import norm
    >>> normal_quantile(0.975) == float(norm.ppf(0.975))
    True
    """
    return float(ndtri(p))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion, two-sided.

    The arithmetic is scipy's (``binomtest(k, n).proportion_ci(method="wilson")``,
    after Newcombe 1998), so both give the same bounds to the last bit; the
    interval is ``(0, high)`` when there is no success and ``(low, 1)`` when all
    are. Unlike the normal approximation it stays inside [0, 1] and keeps its
    coverage for small slices and rates near 0 or 1.

    Parameters
    ----------
    successes, trials
        Counts, ``0 <= successes <= trials``.
    confidence
        Confidence level, in (0, 1).

    Returns
    -------
    tuple of float
        ``(low, high)``, or ``(nan, nan)`` when ``trials == 0``.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    >>> wilson_interval(0, 0)
    (nan, nan)
    """
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} and {trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if trials == 0:
        return float("nan"), float("nan")
    n, p = trials, successes / trials
    z = normal_quantile(0.5 + 0.5 * confidence)
    # Same expressions, in the same order, as scipy's _binom_wilson_conf_int.
    denom = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denom
    delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
    low = 0.0 if successes == 0 else center - delta
    high = 1.0 if successes == trials else center + delta
    return low, high


@dataclass(frozen=True)
class Proportion:
    """A rate ``successes / trials`` with its Wilson interval (all NaN when ``trials == 0``)."""

    successes: int
    trials: int
    value: float
    low: float
    high: float

    @classmethod
    def of(cls, successes: int, trials: int, confidence: float = 0.95) -> Proportion:
        value = successes / trials if trials else float("nan")
        return cls(successes, trials, value, *wilson_interval(successes, trials, confidence))


@dataclass(frozen=True)
class SliceReport:
    """One slice's classification rates, each with its Wilson interval.

    Examples
    --------
    >>> row = SliceReport.of((("gender", "F"),), Counts(tp=40, fp=10, tn=35, fn=15))
    >>> row.count, row.tpr.value, [round(x, 3) for x in (row.tpr.low, row.tpr.high)]
    (100, 0.7272727272727273, [0.598, 0.827])
    """

    slice: SliceKey
    count: int
    selection_rate: Proportion
    tpr: Proportion
    fpr: Proportion
    fnr: Proportion
    precision: Proportion
    accuracy: Proportion

    @classmethod
    def of(cls, key: SliceKey, counts: Counts, confidence: float = 0.95) -> SliceReport:
        """The report of one slice's counts (``key=()`` for the overall counts, say)."""
        tp, fp, tn, fn = counts.tp, counts.fp, counts.tn, counts.fn
        return cls(
            slice=key,
            count=counts.n,
            selection_rate=Proportion.of(tp + fp, counts.n, confidence),
            tpr=Proportion.of(tp, tp + fn, confidence),
            fpr=Proportion.of(fp, fp + tn, confidence),
            fnr=Proportion.of(fn, tp + fn, confidence),
            precision=Proportion.of(tp, tp + fp, confidence),
            accuracy=Proportion.of(tp + tn, counts.n, confidence),
        )


def slice_reports(
    counts: ConfusionCounts,
    names: Sequence[str] | None = None,
    *,
    min_samples: int = 30,
    confidence: float = 0.95,
) -> list[SliceReport]:
    """Reports of the slices with at least ``min_samples`` rows, in slice order.

    Smaller slices are left out: their intervals are too wide to act on, and
    listing them invites reading noise as bias.

    Parameters
    ----------
    counts
        The confusion counts.
    names
        One combination of segment names, e.g. ``["gender"]``; every combination when ``None``.
    min_samples
        Fewest rows a slice needs to be reported.
    confidence
        Confidence level of the intervals.
    """
    return [
        SliceReport.of(key, slice_counts, confidence)
        for key, slice_counts in counts.by_slice(names).items()
        if slice_counts.n >= min_samples
    ]


def _reference(
    counts: ConfusionCounts, key: str | Sequence[str], reference_group: str | Sequence[str] | None, method: Method
) -> tuple[dict[SliceKey, Counts], Counts | None]:
    """The slices of ``key``, and the counts to compare them with (``None`` for between groups)."""
    names = (key,) if isinstance(key, str) else tuple(key)
    groups = counts.by_slice(names)
    if method not in ("between_groups", "to_overall"):
        raise ValueError(f"method must be 'between_groups' or 'to_overall', got {method!r}")
    if reference_group is None:
        return groups, counts.total(names) if method == "to_overall" else None
    if method != "between_groups":
        raise ValueError("give either method='to_overall' or a reference_group, not both")
    values = (reference_group,) if isinstance(reference_group, str) else tuple(reference_group)
    reference = tuple(zip(names, values, strict=True))
    if reference not in groups:
        raise KeyError(f"no slice {reference!r} to compare with")
    return groups, groups[reference]


def _rates(groups: dict[SliceKey, Counts], metric: Metric, min_samples: int) -> np.ndarray:
    rates = np.array([metric(c) for c in groups.values() if c.n >= min_samples], dtype=float)
    defined: np.ndarray = rates[~np.isnan(rates)]
    return defined


def _difference(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    metric: Metric,
    method: Method,
    reference_group: str | Sequence[str] | None,
    min_samples: int,
) -> float:
    groups, reference = _reference(counts, key, reference_group, method)
    rates = _rates(groups, metric, min_samples)
    if rates.size == 0:
        return float("nan")
    if reference is None:
        return float(rates.max() - rates.min())
    return float(np.abs(rates - metric(reference)).max())  # NaN when the reference rate is


def _ratio(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    metric: Metric,
    method: Method,
    reference_group: str | Sequence[str] | None,
    min_samples: int,
) -> float:
    groups, reference = _reference(counts, key, reference_group, method)
    rates = _rates(groups, metric, min_samples)
    # numpy division, as pandas does in fairlearn: x / 0 is inf and 0 / 0 NaN, not an exception.
    with np.errstate(divide="ignore", invalid="ignore"):
        if reference is None:
            return float(rates.min() / rates.max()) if rates.size else float("nan")
        ratios = rates / np.float64(metric(reference))
        # fairlearn turns a ratio above 1 into 1 / ratio (not reference / rate: the last bit can differ).
        ratios = np.where(ratios > 1, 1 / ratios, ratios)
    ratios = ratios[~np.isnan(ratios)]
    return float(ratios.min()) if ratios.size else float("nan")


def _aggregate(values: list[float], agg: Aggregate, worst: Callable[[np.ndarray], float]) -> float:
    present = np.array([v for v in values if not math.isnan(v)])
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"agg must be 'worst_case' or 'mean', got {agg!r}")
    if present.size == 0:
        return float("nan")
    return float(worst(present) if agg == "worst_case" else present.mean())


def _selection_rate(c: Counts) -> float:
    return c.selection_rate


def _tpr(c: Counts) -> float:
    return c.tpr


def _fpr(c: Counts) -> float:
    return c.fpr


def demographic_parity_difference(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    *,
    method: Method = "between_groups",
    reference_group: str | Sequence[str] | None = None,
    min_samples: int = 0,
) -> float:
    """Spread of the selection rate ``P(pred = 1 | slice)`` across the slices of ``key``; 0 is parity.

    Parameters
    ----------
    counts
        The confusion counts.
    key
        A segment name (``"gender"``) or a combination of them (``["gender", "region"]``) the counts track.
    method
        ``"between_groups"`` (largest minus smallest) or ``"to_overall"`` (largest absolute
        difference to the rate over all rows whose segment is known).
    reference_group
        A slice's value (a tuple of values for a combination): largest absolute
        difference to that slice's rate instead. Only with ``method="between_groups"``.
    min_samples
        Leave out slices with fewer rows (the overall rate still counts them); 0 keeps
        every slice, as fairlearn does.
    """
    return _difference(counts, key, _selection_rate, method, reference_group, min_samples)


def demographic_parity_ratio(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    *,
    method: Method = "between_groups",
    reference_group: str | Sequence[str] | None = None,
    min_samples: int = 0,
) -> float:
    """Smallest ratio of selection rates across the slices of ``key``, in [0, 1]; 1 is parity.

    Parameters are those of :func:`demographic_parity_difference`; with
    ``"to_overall"`` or a ``reference_group`` each slice's ratio to the
    reference is inverted when above 1, then the smallest is taken.
    """
    return _ratio(counts, key, _selection_rate, method, reference_group, min_samples)


def equal_opportunity_difference(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    *,
    method: Method = "between_groups",
    reference_group: str | Sequence[str] | None = None,
    min_samples: int = 0,
) -> float:
    """Spread of the true positive rate across the slices of ``key``; parameters as for the demographic parity."""
    return _difference(counts, key, _tpr, method, reference_group, min_samples)


def equal_opportunity_ratio(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    *,
    method: Method = "between_groups",
    reference_group: str | Sequence[str] | None = None,
    min_samples: int = 0,
) -> float:
    """Smallest ratio of true positive rates across the slices of ``key``; parameters as for the demographic parity."""
    return _ratio(counts, key, _tpr, method, reference_group, min_samples)


def equalized_odds_difference(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    *,
    method: Method = "between_groups",
    reference_group: str | Sequence[str] | None = None,
    min_samples: int = 0,
    agg: Aggregate = "worst_case",
) -> float:
    """The larger (``agg="worst_case"``) or the mean of the TPR and FPR differences.

    Other parameters as for :func:`demographic_parity_difference`. When one of
    the two is NaN the other is returned (fairlearn's result then depends on
    which one is NaN).
    """
    differences = [_difference(counts, key, m, method, reference_group, min_samples) for m in (_tpr, _fpr)]
    return _aggregate(differences, agg, np.max)


def equalized_odds_ratio(
    counts: ConfusionCounts,
    key: str | Sequence[str],
    *,
    method: Method = "between_groups",
    reference_group: str | Sequence[str] | None = None,
    min_samples: int = 0,
    agg: Aggregate = "worst_case",
) -> float:
    """The smaller (``agg="worst_case"``) or the mean of the TPR and FPR ratios.

    Other parameters as for :func:`demographic_parity_ratio`; NaN as in
    :func:`equalized_odds_difference`.
    """
    ratios = [_ratio(counts, key, m, method, reference_group, min_samples) for m in (_tpr, _fpr)]
    return _aggregate(ratios, agg, np.min)


def four_fifths_rule(counts: ConfusionCounts, key: str | Sequence[str]) -> bool:
    """Whether every slice's selection rate is at least 80% of the highest one.

    The demographic parity ratio between groups, at least :data:`FOUR_FIFTHS`.
    False when no slice has a selection rate (nothing counted).
    """
    return demographic_parity_ratio(counts, key) >= FOUR_FIFTHS
