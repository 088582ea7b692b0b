"""Drift statistics against scipy: exact on the same bins, within stated bounds on raw data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from streamwatch.core import (
    CategoryCounts,
    NumericHistogram,
    bin_edges,
    chi_square,
    hellinger,
    js_distance,
    ks,
    psi,
    unseen_share,
    wasserstein,
)

counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


def histograms(reference: np.ndarray, current: np.ndarray, edges: np.ndarray) -> tuple[NumericHistogram, ...]:
    out = []
    for data in (reference, current):
        histogram = NumericHistogram(edges)
        histogram.update(data)
        out.append(histogram)
    return tuple(out)


@given(counts, counts)
def test_share_based_statistics_match_their_definitions(p: list[int], q: list[int]) -> None:
    size = min(len(p), len(q))
    p, q = p[:size], q[:size]
    if sum(p) == 0 or sum(q) == 0:
        assert math.isnan(psi(p, q)) and math.isnan(js_distance(p, q)) and math.isnan(hellinger(p, q))
        return
    ps, qs = np.array(p) / sum(p), np.array(q) / sum(q)
    assert js_distance(p, q) == pytest.approx(jensenshannon(ps, qs), abs=1e-12)
    expected_psi = sum(
        (max(b, 1e-4) - max(a, 1e-4)) * math.log(max(b, 1e-4) / max(a, 1e-4))
        for a, b in zip(np.where(ps == 0, 1e-4, ps), np.where(qs == 0, 1e-4, qs), strict=True)
    )
    assert psi(p, q) == pytest.approx(expected_psi, rel=1e-12, abs=1e-15)
    assert hellinger(p, q) == pytest.approx(math.sqrt(max(0.0, 1 - np.sum(np.sqrt(ps * qs)))), abs=1e-7)
    assert psi(p, p) == 0 and js_distance(p, p) == pytest.approx(0, abs=1e-7)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy's own, for one value a side
@settings(max_examples=200)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=300), st.lists(st.integers(0, 30), min_size=1, max_size=300))
def test_ks_is_exact_when_values_lie_on_edges(reference: list[int], current: list[int]) -> None:
    ref, cur = histograms(np.array(reference, float), np.array(current, float), np.arange(31.0))
    statistic, pvalue = ks(ref, cur)
    exact = ks_2samp(reference, current, method="asymp")
    assert statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert pvalue == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-300, nan_ok=True)


@settings(max_examples=200)
@given(st.lists(st.integers(-5, 30), min_size=1, max_size=300), st.lists(st.integers(-5, 40), min_size=1, max_size=300))
def test_wasserstein_is_exact_when_values_lie_on_edges(reference: list[int], current: list[int]) -> None:
    # Values outside the edges are allowed as long as each outer bin holds a single value.
    edges = np.arange(-4.0, 31.0)
    current = [min(v, 30) for v in current]
    reference = [max(v, -5) if v >= -4 else -5 for v in reference]
    current = [v if v >= -4 else -5 for v in current]
    ref, cur = histograms(np.array(reference, float), np.array(current, float), edges)
    low_ref = (min(ref.min, -4.0) - 4.0) / 2
    assert wasserstein(ref, cur) == pytest.approx(
        wasserstein_distance(
            np.where(np.array(reference) < -4, low_ref, reference),
            # The window stands on the reference's support: below the edges, where the reference's outer bin stands.
            np.where(np.array(current) < -4, low_ref, current),
        ),
        abs=1e-9,
    )


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0])
def test_binned_ks_and_wasserstein_stay_close_on_continuous_data(shift: float) -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=20_000), rng.normal(loc=shift, size=2_000)
    ref, cur = histograms(reference, current, bin_edges(reference))
    statistic, pvalue = ks(ref, cur)
    exact = ks_2samp(reference, current, method="asymp")
    largest_bin_share = max((ref.counts / ref.n).max(), (cur.counts / cur.n).max())
    assert exact.statistic - largest_bin_share <= statistic <= exact.statistic + 1e-12
    assert (pvalue < 0.01) == (exact.pvalue < 0.01)
    # Normalised by the reference's spread, the binned distance is within 0.02 of the exact one
    # (and within 1% of it at large shifts, thanks to the equal-width edges).
    scale = float(reference.std())
    assert wasserstein(ref, cur, scale=scale) == pytest.approx(
        wasserstein_distance(reference, current) / scale, abs=0.02
    )


@given(st.lists(st.integers(0, 500), min_size=4, max_size=4), st.lists(st.integers(0, 500), min_size=4, max_size=4))
def test_chi_square_matches_scipy(reference: list[int], current: list[int]) -> None:
    statistic, pvalue = chi_square(reference, current)
    table = np.array([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or 0 in table.sum(axis=1):
        assert math.isnan(statistic) and math.isnan(pvalue)
        return
    expected = chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_categorical_drift_from_counts() -> None:
    reference, current = CategoryCounts(["a", "b", "c"]), CategoryCounts(["a", "b", "c"])
    reference.update(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current.update(["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["z"] * 10 + [None] * 5)
    assert unseen_share(current) == 0.1
    statistic, pvalue = chi_square(reference, current)
    expected = chi2_contingency([[50, 30, 20, 0], [20, 30, 40, 10]], correction=False)
    assert (statistic, pvalue) == pytest.approx((expected.statistic, expected.pvalue))
    assert psi(reference.counts, current.counts) > 0.2  # a major shift by the usual PSI reading
    assert math.isnan(unseen_share(CategoryCounts(["a"])))


def test_empty_sides_give_nan() -> None:
    empty, full = histograms(np.array([]), np.array([1.0, 2.0]), np.array([0.0, 1.5]))
    assert all(math.isnan(x) for x in (*ks(empty, full), wasserstein(empty, full)))
    with pytest.raises(ValueError, match="differ in length"):
        psi([1, 2], [1, 2, 3])
