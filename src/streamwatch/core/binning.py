"""Bin edges for a numeric feature, chosen once from the reference (training) data."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["COARSE_BINS", "DEFAULT_BINS", "DEFAULT_UNIFORM_BINS", "PSI_BINS", "bin_edges", "coarse_starts", "coarsen"]

#: Quantile bins: each holds ~1% of the reference, which bounds how far KS
#: computed from bins can fall short of the exact statistic (see ``drift.ks``).
DEFAULT_BINS = 100
#: Equal-width bins added to the quantile ones. Quantile bins alone are wide
#: in the tails (the last of 100 spans ~1.6 standard deviations of a normal),
#: which makes Wasserstein from bins up to 10% low under a large shift; with
#: these added it stays within 1%.
DEFAULT_UNIFORM_BINS = 100


def bin_edges(values: ArrayLike, bins: int = DEFAULT_BINS, uniform_bins: int = DEFAULT_UNIFORM_BINS) -> np.ndarray:
    """Edges at the reference's quantiles and at equal steps from its minimum to its maximum.

    Missing values (NaN) are ignored. A feature with at most ``bins`` distinct
    values gets one edge per value instead, so each value has a bin of its own
    and statistics from bins are exact for it.

    >>> bin_edges([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], bins=4, uniform_bins=2).tolist()
    [1.0, 3.25, 5.5, 7.75, 10.0]
    >>> bin_edges([0, 0, 1, 1, 1, 5]).tolist()
    [0.0, 1.0, 5.0]
    """
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        raise ValueError("no values to bin")
    if bins < 1 or uniform_bins < 0:
        raise ValueError("bins must be at least 1 and uniform_bins at least 0")
    distinct = np.unique(data)
    if distinct.size <= bins:
        return distinct
    quantiles = np.quantile(data, np.linspace(0.0, 1.0, bins + 1))
    steps: np.ndarray | list[float] = np.linspace(data.min(), data.max(), uniform_bins + 1) if uniform_bins else []
    return np.unique(np.concatenate([quantiles, steps]))


#: Bins of PSI, as credit-risk practice computes it: ten bins holding a tenth of the reference each
#: (deciles), on which its rule of thumb (< 0.1 no change, > 0.25 a major shift) was learnt.
PSI_BINS = 10
#: Bins of Jensen-Shannon and Hellinger on numeric features: twenty bins holding a twentieth of the
#: reference each. Evidently bins them into 30 equal-width bins of the pooled data and NannyML by Doane's
#: rule on the reference (15 to 20 bins for 10,000 to 100,000 rows); equal widths put a heavy-tailed
#: amount into one or two bins, so streamwatch takes the count of NannyML's rule on reference quantiles.
COARSE_BINS = 20


def coarse_starts(reference_counts: ArrayLike, bins: int) -> np.ndarray:
    """Where each coarse bin starts among the fine ones: fine bins grouped so that each group holds about
    ``1 / bins`` of the reference.

    The fine edges of :func:`bin_edges` include the reference's percentiles, so the coarse bins of 10 or 20
    are exactly its deciles or vingtiles. A value that holds more than a group's share (an integer count's
    mode) keeps a bin of its own. Only the reference decides the grouping, so coarse counts of partials
    still add up exactly.

    >>> coarse_starts([0, 10, 10, 10, 10, 0], 2).tolist()
    [0, 3]
    >>> coarse_starts([0, 70, 10, 10, 10, 0], 4).tolist()  # the mode holds 70%: a bin of its own
    [0, 2]
    >>> coarsen(np.array([1, 2, 3, 4, 5, 6]), np.array([0, 3])).tolist()
    [6, 15]
    """
    counts = np.asarray(reference_counts, dtype=float)
    total = counts.sum()
    if total <= 0 or bins < 1:
        raise ValueError("coarse bins need a non-empty reference and at least one bin")
    after = np.cumsum(counts) / total
    middle = after - counts / total / 2
    group = np.minimum(np.floor(middle * bins), bins - 1)
    # A bin the reference never filled (an outer bin, a gap between equal-width edges) joins its left
    # neighbour's group, or the first group: a coarse bin empty in the reference would make PSI's
    # epsilon, not the data, decide.
    filled = np.flatnonzero(counts > 0)
    group = group[filled][np.maximum(np.searchsorted(filled, np.arange(counts.size), side="right") - 1, 0)]
    starts: np.ndarray = np.flatnonzero(np.r_[True, np.diff(group) > 0])
    return starts


def coarsen(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Fine counts summed into the coarse bins starting at ``starts`` (along the last axis)."""
    coarse: np.ndarray = np.add.reduceat(counts, starts, axis=-1)
    return coarse
