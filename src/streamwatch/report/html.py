"""``streamwatch report``: one model's monitoring as a self-contained HTML page, read from ClickHouse.

:func:`report_data` queries the results tables; :func:`render_report` turns
them into HTML with inline SVG charts (:mod:`streamwatch.report.charts`) and
inline CSS: no script and no external file, so the page opens offline, can be
mailed, and draws the same everywhere. Sections: the reference's lineage, the
alert timeline, drift per feature over time and as a heatmap, each embedding's
drift (its mean's distances from the reference's against their thresholds, and
the windows where they or its projections crossed), performance
(estimated before the labels arrive, with its bounds, beside the realized
figures; a multiclass model's figures, classes and confusion matrix), fairness
per slice with the four-fifths line, latency percentiles and SLO burn rates.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from streamwatch.contract.events import AlertEvent
from streamwatch.core.fairness import FOUR_FIFTHS
from streamwatch.report.charts import heatmap, interval_chart, line_chart

__all__ = ["ReportData", "render_report", "report_data"]

_DECIDING = ("wasserstein", "js")  # numeric features, categorical ones (one row per feature has a value)
_ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")  # CBPE's figures, as their realized rows name them
_CHARTED = ("accuracy", "roc_auc")  # the estimates the report draws (the table shows every one)
_MULTICLASS = ("accuracy", "macro_f1", "micro_f1")
_PER_CLASS = ("class_precision", "class_recall", "class_f1", "class_support")  # feature: the class
_LATEST = 3  # windows in the estimated-against-realized table
# An embedding's rows (feature: its name): its mean's distances from the reference's, each with its threshold.
_DISTANCES = {"embedding_euclidean": "Euclidean", "embedding_cosine": "cosine"}
_EMBEDDING = (*_DISTANCES, "embedding_wrong_length")  # the count of vectors refused for their length, if any
_NUMERIC = _DECIDING[0]  # what decides a projection's drift, as any numeric feature's (core.drift_report)
_PROJECTION = "#pc"  # an embedding's projection on its i-th principal component is the drift feature "<name>#pc<i>"
_METRICS = (
    *_DECIDING,
    *_EMBEDDING,
    "drifted_share",
    "selection_rate",
    "fpr",
    "fnr",
    "tpr",
    "demographic_parity_ratio",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "burn_rate_1h",
    "burn_rate_6h",
    "requests",
    *_ESTIMATED,
    *(f"estimated_{m}" for m in _ESTIMATED),
    "macro_f1",
    "micro_f1",
    *_PER_CLASS,
    "confusion",  # feature: the JSON array [actual, predicted]
)


@dataclass
class ReportData:
    model: str
    since_ms: int
    generated_ms: int
    #: (version, variant, metric, feature, segment as "k=v,...") -> [(window start ms, value, threshold)]
    series: dict[tuple[str, str, str, str, str], list[tuple[int, float, float | None]]] = field(default_factory=dict)
    #: the same keys -> {window start ms: (lower, upper)}, for the rows that have either
    bounds: dict[tuple[str, str, str, str, str], dict[int, tuple[float | None, float | None]]] = field(
        default_factory=dict
    )
    alerts: list[AlertEvent] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)


def report_data(store: Any, model: str, since_ms: int, now_ms: int) -> ReportData:
    """What the report shows, queried from a :class:`~streamwatch.adapters.clickhouse.Store`."""
    data = ReportData(model, since_ms, now_ms)
    rows = store.query(
        "SELECT model_version, variant, metric, feature, segment, toUnixTimestamp64Milli(window_start), value, "
        "threshold, lower, upper FROM {db}.metrics FINAL WHERE model = {model:String} AND window = 'tumbling' "
        "AND window_start >= fromUnixTimestamp64Milli({since:Int64}) AND metric IN {metrics:Array(String)} "
        "ORDER BY window_start",
        {"model": model, "since": since_ms, "metrics": list(_METRICS)},
    )
    series: dict[tuple[str, str, str, str, str], list[tuple[int, float, float | None]]] = defaultdict(list)
    bounds: dict[tuple[str, str, str, str, str], dict[int, tuple[float | None, float | None]]] = defaultdict(dict)
    for version, variant, metric, feature, segment, start, value, threshold, lower, upper in rows:
        key = ",".join(f"{k}={v}" for k, v in sorted(segment.items()))
        series[version, variant, metric, feature, key].append((int(start), float(value), threshold))
        if lower is not None or upper is not None:
            bounds[version, variant, metric, feature, key][int(start)] = (lower, upper)
    data.series = dict(series)
    data.bounds = dict(bounds)
    for (payload,) in store.query(
        "SELECT payload FROM {db}.alerts FINAL WHERE model = {model:String} AND starts_at >= "
        "fromUnixTimestamp64Milli({since:Int64}) - INTERVAL 1 DAY",
        {"model": model, "since": since_ms},
    ):
        data.alerts.append(AlertEvent.model_validate_json(payload))
    for version, sha, uri, count, created, git_sha in store.query(
        "SELECT model_version, content_sha256, data_uri, rows, toUnixTimestamp64Milli(created_at), git_sha "
        "FROM {db}.profiles FINAL WHERE model = {model:String} ORDER BY model_version",
        {"model": model},
    ):
        data.lineage.append(
            {
                "model_version": version,
                "content_sha256": sha,
                "data_uri": uri,
                "rows": count,
                "created_at": _when(created),
                "git_sha": git_sha,
            }
        )
    return data


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _points(rows: list[tuple[int, float, float | None]]) -> list[tuple[float, float]]:
    return [(start, value) for start, value, _ in rows]


def _versions(data: ReportData) -> list[tuple[str, str]]:
    return sorted({(version, variant) for version, variant, *_ in data.series})


def _drift(data: ReportData, version: str, variant: str) -> str:
    per_feature = {
        feature: rows
        for (v, var, metric, feature, _), rows in data.series.items()
        if (v, var) == (version, variant) and metric in _DECIDING and feature
    }
    if not per_feature:
        return ""
    ratios = {
        feature: {start: value / threshold for start, value, threshold in rows if threshold and math.isfinite(value)}
        for feature, rows in per_feature.items()
    }
    lines = line_chart(
        {f: _points(rows) for f, rows in per_feature.items()},
        title=f"drift per feature, {version} {variant} (Wasserstein; Jensen-Shannon for categories)",
    )
    grid = heatmap(ratios, title=f"drift heatmap, {version}: statistic / threshold (1 or more is drift)", scale_max=2.0)
    return f"<h3>{escape(version)} ({escape(variant)})</h3>{lines}{grid}"


def _embedding_of(feature: str) -> str | None:
    """The embedding a drift feature is a projection of (``"text#pc2"`` -> ``"text"``), or None."""
    name, mark, component = feature.rpartition(_PROJECTION)
    return name if mark and component.isdigit() else None


def _embeddings(data: ReportData) -> list[str]:
    """The embeddings with rows in the period: their distances', their refused vectors' or their projections'."""
    names = {feature for (_, _, metric, feature, _) in data.series if metric in _EMBEDDING and feature}
    names |= {
        name
        for (_, _, metric, feature, _) in data.series
        if metric == _NUMERIC and (name := _embedding_of(feature)) is not None
    }
    return sorted(names)


