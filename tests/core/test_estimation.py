"""CBPE: the calibration against scikit-learn, the estimate against an independent per-row computation,
merging of partials, and the estimate tracking the realized figures on calibrated synthetic data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from streamwatch.core.binning import bin_edges
from streamwatch.core.estimation import (
    EstimateCounts,
    calibrate_bins,
    estimate,
    realized_gap,
    score_cells,
)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=30).filter(
        lambda bins: any(n for n, _ in bins)
    )
)
def test_the_calibration_is_scikit_learns_isotonic_regression_of_the_bins_positive_rates(
    bins: list[tuple[int, int]],
) -> None:
    totals = np.array([n for n, _ in bins])
    positives = np.array([min(k, n) for n, k in bins])
    found = calibrate_bins(totals, positives)
    filled = totals > 0
    expected = IsotonicRegression(increasing=True).fit(
        np.flatnonzero(filled), positives[filled] / totals[filled], sample_weight=totals[filled]
    )
    np.testing.assert_allclose(found[filled], expected.predict(np.flatnonzero(filled)), atol=1e-12)
    assert np.all(np.diff(found) >= -1e-12)  # monotone, the empty bins included


def independent(scores: np.ndarray, predicted: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """NannyML's CBPE formulas on each row's calibrated probability, with scikit-learn for the ROC AUC
    (each row counted as a positive of weight p and a negative of weight 1 - p)."""
    tp = float(p[predicted].sum())
    fp = float((1 - p[predicted]).sum())
    fn = float(p[~predicted].sum())
    tn = float((1 - p[~predicted]).sum())
    y = np.r_[np.ones(scores.size), np.zeros(scores.size)]
    return {
        "accuracy": (tp + tn) / scores.size,
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "roc_auc": float(roc_auc_score(y, np.r_[scores, scores], sample_weight=np.r_[p, 1 - p])),
    }


@given(st.integers(0, 2**32 - 1), st.integers(50, 2000))
def test_the_estimate_equals_an_independent_per_row_computation(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.05, 0.95, 19)
    probabilities = np.sort(rng.random(edges.size + 1))
    scores = rng.random(n)
    predicted = scores >= 0.5
    cells = score_cells(edges, scores)
    counts = np.bincount(predicted * (edges.size + 1) + cells, minlength=2 * (edges.size + 1)).reshape(2, -1)
    found = estimate(counts, probabilities)
    # Rows in one bin share its calibrated probability, and the bin is what the AUC can order them by.
    expected = independent(cells.astype(float), predicted, probabilities[cells])
    for metric, value in expected.items():
        assert found[metric].value == pytest.approx(value, abs=1e-9), metric


def test_bounds_follow_the_windows_size_and_z() -> None:
    probabilities = np.array([0.1, 0.5, 0.9])
    small = estimate(np.array([[10, 5, 0], [0, 5, 10]]), probabilities)
    large = estimate(np.array([[1000, 500, 0], [0, 500, 1000]]), probabilities)
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert small[metric].value == pytest.approx(large[metric].value, abs=0.01)
        assert small[metric].high - small[metric].low > 5 * (large[metric].high - large[metric].low), metric
    narrow = estimate(np.array([[1000, 500, 0], [0, 500, 1000]]), probabilities, z=1.0)
    accuracy = large["accuracy"]
    assert (accuracy.high - accuracy.value) == pytest.approx(3 * (narrow["accuracy"].high - accuracy.value))


def test_an_empty_window_or_one_class_estimates_nothing_it_cannot() -> None:
    assert all(
        math.isnan(e.value) for e in estimate(np.zeros((2, 3), dtype=np.int64), np.array([0.2, 0.5, 0.8])).values()
    )
    only_negative = estimate(np.array([[10, 0], [0, 0]]), np.array([0.1, 0.9]))
    assert math.isnan(only_negative["precision"].value) and only_negative["accuracy"].value == pytest.approx(0.9)


events = st.lists(
    st.tuples(st.integers(0, 5), st.booleans(), st.sampled_from(["F", "M", None]), st.sampled_from(["n", "s"])),
    max_size=60,
)


def counted(rows: list[tuple[int, bool, str | None, str]], cap: int = 100) -> EstimateCounts:
    counts = EstimateCounts(6, [["gender"], ["gender", "region"]], max_slices_per_key=cap)
    counts.update(
        np.array([r[0] for r in rows], dtype=np.intp),
        np.array([r[1] for r in rows], dtype=bool),
        {
            "gender": np.array([r[2] for r in rows], dtype=object),
            "region": np.array([r[3] for r in rows], dtype=object),
        },
    )
    return counts


@given(events, st.lists(st.integers(0, 60), max_size=3), st.sampled_from([1, 2, 100]))
def test_partials_of_any_split_merge_to_the_whole(rows: list, cuts: list[int], cap: int) -> None:
    bounds = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    parts = [counted(rows[a:b], cap) for a, b in itertools.pairwise(bounds)]
    merged = parts[-1].copy()
    for part in reversed(parts[:-1]):
        merged.merge(part)
    whole = counted(rows, cap)
    assert merged == whole
    probabilities = np.linspace(0.05, 0.95, 6)
    assert merged.metrics(probabilities, min_samples=1) == whole.metrics(probabilities, min_samples=1)


def test_a_merge_that_dropped_a_partials_slice_would_be_seen() -> None:
    a, b = counted([(1, True, "F", "n")]), counted([(2, False, "M", "s")])
    a.merge(b)
    assert set(a.by_slice()) == {
        (("gender", "F"),),
        (("gender", "M"),),
        (("gender", "F"), ("region", "n")),
        (("gender", "M"), ("region", "s")),
    }


# -- the estimate tracks the realized figures on calibrated synthetic data ------------------------------


def reference(rng: np.random.Generator, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a model calibrated by construction: y ~ Bernoulli(score), score = sigmoid(2x)."""
    scores = sigmoid(2 * rng.normal(0.0, 1.0, n))
    return scores, rng.random(n) < scores


