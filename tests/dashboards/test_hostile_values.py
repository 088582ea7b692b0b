"""Producer-controlled names cannot get out of the dashboards' string literals.

Model names, versions, variants, features and slices come from whoever publishes events, and Grafana pastes the
chosen value into each panel's SQL. Every query of every generated dashboard is run here on ClickHouse (chdb) with
hostile values formatted exactly as Grafana formats them (tests/dashboards/grafana.py). The data: the demo scenario
(model ``credit-risk``), and a second database holding a copy of the demo's rows under each hostile model name
plus the demo's own rows altered (other versions, features, slices and values). A query for a hostile model there
must return exactly what the same query for ``credit-risk`` returns on the demo alone: the hostile model's rows,
nothing of any other model's, and no error. The last test shows the check catches the old ``'${model}'`` form and
Grafana's ``sqlstring`` format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest

from streamwatch.adapters.clickhouse import Store
from streamwatch.dashboards.catalog import DASHBOARDS
from streamwatch.demo.scenario import MODEL, PRODUCTION
from tests.dashboards.grafana import ALL_VARIABLE_VALUE, VARIABLE, expand, percentencode

HOSTILE = [
    "x' OR 1=1 --",
    "a\\",
    "a\\' OR 1=1 --",
    "'; DROP TABLE metrics; --",
    "模型-é",
    "",
    "x') OR ('1'='1",
    "a\\\\' OR 1=1 --",
    "%27 OR 1=1 --",
    'line\nbreak\t"quoted" `back` $__all ${model}',
]
PRODUCER_VARIABLES = ("model", "version", "variant", "feature", "slice")
# The tables a dashboard reads for one model; each copy of the demo gets its model name.
PER_MODEL = ("metrics", "alerts", "retrain_events", "profiles")
# Under ReplacingMergeTree FINAL rows with the same sorting key collapse: the alerts' key has no model, so each
# copy's fingerprints are made its own (no model-scoped panel shows a fingerprint).
COPY = {
    "metrics": "model",
    "alerts": "model, concat(fingerprint, '/', hex({name:String})) AS fingerprint",
    "retrain_events": "model",
    "profiles": "model",
}
# The demo's own rows in the mixed database: the same model, but nothing else alike, so a leak shows.
ALTERED = {
    "metrics": "concat('other-', model_version) AS model_version, if(feature = '', '', concat('other-', feature)) "
    "AS feature, if(segment_key = '', '', concat('other-', segment_key)) AS segment_key, value * 3 + 1 AS value",
    "alerts": "concat('other-', model_version) AS model_version, concat('other-', rule) AS rule, "
    "value * 3 + 1 AS value",
    "retrain_events": "concat('other-', model_version) AS model_version, concat('other-', reason) AS reason",
    "profiles": "concat('other-', model_version) AS model_version, concat('other-', data_uri) AS data_uri",
}


def queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard, panel or variable, SQL) of every query in the generated dashboards."""
    for name in sorted(DASHBOARDS):
        board = DASHBOARDS[name]()
        for panel in board["panels"]:
            for target in panel.get("targets", []):  # a row has none
                yield name, panel["title"], target["rawSql"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                yield name, f"variable {variable['name']}", variable["query"]


def uses_producer_values(sql: str) -> bool:
    return any((m.group(1) or m.group(2) or m.group(4)) in PRODUCER_VARIABLES for m in VARIABLE.finditer(sql))


@pytest.fixture(scope="module")
def mixed(loaded: tuple[Store, int, int]) -> Store:
    """The demo's rows altered, plus an exact copy of them under each hostile model name."""
    demo = loaded[0]
    store = Store(demo.client, f"hostile_{uuid4().hex[:8]}")
    store.migrate(raw_ttl_days=0)
    for table in PER_MODEL:
        target, source = f"{store.database}.{table}", f"{demo.database}.{table}"
        store.client.command(f"INSERT INTO {target} SELECT * REPLACE ({ALTERED[table]}) FROM {source}")
        for hostile in HOSTILE:  # the name travels as a query parameter, never inside SQL text
            store.client.query(
                f"INSERT INTO {target} SELECT * REPLACE ({{name:String}} AS {COPY[table]}) FROM {source}",
                parameters={"name": hostile},
            )
    names = {row[0] for row in store.query(f"SELECT DISTINCT model FROM {store.database}.metrics")}
    assert names == {MODEL, *HOSTILE}
    return store


Run = Callable[[Store, str, dict[str, str]], list[str]]


def runner(start: int, end: int) -> Run:
    def run(store: Store, sql: str, values: dict[str, str]) -> list[str]:
        """The rows of ``sql`` with ``values`` as Grafana would put them in, comparable whatever their order."""
        return sorted(repr(row) for row in store.query(expand(sql, store.database, values, start, end)))

    return run


def mismatches(run: Run, demo: Store, mixed: Store, sql: str, hostile: str) -> list[str]:
    """How the query for ``hostile`` on the mixed data differs from the query for the demo model on the demo."""
    found = []
    choices = [
        dict.fromkeys(PRODUCER_VARIABLES[1:], ALL_VARIABLE_VALUE),
        {"version": PRODUCTION, "variant": "production", "feature": "debt_ratio", "slice": "gender=F"},
        dict.fromkeys(PRODUCER_VARIABLES[1:], hostile),  # every variable hostile at once
    ]
    for choice in choices:
        try:
            got = run(mixed, sql, {"model": hostile, **choice})
            expected = run(demo, sql, {"model": MODEL, **choice})
        except Exception as exc:  # a value that breaks the SQL
            found.append(f"{choice}: {exc}")
            continue
        if got != expected:
            found.append(f"{choice}: {len(got)} rows, {len(expected)} expected")
    return found


def test_the_formats_are_grafanas() -> None:
    # The expectations of Grafana's own format tests (the second is its multi-value case, which Grafana joins as
    # {a,b} before encoding), then what leaves only RFC 3986's unreserved characters and %XX in the literal.
    assert percentencode("foo()bar BAZ") == "foo%28%29bar%20BAZ"
    assert percentencode("{foo()bar BAZ,test2}") == "%7Bfoo%28%29bar%20BAZ%2Ctest2%7D"
    assert percentencode("x' OR 1=1 --") == "x%27%20OR%201%3D1%20--"
    assert percentencode("a\\") == "a%5C" and percentencode("模型-é") == "%E6%A8%A1%E5%9E%8B-%C3%A9"
    assert percentencode("!*~._-") == "%21%2A~._-" and percentencode("__all") == "__all"
    for value in HOSTILE:
        assert re.fullmatch(r"(?:[A-Za-z0-9\-_.~]|%[0-9A-F]{2})*", percentencode(value))


def test_every_producer_value_is_percent_encoded_and_decoded_in_every_query() -> None:
    seen = 0
    for name, title, sql in queries():
        for use in VARIABLE.finditer(sql):
            variable = use.group(1) or use.group(2) or use.group(4)
            if variable in PRODUCER_VARIABLES:
                around = sql[use.start() - len("decodeURLComponent('") : use.end() + 2]
                assert around == f"decodeURLComponent('${{{variable}:percentencode}}')", (name, title, around)
                seen += 1
    assert seen > 50


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
def test_a_hostile_model_name_matches_its_own_rows_only_in_every_query(
    loaded: tuple[Store, int, int], mixed: Store, hostile: str
) -> None:
    demo, start, end = loaded
    run = runner(start, end)
    failures, with_rows = [], 0
    for name, title, sql in queries():
        if not uses_producer_values(sql):
            # The overview, worker and alert-count queries take no producer value: they still run here.
            run(mixed, sql, {"model": hostile})
            continue
        failures += [f"{name}: {title}: {m}" for m in mismatches(run, demo, mixed, sql, hostile)]
        with_rows += bool(
            run(mixed, sql, {"model": hostile, **dict.fromkeys(PRODUCER_VARIABLES[1:], ALL_VARIABLE_VALUE)})
        )
    assert failures == []
    assert with_rows >= 20  # the hostile model's panels are not empty: it matched its own rows
    # and nothing was dropped or changed on the way
    assert {r[0] for r in mixed.query(f"SELECT DISTINCT model FROM {mixed.database}.metrics")} == {MODEL, *HOSTILE}


def unsafe(form: str) -> Callable[[str], str]:
    """The dashboards' SQL with each producer value put in as ``form`` instead (``{name}`` in it)."""
    return lambda sql: re.sub(
        r"decodeURLComponent\('\$\{(\w+):percentencode\}'\)", lambda m: form.format(name=m.group(1)), sql
    )


@pytest.mark.parametrize(
    ("form", "caught"),
    [
        # The old form. Not "'; DROP TABLE metrics; --" in it: chdb runs the second statement (it tried to drop
        # default.metrics when this was written), and its client then answers later queries out of step.
        ("'${{{name}}}'", ["x' OR 1=1 --", "a\\", "x') OR ('1'='1"]),
        ("${{{name}:sqlstring}}", ["a\\", "a\\' OR 1=1 --"]),  # quotes doubled, but a backslash escapes one
    ],
    ids=["raw", "sqlstring"],
)
def test_the_check_catches_the_unsafe_forms(
    loaded: tuple[Store, int, int], mixed: Store, form: str, caught: list[str]
) -> None:
    demo, start, end = loaded
    run = runner(start, end)
    rewrite = unsafe(form)
    for hostile in caught:
        failures = [
            title
            for _, title, sql in queries()
            if uses_producer_values(sql) and mismatches(run, demo, mixed, rewrite(sql), hostile)
        ]
        assert failures, f"{form} with {hostile!r} went unnoticed"
    # and the check passes a plain name in either form, so what it catches is the value, not the form
    sql = next(sql for _, title, sql in queries() if title == "variable version")
    assert mismatches(run, demo, mixed, rewrite(sql), "模型-é") == []


def test_a_query_for_a_hostile_name_leaves_the_tables_alone(loaded: tuple[Store, int, int], mixed: Store) -> None:
    before = {t: mixed.count(t) for t in PER_MODEL}
    run = runner(loaded[1], loaded[2])
    for _, _, sql in queries():
        run(mixed, sql, dict.fromkeys(PRODUCER_VARIABLES, "'; DROP TABLE metrics; --"))
    assert {t: mixed.count(t) for t in PER_MODEL} == before
