"""Reference profiles: built from columns, checked against numpy, and round-tripped through JSON."""

from __future__ import annotations

import numpy as np
import pytest

from streamwatch.core import NumericHistogram, bin_edges, ks
from streamwatch.profiles.model import Lineage, ReferenceProfile, build_profile

LINEAGE = Lineage(
    model="credit-risk",
    model_version="3.1.0",
    data_uri="s3://ml/train.parquet",
    rows=5000,
    content_sha256="a" * 64,
    created_at="2026-11-23T10:00:00Z",
    streamwatch_version="0.1.0",
)


def training_set(rows: int = 5000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    income = rng.lognormal(10.8, 0.5, rows)
    income[rng.random(rows) < 0.02] = np.nan
    gender = rng.choice(np.array(["F", "M"], dtype=object), rows)
    score = rng.random(rows)
    return {
        "income": income,
        "age": rng.integers(18, 80, rows).astype(float),
        "employment": rng.choice(np.array(["salaried", "self-employed", "retired", None], dtype=object), rows),
        "zip": np.array([f"z{n}" for n in rng.integers(0, 5000, rows)], dtype=object),
        "gender": gender,
        "score": score,
        "prediction": (score > 0.5).astype(float),
        "label": ((score + rng.normal(0, 0.2, rows) > 0.5) | (gender == "F") & (rng.random(rows) < 0.1)).astype(float),
    }


def test_profile_matches_numpy() -> None:
    data = training_set()
    profile = build_profile(
        data,
        lineage=LINEAGE,
        label_column="label",
        score_column="score",
        prediction_column="prediction",
        segments=["gender"],
        max_categories=100,
    )
    income = profile.features["income"]
    present = data["income"][~np.isnan(data["income"])]
    assert income.edges == bin_edges(present).tolist()
    histogram = NumericHistogram(income.edges)
    histogram.update(data["income"])
    assert income.counts == histogram.counts.tolist() and income.missing == int(np.isnan(data["income"]).sum())
    assert (income.min, income.max) == (present.min(), present.max())
    assert income.mean == pytest.approx(present.mean()) and income.std == pytest.approx(present.std())

    age = profile.features["age"]
    assert age.edges == np.unique(data["age"]).tolist()  # few distinct values: one bin each, exact statistics

    employment = profile.features["employment"]
    values = [v for v in data["employment"] if v is not None]
    assert employment.kind == "categorical" and employment.count == len(values)
    assert dict(zip(employment.categories, employment.counts, strict=False)) == {
        c: values.count(c) for c in set(values)
    }
    zips = profile.features["zip"]
    assert len(zips.categories) == 100 and zips.distinct == len(set(data["zip"]))
    assert sum(zips.counts) == 5000 and zips.counts[-1] > 0  # the tail is counted as other

    assert set(profile.features) == {"income", "age", "employment", "zip"}
    assert profile.score is not None and profile.score.count == 5000
    assert profile.label is not None and profile.label.kind == "numeric"
    rates = {s.value: s for s in profile.slices}
    for value in ("F", "M"):
        mask = data["gender"] == value
        assert rates[value].count == mask.sum()
        assert rates[value].label_positive_rate == pytest.approx(data["label"][mask].mean())
        assert rates[value].prediction_positive_rate == pytest.approx(data["prediction"][mask].mean())
        assert rates[value].mean_score == pytest.approx(data["score"][mask].mean())


def test_profile_round_trips_and_rebuilds_its_aggregates() -> None:
    data = training_set(500)
    profile = build_profile(data, lineage=LINEAGE, label_column="label", segments=["gender"])
    again = ReferenceProfile.model_validate_json(profile.model_dump_json())
    assert again == profile
    reference = again.features["income"].histogram()
    same = NumericHistogram(reference.edges)
    same.update(data["income"])
    assert reference == same and ks(reference, same)[0] == 0.0
    assert again.features["employment"].category_counts().counts.tolist() == again.features["employment"].counts


def test_missing_columns_and_bad_scores_are_named() -> None:
    with pytest.raises(KeyError, match="column not in the data: region"):
        build_profile(training_set(10), lineage=LINEAGE, label_column="label", segments=["region", "label"])
    with pytest.raises(ValueError, match="score column 'gender' must be numeric"):
        build_profile(training_set(10), lineage=LINEAGE, score_column="gender")
