"""The schema: versioned SQL files in ``schemas/clickhouse/``, applied in order and recorded in ``schema_migrations``.

A file once applied never changes (its checksum is kept); a change is a new file.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from streamwatch.adapters.clickhouse import queries

if TYPE_CHECKING:
    from streamwatch.adapters.clickhouse.store import Store

__all__ = ["MIGRATION", "RAW_TABLES", "migrate", "migrations_directory", "statements"]

MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
#: The raw event tables, whose rows expire after ``raw_ttl_days``.
RAW_TABLES = ("predictions", "feature_events", "labels")


def migrations_directory() -> Path:
    """The schema files: packaged in a wheel, or the repository's ``schemas/clickhouse``."""
    packaged = resources.files("streamwatch") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[4] / "schemas" / "clickhouse"


def migrate(store: Store, raw_ttl_days: int = 30, directory: Path | None = None) -> list[str]:
    """Apply the schema files not applied yet, in order; set the raw events' TTL. Idempotent."""
    from streamwatch.adapters.clickhouse.store import StorageError

    db = store.database
    store.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
    )
    applied = {version: (name, checksum) for version, name, checksum in store.query(queries.MIGRATION_CHECKSUMS)}
    folder = directory or migrations_directory()
    files = sorted(path for path in folder.glob("*.sql") if MIGRATION.match(path.name))
    if not files:
        # An install without its schema files (a wheel built without them, a missing folder) would otherwise
        # apply nothing, say nothing, and fail at the first write to a table that does not exist.
        raise StorageError(f"no schema files in {folder}: this install of streamwatch is incomplete")
    done = []
    for path in files:
        match = MIGRATION.match(path.name)
        if match is None:
            continue
        text = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode()).hexdigest()
        version = int(match.group(1))
        if version in applied:
            if applied[version][1] != checksum:
                raise StorageError(f"schema file {path.name} changed after it was applied; add a new file instead")
            continue
        for statement in statements(text):
            store.command(statement.replace("{database}", db))
        store.insert("schema_migrations", ["version", "name", "checksum"], [[version], [path.name], [checksum]])
        done.append(path.name)
    for table in RAW_TABLES:
        if raw_ttl_days > 0:
            store.command(
                f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime(timestamp) + toIntervalDay({int(raw_ttl_days)})"
            )
        else:
            with contextlib.suppress(StorageError):  # there was no TTL to remove
                store.command(f"ALTER TABLE {db}.{table} REMOVE TTL")
    return done


def statements(text: str) -> list[str]:
    """The statements of a schema file: split on ``;`` at line ends, comment lines dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]
