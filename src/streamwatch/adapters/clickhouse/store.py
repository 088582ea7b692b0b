"""The :class:`Store`: one database on one clickhouse-connect client (a server over HTTP(S), or embedded chdb).

Writes are idempotent: every table a retry can reach again is a
ReplacingMergeTree keyed on what identifies a row, so a retried batch replaces
itself. Read with ``FINAL``. What a row holds is :mod:`.rows`' business, the
SQL :mod:`.queries`', the schema :mod:`.migrations`'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect

from streamwatch.adapters.clickhouse import migrations, queries, rows
from streamwatch.adapters.clickhouse.rows import Checkpoint, Columns, DeadLetterRecord, Source
from streamwatch.config.settings import ClickHouseSettings
from streamwatch.core.records import Finding, MetricRow
from streamwatch.errors import StreamwatchError
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["TABLES", "StorageError", "Store", "connect"]

_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
TABLES = (
    "predictions",
    "feature_events",
    "labels",
    "metrics",
    "findings",
    "profiles",
    "dead_letters",
    "alerts",
    "retrain_events",
    "worker_metrics",
    "partials",
    "checkpoints",
)


class StorageError(StreamwatchError):
    """ClickHouse refused or could not be reached; one line, no secrets."""


def connect(settings: ClickHouseSettings) -> Store:
    """A :class:`Store` on the configured server or embedded chdb path."""
    dsn = settings.dsn
    try:
        if dsn.startswith("chdb://"):
            path = dsn.removeprefix("chdb://")
            if path and path != "memory" and not path.startswith("/"):
                path = str(Path(path).resolve())
            if path and path != "memory":
                Path(path).mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(dsn=f"chdb://{path or 'memory'}")
        else:
            client = clickhouse_connect.get_client(
                dsn=dsn,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else "",
                secure=settings.secure or dsn.startswith("https://"),
                verify=settings.verify,
                ca_cert=str(settings.ca_cert) if settings.ca_cert else None,
                connect_timeout=settings.connect_timeout_s,
                send_receive_timeout=max(30.0, settings.connect_timeout_s),
            )
    except Exception as exc:
        raise StorageError(f"cannot connect to ClickHouse at {_redacted(dsn)}: {_reason(exc, settings)}") from None
    return Store(client, settings.database)


def _redacted(dsn: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", dsn)


def _reason(exc: Exception, settings: ClickHouseSettings | None = None) -> str:
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    if settings is not None and settings.password is not None:
        text = text.replace(settings.password.get_secret_value(), "***")
    return text


class Store:
    """Tables of one database, on one client (inject a client to share a chdb engine in tests)."""

    def __init__(self, client: Any, database: str = "streamwatch") -> None:
        if not _DATABASE.match(database):
            raise StorageError(f"database name {database!r} is not a plain identifier")
        self.client = client
        self.database = database

    # -- schema -----------------------------------------------------------------------------------

    def migrate(self, raw_ttl_days: int = 30, directory: Path | None = None) -> list[str]:
        """Apply the schema files not applied yet, in order; set the raw events' TTL. Idempotent."""
        return migrations.migrate(self, raw_ttl_days, directory)

    def applied_migrations(self) -> list[tuple[int, str]]:
        return [(int(v), n) for v, n in self.query(queries.APPLIED_MIGRATIONS)]

    # -- raw events and dead letters ----------------------------------------------------------------

    def insert_predictions(self, events: Sequence[Any], sources: Sequence[Source]) -> None:
        self._write("predictions", rows.prediction_columns(events, sources))

    def insert_feature_events(self, events: Sequence[Any], sources: Sequence[Source]) -> None:
        self._write("feature_events", rows.feature_event_columns(events, sources))

    def insert_labels(self, events: Sequence[Any], sources: Sequence[Source]) -> None:
        self._write("labels", rows.label_columns(events, sources))

    def insert_dead_letters(self, records: Sequence[DeadLetterRecord]) -> None:
        self._write("dead_letters", rows.dead_letter_columns(records))

    def dead_letters(self) -> list[DeadLetterRecord]:
        return [rows.dead_letter_from_row(r) for r in self.query(queries.DEAD_LETTERS, formats={"raw": "bytes"})]

    # -- results ------------------------------------------------------------------------------------

    def insert_metrics(self, metric_rows: Sequence[MetricRow], version: int) -> None:
        self._write("metrics", rows.metric_columns(metric_rows, version))

    def metrics(self, model: str | None = None) -> list[MetricRow]:
        """Every metric row (its latest version), ordered."""
        return [rows.metric_from_row(r) for r in self.query(queries.METRICS, {"model": model or ""})]

    def insert_findings(self, findings: Sequence[Finding], version: int) -> None:
        self._write("findings", rows.finding_columns(findings, version))

    def findings(self, model: str | None = None) -> list[Finding]:
        return [rows.finding_from_row(r) for r in self.query(queries.FINDINGS, {"model": model or ""})]

    def insert_profile(self, profile: ReferenceProfile) -> None:
        self._write("profiles", rows.profile_columns(profile))

    def insert_worker_metrics(
        self, worker: str, at_ms: int, samples: Sequence[tuple[str, dict[str, str], float]]
    ) -> None:
        if samples:
            self._write("worker_metrics", rows.worker_metric_columns(worker, at_ms, samples))

    def insert_alerts(self, alert_rows: Sequence[dict[str, Any]]) -> None:
        self._insert_dicts("alerts", alert_rows)

    def insert_retrain_events(self, retrain_rows: Sequence[dict[str, Any]]) -> None:
        self._insert_dicts("retrain_events", retrain_rows)

    # -- worker state -------------------------------------------------------------------------------

    def insert_partials(self, group: str, partials: Sequence[tuple[int, int, str, Any, int, bytes]]) -> None:
        """Partials as (partition, version, kind, key, window start, bytes), in one insert."""
        self._write("partials", rows.partial_columns(group, partials))

    def partials_since(
        self, group: str, partition: int, version: int
    ) -> list[tuple[str, tuple[Any, ...], int, int, bytes]]:
        """A partition's partials written with a version above ``version``: (kind, key, start, version, bytes)."""
        found = self.query(
            queries.PARTIALS_SINCE,
            {"group": group, "partition": partition, "version": version},
            formats={"aggregate": "bytes"},
        )
        return [rows.partial_from_row(r) for r in found]

    def save_checkpoint(
        self, name: str, partition: int, version: int, watermark: int, offsets: dict[str, int], state: bytes
    ) -> None:
        self._write("checkpoints", rows.checkpoint_columns(name, partition, version, watermark, offsets, state))

    def load_checkpoint(self, name: str, partition: int) -> Checkpoint | None:
        found = self.query(queries.CHECKPOINT, {"name": name, "partition": partition}, formats={"state": "bytes"})
        return rows.checkpoint_from_row(found[0]) if found else None

    def checkpoint_watermarks(self, name: str) -> dict[int, int]:
        """The watermark of every partition's latest checkpoint under ``name``."""
        return {int(p): int(w) for p, w in self.query(queries.CHECKPOINT_WATERMARKS, {"name": name})}

    # -- plumbing -----------------------------------------------------------------------------------

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise StorageError(f"unknown table {table!r}")
        return int(self.query(queries.count(table))[0][0])

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, formats: dict[str, str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows of ``sql``, where ``{db}`` is this store's database and values are ``{name:Type}`` parameters."""
        try:
            result = self.client.query(
                sql.replace("{db}", self.database), parameters=parameters or {}, column_formats=formats
            )
        except Exception as exc:
            raise StorageError(f"ClickHouse query failed: {_reason(exc)}") from None
        return [tuple(row) for row in result.result_rows]

    def command(self, sql: str) -> None:
        """Run one statement (DDL); ``{db}`` is not substituted."""
        try:
            self.client.command(sql)
        except Exception as exc:
            raise StorageError(f"ClickHouse command failed: {_reason(exc)}") from None

    def insert(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        """One columnar insert into ``table`` of this database; nothing when there are no rows."""
        if not columns or not columns[0]:
            return
        try:
            self.client.insert(f"{self.database}.{table}", columns, column_names=names, column_oriented=True)
        except Exception as exc:
            raise StorageError(f"ClickHouse insert into {table} failed: {_reason(exc)}") from None

    def _insert_dicts(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            names = list(rows[0])
            self.insert(table, names, [[row.get(name) for row in rows] for name in names])

    def _write(self, table: str, columns: Columns) -> None:
        self.insert(table, *columns)
