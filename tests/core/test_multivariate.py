"""Multivariate drift by PCA reconstruction: scikit-learn's numbers, exact merges, and a change only it sees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.stats import ks_2samp
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from streamwatch.core import NumericHistogram, bin_edges
from streamwatch.core.multivariate import (
    COUNTS_FIELDS,
    MAX_ERROR,
    ReconstructionCounts,
    ReconstructionModel,
    fit_reconstruction,
    reconstruction_threshold,
)


def _sklearn_errors(reference: np.ndarray, rows: np.ndarray, share: float) -> tuple[int, np.ndarray, np.ndarray]:
    """NannyML's pipeline in scikit-learn: mean imputation, standard scaling, PCA, inverse transform."""
    imputer = SimpleImputer(strategy="mean").fit(reference)
    scaler = StandardScaler().fit(imputer.transform(reference))
    pca = PCA(n_components=share, svd_solver="full").fit(scaler.transform(imputer.transform(reference)))

    def errors(data: np.ndarray) -> np.ndarray:
        z = scaler.transform(imputer.transform(data))
        return np.asarray(np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1))

    return int(pca.n_components_), errors(reference), errors(rows)


def _correlated(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    return rng.normal(size=(rows, columns)) @ rng.normal(size=(columns, columns)) * rng.uniform(0.1, 10, columns) + 3


@pytest.mark.parametrize(("rows", "columns", "share"), [(300, 4, 0.65), (1000, 8, 0.65), (200, 12, 0.9), (500, 6, 0.4)])
def test_pca_and_reconstruction_equal_scikit_learns(rows: int, columns: int, share: float) -> None:
    rng = np.random.default_rng(rows + columns)
    reference, window = _correlated(rng, rows, columns), _correlated(rng, 50, columns)
    model, reference_errors = fit_reconstruction(reference, variance_share=share, held_out_folds=0)
    kept, expected_reference, expected_window = _sklearn_errors(reference, window, share)
    assert model.components.shape == (kept, columns)
    np.testing.assert_allclose(reference_errors, expected_reference, rtol=1e-9, atol=1e-9)
    window_errors, imputed = model.errors(window)
    np.testing.assert_allclose(window_errors, expected_window, rtol=1e-9, atol=1e-9)
    assert imputed == 0
    # Orthonormal components, each with its largest entry positive (the deterministic sign).
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(kept), atol=1e-12)
    largest = model.components[np.arange(kept), np.abs(model.components).argmax(axis=1)]
    assert np.all(largest > 0)


def test_missing_values_are_imputed_with_the_reference_mean_and_counted() -> None:
    rng = np.random.default_rng(7)
    reference, window = _correlated(rng, 600, 5), _correlated(rng, 40, 5)
    reference[rng.random(reference.shape) < 0.1] = np.nan
    window[rng.random(window.shape) < 0.2] = np.nan
    model, reference_errors = fit_reconstruction(reference, held_out_folds=0)
    kept, expected_reference, expected_window = _sklearn_errors(reference, window, 0.65)
    assert model.components.shape[0] == kept
    np.testing.assert_allclose(reference_errors, expected_reference, rtol=1e-9, atol=1e-9)
    errors, imputed = model.errors(window)
    np.testing.assert_allclose(errors, expected_window, rtol=1e-9, atol=1e-9)
    assert imputed == int(np.isnan(window).sum()) > 0
    np.testing.assert_allclose(model.means[:5], np.nanmean(reference, axis=0), rtol=1e-12)

    # Imputed with the mean: 0 once standardised, so a row missing everything sits at the centre, error 0.
    encoded, per_row = model.encode(np.array([[np.nan] * 5, [np.inf, 1.0, np.nan, -np.inf, 2.0]]))
    assert encoded[0].tolist() == [0.0] * 5 and per_row.tolist() == [5, 3]
    assert encoded[1, [0, 2, 3]].tolist() == [0.0, 0.0, 0.0]  # an infinite value is imputed too
    assert model.errors(np.full((3, 5), np.nan)) == (pytest.approx([0.0, 0.0, 0.0]), 15)


