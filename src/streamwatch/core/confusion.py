"""Binary confusion counts, overall and per slice of the traffic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ConfusionCounts", "Counts", "SliceKey", "slice_tables"]

#: A slice: ``(segment name, value)`` pairs, e.g. ``(("gender", "F"), ("region", "north"))``.
SliceKey = tuple[tuple[str, str], ...]


def slice_tables(
    slices: Sequence[tuple[str, ...]], segments: Mapping[str, np.ndarray], cell: np.ndarray, cells: int
) -> Iterator[tuple[tuple[str, ...], list[tuple[str, ...]], np.ndarray]]:
    """Each row's ``cell`` (an index below ``cells``) counted per slice of each combination of segment names:
    ``(names, the values of each slice present, counts of shape (slices, cells))``.

    ``segments`` maps a segment name to its values lined up with the rows (``None``: missing); a row missing a
    value of a combination is in none of its slices. Each segment is encoded once, however many
    combinations use it (code -1 for a missing value, else an index into the sorted distinct values, as
    strings). The confusion, estimate and multiclass counts all slice their batches through this.

    >>> [(names, keys, t.tolist()) for names, keys, t in slice_tables(
    ...     [("g",)], {"g": np.array(["F", "M", None, "F"], dtype=object)}, np.array([0, 1, 1, 1]), 2)]
    [(('g',), [('F',), ('M',)], [[1, 1], [0, 1]])]
    """
    levels: dict[str, np.ndarray] = {}
    codes: dict[str, np.ndarray] = {}
    for name in {n for names in slices for n in names} & set(segments):
        values = np.asarray(segments[name], dtype=object)
        if values.shape != cell.shape:
            raise ValueError(f"segment {name!r} has {values.size} values for {cell.size} rows")
        present = np.not_equal(values, np.array(None, dtype=object))  # None as numpy takes it: a 0-d object array
        levels[name], inverse = np.unique(values[present].astype(str), return_inverse=True)
        codes[name] = np.full(values.size, -1, dtype=np.intp)
        codes[name][present] = inverse.reshape(-1)
    for names in slices:
        if not all(name in codes for name in names):
            continue
        stacked = np.stack([codes[name] for name in names], axis=1)
        complete = (stacked >= 0).all(axis=1)
        if not complete.any():
            continue
        groups, group = np.unique(stacked[complete], axis=0, return_inverse=True)
        table = np.bincount(cells * group.reshape(-1) + cell[complete], minlength=cells * len(groups))
        keys = [
            tuple(str(levels[n][c]) for n, c in zip(names, combination, strict=True)) for combination in groups.tolist()
        ]
        yield names, keys, table.reshape(-1, cells)


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


@dataclass(frozen=True)
class Counts:
    """Confusion counts of a binary classifier, with the rates derived from them.

    Every rate is NaN when its denominator is zero, rather than 0 as in
    scikit-learn's ``zero_division`` default: a slice without positives has
    no true positive rate, and a 0 would read as a failing model.

    Examples
    --------
    >>> c = Counts(tp=3, fp=1, tn=4, fn=2)
    >>> c.n, c.selection_rate, c.tpr, c.fpr, c.precision, c.accuracy
    (10, 0.4, 0.6, 0.2, 0.75, 0.7)
    >>> Counts(tp=0, fp=0, tn=5, fn=0).tpr
    nan
    >>> c + Counts(tp=1, fp=0, tn=0, fn=0)
    Counts(tp=4, fp=1, tn=4, fn=2)
    """

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def positives(self) -> int:
        """Actual positives, ``tp + fn``."""
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        """Actual negatives, ``tn + fp``."""
        return self.tn + self.fp

    @property
    def selected(self) -> int:
        """Predicted positives, ``tp + fp``."""
        return self.tp + self.fp

    @property
    def selection_rate(self) -> float:
        """Share predicted positive, ``(tp + fp) / n``."""
        return _rate(self.selected, self.n)

    @property
    def tpr(self) -> float:
        """True positive rate (recall), ``tp / (tp + fn)``."""
        return _rate(self.tp, self.positives)

    @property
    def fpr(self) -> float:
        """False positive rate, ``fp / (fp + tn)``."""
        return _rate(self.fp, self.negatives)

    @property
    def fnr(self) -> float:
        """False negative rate, ``fn / (tp + fn)``."""
        return _rate(self.fn, self.positives)

    @property
    def tnr(self) -> float:
        """True negative rate (specificity), ``tn / (tn + fp)``."""
        return _rate(self.tn, self.negatives)

    @property
    def precision(self) -> float:
        """``tp / (tp + fp)``."""
        return _rate(self.tp, self.selected)

    @property
    def accuracy(self) -> float:
        """``(tp + tn) / n``."""
        return _rate(self.tp + self.tn, self.n)


def _counts(row: np.ndarray) -> Counts:
    """Counts from a ``[tn, fp, fn, tp]`` row, the order of the cell code ``2 * y_true + y_pred``."""
    tn, fp, fn, tp = (int(x) for x in row)
    return Counts(tp=tp, fp=fp, tn=tn, fn=fn)


def _as_bool(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if values.dtype != bool and not np.isin(values, (0, 1)).all():
        raise ValueError(f"{name} must be booleans or 0/1")
    return values.astype(bool)


class ConfusionCounts:
    """Mergeable confusion counts of a binary classifier, overall and per slice.

    ``slices`` says which combinations of segment names to track:
    ``[["gender"], ["gender", "region"]]`` tracks one slice per gender value
    and one per (gender, region) pair seen. A row whose value is missing
    (``None``, or the segment absent from the batch) for any name of a
    combination is in none of that combination's slices, but is still counted
    overall. Values are compared as strings.

    Memory grows with the distinct values seen, so each combination keeps at
    most ``max_slices_per_key`` slices: those whose values sort first. Rows
    of the other slices are added to the combination's :attr:`overflow`
    counts instead. Keeping the first values in sort order, rather than the
    first seen, keeps merging exact under any split of the stream: the slices
    kept are the ``max_slices_per_key`` smallest of all values seen, whoever
    saw them. Segments of low cardinality (gender, region, plan) never reach
    the cap; it guards against an identifier sent as a segment by mistake.

    Counts are integers, so merging the partials of any split of a stream
    equals counting the whole stream.

    Parameters
    ----------
    slices
        Combinations of segment names to track, each a sequence of distinct names.
    max_slices_per_key
        Most slices kept per combination.

    Examples
    --------
    >>> c = ConfusionCounts([["gender"], ["gender", "region"]])
    >>> c.update(
    ...     y_true=np.array([1, 1, 0, 0, 1], dtype=bool),
    ...     y_pred=np.array([1, 0, 0, 1, 1], dtype=bool),
    ...     segments={"gender": np.array(["F", "F", "M", None, "M"], dtype=object),
    ...               "region": np.array(["north", "south", "north", "north", "north"], dtype=object)},
    ... )
    >>> c.overall
    Counts(tp=2, fp=1, tn=1, fn=1)
    >>> c.by_slice(["gender"])
    {(('gender', 'F'),): Counts(tp=1, fp=0, tn=0, fn=1), (('gender', 'M'),): Counts(tp=1, fp=0, tn=1, fn=0)}
    >>> c.by_slice()[(("gender", "M"), ("region", "north"))].accuracy
    1.0
    """

    def __init__(self, slices: Sequence[Sequence[str]], *, max_slices_per_key: int = 1000) -> None:
        self.slices = tuple(tuple(names) for names in slices)
        self.max_slices_per_key = max_slices_per_key
        for names in self.slices:
            if not names or len(set(names)) != len(names) or not all(isinstance(name, str) for name in names):
                raise ValueError(f"each slice needs distinct segment names, got {names!r}")
        if len(set(self.slices)) != len(self.slices):
            raise ValueError("slices must be distinct")
        if max_slices_per_key < 1:
            raise ValueError("max_slices_per_key must be at least 1")
        self._overall = Counts()
        # names -> values -> counts; values are tuples of strings, lined up with the names.
        self._slices: dict[tuple[str, ...], dict[tuple[str, ...], Counts]] = {names: {} for names in self.slices}
        self._overflow = dict.fromkeys(self.slices, Counts())

    def update(self, y_true: np.ndarray, y_pred: np.ndarray, segments: Mapping[str, np.ndarray]) -> None:
        """Count a batch of (label, prediction) pairs and their segments.

        Parameters
        ----------
        y_true, y_pred
            Actual and predicted classes, booleans (or 0/1), one per row.
        segments
            Segment name to values lined up with the rows; ``None`` is missing.
            Names no slice uses are ignored.
        """
        y_true, y_pred = _as_bool("y_true", y_true), _as_bool("y_pred", y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"y_true and y_pred differ in length: {y_true.size} and {y_pred.size}")
        cell = 2 * y_true.astype(np.intp) + y_pred
        tables = list(slice_tables(self.slices, segments, cell, 4))  # (a rejected batch counts nowhere)
        self._overall += _counts(np.bincount(cell, minlength=4))
        for names, keys, table in tables:
            tracked = self._slices[names]
            for key, row in zip(keys, table, strict=True):
                tracked[key] = tracked.get(key, Counts()) + _counts(row)
            self._cap(names)

    def _cap(self, names: tuple[str, ...]) -> None:
        """Move the slices beyond the cap, in sort order of their values, to the overflow counts."""
        tracked = self._slices[names]
        if len(tracked) <= self.max_slices_per_key:
            return
        for values in sorted(tracked)[self.max_slices_per_key :]:
            self._overflow[names] += tracked.pop(values)

    def copy(self) -> ConfusionCounts:
        """An independent copy (``Counts`` are immutable, so copying the dicts suffices)."""
        new = ConfusionCounts.__new__(ConfusionCounts)
        new.slices, new.max_slices_per_key, new._overall = self.slices, self.max_slices_per_key, self._overall
        new._slices = {names: dict(tracked) for names, tracked in self._slices.items()}
        new._overflow = dict(self._overflow)
        return new

    def merge(self, other: ConfusionCounts) -> None:
        """Add ``other``'s counts (same slices and cap) to these."""
        if (self.slices, self.max_slices_per_key) != (other.slices, other.max_slices_per_key):
            raise ValueError("cannot merge confusion counts over different slices or caps")
        self._overall += other._overall
        for names in self.slices:
            tracked = self._slices[names]
            for values, counts in other._slices[names].items():
                tracked[values] = tracked.get(values, Counts()) + counts
            self._overflow[names] += other._overflow[names]
            self._cap(names)

    @property
    def overall(self) -> Counts:
        """Counts over every row, whatever its segments."""
        return self._overall

    def by_slice(self, names: Sequence[str] | None = None) -> dict[SliceKey, Counts]:
        """Counts per slice kept, of one combination of names or of all, in sort order.

        Parameters
        ----------
        names
            A combination given to the constructor, e.g. ``["gender"]``; all when ``None``.
        """
        chosen = self.slices if names is None else (self._names(names),)
        return {
            tuple(zip(combination, values, strict=True)): self._slices[combination][values]
            for combination in chosen
            for values in sorted(self._slices[combination])
        }

    @property
    def overflow(self) -> dict[tuple[str, ...], Counts]:
        """Per combination, counts of the rows in slices beyond the cap."""
        return dict(self._overflow)

    def total(self, names: Sequence[str]) -> Counts:
        """Counts over the rows whose segments ``names`` are all known: every slice of them, plus overflow."""
        names = self._names(names)
        return sum(self._slices[names].values(), self._overflow[names])

    def _names(self, names: Sequence[str]) -> tuple[str, ...]:
        names = (names,) if isinstance(names, str) else tuple(names)
        if names not in self._slices:
            raise KeyError(f"slice {names!r} is not tracked; tracked: {list(self.slices)}")
        return names

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ConfusionCounts)
            and (self.slices, self.max_slices_per_key) == (other.slices, other.max_slices_per_key)
            and (self._overall, self._slices, self._overflow) == (other._overall, other._slices, other._overflow)
        )

    def __repr__(self) -> str:
        kept = sum(len(tracked) for tracked in self._slices.values())
        return f"ConfusionCounts(slices={list(self.slices)}, n={self._overall.n}, kept={kept})"
