"""Performance and fairness of a multiclass classifier in one prediction window, fed by joined labels.

The multiclass counterpart of :class:`~streamwatch.core.performance.PerformanceAggregates`,
with the same duck-typed interface (``update``, ``copy``, ``merge``, ``metrics``,
``fairness_breaches``, ``parity_gap_seen``), so the pipeline can keep one per
prediction window in its place. The state is integer counts per (slice, actual
class, predicted class), overall and per slice, so the partials of any split of
a stream merge to exactly what the whole stream gives. Figures equal
scikit-learn's (accuracy, macro and micro F1, per-class precision, recall, F1
and support, the confusion matrix); fairness is judged one class against the
rest with the binary machinery of :mod:`streamwatch.core.fairness`.

Imports numpy, the standard library and :mod:`streamwatch.core` only. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streamwatch.core.confusion import ConfusionCounts, Counts, slice_tables
from streamwatch.core.fairness import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    slice_reports,
    wilson_interval,
)
from streamwatch.core.performance import PerformanceAggregates

__all__ = ["FIELDS", "OTHER", "MulticlassAggregates", "Row", "Segment", "class_name"]

#: The class that counts every class name beyond ``max_classes`` (see :class:`MulticlassAggregates`).
OTHER = "__other__"

#: The attributes ``MulticlassAggregates.__init__`` sets: what a checkpoint writes, field by field.
FIELDS: tuple[str, ...] = (
    "slices",
    "classes",
    "max_classes",
    "max_slices_per_key",
    "_names",
    "_overall",
    "_keys",
    "_tables",
    "_overflow",
)

#: A slice as reported: sorted ``(segment name, value)`` pairs, ``()`` for the overall population.
Segment = tuple[tuple[str, str], ...]
#: ``(metric, value, segment, interval, feature)``; the feature is the class (or a confusion cell), or None.
Row = tuple[str, float, Segment, tuple[float, float] | None, str | None]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_RATES = ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy")
_PARITY = (
    ("demographic_parity_difference", demographic_parity_difference),
    ("demographic_parity_ratio", demographic_parity_ratio),
    ("equalized_odds_difference", equalized_odds_difference),
    ("equal_opportunity_difference", equal_opportunity_difference),
)


def class_name(value: Any) -> str:
    """The name of a class: ``1``, ``1.0``, ``True`` and ``"1"`` are one class, as :func:`is_positive` has them.

    Strings are kept as they are (``"2.0"`` stays ``"2.0"``); booleans become ``"1"`` and ``"0"``;
    integers and floats with an integer value their integer; other numbers ``str(value)``.

    >>> [class_name(v) for v in ("cat", "2.0", True, False, 3, 2.0, -0.0, 2.5, float("nan"), np.int64(7))]
    ['cat', '2.0', '1', '0', '3', '2', '0', '2.5', 'nan', '7']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    return str(value)