def test_a_categorical_column_is_one_hot_on_its_most_frequent_categories() -> None:
    rng = np.random.default_rng(11)
    rows = 2000
    # "b" and "a" tie for third place: the name breaks the tie, so "a" is kept and "b" is not.
    names = np.array(["x"] * 700 + ["y"] * 500 + ["b"] * 200 + ["a"] * 200 + ["z"] * 150 + [None] * 250, dtype=object)
    rng.shuffle(names)
    amount = rng.normal(size=rows) + np.where(names == "x", 2.0, 0.0)
    model, reference_errors = fit_reconstruction(amount[:, None], [names], max_categories=3, held_out_folds=0)
    assert model.categories == [["x", "y", "a"]] and model.numeric == 1 and model.width == 4

    def one_hot(values: np.ndarray) -> np.ndarray:
        return np.column_stack([values == name for name in ("x", "y", "a")]).astype(float)

    expanded = np.column_stack([amount, one_hot(names)])
    window_names = np.array(["x", "b", None, "new", "a", "y"], dtype=object)
    window_amount = rng.normal(size=6)
    kept, expected_reference, expected_window = _sklearn_errors(
        expanded, np.column_stack([window_amount, one_hot(window_names)]), 0.65
    )
    assert model.components.shape[0] == kept
    np.testing.assert_allclose(reference_errors, expected_reference, rtol=1e-9, atol=1e-9)
    errors, imputed = model.errors(window_amount[:, None], [window_names])
    np.testing.assert_allclose(errors, expected_window, rtol=1e-9, atol=1e-9)
    assert imputed == 0  # a missing category sets no indicator; it is not imputed

    # Other, unseen and missing values (None or NaN) all set no indicator; values compare as strings.
    encoded, _ = model.encode(np.zeros((4, 1)), [np.array(["b", "new", None, float("nan")], dtype=object)])
    assert np.array_equal(encoded[:, 1:], np.tile(encoded[0, 1:], (4, 1)))
    numbers, _ = fit_reconstruction(np.zeros((4, 1)), [[1, 2, 2, None]])
    assert numbers.categories == [["2", "1"]]
    encoded, _ = numbers.encode(np.zeros((2, 1)), [np.array(["2", 2], dtype=object)])
    assert np.array_equal(encoded[0], encoded[1])


def test_the_kept_components_leave_something_to_reconstruct() -> None:
    x = np.random.default_rng(2).normal(size=300)
    twins, errors = fit_reconstruction(np.column_stack([x, 2 * x]), variance_share=1.0)
    assert twins.components.shape == (1, 2) and np.allclose(errors, 0.0, atol=1e-9)  # at most width - 1
    single, errors = fit_reconstruction(x[:, None])
    assert single.components.shape == (1, 1) and np.allclose(errors, 0.0)
    constant, errors = fit_reconstruction(np.column_stack([x, np.full(300, 4.0)]))
    assert constant.scales[1] == 1.0 and constant.errors(np.array([[0.0, 5.0]]))[0][0] > 0


def test_reference_errors_are_held_out_by_default() -> None:
    rng = np.random.default_rng(6)
    reference = _correlated(rng, 400, 10)
    model, in_sample = fit_reconstruction(reference, held_out_folds=0)
    assert np.array_equal(in_sample, model.errors(reference)[0])
    same, held_out = fit_reconstruction(reference)
    assert same == model and held_out.shape == in_sample.shape
    assert held_out.mean() > in_sample.mean()  # the fit bends towards its own rows; held-out rows it cannot
    # Fold 0 (rows 0, 5, 10, ...) by the top components of the other folds (standardised as a whole, not
    # re-centred: the fold fit stands in for the model, which does not re-centre either).
    encoded, _ = model.encode(reference)
    kept = model.components.shape[0]
    others = np.linalg.svd(encoded[np.arange(400) % 5 != 0], full_matrices=False)[2][:kept]
    residual = encoded[::5] - encoded[::5] @ others.T @ others
    np.testing.assert_allclose(held_out[::5], np.linalg.norm(residual, axis=1), rtol=1e-9)
    assert np.array_equal(fit_reconstruction(reference)[1], held_out)  # deterministic
    with pytest.raises(ValueError, match="held_out_folds"):
        fit_reconstruction(reference, held_out_folds=1)


def _rho(rng: np.random.Generator, rows: int, rho: float) -> np.ndarray:
    first = rng.normal(size=rows)
    return np.column_stack([first, rho * first + np.sqrt(1 - rho * rho) * rng.normal(size=rows)])


def test_a_broken_correlation_drifts_where_each_feature_alone_does_not() -> None:
    rng = np.random.default_rng(20)
    reference_rows = _rho(rng, 20_000, 0.9)
    model, reference_errors = fit_reconstruction(reference_rows)
    reference = ReconstructionCounts(bin_edges(reference_errors))
    reference.update(reference_errors)
    for size in (100, 1000):
        window_rows = rng.normal(size=(size, 2))  # the same standard normal marginals, now independent
        for column in range(2):
            assert ks_2samp(reference_rows[:, column], window_rows[:, column]).pvalue > 0.01
        window = ReconstructionCounts(reference.histogram.edges)
        window.update(*model.errors(window_rows))
        assert window.mean > reconstruction_threshold(reference, size, alpha=0.001)