def realized(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": accuracy_score(truth, predicted),
        "precision": precision_score(truth, predicted, zero_division=np.nan),
        "recall": recall_score(truth, predicted, zero_division=np.nan),
        "f1": f1_score(truth, predicted, zero_division=np.nan),
        "roc_auc": roc_auc_score(truth, scores) if 0 < truth.sum() < truth.size else math.nan,
    }


@pytest.mark.parametrize(("spread", "window"), [(1.0, 500), (0.3, 500), (1.0, 120), (2.5, 2000)])
def test_the_estimate_tracks_the_realized_figures_within_its_bounds_before_and_after_a_covariate_shift(
    spread: float, window: int
) -> None:
    rng = np.random.default_rng(11)
    ref_scores, ref_truth = reference(rng)
    edges = bin_edges(ref_scores)
    cells = score_cells(edges, ref_scores)
    probabilities = calibrate_bins(
        np.bincount(cells, minlength=edges.size + 1), np.bincount(cells, weights=ref_truth, minlength=edges.size + 1)
    )
    reference_accuracy = accuracy_score(ref_truth, ref_scores >= 0.5)
    outside = {m: 0 for m in ("accuracy", "precision", "recall", "f1", "roc_auc")}
    errors, estimates, windows = [], [], 200
    for _ in range(windows):
        # The population moves (spread 0.3: towards the decision boundary, where the model errs more; 2.5:
        # away from it); the concept holds, y ~ Bernoulli(score).
        scores = sigmoid(2 * rng.normal(0.0, spread, window))
        truth = rng.random(window) < scores
        predicted = scores >= 0.5
        counts = EstimateCounts(edges.size + 1)
        counts.update(score_cells(edges, scores), predicted, {})
        found = estimate(counts.overall, probabilities)
        actual = realized(truth, predicted, scores)
        for metric, value in actual.items():
            if not math.isnan(value) and not found[metric].low <= value <= found[metric].high:
                outside[metric] += 1
        errors.append(found["accuracy"].value - actual["accuracy"])
        estimates.append(found["accuracy"].value)
    # Three standard errors: about 0.3% of windows outside by chance; the binned calibration adds a little.
    assert all(count <= 0.02 * windows for count in outside.values()), outside
    assert abs(np.mean(errors)) < 0.01  # unbiased
    estimated = np.mean(estimates)
    if spread == 1.0:
        assert abs(estimated - reference_accuracy) < 0.01
    else:  # the shift changed the real accuracy by more than 0.05, and the estimate followed it
        assert abs(estimated - reference_accuracy) > 0.05


def test_concept_drift_parts_the_realized_figures_from_the_estimate() -> None:
    rng = np.random.default_rng(5)
    ref_scores, ref_truth = reference(rng)
    edges = bin_edges(ref_scores)
    cells = score_cells(edges, ref_scores)
    probabilities = calibrate_bins(
        np.bincount(cells, minlength=edges.size + 1), np.bincount(cells, weights=ref_truth, minlength=edges.size + 1)
    )
    scores = sigmoid(2 * rng.normal(0.0, 1.0, 1000))
    predicted = scores >= 0.5
    window = np.bincount(predicted * (edges.size + 1) + score_cells(edges, scores), minlength=2 * (edges.size + 1))
    counts = window.reshape(2, -1)
    calibrated_truth = rng.random(scores.size) < scores
    drifted_truth = rng.random(scores.size) < 0.5 + 0.5 * (scores - 0.5)  # P(y|x) moved towards chance
    assert abs(realized_gap(counts, probabilities, int(np.sum(calibrated_truth == predicted)))) < 3
    assert realized_gap(counts, probabilities, int(np.sum(drifted_truth == predicted))) < -3
