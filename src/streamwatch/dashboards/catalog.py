"""The six Grafana dashboards, as code: ``streamwatch dashboards build`` writes them to ``dashboards/``.

Each is a list of panels over the ClickHouse tables (see
``schemas/clickhouse/``); :func:`render_dashboards` gives the JSON files, and
``streamwatch dashboards build --check`` (and a test) fails when the files in
``dashboards/`` differ from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamwatch.dashboards.model import dashboard, panel, scope

__all__ = ["DASHBOARDS", "render_dashboards", "stale_dashboards"]

M = "${database}.metrics FINAL"
T = "$__timeFilter_ms(window_start)"
TUMBLING = f"window = 'tumbling' AND {T}"
SERIES = "concat(model_version, ' ', variant)"


def _overview() -> dict[str, Any]:
    return dashboard(
        "streamwatch-overview",
        "streamwatch: overview",
        [
            panel(
                "Traffic (requests per window)",
                f"SELECT window_start AS time, concat(model, ' ', {SERIES}) AS series, value FROM {M} "
                f"WHERE metric = 'requests' AND {TUMBLING} ORDER BY time",
                unit="short",
                width=24,
            ),
            panel(
                "Share of features drifted",
                f"SELECT window_start AS time, concat(model, ' ', {SERIES}) AS series, value FROM {M} "
                f"WHERE metric = 'drifted_share' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                thresholds=[(0.5, "red")],
            ),
            panel(
                "Label coverage (labelled / requests)",
                "SELECT r.window_start AS time, concat(r.model, ' ', r.model_version, ' ', r.variant) AS series, "
                "l.value / r.value AS value FROM ${database}.metrics AS r FINAL "
                "INNER JOIN ${database}.metrics AS l FINAL ON l.model = r.model AND "
                "l.model_version = r.model_version AND l.variant = r.variant AND l.window_start = r.window_start "
                "AND l.window = r.window WHERE r.metric = 'requests' AND l.metric = 'labelled' AND l.segment_key = '' "
                "AND r.window = 'tumbling' AND $__timeFilter_ms(r.window_start) ORDER BY time",
                unit="percentunit",
            ),
            panel(
                "Firing alerts",
                "SELECT count() AS firing FROM (SELECT fingerprint, argMax(status, window_end) AS "
                "status FROM ${database}.alerts FINAL GROUP BY fingerprint) WHERE status = 'firing'",
                kind="stat",
                fmt="table",
                thresholds=[(1, "red")],
                width=6,
            ),
            panel(
                "SLO error budget left",
                f"SELECT concat(model, ' ', {SERIES}) AS series, argMax(value, window_start) "
                f"AS budget FROM {M} WHERE metric = 'error_budget_remaining' AND {TUMBLING} GROUP BY series",
                kind="bargauge",
                fmt="table",
                unit="percentunit",
                thresholds=[(0.25, "orange"), (0.0, "red")],
                width=6,
            ),
            panel(
                "Alerts now",
                "SELECT fingerprint, argMax(status, window_end) AS status, any(rule) AS rule, "
                "any(model) AS model, any(model_version) AS version, any(variant) AS variant, max(window_end) AS "
                "last_window FROM ${database}.alerts FINAL GROUP BY fingerprint HAVING status != 'resolved' "
                "ORDER BY last_window DESC",
                kind="table",
                fmt="table",
                width=12,
            ),
        ],
        (),
    )


def _drift() -> dict[str, Any]:
    deciding = "metric IN ('wasserstein', 'js') AND feature != '' AND threshold > 0"
    return dashboard(
        "streamwatch-drift",
        "streamwatch: drift and data quality",
        [
            panel(
                "Drift heatmap: each feature's statistic / its threshold (1 or more is drift)",
                f"SELECT window_start AS time, feature AS series, max(value / threshold) AS value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND {deciding} AND {TUMBLING} AND NOT (feature = '__score__' AND "
                "metric = 'js') GROUP BY time, series ORDER BY time",
                kind="heatmap",
                width=24,
                height=10,
                options={"calculate": False, "yAxis": {"axisPlacement": "left"}},
            ),
            panel(
                "PSI, Jensen-Shannon and Wasserstein of ${feature}",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant', 'feature')} AND metric IN ('psi', 'js', 'wasserstein') AND {TUMBLING} "
                "ORDER BY time",
            ),
            panel(
                "Score drift (Wasserstein of the model's score)",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version', 'variant')} "
                f"AND feature = '__score__' AND metric = 'wasserstein' AND {TUMBLING} ORDER BY time",
            ),
            panel(
                "Missing, out-of-range, unseen and mistyped rates",
                f"SELECT window_start AS time, concat(feature, ' ', metric) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant', 'feature')} AND metric IN ('missing_rate', 'out_of_range_rate', "
                f"'unseen_rate', 'type_mismatch_rate') AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                width=24,
            ),
            panel(
                "Reference lineage",
                "SELECT model_version, data_uri, rows, content_sha256, created_at, git_sha "
                "FROM ${database}.profiles FINAL WHERE model = '${model}' ORDER BY model_version",
                kind="table",
                fmt="table",
                width=24,
                height=5,
            ),
        ],
        ("version", "variant", "feature"),
    )


def _fairness() -> dict[str, Any]:
    rates = "metric IN ('selection_rate', 'tpr', 'fpr', 'fnr')"
    return dashboard(
        "streamwatch-fairness",
        "streamwatch: performance and fairness",
        [
            panel(
                "Performance once labels arrive",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('accuracy', 'precision', 'recall', 'f1', 'roc_auc') "
                f"AND segment_key = '' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                width=24,
            ),
            panel(
                "Per-slice selection rate, TPR, FPR and FNR",
                f"SELECT window_start AS time, concat(segment_key, ' ', metric) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant', 'slice')} AND {rates} AND segment_key != '' AND {TUMBLING} "
                "ORDER BY time",
                unit="percentunit",
            ),
            panel(
                "Per-slice rates with 95% intervals (latest window)",
                f"SELECT segment_key AS slice, metric, argMax(value, window_start) AS value, argMax(lower, "
                f"window_start) AS lower, argMax(upper, window_start) AS upper FROM {M} WHERE "
                f"{scope('version', 'variant', 'slice')} AND {rates} AND segment_key != '' AND {TUMBLING} "
                "GROUP BY slice, metric ORDER BY slice, metric",
                kind="table",
                fmt="table",
            ),
            panel(
                "Parity ratios, with the four-fifths line",
                f"SELECT window_start AS time, concat(segment_key, ' ', metric) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric = 'demographic_parity_ratio' AND {TUMBLING} ORDER BY time",
                thresholds=[(0.8, "red")],
                description="Under 0.8 breaks the four-fifths rule.",
            ),
            panel(
                "Parity differences",
                f"SELECT window_start AS time, concat(segment_key, ' ', metric) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('demographic_parity_difference', "
                f"'equalized_odds_difference', 'equal_opportunity_difference') AND {TUMBLING} ORDER BY time",
                thresholds=[(0.1, "red")],
            ),
        ],
        ("version", "variant", "slice"),
    )


def _slo() -> dict[str, Any]:
    return dashboard(
        "streamwatch-slo",
        "streamwatch: latency SLO",
        [
            panel(
                "Latency p50, p95, p99 by version and variant",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('latency_p50', 'latency_p95', 'latency_p99') AND "
                f"{TUMBLING} ORDER BY time",
                unit="ms",
                width=24,
            ),
            panel(
                "Error rate",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version', 'variant')} "
                f"AND metric = 'error_rate' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
            ),
            panel(
                "Error budget remaining (burn-down)",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version', 'variant')} "
                f"AND metric = 'error_budget_remaining' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                thresholds=[(0.25, "orange")],
            ),
            panel(
                "Burn rates against their thresholds (page 14.4 and 6, ticket 3 and 1)",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('burn_rate_1h', 'burn_rate_6h', 'burn_rate_1d', "
                f"'burn_rate_3d') AND {TUMBLING} ORDER BY time",
                thresholds=[(1, "yellow"), (3, "orange"), (6, "red"), (14.4, "dark-red")],
                width=24,
            ),
            panel(
                "Canary and shadow against production: p95 latency by variant",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version')} "
                f"AND metric = 'latency_p95' AND {TUMBLING} ORDER BY time",
                unit="ms",
            ),
            panel(
                "Paired comparison (shadow or canary twins of production requests): agreement, p95 ratio",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version')} AND variant != 'production' AND metric IN ('latency_p95_ratio', 'agreement_rate', "
                f"'score_abs_diff') AND {TUMBLING} ORDER BY time",
                optional=True,
            ),
        ],
        ("version", "variant"),
    )


def _alerts() -> dict[str, Any]:
    link = "JSONExtractString(payload, 'dashboard_url')"
    return dashboard(
        "streamwatch-alerts",
        "streamwatch: alerts and retraining",
        [
            panel(
                "Alert transitions over time",
                "SELECT window_start AS time, concat(rule, ' ', model_version, ' ', variant, ' ', feature) AS series, "
                "multiIf(status = 'firing', 2, status = 'pending', 1, 0) AS value FROM ${database}.alerts FINAL "
                f"WHERE model = '${{model}}' AND {T} ORDER BY time",
                kind="state-timeline",
                width=24,
                height=10,
                description="2 firing, 1 pending, 0 resolved.",
            ),
            panel(
                "Alerts",
                "SELECT window_start, status, severity, rule, kind, model_version, variant, feature, "
                f"toString(segment) AS slice, value, threshold, {link} AS dashboard, "
                "JSONExtractString(payload, 'runbook_url') AS runbook FROM ${database}.alerts FINAL WHERE "
                f"model = '${{model}}' AND {T} ORDER BY window_start DESC",
                kind="table",
                fmt="table",
                width=24,
                links={"dashboard": "${__value.raw}", "runbook": "${__value.raw}"},
            ),
            panel(
                "Retrain requests",
                "SELECT created_at, model_version, reason, JSONExtractString(payload, "
                "'suggested_data_start') AS train_from, JSONExtractString(payload, 'suggested_data_end') AS train_to "
                "FROM ${database}.retrain_events FINAL WHERE model = '${model}' ORDER BY created_at DESC",
                kind="table",
                fmt="table",
                width=24,
            ),
        ],
        (),
    )


def _worker() -> dict[str, Any]:
    wm = "${database}.worker_metrics"
    at = "$__timeFilter_ms(at)"

    def counter_rate(name: str, title: str) -> dict[str, Any]:
        return panel(
            title,
            f"SELECT at AS time, worker AS series, greatest(0, total - lagInFrame(total) OVER "
            "(PARTITION BY worker ORDER BY at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) / "
            "greatest(1, dateDiff('second', lagInFrame(at) OVER (PARTITION BY worker ORDER BY at ROWS "
            "BETWEEN 1 PRECEDING AND CURRENT ROW), at)) AS value FROM (SELECT at, worker, sum(value) AS "
            f"total FROM {wm} WHERE name = '{name}' AND {at} GROUP BY at, worker) ORDER BY time",
            unit="short",
        )

    return dashboard(
        "streamwatch-workers",
        "streamwatch: worker health",
        [
            counter_rate("streamwatch_events_total", "Throughput (events per second)"),
            panel(
                "Consumer lag",
                f"SELECT at AS time, worker AS series, sum(value) AS value FROM {wm} WHERE "
                f"name = 'streamwatch_consumer_lag' AND {at} GROUP BY time, series ORDER BY time",
                unit="short",
            ),
            counter_rate("streamwatch_dead_letters_total", "Dead letters per second"),
            counter_rate("streamwatch_late_events_total", "Late events per second"),
            panel(
                "Insert latency (mean per batch)",
                f"SELECT at AS time, worker AS series, sumIf(value, name = "
                "'streamwatch_insert_seconds_sum') / greatest(1, sumIf(value, name = "
                "'streamwatch_insert_seconds_count'))"
                f" AS value FROM {wm} WHERE name IN ('streamwatch_insert_seconds_sum', "
                f"'streamwatch_insert_seconds_count') AND {at} GROUP BY time, series ORDER BY time",
                unit="s",
            ),
            panel(
                "Notifications: sent, retried, given up",
                f"SELECT at AS time, concat(worker, ' ', name, ' ', "
                f"labels['channel']) AS series, value FROM {wm} WHERE name IN ('streamwatch_notifications_total', "
                "'streamwatch_notification_retries_total', 'streamwatch_notification_failures_total') AND "
                f"{at} ORDER BY time",
            ),
        ],
        (),
        links=True,
    )


DASHBOARDS = {
    "overview": _overview,
    "drift": _drift,
    "fairness": _fairness,
    "slo": _slo,
    "alerts": _alerts,
    "workers": _worker,
}


def render_dashboards() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n" for name, build in DASHBOARDS.items()}


def stale_dashboards(directory: Path) -> list[str]:
    """Dashboard files in ``directory`` that are missing or differ from the code."""
    out = []
    for name, text in render_dashboards().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out
