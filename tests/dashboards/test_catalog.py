"""The dashboards: every panel's SQL, macros and variables expanded, runs on ClickHouse loaded by the demo scenario
and returns rows; the JSON is structurally sound, reads back through Grafana's typed SDK without losing a key,
has the panels each dashboard should, and the files in dashboards/ match the code."""

from __future__ import annotations

import http.server
import json
import re
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from grafana_foundation_sdk.cog import plugins as cogplugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as sdk_dashboard
from grafana_foundation_sdk.models import heatmap as sdk_heatmap

from streamwatch.adapters.clickhouse import Store
from streamwatch.dashboards.catalog import (
    ALL,
    DASHBOARDS,
    EMBEDDING_COSINE,
    EMBEDDING_EUCLIDEAN,
    EMBEDDING_PROJECTIONS,
    OPTIONAL_PANELS,
    PLUGIN,
    ClickHouseFormat,
    ClickHouseQuery,
    render_dashboards,
    stale_dashboards,
    variant_config,
)
from streamwatch.demo.scenario import CANARY, MODEL, PRODUCTION
from tests.dashboards.grafana import ALL_VARIABLE_VALUE, expand

ROOT = Path(__file__).parent.parent.parent


def queried(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels of ``board`` that query (a row only titles the panels after it)."""
    return [panel for panel in board["panels"] if panel["type"] != "row"]


CHOICES = [
    {"model": MODEL, "version": ALL_VARIABLE_VALUE, "variant": ALL_VARIABLE_VALUE, "feature": ALL_VARIABLE_VALUE}
    | {"slice": ALL_VARIABLE_VALUE},
    {"model": MODEL, "version": PRODUCTION, "variant": "production", "feature": "debt_ratio", "slice": "gender=F"},
]


@pytest.mark.parametrize("choice", CHOICES, ids=["all", "one"])
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_query_runs_and_returns_rows(loaded: tuple[Store, int, int], name: str, choice: dict) -> None:
    store, start, end = loaded
    board = DASHBOARDS[name]()
    for panel in queried(board):
        sql = expand(panel["targets"][0]["rawSql"], store.database, choice, start, end)
        rows = store.query(sql)
        # The demo has canaries but no shadow twins: the paired-comparison panel may only run.
        assert rows or panel["title"] in OPTIONAL_PANELS, f"{name}: {panel['title']!r} returned no rows for {choice}"
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert store.query(expand(variable["query"], store.database, choice, start, end)), variable["name"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_no_two_rows_of_a_time_series_share_a_series_and_a_time(loaded: tuple[Store, int, int], name: str) -> None:
    """With "All" chosen, a series must name every dimension its rows differ by (version, variant, slice...):
    rows that share a series and a time collapse into one point, or zigzag between versions."""
    store, start, end = loaded
    collapsing = []
    for panel in queried(DASHBOARDS[name]()):
        if panel["type"] != "timeseries":
            continue
        rows = store.query(expand(panel["targets"][0]["rawSql"], store.database, CHOICES[0], start, end))
        keys = [(row[0], row[1]) for row in rows]
        if len(keys) != len(set(keys)):
            collapsing.append(panel["title"])
    assert collapsing == [], f"{name}: rows sharing a series and a time"


def test_the_variables_offer_the_models_versions_features_and_slices(loaded: tuple[Store, int, int]) -> None:
    store, start, end = loaded
    board = DASHBOARDS["fairness"]()
    found = {
        v["name"]: {r[0] for r in store.query(expand(v["query"], store.database, CHOICES[0], start, end))}
        for v in board["templating"]["list"]
        if v["type"] == "query"
    }
    assert found["model"] == {MODEL} and found["version"] == {PRODUCTION, CANARY}
    assert {"gender=F", "gender=M"} <= found["slice"] and not any("*" in s for s in found["slice"])


def test_the_json_is_sound_and_the_files_match_the_code() -> None:
    files = render_dashboards()
    present = {path.name: path.read_text(encoding="utf-8") for path in (ROOT / "dashboards").glob("*.json")}
    assert stale_dashboards(present) == [], "run `streamwatch dashboards build`"
    assert stale_dashboards({}) == list(files) and stale_dashboards(files) == []
    uids = set()
    for name, text in files.items():
        board = orjson.loads(text)
        uids.add(board["uid"])
        names = {v["name"] for v in board["templating"]["list"]}
        assert {"datasource", "database", "model"} <= names
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and len(ids) >= 3, name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
            if panel["type"] == "row":  # a row's title only: its panels follow it in the list
                assert grid == {**grid, "x": 0, "w": 24, "h": 1} and "targets" not in panel, name
                continue
            [target] = panel["targets"]
            assert target["datasource"] == {"type": PLUGIN, "uid": "${datasource}"} and target["rawSql"]
            used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}", target["rawSql"])) - {"__value"}
            assert used <= names, f"{name}: {panel['title']} uses undefined variables {used - names}"
    assert len(uids) == 7
    provisioning = ROOT / "dashboards" / "provisioning"
    assert "grafana-clickhouse-datasource" in (provisioning / "datasources" / "clickhouse.yaml").read_text()
    assert "/var/lib/grafana/dashboards/streamwatch" in (provisioning / "dashboards" / "streamwatch.yaml").read_text()


EXPECTED_PANELS = {
    "overview": [
        ("timeseries", "Traffic (requests per window)"),
        ("timeseries", "Share of features drifted"),
        ("timeseries", "Label coverage (labelled / requests)"),
        ("stat", "Firing alerts"),
        ("bargauge", "SLO error budget left"),
        ("table", "Alerts now"),
    ],
    "drift": [
        ("heatmap", "Drift heatmap: each feature's statistic / its threshold (1 or more is drift)"),
        ("timeseries", "PSI, Jensen-Shannon and Wasserstein of ${feature}"),
        ("timeseries", "Score drift (Wasserstein of the model's score)"),
        ("timeseries", "Missing, out-of-range, unseen and mistyped rates"),
        ("table", "Reference lineage"),
        ("row", "Embeddings"),
        ("timeseries", EMBEDDING_EUCLIDEAN),
        ("timeseries", EMBEDDING_COSINE),
        ("table", EMBEDDING_PROJECTIONS),
    ],
    "fairness": [
        ("timeseries", "Performance once labels arrive"),
        ("timeseries", "Per-slice selection rate, TPR, FPR and FNR"),
        ("table", "Per-slice rates with 95% intervals (latest window)"),
        ("timeseries", "Parity ratios, with the four-fifths line"),
        ("timeseries", "Parity differences"),
    ],
    "performance": [
        ("timeseries", "Estimated and realized accuracy"),
        ("timeseries", "Estimated and realized ROC AUC"),
        ("timeseries", "Estimated and realized precision"),
        ("timeseries", "Estimated and realized recall"),
        ("timeseries", "Estimated and realized F1"),
        ("table", "Estimated vs realized (latest windows with labels)"),
        ("timeseries", "Multiclass: accuracy, macro F1 and micro F1"),
        ("table", "Multiclass: per-class precision, recall, F1 and support (latest window)"),
        ("table", "Multiclass: confusion matrix, actual by predicted (counts over the time range)"),
    ],
    "slo": [
        ("timeseries", "Latency p50, p95, p99 by version and variant"),
        ("timeseries", "Error rate"),
        ("timeseries", "Error budget remaining (burn-down)"),
        ("timeseries", "Burn rates against their thresholds (page 14.4 and 6, ticket 3 and 1)"),
        ("timeseries", "Canary and shadow against production: p95 latency by variant"),
        ("timeseries", "Paired comparison (shadow or canary twins of production requests): agreement, p95 ratio"),
    ],
    "alerts": [
        ("state-timeline", "Alert transitions over time"),
        ("table", "Alerts"),
        ("table", "Retrain requests"),
    ],
    "workers": [
        ("timeseries", "Throughput (events per second)"),
        ("timeseries", "Consumer lag"),
        ("timeseries", "Dead letters per second"),
        ("timeseries", "Late events per second"),
        ("timeseries", "Insert latency (mean per batch)"),
        ("timeseries", "Notifications: sent, retried, given up"),
    ],
}
# The template variables each dashboard offers beyond the datasource, the database and the model.
EXPECTED_VARIABLES = {
    "overview": [],
    "drift": ["version", "variant", "feature"],
    "fairness": ["version", "variant", "slice"],
    "performance": ["version", "variant", "slice"],
    "slo": ["version", "variant"],
    "alerts": [],
    "workers": [],
}
GRAFANA_11_SCHEMA = 41  # the dashboard schema version Grafana 11.6 writes (and the SDK's 11.6 build emits)


@pytest.fixture(scope="module")
def sdk_runtime() -> cogruntime.Runtime:
    """The SDK's decoders: its own panel and query plugins, and the ClickHouse query model from the catalog."""
    cogplugins.register_default_plugins()
    cogruntime.register_dataquery_variant(variant_config())
    return cogruntime.Runtime()


def contained(small: Any, big: Any, where: str = "$") -> list[str]:
    """Where ``small`` has something ``big`` lacks or differs: dict keys may be added (the SDK's decoders fill in
    defaults), nothing may be dropped or changed."""
    if isinstance(small, dict):
        if not isinstance(big, dict):
            return [where]
        out = [f"{where}.{k}" for k in small if k not in big]
        return out + [w for k, v in small.items() if k in big for w in contained(v, big[k], f"{where}.{k}")]
    if isinstance(small, list):
        if not isinstance(big, list) or len(small) != len(big):
            return [where]
        return [w for i, (a, b) in enumerate(zip(small, big, strict=True)) for w in contained(a, b, f"{where}[{i}]")]
    return [] if small == big else [where]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_the_json_reads_back_through_the_sdk_without_losing_anything(
    name: str, sdk_runtime: cogruntime.Runtime
) -> None:
    """The SDK's typed models keep only the keys Grafana's schema has: whatever they drop is not Grafana's."""
    board = DASHBOARDS[name]()
    decoded = sdk_dashboard.Dashboard.from_json(board)
    again = json.loads(json.dumps(decoded, cls=JSONEncoder))
    assert contained(board, again) == []
    # and the decoded dashboard is typed all the way down, the ClickHouse queries included
    assert decoded.panels and decoded.templating.list_val
    for panel in decoded.panels:
        if isinstance(panel, sdk_dashboard.RowPanel):
            assert panel.title and not panel.collapsed and not panel.panels  # expanded: its panels follow it
            continue
        assert isinstance(panel, sdk_dashboard.Panel) and panel.targets
        [target] = panel.targets
        assert isinstance(target, ClickHouseQuery) and target.raw_sql and target.datasource is not None
        assert target.query_type == ("table" if target.format_val is ClickHouseFormat.TABLE else "timeseries")
        if panel.type_val == "heatmap":
            assert isinstance(panel.options, sdk_heatmap.Options) and panel.options.calculate is False
    assert json.loads(json.dumps(sdk_dashboard.Dashboard.from_json(again), cls=JSONEncoder)) == again


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_each_dashboard_has_its_panels_and_variables_as_grafana_11_expects(
    name: str, sdk_runtime: cogruntime.Runtime
) -> None:
    board = DASHBOARDS[name]()
    assert board["schemaVersion"] == GRAFANA_11_SCHEMA == sdk_dashboard.Dashboard().schema_version
    assert board["uid"] == f"streamwatch-{name}" and board["title"].startswith("streamwatch: ")
    assert [(p["type"], p["title"]) for p in board["panels"]] == EXPECTED_PANELS[name]
    assert [p["id"] for p in board["panels"]] == list(range(1, len(EXPECTED_PANELS[name]) + 1))
    variables = board["templating"]["list"]
    assert [v["name"] for v in variables] == ["datasource", "database", "model", *EXPECTED_VARIABLES[name]]
    assert variables[0] == {**variables[0], "type": "datasource", "query": PLUGIN}
    assert variables[1] == {**variables[1], "type": "constant", "hide": 2}
    for variable in variables[2:]:
        assert variable["type"] == ("custom" if variable["name"] == "variant" else "query")
        assert variable.get("includeAll") is (variable["name"] != "model")
        if variable["includeAll"]:
            assert variable["allValue"] == ALL and variable["current"] == {"text": "All", "value": "$__all"}
    known = set(sdk_runtime.panelcfg_variants)  # the panel plugins Grafana 11 ships, as the SDK knows them
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        mine = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not mine & cells, f"{name}: {panel['title']!r} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["type"] in known
        assert panel["datasource"] == {"type": PLUGIN, "uid": "${datasource}"}
        [target] = panel["targets"]
        assert target["datasource"] == panel["datasource"] and target["editorType"] == "sql"
        assert target["format"] in {f.value for f in ClickHouseFormat}


def test_the_optional_panels_exist_and_say_when_they_are_empty() -> None:
    panels = [p for name in DASHBOARDS for p in queried(DASHBOARDS[name]())]
    optional = [p for p in panels if p["title"] in OPTIONAL_PANELS]
    assert len(optional) == len(OPTIONAL_PANELS) >= 1
    assert all(p.get("description", "").startswith("Empty unless") for p in optional)


class FakeGrafana(http.server.ThreadingHTTPServer):
    """A local HTTP server answering Grafana's folder, datasource and dashboard API, recording every call."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _GrafanaHandler)
        self.calls: list[tuple[str, str, Any]] = []
        self.folders: set[str] = set()
        self.datasources: dict[str, Any] = {}
        self.dashboards: dict[str, Any] = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _GrafanaHandler(http.server.BaseHTTPRequestHandler):
    server: FakeGrafana

    def _answer(self, status: int, body: Any) -> None:
        raw = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = orjson.loads(self.rfile.read(length)) if length else None  # a JSON object, or no body
        grafana, path = self.server, self.path
        grafana.calls.append((method, path, body))
        if self.headers.get("Authorization") != "Bearer glsa_test_token":
            return self._answer(401, {"message": "Unauthorized"})
        if method == "GET" and path.startswith("/api/folders/"):
            found = path.rsplit("/", 1)[1] in grafana.folders
            return self._answer(200 if found else 404, {"uid": "streamwatch"} if found else {"message": "not found"})
        if method == "POST" and path == "/api/folders":
            grafana.folders.add(body["uid"])
            return self._answer(200, {"uid": body["uid"], "title": body["title"]})
        if path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            if method == "PUT":
                grafana.datasources[uid] = body
            found = uid in grafana.datasources
            return self._answer(200 if found else 404, grafana.datasources.get(uid, {"message": "not found"}))
        if method == "POST" and path == "/api/datasources":
            grafana.datasources[body["uid"]] = body
            return self._answer(200, {"datasource": body, "message": "Datasource added"})
        if method == "POST" and path == "/api/dashboards/db":
            grafana.dashboards[body["dashboard"]["uid"]] = body
            return self._answer(200, {"status": "success", "uid": body["dashboard"]["uid"]})
        return self._answer(404, {"message": f"unexpected {method} {path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def log_message(self, *args: Any) -> None:
        pass


def test_dashboards_push_creates_then_updates_the_folder_datasource_and_dashboards(tmp_path: Path) -> None:
    from tests.cli.test_main import run

    grafana = FakeGrafana()
    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    config = tmp_path / "streamwatch.yaml"
    config.write_text("clickhouse: {dsn: 'http://clickhouse:8123', database: mlmon, password: chpass-secret}\n")
    args = ("dashboards", "push", "--url", url, "--token", "glsa_test_token", "-c", str(config))
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert grafana.folders == {"streamwatch"} and set(grafana.datasources) == {"streamwatch-clickhouse"}
    datasource = grafana.datasources["streamwatch-clickhouse"]
    assert datasource["type"] == "grafana-clickhouse-datasource" and datasource["jsonData"]["host"] == "clickhouse"
    assert datasource["secureJsonData"] == {"password": "chpass-secret"} and "chpass-secret" not in first.stdout
    assert len(grafana.dashboards) == 7
    for pushed in grafana.dashboards.values():
        assert pushed["folderUid"] == "streamwatch" and pushed["overwrite"] is True
        [database] = [v for v in pushed["dashboard"]["templating"]["list"] if v["name"] == "database"]
        assert database["query"] == "mlmon"
    calls = len(grafana.calls)
    second = run(*args)  # idempotent: the folder is found, the datasource updated, the dashboards overwritten
    assert second.returncode == 0, second.stderr
    again = [(m, p) for m, p, _ in grafana.calls[calls:]]
    assert ("POST", "/api/folders") not in again and ("PUT", "/api/datasources/uid/streamwatch-clickhouse") in again
    assert len(grafana.dashboards) == 7 and len(grafana.folders) == 1
    refused = run("dashboards", "push", "--url", url, "--token", "wrong", "-c", str(config))
    assert (
        refused.returncode == 2
        and refused.stderr.startswith("streamwatch: error: Grafana at")
        and "401" in refused.stderr
    )
    grafana.shutdown()


def test_every_panels_threshold_steps_rise() -> None:
    # Grafana colours a value by the last step at or under it: steps out of order leave one colour for good (the
    # "SLO error budget left" gauge read red whatever the budget).
    checked = 0
    for name, board in DASHBOARDS.items():
        for panel in board()["panels"]:
            steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
            values = [step["value"] for step in steps[1:]]
            assert steps[:1] == [] or steps[0]["value"] is None, (name, panel["title"])
            assert values == sorted(values), (name, panel["title"], values)
            checked += bool(values)
    assert checked >= 5


def test_the_error_budget_gauge_is_red_when_overspent_and_green_when_plenty_is_left() -> None:
    [gauge] = [p for p in DASHBOARDS["overview"]()["panels"] if p["title"] == "SLO error budget left"]
    steps = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]

    def colour(value: float) -> str:
        return [s["color"] for s in steps if s["value"] is None or s["value"] <= value][-1]

    assert (colour(-0.1), colour(0.1), colour(0.9)) == ("red", "orange", "green")
