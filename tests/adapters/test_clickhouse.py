"""ClickHouse storage on the real engine (chdb): schema migrations, round trips, idempotent retries, TTL."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest

from streamwatch.adapters.clickhouse import DeadLetterRecord, Source, StorageError, Store, connect, migrations_directory
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
        ),
        encoder.label(model="credit", request_id="r1", label=1, timestamp=NOW_MS + 2),
    ]
    batch = decode_batch(raws)
    for _ in range(2):  # the same batch written twice, as after a crash
        store.insert_predictions(batch.predictions, [Source("p", 0, 7)])
        store.insert_labels(batch.labels, [Source("l", 0, 8)])
    assert store.count("predictions") == 1 and store.count("labels") == 1
    [(ts, features, segments)] = store.query(
        "SELECT toUnixTimestamp64Milli(timestamp), features, segments FROM {db}.predictions FINAL"
    )
    assert ts == NOW_MS + 1 and features == '{"income":1.5,"k\'ey":"v;"}' and segments == {"gender": "F"}


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
