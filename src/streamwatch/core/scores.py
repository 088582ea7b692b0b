"""Counts of predicted scores per actual class, and the ROC AUC they give."""

from __future__ import annotations

import numpy as np

__all__ = ["ScoreHistogram"]


class ScoreHistogram:
    """Mergeable counts of a score in [0, 1], one histogram per actual class.

    Scores are rounded to the nearest point of the grid ``k / bins``,
    ``k = 0..bins``, so there are ``bins + 1`` cells: cell ``k`` holds the
    scores within half a step of ``k / bins`` (the two end cells are half as
    wide). Rounding rather than flooring keeps a score that lies on the grid
    in its own cell even when ``k / bins`` is not exact in binary (``0.29 * 100``
    is ``28.999...``), so scores with at most ``log10(bins)`` decimals (the
    usual case for rounded model outputs) lose nothing. NaN scores are
    counted as missing; scores outside [0, 1] are rejected, as the event
    contract does. Counts are integers, so merging is exact.

    Log loss and calibration within a cell cannot be recovered from the
    counts; the ROC AUC can, see :meth:`roc_auc`.

    Parameters
    ----------
    bins
        Steps of the grid; ``bins + 1`` cells per class.

    Examples
    --------
    >>> h = ScoreHistogram(bins=10)
    >>> h.update(np.array([0.1, 0.4, 0.4, 0.8, np.nan]), np.array([False, False, True, True, True]))
    >>> h.counts.tolist()
    [[0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]]
    >>> h.n, h.missing, h.roc_auc()
    (4, 1, 0.875)
    """

    def __init__(self, bins: int = 1000) -> None:
        if not isinstance(bins, int | np.integer) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.bins = int(bins)
        # Row 0 counts the negatives (label 0), row 1 the positives.
        self._counts = np.zeros((2, self.bins + 1), dtype=np.int64)
        self._missing = 0

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Count a batch of scores with their actual classes (booleans or 0/1); a NaN score is missing."""
        scores = np.asarray(scores, dtype=float)
        labels = np.asarray(labels)
        if scores.ndim != 1 or scores.shape != labels.shape:
            raise ValueError(
                f"need one-dimensional scores and labels of one length, got {scores.shape}, {labels.shape}"
            )
        if labels.dtype != bool and not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be booleans or 0/1")
        present = ~np.isnan(scores)
        kept = scores[present]
        if np.any((kept < 0) | (kept > 1)):
            raise ValueError("scores must lie in [0, 1]")
        self._missing += scores.size - kept.size
        cells = np.rint(kept * self.bins).astype(np.intp)
        # One bincount over (class, cell) codes fills both rows at once.
        codes = labels[present].astype(np.intp) * (self.bins + 1) + cells
        self._counts += np.bincount(codes, minlength=self._counts.size).reshape(self._counts.shape)

    def copy(self) -> ScoreHistogram:
        """An independent copy (what ``copy.deepcopy`` gives, ~50x faster)."""
        new = ScoreHistogram.__new__(ScoreHistogram)
        new.bins, new._counts, new._missing = self.bins, self._counts.copy(), self._missing
        return new

    def merge(self, other: ScoreHistogram) -> None:
        """Add ``other``'s counts (same bins) to this histogram."""
        if self.bins != other.bins:
            raise ValueError("cannot merge score histograms with different bins")
        self._counts += other._counts
        self._missing += other._missing

    @property
    def counts(self) -> np.ndarray:
        """Counts (a copy), shape ``(2, bins + 1)``: negatives' row, then positives'."""
        return self._counts.copy()

    @property
    def grid(self) -> np.ndarray:
        """The score each cell stands for, ``k / bins``."""
        return np.arange(self.bins + 1) / self.bins

    @property
    def n(self) -> int:
        """Scores counted, missing ones excluded."""
        return int(self._counts.sum())

    @property
    def positives(self) -> int:
        return int(self._counts[1].sum())

    @property
    def negatives(self) -> int:
        return int(self._counts[0].sum())

    @property
    def missing(self) -> int:
        return self._missing

    def roc_auc(self) -> float:
        """Area under the ROC curve, from the counts; NaN unless both classes were seen.

        This is the trapezoid under the ROC curve whose points are the cell
        boundaries, which equals the Mann-Whitney statistic with pairs in one
        cell counted as half: ``P(score+ > score-) + P(score+ == score-) / 2``.
        When scores of one cell are all equal (scores on the grid), that is
        scikit-learn's ``roc_auc_score`` exactly; otherwise the error is at
        most half the share of (positive, negative) pairs sharing a cell.
        """
        negatives, positives = self._counts.astype(float)  # floats: products of counts overflow int64
        pairs = negatives.sum() * positives.sum()
        if pairs == 0:
            return float("nan")
        below = np.cumsum(negatives) - negatives  # negatives in lower cells than each cell
        return float((positives @ below + positives @ negatives / 2) / pairs)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ScoreHistogram)
            and self.bins == other.bins
            and np.array_equal(self._counts, other._counts)
            and self._missing == other._missing
        )

    def __repr__(self) -> str:
        return f"ScoreHistogram(bins={self.bins}, positives={self.positives}, negatives={self.negatives})"
