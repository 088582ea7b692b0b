"""MulticlassAggregates: every figure against scikit-learn, exact under any split and merge, and its
one-vs-rest counts against ConfusionCounts counting the same events."""

from __future__ import annotations

import copy
import itertools
import json
import math
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.utils.multiclass import unique_labels

from streamwatch.core.confusion import ConfusionCounts
from streamwatch.core.fairness import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    slice_reports,
)
from streamwatch.core.join import Prediction
from streamwatch.core.multiclass import FIELDS, OTHER, MulticlassAggregates, class_name
from streamwatch.core.performance import PerformanceAggregates

# The second combination's names are not in sort order: reported segments are sorted pairs.
SLICES = [["gender"], ["region", "gender"]]
POPULATION = {"labelled", "accuracy", "macro_f1", "micro_f1", "class_precision", "class_recall", "class_f1"}
POPULATION |= {"class_support", "confusion"}


def is_population(row: tuple) -> bool:
    """A row of a population's figures, not of one class against the rest (whose "accuracy" names a class)."""
    return row[0] in POPULATION and not (row[0] == "accuracy" and row[4] is not None)


Event = tuple[Any, Any, str | None, str | None]  # (label, prediction, gender, region)

# Raw classes as producers send them: 1, 1.0, True and "1" are one class; 2.0 and 2 another.
raw_classes = st.sampled_from(["a", "b", "c", "d", "e", 1, 1.0, True, "1", 2.0, 2, 0, False, 2.5])
events = st.tuples(
    raw_classes,
    raw_classes,
    st.sampled_from(["F", "M", "X", None]),
    st.sampled_from(["north", "south", "east", None]),
)
streams = st.lists(events, max_size=80)


def record(prediction: Any, gender: str | None, region: str | None) -> Prediction:
    segments = tuple((name, value) for name, value in (("gender", gender), ("region", region)) if value is not None)
    return Prediction(0, "1", "production", prediction, None, segments)


def matches(stream: list[Event]) -> list[tuple[Prediction, Any]]:
    return [(record(predicted, gender, region), label) for label, predicted, gender, region in stream]


def counted(stream: list[Event], **kwargs: Any) -> MulticlassAggregates:
    agg = MulticlassAggregates(SLICES, **kwargs)
    agg.update(matches(stream))
    return agg


def capped(names: list[str], classes: tuple[str, ...], max_classes: int) -> dict[str, str]:
    """The reference rule for the class cap: known classes stay, of the others the smallest."""
    others = sorted({n for n in names if n not in classes and n != OTHER})
    room = max(0, max_classes - len(classes))
    return {n: (OTHER if n in others[room:] else n) for n in names}


def populations(stream: list[Event], max_slices_per_key: int = 1000) -> dict[tuple, list[int]]:
    """Row indices of the overall population and of each slice kept, keyed by sorted (name, value) pairs."""
    out: dict[tuple, list[int]] = {(): list(range(len(stream)))}
    for names in SLICES:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (_, _, gender, region) in enumerate(stream):
            values = {"gender": gender, "region": region}
            if all(values[name] is not None for name in names):
                groups[tuple(str(values[name]) for name in names)].append(i)
        for key in sorted(groups)[:max_slices_per_key]:
            out[tuple(sorted(zip(names, key, strict=True)))] = groups[key]
    return out


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def reference(
    stream: list[Event],
    min_samples: int,
    classes: tuple[str, ...] = (),
    max_classes: int = 50,
    confidence: float = 0.95,
) -> dict[tuple, tuple[float, Any]]:
    """Every population row, as scikit-learn (and scipy, for the interval) computes it."""
    names = capped([class_name(v) for e in stream for v in e[:2]], classes, max_classes)
    y_true_all = np.array([names[class_name(e[0])] for e in stream], dtype=object)
    y_pred_all = np.array([names[class_name(e[1])] for e in stream], dtype=object)
    out: dict[tuple, tuple[float, Any]] = {}
    for segment, rows in populations(stream).items():
        if segment and len(rows) < min_samples:
            continue
        y_true, y_pred = y_true_all[rows].astype(str), y_pred_all[rows].astype(str)
        out["labelled", segment, None] = (float(len(rows)), None)
        if not rows:
            for metric in ("accuracy", "macro_f1", "micro_f1"):
                out[metric, segment, None] = (math.nan, None)
            continue
        correct = int((y_true == y_pred).sum())
        ci = binomtest(correct, len(rows)).proportion_ci(confidence, method="wilson")
        out["accuracy", segment, None] = (accuracy_score(y_true, y_pred), (ci.low, ci.high))
        out["macro_f1", segment, None] = (f1_score(y_true, y_pred, average="macro", zero_division=0), None)
        out["micro_f1", segment, None] = (f1_score(y_true, y_pred, average="micro"), None)
        labels = unique_labels(y_true, y_pred)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, average=None, zero_division=np.nan
        )
        for i, cls in enumerate(labels):
            out["class_precision", segment, cls] = (precision[i], None)
            out["class_recall", segment, cls] = (recall[i], None)
            out["class_f1", segment, cls] = (f1[i], None)
            out["class_support", segment, cls] = (float(support[i]), None)
        with warnings.catch_warnings():  # "a single label was found": labels are given
            warnings.simplefilter("ignore")
            matrix = confusion_matrix(y_true, y_pred, labels=labels)
        for a, p in zip(*np.nonzero(matrix), strict=True):
            out["confusion", segment, json.dumps([str(labels[a]), str(labels[p])])] = (float(matrix[a, p]), None)
    return out


