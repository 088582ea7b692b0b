"""Performance estimated before the labels arrive: confidence-based performance estimation (CBPE).

A binary classifier's score, once calibrated on the reference's labels, is the
probability that a prediction's label is positive. A window's expected
confusion counts follow from its predictions alone, as NannyML's CBPE
computes them: a prediction of the positive class with calibrated probability
``p`` adds ``p`` to the expected true positives and ``1 - p`` to the false
positives; one of the negative class adds ``p`` to the false negatives and
``1 - p`` to the true negatives. Accuracy, precision, recall and F1 follow from
those counts, and the ROC AUC from the expected positive and negative mass at
each score.

The assumption: the score is calibrated on the reference, and the concept holds
(``P(y | x)`` unchanged). Under a covariate shift the estimate moves with the
real figure; under concept drift it does not, and the realized figures part
from it once labels arrive.

Calibration and mergeability
----------------------------
The calibration is *binned isotonic regression*: the reference's scores are
counted on the reference profile's score bins (the same edges every window's
score histogram uses), the positive rate of each bin is made monotone in the
score by isotonic regression weighted by the bins' counts (pool adjacent
violators, ``scipy.optimize.isotonic_regression``), and every score in a bin
takes its bin's probability. So a window needs only integer counts per
(predicted class, score bin), overall and per slice (:class:`EstimateCounts`):
partials merge exactly, and the calibration is applied when a window is
reported. The bins hold about 1% of the reference each (quantile edges), so
the calibration's resolution is that of the score's percentiles.

Bounds
------
Each estimate comes with bounds of the sampling error of the window's size:
under the assumption, a window's realized correct predictions are a sum of
independent Bernoulli trials with the calibrated probabilities, whose variance
``sum p (1 - p)`` the counts give exactly; precision, recall and F1 take it
through the delta method, the ROC AUC through Hanley and McNeil's formula at
the expected positives and negatives. The bounds are the estimate ± ``z``
standard errors (NannyML draws them at three), clipped to [0, 1].

Imports numpy, scipy and :mod:`streamwatch.core` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import isotonic_regression

from streamwatch.core.confusion import slice_tables

__all__ = [
    "ESTIMATED_METRICS",
    "MIN_CALIBRATION_LABELS",
    "Estimate",
    "EstimateCounts",
    "calibrate_bins",
    "calibration_variance",
    "estimate",
    "expected_correct",
    "realized_gap",
    "score_cells",
]

#: The metrics CBPE estimates, as rows ``estimated_<name>``.
ESTIMATED_METRICS: Final = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: Labels of each class the reference needs before a calibration is fitted (fewer: no estimate).
MIN_CALIBRATION_LABELS: Final = 30

Segment = tuple[tuple[str, str], ...]
Counts = NDArray[np.int64]


def score_cells(edges: NDArray[np.float64], scores: NDArray[np.float64]) -> NDArray[np.intp]:
    """The bin of each score on the reference's score edges, as ``NumericHistogram`` counts them.

    >>> score_cells(np.array([0.1, 0.5, 0.9]), np.array([0.0, 0.1, 0.7, 0.95])).tolist()
    [0, 1, 2, 3]
    """
    cells: NDArray[np.intp] = np.searchsorted(edges, scores, side="right")
    return cells


def calibrate_bins(totals: ArrayLike, positives: ArrayLike) -> NDArray[np.float64]:
    """Each bin's calibrated probability of the positive class: its positive rate, made non-decreasing
    across bins by isotonic regression weighted by the bins' counts. A bin the reference left empty takes
    the probability of the nearest filled bin below it (or above it, before the first filled one).

    >>> calibrate_bins([0, 10, 10, 10, 0], [0, 1, 6, 4, 0]).round(3).tolist()
    [0.1, 0.1, 0.5, 0.5, 0.5]
    """
    n = np.asarray(totals, dtype=float)
    k = np.asarray(positives, dtype=float)
    if n.shape != k.shape or n.ndim != 1 or np.any(k < 0) or np.any(k > n):
        raise ValueError("need one positive count per bin, each at most the bin's total")
    filled = np.flatnonzero(n > 0)
    if filled.size == 0:
        raise ValueError("no reference scores to calibrate on")
    fitted = isotonic_regression(k[filled] / n[filled], weights=n[filled], increasing=True).x
    # Each bin takes the fit of the last filled bin at or before it (the first filled bin's before any).
    at = np.maximum(np.searchsorted(filled, np.arange(n.size), side="right") - 1, 0)
    probabilities: NDArray[np.float64] = np.clip(np.asarray(fitted, dtype=float)[at], 0.0, 1.0)
    return probabilities


class Estimate:
    """One estimated metric: its value and bounds (NaN when the window cannot define it)."""

    __slots__ = ("high", "low", "value")

    def __init__(self, value: float, low: float, high: float) -> None:
        self.value, self.low, self.high = value, low, high

    def __repr__(self) -> str:
        return f"Estimate({self.value:.4f}, {self.low:.4f}, {self.high:.4f})"


_NAN = Estimate(math.nan, math.nan, math.nan)


def _bounded(value: float, variance: float, z: float) -> Estimate:
    if math.isnan(value):
        return _NAN
    half = z * math.sqrt(max(variance, 0.0))
    return Estimate(value, max(0.0, value - half), min(1.0, value + half))


def estimate(counts: Counts, probabilities: NDArray[np.float64], z: float = 3.0) -> dict[str, Estimate]:
    """The estimated metrics of predictions counted per (predicted class, score bin), with bounds at ``z``.

    ``counts[1]`` are the predictions of the positive class, ``counts[0]`` the others.

    >>> counts = np.array([[50, 0], [0, 50]])  # 50 negative predictions in bin 0, 50 positive in bin 1
    >>> found = estimate(counts, np.array([0.2, 0.9]))
    >>> round(found["accuracy"].value, 4), round(found["precision"].value, 4), round(found["recall"].value, 4)
    (0.85, 0.9, 0.8182)
    >>> round(found["roc_auc"].value, 4)  # P(score of a positive > score of a negative), ties halved
    0.8535
    """
    counts = np.asarray(counts, dtype=np.int64)
    negative, positive = counts[0].astype(float), counts[1].astype(float)
    n1, n0 = float(positive.sum()), float(negative.sum())
    n = n0 + n1
    if n == 0:
        return dict.fromkeys(ESTIMATED_METRICS, _NAN)
    p = probabilities
    spread = p * (1.0 - p)
    tp, fn = float(positive @ p), float(negative @ p)  # expected positives among each predicted class
    tn = n0 - fn
    var_tp, var_fn = float(positive @ spread), float(negative @ spread)
    out = {"accuracy": _bounded((tp + tn) / n, (var_tp + var_fn) / (n * n), z)}
    out["precision"] = _bounded(tp / n1, var_tp / (n1 * n1), z) if n1 else _NAN
    actual = tp + fn
    if actual > 0:
        out["recall"] = _bounded(tp / actual, (fn * fn * var_tp + tp * tp * var_fn) / actual**4, z)
    else:
        out["recall"] = _NAN
    denominator = n1 + actual  # 2TP + FP + FN
    if denominator > 0:
        f1 = 2 * tp / denominator
        variance = (4 * (n1 + fn) ** 2 * var_tp + 4 * tp * tp * var_fn) / denominator**4
        out["f1"] = _bounded(f1, variance, z)
    else:
        out["f1"] = _NAN
    out["roc_auc"] = _auc(counts.sum(axis=0).astype(float), p, z)
    return out


def _auc(totals: NDArray[np.float64], p: NDArray[np.float64], z: float) -> Estimate:
    """The expected ROC AUC from the positive and negative mass in each score bin (ties within a bin
    count half, as scikit-learn counts tied scores), with Hanley and McNeil's bounds."""
    mass_positive, mass_negative = totals * p, totals * (1.0 - p)
    positives, negatives = float(mass_positive.sum()), float(mass_negative.sum())
    if positives <= 0 or negatives <= 0:
        return _NAN
    below = np.cumsum(mass_negative) - mass_negative  # negative mass in lower bins
    auc = float(mass_positive @ (below + mass_negative / 2)) / (positives * negatives)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    # Hanley and McNeil (1982) at the expected class counts (at least one of each).
    pos, neg = max(positives, 1.0), max(negatives, 1.0)
    variance = (auc * (1 - auc) + (pos - 1) * (q1 - auc * auc) + (neg - 1) * (q2 - auc * auc)) / (pos * neg)
    return _bounded(auc, variance, z)


