"""ScoreHistogram: counts on the grid, ROC AUC against scikit-learn, exact under any split and merge."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from streamwatch.core.scores import ScoreHistogram

BINS = 20
rows = st.tuples(
    st.one_of(st.floats(0, 1), st.just(float("nan")), st.integers(0, BINS).map(lambda k: k / BINS)), st.booleans()
)
streams = st.lists(rows, max_size=150)


def counted(chunk: list[tuple[float, bool]], bins: int = BINS) -> ScoreHistogram:
    histogram = ScoreHistogram(bins)
    histogram.update(np.array([s for s, _ in chunk], dtype=float), np.array([y for _, y in chunk], dtype=bool))
    return histogram


def brute_force_auc(cells: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney over all (positive, negative) pairs of cell indices, ties counting half."""
    pos, neg = cells[labels], cells[~labels]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + (pos[:, None] == neg[None, :]).sum() / 2
    return wins / (pos.size * neg.size)


@given(st.lists(st.lists(st.tuples(st.integers(0, BINS), st.booleans()), max_size=40), max_size=6))
def test_every_update_counts_grid_scores_in_their_own_cell(stream: list[list[tuple[int, bool]]]) -> None:
    histogram = ScoreHistogram(BINS)
    seen: list[tuple[int, bool]] = []
    for chunk in stream:
        histogram.update(np.array([k / BINS for k, _ in chunk]), np.array([y for _, y in chunk], dtype=bool))
        seen += chunk
        cells = np.array([k for k, _ in seen], dtype=int)
        labels = np.array([y for _, y in seen], dtype=bool)
        expected = [np.bincount(cells[labels == c], minlength=BINS + 1).tolist() for c in (False, True)]
        assert histogram.counts.tolist() == expected
        assert (histogram.negatives, histogram.positives, histogram.n) == ((~labels).sum(), labels.sum(), len(seen))
        assert histogram.roc_auc() == pytest.approx(brute_force_auc(cells, labels), rel=1e-12, nan_ok=True)


@given(streams, st.lists(st.integers(0, 150), max_size=6))
def test_merging_any_split_equals_the_whole(stream: list[tuple[float, bool]], cuts: list[int]) -> None:
    whole = counted(stream)
    bounds = [0, *sorted(c for c in cuts if c <= len(stream)), len(stream)]
    parts = [counted(stream[start:end]) for start, end in itertools.pairwise(bounds)]
    forward, backward = ScoreHistogram(BINS), ScoreHistogram(BINS)
    for part in parts:
        forward.merge(part)
    for part in reversed(parts):
        backward.merge(part)
    assert forward == whole == backward
    assert whole.missing == sum(math.isnan(s) for s, _ in stream)


@pytest.mark.parametrize(("seed", "bins", "decimals"), [(0, 1000, 3), (1, 1000, 2), (2, 100, 2), (3, 10, 1)])
def test_roc_auc_is_sklearns_when_scores_lie_on_the_grid(seed: int, bins: int, decimals: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(5000) < 0.3
    # Rounded scores, as models often emit them: 0.29 is not 29 / 100 in binary, yet gets cell 29.
    scores = np.clip(np.round(rng.normal(0.4 + 0.2 * labels, 0.2), decimals), 0, 1)
    histogram = ScoreHistogram(bins)
    for part in np.array_split(np.arange(scores.size), 5):
        histogram.update(scores[part], labels[part])
    assert histogram.roc_auc() == pytest.approx(roc_auc_score(labels, scores), rel=1e-12)
    grid = rng.integers(0, bins + 1, size=5000) / bins
    exact = ScoreHistogram(bins)
    exact.update(grid, labels)
    assert exact.roc_auc() == pytest.approx(roc_auc_score(labels, grid), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_roc_auc_of_continuous_scores_is_within_a_thousandth(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(20_000) < 0.2
    scores = rng.beta(np.where(labels, 3.0, 2.0), 3.0)
    histogram = ScoreHistogram()
    histogram.update(scores, labels)
    assert abs(histogram.roc_auc() - roc_auc_score(labels, scores)) < 1e-3
    assert histogram.grid[[0, 1, -1]].tolist() == [0.0, 0.001, 1.0]


def test_auc_extremes_and_one_class() -> None:
    histogram = ScoreHistogram(10)
    assert math.isnan(histogram.roc_auc())
    histogram.update(np.array([0.2, 0.9]), np.array([True, True]))
    assert math.isnan(histogram.roc_auc())  # no negatives
    histogram.update(np.array([0.1, 0.0]), np.array([0, 0]))
    assert histogram.roc_auc() == 1.0
    reversed_ = ScoreHistogram(10)
    reversed_.update(np.array([0.0, 1.0]), np.array([1, 0]))
    assert reversed_.roc_auc() == 0.0
    tied = ScoreHistogram(10)
    tied.update(np.array([0.5, 0.5]), np.array([1, 0]))
    assert tied.roc_auc() == 0.5
    assert repr(tied) == "ScoreHistogram(bins=10, positives=1, negatives=1)"


def test_large_counts_do_not_overflow() -> None:
    histogram = ScoreHistogram(2)
    histogram.update(np.array([0.0, 1.0]), np.array([False, True]))
    for _ in range(33):  # 2**33 of each class: their product overflows int64
        histogram.merge(copy.deepcopy(histogram))
    assert histogram.positives == histogram.negatives == 2**33
    assert histogram.roc_auc() == 1.0


def test_invalid_input_is_rejected() -> None:
    for bins in (0, -3, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            ScoreHistogram(bins)  # type: ignore[arg-type]
    histogram = ScoreHistogram(10)
    for scores in ([1.01], [-0.1], [np.inf]):
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            histogram.update(np.array(scores), np.array([True]))
    with pytest.raises(ValueError, match="one length"):
        histogram.update(np.array([0.1, 0.2]), np.array([True]))
    with pytest.raises(ValueError, match="0/1"):
        histogram.update(np.array([0.1]), np.array([2]))
    assert histogram == ScoreHistogram(10)  # nothing counted by a rejected batch
    with pytest.raises(ValueError, match="different bins"):
        histogram.merge(ScoreHistogram(20))