def _crossed(value: float, threshold: float | None) -> bool:
    """At or over the threshold, as a drift statistic is judged (``core.drift_report``)."""
    return threshold is not None and math.isfinite(value) and value >= threshold


def _distance_cell(row: tuple[int, float, float | None] | None) -> str:
    if row is None:
        return "<td>–</td>"
    _, value, threshold = row
    over = " class='over'" if _crossed(value, threshold) else ""
    return f"<td{over}>{_figure(value, 4)} / {_figure(threshold, 4)}</td>"


def _embedding(data: ReportData, name: str) -> str:
    """One embedding's drift: per version and variant, its mean's Euclidean and cosine distances from the
    reference's over the windows beside their thresholds (calibrated per window size, so drawn as lines of their
    own), then the windows where a distance crossed its threshold or a projection drifted."""
    out = []
    for version, variant in _versions(data):
        distances = {metric: data.series.get((version, variant, metric, name, ""), []) for metric in _DISTANCES}
        projections = {
            feature: rows
            for (v, var, metric, feature, segment), rows in data.series.items()
            if (v, var, metric) == (version, variant, _NUMERIC) and not segment and _embedding_of(feature) == name
        }
        refused = sum(v for _, v, _ in data.series.get((version, variant, "embedding_wrong_length", name, ""), []))
        if not any(distances.values()) and not projections and not refused:
            continue
        charts = "".join(
            line_chart(
                {"distance": _points(rows), "threshold": [(s, t) for s, _, t in rows if t is not None]},
                title=f"{name}: {label} distance of the mean from the reference's, {version} {variant}",
            )
            for metric, label in _DISTANCES.items()
            if (rows := distances[metric])
        )
        by_start = {metric: {row[0]: row for row in rows} for metric, rows in distances.items()}
        drifted: dict[int, list[str]] = defaultdict(list)
        for feature, rows in sorted(projections.items()):
            for start, value, threshold in rows:
                if _crossed(value, threshold):
                    drifted[start].append(feature)
        crossing = sorted(
            {s for rows in distances.values() for s, value, threshold in rows if _crossed(value, threshold)}
            | set(drifted)
        )
        cells = "".join(
            f"<tr><td>{_when(start)}</td>"
            + "".join(_distance_cell(by_start[metric].get(start)) for metric in _DISTANCES)
            + f"<td>{escape(', '.join(drifted.get(start, [])))}</td></tr>"
            for start in crossing
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in ("window", "Euclidean / threshold", "cosine / threshold", "projections drifted (Wasserstein)")
        )
        table = (
            f"<table class='crossings'><tr>{head}</tr>{cells}</table>"
            if cells
            else "<p class='meta'>No distance crossed its threshold and no projection drifted.</p>"
        )
        note = f"<p class='meta'>Vectors refused for their length: {refused:.0f}.</p>" if refused else ""
        out.append(f"<h3>{escape(version)} ({escape(variant)})</h3>{charts}{table}{note}")
    if not out:
        return ""
    return f"<h2>Embedding drift: {escape(name)}</h2>" + "".join(out)


