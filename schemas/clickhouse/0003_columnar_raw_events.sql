-- streamwatch schema, version 3: raw events' features stored columnar, and codecs for the raw tables.
--
-- Until now each event's feature object was stored as JSON text (`features String`). From here on the
-- feature object is stored in `feature_map`: a Map of feature name (LowCardinality) to the value as a
-- JSON literal (`1.5`, `"gamma"`, `true`, `null`), i.e. two parallel arrays on disk (`feature_map.keys`,
-- `feature_map.values`). Writers still send the JSON text, to the EPHEMERAL column `features_json`, and
-- ClickHouse splits it (in C++, once per event) on insert: no Python cost beyond today's, no text stored.
-- The exact object comes back with queries.FEATURE_OBJECT; a number with toFloat64OrNull(feature_map['x']),
-- a string with JSONExtractString(feature_map['x']).
--
-- Migrated in place, nothing lost: `features` stays as a column (a writer from before this version
-- still writes it during a rolling upgrade, and feature_map is then computed from it); the rows already
-- stored get their feature_map from their JSON text, which is then emptied. Every statement may run
-- again after a failure part way (the migration is recorded only once all of them succeeded).
-- bench/storage.py has the figures behind the layout and the codecs.

ALTER TABLE {database}.predictions
    ADD COLUMN IF NOT EXISTS features_json String EPHEMERAL
        COMMENT 'the feature object as JSON: written, never stored (feature_map holds it)' AFTER features;

ALTER TABLE {database}.predictions
    ADD COLUMN IF NOT EXISTS feature_map Map(LowCardinality(String), String)
        DEFAULT CAST(JSONExtractKeysAndValuesRaw(if(features_json = '', features, features_json)), 'Map(LowCardinality(String), String)')
        CODEC(ZSTD(1))
        COMMENT 'feature name -> its value as a JSON literal' AFTER features_json;

ALTER TABLE {database}.predictions
    UPDATE feature_map = CAST(JSONExtractKeysAndValuesRaw(features), 'Map(LowCardinality(String), String)'), features = ''
    WHERE features != ''
    SETTINGS mutations_sync = 2;

ALTER TABLE {database}.predictions
    COMMENT COLUMN features 'before schema version 3: the feature object as JSON; now empty (see feature_map)',
    MODIFY COLUMN event_id CODEC(ZSTD(1)),
    MODIFY COLUMN request_id CODEC(ZSTD(1)),
    MODIFY COLUMN timestamp CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN latency_ms CODEC(ZSTD(1)),
    MODIFY COLUMN score CODEC(ZSTD(1)),
    MODIFY COLUMN offset CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN ingested_at CODEC(Delta, ZSTD(1));

ALTER TABLE {database}.feature_events
    ADD COLUMN IF NOT EXISTS features_json String EPHEMERAL
        COMMENT 'the feature object as JSON: written, never stored (feature_map holds it)' AFTER features;

ALTER TABLE {database}.feature_events
    ADD COLUMN IF NOT EXISTS feature_map Map(LowCardinality(String), String)
        DEFAULT CAST(JSONExtractKeysAndValuesRaw(if(features_json = '', features, features_json)), 'Map(LowCardinality(String), String)')
        CODEC(ZSTD(1))
        COMMENT 'feature name -> its value as a JSON literal' AFTER features_json;

ALTER TABLE {database}.feature_events
    UPDATE feature_map = CAST(JSONExtractKeysAndValuesRaw(features), 'Map(LowCardinality(String), String)'), features = ''
    WHERE features != ''
    SETTINGS mutations_sync = 2;

ALTER TABLE {database}.feature_events
    COMMENT COLUMN features 'before schema version 3: the feature object as JSON; now empty (see feature_map)',
    MODIFY COLUMN event_id CODEC(ZSTD(1)),
    MODIFY COLUMN request_id CODEC(ZSTD(1)),
    MODIFY COLUMN timestamp CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN offset CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN ingested_at CODEC(Delta, ZSTD(1));

ALTER TABLE {database}.labels
    MODIFY COLUMN event_id CODEC(ZSTD(1)),
    MODIFY COLUMN request_id CODEC(ZSTD(1)),
    MODIFY COLUMN timestamp CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN label CODEC(ZSTD(1)),
    MODIFY COLUMN offset CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN ingested_at CODEC(Delta, ZSTD(1));
