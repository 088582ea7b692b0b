"""A mergeable latency sketch with bounded relative error, in the style of DDSketch.

Positive latencies go to log-spaced buckets: with ``gamma = (1 + a) / (1 - a)``
for a relative accuracy ``a``, bucket ``i`` holds the values in
``(gamma**(i - 1), gamma**i]``, so ``i = ceil(log(x) / log(gamma))``. A bucket
answers for its values with ``2 * gamma**i / (gamma + 1)``, which is within
``a`` of every value in it. Zeros are counted apart and answered exactly.

Quantiles follow numpy's ``method="inverted_cdf"`` (the smallest value whose
empirical CDF reaches ``q``): the sketch finds the bucket holding that order
statistic, so its answer is within ``a`` of ``np.quantile(data, q,
method="inverted_cdf")``. The default ``a = 0.005`` keeps every quantile within
0.5%, half of the 1% that latency percentiles are reported to.

>>> sketch = LatencySketch()
>>> sketch.update(np.array([0.0, 12.0, 15.0, 20.0, 250.0, np.nan]))
>>> sketch.n, sketch.missing, sketch.min, sketch.max
(5, 1, 0.0, 250.0)
>>> [round(v, 1) for v in sketch.quantiles([0.0, 0.5, 0.99])]
[0.0, 15.0, 250.0]
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["HIGHEST_MS", "LOWEST_MS", "LatencySketch"]

#: Latencies are clamped to ``[LOWEST_MS, HIGHEST_MS]`` before bucketing (one
#: microsecond to about 11.6 days), which bounds the buckets a sketch can ever
#: use, at most ``ceil(ln(HIGHEST_MS / LOWEST_MS) / ln(gamma)) + 1``: 2,764 counts
#: (22 KB) at the default accuracy, whatever the number of events. Relative accuracy
#: holds inside this range; a value outside it reads as the nearest bound
#: (``min`` and ``max`` stay exact).
LOWEST_MS = 1e-3
HIGHEST_MS = 1e9


class LatencySketch:
    """Counts of latencies (milliseconds, ``>= 0``) in log-spaced buckets; NaN counts as missing.

    Counts are integers in a dense array that spans only the buckets between
    the smallest and largest latency seen, so merging the partials of any
    split of a stream gives exactly the whole stream's sketch.

    Parameters
    ----------
    relative_accuracy
        ``a`` in ``(0, 1)``: every quantile is within ``a`` (relative) of the
        exact one, for latencies in ``[LOWEST_MS, HIGHEST_MS]``. Memory grows
        as ``1 / a``: about ``13.8 / a`` buckets at most.

    Examples
    --------
    >>> fast, slow = LatencySketch(), LatencySketch()
    >>> fast.update(np.array([10.0, 11.0, 12.0]))
    >>> slow.update(np.array([900.0]))
    >>> fast.merge(slow)
    >>> fast.n, round(fast.quantile(0.5), 1), round(fast.quantile(1.0), 1)
    (4, 11.0, 900.0)
    >>> fast.count_above(100.0)
    1
    >>> LatencySketch().quantile(0.5)
    nan
    """

    def __init__(self, relative_accuracy: float = 0.005) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative_accuracy must lie strictly between 0 and 1")
        self.relative_accuracy = relative_accuracy
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        # log1p keeps ln(gamma) precise when gamma is close to 1 (small accuracies).
        self._log_gamma = math.log1p(2 * relative_accuracy / (1 - relative_accuracy))
        # _counts[j] counts bucket _offset + j; empty until the first positive latency.
        self._offset = 0
        self._counts = np.zeros(0, dtype=np.int64)
        self._zeros = 0
        self._missing = 0
        self._min = np.inf
        self._max = -np.inf

    def _keys(self, values: np.ndarray) -> NDArray[np.int64]:
        """Bucket index of each positive latency."""
        clamped = np.clip(values, LOWEST_MS, HIGHEST_MS)
        keys: NDArray[np.int64] = np.ceil(np.log(clamped) / self._log_gamma).astype(np.int64)
        return keys

    def _cover(self, low: int, high: int) -> None:
        """Grow the dense counts to span buckets ``low..high`` as well as the current ones."""
        if self._counts.size:
            low, high = min(low, self._offset), max(high, self._offset + self._counts.size - 1)
            if (low, high) == (self._offset, self._offset + self._counts.size - 1):
                return
        grown = np.zeros(high - low + 1, dtype=np.int64)
        start = self._offset - low
        grown[start : start + self._counts.size] = self._counts
        self._offset, self._counts = low, grown

    def update(self, values: np.ndarray) -> None:
        """Count a batch of latencies in milliseconds; NaN means missing."""
        values = np.asarray(values, dtype=float).ravel()
        present = values[~np.isnan(values)]
        if np.any(present < 0) or np.any(np.isinf(present)):
            raise ValueError("latencies must be finite and >= 0 milliseconds")
        self._missing += values.size - present.size
        if not present.size:
            return
        positive = present[present > 0]
        self._zeros += present.size - positive.size
        self._min = min(self._min, float(present.min()))
        self._max = max(self._max, float(present.max()))
        if positive.size:
            keys = self._keys(positive)
            self._cover(int(keys.min()), int(keys.max()))
            self._counts += np.bincount(keys - self._offset, minlength=self._counts.size)

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s counts (same relative accuracy) to this sketch."""
        if self.relative_accuracy != other.relative_accuracy:
            raise ValueError("cannot merge sketches with different relative_accuracy")
        if other._counts.size:
            self._cover(other._offset, other._offset + other._counts.size - 1)
            start = other._offset - self._offset
            self._counts[start : start + other._counts.size] += other._counts
        self._zeros += other._zeros
        self._missing += other._missing
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def quantiles(self, qs: ArrayLike) -> list[float]:
        """Latencies at probabilities ``qs`` (each in ``[0, 1]``); NaN for each when the sketch is empty.

        The definition is numpy's ``inverted_cdf``: the order statistic of
        zero-based rank ``max(ceil(n * q - 1), 0)``, computed as numpy does so
        that both pick the same one.
        """
        probabilities = np.atleast_1d(np.asarray(qs, dtype=float))
        if probabilities.ndim != 1 or not np.all((probabilities >= 0) & (probabilities <= 1)):
            raise ValueError("quantile probabilities must lie in [0, 1]")
        n = self.n
        if n == 0:
            return [float("nan")] * probabilities.size
        ranks = np.maximum(np.ceil(n * probabilities - 1), 0)
        # Zeros come first in order; the rest are found among the buckets.
        buckets = np.searchsorted(np.cumsum(self._counts), ranks - self._zeros, side="right")
        estimates = 2 * np.exp((self._offset + buckets) * self._log_gamma) / (self._gamma + 1)
        # The true value lies in [min, max], so clamping can only bring an estimate closer to it.
        estimates = np.clip(estimates, self._min, self._max)
        result: list[float] = np.where(ranks < self._zeros, 0.0, estimates).tolist()
        return result

    def quantile(self, q: float) -> float:
        """Latency at probability ``q`` (see :meth:`quantiles`); NaN when the sketch is empty."""
        return self.quantiles([q])[0]

    def count_above(self, threshold_ms: float) -> int:
        """How many latencies exceed ``threshold_ms``, to bucket resolution.

        Exact when the threshold is below the minimum or at least the maximum,
        and at 0. Otherwise the count is of the buckets wholly above the
        threshold's own, so it never over-counts and misses only values in
        ``(threshold, gamma * threshold]`` (about 1% above it by default).
        For an exact count at a fixed threshold, count the raw values instead
        (as :class:`~streamwatch.core.slo.SLICounts` does).
        """
        if threshold_ms >= self._max:
            return 0
        if threshold_ms < self._min:
            return self.n
        if threshold_ms <= 0:
            return self.n - self._zeros
        first_above = int(self._keys(np.array([threshold_ms]))[0]) + 1 - self._offset
        return int(self._counts[max(first_above, 0) :].sum())

    @property
    def n(self) -> int:
        """Latencies counted, missing ones excluded."""
        return self._zeros + int(self._counts.sum())

    @property
    def missing(self) -> int:
        return self._missing

    @property
    def min(self) -> float:
        """Smallest latency seen, exactly (``inf`` when none)."""
        return self._min

    @property
    def max(self) -> float:
        """Largest latency seen, exactly (``-inf`` when none)."""
        return self._max

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LatencySketch)
            and self.relative_accuracy == other.relative_accuracy
            and self._offset == other._offset
            and np.array_equal(self._counts, other._counts)
            and (self._zeros, self._missing, self._min, self._max)
            == (other._zeros, other._missing, other._min, other._max)
        )

    def __repr__(self) -> str:
        return f"LatencySketch(relative_accuracy={self.relative_accuracy}, n={self.n}, missing={self._missing})"
