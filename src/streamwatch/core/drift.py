"""Drift statistics between a reference and a window, computed from their binned counts.

Every function takes count vectors that line up bin for bin (or the
histograms holding them) and returns a float, NaN when either side is empty.
Conventions follow established practice so that figures compare with other
tools: PSI replaces empty bins by 1e-4 like Evidently, Jensen-Shannon is the
distance (square root of the divergence) with natural logarithms like scipy
and Evidently, and the KS p-value is scipy's asymptotic two-sample one.

>>> reference, window = np.array([50, 30, 20]), np.array([20, 30, 50])
>>> round(psi(reference, window), 4), round(js_distance(reference, window), 4)
(0.5498, 0.2577)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, kstwo, wasserstein_distance

from streamwatch.core.categories import CategoryCounts
from streamwatch.core.histogram import NumericHistogram

__all__ = [
    "PSI_EMPTY_BIN",
    "bin_support",
    "chi_square",
    "hellinger",
    "js_distance",
    "ks",
    "psi",
    "unseen_share",
    "wasserstein",
]

#: Share given to an empty bin in PSI, so that the logarithm stays finite.
PSI_EMPTY_BIN = 1e-4


def _shares(counts: ArrayLike) -> np.ndarray | None:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else None


def _pair(reference: ArrayLike, current: ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    p, q = _shares(reference), _shares(current)
    if p is None or q is None:
        return None
    if p.shape != q.shape:
        raise ValueError(f"count vectors differ in length: {p.size} and {q.size}")
    return p, q


def psi(reference: ArrayLike, current: ArrayLike) -> float:
    """Population stability index: ``sum((q - p) * ln(q / p))`` over bins."""
    pair = _pair(reference, current)
    if pair is None:
        return float("nan")
    p, q = (np.where(x == 0, PSI_EMPTY_BIN, x) for x in pair)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: ArrayLike, current: ArrayLike) -> float:
    """Jensen-Shannon distance (natural log), between 0 and sqrt(ln 2)."""
    pair = _pair(reference, current)
    return float("nan") if pair is None else float(jensenshannon(*pair))


def hellinger(reference: ArrayLike, current: ArrayLike) -> float:
    """Hellinger distance, between 0 and 1."""
    pair = _pair(reference, current)
    if pair is None:
        return float("nan")
    p, q = pair
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2))


def ks(reference: NumericHistogram, current: NumericHistogram) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value, from binned counts.

    The empirical CDFs are compared at every bin edge. When every value lies
    on an edge (features with few distinct values, whose reference gives each
    value an edge) this is exactly scipy's ``ks_2samp``; otherwise the
    statistic can fall short of the exact one by at most the larger share of
    either sample in a single bin (~1% of the reference with the default
    bins). The p-value is scipy's asymptotic one (``ks_2samp(method="asymp")``).
    """
    n, m = reference.n, current.n
    if n == 0 or m == 0:
        return float("nan"), float("nan")
    gap = np.abs(np.cumsum(reference.counts) / n - np.cumsum(current.counts) / m)
    statistic = float(gap.max())
    effective = np.round(n * m / (n + m))
    if effective < 1:  # one value on each side: no p-value (scipy gives NaN too)
        return statistic, float("nan")
    return statistic, float(kstwo.sf(statistic, effective))


def bin_support(histogram: NumericHistogram) -> np.ndarray:
    """One point per bin standing for its values.

    An inner bin ``[e(i-1), e(i))`` stands at its left edge, which is exact
    for values on edges. The outer bins are unbounded, so they stand halfway
    between the outer edge and the extreme value this histogram has seen.
    """
    edges = histogram.edges
    low = (min(histogram.min, edges[0]) + edges[0]) / 2
    high = (max(histogram.max, edges[-1]) + edges[-1]) / 2
    return np.concatenate(([low], edges[:-1], [high]))


def wasserstein(reference: NumericHistogram, current: NumericHistogram, *, scale: float = 1.0) -> float:
    """First Wasserstein (earth mover's) distance, from binned counts, divided by ``scale``.

    Pass the reference's standard deviation as ``scale`` for the normalised
    form that Evidently reports (threshold 0.1).

    Both samples stand on the reference's support (:func:`bin_support`): a window's
    values beyond the reference's range count as if at its outer bins, i.e. the
    window is winsorised at the reference's range. That is what the calibration
    can resample, so a heavy-tailed amount's one extreme value (a Pareto draw 50
    times the reference's maximum) does not move the distance past a threshold
    that resampling could never reach; values out of range are counted apart, as
    the ``out_of_range_rate``. A shift moves the distance until the whole window
    lies beyond the reference's range.
    """
    if reference.n == 0 or current.n == 0:
        return float("nan")
    support = bin_support(reference)
    distance = wasserstein_distance(support, support, reference.counts, current.counts)
    return float(distance / scale)


def chi_square(reference: ArrayLike | CategoryCounts, current: ArrayLike | CategoryCounts) -> tuple[float, float]:
    """Chi-square test of homogeneity between the two count vectors: statistic and p-value.

    Bins empty on both sides are left out. No continuity correction, so 2x2
    tables are treated like larger ones.
    """
    ref = reference.counts if isinstance(reference, CategoryCounts) else np.asarray(reference)
    cur = current.counts if isinstance(current, CategoryCounts) else np.asarray(current)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or 0 in table.sum(axis=1):
        return float("nan"), float("nan")
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def unseen_share(current: CategoryCounts) -> float:
    """Share of non-missing values that the reference never saw."""
    return current.unseen / current.n if current.n else float("nan")
