"""Delayed labels through the pipeline: performance and fairness equal scikit-learn's and fairlearn's."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

from streamwatch.clock import now_ms
from streamwatch.contract.encode import Encoder
from streamwatch.core.join import Prediction
from streamwatch.core.performance import PerformanceAggregates
from streamwatch.pipeline.pipeline import Pipeline

START = 1_795_000_020_000 - 1_795_000_020_000 % 60_000
N = 2_000


def scenario() -> tuple[list[bytes], list[bytes], dict[str, np.ndarray]]:
    rng = np.random.default_rng(9)
    gender = rng.choice(["F", "M"], N)
    score = np.round(rng.random(N), 2)  # scores on the histogram's grid: AUC from bins is exact
    y_true = (rng.random(N) < np.where(gender == "F", 0.3, 0.5)) | (score > 0.9)
    y_pred = score >= 0.5
    encoder = Encoder(clock_ms=now_ms)
    predictions = [
        encoder.prediction(
            "credit",
            "3",
            f"r{i}",
            5.0,
            {"x": 1.0},
            int(y_pred[i]),
            float(score[i]),
            "production",
            "ok",
            None,
            {"gender": str(gender[i])},
            None,
            START + i * 100,
            None,
        )
        for i in range(N)
    ]
    labels = [
        encoder.label(model="credit", request_id=f"r{i}", label=int(y_true[i]), timestamp=START + 3_600_000 + i)
        for i in range(N)
    ]
    return predictions, labels, {"gender": gender, "score": score, "y_true": y_true, "y_pred": y_pred}


def latest(rows):  # type: ignore[no-untyped-def]
    out = {}
    for row in rows:
        out[row.window_start_ms, row.metric, row.segment] = row
    return out


def test_figures_equal_the_reference_libraries() -> None:
    predictions, labels, truth = scenario()
    pipeline = Pipeline({}, window_ms=60_000, slices={"credit": [["gender"]]})
    rows = []
    for chunk in range(0, N, 500):  # predictions first, then labels an hour later, in batches
        rows += pipeline.process(predictions[chunk : chunk + 500]).rows
    for chunk in range(0, N, 300):
        out = pipeline.process(labels[chunk : chunk + 300])
        rows += out.rows
    rows += pipeline.flush().rows  # the end of the stream reports what the last labels changed
    assert pipeline.join.matched_predictions == N
    figures = latest(rows)
    first = slice(0, 600)  # the first window holds predictions 0..599
    y_true, y_pred, score, gender = (truth[k][first] for k in ("y_true", "y_pred", "score", "gender"))

    def value(metric, segment=()):  # type: ignore[no-untyped-def]
        return figures[START, metric, segment].value

    assert value("labelled") == 600
    assert value("accuracy") == pytest.approx(accuracy_score(y_true, y_pred), rel=1e-12)
    assert value("precision") == pytest.approx(precision_score(y_true, y_pred), rel=1e-12)
    assert value("recall") == pytest.approx(recall_score(y_true, y_pred), rel=1e-12)
    assert value("f1") == pytest.approx(f1_score(y_true, y_pred), rel=1e-12)
    assert value("roc_auc") == pytest.approx(roc_auc_score(y_true, score), rel=1e-12)
    assert value("log_loss") == pytest.approx(log_loss(y_true, score), abs=1e-6)
    frame = MetricFrame(
        metrics={"selection_rate": lambda t, p: p.mean(), "tpr": recall_score},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=gender,
    )
    for group in ("F", "M"):
        row = figures[START, "selection_rate", (("gender", group),)]
        assert row.value == pytest.approx(frame.by_group.loc[group, "selection_rate"], rel=1e-12)
        assert row.lower < row.value < row.upper
        assert value("tpr", (("gender", group),)) == pytest.approx(frame.by_group.loc[group, "tpr"], rel=1e-12)
    parity = (("gender", "*"),)
    assert value("demographic_parity_difference", parity) == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=gender), rel=1e-12
    )
    assert value("equalized_odds_difference", parity) == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=gender), rel=1e-12
    )


def test_performance_partials_merge_exactly() -> None:
    rng = np.random.default_rng(3)
    matches = [
        (
            Prediction(i, "3", "production", int(rng.random() < 0.5), float(rng.random()), (("gender", "FM"[i % 2]),)),
            int(rng.random() < 0.4),
        )
        for i in range(500)
    ]
    whole, left, right = (PerformanceAggregates([["gender"]]) for _ in range(3))
    whole.update(matches)
    left.update(matches[:137])
    right.update(matches[137:])
    merged = copy.deepcopy(left)
    merged.merge(right)
    assert merged.confusion == whole.confusion and merged.scores == whole.scores
    assert merged.log_loss == whole.log_loss
    assert merged.metrics() == whole.metrics()


def test_labels_before_predictions_and_unlabelled_are_counted() -> None:
    predictions, labels, _ = scenario()
    pipeline = Pipeline({}, label_horizon_ms=3_600_000 + 60_000)
    pipeline.process(labels[:10])  # ten labels come first
    out = pipeline.process(predictions[:20])
    assert out.labels_matched == 10 and pipeline.join.early_labels == 10
    pipeline.process([Encoder(clock_ms=now_ms).label(model="credit", request_id="nobody", label=1, timestamp=START)])
    assert pipeline.join.pending_labels == 1


def test_a_slice_below_four_fifths_is_a_fairness_finding() -> None:
    rng = np.random.default_rng(12)
    encoder = Encoder(clock_ms=now_ms)
    predictions, labels = [], []
    for i in range(4_000):  # 2,000 a slice: enough for the test at the false-alert budget's rate
        group = "AB"[i % 2]
        selected = rng.random() < (0.5 if group == "A" else 0.3)  # B is selected at 60% of A's rate
        predictions.append(
            encoder.prediction(
                "credit",
                "3",
                f"r{i}",
                5.0,
                None,
                int(selected),
                None,
                "production",
                "ok",
                None,
                {"group": group},
                None,
                START + i * 12,
                None,
            )
        )
        labels.append(
            encoder.label(
                model="credit", request_id=f"r{i}", label=int(rng.random() < 0.4), timestamp=START + i * 12 + 1_000
            )
        )
    pipeline = Pipeline({}, slices={"credit": [["group"]]})
    pipeline.process(predictions + labels)
    findings = [f for f in pipeline.flush().findings if f.kind == "fairness"]
    assert len(findings) == 1
    [finding] = findings
    assert finding.segment == (("group", "B"),) and 0.5 < finding.value < 0.7 and finding.threshold == 0.8
    assert finding.evidence["highest_slice"] == {"group": "A"}


def test_regression_errors_equal_numpy_and_merge_exactly() -> None:
    rng = np.random.default_rng(5)
    predicted, actual = rng.normal(100, 20, 900), rng.normal(100, 20, 900)
    encoder = Encoder(clock_ms=now_ms)
    raws = [
        encoder.prediction(
            "price",
            "1",
            f"r{i}",
            5.0,
            None,
            float(predicted[i]),
            None,
            "production",
            "ok",
            None,
            None,
            None,
            START + i * 50,
            None,
        )
        for i in range(900)
    ]
    raws += [
        encoder.label(model="price", request_id=f"r{i}", label=float(actual[i]), timestamp=START + 10**6)
        for i in range(900)
    ]
    pipeline = Pipeline({}, tasks={"price": "regression"})
    pipeline.process(raws)
    figures = {
        (r.window_start_ms, r.metric): r.value
        for r in pipeline.flush().rows
        if r.metric in ("mae", "rmse", "bias", "labelled")
    }
    first = slice(0, 1200)  # 50 ms apart: the first one-minute window holds all 900
    errors = predicted[first] - actual[first]
    assert figures[START, "labelled"] == 900
    assert figures[START, "mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-9)
    assert figures[START, "rmse"] == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-9)
    assert figures[START, "bias"] == pytest.approx(errors.mean(), rel=1e-6, abs=1e-9)
    from streamwatch.core.join import Prediction
    from streamwatch.core.performance import RegressionAggregates

    pairs = [(Prediction(i, "1", "production", float(predicted[i])), float(actual[i])) for i in range(900)]
    whole, left, right = RegressionAggregates(), RegressionAggregates(), RegressionAggregates()
    whole.update(pairs)
    left.update(pairs[:300])
    right.update(pairs[300:])
    left.merge(right)
    assert left.metrics() == whole.metrics()


@pytest.mark.parametrize("big", [1e300, -1e300, 1.7e308, float(2**63)])
def test_extreme_valid_regression_values_are_measured_not_crashed_on(big: float) -> None:
    # A prediction of 1e300 is valid under the contract: it once raised OverflowError in the stage,
    # and a worker whose stage raises never advances its offsets (a crash loop).
    from streamwatch.core.join import Prediction
    from streamwatch.core.performance import RegressionAggregates

    pairs = [(Prediction(i, "1", "production", big if i % 2 else 0.0), -big if i % 3 else 1.0) for i in range(60)]
    whole, left, right = RegressionAggregates(), RegressionAggregates(), RegressionAggregates()
    whole.update(pairs)
    left.update(pairs[:25])
    right.update(pairs[25:])
    left.merge(right)
    assert left.metrics() == whole.metrics()  # still exactly mergeable
    figures = {metric: value for metric, value, _, _ in whole.metrics()}
    with np.errstate(over="ignore"):  # numpy's own differences may overflow: that is the point
        errors = [float(np.float64(p.prediction) - np.float64(a)) for p, a in pairs]
    finite = all(np.isfinite(errors))
    assert figures["labelled"] == 60
    if finite:
        assert figures["mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-9)
    else:  # the errors themselves are past a float's range: the mean says so instead of raising
        assert figures["mae"] == np.inf and figures["rmse"] == np.inf
