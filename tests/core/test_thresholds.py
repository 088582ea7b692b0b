"""Thresholds: calibrated ones keep a stationary stream quiet; defaults catch a real shift."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency
from scipy.stats.contingency import association

from streamwatch.core import NumericHistogram, bin_edges, js_distance, psi
from streamwatch.core.thresholds import DEFAULT_THRESHOLDS, calibrate, cramers_v


def test_cramers_v_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        reference, current = rng.integers(1, 300, 6), rng.integers(1, 300, 6)
        table = np.vstack([reference, current])
        assert cramers_v(reference, current) == pytest.approx(association(table, method="cramer"), rel=1e-12)
        assert chi2_contingency(table, correction=False).statistic >= 0


def test_a_stationary_stream_raises_no_drift_with_calibrated_thresholds() -> None:
    rng = np.random.default_rng(5)
    training = rng.gamma(2.0, 3.0, 50_000)
    edges = bin_edges(training)
    reference = NumericHistogram(edges)
    reference.update(training)
    window = 200  # small windows: the fixed PSI threshold alone would misfire
    thresholds = calibrate(reference.counts, window)
    crossings = {"psi": 0, "js": 0}
    fixed_psi_crossings = 0
    windows = 300
    for _ in range(windows):
        current = NumericHistogram(edges)
        current.update(rng.gamma(2.0, 3.0, window))
        value = psi(reference.counts, current.counts)
        crossings["psi"] += value >= thresholds["psi"]
        crossings["js"] += js_distance(reference.counts, current.counts) >= thresholds["js"]
        fixed_psi_crossings += value >= DEFAULT_THRESHOLDS["psi"]
    assert crossings["psi"] <= 0.03 * windows and crossings["js"] <= 0.03 * windows
    assert fixed_psi_crossings > 0.5 * windows  # why calibration exists


def test_a_real_shift_still_crosses_the_calibrated_threshold() -> None:
    rng = np.random.default_rng(6)
    training = rng.normal(size=50_000)
    edges = bin_edges(training)
    reference = NumericHistogram(edges)
    reference.update(training)
    thresholds = calibrate(reference.counts, 2_000)
    shifted = NumericHistogram(edges)
    shifted.update(rng.normal(0.5, 1.0, 2_000))
    assert psi(reference.counts, shifted.counts) >= thresholds["psi"]


def test_calibration_is_deterministic_and_never_below_defaults() -> None:
    reference = np.array([500, 300, 150, 50])
    first, second = calibrate(reference, 1_000), calibrate(reference, 1_000)
    assert first == second
    assert all(first[name] >= DEFAULT_THRESHOLDS[name] for name in first)
    with pytest.raises(ValueError, match="non-empty reference"):
        calibrate(np.zeros(3), 10)


@given(
    st.lists(st.integers(0, 50), min_size=2, max_size=12).filter(lambda c: sum(c) > 0),
    st.integers(1, 400),
    st.integers(0, 2**31),
)
@settings(max_examples=60, deadline=None)
def test_batch_statistics_equal_the_statistics_row_by_row(counts: list[int], size: int, seed: int) -> None:
    from scipy.stats import wasserstein_distance

    from streamwatch.core.thresholds import _STATISTICS, batch_statistic, batch_wasserstein

    reference = np.array(counts)
    samples = np.random.default_rng(seed).multinomial(size, reference / reference.sum(), size=20)
    for name, one in _STATISTICS.items():
        expected = np.array([one(reference, sample) for sample in samples], dtype=float)
        np.testing.assert_allclose(
            batch_statistic(name, reference, samples), expected, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name
        )
    support = np.cumsum(np.random.default_rng(seed + 1).random(len(counts)) + 0.01)
    expected = [wasserstein_distance(support, support, reference, sample) for sample in samples]
    np.testing.assert_allclose(batch_wasserstein(reference, samples, support), expected, rtol=1e-9, atol=1e-12)