@pytest.mark.parametrize("size", [100, 1000])
def test_stationary_windows_cross_the_threshold_at_about_alpha(size: int) -> None:
    rng = np.random.default_rng(size)
    model, reference_errors = fit_reconstruction(_rho(rng, 20_000, 0.9))
    reference = ReconstructionCounts(bin_edges(reference_errors))
    reference.update(reference_errors)
    thresholds = {alpha: reconstruction_threshold(reference, size, alpha) for alpha in (0.01, 0.001)}
    crossings = dict.fromkeys(thresholds, 0)
    windows = 200
    errors, _ = model.errors(_rho(rng, windows * size, 0.9))
    for part in np.split(errors, windows):
        window = ReconstructionCounts(reference.histogram.edges)
        window.update(part)
        for alpha, threshold in thresholds.items():
            crossings[alpha] += window.mean > threshold
    assert crossings[0.01] <= 6  # 2 expected
    assert crossings[0.001] <= 2  # 0.2 expected


def test_the_threshold_matches_brute_force_resampling() -> None:
    rng = np.random.default_rng(4)
    errors = rng.chisquare(3, 20_000) ** 0.5  # what a three-dimensional residual of normal noise gives
    reference = ReconstructionCounts(bin_edges(errors))
    reference.update(errors)
    for size in (32, 512):
        effective = round(size * errors.size / (size + errors.size))
        means = errors[rng.integers(0, errors.size, size=(20_000, effective))].mean(axis=1)
        spread = means.std()
        for alpha in (0.01, 0.001):
            expected = np.quantile(means, 1 - alpha)
            for given_as in (errors, reference, reference.histogram):
                assert reconstruction_threshold(given_as, size, alpha) == pytest.approx(expected, abs=0.3 * spread)


def test_the_threshold_is_deterministic_and_tightens_with_size_and_loosens_with_smaller_alpha() -> None:
    errors = np.random.default_rng(5).lognormal(0.0, 0.5, 5000)
    first = reconstruction_threshold(errors, 256, 0.01)
    assert reconstruction_threshold(errors, 256, 0.01) == first
    assert reconstruction_threshold(errors, 256, 0.01, seed=1) != first
    sizes = [reconstruction_threshold(errors, size, 0.01) for size in (8, 64, 512, 4096)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] > errors.mean()
    alphas = [reconstruction_threshold(errors, 64, alpha) for alpha in (0.05, 0.01, 1e-3, 1e-4, 1e-6)]
    assert alphas == sorted(alphas)
    with pytest.raises(ValueError, match="alpha must lie in"):
        reconstruction_threshold(errors, 64, 0.0)
    with pytest.raises(ValueError, match="window_size must be at least 1"):
        reconstruction_threshold(errors, 0, 0.01)
    with pytest.raises(ValueError, match="at least one row"):
        reconstruction_threshold(NumericHistogram([0.0, 1.0]), 64, 0.01)


_errors = st.lists(
    st.one_of(
        st.floats(min_value=0.0, max_value=50.0),
        st.floats(min_value=0.0, max_value=1e12),
        st.sampled_from([0.0, 1e-10, 5e-10, np.inf, np.nan, MAX_ERROR]),
    ),
    max_size=60,
)


@given(_errors, st.lists(st.integers(0, 60), max_size=5), st.lists(st.integers(0, 9), min_size=6, max_size=6))
@example([0.1] * 7 + [1e12] * 3, [3, 6], [1, 2, 3, 0, 0, 0])
def test_counts_of_any_split_merge_to_the_whole(errors: list[float], cuts: list[int], imputed: list[int]) -> None:
    values = np.array(errors, dtype=float)
    edges = bin_edges([0.1, 0.5, 1.0, 2.0, 7.5, 30.0])
    whole = ReconstructionCounts(edges)
    whole.update(values, imputed=sum(imputed))
    parts = np.split(values, sorted(min(cut, values.size) for cut in cuts))
    merged = ReconstructionCounts(edges)
    for i, part in enumerate(parts):
        partial = ReconstructionCounts(edges)
        partial.update(part, imputed=imputed[i] if i < len(parts) - 1 else sum(imputed[i:]))
        merged.merge(partial.copy())
    assert merged == whole
    assert (merged.n, merged.imputed, merged.histogram.n) == (values.size, sum(imputed), values.size)
    if values.size:
        capped = np.minimum(np.nan_to_num(values, nan=MAX_ERROR, posinf=MAX_ERROR), MAX_ERROR)
        assert merged.mean == pytest.approx(float(capped.mean()), rel=1e-9, abs=1e-9)


