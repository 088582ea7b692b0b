"""Counts of a categorical feature against the reference's categories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np

__all__ = ["CategoryCounts"]

_STR_OR_NONE = frozenset({str, type(None)})


class CategoryCounts:
    """Mergeable counts per reference category, plus unseen values and missing ones.

    The reference fixes the categories (capped for high cardinality by the
    profile); a value outside them counts as *unseen*. ``counts`` has one entry
    per category, then the unseen count last, so it lines up with a
    reference's counts for drift statistics.

    Examples
    --------
    >>> c = CategoryCounts(["north", "south"])
    >>> c.update(["north", "north", "west", None, "south"])
    >>> c.counts.tolist(), c.unseen, c.missing, c.n
    ([2, 1, 1], 1, 1, 4)
    """

    def __init__(self, categories: Sequence[str]) -> None:
        self.categories = tuple(categories)
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be distinct")
        self._index: dict[object, int] = {category: i for i, category in enumerate(self.categories)}
        self._index[None] = len(self.categories) + 1
        self._lookup = self._index.get
        self._counts = np.zeros(len(self.categories) + 1, dtype=np.int64)
        self._missing = 0

    @classmethod
    def from_counts(cls, categories: Sequence[str], counts: Sequence[int], *, missing: int = 0) -> CategoryCounts:
        """Rebuild counts from storage: one per category, then the unseen count."""
        rebuilt = cls(categories)
        stored = np.asarray(counts, dtype=np.int64)
        if stored.shape != rebuilt._counts.shape or np.any(stored < 0):
            raise ValueError(
                f"need {rebuilt._counts.size} non-negative counts for {len(rebuilt.categories)} categories"
            )
        rebuilt._counts[:] = stored
        rebuilt._missing = int(missing)
        return rebuilt

    def update(self, values: Iterable[object]) -> None:
        """Count a batch of values; ``None`` means missing. Values are compared as strings."""
        values = values if isinstance(values, list) else list(values)
        if not _STR_OR_NONE.issuperset(map(type, values)):
            values = [v if v is None or type(v) is str else str(v) for v in values]
        # dict.get over the batch runs in C; None lands in the extra "missing" slot.
        counts = np.bincount(
            np.fromiter(map(self._lookup, values, repeat(len(self.categories))), np.intp, len(values)),
            minlength=self._counts.size + 1,
        )
        self._counts += counts[:-1]
        self._missing += int(counts[-1])

    def merge(self, other: CategoryCounts) -> None:
        if self.categories != other.categories:
            raise ValueError("cannot merge counts over different categories")
        self._counts += other._counts
        self._missing += other._missing

    @property
    def counts(self) -> np.ndarray:
        """Counts per category (a copy), the unseen count last."""
        return self._counts.copy()

    @property
    def unseen(self) -> int:
        return int(self._counts[-1])

    @property
    def missing(self) -> int:
        return self._missing

    @property
    def n(self) -> int:
        """Values counted, missing ones excluded."""
        return int(self._counts.sum())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CategoryCounts)
            and self.categories == other.categories
            and np.array_equal(self._counts, other._counts)
            and self._missing == other._missing
        )

    def __repr__(self) -> str:
        return f"CategoryCounts(categories={len(self.categories)}, n={self.n}, unseen={self.unseen})"
