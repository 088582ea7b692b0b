"""The performance dashboard on rows written for it: the CBPE estimates with their bounds beside the realized figures,
and a multiclass model's figures, per class rows and confusion cells, each panel's SQL run on ClickHouse as Grafana
would send it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.core.records import MetricRow
from tests.dashboards.grafana import ALL_VARIABLE_VALUE, expand
from tests.metric_rows import MINUTE, T0, at, points, row

HOSTILE_CLASS = "<b>x'\" OR 1=1 --</b>"
EVERYTHING = {"model": "m", "version": ALL_VARIABLE_VALUE, "variant": ALL_VARIABLE_VALUE, "slice": ALL_VARIABLE_VALUE}


def estimate(metric: str, value: float, lower: float, upper: float, minute: int = 0, **fields: Any) -> MetricRow:
    return row(f"estimated_{metric}", value, minute, lower=lower, upper=upper, **fields)


ROWS = [
    # minute 0: labels are in; realized accuracy inside the bounds, realized ROC AUC outside
    estimate("accuracy", 0.80, 0.74, 0.86),
    row("accuracy", 0.78, lower=0.71, upper=0.84),
    estimate("roc_auc", 0.90, 0.85, 0.95),
    row("roc_auc", 0.70, lower=0.62, upper=0.78),
    estimate("precision", 0.60, 0.50, 0.70),
    row("precision", 0.65),  # realized precision has no bounds of its own
    # minute 1: only the estimate so far
    estimate("accuracy", 0.82, 0.77, 0.87, minute=1),
    # a slice, and another model (whose rows no panel for m may show)
    estimate("accuracy", 0.55, 0.40, 0.70, segment=(("gender", "F"),)),
    row("accuracy", 0.50, segment=(("gender", "F"),)),
    estimate("accuracy", 0.11, 0.10, 0.12, model="other"),
    row("accuracy", 0.11, model="other"),
    # a canary of another version
    estimate("accuracy", 0.70, 0.60, 0.80, model_version="2.0", variant="canary"),
    # a multiclass model's rows, version 3.0: two windows
    *(row(m, v, minute, model_version="3.0") for minute in (0, 1) for m, v in (("macro_f1", 0.6), ("micro_f1", 0.7))),
    row("class_precision", 0.5, 0, model_version="3.0", feature="cat"),
    row("class_precision", 0.9, 1, model_version="3.0", feature="cat"),  # the latest window's figure wins
    row("class_recall", 0.8, 1, model_version="3.0", feature="cat"),
    row("class_f1", 0.85, 1, model_version="3.0", feature="cat"),
    row("class_support", 12, 1, model_version="3.0", feature="cat"),
    row("class_support", 7, 1, model_version="3.0", feature=HOSTILE_CLASS),
    row("confusion", 10, 0, model_version="3.0", feature=json.dumps(["cat", "cat"])),
    row("confusion", 5, 1, model_version="3.0", feature=json.dumps(["cat", "cat"])),
    row("confusion", 2, 1, model_version="3.0", feature=json.dumps(["cat", HOSTILE_CLASS])),
    row("confusion", 9, 1, model_version="3.0", feature=json.dumps([HOSTILE_CLASS, "cat"]), model="other"),
]


@pytest.fixture
def panels(store: Store) -> dict[str, str]:
    """Title -> SQL of the performance dashboard's panels, on a store holding :data:`ROWS`."""
    from streamwatch.dashboards.catalog import DASHBOARDS

    store.insert_metrics(ROWS, version=1)
    return {p["title"]: p["targets"][0]["rawSql"] for p in DASHBOARDS["performance"]()["panels"]}


def run(store: Store, sql: str, **choice: str) -> list[tuple[Any, ...]]:
    return store.query(expand(sql, store.database, EVERYTHING | choice, T0, T0 + 10 * MINUTE))


def test_the_estimate_its_bounds_and_the_realized_figure_are_series_side_by_side(
    store: Store, panels: dict[str, str]
) -> None:
    sql = panels["Estimated and realized accuracy"]
    assert points(run(store, sql)) == {
        (0, "estimated 1.0 production", 0.80),
        (0, "lower 1.0 production", 0.74),
        (0, "upper 1.0 production", 0.86),
        (0, "realized 1.0 production", 0.78),
        (1, "estimated 1.0 production", 0.82),
        (1, "lower 1.0 production", 0.77),
        (1, "upper 1.0 production", 0.87),
        (0, "estimated 2.0 canary", 0.70),
        (0, "lower 2.0 canary", 0.60),
        (0, "upper 2.0 canary", 0.80),
    }
    # a slice instead of the overall rows, and one version and variant
    assert points(run(store, sql, slice="gender=F")) == {
        (0, "estimated 1.0 production", 0.55),
        (0, "lower 1.0 production", 0.40),
        (0, "upper 1.0 production", 0.70),
        (0, "realized 1.0 production", 0.50),
    }
    assert {s for _, s, _ in points(run(store, sql, version="2.0", variant="canary"))} == {
        "estimated 2.0 canary",
        "lower 2.0 canary",
        "upper 2.0 canary",
    }
    assert points(run(store, panels["Estimated and realized ROC AUC"])) == {
        (0, "estimated 1.0 production", 0.90),
        (0, "lower 1.0 production", 0.85),
        (0, "upper 1.0 production", 0.95),
        (0, "realized 1.0 production", 0.70),
    }
    assert run(store, panels["Estimated and realized recall"]) == []  # no such rows: an empty panel, no error


def test_the_table_pairs_each_estimate_with_its_realized_figure_and_says_whether_it_is_within_the_bounds(
    store: Store, panels: dict[str, str]
) -> None:
    sql = panels["Estimated vs realized (latest windows with labels)"]
    found = [
        (w, ver, var, m, round(e, 6), lo, hi, r, inside) for w, ver, var, m, e, lo, hi, r, inside in run(store, sql)
    ]
    assert found == [
        (at(0), "1.0", "production", "accuracy", 0.80, 0.74, 0.86, 0.78, "yes"),
        (at(0), "1.0", "production", "precision", 0.60, 0.50, 0.70, 0.65, "yes"),
        (at(0), "1.0", "production", "roc_auc", 0.90, 0.85, 0.95, 0.70, "no"),
    ]  # minute 1 has no labels yet, the canary none at all
    assert [r[3:] for r in run(store, sql, slice="gender=F")] == [("accuracy", 0.55, 0.40, 0.70, 0.50, "yes")]


def test_the_multiclass_panels_show_the_figures_the_classes_and_the_confusion_cells(
    store: Store, panels: dict[str, str]
) -> None:
    series = points(run(store, panels["Multiclass: accuracy, macro F1 and micro F1"], version="3.0"))
    assert series == {(m, f"{f} 3.0 production", v) for m in (0, 1) for f, v in (("macro_f1", 0.6), ("micro_f1", 0.7))}
    per_class = run(store, panels["Multiclass: per-class precision, recall, F1 and support (latest window)"])
    # a class without a figure shows none, not 0
    assert per_class[0] == ("3.0", "production", HOSTILE_CLASS, at(1), None, None, None, 7)
    assert per_class[1] == ("3.0", "production", "cat", at(1), 0.9, 0.8, 0.85, 12)
    confusion = run(store, panels["Multiclass: confusion matrix, actual by predicted (counts over the time range)"])
    # summed over both windows; the other model's cell is not there, the hostile label comes back as it was
    assert confusion == [("3.0", "production", "cat", HOSTILE_CLASS, 2), ("3.0", "production", "cat", "cat", 15)]
