"""NumericHistogram: every step against numpy, and exact under any split and merge."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.core import NumericHistogram, bin_edges
from streamwatch.core.histogram import update_columns

EDGES = np.array([-1.0, 0.0, 0.5, 2.0, 10.0])
values = st.one_of(st.floats(-20, 20), st.just(float("nan")), st.sampled_from(EDGES.tolist()))
batches = st.lists(st.lists(values, max_size=30), max_size=8)


def expected_counts(seen: list[float]) -> list[int]:
    """An independent count: bins (-inf, e0), [e0, e1), ..., [e_last, inf)."""
    data = np.array([v for v in seen if not np.isnan(v)])
    bounds = [-np.inf, *EDGES, np.inf]
    return [int(((data >= lo) & (data < hi)).sum()) for lo, hi in itertools.pairwise(bounds)]


@given(batches)
def test_every_update_matches_numpy(stream: list[list[float]]) -> None:
    histogram = NumericHistogram(EDGES)
    seen: list[float] = []
    for batch in stream:
        histogram.update(np.array(batch, dtype=float))
        seen += batch
        present = [v for v in seen if not np.isnan(v)]
        assert histogram.counts.tolist() == expected_counts(seen)
        assert histogram.missing == len(seen) - len(present)
        assert histogram.n == len(present)
        assert histogram.min == (min(present) if present else np.inf)
        assert histogram.max == (max(present) if present else -np.inf)


@given(st.lists(values, max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_merging_any_split_equals_the_whole(stream: list[float], cuts: list[int]) -> None:
    whole = NumericHistogram(EDGES)
    whole.update(np.array(stream, dtype=float))
    bounds = [0, *sorted(c for c in cuts if c <= len(stream)), len(stream)]
    parts = []
    for start, end in itertools.pairwise(bounds):
        part = NumericHistogram(EDGES)
        part.update(np.array(stream[start:end], dtype=float))
        parts.append(part)
    forward, backward = NumericHistogram(EDGES), NumericHistogram(EDGES)
    for part in parts:
        forward.merge(part)
    for part in reversed(parts):
        backward.merge(part)
    assert forward == whole == backward


def test_edges_must_increase_and_match() -> None:
    for bad in ([], [1.0, 1.0], [2.0, 1.0], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="strictly increasing"):
            NumericHistogram(bad)
    with pytest.raises(ValueError, match="different edges"):
        NumericHistogram([0.0, 1.0]).merge(NumericHistogram([0.0, 2.0]))


def test_bin_edges_follow_numpy() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=10_000)
    edges = bin_edges(np.append(data, np.nan), bins=100, uniform_bins=0)
    assert np.array_equal(edges, np.quantile(data, np.linspace(0, 1, 101)))
    histogram = NumericHistogram(edges)
    histogram.update(data)
    inner = histogram.counts[1:-1]
    assert histogram.counts[0] == 0 and histogram.counts[-1] == 1  # only the maximum sits on the last edge
    assert inner.min() >= 99 and inner.max() <= 101  # quantile bins hold ~1% each
    hybrid = bin_edges(data)
    assert set(edges) <= set(hybrid) and set(np.linspace(data.min(), data.max(), 101)) <= set(hybrid)
    assert np.max(np.diff(hybrid)) <= (data.max() - data.min()) / 100 + 1e-12  # no wide tail bins
    with pytest.raises(ValueError, match="no values"):
        bin_edges([np.nan])


@given(
    st.lists(
        st.lists(st.one_of(st.floats(-50, 50), st.just(float("nan"))), min_size=7, max_size=7), min_size=1, max_size=4
    )
)
def test_update_columns_counts_as_one_update_per_histogram(columns: list[list[float]]) -> None:
    edges = [[0.0], [-1.0, 0.0, 1.0], [-10.0, 5.0, 20.0, 30.0], [2.5, 3.5]]
    together = [NumericHistogram(e) for e in edges[: len(columns)]]
    apart = [NumericHistogram(e) for e in edges[: len(columns)]]
    update_columns(together, np.array(columns))
    for histogram, column in zip(apart, columns, strict=True):
        histogram.update(np.array(column))
    assert together == apart
