"""The :class:`Store`: one database on one clickhouse-connect client (a server over HTTP(S), or embedded chdb).

Writes are idempotent: every table a retry can reach again is a
ReplacingMergeTree keyed on what identifies a row, so a retried batch replaces
itself. Read with ``FINAL``. What a row holds is :mod:`.rows`' business, the
SQL :mod:`.queries`', the schema :mod:`.migrations`'.
"""

from __future__ import annotations

import logging
import re
import struct
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

__all__ = ["TABLES", "RefusedRows", "SchemaMismatch", "StorageError", "Store", "connect"]

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
    """ClickHouse could not be reached or could not take a write now: worth retrying. One line, no secrets."""


class RefusedRows(StreamwatchError):
    """ClickHouse refused some rows of an insert for good; every other row of it is stored.

    ``rows`` are the positions of the refused rows in the insert, ``reason`` the error of one of them.
    Retrying would fail the same way: the caller dead-letters those rows or reports them.
    """

    def __init__(self, table: str, reason: str, rows: list[int]) -> None:
        super().__init__(f"ClickHouse refused {len(rows)} row(s) of {table} for good: {reason}")
        self.table, self.reason, self.rows = table, reason, rows


class SchemaMismatch(StreamwatchError):
    """The database's schema does not fit the writes (a table or column is missing): run ``streamwatch init``.

    Neither retrying nor splitting helps, and dropping the rows would lose them: the worker stops.
    """


#: Error codes after which an insert cannot succeed as it is, but its parts may: too many
#: partitions in one block (a batch spanning years of months), a value the column cannot hold,
#: a block too large for memory. The insert is split in halves until only the refused rows are left.
_SPLIT_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        36,  # BAD_ARGUMENTS
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        128,  # TOO_LARGE_ARRAY_SIZE
        131,  # TOO_LARGE_STRING_SIZE
        241,  # MEMORY_LIMIT_EXCEEDED: a smaller block may fit
    }
)
#: Error codes that mean the schema does not fit: a table, database or column is missing.
# (NO_SUCH_COLUMN_IN_TABLE, UNKNOWN_IDENTIFIER, UNKNOWN_TABLE, UNKNOWN_DATABASE)
_SCHEMA_CODES = frozenset({16, 47, 60, 81})
_CODE = re.compile(r"Code: (\d+)")


def _one_line(record: logging.LogRecord) -> bool:
    # clickhouse-connect logs a traceback for every value it cannot serialise; splitting an insert
    # meets the same value a dozen times, and RefusedRows already says which rows and why.
    record.exc_info = None
    return True


logging.getLogger("clickhouse_connect.driver.transform").addFilter(_one_line)


def _classify(exc: Exception) -> str:
    """``"split"``, ``"schema"`` or ``"transient"`` (anything unknown is retried: ClickHouse may come back)."""
    from clickhouse_connect.driver.exceptions import DataError, OperationalError

    if isinstance(exc, OperationalError):  # the connection, not the rows
        return "transient"
    if isinstance(exc, (DataError, ValueError, TypeError, OverflowError, struct.error)):
        return "split"  # the client could not serialise a value into its column
    text = str(exc)
    match = _CODE.search(text)
    code = int(match.group(1)) if match else -1
    if code in _SCHEMA_CODES:
        return "schema"
    if code in _SPLIT_CODES or (code == 252 and "partitions for single INSERT" in text):
        return "split"  # (252 is also TOO_MANY_PARTS, a server asking writers to slow down: transient)
    return "transient"


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

    def raw_features(self, table: str = "predictions", model: str | None = None) -> list[rows.RawFeatures]:
        """The feature object of every stored raw event of ``predictions`` or ``feature_events``, in time order."""
        if table not in queries.RAW_FEATURES:
            raise StorageError(f"no raw features in table {table!r}")
        return [rows.raw_features_from_row(r) for r in self.query(queries.RAW_FEATURES[table], {"model": model or ""})]

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
        """One columnar insert into ``table`` of this database; nothing when there are no rows.

        Raises :class:`StorageError` when worth retrying (the whole insert again: rows already
        written replace themselves), :class:`SchemaMismatch` when the schema does not fit, and
        :class:`RefusedRows` after storing every row but those ClickHouse refuses for good.
        """
        if not columns or len(columns[0]) == 0:
            return
        refused: list[int] = []
        reason = self._insert_parts(table, names, columns, 0, refused)
        if refused:
            raise RefusedRows(table, reason, refused)

    def _insert_parts(self, table: str, names: list[str], columns: list[Any], first: int, refused: list[int]) -> str:
        """Insert ``columns`` (rows ``first`` on of the whole); split in halves while ClickHouse refuses them."""
        try:
            self.client.insert(f"{self.database}.{table}", columns, column_names=names, column_oriented=True)
            return ""
        except Exception as exc:
            kind = _classify(exc)
            if kind == "transient":
                raise StorageError(f"ClickHouse insert into {table} failed: {_reason(exc)}") from None
            if kind == "schema":
                raise SchemaMismatch(
                    f"ClickHouse insert into {table} failed: {_reason(exc)} (run `streamwatch init`)"
                ) from None
            n = len(columns[0])
            if n == 1:
                refused.append(first)
                return _reason(exc)
        half = n // 2
        left = self._insert_parts(table, names, [c[:half] for c in columns], first, refused)
        right = self._insert_parts(table, names, [c[half:] for c in columns], first + half, refused)
        return left or right

    def _insert_dicts(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            names = list(rows[0])
            self.insert(table, names, [[row.get(name) for row in rows] for name in names])

    def _write(self, table: str, columns: Columns) -> None:
        self.insert(table, *columns)