def population_rows(agg: MulticlassAggregates, min_samples: int) -> dict[tuple, tuple[float, Any]]:
    out = {}
    for row in agg.metrics(min_samples):
        metric, value, segment, interval, feature = row
        if is_population(row):
            key = (metric, segment, feature)
            assert key not in out, key
            out[key] = (value, interval)
    return out


def assert_rows_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, (value, interval) in want.items():
        assert same(got[key][0], value), (key, got[key][0], value)
        assert got[key][1] == interval, (key, got[key][1], interval)


def assert_identical(a: MulticlassAggregates, b: MulticlassAggregates) -> None:
    """Field by field, arrays cell by cell and dtype: what a checkpoint would write."""
    assert vars(a).keys() == vars(b).keys() == set(FIELDS)
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype == np.int64 and np.array_equal(x, y), name
        elif isinstance(x, dict) and x and isinstance(next(iter(x.values())), np.ndarray):
            assert x.keys() == y.keys(), name
            for k in x:
                assert x[k].dtype == y[k].dtype == np.int64 and np.array_equal(x[k], y[k]), (name, k)
        else:
            assert x == y, name
    assert a == b


def assert_metrics_equal(a: MulticlassAggregates, b: MulticlassAggregates, min_samples: int = 1) -> None:
    rows_a, rows_b = a.metrics(min_samples), b.metrics(min_samples)
    assert len(rows_a) == len(rows_b)
    for x, y in zip(rows_a, rows_b, strict=True):
        assert (x[0], x[2], x[4]) == (y[0], y[2], y[4]) and same(x[1], y[1]), (x, y)
        assert (x[3] is None) == (y[3] is None) and (x[3] is None or all(map(same, x[3], y[3]))), (x, y)


# -- class names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("cat", "cat"),
        ("2.0", "2.0"),  # strings are kept as they are
        ("1", "1"),
        (1, "1"),
        (1.0, "1"),
        (True, "1"),
        (False, "0"),
        (0, "0"),
        (-0.0, "0"),
        (2.0, "2"),
        (np.float64(3.0), "3"),
        (np.int64(4), "4"),
        (np.bool_(True), "1"),
        (2.5, "2.5"),
        (-7, "-7"),
        (1e20, "100000000000000000000"),
        (float("inf"), "inf"),
    ],
)
def test_class_name(value: Any, name: str) -> None:
    assert class_name(value) == name


def test_equal_classes_are_one_class() -> None:
    agg = counted([(1, True, None, None), (1.0, "1", None, None), (True, 1.0, None, None), (2, 2.0, None, None)])
    assert agg.class_names == ("1", "2")
    assert agg.matrix().tolist() == [[3, 0], [0, 1]]


def test_fields_are_the_attributes_init_sets() -> None:
    assert set(vars(MulticlassAggregates([])).keys()) == set(FIELDS)
    assert set(vars(MulticlassAggregates(SLICES, classes=["a"])).keys()) == set(FIELDS)
    agg = counted([("a", "b", "F", "north")])
    assert set(vars(agg).keys()) == set(FIELDS) == set(vars(agg.copy()).keys())


def test_an_empty_aggregate_reports_nothing_labelled() -> None:
    rows = MulticlassAggregates(SLICES).metrics()
    assert [r[0] for r in rows] == ["labelled", "accuracy", "macro_f1", "micro_f1"]
    assert rows[0][1] == 0.0 and all(math.isnan(r[1]) and r[3] is None for r in rows[1:])
    assert MulticlassAggregates(SLICES).fairness_breaches() == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_classes"):
        MulticlassAggregates(SLICES, max_classes=0)
    with pytest.raises(ValueError, match="distinct segment names"):
        MulticlassAggregates([["gender", "gender"]])
    with pytest.raises(ValueError, match="different"):
        MulticlassAggregates(SLICES).merge(MulticlassAggregates(SLICES, classes=["a"]))


