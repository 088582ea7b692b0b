"""The drift dashboard's "Embeddings" row on rows written for it: each embedding's Euclidean and cosine distances
with their thresholds as series, and its projections' drift in the latest window, each panel's SQL run on
ClickHouse as Grafana would send it."""

from __future__ import annotations

from typing import Any

import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.dashboards.catalog import DASHBOARDS, EMBEDDING_COSINE, EMBEDDING_EUCLIDEAN, EMBEDDING_PROJECTIONS
from streamwatch.demo.scenario import CANARY, EMBEDDING, MODEL, PRODUCTION
from tests.dashboards.grafana import ALL_VARIABLE_VALUE, expand
from tests.metric_rows import MINUTE, T0, at, points, row

HOSTILE = "<b>x'\" OR 1=1 --</b>#pc"  # an embedding name a producer chose, "#pc" in it
EVERYTHING = {"model": "m", "version": ALL_VARIABLE_VALUE, "variant": ALL_VARIABLE_VALUE}
EVERYTHING |= {"feature": ALL_VARIABLE_VALUE}


ROWS = [
    # the embedding "text": its mean moves away in minute 1 (Euclidean over its threshold, cosine not yet)
    row("embedding_euclidean", 0.4, 0, feature="text", threshold=1.0),
    row("embedding_euclidean", 1.5, 1, feature="text", threshold=1.2),
    row("embedding_cosine", 0.01, 0, feature="text", threshold=0.05),
    row("embedding_cosine", 0.03, 1, feature="text", threshold=0.05),
    row("embedding_wrong_length", 4, 1, feature="text"),  # no threshold: not in the distance panels
    # its projections: pc1 drifted in the latest window, pc2 drifted earlier only
    row("wasserstein", 0.1, 0, feature="text#pc1", threshold=0.2),
    row("wasserstein", 0.5, 1, feature="text#pc1", threshold=0.2),
    row("psi", 0.9, 1, feature="text#pc1", threshold=0.2),  # not the deciding statistic
    row("js", 0.9, 1, feature="text#pc1", threshold=0.2),  # nor this one (a categorical feature's)
    row("wasserstein", 0.6, 0, feature="text#pc2", threshold=0.25),
    row("wasserstein", 0.2, 1, feature="text#pc2", threshold=0.25),
    # a second embedding with a producer's name, on a canary of another version
    row("embedding_euclidean", 2.0, 0, feature=HOSTILE, threshold=3.0, model_version="2.0", variant="canary"),
    row("wasserstein", 0.1, 0, feature=f"{HOSTILE}#pc1", threshold=0.2, model_version="2.0", variant="canary"),
    # an ordinary feature, a slice's row and another model's: none is an embedding of m's overall rows
    row("wasserstein", 0.7, 1, feature="debt_ratio", threshold=0.2),
    row("embedding_euclidean", 9.0, 1, feature="text", threshold=1.0, segment=(("gender", "F"),)),
    row("embedding_euclidean", 9.0, 1, feature="text", threshold=1.0, model="other"),
    row("wasserstein", 9.0, 1, feature="text#pc1", threshold=0.2, model="other"),
]


@pytest.fixture
def panels(store: Store) -> dict[str, str]:
    """Title -> SQL of the drift dashboard's panels, on a store holding :data:`ROWS`."""
    store.insert_metrics(ROWS, version=1)
    return {p["title"]: p["targets"][0]["rawSql"] for p in DASHBOARDS["drift"]()["panels"] if p["type"] != "row"}


def run(store: Store, sql: str, **choice: str) -> list[tuple[Any, ...]]:
    return store.query(expand(sql, store.database, EVERYTHING | choice, T0, T0 + 10 * MINUTE))


