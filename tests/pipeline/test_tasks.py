"""Each task scored as what it is: a multiclass model's figures equal scikit-learn's on the stream the
pipeline saw, a regression's predicted values drift like a feature, and a task that disagrees with its
profile is refused with one line."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from streamwatch.clock import now_ms
from streamwatch.config.settings import Settings
from streamwatch.contract.encode import Encoder
from streamwatch.core.multiclass import MulticlassAggregates
from streamwatch.errors import ConfigError
from streamwatch.pipeline.from_settings import pipeline_from_settings
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import Lineage, build_profile
from tests.pipeline.test_pipeline import START

CLASSES = ["cat", "dog", "cow"]


def lineage(model: str) -> Lineage:
    return Lineage(
        model=model,
        model_version="1",
        data_uri="train.parquet",
        rows=3000,
        content_sha256="a" * 64,
        created_at="2026-11-23T00:00:00Z",
        streamwatch_version="0.1.0",
    )


def multiclass_profile():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    label = rng.choice(np.array(CLASSES, dtype=object), 3000, p=[0.5, 0.3, 0.2])
    return build_profile(
        {
            "x": rng.normal(0, 1, 3000),
            "label": label,
            "prediction": np.where(rng.random(3000) < 0.8, label, "cat").astype(object),
            "gender": rng.choice(np.array(["F", "M"], dtype=object), 3000),
        },
        lineage=lineage("zoo"),
        label_column="label",
        prediction_column="prediction",
        segments=["gender"],
    )


def multiclass_stream(minutes: int = 2, per_minute: int = 300) -> tuple[list[bytes], list[tuple[str, str, str]]]:
    """Predictions, then every label a little later; the cow class gets confused with dog for gender=F."""
    rng = np.random.default_rng(4)
    encoder = Encoder(clock_ms=now_ms)
    raws: list[tuple[int, bytes]] = []
    truth: list[tuple[str, str, str]] = []
    for minute in range(minutes):
        for i in range(per_minute):
            at = START + minute * 60_000 + i * (60_000 // per_minute)
            actual = str(rng.choice(CLASSES, p=[0.5, 0.3, 0.2]))
            gender = "FM"[i % 2]
            predicted = actual if rng.random() < 0.8 else str(rng.choice(CLASSES))
            if actual == "cow" and gender == "F" and rng.random() < 0.5:
                predicted = "dog"
            request = f"q{minute}-{i}"
            raws.append(
                (
                    at,
                    encoder.prediction(
                        "zoo",
                        "1",
                        request,
                        12.0,
                        {"x": float(rng.normal())},
                        predicted,
                        None,
                        "production",
                        "ok",
                        None,
                        {"gender": gender},
                        None,
                        at,
                        None,
                    ),
                )
            )
            raws.append(
                (at + 5_000, encoder.label(model="zoo", request_id=request, label=actual, timestamp=at + 5_000))
            )
            truth.append((actual, predicted, gender))
    raws.sort(key=lambda pair: pair[0])
    return [raw for _, raw in raws], truth


def test_a_profile_states_its_task_inferred_from_the_label_and_lists_the_classes() -> None:
    profile = multiclass_profile()
    assert profile.task == "multiclass_classification" and profile.classes == CLASSES
    assert profile.calibration is None  # estimation is for binary classifiers


def test_a_multiclass_models_figures_per_window_and_slice_equal_scikit_learn() -> None:
    profile = multiclass_profile()
    pipeline = Pipeline({("zoo", "1"): profile}, slices={"zoo": [["gender"]]}, min_samples=5)
    raws, truth = multiclass_stream()
    out = pipeline.process(raws)
    flushed = pipeline.flush()
    rows: dict[Any, float] = {}
    for row in out.rows + flushed.rows:
        if row.window == "tumbling" and row.variant == "production":
            rows[row.window_start_ms, row.metric, row.segment, row.feature] = row.value
    assert isinstance(pipeline.new_performance(("zoo", "1", "production")), MulticlassAggregates)
    per_minute = len(truth) // 2
    for minute in range(2):
        start = START + minute * 60_000
        window = truth[minute * per_minute : (minute + 1) * per_minute]
        for segment, chosen in (((), window), ((("gender", "F"),), [t for t in window if t[2] == "F"])):
            y_true = [a for a, _, _ in chosen]
            y_pred = [p for _, p, _ in chosen]
            assert rows[start, "accuracy", segment, None] == pytest.approx(accuracy_score(y_true, y_pred))
            assert rows[start, "macro_f1", segment, None] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
            assert rows[start, "micro_f1", segment, None] == pytest.approx(f1_score(y_true, y_pred, average="micro"))
            labels = sorted(set(y_true) | set(y_pred))
            precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels)
            for i, label in enumerate(labels):
                assert rows[start, "class_precision", segment, label] == pytest.approx(precision[i])
                assert rows[start, "class_recall", segment, label] == pytest.approx(recall[i])
                assert rows[start, "class_f1", segment, label] == pytest.approx(f1[i])
                assert rows[start, "class_support", segment, label] == support[i]
            matrix = confusion_matrix(y_true, y_pred, labels=labels)
            for i, actual in enumerate(labels):
                for j, predicted in enumerate(labels):
                    cell = rows.get((start, "confusion", segment, json.dumps([actual, predicted])), 0)
                    assert cell == matrix[i, j]
    # Never scored as binary: no ROC AUC or positive rate of a "positive" class.
    assert not any(metric in ("roc_auc", "positive_rate", "estimated_accuracy") for _, metric, _, _ in rows)
    # The predicted class drifts like a feature; fairness per class, one versus the rest.
    assert any(feature == "__prediction__" for _, _, _, feature in rows)
    assert rows[START, "fnr", (("gender", "F"),), "cow"] > rows[START, "fnr", (("gender", "M"),), "cow"]


def test_a_regression_models_predicted_values_drift_like_a_feature() -> None:
    rng = np.random.default_rng(5)
    profile = build_profile(
        {"x": rng.normal(0, 1, 5000), "y": rng.normal(10, 2, 5000), "yhat": rng.normal(10, 2, 5000)},
        lineage=lineage("price"),
        label_column="y",
        prediction_column="yhat",
    )
    assert profile.task == "regression" and profile.calibration is None
    encoder = Encoder(clock_ms=now_ms)
    raws = [
        encoder.prediction("price", "1", f"p{i}", 5.0, {"x": 0.1}, float(rng.normal(14, 2)), None, timestamp=START + i)
        for i in range(400)
    ]
    pipeline = Pipeline({("price", "1"): profile}, tasks={"price": "regression"})
    out = pipeline.process(raws)
    flushed = pipeline.flush()
    out.rows += flushed.rows
    out.findings += flushed.findings
    drift = {(r.metric, r.feature) for r in out.rows}
    assert ("psi", "__prediction__") in drift
    assert any(f.feature == "__prediction__" and f.kind == "drift" for f in out.findings)  # predictions moved 2 sd


def test_a_task_that_disagrees_with_the_profile_is_refused_in_one_line() -> None:
    profile = multiclass_profile()
    settings = Settings(models=[{"name": "zoo", "task": "binary_classification"}])
    with pytest.raises(ConfigError) as caught:
        pipeline_from_settings(settings, {("zoo", "1"): profile})
    assert str(caught.value) == (
        "invalid setting models['zoo'].task: binary_classification, but its reference profile states "
        "multiclass_classification"
    )
    # Not configured: the profile's task is the model's.
    pipeline = pipeline_from_settings(Settings(models=[{"name": "zoo"}]), {("zoo", "1"): profile})
    assert isinstance(pipeline.new_performance(("zoo", "1", "production")), MulticlassAggregates)


def test_an_unknown_task_is_refused_at_profile_time() -> None:
    with pytest.raises(ValueError, match="task 'ranking' is not one of binary_classification"):
        build_profile(
            {"x": np.zeros(3), "y": np.array([0, 1, 1])}, lineage=lineage("m"), label_column="y", task="ranking"
        )
