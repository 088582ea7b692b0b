"""The seven Grafana dashboards, as code: ``streamwatch dashboards build`` writes them to ``dashboards/``.

They are built with Grafana's own typed builders (``grafana-foundation-sdk``, its Grafana 11 build) rather than
hand-written JSON, so a misspelt option, a wrong enum or a panel type Grafana does not have fails the type check
instead of rendering an empty panel, and the JSON follows the schema Grafana 11 itself reads. Every panel's SQL
lives here, in one reviewed place, and a test runs each query on real ClickHouse.

Queries use the official ``grafana-clickhouse-datasource`` plugin's macros (``$__timeFilter_ms``) and these
template variables: ``${database}`` (a constant), ``${model}``, ``${version}``, ``${variant}``, ``${feature}``
and ``${slice}`` (each but the model may be "All", whose value is ``__all``).

The model, version, variant, feature and slice values come from producers, so no query puts one in a string literal
as it is: ``'${model}'`` lets ``x' OR 1=1 --`` out of the literal, and Grafana's ``sqlstring`` format (which only
doubles quotes) does not help either, since ClickHouse also reads a backslash as an escape in a literal. :func:`quoted`
writes ``decodeURLComponent('${model:percentencode}')`` instead: Grafana's percent encoding leaves only letters,
digits, ``-_.~`` and ``%XX`` in the literal, and ClickHouse decodes it back to the exact value.

The SDK ships query models for Grafana's bundled datasources only, not for the ClickHouse plugin, so
:class:`ClickHouseQuery` and its builder :class:`ClickHouseSQL` are that model, written the way the SDK writes
its own (a ``cog`` dataquery variant with ``to_json``/``from_json``, and :func:`variant_config` to register it
for decoding). Pure: this module builds objects and JSON text; the command line reads and writes the files.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

__all__ = [
    "ALL",
    "BUILDERS",
    "DASHBOARDS",
    "OPTIONAL_PANELS",
    "PLUGIN",
    "ClickHouseFormat",
    "ClickHouseQuery",
    "ClickHouseSQL",
    "dashboard_json",
    "quoted",
    "render_dashboards",
    "scope",
    "stale_dashboards",
    "variant_config",
]

PLUGIN = "grafana-clickhouse-datasource"
ALL = "__all"
TAG = "streamwatch"

M = "${database}.metrics FINAL"
T = "$__timeFilter_ms(window_start)"
TUMBLING = f"window = 'tumbling' AND {T}"
SERIES = "concat(model_version, ' ', variant)"
# A slice's rate: its slice, the rate, the class it is of (a multiclass model's one-vs-rest), version and variant.
SLICE_SERIES = f"concat(segment_key, ' ', metric, if(feature = '', '', concat(' ', feature)), ' ', {SERIES})"

# The figures CBPE estimates (rows ``estimated_<metric>``), as the realized rows name them.
ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")

PAIRED = "Paired comparison (shadow or canary twins of production requests): agreement, p95 ratio"
# Panels that are empty unless the deployment has what they show (the demo has canaries but no shadow twins, and
# its model is a binary classifier).
# Kept here, not as a key in the panel's JSON: the SDK's Panel model has no such field and drops unknown keys,
# as Grafana does; the panel's description tells the reader instead.
MULTICLASS_PER_CLASS = "Multiclass: per-class precision, recall, F1 and support (latest window)"
MULTICLASS_CONFUSION = "Multiclass: confusion matrix, actual by predicted (counts over the time range)"
OPTIONAL_PANELS = frozenset({PAIRED, MULTICLASS_PER_CLASS, MULTICLASS_CONFUSION})
# The drift dashboard's "Embeddings" row (the demo's model has one, its applications' free text embedded).
EMBEDDING_EUCLIDEAN = "Embeddings: Euclidean distance of the mean vector from the reference's, with its threshold"
EMBEDDING_COSINE = "Embeddings: cosine distance (1 - cos) of the mean vector from the reference's, with its threshold"
EMBEDDING_PROJECTIONS = "Embeddings: drift of the projections on the principal components (latest window)"


def _datasource() -> model.DataSourceRef:
    """The ClickHouse datasource the ``datasource`` variable picks (a fresh object: the SDK's models are mutable)."""
    return model.DataSourceRef(type_val=PLUGIN, uid="${datasource}")


class ClickHouseFormat(enum.IntEnum):
    """The plugin's result format codes, which decide whether Grafana sees time series or a table."""

    TIME_SERIES = 0
    TABLE = 1


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL query of the ClickHouse plugin: the SDK has no model for it, so this is one in the SDK's shape."""

    ref_id: str
    raw_sql: str
    format_val: ClickHouseFormat
    query_type: str
    editor_type: str
    datasource: model.DataSourceRef | None

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        format_val: ClickHouseFormat = ClickHouseFormat.TIME_SERIES,
        query_type: str = "timeseries",
        editor_type: str = "sql",
        datasource: model.DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val = format_val
        self.query_type = query_type
        self.editor_type = editor_type
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        """The query as the plugin stores it in a panel's ``targets`` (what the SDK's encoder calls)."""
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "editorType": self.editor_type,
            "queryType": self.query_type,
            "format": self.format_val,
            "rawSql": self.raw_sql,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Decode a target back (so a dashboard read with the SDK keeps its queries typed)."""
        return cls(
            ref_id=data.get("refId", "A"),
            raw_sql=data.get("rawSql", ""),
            format_val=ClickHouseFormat(data.get("format", ClickHouseFormat.TIME_SERIES)),
            query_type=data.get("queryType", "timeseries"),
            editor_type=data.get("editorType", "sql"),
            datasource=model.DataSourceRef.from_json(data["datasource"]) if "datasource" in data else None,
        )


class ClickHouseSQL(cogbuilder.Builder[ClickHouseQuery]):
    """Builds a :class:`ClickHouseQuery`, so a panel's ``with_target`` takes it like any of the SDK's queries.

    The SQL's whitespace is collapsed: the code wraps it for reading, the JSON keeps one line.
    """

    _internal: ClickHouseQuery

    def __init__(self, sql: str) -> None:
        self._internal = ClickHouseQuery(raw_sql=" ".join(sql.split()), datasource=_datasource())

    def build(self) -> ClickHouseQuery:
        """The query."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """The query's id within its panel."""
        self._internal.ref_id = ref_id
        return self

    def format(self, fmt: ClickHouseFormat) -> Self:
        """Time series or table; the plugin's query type follows the format."""
        self._internal.format_val = fmt
        self._internal.query_type = "table" if fmt is ClickHouseFormat.TABLE else "timeseries"
        return self

    def datasource(self, datasource: model.DataSourceRef) -> Self:
        """Another datasource than the one the ``datasource`` variable picks."""
        self._internal.datasource = datasource
        return self


def variant_config() -> cogruntime.DataqueryConfig:
    """What registers :class:`ClickHouseQuery` with the SDK's runtime, as each of the SDK's query models has.

    Registering is the caller's (``cogruntime.register_dataquery_variant(variant_config())``): the runtime is
    a process-wide singleton, and building the dashboards does not need it, only decoding them does.
    """
    return cogruntime.DataqueryConfig(identifier=PLUGIN, from_json_hook=ClickHouseQuery.from_json)


def quoted(name: str) -> str:
    """A template variable's value as a ClickHouse string, safe whatever the value (see the module's docstring).

    Grafana percent-encodes the value (``encodeURIComponent``, plus ``!'()*``), so the literal holds no quote and
    no backslash; "All" with a custom all value stays ``__all``, which has nothing to encode.

    >>> quoted("model")
    "decodeURLComponent('${model:percentencode}')"
    """
    return f"decodeURLComponent('${{{name}:percentencode}}')"


def scope(*names: str, prefix: str = "") -> str:
    """SQL conditions for the chosen model and the optional version, variant, feature and slice.

    >>> scope("version")  # doctest: +NORMALIZE_WHITESPACE
    "model = decodeURLComponent('${model:percentencode}') AND (decodeURLComponent('${version:percentencode}') =
    '__all' OR model_version = decodeURLComponent('${version:percentencode}'))"
    """
    columns = {"version": "model_version", "variant": "variant", "feature": "feature", "slice": "segment_key"}
    parts = [f"{prefix}model = {quoted('model')}"]
    parts += [f"({quoted(n)} = '{ALL}' OR {prefix}{columns[n]} = {quoted(n)})" for n in names]
    return " AND ".join(parts)


# The SDK generates each panel builder separately, with no common base but ``Builder[Panel]``; a constrained
# type variable lets one helper set what they share and still hand back the concrete builder.
P = TypeVar("P", timeseries.Panel, stat.Panel, bargauge.Panel, table.Panel, heatmap.Panel, statetimeline.Panel)
PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | table.Panel | heatmap.Panel | statetimeline.Panel


def _thresholds(steps: Sequence[tuple[float, str]], base: str = "green") -> dash.ThresholdsConfig:
    """Absolute thresholds over a ``base`` colour: each (value, colour) starts a colour at that value, so the
    values must rise (Grafana takes the last step at or under a value; out of order, one colour wins)."""
    values = [value for value, _ in steps]
    if values != sorted(values):
        raise ValueError(f"threshold steps must rise: {values}")
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=None, color=base)] + [model.Threshold(value=v, color=c) for v, c in steps])
    )