def _remap(counts: IntArray, mapping: npt.NDArray[np.intp], k: int) -> IntArray:
    """``counts`` (``(..., j, j)`` over ``j`` classes) over ``k`` classes, class ``i`` moved to ``mapping[i]``;
    classes mapped to one index (folded into :data:`OTHER`) are added up."""
    lead = counts.shape[:-2]
    out = np.zeros((*lead, k, k), dtype=np.int64)
    if mapping.size == 0:
        return out
    if np.unique(mapping).size == mapping.size:
        out[..., mapping[:, None], mapping[None, :]] = counts
    else:  # cell (s, a, p) goes to (s, mapping[a], mapping[p]) of the flat output
        j = mapping.size
        cells = (mapping[:, None] * k + mapping[None, :]).reshape(-1)
        lead_offsets = np.arange(counts.size // (j * j), dtype=np.intp) * (k * k)
        np.add.at(out.reshape(-1), (lead_offsets[:, None] + cells[None, :]).reshape(-1), counts.reshape(-1))
    return out


def _one_vs_rest(tables: IntArray, index: int | None) -> list[Counts]:
    """Binary counts of class ``index`` against the rest, one per matrix of ``tables`` (``(s, k, k)``)."""
    n = tables.sum(axis=(1, 2))
    if index is None:  # a class never seen: every row is a true negative
        return [Counts(tn=int(total)) for total in n.tolist()]
    tp = tables[:, index, index]
    fn = tables[:, index, :].sum(axis=1) - tp
    fp = tables[:, :, index].sum(axis=1) - tp
    tn = n - tp - fn - fp
    return [
        Counts(tp=a, fp=b, tn=c, fn=d)
        for a, b, c, d in zip(tp.tolist(), fp.tolist(), tn.tolist(), fn.tolist(), strict=True)
    ]


class MulticlassAggregates:
    """Mergeable confusion matrices of a multiclass classifier, overall and per slice, and their figures.

    Parameters
    ----------
    slices
        Combinations of segment names to track, as :class:`~streamwatch.core.confusion.ConfusionCounts`
        takes them (``[["gender"], ["region", "gender"]]``). A row whose value is missing for a name of a
        combination is in none of its slices, but counts overall; values are compared as strings.
    classes
        The known classes (the reference profile's), always kept by name. May be empty.
    max_classes
        Most class names kept. Class names outside ``classes`` are kept while the aggregate knows at
        most ``max_classes`` names (``classes`` included); beyond that, the names outside ``classes``
        that sort last are counted under :data:`OTHER` instead (a label or prediction literally
        ``"__other__"`` is that class too). Keeping the first in sort order, not the first seen, keeps
        merging exact under any split of the stream even past the cap: the names kept are the smallest
        of all names seen, whoever saw them (the rule ``ConfusionCounts`` follows for slices). Past the
        cap, though, a name once reported may later move to ``OTHER`` when smaller names arrive.
    max_slices_per_key
        Most slices kept per combination, as in ``ConfusionCounts``: those whose values sort first;
        rows of the others are counted in the combination's overflow.

    Notes
    -----
    Figures follow scikit-learn exactly, over the classes present (as a label or a prediction) in
    the population: ``accuracy_score``, ``f1_score(average="macro")`` and ``(average="micro")``
    with ``labels=None`` (zero division never arises there), per class
    ``precision_recall_fscore_support(average=None)``, ``confusion_matrix``. One difference: a class
    never predicted has no precision, and a class never true no recall, so these are NaN, not
    scikit-learn's 0. Its F1, ``2 tp / (true + predicted)``, is defined (0) and reported as is.

    Classes are kept in sort order and slices in sort order of their values, so two aggregates of the
    same events are equal field by field whatever the split and order they were counted in.

    Examples
    --------
    >>> from streamwatch.core.join import Prediction
    >>> def event(predicted, actual, gender):
    ...     return Prediction(0, "1", "production", predicted, None, (("gender", gender),)), actual
    >>> agg = MulticlassAggregates([["gender"]], classes=["cat", "dog"])
    >>> agg.update([event("cat", "cat", "F"), event("dog", "cat", "F"), event(2.0, 2, "M"), event("dog", "dog", "M")])
    >>> agg.class_names
    ('2', 'cat', 'dog')
    >>> agg.matrix().tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    >>> figures = {(m, s, f): v for m, v, s, _, f in agg.metrics(min_samples=1)}
    >>> figures["accuracy", (), None], round(figures["macro_f1", (), None], 4), figures["micro_f1", (), None]
    (0.75, 0.7778, 0.75)
    >>> figures["class_recall", (("gender", "F"),), "cat"], figures["class_precision", (("gender", "F"),), "cat"]
    (0.5, 1.0)
    >>> figures["confusion", (), '["cat", "dog"]']
    1.0
    >>> agg.one_vs_rest("cat").overall
    Counts(tp=1, fp=0, tn=2, fn=1)
    """

    def __init__(
        self,
        slices: Sequence[Sequence[str]],
        classes: Sequence[str] = (),
        max_classes: int = 50,
        max_slices_per_key: int = 1000,
    ) -> None:
        if max_classes < 1:
            raise ValueError(f"max_classes must be at least 1, got {max_classes}")
        # ConfusionCounts checks the slices and the cap, with the rules the one-vs-rest counts need.
        self.slices = ConfusionCounts(slices, max_slices_per_key=max_slices_per_key).slices
        self.classes = tuple(dict.fromkeys(class_name(c) for c in classes))
        self.max_classes = max_classes
        self.max_slices_per_key = max_slices_per_key
        # The class names the matrices are indexed by, sorted: those seen, after the cap.
        self._names: tuple[str, ...] = ()
        self._overall: IntArray = np.zeros((0, 0), dtype=np.int64)
        # Per combination of names: the values of its slices kept (sorted), their matrices (slice, actual,
        # predicted), and the matrix of the rows of slices beyond the cap.
        self._keys: dict[tuple[str, ...], list[tuple[str, ...]]] = {names: [] for names in self.slices}
        self._tables: dict[tuple[str, ...], IntArray] = {
            names: np.zeros((0, 0, 0), dtype=np.int64) for names in self.slices
        }
        self._overflow: dict[tuple[str, ...], IntArray] = {
            names: np.zeros((0, 0), dtype=np.int64) for names in self.slices
        }

    # -- counting -----------------------------------------------------------------------------------

    def update(self, matches: Sequence[tuple[Any, Any]]) -> None:
        """Add (prediction record, label) pairs from the label join.

        A record has ``.prediction`` (the predicted class) and ``.segments`` (a mapping, or
        ``(name, value)`` pairs); classes are named by :func:`class_name`.
        """
        if not matches:
            return
        n = len(matches)
        labels = [label for _, label in matches]
        predicted = [p.prediction for p, _ in matches]
        # A batch holds a few distinct classes: name each once, then look the codes up in C.
        named = {value: class_name(value) for value in {*labels, *predicted}}
        names = sorted(set(named.values()))
        position = {name: i for i, name in enumerate(names)}
        code = {value: position[name] for value, name in named.items()}
        k = len(names)
        actual = np.fromiter(map(code.__getitem__, labels), dtype=np.intp, count=n)
        guessed = np.fromiter(map(code.__getitem__, predicted), dtype=np.intp, count=n)
        cell = actual * k + guessed
        batch = self._empty()
        batch._names = tuple(names)
        batch._overall = np.bincount(cell, minlength=k * k).astype(np.int64).reshape(k, k)
        batch._tables = {group: np.zeros((0, k, k), dtype=np.int64) for group in self.slices}
        batch._overflow = {group: np.zeros((k, k), dtype=np.int64) for group in self.slices}
        kept = [dict(p.segments) for p, _ in matches]
        used = {name for group in self.slices for name in group}
        segments = {name: np.array([d.get(name) for d in kept], dtype=object) for name in used}
        for group, keys, table in slice_tables(self.slices, segments, cell, k * k):
            batch._tables[group] = table.astype(np.int64).reshape(-1, k, k)
            batch._keys[group] = keys
        self.merge(batch)

    def _empty(self) -> MulticlassAggregates:
        return MulticlassAggregates(self.slices, self.classes, self.max_classes, self.max_slices_per_key)

    def _kept(self, names: set[str]) -> tuple[str, ...]:
        """The class names kept of ``names``, sorted: the known classes, and the others that sort first."""
        known = set(self.classes)
        others = sorted(name for name in names if name not in known and name != OTHER)
        room = max(0, self.max_classes - len(self.classes))
        if len(others) <= room:
            return tuple(sorted(names))
        return tuple(sorted(names.difference(others[room:]) | {OTHER}))

    @staticmethod
    def _mapping(names: tuple[str, ...], kept: tuple[str, ...]) -> npt.NDArray[np.intp]:
        index = {name: i for i, name in enumerate(kept)}
        other = index.get(OTHER, -1)
        return np.array([index.get(name, other) for name in names], dtype=np.intp)

    def copy(self) -> MulticlassAggregates:
        """An independent copy (what ``copy.deepcopy`` gives, much faster)."""
        new = MulticlassAggregates.__new__(MulticlassAggregates)
        new.slices, new.classes = self.slices, self.classes
        new.max_classes, new.max_slices_per_key = self.max_classes, self.max_slices_per_key
        new._names, new._overall = self._names, self._overall.copy()
        new._keys = {group: list(keys) for group, keys in self._keys.items()}
        new._tables = {group: table.copy() for group, table in self._tables.items()}
        new._overflow = {group: table.copy() for group, table in self._overflow.items()}
        return new

    def merge(self, other: MulticlassAggregates) -> None:
        """Add ``other``'s counts (same slices, classes and caps) to these; ``other`` is left as it is."""
        mine = (self.slices, self.classes, self.max_classes, self.max_slices_per_key)
        if mine != (other.slices, other.classes, other.max_classes, other.max_slices_per_key):
            raise ValueError("cannot merge multiclass aggregates over different slices, classes or caps")
        kept = self._kept(set(self._names) | set(other._names))
        k = len(kept)
        same = kept == self._names  # then self's matrices keep their indices and are added to in place
        ours, theirs = self._mapping(self._names, kept), self._mapping(other._names, kept)

        def mapped(counts: IntArray) -> IntArray:
            return counts if same else _remap(counts, ours, k)

        self._overall = mapped(self._overall)
        self._overall += _remap(other._overall, theirs, k)
        for group in self.slices:
            keys, incoming = self._keys[group], other._keys[group]
            overflow = mapped(self._overflow[group])
            overflow += _remap(other._overflow[group], theirs, k)
            self._overflow[group] = overflow
            if not incoming:
                self._tables[group] = mapped(self._tables[group])
                continue
            position = {key: i for i, key in enumerate(keys)}
            if same and all(key in position for key in incoming):
                rows = np.array([position[key] for key in incoming], dtype=np.intp)
                self._tables[group][rows] += _remap(other._tables[group], theirs, k)
                continue
            union = sorted(position.keys() | set(incoming))
            position = {key: i for i, key in enumerate(union)}
            table = np.zeros((len(union), k, k), dtype=np.int64)
            table[np.array([position[key] for key in keys], dtype=np.intp)] = mapped(self._tables[group])
            table[np.array([position[key] for key in incoming], dtype=np.intp)] += _remap(
                other._tables[group], theirs, k
            )
            cap = self.max_slices_per_key
            if len(union) > cap:  # the slices beyond the cap, in sort order of their values, to the overflow
                self._overflow[group] += table[cap:].sum(axis=0)
                union, table = union[:cap], table[:cap].copy()
            self._keys[group], self._tables[group] = union, table
        self._names = kept

    # -- reading ------------------------------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes counted, sorted: the rows and columns of :meth:`matrix`."""
        return self._names

    @property
    def n(self) -> int:
        """Labelled predictions counted."""
        return int(self._overall.sum())

    def matrix(self, segment: Segment = ()) -> IntArray:
        """The confusion matrix (rows actual, columns predicted, over :attr:`class_names`) of the overall
        population (``()``) or of one slice kept, its ``(name, value)`` pairs in any order; zeros for a
        slice never seen or beyond the cap."""
        if not segment:
            return self._overall.copy()
        wanted = dict(segment)
        for group in self.slices:
            if set(group) == wanted.keys():
                values = tuple(str(wanted[name]) for name in group)
                if values in self._keys[group]:
                    found: IntArray = self._tables[group][self._keys[group].index(values)]
                    return found.copy()
                break
        k = len(self._names)
        return np.zeros((k, k), dtype=np.int64)

    def by_slice(self) -> dict[Segment, IntArray]:
        """The matrix of every slice kept, keyed by its sorted ``(name, value)`` pairs, in slice order."""
        return {
            _segment(group, values): table
            for group in self.slices
            for values, table in zip(self._keys[group], self._tables[group], strict=True)
        }

    @property
    def overflow(self) -> dict[tuple[str, ...], IntArray]:
        """Per combination of names, the matrix of the rows in slices beyond the cap."""
        return {group: table.copy() for group, table in self._overflow.items()}

    def one_vs_rest(self, cls: Any) -> ConfusionCounts:
        """Binary counts of class ``cls`` against the rest, over the same slices and cap: what
        ``ConfusionCounts.update`` gives on these events with ``y_true == cls`` and ``y_pred == cls``
        (class names as :func:`class_name` gives them; a class folded into :data:`OTHER` is counted there)."""
        name = class_name(cls)
        index = self._names.index(name) if name in self._names else None
        counts = ConfusionCounts(self.slices, max_slices_per_key=self.max_slices_per_key)
        # ConfusionCounts has no constructor from counts: fill what its __init__ set up.
        counts._overall = _one_vs_rest(self._overall[None], index)[0]
        for group in self.slices:
            counts._slices[group] = dict(zip(self._keys[group], _one_vs_rest(self._tables[group], index), strict=True))
            counts._overflow[group] = _one_vs_rest(self._overflow[group][None], index)[0]
        return counts

    def _binary(self, cls: str) -> PerformanceAggregates:
        """A binary aggregate of ``cls`` against the rest, to reuse its fairness logic (only ``confusion`` is set)."""
        view = PerformanceAggregates(self.slices, positive_label=cls)
        view.confusion = self.one_vs_rest(cls)
        return view

    def _present(self) -> list[str]:
        """Classes labelled or predicted at least once overall, sorted."""
        seen = self._overall.sum(axis=0) + self._overall.sum(axis=1)
        return [name for name, count in zip(self._names, seen.tolist(), strict=True) if count]

    def metrics(self, min_samples: int = 30, confidence: float = 0.95) -> list[Row]:
        """``(metric, value, segment, interval, feature)`` for the window.

        For the overall population (segment ``()``, always) and each slice with at least
        ``min_samples`` labelled: ``labelled``, ``accuracy`` (with its Wilson interval at
        ``confidence``), ``macro_f1`` and ``micro_f1``; per class present (feature: the class)
        ``class_precision``, ``class_recall``, ``class_f1`` and ``class_support``; per non-zero cell
        of the confusion matrix ``confusion`` (feature: ``json.dumps([actual, predicted])``).
        Then per class present overall, one against the rest: per slice, the rates of
        :func:`~streamwatch.core.fairness.slice_reports` with their intervals, and per combination of
        names the parity figures (segment ``((name, "*"), ...)``, as the binary aggregates report them).
        """
        out: list[Row] = []
        _population(self._overall, self._names, (), confidence, out)
        for group in self.slices:
            for values, table in zip(self._keys[group], self._tables[group], strict=True):
                if int(table.sum()) >= min_samples:
                    _population(table, self._names, _segment(group, values), confidence, out)
        if not self.slices:
            return out
        for cls in self._present():
            counts = self.one_vs_rest(cls)
            for report in slice_reports(counts, min_samples=min_samples, confidence=confidence):
                segment = tuple(sorted(report.slice))
                for metric in _RATES:
                    rate = getattr(report, metric)
                    out.append((metric, rate.value, segment, (rate.low, rate.high), cls))
            for group in self.slices:
                tag = tuple((name, "*") for name in group)  # parity is about the whole segment, not one slice
                for metric, function in _PARITY:
                    out.append((metric, function(counts, list(group), min_samples=min_samples), tag, None, cls))
        return out

    def fairness_breaches(
        self, min_samples: int = 30, alpha: float = 0.05
    ) -> list[tuple[tuple[str, ...], float, dict[str, Any]]]:
        """:meth:`PerformanceAggregates.fairness_breaches` of each class present against the rest; the
        evidence also holds ``"class"``."""
        return [
            (names, ratio, evidence | {"class": cls})
            for cls in self._present()
            for names, ratio, evidence in self._binary(cls).fairness_breaches(min_samples, alpha)
        ]

    def parity_gap_seen(self, min_samples: int, confidence: float, min_gap: float) -> bool:
        """Whether some class present, against the rest, shows a gap as
        :meth:`PerformanceAggregates.parity_gap_seen` defines it."""
        return any(self._binary(cls).parity_gap_seen(min_samples, confidence, min_gap) for cls in self._present())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MulticlassAggregates):
            return NotImplemented
        return (
            self._settings() == other._settings()
            and np.array_equal(self._overall, other._overall)
            and all(np.array_equal(self._tables[g], other._tables[g]) for g in self.slices)
            and all(np.array_equal(self._overflow[g], other._overflow[g]) for g in self.slices)
        )

    def _settings(self) -> tuple[object, ...]:
        return (self.slices, self.classes, self.max_classes, self.max_slices_per_key, self._names, self._keys)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        kept = sum(len(keys) for keys in self._keys.values())
        return f"MulticlassAggregates(slices={list(self.slices)}, classes={len(self._names)}, n={self.n}, kept={kept})"


