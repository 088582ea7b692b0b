"""ConfusionCounts: every update against a row-by-row count, and exact under any split and merge."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.core.confusion import ConfusionCounts, Counts

SLICES = [["gender"], ["region"], ["gender", "region"]]
rows = st.tuples(
    st.booleans(),
    st.booleans(),
    st.sampled_from(["F", "M", "X", None]),
    st.sampled_from(["north", "south", "east", "west", "Nord", None]),
)
streams = st.lists(rows, max_size=120)


def batch(chunk: list[tuple[bool, bool, str | None, str | None]]) -> tuple[np.ndarray, np.ndarray, dict]:
    y_true = np.array([r[0] for r in chunk], dtype=bool)
    y_pred = np.array([r[1] for r in chunk], dtype=bool)
    segments = {
        "gender": np.array([r[2] for r in chunk], dtype=object),
        "region": np.array([r[3] for r in chunk], dtype=object),
    }
    return y_true, y_pred, segments


def counted(chunk: list[tuple[bool, bool, str | None, str | None]], **kwargs: int) -> ConfusionCounts:
    counts = ConfusionCounts(SLICES, **kwargs)
    counts.update(*batch(chunk))
    return counts


def expected(seen: list[tuple[bool, bool, str | None, str | None]]) -> tuple[Counts, dict]:
    """An independent count, one row at a time."""
    cells: Counter = Counter()
    for t, p, gender, region in seen:
        outcome = {(True, True): "tp", (False, True): "fp", (False, False): "tn", (True, False): "fn"}[(t, p)]
        cells[(), outcome] += 1
        keys = [(("gender", gender),), (("region", region),), (("gender", gender), ("region", region))]
        for key in keys:
            if all(value is not None for _, value in key):
                cells[key, outcome] += 1
    by_key: dict = {}
    for (key, outcome), n in cells.items():
        by_key.setdefault(key, Counter())[outcome] = n
    table = {key: Counts(**c) for key, c in by_key.items()}
    return table.pop((), Counts()), table


@given(st.lists(streams, max_size=6))
def test_every_update_matches_a_row_by_row_count(stream: list[list]) -> None:
    counts = ConfusionCounts(SLICES)
    seen: list = []
    for chunk in stream:
        counts.update(*batch(chunk))
        seen += chunk
        overall, table = expected(seen)
        assert counts.overall == overall
        assert counts.by_slice() == table
        assert list(counts.by_slice()) == sorted(table, key=lambda k: (len(k), k[0][0], k))
        for names in map(tuple, SLICES):
            assert counts.total(names) == sum(counts.by_slice(names).values(), Counts())
            assert counts.overflow[names] == Counts()


def merged(parts: list[ConfusionCounts], **kwargs: int) -> ConfusionCounts:
    total = ConfusionCounts(SLICES, **kwargs)
    for part in parts:
        total.merge(part)
    return total


@given(streams, st.lists(st.integers(0, 120), max_size=6), st.sampled_from([1000, 1, 2, 3]))
def test_merging_any_split_equals_the_whole(stream: list, cuts: list[int], cap: int) -> None:
    # Small caps too: the slices kept must not depend on which partial saw which value.
    whole = counted(stream, max_slices_per_key=cap)
    bounds = [0, *sorted(c for c in cuts if c <= len(stream)), len(stream)]
    parts = [counted(stream[start:end], max_slices_per_key=cap) for start, end in itertools.pairwise(bounds)]
    assert merged(parts, max_slices_per_key=cap) == whole == merged(parts[::-1], max_slices_per_key=cap)
    sequential = ConfusionCounts(SLICES, max_slices_per_key=cap)
    for start, end in itertools.pairwise(bounds):
        sequential.update(*batch(stream[start:end]))
    assert sequential == whole


@given(streams, st.integers(1, 4))
def test_the_cap_keeps_the_first_values_in_sort_order_and_counts_the_rest(stream: list, cap: int) -> None:
    capped, uncapped = counted(stream, max_slices_per_key=cap), counted(stream)
    for names in map(tuple, SLICES):
        every = uncapped.by_slice(names)
        kept = dict(itertools.islice(every.items(), cap))
        assert capped.by_slice(names) == kept
        assert capped.overflow[names] == sum((every[k] for k in every if k not in kept), Counts())
        assert capped.total(names) == uncapped.total(names)
    assert capped.overall == uncapped.overall


def test_counts_derive_rates_with_nan_for_empty_denominators() -> None:
    c = Counts(tp=6, fp=2, tn=9, fn=3)
    assert (c.n, c.positives, c.negatives, c.selected) == (20, 9, 11, 8)
    assert c.selection_rate == 8 / 20 and c.accuracy == 15 / 20
    assert (c.tpr, c.fnr, c.fpr, c.tnr, c.precision) == (6 / 9, 3 / 9, 2 / 11, 9 / 11, 6 / 8)
    empty = Counts()
    rates = [empty.selection_rate, empty.tpr, empty.fpr, empty.fnr, empty.tnr, empty.precision, empty.accuracy]
    assert all(math.isnan(r) for r in rates)
    no_positives = Counts(tn=4, fp=1)
    assert math.isnan(no_positives.tpr) and no_positives.precision == 0.0 and no_positives.fpr == 0.2
    assert math.isnan(Counts(tn=4, fn=1).precision)


def test_absent_segments_and_integer_labels() -> None:
    counts = ConfusionCounts([["gender"], ["gender", "region"]])
    counts.update(np.array([1, 0, 1]), np.array([1, 1, 0]), {"gender": np.array(["F", "M", "F"]), "other": []})
    assert counts.overall == Counts(tp=1, fp=1, fn=1)
    assert counts.by_slice(["gender", "region"]) == {}  # region never sent: in no intersectional slice
    assert counts.by_slice("gender") == {(("gender", "F"),): Counts(tp=1, fn=1), (("gender", "M"),): Counts(fp=1)}
    counts.update(np.array([], dtype=bool), np.array([], dtype=bool), {})
    counts.update(np.array([True]), np.array([True]), {"gender": np.array([7], dtype=object)})
    assert counts.by_slice("gender")[(("gender", "7"),)] == Counts(tp=1)  # values compared as strings
    assert "n=4" in repr(counts)


def test_invalid_input_is_rejected() -> None:
    for bad in ([[]], [["a", "a"]], [["a"], ["a"]], [[1]]):
        with pytest.raises(ValueError, match="distinct"):
            ConfusionCounts(bad)
    with pytest.raises(ValueError, match="at least 1"):
        ConfusionCounts([["a"]], max_slices_per_key=0)
    counts = ConfusionCounts([["a"]])
    with pytest.raises(ValueError, match="differ in length"):
        counts.update(np.ones(2, dtype=bool), np.ones(3, dtype=bool), {})
    with pytest.raises(ValueError, match="0/1"):
        counts.update(np.array([2]), np.array([1]), {})
    with pytest.raises(ValueError, match="one-dimensional"):
        counts.update(np.ones((1, 1), dtype=bool), np.ones((1, 1), dtype=bool), {})
    with pytest.raises(ValueError, match="segment 'a' has 1 values for 2 rows"):
        counts.update(np.ones(2, dtype=bool), np.ones(2, dtype=bool), {"a": np.array(["x"], dtype=object)})
    assert counts == ConfusionCounts([["a"]])  # nothing counted by a rejected batch
    with pytest.raises(KeyError, match="not tracked"):
        counts.by_slice(["b"])
    with pytest.raises(ValueError, match="different slices"):
        counts.merge(ConfusionCounts([["b"]]))
    with pytest.raises(ValueError, match="different slices"):
        counts.merge(ConfusionCounts([["a"]], max_slices_per_key=5))
