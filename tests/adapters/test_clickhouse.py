"""ClickHouse storage on the real engine (chdb): schema migrations, round trips, idempotent retries, TTL."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamwatch.adapters.clickhouse import (
    DeadLetterRecord,
    Source,
    StorageError,
    Store,
    connect,
    migrations,
    migrations_directory,
)
from streamwatch.clock import now_ms
from streamwatch.config.settings import ClickHouseSettings
from streamwatch.contract.decode import decode_batch
from streamwatch.contract.encode import Encoder
from streamwatch.core.records import Finding, MetricRow

NOW_MS = now_ms()


def test_migrations_apply_once_in_order_and_a_changed_file_is_refused(store: Store, tmp_path: Path) -> None:
    applied = [name for _, name in store.applied_migrations()]
    assert applied == sorted(p.name for p in migrations_directory().glob("*.sql")) and len(applied) >= 2
    assert store.migrate(raw_ttl_days=0) == []  # idempotent
    copy = tmp_path / "sql"
    shutil.copytree(migrations_directory(), copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(StorageError, match=f"schema file {first.name} changed"):
        store.migrate(raw_ttl_days=0, directory=copy)


def rows() -> list[MetricRow]:
    return [
        MetricRow(
            "credit", "3", "production", NOW_MS, NOW_MS + 60_000, "psi", 0.25, "income", (), 0.2, reference="f" * 64
        ),
        MetricRow(
            "credit",
            "3",
            "production",
            NOW_MS,
            NOW_MS + 60_000,
            "selection_rate",
            math.nan,
            None,
            (("gender", "F"), ("region", "it's; DROP")),
            None,
            lower=0.1,
            upper=0.3,
        ),
        MetricRow("credit", "3", "canary", NOW_MS - 3_540_000, NOW_MS + 60_000, "js", 0.1, "x'\";--", (), 0.1, "1h"),
    ]


def test_metric_rows_round_trip_and_a_retry_replaces_instead_of_adding(store: Store) -> None:
    store.insert_metrics(rows(), version=1)
    store.insert_metrics(rows(), version=1)  # a retried batch
    back = store.metrics()
    assert len(back) == 3 and store.count("metrics") == 3
    by_metric = {r.metric: r for r in back}
    assert by_metric["psi"] == rows()[0]
    nan_row = by_metric["selection_rate"]
    assert math.isnan(nan_row.value) and nan_row.segment == rows()[1].segment and nan_row.lower == 0.1
    assert by_metric["js"] == rows()[2]
    newer = MetricRow(
        "credit", "3", "production", NOW_MS, NOW_MS + 60_000, "psi", 0.5, "income", (), 0.2, reference="f" * 64
    )
    store.insert_metrics([newer], version=2)
    assert {r.metric: r for r in store.metrics()}["psi"].value == 0.5 and store.count("metrics") == 3


def test_findings_round_trip_with_their_evidence(store: Store) -> None:
    finding = Finding(
        "drift",
        "warning",
        "credit",
        "3",
        "production",
        NOW_MS,
        NOW_MS + 60_000,
        "wasserstein",
        0.3,
        0.1,
        "income",
        (("gender", "F"),),
        {"example_request_ids": ["r1", "r2"], "psi": 0.4},
        "f" * 64,
    )
    store.insert_findings([finding, finding], version=1)
    assert store.findings("credit") == [finding]


def test_raw_events_round_trip_to_the_millisecond_and_retries_are_not_double_counted(store: Store) -> None:
    encoder = Encoder(clock_ms=now_ms)
    raws = [
        encoder.prediction(
            "credit",
            "3",
            "r1",
            12.5,
            {"income": 1.5, "k'ey": "v;"},
            1,
            0.7,
            "production",
            "ok",
            None,
            {"gender": "F"},
            None,
            NOW_MS + 1,
            None,
            {"text": [0.25, -1.5, 3.0]},
        ),
        encoder.label(model="credit", request_id="r1", label=1, timestamp=NOW_MS + 2),
    ]
    batch = decode_batch(raws)
    for _ in range(2):  # the same batch written twice, as after a crash
        store.insert_predictions(batch.predictions, [Source("p", 0, 7)])
        store.insert_labels(batch.labels, [Source("l", 0, 8)])
    assert store.count("predictions") == 1 and store.count("labels") == 1
    [(ts, features, segments)] = store.query(
        "SELECT toUnixTimestamp64Milli(timestamp), feature_map, segments FROM {db}.predictions FINAL"
    )
    assert ts == NOW_MS + 1 and features == {"income": "1.5", "k'ey": '"v;"'} and segments == {"gender": "F"}
    # The embedding is kept too (at float32, the precision producers send): nothing the worker read is lost.
    assert store.query("SELECT embeddings FROM {db}.predictions FINAL") == [({"text": [0.25, -1.5, 3.0]},)]
    [back] = store.raw_features("predictions")
    assert back.features == {"income": 1.5, "k'ey": "v;"} and back.request_id == "r1"


#: Feature objects as hostile as the contract lets through: nulls, bools, strings that look like other
#: JSON values, quotes, non-ASCII names and values, control characters in values, big integers.
ODD_FEATURES: list[dict[str, Any]] = [
    {"income": 1.5, "age": 42, "employed": True, "retired": False, "city": None},
    {"quote'\"": 'it\'s "quoted"; DROP', "ü名": "Zürich ✓ 東京", "nul": "a\u0000b\n\t", "empty": ""},
    {"looks_true": "true", "looks_null": "null", "looks_number": "3", "looks_object": '{"a": 1}'},
    {"big": 2**63 + 5, "negative": -(2**63), "tiny": 1.5e-300, "huge": 1e300, "zero": -0.0, "whole": 2.0},
    {"one": 1},
]


def odd_batch(encoder: Encoder) -> list[bytes]:
    raws = []
    for n, features in enumerate(ODD_FEATURES):
        raws.append(
            encoder.prediction(
                "credit",
                "3",
                f"r{n}",
                1.0 + n,
                features,
                n % 2 == 0,
                None,
                "production",
                "ok",
                None,
                None,
                None,
                NOW_MS + n,
                None,
            )
        )
        raws.append(encoder.features(model="credit", features=features, timestamp=NOW_MS + n))
    return raws


def test_the_columnar_features_round_trip_every_kind_of_value(store: Store) -> None:
    batch = decode_batch(odd_batch(Encoder(clock_ms=now_ms)))
    assert not batch.dead_letters and len(batch.predictions) == len(batch.features) == len(ODD_FEATURES)
    for _ in range(2):  # a retry replaces
        store.insert_predictions(batch.predictions, [Source("p", 0, n) for n in range(len(batch.predictions))])
        store.insert_feature_events(batch.features, [Source("f", 0, n) for n in range(len(batch.features))])
    for table in ("predictions", "feature_events"):
        back = store.raw_features(table, model="credit")
        assert [r.features for r in back] == ODD_FEATURES  # equal as Python values (2.0 == 2, -0.0 == 0)
        for got, sent in zip(back, ODD_FEATURES, strict=True):
            for name, value in sent.items():  # bools stay bools, None None, strings strings, integers exact
                assert type(got.features[name]) in ((int, float) if type(value) is float else (type(value),))
    assert store.raw_features("feature_events")[0].request_id == ""
    # Nothing of the feature object is stored as JSON text any more, and one feature reads as a column.
    assert store.query("SELECT countIf(features != '') FROM {db}.predictions") == [(0,)]
    assert store.query(
        "SELECT toFloat64OrNull(feature_map['income']), JSONExtractString(feature_map['ü名']) "
        "FROM {db}.predictions FINAL WHERE request_id IN ('r0', 'r1') ORDER BY request_id"
    ) == [(1.5, ""), (None, "Zürich ✓ 東京")]
    assert store.raw_features(model="other") == []
    with pytest.raises(StorageError, match="no raw features"):
        store.raw_features("labels")


def test_the_raw_tables_use_the_chosen_codecs(store: Store) -> None:
    codecs = dict(
        store.query(
            "SELECT name, compression_codec FROM system.columns WHERE database = {d:String} AND table = 'predictions'",
            {"d": store.database},
        )
    )
    assert codecs["feature_map"] == codecs["embeddings"] == "CODEC(ZSTD(1))"
    assert codecs["timestamp"] == "CODEC(Delta(8), ZSTD(1))"
    comments = dict(
        store.query(
            "SELECT name, comment FROM system.columns WHERE database = {d:String} AND table = 'labels'",
            {"d": store.database},
        )
    )
    assert comments["label"] == "the label as JSON"  # a codec change keeps what the column says


OLD_COLUMNS = {
    "predictions": [
        "event_id",
        "request_id",
        "timestamp",
        "model",
        "model_version",
        "variant",
        "latency_ms",
        "status",
        "error",
        "prediction",
        "score",
        "features",
        "segments",
        "metadata",
        "topic",
        "partition",
        "offset",
    ],
    "feature_events": [
        "event_id",
        "request_id",
        "timestamp",
        "model",
        "model_version",
        "features",
        "topic",
        "partition",
        "offset",
    ],
}


def old_rows(table: str, n: int) -> list[list[Any]]:
    """``n`` rows as writers before schema version 3 stored them: the feature object as JSON text."""
    rows = []
    for i in range(n):
        features = orjson.dumps(ODD_FEATURES[i % len(ODD_FEATURES)]).decode()
        if table == "predictions":
            rows.append(
                [
                    f"e{i}",
                    f"r{i}",
                    NOW_MS + i,
                    "credit",
                    "3",
                    "production",
                    1.0,
                    "ok",
                    None,
                    "1",
                    0.5,
                    features,
                    {"gender": "F"},
                    {},
                    "p",
                    0,
                    i,
                ]
            )
        else:
            rows.append([f"e{i}", "", NOW_MS + i, "credit", "3", features, "f", 0, i])
    return [list(column) for column in zip(*rows, strict=True)]


def test_the_migration_to_columnar_features_keeps_every_stored_row(chdb_client: Any, tmp_path: Path) -> None:
    from uuid import uuid4

    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(migrations_directory().glob("*.sql")):
        if int(path.name[:4]) < 3:
            shutil.copy(path, before)
    store = Store(chdb_client, database=f"t_{uuid4().hex[:12]}")
    assert store.migrate(raw_ttl_days=0, directory=before) == ["0001_init.sql", "0002_worker_state.sql"]
    for table, names in OLD_COLUMNS.items():
        store.insert(table, names, old_rows(table, 12))
    assert "0003_columnar_raw_events.sql" in store.migrate(raw_ttl_days=0)
    expected = [ODD_FEATURES[i % len(ODD_FEATURES)] for i in range(12)]
    for table in OLD_COLUMNS:
        assert [r.features for r in store.raw_features(table)] == expected
        assert store.query(f"SELECT countIf(features != ''), count() FROM {{db}}.{table}") == [(0, 12)]
    # A statement of the file run again (as after a failure part way) changes nothing.
    text = (migrations_directory() / "0003_columnar_raw_events.sql").read_text()
    for statement in migrations.statements(text):
        store.command(statement.replace("{database}", store.database))
    assert [r.features for r in store.raw_features("predictions")] == expected
    # A worker from before version 3 (a rolling upgrade) still writes the JSON text: it is split as well.
    late = old_rows("predictions", 13)
    store.insert("predictions", OLD_COLUMNS["predictions"], [c[12:] for c in late])
    assert store.raw_features("predictions")[-1].features == ODD_FEATURES[12 % len(ODD_FEATURES)]


def test_dead_letters_keep_their_exact_bytes(store: Store) -> None:
    letters = [
        DeadLetterRecord(Source("t", 2, n), f"reason {n}", raw, NOW_MS)
        for n, raw in enumerate([b"\xff\xfe{", b"not json", b"\x00" * 10])
    ]
    store.insert_dead_letters(letters + letters)
    assert store.dead_letters() == letters


@pytest.mark.parametrize(("ttl_days", "kept"), [(30, 1), (0, 2)])
def test_raw_events_older_than_the_ttl_go(store: Store, ttl_days: int, kept: int) -> None:
    store.migrate(raw_ttl_days=ttl_days)
    encoder = Encoder(clock_ms=now_ms)
    old, recent = NOW_MS - 400 * 86_400_000, NOW_MS
    batch = decode_batch([encoder.label(model="m", request_id=f"r{t}", label=1, timestamp=t) for t in (old, recent)])
    store.insert_labels(batch.labels, [Source("l", 0, 0), Source("l", 0, 1)])
    store.query("OPTIMIZE TABLE {db}.labels FINAL")
    assert store.count("labels") == kept


def test_a_hostile_database_name_is_refused_before_any_sql() -> None:
    with pytest.raises(StorageError, match="not a plain identifier"):
        Store(client=None, database="x; DROP TABLE y")


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    settings = ClickHouseSettings(dsn="http://127.0.0.1:9/", password="hunter2-secret", connect_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        store = connect(settings)
        store.migrate()
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)
    assert time.monotonic() - started < 15


def test_the_confusion_matrix_view_gives_each_cell_its_columns_and_the_latest_report_wins(store: Store) -> None:
    def cell(actual: str, predicted: str, count: float) -> MetricRow:
        return MetricRow(
            "zoo",
            "1",
            "production",
            NOW_MS,
            NOW_MS + 60_000,
            "confusion",
            count,
            json.dumps([actual, predicted]),
            (("gender", "F"),),
        )

    store.insert_metrics([cell("cat", "dog", 3), cell('a "quoted", label', "cat", 1)], version=1)
    store.insert_metrics([cell("cat", "dog", 5)], version=2)  # more labels came: the window reported again
    found = store.query(
        "SELECT actual, predicted, count, segment_key FROM {db}.confusion_matrix WHERE model = 'zoo' "
        "ORDER BY actual, predicted"
    )
    assert [tuple(r) for r in found] == [('a "quoted", label', "cat", 1, "gender=F"), ("cat", "dog", 5, "gender=F")]


def test_an_install_without_its_schema_files_says_so_instead_of_applying_nothing(
    chdb_client: Any, tmp_path: Path
) -> None:
    from uuid import uuid4

    store = Store(chdb_client, database=f"t_{uuid4().hex[:12]}")
    (tmp_path / "README.md").write_text("not a schema file")
    with pytest.raises(StorageError, match="no schema files in .*incomplete"):
        store.migrate(raw_ttl_days=0, directory=tmp_path)
