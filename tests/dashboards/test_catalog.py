"""The dashboards: every panel's SQL, macros and variables expanded, runs on ClickHouse loaded by the demo scenario
and returns rows; the JSON is structurally sound and the files in dashboards/ match the code."""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.adapters.prometheus import WorkerMetrics
from streamwatch.dashboards.catalog import DASHBOARDS, render_dashboards, stale_dashboards
from streamwatch.dashboards.model import ALL, PLUGIN
from streamwatch.demo.scenario import CANARY, MODEL, PRODUCTION
from tests.report.test_html import SCENARIO, load_demo

ROOT = Path(__file__).parent.parent.parent


def expand(sql: str, database: str, values: dict[str, str], start_ms: int, end_ms: int) -> str:
    """What the ClickHouse plugin sends: its macros, then Grafana's variables, replaced."""
    sql = re.sub(
        r"\$__timeFilter_ms\(([^)]+)\)",
        lambda m: (
            f"{m.group(1)} >= fromUnixTimestamp64Milli({start_ms}) AND "
            f"{m.group(1)} <= fromUnixTimestamp64Milli({end_ms})"
        ),
        sql,
    )
    for name, value in {"database": database, **values}.items():
        sql = sql.replace(f"${{{name}}}", value)
    assert "$" not in sql.replace("${__value.raw}", ""), sql
    return sql


@pytest.fixture(scope="module")
def loaded(chdb_client: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int, int]:
    from uuid import uuid4

    store = Store(chdb_client, f"dash_{uuid4().hex[:8]}")
    store.migrate(raw_ttl_days=0)
    load_demo(store, tmp_path_factory.mktemp("demo"))
    start = SCENARIO.start_ms
    metrics = WorkerMetrics()
    for i in range(3):  # what a worker records every 10 s: counters that grow
        metrics.events.labels("streamwatch.predictions").inc(1000)
        metrics.dead_letters.inc(2)
        metrics.late_events.inc(1)
        metrics.inserted(0.01)
        metrics.lag({("streamwatch.predictions", 0): 10 * i})
        metrics.delivered("hook")
        store.insert_worker_metrics("worker-1", start + 60_000 * (i + 1), metrics.samples())
    return store, start, start + SCENARIO.minutes * 60_000


CHOICES = [
    {"model": MODEL, "version": ALL, "variant": ALL, "feature": ALL, "slice": ALL},
    {"model": MODEL, "version": PRODUCTION, "variant": "production", "feature": "debt_ratio", "slice": "gender=F"},
]


@pytest.mark.parametrize("choice", CHOICES, ids=["all", "one"])
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_query_runs_and_returns_rows(loaded: tuple[Store, int, int], name: str, choice: dict) -> None:
    store, start, end = loaded
    board = DASHBOARDS[name]()
    for panel in board["panels"]:
        sql = expand(panel["targets"][0]["rawSql"], store.database, choice, start, end)
        rows = store.query(sql)
        # The demo has canaries but no shadow twins: the paired-comparison panel may only run.
        assert rows or panel.get("streamwatch_optional"), f"{name}: {panel['title']!r} returned no rows for {choice}"
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert store.query(expand(variable["query"], store.database, choice, start, end)), variable["name"]


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
    assert stale_dashboards(ROOT / "dashboards") == [], "run `streamwatch dashboards build`"
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
            [target] = panel["targets"]
            assert target["datasource"] == {"type": PLUGIN, "uid": "${datasource}"} and target["rawSql"]
            used = set(re.findall(r"\$\{(\w+)\}", target["rawSql"])) - {"__value"}
            assert used <= names, f"{name}: {panel['title']} uses undefined variables {used - names}"
    assert len(uids) == 6
    provisioning = ROOT / "dashboards" / "provisioning"
    assert "grafana-clickhouse-datasource" in (provisioning / "datasources" / "clickhouse.yaml").read_text()
    assert "/var/lib/grafana/dashboards/streamwatch" in (provisioning / "dashboards" / "streamwatch.yaml").read_text()


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
        body = orjson.loads(self.rfile.read(length)) if length else None
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
    assert len(grafana.dashboards) == 6
    for pushed in grafana.dashboards.values():
        assert pushed["folderUid"] == "streamwatch" and pushed["overwrite"] is True
        [database] = [v for v in pushed["dashboard"]["templating"]["list"] if v["name"] == "database"]
        assert database["query"] == "mlmon"
    calls = len(grafana.calls)
    second = run(*args)  # idempotent: the folder is found, the datasource updated, the dashboards overwritten
    assert second.returncode == 0, second.stderr
    again = [(m, p) for m, p, _ in grafana.calls[calls:]]
    assert ("POST", "/api/folders") not in again and ("PUT", "/api/datasources/uid/streamwatch-clickhouse") in again
    assert len(grafana.dashboards) == 6 and len(grafana.folders) == 1
    refused = run("dashboards", "push", "--url", url, "--token", "wrong", "-c", str(config))
    assert (
        refused.returncode == 2
        and refused.stderr.startswith("streamwatch: error: Grafana at")
        and "401" in refused.stderr
    )
    grafana.shutdown()