def test_the_drift_dashboard_has_an_embeddings_row_whose_panels_name_the_embedding_metrics() -> None:
    board = DASHBOARDS["drift"]()
    titles = [(p["type"], p["title"]) for p in board["panels"]]
    row_at = titles.index(("row", "Embeddings"))
    assert titles[row_at + 1 :] == [
        ("timeseries", EMBEDDING_EUCLIDEAN),
        ("timeseries", EMBEDDING_COSINE),
        ("table", EMBEDDING_PROJECTIONS),
    ]  # the row's panels, the last of the dashboard: Grafana puts them in the row
    row_panel = board["panels"][row_at]
    assert row_panel["collapsed"] is False and row_panel["gridPos"]["y"] > max(
        p["gridPos"]["y"] for p in board["panels"][:row_at]
    )
    sql = {p["title"]: p["targets"][0]["rawSql"] for p in board["panels"][row_at + 1 :]}
    assert "metric = 'embedding_euclidean'" in sql[EMBEDDING_EUCLIDEAN] and "threshold" in sql[EMBEDDING_EUCLIDEAN]
    assert "metric = 'embedding_cosine'" in sql[EMBEDDING_COSINE] and "threshold" in sql[EMBEDDING_COSINE]
    assert (
        "feature LIKE '%#pc%'" in sql[EMBEDDING_PROJECTIONS] and "metric = 'wasserstein'" in sql[EMBEDDING_PROJECTIONS]
    )
    for title in sql:
        assert "decodeURLComponent('${model:percentencode}')" in sql[title]
    for distance in (EMBEDDING_EUCLIDEAN, EMBEDDING_COSINE):
        [panel] = [p for p in board["panels"] if p["title"] == distance]
        [override] = panel["fieldConfig"]["overrides"]  # the thresholds are dashed lines
        assert override["matcher"] == {"id": "byRegexp", "options": ".* threshold .*"}


def test_each_embedding_distance_and_its_threshold_are_series(store: Store, panels: dict[str, str]) -> None:
    assert points(run(store, panels[EMBEDDING_EUCLIDEAN])) == {
        (0, "text distance 1.0 production", 0.4),
        (0, "text threshold 1.0 production", 1.0),
        (1, "text distance 1.0 production", 1.5),
        (1, "text threshold 1.0 production", 1.2),
        (0, f"{HOSTILE} distance 2.0 canary", 2.0),
        (0, f"{HOSTILE} threshold 2.0 canary", 3.0),
    }
    assert points(run(store, panels[EMBEDDING_COSINE])) == {
        (0, "text distance 1.0 production", 0.01),
        (0, "text threshold 1.0 production", 0.05),
        (1, "text distance 1.0 production", 0.03),
        (1, "text threshold 1.0 production", 0.05),
    }
    # one version and variant; the feature variable (an ordinary feature chosen) does not hide the embeddings
    one = run(store, panels[EMBEDDING_EUCLIDEAN], version="2.0", variant="canary", feature="debt_ratio")
    assert {s for _, s, _ in points(one)} == {f"{HOSTILE} distance 2.0 canary", f"{HOSTILE} threshold 2.0 canary"}
    assert run(store, panels[EMBEDDING_COSINE], model="nope") == []


def test_the_projection_table_shows_each_component_in_its_latest_window_against_its_threshold(
    store: Store, panels: dict[str, str]
) -> None:
    found = [(*r[:5], round(r[5], 6), r[6], round(r[7], 6), r[8]) for r in run(store, panels[EMBEDDING_PROJECTIONS])]
    assert found == [
        ("1.0", "production", "text", "text#pc1", at(1), 0.5, 0.2, 2.5, "yes"),
        ("1.0", "production", "text", "text#pc2", at(1), 0.2, 0.25, 0.8, "no"),
        ("2.0", "canary", HOSTILE, f"{HOSTILE}#pc1", at(0), 0.1, 0.2, 0.5, "no"),
    ]  # the ordinary feature, the PSI row and the other model's rows are not there


def test_the_demo_fills_the_embeddings_row(loaded: tuple[Store, int, int]) -> None:
    """The demo's model embeds its applications' free text (``purpose``), which drifts with ``debt_ratio``."""
    store, start, end = loaded
    choice = {"model": MODEL} | dict.fromkeys(("version", "variant", "feature"), ALL_VARIABLE_VALUE)
    sql = {p["title"]: p["targets"][0]["rawSql"] for p in DASHBOARDS["drift"]()["panels"] if p["type"] != "row"}

    def rows(title: str) -> list[tuple[Any, ...]]:
        return store.query(expand(sql[title], store.database, choice, start, end))

    versions = (f"{PRODUCTION} production", f"{CANARY} canary")
    for title in (EMBEDDING_EUCLIDEAN, EMBEDDING_COSINE):
        series = {s for _, s, _ in rows(title)}
        assert series == {f"{EMBEDDING} {kind} {v}" for kind in ("distance", "threshold") for v in versions}
    # the embedding's principal components, each with its latest window's Wasserstein distance and threshold
    table = rows(EMBEDDING_PROJECTIONS)
    assert {r[:3] for r in table} == {(PRODUCTION, "production", EMBEDDING), (CANARY, "canary", EMBEDDING)}
    assert {r[3] for r in table} == {f"{EMBEDDING}#pc{i}" for i in range(1, 9)} and len(table) == 16
    assert all(r[6] > 0 and r[8] in {"yes", "no"} for r in table)
