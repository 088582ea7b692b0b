"""LatencySketch: quantiles within the stated relative error of numpy's, and exact under any split and merge."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.core.latency import HIGHEST_MS, LOWEST_MS, LatencySketch

QS = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
values = st.one_of(
    st.floats(LOWEST_MS, 1e6),
    st.just(0.0),
    st.just(float("nan")),
    st.sampled_from([1.0, 25.0, 100.0, 300.0]),  # repeats, and values on bucket edges
)
batches = st.lists(st.lists(values, max_size=30), max_size=8)
accuracies = st.sampled_from([0.005, 0.01, 0.05, 0.2])


def sketch_of(data: np.ndarray | list[float], relative_accuracy: float = 0.005) -> LatencySketch:
    sketch = LatencySketch(relative_accuracy)
    sketch.update(np.array(data, dtype=float))
    return sketch


def assert_within(sketch: LatencySketch, present: np.ndarray, qs: list[float], bound: float) -> None:
    """Each quantile within ``bound`` (relative) of numpy's inverted_cdf; 1e-9 allows for float rounding."""
    exact = np.quantile(present, qs, method="inverted_cdf")
    estimate = np.array(sketch.quantiles(qs))
    assert np.all(np.abs(estimate - exact) <= bound * exact * (1 + 1e-9)), (qs, estimate, exact)


def bimodal(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cache hits around 5 ms and misses around 400 ms."""
    hits = rng.normal(5, 1, size)
    misses = rng.normal(400, 60, size)
    return np.abs(np.where(rng.random(size) < 0.8, hits, misses))


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, size: rng.lognormal(np.log(25), 1.0, size),
        lambda rng, size: rng.exponential(50, size),
        bimodal,
    ],
    ids=["lognormal", "exponential", "bimodal"],
)
def test_percentiles_are_within_one_percent_of_numpy(draw) -> None:
    rng = np.random.default_rng(7)
    data = draw(rng, 100_000)
    sketch = LatencySketch()
    for batch in np.array_split(data, 10):
        sketch.update(batch)
    exact = np.quantile(data, [0.5, 0.95, 0.99], method="inverted_cdf")
    estimate = np.array(sketch.quantiles([0.5, 0.95, 0.99]))
    assert np.all(np.abs(estimate - exact) <= 0.01 * exact)
    # The stated guarantee is tighter: the relative accuracy, at every quantile but the lowest
    # (an exponential's minimum falls below LOWEST_MS, where values are clamped).
    assert_within(sketch, data, QS[1:], sketch.relative_accuracy)
    assert sketch.n == data.size and sketch.min == data.min() and sketch.max == data.max()
    assert sketch.quantile(0.0) == pytest.approx(max(data.min(), LOWEST_MS), rel=sketch.relative_accuracy)
    assert sketch.quantile(1.0) == pytest.approx(data.max(), rel=sketch.relative_accuracy)


@given(batches, accuracies)
def test_every_update_matches_numpy(stream: list[list[float]], relative_accuracy: float) -> None:
    sketch = LatencySketch(relative_accuracy)
    gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
    seen: list[float] = []
    for batch in stream:
        sketch.update(np.array(batch, dtype=float))
        seen += batch
        present = np.array([v for v in seen if not math.isnan(v)])
        assert sketch.n == present.size
        assert sketch.missing == len(seen) - present.size
        assert sketch.min == (present.min() if present.size else np.inf)
        assert sketch.max == (present.max() if present.size else -np.inf)
        if not present.size:
            assert all(math.isnan(v) for v in sketch.quantiles(QS))
            continue
        assert_within(sketch, present, QS, relative_accuracy)
        for threshold in [0.0, 1.0, 25.0, 300.0, *present[:5]]:
            # Never over-counts; misses at most the values in (threshold, gamma * threshold].
            counted = sketch.count_above(threshold)
            assert (present > threshold * gamma * (1 + 1e-9)).sum() <= counted <= (present > threshold).sum()


@given(st.lists(values, max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_merging_any_split_equals_the_whole(stream: list[float], cuts: list[int]) -> None:
    whole = sketch_of(stream)
    bounds = [0, *sorted(c for c in cuts if c <= len(stream)), len(stream)]
    parts = [sketch_of(stream[start:end]) for start, end in itertools.pairwise(bounds)]
    forward, backward = LatencySketch(), LatencySketch()
    for part in parts:
        forward.merge(part)
    for part in reversed(parts):
        backward.merge(part)
    assert forward == whole == backward
    assert forward.quantiles(QS) == whole.quantiles(QS) or not whole.n


def test_merge_refuses_a_different_accuracy() -> None:
    with pytest.raises(ValueError, match="different relative_accuracy"):
        LatencySketch(0.005).merge(LatencySketch(0.01))
    assert LatencySketch(0.01) != LatencySketch(0.005)


def test_an_empty_sketch_answers_nan() -> None:
    sketch = LatencySketch()
    sketch.update(np.array([]))
    assert math.isnan(sketch.quantile(0.5)) and all(math.isnan(v) for v in sketch.quantiles([0.0, 1.0]))
    assert (sketch.n, sketch.missing, sketch.min, sketch.max) == (0, 0, np.inf, -np.inf)
    assert sketch.count_above(0.0) == 0
    assert sketch == LatencySketch()
    assert repr(sketch) == "LatencySketch(relative_accuracy=0.005, n=0, missing=0)"


def test_zeros_are_exact_and_nan_is_missing() -> None:
    sketch = sketch_of([np.nan, np.nan])
    assert (sketch.n, sketch.missing) == (0, 2) and math.isnan(sketch.quantile(0.5))
    sketch.update(np.array([0.0, 0.0, 0.0, 40.0, np.nan]))
    assert (sketch.n, sketch.missing, sketch.min, sketch.max) == (4, 3, 0.0, 40.0)
    assert sketch.quantiles([0.0, 0.5, 0.75]) == [0.0, 0.0, 0.0]
    assert sketch.quantile(0.76) == pytest.approx(40.0, rel=0.005)
    assert sketch.count_above(0.0) == 1 and sketch.count_above(-1.0) == 4 and sketch.count_above(40.0) == 0


def test_memory_is_bounded_whatever_the_values() -> None:
    sketch = sketch_of([1e-9, 5.0, 1e15])
    keys = np.ceil(np.log([LOWEST_MS, HIGHEST_MS]) / math.log((1 + 0.005) / (1 - 0.005)))
    assert sketch._counts.size == keys[1] - keys[0] + 1 == 2764
    rng = np.random.default_rng(1)
    for _ in range(20):
        sketch.update(rng.lognormal(3, 4, 10_000))
    assert sketch._counts.size == 2764 and sketch.n == 200_003
    # Out of range values read as the nearest bound; the extremes themselves stay exact.
    assert (sketch.min, sketch.max) == (1e-9, 1e15)


def test_invalid_input_is_refused() -> None:
    for accuracy in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            LatencySketch(accuracy)
    for bad in ([-1.0], [np.inf]):
        with pytest.raises(ValueError, match="finite and >= 0"):
            LatencySketch().update(np.array(bad))
    for q in (-0.1, 1.1, np.nan):
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            sketch_of([1.0]).quantile(q)