# -- figures against scikit-learn ---------------------------------------------------------------------

FIXED: list[Event] = [
    ("cat", "cat", "F", "north"),
    ("cat", "dog", "F", "north"),
    ("dog", "dog", "M", "south"),
    ("dog", "cat", "M", None),
    ("bird", "bird", "F", "south"),
    ("bird", "dog", None, "north"),
    ("cat", "cat", "M", "north"),
    ("fish", "cat", "F", "north"),  # fish is never predicted: no precision
    ("cat", "horse", "M", "south"),  # horse is never true: no recall
    (2.0, 2, "F", "south"),
]


def test_fixed_example_equals_scikit_learn() -> None:
    agg = counted(FIXED)
    want = reference(FIXED, 1)
    assert_rows_equal(population_rows(agg, 1), want)
    # The undefined per-class figures are NaN (scikit-learn's default says 0), F1 is scikit-learn's 0.
    rows = population_rows(agg, 1)
    assert math.isnan(rows["class_precision", (), "fish"][0]) and rows["class_f1", (), "fish"][0] == 0.0
    assert math.isnan(rows["class_recall", (), "horse"][0]) and rows["class_f1", (), "horse"][0] == 0.0
    # The default zero_division ("warn") gives the same macro F1 as zero_division=0.
    y_true = [class_name(e[0]) for e in FIXED]
    y_pred = [class_name(e[1]) for e in FIXED]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert rows["macro_f1", (), None][0] == f1_score(y_true, y_pred, average="macro")
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None)
    labels = list(unique_labels(y_true, y_pred))
    assert list(agg.class_names) == labels
    assert np.array_equal(agg.matrix(), confusion_matrix(y_true, y_pred, labels=labels))
    for i, cls in enumerate(labels):  # where defined, the per-class figures are scikit-learn's
        assert rows["class_precision", (), cls][0] == p[i] or math.isnan(rows["class_precision", (), cls][0])
        assert rows["class_recall", (), cls][0] == r[i] or math.isnan(rows["class_recall", (), cls][0])
        assert (rows["class_f1", (), cls][0], rows["class_support", (), cls][0]) == (f[i], s[i])


def test_slices_are_reported_as_sorted_pairs_and_only_with_enough_samples() -> None:
    agg = counted(FIXED)
    segments = {segment for _, _, segment, _, _ in agg.metrics(1)}
    assert (("gender", "F"), ("region", "north")) in segments
    assert all(s == tuple(sorted(s)) for s in segments if all(v != "*" for _, v in s))
    assert (("region", "*"), ("gender", "*")) in segments  # the parity tag, as the binary aggregates have it
    big = {s for _, _, s, _, _ in agg.metrics(4) if s and all(v != "*" for _, v in s)}
    assert big == {(("gender", "F"),), (("gender", "M"),)}  # F has 6 rows, M 4; the pairs fewer
    assert np.array_equal(
        agg.matrix((("region", "north"), ("gender", "F"))), agg.by_slice()[(("gender", "F"), ("region", "north"))]
    )
    assert agg.matrix((("gender", "nobody"),)).sum() == 0


@given(streams, st.sampled_from([1, 3, 10]), st.sampled_from([((), 50), (("b", "a"), 3), ((), 2), (("1",), 1)]))
@example(FIXED, 1, ((), 50))
def test_every_figure_equals_scikit_learn(stream: list[Event], min_samples: int, vocabulary: tuple) -> None:
    classes, max_classes = vocabulary
    agg = counted(stream, classes=classes, max_classes=max_classes)
    assert_rows_equal(population_rows(agg, min_samples), reference(stream, min_samples, classes, max_classes))


# -- merging ---------------------------------------------------------------------------------------


@st.composite
def splits(draw: st.DrawFn) -> tuple[list[Event], list[list[list[Event]]], list[int]]:
    """A stream, cut into 1..4 partials, each fed in batches, and an order to merge them in."""
    stream = draw(streams)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), min_size=0, max_size=3)))
    bounds = [0, *cuts, len(stream)]
    partials = []
    for lo, hi in itertools.pairwise(bounds):
        part = stream[lo:hi]
        inner = sorted(draw(st.lists(st.integers(0, len(part)), max_size=3)))
        edges = [0, *inner, len(part)]
        partials.append([part[a:b] for a, b in itertools.pairwise(edges)])
    order = draw(st.permutations(range(len(partials))))
    return stream, partials, order


