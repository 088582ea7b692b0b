"""Building blocks of the Grafana dashboards: panels and template variables for the ClickHouse plugin.

The dashboards are code (:mod:`streamwatch.dashboards.catalog`) rendered to the JSON
in ``dashboards/``, so every panel's SQL lives in one reviewed place and a
test runs each query on real ClickHouse. Queries use the official
``grafana-clickhouse-datasource`` plugin's macros (``$__timeFilter_ms``) and
these template variables: ``${database}`` (a constant), ``${model}``,
``${version}``, ``${variant}``, ``${feature}`` and ``${slice}`` (each but the
model may be "All", whose value is ``__all``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ALL", "PLUGIN", "dashboard", "panel", "scope", "variables"]

PLUGIN = "grafana-clickhouse-datasource"
ALL = "__all"
DATASOURCE = {"type": PLUGIN, "uid": "${datasource}"}
_FORMATS = {"time_series": 0, "table": 1}


def scope(*names: str, prefix: str = "") -> str:
    """SQL conditions for the chosen model and the optional version, variant, feature and slice.

    >>> scope("version")
    "model = '${model}' AND ('${version}' = '__all' OR model_version = '${version}')"
    """
    columns = {"version": "model_version", "variant": "variant", "feature": "feature", "slice": "segment_key"}
    parts = [f"{prefix}model = '${{model}}'"]
    parts += [f"('${{{n}}}' = '{ALL}' OR {prefix}{columns[n]} = '${{{n}}}')" for n in names]
    return " AND ".join(parts)


def panel(
    title: str,
    sql: str,
    *,
    kind: str = "timeseries",
    fmt: str = "time_series",
    unit: str | None = None,
    description: str = "",
    thresholds: list[tuple[float, str]] | None = None,
    width: int = 12,
    height: int = 8,
    links: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
    optional: bool = False,
) -> dict[str, Any]:
    """A panel with one raw-SQL query; ``thresholds`` [(value, colour)] draw as lines on time series;
    ``links`` {field: url template} make a table column clickable; ``optional`` marks a panel that is empty
    unless the deployment has what it shows (shadow traffic, say)."""
    defaults: dict[str, Any] = {}
    if unit:
        defaults["unit"] = unit
    if thresholds:
        steps = [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in thresholds]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        if kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "links", "value": [{"title": f"open {name}", "url": url}]}],
        }
        for name, url in (links or {}).items()
    ]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": height},
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": options or {},
        **({"streamwatch_optional": True} if optional else {}),
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorType": "sql",
                "queryType": "table" if fmt == "table" else "timeseries",
                "format": _FORMATS[fmt],
                "rawSql": " ".join(sql.split()),
            }
        ],
    }


def variables(*names: str) -> list[dict[str, Any]]:
    """The template variables a dashboard uses: always the datasource, database and model."""
    out: list[dict[str, Any]] = [
        {"name": "datasource", "type": "datasource", "query": PLUGIN, "label": "ClickHouse"},
        {"name": "database", "type": "constant", "query": "streamwatch", "hide": 2},
        _query("model", "SELECT DISTINCT model FROM ${database}.metrics ORDER BY model", include_all=False),
    ]
    queries = {
        "version": "SELECT DISTINCT model_version FROM ${database}.metrics WHERE model = '${model}' ORDER BY 1",
        "feature": "SELECT DISTINCT feature FROM ${database}.metrics WHERE model = '${model}' AND feature != '' "
        "ORDER BY 1",
        "slice": "SELECT DISTINCT segment_key FROM ${database}.metrics WHERE model = '${model}' AND segment_key != '' "
        "AND position(segment_key, '*') = 0 AND position(segment_key, 'production_version') = 0 ORDER BY 1",
    }
    for name in names:
        if name == "variant":
            out.append(
                {
                    "name": "variant",
                    "type": "custom",
                    "query": "production,canary,shadow",
                    "includeAll": True,
                    "allValue": ALL,
                    "current": {"text": "All", "value": "$__all"},
                }
            )
        else:
            out.append(_query(name, queries[name]))
    return out


def _query(name: str, sql: str, include_all: bool = True) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "name": name,
        "type": "query",
        "datasource": DATASOURCE,
        "query": sql,
        "refresh": 2,
        "includeAll": include_all,
    }
    if include_all:
        variable["allValue"] = ALL
        variable["current"] = {"text": "All", "value": "$__all"}
    return variable


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], names: tuple[str, ...], links: bool = True) -> dict:
    """A dashboard: panels laid out two to a row (full-width ones alone), the variables, links to the others."""
    x = y = row_height = 0
    laid = []
    for i, p in enumerate(panels):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        laid.append({**p, "id": i + 1, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x, row_height = x + w, max(row_height, h)
    return {
        "uid": uid,
        "title": title,
        "tags": ["streamwatch"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables(*names)},
        "links": [
            {
                "type": "dashboards",
                "tags": ["streamwatch"],
                "asDropdown": True,
                "title": "streamwatch",
                "includeVars": True,
                "keepTime": True,
            }
        ]
        if links
        else [],
        "panels": laid,
    }
