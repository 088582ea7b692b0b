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


# -- statistics on the bins their conventions assume, and thresholds at the false-alert budget's rates ----------


def _reference(values: np.ndarray) -> NumericHistogram:
    reference = NumericHistogram(bin_edges(values))
    reference.update(values)
    return reference


DRAWS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal amount": lambda rng, n: rng.lognormal(3.0, 1.5, n),
    "pareto amount": lambda rng, n: rng.pareto(2.5, n),
    "poisson count": lambda rng, n: rng.poisson(2.0, n).astype(float),
    "poisson count, 40 values": lambda rng, n: rng.poisson(20.0, n).astype(float),
}


@pytest.mark.parametrize("shape", sorted(DRAWS))
@pytest.mark.parametrize("window", [500, 2_000])
def test_stationary_windows_read_as_no_change_by_the_rules_of_thumb(shape: str, window: int) -> None:
    """PSI < 0.1 reads "no change" and JS < 0.1 is under Evidently's threshold: on deciles and vingtiles,
    windows of 500 values drawn like the reference stay far under both (on 200 fine bins the median PSI
    of such windows was 0.33 to 0.48)."""
    from streamwatch.core.drift_report import _numeric_stats

    rng = np.random.default_rng(11)
    draw = DRAWS[shape]
    reference = _reference(draw(rng, 20_000))
    stats = {"psi": [], "js": [], "hellinger": []}
    for _ in range(60):
        current = NumericHistogram(reference.edges)
        current.update(draw(rng, window))  # a fresh sample of the same distribution, not of the reference
        values = _numeric_stats(reference, current, 1.0)
        for name in stats:
            stats[name].append(values[name])
    assert np.median(stats["psi"]) < 0.05
    assert np.median(stats["js"]) < 0.1 and np.median(stats["hellinger"]) < 0.1


def test_a_shift_moves_psi_past_its_major_shift_mark() -> None:
    from streamwatch.core.drift_report import _numeric_stats

    rng = np.random.default_rng(12)
    reference = _reference(rng.normal(size=20_000))
    current = NumericHistogram(reference.edges)
    current.update(rng.normal(1.0, 1.0, 2_000))  # a one-sigma shift
    assert _numeric_stats(reference, current, 1.0)["psi"] > 0.25


@pytest.mark.parametrize("shape", sorted(DRAWS))
@pytest.mark.parametrize("window", [64, 512])
def test_tail_quantiles_hold_against_a_hundred_thousand_draws(shape: str, window: int) -> None:
    """The thresholds at a budget's small alpha come from 4,000 draws and a fitted tail; 100,000 draws
    estimate the same quantile empirically. The fit may err on the quiet side, and not by much."""
    from streamwatch.core.drift import bin_support

    rng = np.random.default_rng(13)
    values = DRAWS[shape](rng, 20_000)
    reference = _reference(values)
    counts, support, scale = reference.counts, bin_support(reference), float(values.std())
    alpha = 2e-4
    fitted = calibrate(counts, window, alpha=alpha, support=support, scale=scale)
    effective = round(window * counts.sum() / (window + counts.sum()))
    samples = np.random.default_rng(99).multinomial(effective, counts / counts.sum(), size=100_000)
    from streamwatch.core.binning import COARSE_BINS, PSI_BINS, coarse_starts, coarsen
    from streamwatch.core.thresholds import batch_statistic, batch_wasserstein

    exact = {}
    for name, bins in (("psi", PSI_BINS), ("js", COARSE_BINS), ("hellinger", COARSE_BINS)):
        starts = coarse_starts(counts, bins)
        exact[name] = batch_statistic(name, coarsen(counts, starts), coarsen(samples, starts))
    exact["ks"] = batch_statistic("ks", counts, samples)
    exact["wasserstein"] = batch_wasserstein(counts, samples, support) / scale
    for name, sample in exact.items():
        empirical = max(float(np.quantile(sample, 1 - alpha)), DEFAULT_THRESHOLDS[name])
        # PSI's tail in small windows is lumpy (a decile left empty adds 0.69 at once), and the fits
        # err high there, on the quiet side; PSI reports, it does not decide a feature's drift.
        loosest = 2.0 if name == "psi" and window < 128 else 1.6
        assert 0.9 * empirical <= fitted[name] <= loosest * empirical, (name, fitted[name], empirical)


def test_calibration_counts_the_references_own_sampling_error() -> None:
    """A window and the reference are two samples: thresholds at the two-sample effective size keep the
    crossing rate at alpha when windows come from the population, not from the reference."""
    rng = np.random.default_rng(14)
    reference = _reference(rng.normal(size=2_000))  # a small reference: its own error matters
    window, alpha = 1_000, 0.02
    from streamwatch.core.drift import bin_support, wasserstein

    limit = calibrate(reference.counts, window, alpha=alpha, support=bin_support(reference))["wasserstein"]
    crossings = 0
    for _ in range(500):
        current = NumericHistogram(reference.edges)
        current.update(rng.normal(size=window))
        crossings += wasserstein(reference, current) >= limit
    assert crossings <= 2 * alpha * 500  # one-sample calibration crossed in ~14% of windows here