def _fairness(data: ReportData, version: str, variant: str) -> str:
    out = []
    for metric in ("selection_rate", "fpr"):
        per_slice = {
            segment: _points(rows)
            for (v, var, m, _, segment), rows in data.series.items()
            if (v, var, m) == (version, variant, metric) and segment and "*" not in segment
        }
        if per_slice:
            out.append(line_chart(per_slice, title=f"{metric} per slice: {version} {variant}"))
    parity = {
        segment.replace("=*", ""): _points(rows)
        for (v, var, m, _, segment), rows in data.series.items()
        if (v, var, m) == (version, variant, "demographic_parity_ratio")
    }
    if parity:
        out.append(
            line_chart(
                parity,
                title=f"demographic parity ratio: {version} {variant}",
                threshold=FOUR_FIFTHS,
                threshold_label="four fifths",
            )
        )
    return "".join(out)


def _figure(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _overall(data: ReportData, version: str, variant: str, metric: str) -> list[tuple[int, float, float | None]]:
    """The rows of one metric of the whole population (no feature, no slice)."""
    return data.series.get((version, variant, metric, "", ""), [])


def _estimates(data: ReportData, version: str, variant: str) -> str:
    """A binary classifier's estimated figures in their bounds beside the realized ones, then the latest windows."""
    bounds = {metric: data.bounds.get((version, variant, f"estimated_{metric}", "", ""), {}) for metric in _ESTIMATED}
    estimated = {
        metric: [(start, value, *bounds[metric].get(start, (None, None))) for start, value, _ in rows]
        for metric in _CHARTED
        if (rows := _overall(data, version, variant, f"estimated_{metric}"))
    }
    realized = {metric: _points(rows) for metric in _CHARTED if (rows := _overall(data, version, variant, metric))}
    if not estimated:
        return ""
    chart = interval_chart(
        estimated,
        realized,
        title=f"estimated performance (line, band: bounds) and realized (dots): {version} {variant}",
    )
    guesses = {m: {s: v for s, v, _ in _overall(data, version, variant, f"estimated_{m}")} for m in _ESTIMATED}
    actuals = {m: {s: v for s, v, _ in _overall(data, version, variant, m)} for m in _ESTIMATED}
    cells = []
    for start in sorted({s for by_start in guesses.values() for s in by_start}, reverse=True)[:_LATEST]:
        for metric in _ESTIMATED:
            guess = guesses[metric].get(start)
            if guess is None:
                continue
            lower, upper = bounds[metric].get(start, (None, None))
            actual = actuals[metric].get(start)
            if actual is None:
                verdict = "awaiting labels"
            elif lower is None or upper is None:
                verdict = ""
            else:
                verdict = "within" if lower <= actual <= upper else "outside"
            cells.append(
                f"<tr><td>{_when(start)}</td><td>{escape(metric)}</td><td>{_figure(guess)}</td>"
                f"<td>{_figure(lower)} – {_figure(upper)}</td><td>{_figure(actual)}</td><td>{verdict}</td></tr>"
            )
    head = "".join(f"<th>{h}</th>" for h in ("window", "metric", "estimated", "bounds", "realized", "realized is"))
    return f"{chart}<table><tr>{head}</tr>{''.join(cells)}</table>"


def _multiclass(data: ReportData, version: str, variant: str) -> str:
    """A multiclass model's accuracy and F1 over time, each class's latest figures, and the period's confusion."""
    if not _overall(data, version, variant, "macro_f1"):
        return ""
    chart = line_chart(
        {m: _points(rows) for m in _MULTICLASS if (rows := _overall(data, version, variant, m))},
        title=f"multiclass accuracy, macro F1 and micro F1: {version} {variant}",
    )
    latest: dict[str, dict[str, float]] = defaultdict(dict)
    cells: dict[tuple[str, str], float] = defaultdict(float)
    for (v, var, metric, feature, segment), rows in data.series.items():
        if (v, var) != (version, variant) or segment or not rows:
            continue
        if metric in _PER_CLASS:
            latest[feature][metric] = max(rows, key=lambda r: r[0])[1]
        elif metric == "confusion":
            try:
                actual, predicted = (str(c) for c in json.loads(feature))
            except (ValueError, TypeError):  # not the [actual, predicted] pair the pipeline writes
                continue
            cells[actual, predicted] += sum(value for _, value, _ in rows if math.isfinite(value))
    per_class = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_figure(figures.get(m))}</td>" for m in _PER_CLASS[:3])
        + f"<td>{_figure(figures.get('class_support'), 0)}</td></tr>"
        for name, figures in sorted(latest.items())
    )
    head = "".join(f"<th>{h}</th>" for h in ("class", "precision", "recall", "F1", "support"))
    out = [chart, f"<table><tr>{head}</tr>{per_class}</table>" if per_class else ""]
    classes = sorted({c for cell in cells for c in cell})
    if classes:
        top = "".join(f"<th>{escape(c)}</th>" for c in classes)
        grid = "".join(
            f"<tr><th>{escape(a)}</th>" + "".join(f"<td>{cells.get((a, p), 0.0):.0f}</td>" for p in classes) + "</tr>"
            for a in classes
        )
        out.append(
            "<p class='meta'>Confusion matrix of the period (rows: actual class, columns: predicted).</p>"
            f"<table class='confusion'><tr><th>actual \\ predicted</th>{top}</tr>{grid}</table>"
        )
    return "".join(out)


