"""Fairness per slice: Wilson intervals against scipy, and every figure against fairlearn on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest, norm
from sklearn.metrics import accuracy_score, precision_score, recall_score

from streamwatch.core.confusion import ConfusionCounts, Counts
from streamwatch.core.fairness import (
    FOUR_FIFTHS,
    Proportion,
    SliceReport,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    four_fifths_rule,
    slice_reports,
    wilson_interval,
)

METHODS = ["between_groups", "to_overall"]
PARITY = [
    (demographic_parity_difference, fm.demographic_parity_difference),
    (demographic_parity_ratio, fm.demographic_parity_ratio),
    (equalized_odds_difference, fm.equalized_odds_difference),
    (equalized_odds_ratio, fm.equalized_odds_ratio),
    (equal_opportunity_difference, fm.equal_opportunity_difference),
    (equal_opportunity_ratio, fm.equal_opportunity_ratio),
]
# The same rates as ours, from scikit-learn and fairlearn; zero_division never triggers on these data.
METRICS = {
    "count": fm.count,
    "selection_rate": fm.selection_rate,
    "tpr": fm.true_positive_rate,
    "recall": recall_score,
    "fpr": fm.false_positive_rate,
    "fnr": fm.false_negative_rate,
    "tnr": fm.true_negative_rate,
    "precision": precision_score,
    "accuracy": accuracy_score,
}
OURS = {
    "count": lambda c: c.n,
    "selection_rate": lambda c: c.selection_rate,
    "tpr": lambda c: c.tpr,
    "recall": lambda c: c.tpr,
    "fpr": lambda c: c.fpr,
    "fnr": lambda c: c.fnr,
    "tnr": lambda c: c.tnr,
    "precision": lambda c: c.precision,
    "accuracy": lambda c: c.accuracy,
}


def synthetic(seed: int, n: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions and two segments; gender X is selected far less often, region east more."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(np.array(["F", "M", "X"], dtype=object), size=n, p=[0.45, 0.45, 0.1])
    region = rng.choice(np.array(["north", "south", "east"], dtype=object), size=n)
    y_true = rng.random(n) < np.where(gender == "M", 0.45, 0.35)
    correct = rng.random(n) < 0.8
    y_pred = np.where(correct, y_true, ~y_true)
    y_pred &= ~((gender == "X") & (rng.random(n) < 0.7))
    y_pred |= (region == "east") & (rng.random(n) < 0.2)
    return y_true, y_pred, gender, region


def counted(y_true: np.ndarray, y_pred: np.ndarray, gender: np.ndarray, region: np.ndarray) -> ConfusionCounts:
    counts = ConfusionCounts([["gender"], ["region"], ["gender", "region"]])
    # Several batches, to exercise the accumulation as well.
    for part in np.array_split(np.arange(y_true.size), 7):
        counts.update(y_true[part], y_pred[part], {"gender": gender[part], "region": region[part]})
    return counts


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-15, nan_ok=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_slice_metric_equals_fairlearns_metric_frame(seed: int) -> None:
    y_true, y_pred, gender, region = synthetic(seed)
    counts = counted(y_true, y_pred, gender, region)
    frame = fm.MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=gender)
    ours = counts.by_slice(["gender"])
    assert [key[0][1] for key in ours] == frame.by_group.index.tolist() == ["F", "M", "X"]
    for ((_, value),), slice_counts in ours.items():
        for name, metric in OURS.items():
            assert metric(slice_counts) == approx(frame.by_group.loc[value, name]), (value, name)
    for name, metric in OURS.items():
        assert metric(counts.overall) == approx(frame.overall[name]), name
    selection = frame.by_group["selection_rate"]
    assert selection["X"] < selection["F"] / 2  # the data do have a slice far apart


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intersectional_slices_equal_metric_frame_with_two_sensitive_features(seed: int) -> None:
    y_true, y_pred, gender, region = synthetic(seed)
    counts = counted(y_true, y_pred, gender, region)
    features = pd.DataFrame({"gender": gender, "region": region})
    frame = fm.MetricFrame(metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=features)
    observed = frame.by_group[frame.by_group["count"] > 0]
    ours = counts.by_slice(["gender", "region"])
    assert sorted((g, r) for ((_, g), (_, r)) in ours) == sorted(observed.index.tolist())
    for ((_, g), (_, r)), slice_counts in ours.items():
        for name, metric in OURS.items():
            assert metric(slice_counts) == approx(observed.loc[(g, r), name]), (g, r, name)
    for ours_fn, theirs_fn in PARITY:
        for method in METHODS:
            theirs = theirs_fn(y_true, y_pred, sensitive_features=features, method=method)
            assert ours_fn(counts, ["gender", "region"], method=method) == approx(theirs), (ours_fn, method)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("ours", "theirs"), PARITY)
def test_parity_equals_fairlearn(seed: int, method: str, ours: object, theirs: object) -> None:
    y_true, y_pred, gender, region = synthetic(seed)
    counts = counted(y_true, y_pred, gender, region)
    for key, feature in (("gender", gender), ("region", region)):
        assert ours(counts, key, method=method) == approx(
            theirs(y_true, y_pred, sensitive_features=feature, method=method)
        )
    if "odds" in ours.__name__:
        mean = theirs(y_true, y_pred, sensitive_features=gender, method=method, agg="mean")
        assert ours(counts, "gender", method=method, agg="mean") == approx(mean)


@pytest.mark.parametrize("method", METHODS)
def test_equal_opportunity_is_the_metric_frames_tpr_difference(method: str) -> None:
    y_true, y_pred, gender, region = synthetic(3)
    counts = counted(y_true, y_pred, gender, region)
    frame = fm.MetricFrame(metrics=recall_score, y_true=y_true, y_pred=y_pred, sensitive_features=gender)
    assert equal_opportunity_difference(counts, "gender", method=method) == approx(frame.difference(method=method))
    assert equal_opportunity_ratio(counts, "gender", method=method) == approx(frame.ratio(method=method))


def test_rows_missing_a_segment_are_left_out_as_fairlearn_would_be_given_the_rest() -> None:
    y_true, y_pred, gender, region = synthetic(4)
    gender = gender.copy()
    gender[np.random.default_rng(4).random(gender.size) < 0.15] = None
    counts = counted(y_true, y_pred, gender, region)
    known = np.not_equal(gender, None)
    assert counts.total("gender").n == known.sum() < counts.overall.n
    for ours, theirs in PARITY:
        for method in METHODS:
            expected = theirs(y_true[known], y_pred[known], sensitive_features=gender[known], method=method)
            assert ours(counts, "gender", method=method) == approx(expected)


def test_reference_group_compares_each_slice_with_one_group() -> None:
    y_true, y_pred, gender, region = synthetic(5)
    counts = counted(y_true, y_pred, gender, region)
    by_gender = {key[0][1]: c for key, c in counts.by_slice("gender").items()}
    rates = {g: c.selection_rate for g, c in by_gender.items()}
    assert demographic_parity_difference(counts, "gender", reference_group="M") == max(
        abs(r - rates["M"]) for r in rates.values()
    )
    assert demographic_parity_ratio(counts, "gender", reference_group="M") == min(
        min(r / rates["M"], rates["M"] / r) for r in rates.values()
    )
    tprs, fprs = ({g: getattr(c, m) for g, c in by_gender.items()} for m in ("tpr", "fpr"))
    assert equalized_odds_difference(counts, "gender", reference_group="F") == max(
        *(abs(t - tprs["F"]) for t in tprs.values()), *(abs(f - fprs["F"]) for f in fprs.values())
    )
    assert equal_opportunity_difference(counts, ["gender", "region"], reference_group=("F", "north")) >= 0
    with pytest.raises(KeyError, match="no slice"):
        demographic_parity_ratio(counts, "gender", reference_group="Z")
    with pytest.raises(ValueError, match="not both"):
        demographic_parity_ratio(counts, "gender", method="to_overall", reference_group="F")
    with pytest.raises(ValueError, match="method must be"):
        demographic_parity_ratio(counts, "gender", method="pairwise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="agg must be"):
        equalized_odds_ratio(counts, "gender", agg="median")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="not tracked"):
        demographic_parity_ratio(counts, "age")


def test_four_fifths_rule_and_small_slices() -> None:
    y_true, y_pred, gender, region = synthetic(6)
    counts = counted(y_true, y_pred, gender, region)
    assert not four_fifths_rule(counts, "gender")  # gender X is selected far less often
    assert four_fifths_rule(counts, "gender") == (
        fm.demographic_parity_ratio(y_true, y_pred, sensitive_features=gender) >= FOUR_FIFTHS
    )
    fair = ConfusionCounts([["gender"]])
    fair.update(np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0]), {"gender": np.array(["F", "F", "M", "M"])})
    assert four_fifths_rule(fair, "gender")
    assert not four_fifths_rule(ConfusionCounts([["gender"]]), "gender")  # nothing counted: no evidence
    # A slice of one row, selected, dominates the spread, unless min_samples leaves it out.
    fair.update(np.array([1]), np.array([1]), {"gender": np.array(["Y"])})
    assert demographic_parity_difference(fair, "gender") == 0.5
    assert demographic_parity_difference(fair, "gender", min_samples=2) == 0.0
    assert math.isnan(demographic_parity_difference(fair, "gender", min_samples=3))  # no slice left


def test_nan_rates_are_skipped_and_empty_comparisons_are_nan() -> None:
    counts = ConfusionCounts([["g"]])
    # Group b has no positives: its TPR is NaN and takes no part; its FPR does.
    counts.update(np.array([1, 1, 0, 0, 0]), np.array([1, 0, 1, 0, 1]), {"g": np.array(["a", "a", "a", "b", "b"])})
    assert equal_opportunity_difference(counts, "g") == 0.0
    assert equalized_odds_difference(counts, "g") == 0.5  # FPR a: 1/1, b: 1/2
    assert math.isnan(equal_opportunity_difference(ConfusionCounts([["g"]]), "g"))
    assert math.isnan(equalized_odds_ratio(ConfusionCounts([["g"]]), "g", method="to_overall"))
    zero = ConfusionCounts([["g"]])
    zero.update(np.array([0, 0]), np.array([0, 0]), {"g": np.array(["a", "b"])})
    assert math.isnan(demographic_parity_ratio(zero, "g"))  # 0 / 0, as in fairlearn
    assert math.isnan(demographic_parity_ratio(zero, "g", method="to_overall"))


@given(st.integers(0, 300), st.integers(0, 300), st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]))
def test_wilson_is_scipys_binomtest_interval_to_the_last_bit(k: int, extra: int, confidence: float) -> None:
    n = k + extra
    if n == 0:
        assert all(math.isnan(x) for x in wilson_interval(0, 0, confidence))
        return
    reference = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson_interval(k, n, confidence) == (reference.low, reference.high)


@pytest.mark.parametrize(("k", "n"), [(1, 1), (3, 10), (50, 100), (7, 1000), (999, 1000), (0, 5), (5, 5)])
def test_wilson_follows_the_textbook_formula(k: int, n: int) -> None:
    z, p = norm.ppf(0.975), k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(max(centre - half, 0.0), rel=1e-12, abs=1e-15)
    assert high == pytest.approx(min(centre + half, 1.0), rel=1e-12, abs=1e-15)
    assert low <= p <= high


def test_wilson_rejects_impossible_counts() -> None:
    for k, n in ((3, 2), (-1, 2)):
        with pytest.raises(ValueError, match="successes <= trials"):
            wilson_interval(k, n)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1.0)


def test_slice_reports_keep_slices_with_enough_rows() -> None:
    y_true, y_pred, gender, region = synthetic(7, n=400)
    counts = counted(y_true, y_pred, gender, region)
    reports = slice_reports(counts, min_samples=30, confidence=0.9)
    every = counts.by_slice()
    assert [r.slice for r in reports] == [key for key, c in every.items() if c.n >= 30]
    assert len(reports) < len(every)  # some gender X by region slices are too small
    assert [r.slice for r in slice_reports(counts, ["gender"], min_samples=0)] == list(counts.by_slice("gender"))
    for report in reports:
        c = every[report.slice]
        assert report.count == c.n
        for name, successes, trials in (
            ("selection_rate", c.tp + c.fp, c.n),
            ("tpr", c.tp, c.tp + c.fn),
            ("fpr", c.fp, c.fp + c.tn),
            ("fnr", c.fn, c.tp + c.fn),
            ("precision", c.tp, c.tp + c.fp),
            ("accuracy", c.tp + c.tn, c.n),
        ):
            rate = getattr(report, name)
            assert rate == Proportion(successes, trials, successes / trials, *wilson_interval(successes, trials, 0.9))
            assert rate.value == getattr(c, name)
            assert rate.low <= rate.value <= rate.high


def test_a_slice_without_positives_reports_nan_rates() -> None:
    report = SliceReport.of((), Counts(tn=30, fp=10))
    assert report.count == 40 and report.fpr.value == 0.25
    assert all(math.isnan(x) for x in (report.tpr.value, report.tpr.low, report.tpr.high))
    assert report.precision == Proportion(0, 10, 0.0, 0.0, report.precision.high)
