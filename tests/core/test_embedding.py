"""Embedding drift: numpy's PCA, exact merges, and thresholds a stationary stream crosses at the rate asked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.core.embedding import (
    COUNTS_FIELDS,
    MAX_EMBEDDING_VALUE,
    EmbeddingCounts,
    EmbeddingReference,
    distance_thresholds,
    fit_embedding,
    mean_distances,
)


def _gaussian(d: int, seed: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """A random generator, a spectrum spanning two decades, a random rotation and a nonzero mean."""
    rng = np.random.default_rng(seed)
    spectrum = 10 ** np.linspace(0, -2, d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return rng, spectrum, rotation, rng.normal(size=d) * 0.3


def _rows(rng: np.random.Generator, spectrum: np.ndarray, rotation: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    return (rng.normal(size=(n, spectrum.size)) * np.sqrt(spectrum)) @ rotation.T + mean


@pytest.mark.parametrize(("rows", "dims", "k"), [(500, 6, 6), (300, 20, 8), (1000, 3, 3), (30, 50, 8), (5, 12, 4)])
def test_fit_equals_numpy(rows: int, dims: int, k: int) -> None:
    rng = np.random.default_rng(rows + dims)
    x = rng.normal(size=(rows, dims)) @ rng.normal(size=(dims, dims)) + rng.normal(size=dims)
    reference = fit_embedding(x, components=8)
    assert (reference.dims, reference.rows, reference.components.shape) == (dims, rows, (k, dims))
    np.testing.assert_allclose(reference.mean, x.mean(axis=0), rtol=1e-12, atol=1e-12)
    expected = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    np.testing.assert_allclose(reference.eigenvalues, np.maximum(expected, 0), rtol=1e-9, atol=1e-9 * expected[0])
    assert np.all(reference.eigenvalues >= 0) and np.all(np.diff(reference.eigenvalues) <= 0)
    components = reference.components
    np.testing.assert_allclose(components @ components.T, np.eye(k), atol=1e-10)
    # Eigenvectors of numpy's own covariance, up to sign; ours make their largest entry positive.
    _, vectors = np.linalg.eigh(np.cov(x.T))
    expected_components = vectors[:, ::-1][:, :k].T
    signs = np.sign(np.sum(expected_components * components, axis=1))
    np.testing.assert_allclose(components, expected_components * signs[:, None], atol=1e-8)
    largest = components[np.arange(k), np.abs(components).argmax(axis=1)]
    assert np.all(largest > 0)
    np.testing.assert_allclose(reference.project(x), (x - x.mean(axis=0)) @ components.T, atol=1e-12)
    # The mean's coordinates: the components' ones first, and its norm over the whole eigenbasis.
    np.testing.assert_allclose(reference.mean_coordinates[:k], components @ x.mean(axis=0), atol=1e-10)
    assert np.linalg.norm(reference.mean_coordinates) == pytest.approx(np.linalg.norm(x.mean(axis=0)), rel=1e-10)


def test_wide_reference_by_svd_gives_the_same_thresholds_as_by_eigh() -> None:
    """With d > N the fit takes the SVD; its null basis differs from eigh's, but nothing downstream sees it."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 60)) * np.linspace(2, 0.1, 60) + 0.5
    wide = fit_embedding(x)
    centred = x - x.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / 39)
    coordinates = x.mean(axis=0) @ vectors
    by_eigh = EmbeddingReference(x.mean(axis=0), np.maximum(eigenvalues, 0), coordinates, vectors[:, -1:].T, rows=40)
    for got, expected in zip(distance_thresholds(wide, 20, 0.05), distance_thresholds(by_eigh, 20, 0.05), strict=True):
        # Not the same floats: each basis pairs its own z_i with each eigenvalue. The same distribution.
        assert got == pytest.approx(expected, rel=0.05)


def test_to_dict_round_trip_is_json() -> None:
    rng, spectrum, rotation, mean = _gaussian(10, 1)
    reference = fit_embedding(_rows(rng, spectrum, rotation, mean, 200), components=3)
    data = json.loads(json.dumps(reference.to_dict()))
    again = EmbeddingReference.from_dict(data)
    assert again == reference and again is not reference
    assert again != fit_embedding(_rows(rng, spectrum, rotation, mean, 200), components=3)
    with pytest.raises(ValueError, match="needs"):
        EmbeddingReference.from_dict({k: v for k, v in data.items() if k != "eigenvalues"})
    with pytest.raises(ValueError, match="shape"):
        EmbeddingReference.from_dict({**data, "components": [[1.0, 0.0]]})


