"""ClickHouse storage: the only module that imports ``clickhouse_connect``.

The same SQL runs on a ClickHouse server over HTTP(S) and on chdb, the
embedded engine (``dsn="chdb://..."``), both through clickhouse-connect's
client. The schema is versioned SQL in ``schemas/clickhouse/``, applied in
order by :meth:`Store.migrate` and recorded in ``schema_migrations``.

Writes are columnar (one list per column, times as epoch milliseconds) and
idempotent: every table a retry can reach again is a ReplacingMergeTree keyed
on what identifies a row, so a retried batch replaces itself. Read with
``FINAL``. Values never enter SQL text: they go as insert columns or query
parameters; only the checked database name and fixed table names are formatted in.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import clickhouse_connect
import orjson

from streamwatch.config.settings import ClickHouseSettings
from streamwatch.core.records import Finding, MetricRow
from streamwatch.errors import StreamwatchError
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["Checkpoint", "DeadLetterRecord", "Source", "StorageError", "Store", "connect", "migrations_directory"]

_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
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
_RAW_TABLES = ("predictions", "feature_events", "labels")


class StorageError(StreamwatchError):
    """ClickHouse refused or could not be reached; one line, no secrets."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw event or dead letter came from (a replayed file: its path, partition 0, line number)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    source: Source
    reason: str
    raw: bytes
    received_ms: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    version: int
    watermark: int
    offsets: dict[str, int]
    state: bytes


def migrations_directory() -> Path:
    """The schema files: packaged in a wheel, or the repository's ``schemas/clickhouse``."""
    packaged = resources.files("streamwatch") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "schemas" / "clickhouse"


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


