"""Rows the demo scenario does not write but the performance dashboard and the report show, derived from its windows."""

from __future__ import annotations

import json
from typing import Any

from streamwatch.adapters.clickhouse import Store
from streamwatch.core.records import MetricRow

REALIZED = ("accuracy", "precision", "recall", "f1", "roc_auc")
CLASSES = ("approve", "review", "decline")


def performance_rows(store: Store) -> list[MetricRow]:
    """What the performance dashboard shows beyond the demo: a CBPE estimate with bounds beside each realized figure
    of each window (overall and per slice), and a multiclass view of the same windows (macro and micro F1, per-class
    figures, confusion cells), so none of its panels is empty here. Written at version 0: should the pipeline write
    these rows for the demo itself, its rows win under FINAL."""
    out = []
    for model, version, variant, start, end, metric, segment, value in store.query(
        "SELECT model, model_version, variant, toUnixTimestamp64Milli(window_start), toUnixTimestamp64Milli("
        "window_end), metric, segment, value FROM {db}.metrics FINAL WHERE window = 'tumbling' AND metric IN "
        "{metrics:Array(String)} ORDER BY ALL",
        {"metrics": list(REALIZED)},
    ):
        window: dict[str, Any] = {
            "model": model,
            "model_version": version,
            "variant": variant,
            "window_start_ms": int(start),
            "window_end_ms": int(end),
            "segment": tuple(sorted(segment.items())),
        }
        guess = min(1.0, max(0.0, value + 0.03))
        out.append(
            MetricRow(
                **window,
                metric=f"estimated_{metric}",
                value=guess,
                lower=max(0.0, guess - 0.1),
                upper=min(1.0, guess + 0.1),
            )
        )
        if metric != "accuracy":
            continue
        out += [MetricRow(**window, metric=m, value=value - 0.05) for m in ("macro_f1", "micro_f1")]
        for i, cls in enumerate(CLASSES):
            for name, figure in (("precision", 0.7), ("recall", 0.6), ("f1", 0.65), ("support", 40.0 + i)):
                out.append(MetricRow(**window, metric=f"class_{name}", value=figure, feature=cls))
            for j, predicted in enumerate(CLASSES):
                cell = json.dumps([cls, predicted])
                out.append(MetricRow(**window, metric="confusion", value=30.0 if i == j else 5.0 + j, feature=cell))
    return out