_batches = st.tuples(
    st.integers(0, 60),  # rows
    st.integers(1, 6),  # dims
    st.integers(0, 2**32 - 1),  # seed of the values
    st.sampled_from([1e-3, 1.0, 1e3, 3e6]),  # scale: the last one goes past the cap
    st.lists(st.integers(0, 60), max_size=6),  # cut points
    st.lists(st.integers(0, 3), min_size=7, max_size=7),  # each batch's partition
)


@given(_batches)
def test_counts_merge_exactly(case: tuple[int, int, int, float, list[int], list[int]]) -> None:
    rows, dims, seed, scale, cuts, partitions = case
    x = np.random.default_rng(seed).standard_normal((rows, dims)) * scale
    whole = EmbeddingCounts(dims)
    whole.update(x)
    parts = [EmbeddingCounts(dims) for _ in range(4)]
    for batch, partition in zip(np.split(x, sorted(min(c, rows) for c in cuts)), partitions, strict=False):
        parts[partition].update(batch)
    merged = EmbeddingCounts(dims)
    for part in reversed(parts):
        merged.merge(part)
    assert merged == whole and merged.n == rows
    if rows:
        expected = np.clip(x, -MAX_EMBEDDING_VALUE, MAX_EMBEDDING_VALUE).mean(axis=0)
        np.testing.assert_allclose(whole.mean, expected, rtol=1e-12, atol=1e-8)
        assert np.array_equal(whole.mean, merged.mean)
    else:
        assert np.all(np.isnan(whole.mean))


def test_counts_are_plain_and_copy_is_independent() -> None:
    counts = EmbeddingCounts(3)
    counts.update(np.array([[0.1, -0.2, 0.3]]))
    assert set(vars(counts)) == set(COUNTS_FIELDS)
    assert all(type(v) is int for v in counts._units) and type(counts.n) is int and type(counts.dims) is int
    twin = counts.copy()
    twin.update(np.array([[1.0, 1.0, 1.0]]))
    assert counts.n == 1 and twin.n == 2 and counts != twin
    assert repr(counts) == "EmbeddingCounts(dims=3, n=1)"


def test_counts_never_overflow() -> None:
    """1e4 rows at the cap sum to 1e19 units, past int64: the guarded path sums them exactly."""
    counts = EmbeddingCounts(2)
    counts.update(np.full((10_000, 2), [np.inf, -2 * MAX_EMBEDDING_VALUE]))
    assert counts._units == [10**19, -(10**19)]
    assert counts.mean.tolist() == [MAX_EMBEDDING_VALUE, -MAX_EMBEDDING_VALUE]
    for _ in range(3):
        counts.merge(counts.copy())
    assert counts.n == 80_000 and counts._units[0] == 8 * 10**19


def test_mean_distances() -> None:
    reference = EmbeddingReference([3.0, 4.0], [1.0, 1.0], [3.0, 4.0], [[1.0, 0.0]], rows=10)
    euclidean, cosine = mean_distances(reference, np.array([4.0, 3.0]))
    assert euclidean == pytest.approx(np.sqrt(2)) and cosine == pytest.approx(1 - 24 / 25)
    assert mean_distances(reference, np.array([-3.0, -4.0])) == (10.0, 2.0)
    assert mean_distances(reference, np.array([6.0, 8.0]))[1] == 0.0
    assert mean_distances(reference, np.zeros(2)) == (5.0, 1.0)  # a zero vector: no direction
    # Nearly the same direction: 1 - cos would cancel to 0 or to noise; the distance keeps its value.
    tiny = mean_distances(reference, np.array([3.0 - 4e-7, 4.0 + 3e-7]))[1]
    assert tiny == pytest.approx((5e-7 / 5) ** 2 / 2, rel=1e-6)
    assert all(np.isnan(mean_distances(reference, EmbeddingCounts(2).mean)))
    with pytest.raises(ValueError, match="shape"):
        mean_distances(reference, np.zeros(3))