def _segment_key(segment: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{name}={value}" for name, value in segment)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()


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
        db = self.database
        self._command(f"CREATE DATABASE IF NOT EXISTS {db}")
        self._command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, checksum String, "
            "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
        )
        applied = {
            version: (name, checksum)
            for version, name, checksum in self.query("SELECT version, name, checksum FROM {db}.schema_migrations")
        }
        done = []
        for path in sorted((directory or migrations_directory()).glob("*.sql")):
            match = _MIGRATION.match(path.name)
            if match is None:
                continue
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            version = int(match.group(1))
            if version in applied:
                if applied[version][1] != checksum:
                    raise StorageError(f"schema file {path.name} changed after it was applied; add a new file instead")
                continue
            for statement in _statements(text):
                self._command(statement.replace("{database}", db))
            self._insert("schema_migrations", ["version", "name", "checksum"], [[version], [path.name], [checksum]])
            done.append(path.name)
        for table in _RAW_TABLES:
            if raw_ttl_days > 0:
                self._command(
                    f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime(timestamp) + toIntervalDay({int(raw_ttl_days)})"
                )
            else:
                with contextlib.suppress(StorageError):  # there was no TTL to remove
                    self._command(f"ALTER TABLE {db}.{table} REMOVE TTL")
        return done

    def applied_migrations(self) -> list[tuple[int, str]]:
        return [(int(v), n) for v, n in self.query("SELECT version, name FROM {db}.schema_migrations ORDER BY version")]

    # -- raw events and dead letters ----------------------------------------------------------------

    def insert_predictions(self, events: Sequence[Any], sources: Sequence[Source]) -> None:
        self._insert(
            "predictions",
            [
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
            [
                [e.event_id for e in events],
                [e.request_id for e in events],
                [e.timestamp for e in events],
                [e.model for e in events],
                [e.model_version for e in events],
                [e.variant for e in events],
                [e.latency_ms for e in events],
                [e.status for e in events],
                [e.error for e in events],
                [None if e.prediction is None else _json(e.prediction) for e in events],
                [e.score for e in events],
                [_json(e.features) for e in events],
                [e.segments for e in events],
                [e.metadata for e in events],
                *_source_columns(sources),
            ],
        )

    def insert_feature_events(self, events: Sequence[Any], sources: Sequence[Source]) -> None:
        self._insert(
            "feature_events",
            [
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
            [
                [e.event_id for e in events],
                [e.request_id or "" for e in events],
                [e.timestamp for e in events],
                [e.model for e in events],
                [e.model_version or "" for e in events],
                [_json(e.features) for e in events],
                *_source_columns(sources),
            ],
        )

    def insert_labels(self, events: Sequence[Any], sources: Sequence[Source]) -> None:
        self._insert(
            "labels",
            ["event_id", "request_id", "timestamp", "model", "label", "topic", "partition", "offset"],
            [
                [e.event_id for e in events],
                [e.request_id for e in events],
                [e.timestamp for e in events],
                [e.model for e in events],
                [_json(e.label) for e in events],
                *_source_columns(sources),
            ],
        )

    def insert_dead_letters(self, records: Sequence[DeadLetterRecord]) -> None:
        self._insert(
            "dead_letters",
            ["topic", "partition", "offset", "reason", "raw", "received_at"],
            [
                [r.source.topic for r in records],
                [r.source.partition for r in records],
                [r.source.offset for r in records],
                [r.reason for r in records],
                [bytes(r.raw) for r in records],
                [r.received_ms for r in records],
            ],
        )

    def dead_letters(self) -> list[DeadLetterRecord]:
        rows = self.query(
            "SELECT topic, partition, offset, reason, raw, toUnixTimestamp64Milli(received_at) "
            "FROM {db}.dead_letters FINAL ORDER BY topic, partition, offset",
            formats={"raw": "bytes"},
        )
        return [DeadLetterRecord(Source(t, int(p), int(o)), reason, raw, int(at)) for t, p, o, reason, raw, at in rows]

    # -- results ------------------------------------------------------------------------------------

    def insert_metrics(self, rows: Sequence[MetricRow], version: int) -> None:
        self._insert(
            "metrics",
            [
                "model",
                "model_version",
                "variant",
                "window",
                "window_start",
                "window_end",
                "metric",
                "feature",
                "segment",
                "segment_key",
                "value",
                "threshold",
                "lower",
                "upper",
                "reference",
                "version",
            ],
            [
                [r.model for r in rows],
                [r.model_version for r in rows],
                [r.variant for r in rows],
                [r.window for r in rows],
                [r.window_start_ms for r in rows],
                [r.window_end_ms for r in rows],
                [r.metric for r in rows],
                [r.feature or "" for r in rows],
                [dict(r.segment) for r in rows],
                [_segment_key(r.segment) for r in rows],
                [float(r.value) for r in rows],
                [r.threshold for r in rows],
                [r.lower for r in rows],
                [r.upper for r in rows],
                [r.reference or "" for r in rows],
                [version] * len(rows),
            ],
        )

    def metrics(self, model: str | None = None) -> list[MetricRow]:
        """Every metric row (its latest version), ordered."""
        rows = self.query(
            "SELECT model, model_version, variant, toUnixTimestamp64Milli(window_start), "
            "toUnixTimestamp64Milli(window_end), metric, value, feature, segment, threshold, window, reference, "
            "lower, upper FROM {db}.metrics FINAL WHERE {model:String} = '' OR model = {model:String} "
            "ORDER BY model, model_version, variant, window, metric, feature, segment_key, window_start",
            {"model": model or ""},
        )
        return [
            MetricRow(
                m,
                v,
                var,
                int(s),
                int(e),
                metric,
                value,
                feature or None,
                tuple(sorted(segment.items())),
                threshold,
                window,
                reference or None,
                lower,
                upper,
            )
            for m, v, var, s, e, metric, value, feature, segment, threshold, window, reference, lower, upper in rows
        ]

    def insert_findings(self, findings: Sequence[Finding], version: int) -> None:
        self._insert(
            "findings",
            [
                "kind",
                "severity_hint",
                "model",
                "model_version",
                "variant",
                "window_start",
                "window_end",
                "metric",
                "value",
                "threshold",
                "feature",
                "segment",
                "segment_key",
                "evidence",
                "reference",
                "version",
            ],
            [
                [f.kind for f in findings],
                [f.severity_hint for f in findings],
                [f.model for f in findings],
                [f.model_version for f in findings],
                [f.variant for f in findings],
                [f.window_start_ms for f in findings],
                [f.window_end_ms for f in findings],
                [f.metric for f in findings],
                [float(f.value) for f in findings],
                [f.threshold for f in findings],
                [f.feature or "" for f in findings],
                [dict(f.segment) for f in findings],
                [_segment_key(f.segment) for f in findings],
                [_json(f.evidence) for f in findings],
                [f.reference or "" for f in findings],
                [version] * len(findings),
            ],
        )

    def findings(self, model: str | None = None) -> list[Finding]:
        rows = self.query(
            "SELECT kind, severity_hint, model, model_version, variant, toUnixTimestamp64Milli(window_start), "
            "toUnixTimestamp64Milli(window_end), metric, value, threshold, feature, segment, evidence, reference "
            "FROM {db}.findings FINAL WHERE {model:String} = '' OR model = {model:String} "
            "ORDER BY window_start, model, model_version, variant, kind, metric, feature, segment_key",
            {"model": model or ""},
        )
        return [
            Finding(
                kind,
                sev,
                m,
                v,
                var,
                int(s),
                int(e),
                metric,
                value,
                threshold,
                feature or None,
                tuple(sorted(segment.items())),
                orjson.loads(evidence),
                reference or None,
            )
            for kind, sev, m, v, var, s, e, metric, value, threshold, feature, segment, evidence, reference in rows
        ]

    def insert_profile(self, profile: ReferenceProfile) -> None:
        lineage = profile.lineage
        self._insert(
            "profiles",
            [
                "model",
                "model_version",
                "content_sha256",
                "created_at",
                "data_uri",
                "rows",
                "model_uri",
                "git_sha",
                "profile",
            ],
            [
                [lineage.model],
                [lineage.model_version],
                [lineage.content_sha256],
                [int(lineage.created_at.timestamp() * 1000)],
                [lineage.data_uri],
                [lineage.rows],
                [lineage.model_artifact_uri or ""],
                [lineage.git_sha or ""],
                [profile.model_dump_json()],
            ],
        )

    def insert_worker_metrics(
        self, worker: str, at_ms: int, samples: Sequence[tuple[str, dict[str, str], float]]
    ) -> None:
        if samples:
            self._insert(
                "worker_metrics",
                ["worker", "at", "name", "labels", "value"],
                [
                    [worker] * len(samples),
                    [at_ms] * len(samples),
                    [s[0] for s in samples],
                    [s[1] for s in samples],
                    [s[2] for s in samples],
                ],
            )

    def insert_alerts(self, rows: Sequence[dict[str, Any]]) -> None:
        self._insert_dicts("alerts", rows)

    def insert_retrain_events(self, rows: Sequence[dict[str, Any]]) -> None:
        self._insert_dicts("retrain_events", rows)

    # -- worker state -------------------------------------------------------------------------------

    def insert_partials(self, group: str, rows: Sequence[tuple[int, int, str, Any, int, bytes]]) -> None:
        """Partials as (partition, version, kind, key, window start, bytes), in one insert."""
        self._insert(
            "partials",
            ["worker_group", "partition", "version", "kind", "key", "window_start", "aggregate"],
            [
                [group] * len(rows),
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [_json(list(r[3])) for r in rows],
                [r[4] for r in rows],
                [r[5] for r in rows],
            ],
        )

    def partials_since(
        self, group: str, partition: int, version: int
    ) -> list[tuple[str, tuple[Any, ...], int, int, bytes]]:
        """A partition's partials written with a version above ``version``: (kind, key, start, version, bytes)."""
        rows = self.query(
            "SELECT kind, key, window_start, version, aggregate FROM {db}.partials FINAL "
            "WHERE worker_group = {group:String} AND partition = {partition:Int32} AND version > {version:UInt64} "
            "ORDER BY version, window_start, kind, key",
            {"group": group, "partition": partition, "version": version},
            formats={"aggregate": "bytes"},
        )
        return [(kind, tuple(orjson.loads(key)), int(start), int(v), blob) for kind, key, start, v, blob in rows]

    def save_checkpoint(
        self, name: str, partition: int, version: int, watermark: int, offsets: dict[str, int], state: bytes
    ) -> None:
        self._insert(
            "checkpoints",
            ["name", "partition", "version", "watermark", "offsets", "state"],
            [[name], [partition], [version], [watermark], [dict(offsets)], [state]],
        )

    def load_checkpoint(self, name: str, partition: int) -> Checkpoint | None:
        rows = self.query(
            "SELECT version, watermark, offsets, state FROM {db}.checkpoints FINAL "
            "WHERE name = {name:String} AND partition = {partition:Int32}",
            {"name": name, "partition": partition},
            formats={"state": "bytes"},
        )
        if not rows:
            return None
        version, watermark, offsets, state = rows[0]
        return Checkpoint(int(version), int(watermark), {t: int(o) for t, o in offsets.items()}, state)

    def checkpoint_watermarks(self, name: str) -> dict[int, int]:
        """The watermark of every partition's latest checkpoint under ``name``."""
        rows = self.query(
            "SELECT partition, watermark FROM {db}.checkpoints FINAL WHERE name = {name:String}", {"name": name}
        )
        return {int(p): int(w) for p, w in rows}

    # -- plumbing -----------------------------------------------------------------------------------

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise StorageError(f"unknown table {table!r}")
        return int(self.query(f"SELECT count() FROM {{db}}.{table} FINAL")[0][0])

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

    def _command(self, sql: str) -> None:
        try:
            self.client.command(sql)
        except Exception as exc:
            raise StorageError(f"ClickHouse command failed: {_reason(exc)}") from None

    def _insert(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        if not columns or not columns[0]:
            return
        try:
            self.client.insert(f"{self.database}.{table}", columns, column_names=names, column_oriented=True)
        except Exception as exc:
            raise StorageError(f"ClickHouse insert into {table} failed: {_reason(exc)}") from None

    def _insert_dicts(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            names = list(rows[0])
            self._insert(table, names, [[row.get(name) for row in rows] for name in names])


def _source_columns(sources: Sequence[Source]) -> list[list[Any]]:
    return [[s.topic for s in sources], [s.partition for s in sources], [s.offset for s in sources]]


def _statements(text: str) -> list[str]:
    """The statements of a schema file: split on ``;`` at line ends, comment lines dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]
