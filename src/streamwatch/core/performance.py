"""Performance and fairness of one prediction window, fed by joined labels.

Labels arrive long after their prediction's window closed, so this state
lives apart from the drift windows: one per (model, version, variant,
prediction window), kept until the label horizon has passed, and re-reported
whenever new labels reach it (downstream keeps the latest figures).
Everything here is integer counts, so partials from several partitions merge
exactly; log loss is summed in fixed point for the same reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from streamwatch.core.confusion import ConfusionCounts
from streamwatch.core.estimation import EstimateCounts, score_cells
from streamwatch.core.fairness import (
    FOUR_FIFTHS,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    normal_quantile,
    slice_reports,
    wilson_interval,
)
from streamwatch.core.scores import ScoreHistogram

__all__ = ["PerformanceAggregates", "RegressionAggregates", "auc_interval", "is_positive"]

#: Log loss per event is summed in units of 1e-9 (integers merge exactly), with
#: probabilities clipped to [eps, 1 - eps] at machine epsilon, as scikit-learn does.
_LOG_LOSS_UNIT = 1e-9
_EPS = float(np.finfo(float).eps)


def is_positive(value: Any, positive_label: str) -> bool:
    """Whether a label or predicted class is the positive class: ``1``, ``1.0`` and ``True`` alike for ``"1"``.

    >>> [is_positive(v, "1") for v in (1, 1.0, True, "1", 0, "yes")], is_positive("fraud", "fraud")
    ([True, True, True, True, False, False], True)
    """
    if isinstance(value, str):
        return value == positive_label
    try:
        return float(value) == float(positive_label)
    except (TypeError, ValueError):
        return False


class PerformanceAggregates:
    """Confusion counts per slice, score histograms per class and summed log loss of labelled predictions.

    With ``score_edges`` (the reference's score bins, when the reference calibrated the score), the labelled
    predictions are also counted per (predicted class, score bin) and slice, all of them in ``estimate`` and
    the correct ones in ``estimate_correct``: what the estimate (``core.estimation``) said of exactly these
    predictions, to compare with what their labels say.
    """

    def __init__(
        self,
        slices: Sequence[Sequence[str]],
        positive_label: str = "1",
        score_edges: np.ndarray[Any, np.dtype[np.float64]] | None = None,
    ) -> None:
        self.positive_label = positive_label
        self.confusion = ConfusionCounts(slices)
        self.scores = ScoreHistogram(bins=100)
        self._log_loss_units = 0
        self._scored = 0
        self.score_edges = score_edges
        cells = 0 if score_edges is None else score_edges.size + 1
        self.estimate = EstimateCounts(cells, slices) if cells else None
        self.estimate_correct = EstimateCounts(cells, slices) if cells else None

    def update(self, matches: Sequence[tuple[Any, Any]]) -> None:
        """Add (prediction record, label) pairs from the label join."""
        positive = self.positive_label
        labels = [label for _, label in matches]
        predicted = [p.prediction for p, _ in matches]
        # A batch holds a few distinct classes: judge each once, then look them up in C.
        verdict = {value: is_positive(value, positive) for value in {*labels, *predicted}}
        y_true = np.fromiter(map(verdict.__getitem__, labels), dtype=bool, count=len(labels))
        y_pred = np.fromiter(map(verdict.__getitem__, predicted), dtype=bool, count=len(predicted))
        kept = [dict(p.segments) for p, _ in matches]
        names = set().union(*kept)
        segments = {n: np.array([d.get(n) for d in kept], dtype=object) for n in names}
        self.confusion.update(y_true, y_pred, segments)
        scored = [
            (p.score, truth) for (p, _), truth in zip(matches, y_true.tolist(), strict=True) if p.score is not None
        ]
        if scored:
            scores = np.array([s for s, _ in scored], dtype=float)
            truths = np.array([t for _, t in scored], dtype=bool)
            self.scores.update(scores, truths)
            clipped = np.clip(scores, _EPS, 1 - _EPS)
            clipped = np.where(truths, clipped, 1 - clipped)
            self._log_loss_units += int(np.rint(-np.log(clipped) / _LOG_LOSS_UNIT).sum())
            self._scored += len(scored)
            if self.estimate is not None and self.estimate_correct is not None and self.score_edges is not None:
                has_score = np.fromiter((p.score is not None for p, _ in matches), dtype=bool, count=len(matches))
                cells = score_cells(self.score_edges, scores)
                predicted = y_pred[has_score]
                right = predicted == y_true[has_score]
                by_name = {n: v[has_score] for n, v in segments.items()}
                self.estimate.update(cells, predicted, by_name)
                self.estimate_correct.update(cells[right], predicted[right], {n: v[right] for n, v in by_name.items()})

    def copy(self) -> PerformanceAggregates:
        """An independent copy (what ``copy.deepcopy`` gives, much faster)."""
        new = PerformanceAggregates.__new__(PerformanceAggregates)
        new.positive_label, new.confusion, new.scores = self.positive_label, self.confusion.copy(), self.scores.copy()
        new._log_loss_units, new._scored = self._log_loss_units, self._scored
        new.score_edges = self.score_edges  # the reference's, shared and never written
        new.estimate = None if self.estimate is None else self.estimate.copy()
        new.estimate_correct = None if self.estimate_correct is None else self.estimate_correct.copy()
        return new

    def merge(self, other: PerformanceAggregates) -> None:
        self.confusion.merge(other.confusion)
        self.scores.merge(other.scores)
        self._log_loss_units += other._log_loss_units
        self._scored += other._scored
        if self.estimate is not None and other.estimate is not None:
            self.estimate.merge(other.estimate)
        if self.estimate_correct is not None and other.estimate_correct is not None:
            self.estimate_correct.merge(other.estimate_correct)

    def fairness_breaches(
        self, min_samples: int = 30, alpha: float = 0.05
    ) -> list[tuple[tuple[str, ...], float, dict[str, Any]]]:
        """Segments whose selection rates break the four-fifths rule, among slices with enough samples,
        and significantly so.

        Significant: the ratio of the lowest slice's selection rate to the highest's is under 4/5 by a
        one-sided test at ``alpha`` (the log of the ratio of two proportions, with its delta-method
        standard error). Stationary windows of a few hundred requests break the rule by chance; two
        hours of them gave 83 findings before this test.

        Returns ``(segment names, demographic parity ratio, evidence)``; the evidence
        names the slices with the lowest and highest selection rate, and the test's ``z``.
        """
        breaches = []
        for names in self.confusion.slices:
            ratio = demographic_parity_ratio(self.confusion, list(names), min_samples=min_samples)
            if math.isnan(ratio) or ratio >= FOUR_FIFTHS:
                continue
            counts = {
                key: c
                for key, c in self.confusion.by_slice(list(names)).items()
                if c.n >= min_samples and not math.isnan(c.selection_rate)
            }
            rates = {key: c.selection_rate for key, c in counts.items()}
            lowest, highest = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
            z = _log_ratio_z(counts[lowest], counts[highest], FOUR_FIFTHS)
            if not z < normal_quantile(alpha):  # norm.isf(alpha) == -norm.ppf(alpha)
                continue
            breaches.append(
                (
                    names,
                    ratio,
                    {
                        "lowest_slice": dict(lowest),
                        "lowest_selection_rate": rates[lowest],
                        "highest_slice": dict(highest),
                        "highest_selection_rate": rates[highest],
                        "slices": len(rates),
                        "z": round(z, 3),
                    },
                )
            )
        return breaches

    def parity_gap_seen(self, min_samples: int, confidence: float, min_gap: float) -> bool:
        """Whether some slice's selection rate, FPR or FNR is at least ``min_gap`` worse than the best slice
        of its segment, with intervals at ``confidence`` that do not overlap (what the parity rules ask)."""
        for names in self.confusion.slices:
            reports = slice_reports(self.confusion, list(names), min_samples=min_samples, confidence=confidence)
            for metric, lower_is_better in (("selection_rate", False), ("fpr", True), ("fnr", True)):
                rates = [getattr(r, metric) for r in reports if not math.isnan(getattr(r, metric).value)]
                if len(rates) < 2:
                    continue
                if lower_is_better:
                    best = min(rates, key=lambda p: p.value)
                    if any(p.value - best.value >= min_gap and p.low > best.high for p in rates):
                        return True
                else:
                    best = max(rates, key=lambda p: p.value)
                    if any(best.value - p.value >= min_gap and p.high < best.low for p in rates):
                        return True
        return False

    @property
    def log_loss(self) -> float:
        return self._log_loss_units * _LOG_LOSS_UNIT / self._scored if self._scored else math.nan

    def metrics(
        self, min_samples: int = 30, confidence: float = 0.95
    ) -> list[tuple[str, float, tuple[tuple[str, str], ...], Any]]:
        """``(metric, value, slice, interval)`` for the window: overall performance (accuracy with its
        Wilson interval, ROC AUC with Hanley and McNeil's), per-slice rates (with Wilson intervals) and
        parity per segment. Intervals are two-sided at ``confidence``."""
        overall = self.confusion.overall
        precision, recall = overall.precision, overall.tpr
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else math.nan
        auc = self.scores.roc_auc()
        out: list[tuple[str, float, tuple[tuple[str, str], ...], Any]] = [
            ("labelled", float(overall.n), (), None),
            ("accuracy", overall.accuracy, (), _interval(overall.tp + overall.tn, overall.n, confidence)),
            ("precision", precision, (), None),
            ("recall", recall, (), None),
            ("f1", f1, (), None),
            ("positive_rate", overall.selection_rate, (), None),
            ("roc_auc", auc, (), auc_interval(auc, self.scores.positives, self.scores.negatives, confidence)),
            ("log_loss", self.log_loss, (), None),
        ]
        for report in slice_reports(self.confusion, min_samples=min_samples, confidence=confidence):
            for metric in ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy"):
                rate = getattr(report, metric)
                out.append((metric, rate.value, report.slice, (rate.low, rate.high)))
        for names in self.confusion.slices:
            key = list(names)
            tag = tuple((name, "*") for name in names)  # parity is about the whole segment, not one slice
            for metric, function in (
                ("demographic_parity_difference", demographic_parity_difference),
                ("demographic_parity_ratio", demographic_parity_ratio),
                ("equalized_odds_difference", equalized_odds_difference),
                ("equal_opportunity_difference", equal_opportunity_difference),
            ):
                out.append((metric, function(self.confusion, key, min_samples=min_samples), tag, None))
        return out


def _log_ratio_z(low: Any, high: Any, bound: float) -> float:
    """``(log(p_low / p_high) - log(bound)) / se``: how many standard errors the ratio of two selection
    rates lies under ``bound`` (negative: under it). A slice that selected no one is a ratio of 0."""
    selected_low, selected_high = low.tp + low.fp, high.tp + high.fp
    if selected_high == 0:
        return math.inf
    if selected_low == 0:
        return -math.inf
    p_low, p_high = selected_low / low.n, selected_high / high.n
    se = math.sqrt((1 - p_low) / selected_low + (1 - p_high) / selected_high)
    if se == 0:
        return -math.inf if p_low / p_high < bound else math.inf
    return (math.log(p_low / p_high) - math.log(bound)) / se


def _interval(successes: int, trials: int, confidence: float) -> tuple[float, float] | None:
    return wilson_interval(successes, trials, confidence) if trials else None


def auc_interval(auc: float, positives: int, negatives: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Hanley and McNeil's (1982) normal interval of a ROC AUC from ``positives`` and ``negatives``.

    >>> [round(x, 3) for x in auc_interval(0.8, 100, 100)]
    [0.739, 0.861]
    """
    if math.isnan(auc) or positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    half = normal_quantile(0.5 + confidence / 2) * math.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


class RegressionAggregates:
    """Errors of labelled regression predictions: MAE, RMSE and bias (mean of prediction minus label).

    Errors are summed in fixed point (units of 1e-9 of the label's unit; Python's
    integers hold the squares without overflow), so partials merge exactly.
    """

    UNIT = 1e-9

    def __init__(self) -> None:
        self.n = 0
        self._error = 0
        self._absolute = 0
        self._squared = 0

    def update(self, matches: Sequence[tuple[Any, Any]]) -> None:
        pairs = [
            (p.prediction, label)
            for p, label in matches
            if isinstance(p.prediction, int | float)
            and isinstance(label, int | float)
            and not isinstance(p.prediction, bool)
            and not isinstance(label, bool)
        ]
        for predicted, actual in pairs:
            try:
                error = round((predicted - actual) / self.UNIT)
            except OverflowError:  # beyond a float's range (a valid 1e300): the same fixed point, exactly
                error = round((Fraction(predicted) - Fraction(actual)) * 10**9)
            self._error += error
            self._absolute += abs(error)
            self._squared += error * error
        self.n += len(pairs)

    def copy(self) -> RegressionAggregates:
        new = RegressionAggregates()
        new.n, new._error, new._absolute, new._squared = self.n, self._error, self._absolute, self._squared
        return new

    def merge(self, other: RegressionAggregates) -> None:
        self.n += other.n
        self._error += other._error
        self._absolute += other._absolute
        self._squared += other._squared

    def metrics(
        self, min_samples: int = 30, confidence: float = 0.95
    ) -> list[tuple[str, float, tuple[tuple[str, str], ...], Any]]:
        if not self.n:
            return [("labelled", 0.0, (), None)]
        return [
            ("labelled", float(self.n), (), None),
            ("mae", _scaled_mean(self._absolute, self.n, self.UNIT), (), None),
            ("rmse", _root_mean(self._squared, self.n, self.UNIT), (), None),
            ("bias", _scaled_mean(self._error, self.n, self.UNIT), (), None),
        ]

    def fairness_breaches(
        self, min_samples: int = 30, alpha: float = 0.05
    ) -> list[tuple[tuple[str, ...], float, dict[str, Any]]]:
        return []


def _scaled_mean(total: int, n: int, unit: float) -> float:
    """``total * unit / n`` from fixed-point sums, exact past a float's range (errors of 1e300 are valid).

    >>> _scaled_mean(3, 2, 1.0), f"{_scaled_mean(10**309, 1, 1e-9):.3e}", _scaled_mean(-(10**400), 1, 1e-9)
    (1.5, '1.000e+300', -inf)
    """
    try:
        return total * unit / n
    except OverflowError:  # the sum in units is past a float's range; the mean may not be
        return _float(Fraction(total, n) * Fraction(unit))


def _root_mean(squares: int, n: int, unit: float) -> float:
    """``sqrt(squares / n) * unit``, the RMSE from fixed-point squares, exact past a float's range.

    >>> _root_mean(4, 1, 1e-9), f"{_root_mean(10**620, 1, 1e-9):.3e}", _root_mean(10**800, 1, 1e-9)
    (2e-09, '1.000e+301', inf)
    """
    try:
        return math.sqrt(squares / n) * unit
    except OverflowError:  # the mean square is past a float's range; its root may not be
        return _float(math.isqrt(squares // n) * Fraction(unit))


def _float(value: Fraction) -> float:
    """A fraction as a float, ±inf past a float's range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