SETTINGS = [
    {},
    {"max_classes": 2},
    {"classes": ("c", "a"), "max_classes": 3},
    {"max_slices_per_key": 1},
    {"max_slices_per_key": 2, "max_classes": 4},
]


@given(splits(), st.sampled_from(SETTINGS))
def test_any_split_merges_to_the_whole(split: tuple, settings: dict) -> None:
    stream, partials, order = split
    whole = counted(stream, **settings)
    parts = []
    for batches in partials:
        part = MulticlassAggregates(SLICES, **settings)
        for batch in batches:
            part.update(matches(batch))
        parts.append(part)
    merged = MulticlassAggregates(SLICES, **settings)
    for i in order:
        merged.merge(parts[i])
    assert_identical(merged, whole)
    assert_metrics_equal(merged, whole)
    # From a copy of the first partial in that order, which stays as it was.
    first = parts[order[0]]
    before = copy.deepcopy(first)
    merged = first.copy()
    for i in order[1:]:
        merged.merge(parts[i])
    assert_identical(merged, whole)
    assert_identical(first, before)
    for part, batches in zip(parts, partials, strict=True):  # merging left every partial as it was
        assert_identical(part, counted([e for b in batches for e in b], **settings))


def test_merge_keeps_every_partials_slices() -> None:
    left = counted([("a", "a", "F", "north"), ("a", "b", "F", "north")])
    right = counted([("a", "a", "M", "south"), ("b", "b", "M", "south"), ("a", "a", "F", "east")])
    for into, other in ((left.copy(), right), (right.copy(), left)):
        into.merge(other)
        segments = into.by_slice()
        assert set(segments) == {
            (("gender", "F"),),
            (("gender", "M"),),
            (("gender", "F"), ("region", "north")),
            (("gender", "M"), ("region", "south")),
            (("gender", "F"), ("region", "east")),
        }
        assert segments[(("gender", "M"),)].tolist() == [[1, 0], [0, 1]]
        assert segments[(("gender", "F"),)].tolist() == [[2, 1], [0, 0]]
        reported = {s for _, _, s, _, _ in into.metrics(1)}
        assert (("gender", "M"),) in reported and (("gender", "F"), ("region", "east")) in reported
    # Same classes on both sides, a slice only the other has (the in-place path must not drop it).
    left = counted([("a", "b", "F", None), ("b", "a", "F", None)])
    right = counted([("a", "b", "M", None)])
    left.merge(right)
    assert left.by_slice()[(("gender", "M"),)].tolist() == [[0, 1], [0, 0]]
    assert left == counted([("a", "b", "F", None), ("b", "a", "F", None), ("a", "b", "M", None)])


