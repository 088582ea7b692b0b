"""ClickHouse storage: the only package that imports ``clickhouse_connect``.

The same SQL runs on a ClickHouse server over HTTP(S) and on chdb, the
embedded engine (``dsn="chdb://..."``), both through clickhouse-connect's
client. :mod:`.store` holds the :class:`Store` and :func:`connect`;
:mod:`.migrations` applies the versioned SQL in ``schemas/clickhouse/`` in order
and records it in ``schema_migrations``; :mod:`.rows` maps streamwatch's types
to insert columns and result rows back; :mod:`.queries` holds the SQL it reads
with.

Writes are columnar (one list per column, times as epoch milliseconds) and
idempotent: every table a retry can reach again is a ReplacingMergeTree keyed
on what identifies a row, so a retried batch replaces itself. Read with
``FINAL``. Values never enter SQL text: they go as insert columns or query
parameters; only the checked database name and fixed table names are formatted in.
"""

from __future__ import annotations

from streamwatch.adapters.clickhouse.migrations import migrations_directory
from streamwatch.adapters.clickhouse.rows import Checkpoint, DeadLetterRecord, Source
from streamwatch.adapters.clickhouse.store import TABLES, RefusedRows, SchemaMismatch, StorageError, Store, connect

__all__ = [
    "TABLES",
    "Checkpoint",
    "DeadLetterRecord",
    "RefusedRows",
    "SchemaMismatch",
    "Source",
    "StorageError",
    "Store",
    "connect",
    "migrations_directory",
]
