"""Counts of a numeric feature on the reference's bin edges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["NumericHistogram", "update_columns"]


class NumericHistogram:
    """A mergeable histogram on fixed edges, with missing values counted apart.

    ``edges`` has ``k`` increasing values and defines ``k + 1`` bins:
    ``(-inf, e0)``, ``[e0, e1)``, ..., ``[e(k-2), e(k-1))`` and ``[e(k-1), +inf)``.
    Values below the reference's minimum land in the first bin and values at or
    above its maximum in the last, so nothing is ever out of range here; the
    extreme values seen are kept too. Counts are integers, so merging is exact.

    Parameters
    ----------
    edges
        Increasing bin edges, usually :func:`~streamwatch.core.bin_edges` of the reference.

    Examples
    --------
    >>> h = NumericHistogram([0.0, 1.0, 2.0])
    >>> h.update(np.array([-5.0, 0.5, 1.0, 1.5, 7.0, np.nan]))
    >>> h.counts.tolist(), h.missing, h.n, h.min, h.max
    ([1, 1, 2, 1], 1, 5, -5.0, 7.0)
    >>> other = NumericHistogram([0.0, 1.0, 2.0])
    >>> other.update(np.array([0.1]))
    >>> h.merge(other)
    >>> h.counts.tolist()
    [1, 2, 2, 1]
    """

    def __init__(self, edges: ArrayLike) -> None:
        self.edges = np.asarray(edges, dtype=float)
        if self.edges.ndim != 1 or self.edges.size == 0 or np.any(np.diff(self.edges) <= 0):
            raise ValueError("edges must be a non-empty, strictly increasing sequence")
        self._counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        self._missing = 0
        self._min = np.inf
        self._max = -np.inf

    @classmethod
    def from_counts(
        cls, edges: ArrayLike, counts: ArrayLike, *, missing: int = 0, min: float = np.inf, max: float = -np.inf
    ) -> NumericHistogram:
        """Rebuild a histogram from stored counts (a reference profile's, or a partial from storage)."""
        histogram = cls(edges)
        stored = np.asarray(counts, dtype=np.int64)
        if stored.shape != histogram._counts.shape or np.any(stored < 0):
            raise ValueError(f"need {histogram._counts.size} non-negative counts for {histogram.edges.size} edges")
        histogram._counts[:] = stored
        histogram._missing, histogram._min, histogram._max = int(missing), float(min), float(max)
        return histogram

    def update(self, values: np.ndarray) -> None:
        """Count a batch of values; NaN means missing."""
        values = np.asarray(values, dtype=float)
        present = values[~np.isnan(values)]
        self._missing += values.size - present.size
        if present.size:
            self._counts += np.bincount(np.searchsorted(self.edges, present, side="right"), minlength=self._counts.size)
            self._min = min(self._min, float(present.min()))
            self._max = max(self._max, float(present.max()))

    def merge(self, other: NumericHistogram) -> None:
        """Add ``other``'s counts (same edges) to this histogram."""
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge histograms with different edges")
        self._counts += other._counts
        self._missing += other._missing
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    @property
    def counts(self) -> np.ndarray:
        """Counts per bin (a copy), ``len(edges) + 1`` of them."""
        return self._counts.copy()

    @property
    def n(self) -> int:
        """Values counted, missing ones excluded."""
        return int(self._counts.sum())

    @property
    def missing(self) -> int:
        return self._missing

    @property
    def min(self) -> float:
        """Smallest value seen (``inf`` when none)."""
        return self._min

    @property
    def max(self) -> float:
        """Largest value seen (``-inf`` when none)."""
        return self._max

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NumericHistogram)
            and np.array_equal(self.edges, other.edges)
            and np.array_equal(self._counts, other._counts)
            and (self._missing, self._min, self._max) == (other._missing, other._min, other._max)
        )

    def __repr__(self) -> str:
        return f"NumericHistogram(bins={self._counts.size}, n={self.n}, missing={self._missing})"


def update_columns(histograms: Sequence[NumericHistogram], columns: np.ndarray) -> None:
    """Count a batch for several histograms at once: ``columns[i]`` (NaN for missing) goes to ``histograms[i]``.

    The same counts as ``histograms[i].update(columns[i])`` for each, with one NaN mask, one min, one
    max and one ``bincount`` over every column: only the ``searchsorted`` is per histogram, since each
    has its own edges.

    >>> a, b = NumericHistogram([0.0, 1.0]), NumericHistogram([10.0])
    >>> update_columns([a, b], np.array([[0.5, 2.0, np.nan], [5.0, 20.0, 30.0]]))
    >>> a.counts.tolist(), a.missing, b.counts.tolist(), b.max
    ([0, 1, 1], 1, [1, 2], 30.0)
    """
    if columns.shape[0] != len(histograms):
        raise ValueError(f"need one column per histogram, got {columns.shape[0]} for {len(histograms)}")
    if columns.shape[1] == 0 or not histograms:
        return
    missing = np.isnan(columns)
    offsets = np.cumsum([0] + [h._counts.size for h in histograms])
    codes = np.empty(columns.shape, dtype=np.intp)
    for i, histogram in enumerate(histograms):
        np.add(np.searchsorted(histogram.edges, columns[i], side="right"), offsets[i], out=codes[i])
    codes[missing] = offsets[-1]  # one slot past every histogram's bins
    counts = np.bincount(codes.ravel(), minlength=int(offsets[-1]) + 1)
    absent = missing.sum(axis=1).tolist()
    lows = np.fmin.reduce(columns, axis=1).tolist()  # fmin and fmax skip NaN
    highs = np.fmax.reduce(columns, axis=1).tolist()
    size = columns.shape[1]
    for i, histogram in enumerate(histograms):
        histogram._counts += counts[offsets[i] : offsets[i + 1]]
        histogram._missing += absent[i]
        if absent[i] < size:
            histogram._min = min(histogram._min, lows[i])
            histogram._max = max(histogram._max, highs[i])