def _performance(data: ReportData) -> str:
    out = []
    for version, variant in _versions(data):
        shown = _estimates(data, version, variant) + _multiclass(data, version, variant)
        if shown:
            out.append(f"<h3>{escape(version)} ({escape(variant)})</h3>{shown}")
    return "".join(out) or "<p>No estimated performance and no multiclass figures in this period.</p>"


def _latency(data: ReportData) -> str:
    out = []
    for version, variant in _versions(data):
        percentiles = {
            metric.removeprefix("latency_"): _points(rows)
            for (v, var, metric, _, _), rows in data.series.items()
            if (v, var) == (version, variant) and metric.startswith("latency_p")
        }
        if percentiles:
            out.append(line_chart(percentiles, title=f"latency percentiles (ms): {version} {variant}"))
        burns = {
            metric.removeprefix("burn_rate_"): _points(rows)
            for (v, var, metric, _, _), rows in data.series.items()
            if (v, var) == (version, variant) and metric.startswith("burn_rate_")
        }
        if burns:
            out.append(
                line_chart(
                    burns, title=f"SLO burn rate: {version} {variant}", threshold=14.4, threshold_label="page (1h)"
                )
            )
    return "".join(out)


def _alerts(data: ReportData) -> str:
    latest: dict[str, list[AlertEvent]] = defaultdict(list)
    for alert in sorted(data.alerts, key=lambda a: a.timestamp):
        latest[alert.fingerprint].append(alert)
    rows = []
    fired = [h for h in latest.values() if any(a.status == "firing" for a in h)]
    for history in sorted(fired, key=lambda h: next(a.starts_at for a in h if a.status == "firing")):
        last = history[-1]
        why = next(a for a in reversed(history) if a.status == "firing")  # what breached, not what recovered
        where = " ".join(
            x for x in (last.feature or "", ",".join(f"{k}={v}" for k, v in (last.segment or {}).items())) if x
        )
        after = history[max(i for i, a in enumerate(history) if a.status == "firing") + 1 :]
        resolved = next((a for a in after if a.status == "resolved" and a.ends_at), None)
        ended = _when(int(resolved.ends_at.timestamp() * 1000)) if resolved and resolved.ends_at else "still firing"
        state = "resolved" if resolved else "firing"
        rows.append(
            f"<tr class='{state}'><td>{escape(last.severity)}</td><td>{escape(last.rule)}</td>"
            f"<td>{escape(last.kind)}</td><td>{escape(last.model_version)} {escape(last.variant)}</td>"
            f"<td>{escape(where)}</td><td>{_when(int(why.starts_at.timestamp() * 1000))}</td><td>{ended}</td>"
            f"<td>{escape(why.reason)}</td></tr>"
        )
    if not rows:
        return "<p>No alert fired in this period.</p>"
    head = "".join(
        f"<th>{h}</th>" for h in ("severity", "rule", "kind", "version", "where", "fired", "resolved", "why")
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _timeline(data: ReportData) -> str:
    bands = []
    for alert in data.alerts:
        if alert.status == "firing":
            start = alert.starts_at.timestamp() * 1000
            end = next(
                (
                    a.ends_at.timestamp() * 1000
                    for a in data.alerts
                    if a.fingerprint == alert.fingerprint and a.status == "resolved" and a.ends_at
                ),
                data.generated_ms,
            )
            bands.append((start, end, f"{alert.rule} {alert.variant} {alert.feature or ''}"))
    traffic = {
        f"{v} {var}": _points(rows) for (v, var, metric, _, _), rows in data.series.items() if metric == "requests"
    }
    return line_chart(traffic, title="requests per window, with firing alerts shaded", bands=bands)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:980px;color:#0f172a}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #e2e8f0;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;color:#334155}svg{width:100%;height:auto;margin:8px 0}
.chart-title{font-size:13px;font-weight:600;fill:#0f172a}.tick{font-size:10px;fill:#475569}
.empty{font-size:12px;fill:#94a3b8}.frame{fill:none;stroke:#cbd5e1}.band{fill:#fecaca;opacity:.5}
.threshold{stroke:#dc2626;stroke-dasharray:5 4}table{border-collapse:collapse;font-size:12px;width:100%}
td,th{border:1px solid #e2e8f0;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f8fafc}
tr.firing td:first-child{color:#b91c1c;font-weight:600}.meta{color:#475569;font-size:13px}
table.confusion td{text-align:right}table.crossings td.over{color:#b91c1c;font-weight:600}
"""


def render_report(data: ReportData) -> str:
    """The whole page."""
    lineage = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(row[k]))}</td>"
            for k in ("model_version", "data_uri", "rows", "content_sha256", "created_at", "git_sha")
        )
        + "</tr>"
        for row in data.lineage
    )
    sections = [
        f"<h1>streamwatch report: {escape(data.model)}</h1>",
        f"<p class='meta'>From {_when(data.since_ms)} to {_when(data.generated_ms)}. Windows are event-time "
        "windows; values are the latest figures (performance is updated as labels arrive).</p>",
        "<h2>Reference lineage</h2>",
        "<table><tr><th>version</th><th>training data</th><th>rows</th><th>content sha256</th><th>profiled</th>"
        f"<th>git</th></tr>{lineage}</table>"
        if lineage
        else "<p>No reference profile stored.</p>",
        "<h2>Alerts</h2>",
        _timeline(data),
        _alerts(data),
        "<h2>Drift per feature</h2>",
        *(_drift(data, v, var) for v, var in _versions(data)),
        *(_embedding(data, name) for name in _embeddings(data)),
        "<h2>Performance: estimated and realized</h2>",
        _performance(data),
        "<h2>Fairness per slice</h2>",
        *(_fairness(data, v, var) for v, var in _versions(data)),
        "<h2>Latency and SLO</h2>",
        _latency(data),
    ]
    body = "\n".join(s for s in sections if s)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>streamwatch report: {escape(data.model)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )
