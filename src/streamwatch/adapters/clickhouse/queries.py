"""The SQL streamwatch reads with: fixed texts where ``{db}`` is the database and values are ``{name:Type}`` parameters.

Values never enter SQL text: they go as query parameters (or insert columns);
only the checked database name is substituted for ``{db}``.
"""

from __future__ import annotations

__all__ = [
    "APPLIED_MIGRATIONS",
    "CHECKPOINT",
    "CHECKPOINT_WATERMARKS",
    "DEAD_LETTERS",
    "FEATURE_OBJECT",
    "FINDINGS",
    "METRICS",
    "MIGRATION_CHECKSUMS",
    "PARTIALS_SINCE",
    "RAW_FEATURES",
    "count",
]

MIGRATION_CHECKSUMS = "SELECT version, name, checksum FROM {db}.schema_migrations"
APPLIED_MIGRATIONS = "SELECT version, name FROM {db}.schema_migrations ORDER BY version"

DEAD_LETTERS = (
    "SELECT topic, partition, offset, reason, raw, toUnixTimestamp64Milli(received_at) "
    "FROM {db}.dead_letters FINAL ORDER BY topic, partition, offset"
)

#: A raw event's feature object as JSON text, rebuilt from ``feature_map`` (name -> the value as a
#: JSON literal; schema version 3): ``orjson.loads`` of it gives the object the event carried, its
#: numbers as JSON wrote them (``1.0`` comes back as ``1``). In SQL, one feature's number is
#: ``toFloat64OrNull(feature_map['income'])``, its string ``JSONExtractString(feature_map['city'])``.
FEATURE_OBJECT = (
    "concat('{', arrayStringConcat(arrayMap((k, v) -> concat(toJSONString(k), ':', v), "
    "feature_map.keys, feature_map.values), ','), '}')"
)

#: The raw events of one table (``predictions`` or ``feature_events``; see ``Store.raw_features``).
_RAW_FEATURES = (
    "SELECT event_id, request_id, toUnixTimestamp64Milli(timestamp), model, model_version, "
    f"{FEATURE_OBJECT} FROM {{db}}.{{table}} FINAL WHERE {{model:String}} = '' OR model = {{model:String}} "
    "ORDER BY model, timestamp, event_id"
)
#: Each stored raw event's feature object, by table: (event id, request id, time in ms, model, version, JSON).
RAW_FEATURES = {table: _RAW_FEATURES.replace("{table}", table) for table in ("predictions", "feature_events")}

#: Every metric row (its latest version) of one model, or of all when ``model`` is ''.
METRICS = (
    "SELECT model, model_version, variant, toUnixTimestamp64Milli(window_start), "
    "toUnixTimestamp64Milli(window_end), metric, value, feature, segment, threshold, window, reference, "
    "lower, upper FROM {db}.metrics FINAL WHERE {model:String} = '' OR model = {model:String} "
    "ORDER BY model, model_version, variant, window, metric, feature, segment_key, window_start"
)

#: Every finding (its latest version) of one model, or of all when ``model`` is ''.
FINDINGS = (
    "SELECT kind, severity_hint, model, model_version, variant, toUnixTimestamp64Milli(window_start), "
    "toUnixTimestamp64Milli(window_end), metric, value, threshold, feature, segment, evidence, reference "
    "FROM {db}.findings FINAL WHERE {model:String} = '' OR model = {model:String} "
    "ORDER BY window_start, model, model_version, variant, kind, metric, feature, segment_key"
)

#: A partition's partials written with a version above ``version``.
PARTIALS_SINCE = (
    "SELECT kind, key, window_start, version, aggregate FROM {db}.partials FINAL "
    "WHERE worker_group = {group:String} AND partition = {partition:Int32} AND version > {version:UInt64} "
    "ORDER BY version, window_start, kind, key"
)

CHECKPOINT = (
    "SELECT version, watermark, offsets, state FROM {db}.checkpoints FINAL "
    "WHERE name = {name:String} AND partition = {partition:Int32}"
)
CHECKPOINT_WATERMARKS = "SELECT partition, watermark FROM {db}.checkpoints FINAL WHERE name = {name:String}"


def count(table: str) -> str:
    """Rows of ``table`` (a name from the fixed list :data:`~streamwatch.adapters.clickhouse.store.TABLES`)."""
    return f"SELECT count() FROM {{db}}.{table} FINAL"
