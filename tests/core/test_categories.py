"""CategoryCounts: every step against collections.Counter, and exact under merging."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamwatch.core import CategoryCounts

CATEGORIES = ["north", "south", "east"]
values = st.one_of(st.none(), st.sampled_from([*CATEGORIES, "west", "North", ""]), st.integers(0, 3))


@given(st.lists(st.lists(values, max_size=20), max_size=6))
def test_every_update_matches_a_counter(stream: list[list[object]]) -> None:
    counts = CategoryCounts(CATEGORIES)
    seen: list[object] = []
    for batch in stream:
        counts.update(batch)
        seen += batch
        reference = Counter(str(v) for v in seen if v is not None)
        expected = [reference[c] for c in CATEGORIES]
        expected.append(sum(n for c, n in reference.items() if c not in CATEGORIES))
        assert counts.counts.tolist() == expected
        assert counts.missing == sum(v is None for v in seen)


@given(st.lists(values, max_size=100), st.integers(0, 100))
def test_merging_a_split_equals_the_whole(stream: list[object], cut: int) -> None:
    whole, left, right = CategoryCounts(CATEGORIES), CategoryCounts(CATEGORIES), CategoryCounts(CATEGORIES)
    whole.update(stream)
    left.update(stream[:cut])
    right.update(stream[cut:])
    right.merge(left)
    assert right == whole


def test_categories_must_be_distinct_and_match() -> None:
    with pytest.raises(ValueError, match="distinct"):
        CategoryCounts(["a", "a"])
    with pytest.raises(ValueError, match="different categories"):
        CategoryCounts(["a"]).merge(CategoryCounts(["b"]))