class EstimateCounts:
    """Mergeable counts of predictions per (predicted class, score bin), overall and per slice.

    ``slices`` are combinations of segment names, as :class:`~streamwatch.core.ConfusionCounts` takes
    them, with the same rules: a prediction missing a segment of a combination is in none of its slices,
    and each combination keeps the ``max_slices_per_key`` slices whose values sort first (the rest are
    counted in its overflow), which keeps merging exact under any split of the stream.

    >>> counts = EstimateCounts(4, [["gender"]])
    >>> counts.update(np.array([0, 3, 3]), np.array([False, True, True]),
    ...               {"gender": np.array(["F", "M", None], dtype=object)})
    >>> counts.overall.tolist(), counts.by_slice()[(("gender", "M"),)].tolist()
    ([[1, 0, 0, 0], [0, 0, 0, 2]], [[0, 0, 0, 0], [0, 0, 0, 1]])
    >>> other = EstimateCounts(4, [["gender"]])
    >>> other.update(np.array([1]), np.array([False]), {"gender": np.array(["F"], dtype=object)})
    >>> counts.merge(other)
    >>> counts.by_slice()[(("gender", "F"),)].tolist()
    [[1, 1, 0, 0], [0, 0, 0, 0]]
    """

    def __init__(self, cells: int, slices: Sequence[Sequence[str]] = (), *, max_slices_per_key: int = 100) -> None:
        if cells < 1 or max_slices_per_key < 1:
            raise ValueError("need at least one score bin and one slice per combination")
        self.cells = int(cells)
        self.slices = tuple(tuple(names) for names in slices)
        self.max_slices_per_key = max_slices_per_key
        self._overall: Counts = np.zeros((2, self.cells), dtype=np.int64)
        # names -> values -> counts per (predicted class, bin); values line up with the names.
        self._slices: dict[tuple[str, ...], dict[tuple[str, ...], Counts]] = {names: {} for names in self.slices}
        self._overflow: dict[tuple[str, ...], int] = dict.fromkeys(self.slices, 0)

    def update(
        self, cells: NDArray[np.intp], predicted: NDArray[np.bool_], segments: Mapping[str, NDArray[np.object_]]
    ) -> None:
        """Count a batch: each prediction's score bin, whether it predicts the positive class, and its
        segment values (``None`` for missing)."""
        if cells.shape != predicted.shape:
            raise ValueError(f"{cells.size} score bins for {predicted.size} predictions")
        if cells.size == 0:
            return
        size = 2 * self.cells
        code = predicted.astype(np.intp) * self.cells + cells
        tables = list(slice_tables(self.slices, segments, code, size))  # (a rejected batch counts nowhere)
        self._overall += np.bincount(code, minlength=size).reshape(2, self.cells)
        for names, keys, table in tables:
            tracked = self._slices[names]
            for key, row in zip(keys, table.reshape(-1, 2, self.cells), strict=True):
                kept = tracked.get(key)
                tracked[key] = row if kept is None else kept + row
            self._cap(names)

    def _cap(self, names: tuple[str, ...]) -> None:
        tracked = self._slices[names]
        if len(tracked) > self.max_slices_per_key:
            for values in sorted(tracked)[self.max_slices_per_key :]:
                self._overflow[names] += int(tracked.pop(values).sum())

    def copy(self) -> EstimateCounts:
        new = EstimateCounts.__new__(EstimateCounts)
        new.cells, new.slices, new.max_slices_per_key = self.cells, self.slices, self.max_slices_per_key
        new._overall = self._overall.copy()
        new._slices = {names: {v: c.copy() for v, c in tracked.items()} for names, tracked in self._slices.items()}
        new._overflow = dict(self._overflow)
        return new

    def merge(self, other: EstimateCounts) -> None:
        """Add ``other``'s counts (same bins, slices and cap)."""
        if (self.cells, self.slices, self.max_slices_per_key) != (other.cells, other.slices, other.max_slices_per_key):
            raise ValueError("cannot merge estimate counts over different bins, slices or caps")
        self._overall += other._overall
        for names in self.slices:
            tracked = self._slices[names]
            for values, counts in other._slices[names].items():
                kept = tracked.get(values)
                tracked[values] = counts.copy() if kept is None else kept + counts
            self._overflow[names] += other._overflow[names]
            self._cap(names)

    @property
    def overall(self) -> Counts:
        """Counts over every prediction, ``[predicted negative, predicted positive] x bins`` (a copy)."""
        return self._overall.copy()

    @property
    def n(self) -> int:
        return int(self._overall.sum())

    def by_slice(self) -> dict[Segment, Counts]:
        """Counts per slice kept, keyed by the slice's (name, value) pairs, in sort order."""
        return {
            tuple(zip(names, values, strict=True)): self._slices[names][values]
            for names in self.slices
            for values in sorted(self._slices[names])
        }

    def metrics(
        self, probabilities: NDArray[np.float64], z: float = 3.0, min_samples: int = 30
    ) -> list[tuple[str, float, Segment, tuple[float, float] | None]]:
        """Rows ``(estimated_<metric>, value, slice, (lower, upper))`` overall and for every slice with at
        least ``min_samples`` predictions; undefined figures are left out."""
        if probabilities.shape != (self.cells,):
            raise ValueError(f"need {self.cells} calibrated probabilities, got {probabilities.shape}")
        out: list[tuple[str, float, Segment, tuple[float, float] | None]] = []
        populations: list[tuple[Segment, Counts]] = [((), self._overall)]
        populations += [(s, c) for s, c in self.by_slice().items() if int(c.sum()) >= min_samples]
        for segment, counts in populations:
            for metric, found in estimate(counts, probabilities, z).items():
                if not math.isnan(found.value):
                    out.append((f"estimated_{metric}", found.value, segment, (found.low, found.high)))
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EstimateCounts):
            return NotImplemented
        return (
            (self.cells, self.slices, self.max_slices_per_key) == (other.cells, other.slices, other.max_slices_per_key)
            and np.array_equal(self._overall, other._overall)
            and self._overflow == other._overflow
            and all(
                self._slices[n].keys() == other._slices[n].keys()
                and all(np.array_equal(c, other._slices[n][v]) for v, c in self._slices[n].items())
                for n in self.slices
            )
        )

    __hash__ = None  # type: ignore[assignment]  # mutable counts: equal by value, not hashable