def _segment(group: tuple[str, ...], values: tuple[str, ...]) -> Segment:
    return tuple(sorted(zip(group, values, strict=True)))


def _population(matrix: IntArray, names: tuple[str, ...], segment: Segment, confidence: float, out: list[Row]) -> None:
    """The rows of one population's confusion matrix, computed as scikit-learn computes them."""
    true, predicted, tp = matrix.sum(axis=1), matrix.sum(axis=0), np.diagonal(matrix)
    n, correct = int(true.sum()), int(tp.sum())
    present = (true + predicted) > 0
    # precision_recall_fscore_support: F = (1 + b²) tp / (b² true + predicted), in float64.
    f1: FloatArray = (2.0 * tp[present].astype(np.float64)) / (
        true[present].astype(np.float64) + predicted[present].astype(np.float64)
    )
    out.append(("labelled", float(n), segment, None, None))
    out.append(
        (
            "accuracy",
            correct / n if n else math.nan,
            segment,
            wilson_interval(correct, n, confidence) if n else None,
            None,
        )
    )
    out.append(("macro_f1", float(np.nanmean(f1)) if f1.size else math.nan, segment, None, None))
    out.append(("micro_f1", 2.0 * correct / (2.0 * n) if n else math.nan, segment, None, None))
    for i in np.flatnonzero(present).tolist():
        cls, hits, truths, guesses = names[i], int(tp[i]), int(true[i]), int(predicted[i])
        out.append(("class_precision", hits / guesses if guesses else math.nan, segment, None, cls))
        out.append(("class_recall", hits / truths if truths else math.nan, segment, None, cls))
        out.append(("class_f1", 2.0 * hits / float(truths + guesses), segment, None, cls))
        out.append(("class_support", float(truths), segment, None, cls))
    actual, guessed = np.nonzero(matrix)
    for a, p in zip(actual.tolist(), guessed.tolist(), strict=True):
        out.append(("confusion", float(matrix[a, p]), segment, None, json.dumps([names[a], names[p]])))