@pytest.mark.parametrize("d", [32, 384])
def test_thresholds_hold_the_false_alert_rate_and_catch_a_shift(d: int) -> None:
    """2,000 stationary windows per size cross each threshold at about ``alpha``; a 0.5-sd shift crosses both.

    At d = 32 the windows are rows through :class:`EmbeddingCounts`. At d = 384 their means are drawn
    directly, N(mean, Sigma / n): exactly the distribution of a mean of n Gaussian rows, at a 400th of
    the cost (2,000 windows of 400 rows of 384 dims are 300 million normals).
    """
    rng, spectrum, rotation, mean = _gaussian(d, 0)
    reference = fit_embedding(_rows(rng, spectrum, rotation, mean, 5000))
    windows = 2000
    for n in (50, 400):
        thresholds = distance_thresholds(reference, n, 0.01)
        assert thresholds == distance_thresholds(reference, n, 0.01)  # deterministic
        if d <= 32:
            means = np.empty((windows, d))
            for i in range(windows):
                counts = EmbeddingCounts(d)
                counts.update(_rows(rng, spectrum, rotation, mean, n))
                means[i] = counts.mean
        else:
            means = _rows(rng, spectrum / n, rotation, mean, windows)
        distances = np.array([mean_distances(reference, m) for m in means])
        rates = (distances > np.array(thresholds)).mean(axis=0)
        # Binomial(2000, 0.01): 20 expected, sd 4.4; the bounds (4 and 50 windows) lie 3.6 and 6.8 sd away.
        assert np.all((rates >= 0.002) & (rates <= 0.025)), (n, rates)
    shifted = means[:100] + 0.5 * np.sqrt(spectrum[0]) * rotation[:, 0]
    crossed = np.array([mean_distances(reference, m) for m in shifted]) > np.array(thresholds)
    assert crossed.all()


def test_thresholds_shrink_with_the_window_and_rise_as_alpha_falls() -> None:
    rng, spectrum, rotation, mean = _gaussian(16, 2)
    reference = fit_embedding(_rows(rng, spectrum, rotation, mean, 2000))
    small, large = distance_thresholds(reference, 20, 0.01), distance_thresholds(reference, 2000, 0.01)
    strict = distance_thresholds(reference, 20, 1e-4)
    assert all(s > lg > 0 for s, lg in zip(small, large, strict=True))
    assert all(t > s for t, s in zip(strict, small, strict=True))
    assert distance_thresholds(reference, 20, 0.01, seed=1) != small
    centred = EmbeddingReference(np.zeros(16), reference.eigenvalues, np.zeros(16), reference.components, rows=2000)
    assert distance_thresholds(centred, 20, 0.01)[1] == 1.0  # no reference direction: cosine cannot alert


def test_errors() -> None:
    with pytest.raises(ValueError, match="2-D"):
        fit_embedding(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 rows"):
        fit_embedding(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="finite"):
        fit_embedding(np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="finite"):
        fit_embedding(np.array([[0.0, 1.0], [np.inf, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="components"):
        fit_embedding(np.zeros((3, 2)), components=0)
    reference = fit_embedding(np.random.default_rng(0).normal(size=(50, 4)))
    with pytest.raises(ValueError, match=r"shape \(rows, 4\)"):
        reference.project(np.zeros((2, 3)))
    counts = EmbeddingCounts(4)
    for bad in (np.zeros((2, 3)), np.zeros(4), np.zeros((1, 2, 4))):
        with pytest.raises(ValueError, match=r"shape \(rows, 4\)"):
            counts.update(bad)
    with pytest.raises(ValueError, match="NaN"):
        counts.update(np.array([[0.0, 1.0, np.nan, 2.0]]))
    assert counts == EmbeddingCounts(4)  # a refused batch counts nothing
    with pytest.raises(ValueError, match="merge"):
        counts.merge(EmbeddingCounts(3))
    with pytest.raises(ValueError, match="dimension"):
        EmbeddingCounts(0)
    with pytest.raises(ValueError, match="at least one row"):
        distance_thresholds(reference, 0, 0.01)
    for alpha in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="alpha"):
            distance_thresholds(reference, 10, alpha)