def expected_correct(counts: Counts, probabilities: NDArray[np.float64]) -> tuple[float, float]:
    """The correct predictions the calibrated scores expect of ``counts`` (per predicted class and score
    bin), and their variance as a sum of Bernoulli trials: a predicted positive in a bin is correct with
    the bin's probability ``p``, a predicted negative with ``1 - p``.

    >>> expected, variance = expected_correct(np.array([[50, 0], [0, 50]]), np.array([0.2, 0.9]))
    >>> expected, round(variance, 9)
    (85.0, 12.5)
    """
    counts = np.asarray(counts, dtype=np.int64)
    p = probabilities
    return float(counts[1] @ p + counts[0] @ (1.0 - p)), float(counts.sum(axis=0) @ (p * (1.0 - p)))


def realized_gap(counts: Counts, probabilities: NDArray[np.float64], correct: int) -> float:
    """How many standard errors the realized correct predictions (``correct``, of the same predictions
    ``counts`` holds) lie from what the calibrated scores expect: ``(correct - E) / sqrt(V)``. Beyond the
    bounds, the estimate's assumption no longer holds for these predictions (concept drift, or scores
    no longer calibrated for them).

    >>> round(realized_gap(np.array([[50, 0], [0, 50]]), np.array([0.2, 0.9]), 60), 2)
    -7.07
    """
    expected, variance = expected_correct(counts, probabilities)
    if variance <= 0:
        return 0.0 if correct == expected else math.copysign(math.inf, correct - expected)
    return (correct - expected) / math.sqrt(variance)


