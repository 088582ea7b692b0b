"""The report's performance section: CBPE estimates in their bounds beside the realized figures, and a multiclass
model's figures, classes and confusion matrix, read back from a real store (chdb)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamwatch.adapters.clickhouse import Store
from streamwatch.core.records import MetricRow
from streamwatch.demo.scenario import MODEL
from streamwatch.report.html import render_report, report_data
from tests.dashboards.demo_rows import performance_rows
from tests.metric_rows import MINUTE, T0, row
from tests.report.test_html import SCENARIO, load_demo

SECTION = "<h2>Performance: estimated and realized</h2>"


def section(store: Store, rows: list[MetricRow]) -> str:
    """The performance section of the report of model ``m`` over ``rows``, up to the next section."""
    store.insert_metrics(rows, version=1)
    html = render_report(report_data(store, "m", T0, T0 + 10 * MINUTE))
    assert SECTION in html
    return html.split(SECTION, 1)[1].split("<h2>", 1)[0]


def test_the_estimates_are_drawn_in_their_bounds_and_tabled_beside_the_realized_figures(store: Store) -> None:
    rows = [row("estimated_accuracy", 0.80 + m / 100, m, lower=0.74 + m / 100, upper=0.86 + m / 100) for m in range(4)]
    rows += [row("estimated_roc_auc", 0.90, m, lower=0.85, upper=0.95) for m in range(4)]
    rows += [row("accuracy", 0.78, m, lower=0.7, upper=0.85) for m in range(3)]  # the last window awaits labels
    rows += [row("roc_auc", 0.91, 1), row("roc_auc", 0.70, 2)]  # within, then outside the bounds
    rows.append(row("estimated_accuracy", 0.10, 3, lower=0.0, upper=0.2, segment=(("gender", "F"),)))  # a slice
    part = section(store, rows)
    assert "<h3>1.0 (production)</h3>" in part
    assert "estimated performance (line, band: bounds) and realized (dots): 1.0 production" in part
    assert part.count("<polygon") == 2 and part.count("<polyline") == 2 and part.count("<circle") == 5 + 2  # + key
    cells = re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
        r"<td>([^<]*)</td></tr>",
        part,
    )
    assert cells == [  # the latest three windows, newest first
        ("2026-09-21 14:16 UTC", "accuracy", "0.830", "0.770 – 0.890", "–", "awaiting labels"),
        ("2026-09-21 14:16 UTC", "roc_auc", "0.900", "0.850 – 0.950", "–", "awaiting labels"),
        ("2026-09-21 14:15 UTC", "accuracy", "0.820", "0.760 – 0.880", "0.780", "within"),
        ("2026-09-21 14:15 UTC", "roc_auc", "0.900", "0.850 – 0.950", "0.700", "outside"),
        ("2026-09-21 14:14 UTC", "accuracy", "0.810", "0.750 – 0.870", "0.780", "within"),
        ("2026-09-21 14:14 UTC", "roc_auc", "0.900", "0.850 – 0.950", "0.910", "within"),
    ]
    assert "0.100" not in part  # the slice's estimate is not the model's


HOSTILE = "<script>alert('x')</script>&\"cat\""


def test_a_multiclass_model_shows_its_figures_classes_and_confusion_matrix_with_labels_escaped(store: Store) -> None:
    rows = [
        row(m, v, minute) for minute in (0, 1) for m, v in (("accuracy", 0.8), ("macro_f1", 0.6), ("micro_f1", 0.8))
    ]
    rows += [
        row("class_precision", 0.5, 0, feature="dog"),
        row("class_precision", 0.75, 1, feature="dog"),  # the latest window's figure is shown
        row("class_recall", 0.6, 1, feature="dog"),
        row("class_f1", 0.66, 1, feature="dog"),
        row("class_support", 40, 1, feature="dog"),
        row("class_precision", float("nan"), 1, feature=HOSTILE),  # never predicted: no precision
        row("class_support", 3, 1, feature=HOSTILE),
        row("confusion", 30, 0, feature=json.dumps(["dog", "dog"])),
        row("confusion", 10, 1, feature=json.dumps(["dog", "dog"])),
        row("confusion", 3, 1, feature=json.dumps([HOSTILE, "dog"])),
        row("confusion", 9, 1, feature="not a pair"),  # ignored
    ]
    part = section(store, rows)
    assert "multiclass accuracy, macro F1 and micro F1: 1.0 production" in part
    assert part.count("<polyline") == 3
    assert "<tr><td>dog</td><td>0.750</td><td>0.600</td><td>0.660</td><td>40</td></tr>" in part
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;cat&quot;"
    assert f"<tr><td>{escaped}</td><td>–</td><td>–</td><td>–</td><td>3</td></tr>" in part
    # the period's confusion matrix: classes sorted, rows actual, columns predicted, cells summed over the windows
    assert f"<th>actual \\ predicted</th><th>{escaped}</th><th>dog</th></tr>" in part
    assert f"<tr><th>{escaped}</th><td>0</td><td>3</td></tr><tr><th>dog</th><td>0</td><td>40</td></tr>" in part
    assert "<script" not in part.lower() and "estimated performance" not in part


def test_the_demo_report_with_estimates_shows_them_for_each_version(store: Store, tmp_path: Path) -> None:
    load_demo(store, tmp_path)
    store.insert_metrics(performance_rows(store), version=0)
    html = render_report(report_data(store, MODEL, SCENARIO.start_ms, SCENARIO.start_ms + SCENARIO.minutes * 60_000))
    part = html.split(SECTION, 1)[1].split("<h2>", 1)[0]
    for version in ("3.1.0 production", "3.2.0-rc1 canary"):
        assert (
            f"realized (dots): {version}" in part and f"multiclass accuracy, macro F1 and micro F1: {version}" in part
        )
    assert part.count("<polygon") == 4 and "within" in part and "awaiting labels" not in part
    assert "<h2>Fairness per slice</h2>" in html and "<script" not in html.lower()