def _panel(
    builder: P,
    title: str,
    sql: str,
    *,
    fmt: ClickHouseFormat = ClickHouseFormat.TIME_SERIES,
    unit: str | None = None,
    description: str | None = None,
    thresholds: Sequence[tuple[float, str]] = (),
    base: str = "green",
    width: int = 12,
    height: int = 8,
) -> P:
    """A panel with one raw-SQL query, ``width`` of 24 columns; the dashboard lays the panels out in order."""
    builder = (
        builder.title(title)
        .datasource(_datasource())
        .with_target(ClickHouseSQL(sql).format(fmt))
        .span(width)
        .height(height)
    )
    if description:
        builder = builder.description(description)
    if unit:
        builder = builder.unit(unit)
    if thresholds:
        builder = builder.thresholds(_thresholds(thresholds, base))
    return builder


def _series(
    title: str,
    sql: str,
    *,
    unit: str | None = None,
    description: str | None = None,
    thresholds: Sequence[tuple[float, str]] = (),
    width: int = 12,
) -> timeseries.Panel:
    """A time series; its thresholds are drawn as lines with shaded areas, so a crossing shows at a glance."""
    panel = timeseries.Panel()
    if thresholds:
        style = common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE_AND_AREA)
        panel = panel.thresholds_style(style)
    return _panel(panel, title, sql, unit=unit, description=description, thresholds=thresholds, width=width)


def _table(title: str, sql: str, *, links: Mapping[str, str] | None = None, width: int = 12) -> table.Panel:
    """A table; ``links`` {column: url template} make a column's cells clickable."""
    panel = _panel(table.Panel(), title, sql, fmt=ClickHouseFormat.TABLE, width=width)
    for name, url in (links or {}).items():
        # A field override's value is untyped in the SDK (``object``); Grafana reads a list of data links here.
        link = model.DynamicConfigValue(id_val="links", value=[{"title": f"open {name}", "url": url}])
        panel = panel.override_by_name(name, [link])
    return panel


def _overall_or_slice(prefix: str = "") -> str:
    """The overall rows (segment key ``''``), or the slice's when the ``slice`` variable picks one."""
    return f"{prefix}segment_key = if({quoted('slice')} = '{ALL}', '', {quoted('slice')})"


def _query_variable(name: str, sql: str, *, include_all: bool = True) -> dash.QueryVariable:
    """A variable listing what ClickHouse has, refreshed with the time range; "All" is ``__all`` in the SQL."""
    variable = (
        dash.QueryVariable(name)
        .datasource(_datasource())
        .query(sql)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(include_all)
    )
    if include_all:
        variable = variable.all_value(ALL).current(model.VariableOption(text="All", value="$__all"))
    return variable


def _variables(*names: str) -> list[cogbuilder.Builder[model.VariableModel]]:
    """The template variables a dashboard uses: always the datasource, database and model, then ``names``."""
    out: list[cogbuilder.Builder[model.VariableModel]] = [
        dash.DatasourceVariable("datasource").label("ClickHouse").type(PLUGIN),
        dash.ConstantVariable("database").value("streamwatch"),
        _query_variable("model", "SELECT DISTINCT model FROM ${database}.metrics ORDER BY model", include_all=False),
    ]
    model_is = f"model = {quoted('model')}"
    queries = {
        "version": f"SELECT DISTINCT model_version FROM ${{database}}.metrics WHERE {model_is} ORDER BY 1",
        "feature": f"SELECT DISTINCT feature FROM ${{database}}.metrics WHERE {model_is} AND feature != '' ORDER BY 1",
        "slice": f"SELECT DISTINCT segment_key FROM ${{database}}.metrics WHERE {model_is} AND segment_key != '' "
        "AND position(segment_key, '*') = 0 AND position(segment_key, 'production_version') = 0 ORDER BY 1",
    }
    for name in names:
        if name == "variant":
            out.append(
                dash.CustomVariable("variant")
                .values("production,canary,shadow")
                .include_all(True)
                .all_value(ALL)
                .current(model.VariableOption(text="All", value="$__all"))
            )
        else:
            out.append(_query_variable(name, queries[name]))
    return out


def _dashboard(
    uid: str, title: str, panels: Sequence[PanelBuilder | dash.Row], names: tuple[str, ...]
) -> dash.Dashboard:
    """A dashboard: the panels in order (the SDK wraps a row at 24 columns), the variables, links to the others.

    A :class:`dash.Row` among them starts a titled, expanded row: Grafana puts the panels after it in that row.
    """
    board = (
        dash.Dashboard(title)
        .uid(uid)
        .tags([TAG])
        .timezone("utc")
        .refresh("30s")
        .time("now-6h", "now")
        .variables(_variables(*names))
        .link(
            dash.DashboardLink(TAG)
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for number, panel in enumerate(panels, 1):
        board = board.with_row(panel.id(number)) if isinstance(panel, dash.Row) else board.with_panel(panel.id(number))
    return board


def _overview() -> dash.Dashboard:
    return _dashboard(
        "streamwatch-overview",
        "streamwatch: overview",
        [
            _series(
                "Traffic (requests per window)",
                f"SELECT window_start AS time, concat(model, ' ', {SERIES}) AS series, value FROM {M} "
                f"WHERE metric = 'requests' AND {TUMBLING} ORDER BY time",
                unit="short",
                width=24,
            ),
            _series(
                "Share of features drifted",
                f"SELECT window_start AS time, concat(model, ' ', {SERIES}) AS series, value FROM {M} "
                f"WHERE metric = 'drifted_share' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                thresholds=[(0.5, "red")],
            ),
            _series(
                "Label coverage (labelled / requests)",
                "SELECT r.window_start AS time, concat(r.model, ' ', r.model_version, ' ', r.variant) AS series, "
                "l.value / r.value AS value FROM ${database}.metrics AS r FINAL "
                "INNER JOIN ${database}.metrics AS l FINAL ON l.model = r.model AND "
                "l.model_version = r.model_version AND l.variant = r.variant AND l.window_start = r.window_start "
                "AND l.window = r.window WHERE r.metric = 'requests' AND l.metric = 'labelled' AND l.segment_key = '' "
                "AND r.window = 'tumbling' AND $__timeFilter_ms(r.window_start) ORDER BY time",
                unit="percentunit",
            ),
            _panel(
                stat.Panel(),
                "Firing alerts",
                "SELECT count() AS firing FROM (SELECT fingerprint, argMax(status, window_end) AS "
                "status FROM ${database}.alerts FINAL GROUP BY fingerprint) WHERE status = 'firing'",
                fmt=ClickHouseFormat.TABLE,
                thresholds=[(1, "red")],
                width=6,
            ),
            _panel(
                bargauge.Panel(),
                "SLO error budget left",
                f"SELECT concat(model, ' ', {SERIES}) AS series, argMax(value, window_start) "
                f"AS budget FROM {M} WHERE metric = 'error_budget_remaining' AND {TUMBLING} GROUP BY series",
                fmt=ClickHouseFormat.TABLE,
                unit="percentunit",
                # Little budget left is the bad end: red under 0 (overspent), orange under a quarter, then green.
                thresholds=[(0.0, "orange"), (0.25, "green")],
                base="red",
                width=6,
            ),
            _table(
                "Alerts now",
                "SELECT fingerprint, argMax(status, window_end) AS status, any(rule) AS rule, "
                "any(model) AS model, any(model_version) AS version, any(variant) AS variant, max(window_end) AS "
                "last_window FROM ${database}.alerts FINAL GROUP BY fingerprint HAVING status != 'resolved' "
                "ORDER BY last_window DESC",
            ),
        ],
        (),
    )


def _embedding_distance(title: str, metric: str) -> timeseries.Panel:
    """One embedding distance per embedding (its name is the rows' feature) and its calibrated threshold, each a
    series: the threshold is per embedding and window size, so it is a dashed line of its own, not a fixed one."""
    return _series(
        title,
        f"SELECT time, series, point AS value FROM (SELECT window_start AS time, concat(feature, ' ', kind, ' ', "
        f"{SERIES}) AS series, point FROM {M} ARRAY JOIN ['distance', 'threshold'] AS kind, [value, threshold] AS "
        f"point WHERE {scope('version', 'variant')} AND metric = '{metric}' AND segment_key = '' AND {TUMBLING}) "
        "WHERE isNotNull(point) ORDER BY time",
        description="Per embedding (a vector input of the model): the distance between the window's mean vector and "
        "the reference's, and the threshold a stationary window crosses with the drift budget's probability "
        "(dashed). Nothing for a model without embeddings.",
    ).override_by_regexp(
        ".* threshold .*",
        # A field override's value is untyped in the SDK (``object``); Grafana reads a line style here.
        [model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})],
    )


def _embedding_projections() -> table.Panel:
    """Each embedding's projections (drift features ``<name>#pc1``...) in their latest window: the statistic that
    decides a numeric feature's drift (Wasserstein; ``core.drift_report``) against its threshold, as the heatmap
    shows it."""
    return _table(
        EMBEDDING_PROJECTIONS,
        "SELECT model_version AS version, variant, "
        "arrayStringConcat(arrayPopBack(splitByString('#pc', feature)), '#pc') AS embedding, "
        "feature AS projection, max(window_start) AS latest_window, argMax(value, window_start) AS wasserstein, "
        "argMax(threshold, window_start) AS wasserstein_threshold, wasserstein / wasserstein_threshold AS ratio, "
        "if(wasserstein >= wasserstein_threshold, 'yes', 'no') AS drifted FROM "
        f"{M} WHERE {scope('version', 'variant')} AND metric = 'wasserstein' AND threshold > 0 AND feature LIKE "
        f"'%#pc%' AND segment_key = '' AND {TUMBLING} GROUP BY version, variant, embedding, projection "
        "ORDER BY version, variant, embedding, projection",
        width=24,
    ).description(
        "Each embedding's projections on the reference's first principal components are drift features: their "
        "Wasserstein distance against its threshold in the latest window (a ratio of 1 or more is drift), which "
        "shows a change of spread the mean's distance misses. Nothing for a model without embeddings."
    )


def _drift() -> dash.Dashboard:
    deciding = "metric IN ('wasserstein', 'js') AND feature != '' AND threshold > 0"
    return _dashboard(
        "streamwatch-drift",
        "streamwatch: drift and data quality",
        [
            _panel(
                # The SQL already gives one cell per feature and window: Grafana must not bucket it again.
                heatmap.Panel()
                .calculate(False)
                .y_axis(heatmap.YAxisConfig().axis_placement(common.AxisPlacement.LEFT)),
                "Drift heatmap: each feature's statistic / its threshold (1 or more is drift)",
                f"SELECT window_start AS time, feature AS series, max(value / threshold) AS value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND {deciding} AND {TUMBLING} AND NOT (feature = '__score__' AND "
                "metric = 'js') GROUP BY time, series ORDER BY time",
                width=24,
                height=10,
            ),
            _series(
                "PSI, Jensen-Shannon and Wasserstein of ${feature}",
                # (every dimension the rows differ by is in the series: with "All" chosen, rows of two features or
                # versions sharing a series and a time would collapse into one point)
                f"SELECT window_start AS time, concat(feature, ' ', metric, ' ', {SERIES}) AS series, value FROM {M} "
                f"WHERE {scope('version', 'variant', 'feature')} AND metric IN ('psi', 'js', 'wasserstein') "
                f"AND {TUMBLING} ORDER BY time",
            ),
            _series(
                "Score drift (Wasserstein of the model's score)",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version', 'variant')} "
                f"AND feature = '__score__' AND metric = 'wasserstein' AND {TUMBLING} ORDER BY time",
            ),
            _series(
                "Missing, out-of-range, unseen and mistyped rates",
                f"SELECT window_start AS time, concat(feature, ' ', metric, ' ', {SERIES}) AS series, value FROM {M} "
                f"WHERE {scope('version', 'variant', 'feature')} AND metric IN ('missing_rate', 'out_of_range_rate', "
                f"'unseen_rate', 'type_mismatch_rate') AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                width=24,
            ),
            _table(
                "Reference lineage",
                "SELECT model_version, data_uri, rows, content_sha256, created_at, git_sha "
                f"FROM ${{database}}.profiles FINAL WHERE model = {quoted('model')} ORDER BY model_version",
                width=24,
            ).height(5),
            dash.Row("Embeddings"),
            _embedding_distance(EMBEDDING_EUCLIDEAN, "embedding_euclidean"),
            _embedding_distance(EMBEDDING_COSINE, "embedding_cosine"),
            _embedding_projections(),
        ],
        ("version", "variant", "feature"),
    )


def _fairness() -> dash.Dashboard:
    rates = "metric IN ('selection_rate', 'tpr', 'fpr', 'fnr')"
    return _dashboard(
        "streamwatch-fairness",
        "streamwatch: performance and fairness",
        [
            _series(
                "Performance once labels arrive",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('accuracy', 'precision', 'recall', 'f1', 'roc_auc') "
                f"AND segment_key = '' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                width=24,
            ),
            _series(
                "Per-slice selection rate, TPR, FPR and FNR",
                f"SELECT window_start AS time, {SLICE_SERIES} AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant', 'slice')} AND {rates} AND segment_key != '' AND {TUMBLING} "
                "ORDER BY time",
                unit="percentunit",
            ),
            _table(
                "Per-slice rates with 95% intervals (latest window)",
                f"SELECT segment_key AS slice, metric, argMax(value, window_start) AS value, argMax(lower, "
                f"window_start) AS lower, argMax(upper, window_start) AS upper FROM {M} WHERE "
                f"{scope('version', 'variant', 'slice')} AND {rates} AND segment_key != '' AND {TUMBLING} "
                "GROUP BY slice, metric ORDER BY slice, metric",
            ),
            _series(
                "Parity ratios, with the four-fifths line",
                f"SELECT window_start AS time, {SLICE_SERIES} AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric = 'demographic_parity_ratio' AND {TUMBLING} ORDER BY time",
                thresholds=[(0.8, "red")],
                description="Under 0.8 breaks the four-fifths rule.",
            ),
            _series(
                "Parity differences",
                f"SELECT window_start AS time, {SLICE_SERIES} AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('demographic_parity_difference', "
                f"'equalized_odds_difference', 'equal_opportunity_difference') AND {TUMBLING} ORDER BY time",
                thresholds=[(0.1, "red")],
            ),
        ],
        ("version", "variant", "slice"),
    )


def _performance() -> dash.Dashboard:
    where = f"{scope('version', 'variant')} AND {_overall_or_slice()} AND {TUMBLING}"
    estimated = ", ".join(f"'estimated_{m}'" for m in ESTIMATED)

    def estimate(metric: str, title: str, width: int) -> timeseries.Panel:
        # The estimate and its bounds are three columns of one row: ARRAY JOIN makes them three series.
        return _series(
            title,
            f"SELECT time, series, point AS value FROM (SELECT window_start AS time, concat(kind, ' ', {SERIES}) "
            f"AS series, bound AS point FROM {M} ARRAY JOIN ['estimated', 'lower', 'upper'] AS kind, "
            f"[value, lower, upper] AS bound WHERE {where} AND metric = 'estimated_{metric}' UNION ALL SELECT "
            f"window_start, concat('realized ', {SERIES}), value FROM {M} WHERE {where} AND metric = '{metric}') "
            "WHERE isNotNull(point) ORDER BY time",
            unit="percentunit",
            description="Estimated from the predictions alone (CBPE), with its lower and upper bounds; realized "
            "once the labels arrive. Overall, or the slice chosen.",
            width=width,
        )

    return _dashboard(
        "streamwatch-performance",
        "streamwatch: performance",
        [
            estimate("accuracy", "Estimated and realized accuracy", 12),
            estimate("roc_auc", "Estimated and realized ROC AUC", 12),
            estimate("precision", "Estimated and realized precision", 8),
            estimate("recall", "Estimated and realized recall", 8),
            estimate("f1", "Estimated and realized F1", 8),
            _table(
                "Estimated vs realized (latest windows with labels)",
                "SELECT e.window_start AS window_start, e.model_version AS version, e.variant AS variant, r.metric "
                "AS metric, e.value AS estimated, e.lower AS lower, e.upper AS upper, r.value AS realized, "
                "multiIf(isNull(e.lower) OR isNull(e.upper), '', r.value >= e.lower AND r.value <= e.upper, 'yes', "
                "'no') AS within_bounds FROM ${database}.metrics AS e FINAL INNER JOIN ${database}.metrics AS r "
                "FINAL ON r.model = e.model AND r.model_version = e.model_version AND r.variant = e.variant AND "
                "r.window = e.window AND r.window_start = e.window_start AND r.segment_key = e.segment_key AND "
                "r.feature = e.feature AND concat('estimated_', r.metric) = e.metric WHERE "
                f"{scope('version', 'variant', prefix='e.')} AND {_overall_or_slice('e.')} "
                f"AND e.metric IN ({estimated}) AND e.window = 'tumbling' AND $__timeFilter_ms(e.window_start) "
                "ORDER BY window_start DESC, version, variant, metric LIMIT 100",
                width=24,
            ),
            _series(
                "Multiclass: accuracy, macro F1 and micro F1",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE {where} "
                "AND metric IN ('accuracy', 'macro_f1', 'micro_f1') ORDER BY time",
                unit="percentunit",
                width=24,
            ),
            _table(
                MULTICLASS_PER_CLASS,
                f"SELECT model_version AS version, variant, feature AS class, max(window_start) AS latest_window, "
                "argMaxIfOrNull(value, window_start, metric = 'class_precision') AS precision, argMaxIfOrNull(value, "
                "window_start, metric = 'class_recall') AS recall, argMaxIfOrNull(value, window_start, metric = "
                "'class_f1') AS f1, argMaxIfOrNull(value, window_start, metric = 'class_support') AS support FROM "
                f"{M} WHERE {where} AND metric IN ('class_precision', 'class_recall', 'class_f1', 'class_support') "
                "GROUP BY version, variant, class ORDER BY version, variant, class",
            ).description("Empty unless the model is a multiclass classifier."),
            _table(
                MULTICLASS_CONFUSION,
                "SELECT model_version AS version, variant, JSONExtractString(feature, 1) AS actual, "
                "JSONExtractString(feature, 2) AS predicted, sum(value) AS count FROM "
                f"{M} WHERE {where} AND metric = 'confusion' GROUP BY version, variant, actual, predicted "
                "ORDER BY version, variant, actual, predicted",
            ).description("Empty unless the model is a multiclass classifier."),
        ],
        ("version", "variant", "slice"),
    )


def _slo() -> dash.Dashboard:
    return _dashboard(
        "streamwatch-slo",
        "streamwatch: latency SLO",
        [
            _series(
                "Latency p50, p95, p99 by version and variant",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('latency_p50', 'latency_p95', 'latency_p99') AND "
                f"{TUMBLING} ORDER BY time",
                unit="ms",
                width=24,
            ),
            _series(
                "Error rate",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version', 'variant')} "
                f"AND metric = 'error_rate' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
            ),
            _series(
                "Error budget remaining (burn-down)",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version', 'variant')} "
                f"AND metric = 'error_budget_remaining' AND {TUMBLING} ORDER BY time",
                unit="percentunit",
                thresholds=[(0.25, "orange")],
            ),
            _series(
                "Burn rates against their thresholds (page 14.4 and 6, ticket 3 and 1)",
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version', 'variant')} AND metric IN ('burn_rate_1h', 'burn_rate_6h', 'burn_rate_1d', "
                f"'burn_rate_3d') AND {TUMBLING} ORDER BY time",
                thresholds=[(1, "yellow"), (3, "orange"), (6, "red"), (14.4, "dark-red")],
                width=24,
            ),
            _series(
                "Canary and shadow against production: p95 latency by variant",
                f"SELECT window_start AS time, {SERIES} AS series, value FROM {M} WHERE {scope('version')} "
                f"AND metric = 'latency_p95' AND {TUMBLING} ORDER BY time",
                unit="ms",
            ),
            _series(
                PAIRED,
                f"SELECT window_start AS time, concat(metric, ' ', {SERIES}) AS series, value FROM {M} WHERE "
                f"{scope('version')} AND variant != 'production' AND metric IN ('latency_p95_ratio', 'agreement_rate', "
                f"'score_abs_diff') AND {TUMBLING} ORDER BY time",
                description="Empty unless shadow or canary twins of production requests are sent.",
            ),
        ],
        ("version", "variant"),
    )