def calibration_variance(counts: Counts, probabilities: NDArray[np.float64], reference_counts: ArrayLike) -> float:
    """The variance the calibration's own error adds to the expected correct predictions of ``counts``.

    Each bin's probability was estimated from the reference rows in it (variance ``p (1 - p) / N``; pooling
    adjacent bins by isotonic regression gives the same total when a window's scores fall as the
    reference's did). A predicted positive in a bin is correct with probability ``p``, a predicted negative
    with ``1 - p``, so the bin weighs ``(positives - negatives)^2``. A bin the reference left empty took a
    neighbour's probability, and its rows count. Unlike the sampling error, this does not shrink with the
    window: it is what keeps a long view of calibrated traffic from parting from its estimate by chance.

    >>> round(calibration_variance(np.array([[0, 100], [0, 0]]), np.array([0.2, 0.5]), [400, 100]), 6)
    25.0
    """
    n = np.asarray(reference_counts, dtype=float)
    filled = np.flatnonzero(n > 0)
    if filled.size == 0:
        return math.inf
    at = np.maximum(np.searchsorted(filled, np.arange(n.size), side="right") - 1, 0)
    support = n[filled][at]
    weight = np.asarray(counts[1], dtype=float) - np.asarray(counts[0], dtype=float)
    return float(np.sum(weight * weight * probabilities * (1.0 - probabilities) / support))