def test_classes_beyond_the_cap_count_as_other() -> None:
    stream: list[Event] = [
        ("e", "a", None, None),
        ("d", "d", None, None),
        ("b", "c", None, None),
        ("a", "x", None, None),
    ]
    agg = counted(stream, classes=["x"], max_classes=3)  # x is known: room for two more, the smallest
    assert agg.class_names == ("__other__", "a", "b", "x")
    assert agg.matrix().tolist() == [[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    rows = population_rows(agg, 1)
    assert rows["class_support", (), OTHER] == (2.0, None) and rows["confusion", (), '["__other__", "a"]'] == (
        1.0,
        None,
    )
    # A smaller name arriving later takes its place: "b" moves to OTHER; the result is what the whole gives.
    agg.update(matches([("0", "0", None, None)]))
    assert agg.class_names == ("0", "__other__", "a", "x")
    assert agg == counted([*stream, ("0", "0", None, None)], classes=["x"], max_classes=3)
    # Under the cap nothing is folded; the known classes are always kept, even beyond it.
    assert counted(stream, max_classes=6).class_names == ("a", "b", "c", "d", "e", "x")
    assert counted(stream, classes=["e", "d", "c"], max_classes=2).class_names == ("__other__", "c", "d", "e")


def test_slices_beyond_the_cap_count_in_overflow() -> None:
    stream: list[Event] = [("a", "a", g, None) for g in ("F", "M", "X", "X")]
    agg = counted(stream, max_slices_per_key=2)
    assert list(agg.by_slice()) == [(("gender", "F"),), (("gender", "M"),)]
    assert agg.overflow[("gender",)].tolist() == [[2]]


def test_copy_is_independent() -> None:
    agg = counted(FIXED)
    twin = agg.copy()
    assert_identical(twin, agg)
    twin.update(matches(FIXED))
    assert agg == counted(FIXED) and twin != agg
    assert copy.deepcopy(agg) == agg


# -- one against the rest --------------------------------------------------------------------------


def direct(stream: list[Event], cls: str, max_slices_per_key: int) -> ConfusionCounts:
    counts = ConfusionCounts(SLICES, max_slices_per_key=max_slices_per_key)
    if stream:
        counts.update(
            np.array([class_name(e[0]) == cls for e in stream], dtype=bool),
            np.array([class_name(e[1]) == cls for e in stream], dtype=bool),
            {
                "gender": np.array([e[2] for e in stream], dtype=object),
                "region": np.array([e[3] for e in stream], dtype=object),
            },
        )
    return counts


@given(streams, st.sampled_from(["a", "1", "2", "never"]), st.sampled_from([1, 2, 1000]))
def test_one_vs_rest_equals_confusion_counts(stream: list[Event], cls: str, cap: int) -> None:
    agg = counted(stream, max_slices_per_key=cap)
    assert agg.one_vs_rest(cls) == direct(stream, cls, cap)


def test_one_vs_rest_of_binary_labels_equals_the_binary_aggregates() -> None:
    rng = np.random.default_rng(3)
    stream = [
        (int(t), bool(p), str(g), str(r))
        for t, p, g, r in zip(
            rng.random(300) < 0.4,
            rng.random(300) < 0.5,
            rng.choice(["F", "M"], 300),
            rng.choice(["n", "s"], 300),
            strict=True,
        )
    ]
    binary = PerformanceAggregates(SLICES, positive_label="1")
    binary.update(matches(stream))
    assert counted(stream).one_vs_rest(1) == binary.confusion


def biased() -> list[Event]:
    """Class "a" is predicted for 60% of F and 20% of M; the rest are "b" or "c"."""
    rng = np.random.default_rng(7)
    out: list[Event] = []
    for i in range(600):
        gender = "F" if i % 2 else "M"
        share = 0.6 if gender == "F" else 0.2
        predicted = "a" if rng.random() < share else str(rng.choice(["b", "c"]))
        label = predicted if rng.random() < 0.7 else str(rng.choice(["a", "b", "c"]))
        out.append((label, predicted, gender, str(rng.choice(["north", "south"]))))
    return out


def test_fairness_rows_are_the_binary_figures_of_each_class() -> None:
    stream = biased()
    agg = counted(stream)
    fairness = [r for r in agg.metrics(30) if not is_population(r)]
    want = []
    for cls in ("a", "b", "c"):
        counts = direct(stream, cls, 1000)
        for report in slice_reports(counts, min_samples=30, confidence=0.95):
            for metric in ("selection_rate", "tpr", "fpr", "fnr", "precision", "accuracy"):
                rate = getattr(report, metric)
                want.append((metric, rate.value, tuple(sorted(report.slice)), (rate.low, rate.high), cls))
        for names in SLICES:
            tag = tuple((name, "*") for name in names)
            for metric, function in (
                ("demographic_parity_difference", demographic_parity_difference),
                ("demographic_parity_ratio", demographic_parity_ratio),
                ("equalized_odds_difference", equalized_odds_difference),
                ("equal_opportunity_difference", equal_opportunity_difference),
            ):
                want.append((metric, function(counts, names, min_samples=30), tag, None, cls))
    assert len(fairness) == len(want)
    for got, expected in zip(fairness, want, strict=True):
        assert (got[0], got[2], got[4]) == (expected[0], expected[2], expected[4])
        assert same(got[1], expected[1]) and (got[3] == expected[3] or all(map(same, got[3], expected[3])))


def test_fairness_breaches_and_parity_gaps_are_the_binary_ones_per_class() -> None:
    stream = biased()
    agg = counted(stream)
    want = []
    gap = False
    for cls in ("a", "b", "c"):
        binary = PerformanceAggregates(SLICES, positive_label=cls)
        binary.confusion = direct(stream, cls, 1000)
        want += [
            (names, ratio, evidence | {"class": cls}) for names, ratio, evidence in binary.fairness_breaches(30, 0.05)
        ]
        gap = gap or binary.parity_gap_seen(30, 0.95, 0.1)
    breaches = agg.fairness_breaches(30, 0.05)
    assert breaches == want
    assert any(evidence["class"] == "a" and names == ("gender",) for names, _, evidence in breaches)
    assert agg.parity_gap_seen(30, 0.95, 0.1) is gap is True
    fair = counted([(e[0], e[1], "F", e[3]) for e in stream])  # one gender: no gap to see
    assert not fair.parity_gap_seen(30, 0.95, 0.1)
    assert all(names != ("gender",) for names, _, _ in fair.fairness_breaches(30, 0.05))