def _alerts() -> dash.Dashboard:
    link = "JSONExtractString(payload, 'dashboard_url')"
    return _dashboard(
        "streamwatch-alerts",
        "streamwatch: alerts and retraining",
        [
            _panel(
                statetimeline.Panel(),
                "Alert transitions over time",
                "SELECT window_start AS time, concat(rule, ' ', model_version, ' ', variant, ' ', feature) AS series, "
                "multiIf(status = 'firing', 2, status = 'pending', 1, 0) AS value FROM ${database}.alerts FINAL "
                f"WHERE model = {quoted('model')} AND {T} ORDER BY time",
                width=24,
                height=10,
                description="2 firing, 1 pending, 0 resolved.",
            ),
            _table(
                "Alerts",
                "SELECT window_start, status, severity, rule, kind, model_version, variant, feature, "
                f"toString(segment) AS slice, value, threshold, {link} AS dashboard, "
                "JSONExtractString(payload, 'runbook_url') AS runbook FROM ${database}.alerts FINAL WHERE "
                f"model = {quoted('model')} AND {T} ORDER BY window_start DESC",
                links={"dashboard": "${__value.raw}", "runbook": "${__value.raw}"},
                width=24,
            ),
            _table(
                "Retrain requests",
                "SELECT created_at, model_version, reason, JSONExtractString(payload, "
                "'suggested_data_start') AS train_from, JSONExtractString(payload, 'suggested_data_end') AS train_to "
                f"FROM ${{database}}.retrain_events FINAL WHERE model = {quoted('model')} ORDER BY created_at DESC",
                width=24,
            ),
        ],
        (),
    )


def _worker() -> dash.Dashboard:
    wm = "${database}.worker_metrics"
    at = "$__timeFilter_ms(at)"

    def counter_rate(name: str, title: str) -> timeseries.Panel:
        return _series(
            title,
            f"SELECT at AS time, worker AS series, greatest(0, total - lagInFrame(total) OVER "
            "(PARTITION BY worker ORDER BY at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) / "
            "greatest(1, dateDiff('second', lagInFrame(at) OVER (PARTITION BY worker ORDER BY at ROWS "
            "BETWEEN 1 PRECEDING AND CURRENT ROW), at)) AS value FROM (SELECT at, worker, sum(value) AS "
            f"total FROM {wm} WHERE name = '{name}' AND {at} GROUP BY at, worker) ORDER BY time",
            unit="short",
        )

    return _dashboard(
        "streamwatch-workers",
        "streamwatch: worker health",
        [
            counter_rate("streamwatch_events_total", "Throughput (events per second)"),
            _series(
                "Consumer lag",
                f"SELECT at AS time, worker AS series, sum(value) AS value FROM {wm} WHERE "
                f"name = 'streamwatch_consumer_lag' AND {at} GROUP BY time, series ORDER BY time",
                unit="short",
            ),
            counter_rate("streamwatch_dead_letters_total", "Dead letters per second"),
            counter_rate("streamwatch_late_events_total", "Late events per second"),
            _series(
                "Insert latency (mean per batch)",
                f"SELECT at AS time, worker AS series, sumIf(value, name = "
                "'streamwatch_insert_seconds_sum') / greatest(1, sumIf(value, name = "
                "'streamwatch_insert_seconds_count'))"
                f" AS value FROM {wm} WHERE name IN ('streamwatch_insert_seconds_sum', "
                f"'streamwatch_insert_seconds_count') AND {at} GROUP BY time, series ORDER BY time",
                unit="s",
            ),
            _series(
                "Notifications: sent, retried, given up",
                f"SELECT at AS time, concat(worker, ' ', name, ' ', "
                f"labels['channel']) AS series, value FROM {wm} WHERE name IN ('streamwatch_notifications_total', "
                "'streamwatch_notification_retries_total', 'streamwatch_notification_failures_total') AND "
                f"{at} ORDER BY time",
            ),
        ],
        (),
    )


BUILDERS: dict[str, Callable[[], dash.Dashboard]] = {
    "overview": _overview,
    "drift": _drift,
    "fairness": _fairness,
    "performance": _performance,
    "slo": _slo,
    "alerts": _alerts,
    "workers": _worker,
}


def dashboard_json(board: cogbuilder.Builder[model.Dashboard]) -> dict[str, Any]:
    """A built dashboard as the JSON object Grafana stores, encoded by the SDK's own encoder."""
    decoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return decoded


def _built(name: str) -> dict[str, Any]:
    return dashboard_json(BUILDERS[name]())


# Name -> the dashboard's JSON object, fresh on each call (what tests and the Grafana push read).
DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {name: partial(_built, name) for name in BUILDERS}


def render_dashboards() -> dict[str, str]:
    """File name -> JSON text of every dashboard (keys sorted, so a diff shows only what changed)."""
    return {
        f"{name}.json": json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
        for name, build in BUILDERS.items()
    }


def stale_dashboards(present: Mapping[str, str]) -> list[str]:
    """Dashboard files that are missing from ``present`` (file name -> text, as read by the caller) or differ."""
    return [name for name, text in render_dashboards().items() if present.get(name) != text]