def test_counts_keep_plain_attributes_and_refuse_other_edges() -> None:
    counts = ReconstructionCounts([0.0, 1.0])
    counts.update(np.array([0.1, 0.2]), imputed=2)
    assert tuple(counts.__dict__) == COUNTS_FIELDS
    assert counts.mean == 0.15 and counts.n == 2 and counts.imputed == 2
    copied = counts.copy()
    copied.update(np.array([5.0]))
    assert counts.n == 2 and copied != counts
    with pytest.raises(ValueError, match="different edges"):
        counts.merge(ReconstructionCounts([0.0, 2.0]))
    with pytest.raises(ValueError, match="negative"):
        counts.update(np.array([-1.0]))
    assert counts.n == 2 and counts.histogram.n == 2  # unchanged by the refusals


def test_the_model_round_trips_through_json_exactly() -> None:
    rng = np.random.default_rng(8)
    names = rng.choice(np.array(["red", "green", "blue"], dtype=object), 500)
    numeric = _correlated(rng, 500, 3)
    numeric[::7, 1] = np.nan
    model, _ = fit_reconstruction(numeric, [names])
    stored = json.loads(json.dumps(model.to_dict()))
    rebuilt = ReconstructionModel.from_dict(stored)
    assert rebuilt == model and rebuilt.to_dict() == model.to_dict()
    assert rebuilt.means.dtype == rebuilt.components.dtype == np.float64
    assert np.array_equal(rebuilt.errors(numeric, [names])[0], model.errors(numeric, [names])[0])
    assert repr(rebuilt).startswith("ReconstructionModel(numeric=3, categorical=1")


def test_bad_input_says_what_is_wrong() -> None:
    model, _ = fit_reconstruction(np.random.default_rng(9).normal(size=(50, 3)), [["a", "b"] * 25])
    with pytest.raises(ValueError, match=r"numeric must be a 2-D array of shape \(rows, 3\), got shape \(4, 2\)"):
        model.errors(np.zeros((4, 2)), [["a"] * 4])
    with pytest.raises(ValueError, match=r"shape \(rows, 3\), got shape \(3,\)"):
        model.errors(np.zeros(3), [["a"]])
    with pytest.raises(ValueError, match="expected 1 categorical columns, got 0"):
        model.errors(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="categorical column 0 has 2 rows, numeric has 4"):
        model.errors(np.zeros((4, 3)), [["a", "b"]])
    with pytest.raises(ValueError, match="at least 2 reference rows"):
        fit_reconstruction(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="variance_share"):
        fit_reconstruction(np.zeros((5, 3)), variance_share=0.0)
    stored = model.to_dict()
    with pytest.raises(ValueError, match="components must have shape"):
        ReconstructionModel.from_dict({**stored, "components": [[1.0, 0.0]]})
    with pytest.raises(ValueError, match="one mean and one scale per encoded column"):
        ReconstructionModel.from_dict({**stored, "means": [0.0]})
    with pytest.raises(ValueError, match="needs \\['scales'\\]"):
        ReconstructionModel.from_dict({k: v for k, v in stored.items() if k != "scales"})


def test_a_small_wide_reference_stays_within_the_budget() -> None:
    """2,000 reference rows, 16 encoded columns: in-sample errors would cross at ~2.4% for alpha = 1%."""
    rng = np.random.default_rng(12)
    mix = rng.normal(size=(8, 8))
    names = np.array(list("abcdefgh"), dtype=object)

    def draw(rows: int) -> tuple[np.ndarray, list[np.ndarray]]:
        numeric = rng.normal(size=(rows, 8)) @ mix
        return numeric, [names[np.clip((numeric[:, 0] + rng.normal(size=rows) + 4).astype(int), 0, 7)]]

    model, reference_errors = fit_reconstruction(*draw(2000))
    assert model.width == 16
    reference = ReconstructionCounts(bin_edges(reference_errors))
    reference.update(reference_errors)
    threshold = reconstruction_threshold(reference, 500, 0.01)
    errors, _ = model.errors(*draw(200 * 500))
    assert int((errors.reshape(200, 500).mean(axis=1) > threshold).sum()) <= 6
