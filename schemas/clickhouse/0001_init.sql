-- streamwatch schema, version 1. Applied once by `streamwatch init` (or any worker), in order with
-- the files after it. Tables that a retried write reaches again are ReplacingMergeTree keyed on what
-- identifies a row, so a retry replaces instead of adding: read them with FINAL.
-- {database} is the only placeholder; the name is checked before it is put in.

CREATE TABLE IF NOT EXISTS {database}.predictions (
    event_id String,
    request_id String,
    timestamp DateTime64(3, 'UTC'),
    model LowCardinality(String),
    model_version LowCardinality(String),
    variant LowCardinality(String),
    latency_ms Float64,
    status LowCardinality(String),
    error Nullable(String),
    prediction Nullable(String) COMMENT 'the predicted value as JSON',
    score Nullable(Float64),
    features String COMMENT 'the feature object as JSON',
    segments Map(String, String),
    metadata Map(String, String),
    topic LowCardinality(String),
    partition Int32,
    offset Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (model, model_version, variant, timestamp, event_id);

CREATE TABLE IF NOT EXISTS {database}.feature_events (
    event_id String,
    request_id String,
    timestamp DateTime64(3, 'UTC'),
    model LowCardinality(String),
    model_version LowCardinality(String),
    features String,
    topic LowCardinality(String),
    partition Int32,
    offset Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (model, timestamp, event_id);

CREATE TABLE IF NOT EXISTS {database}.labels (
    event_id String,
    request_id String,
    timestamp DateTime64(3, 'UTC'),
    model LowCardinality(String),
    label String COMMENT 'the label as JSON',
    topic LowCardinality(String),
    partition Int32,
    offset Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (model, request_id, event_id);

CREATE TABLE IF NOT EXISTS {database}.metrics (
    model LowCardinality(String),
    model_version LowCardinality(String),
    variant LowCardinality(String),
    window LowCardinality(String) COMMENT 'tumbling, or the span of a rolling view such as 1h',
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    metric LowCardinality(String),
    feature String COMMENT 'empty when the metric is about no feature',
    segment Map(String, String),
    segment_key String COMMENT 'the segment as sorted name=value pairs, for the sorting key',
    value Float64,
    threshold Nullable(Float64),
    lower Nullable(Float64),
    upper Nullable(Float64),
    reference String COMMENT 'content hash of the reference profile (its lineage is in profiles)',
    version UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model, model_version, variant, window, metric, feature, segment_key, window_start);

CREATE TABLE IF NOT EXISTS {database}.findings (
    kind LowCardinality(String),
    severity_hint LowCardinality(String),
    model LowCardinality(String),
    model_version LowCardinality(String),
    variant LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    metric LowCardinality(String),
    value Float64,
    threshold Nullable(Float64),
    feature String,
    segment Map(String, String),
    segment_key String,
    evidence String COMMENT 'JSON',
    reference String,
    version UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model, model_version, variant, kind, metric, feature, segment_key, window_start);

CREATE TABLE IF NOT EXISTS {database}.profiles (
    model LowCardinality(String),
    model_version LowCardinality(String),
    content_sha256 String,
    created_at DateTime64(3, 'UTC'),
    data_uri String,
    rows UInt64,
    model_uri String,
    git_sha String,
    profile String COMMENT 'the whole profile as JSON',
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (model, model_version, content_sha256);

CREATE TABLE IF NOT EXISTS {database}.dead_letters (
    topic LowCardinality(String),
    partition Int32,
    offset Int64,
    reason String,
    raw String COMMENT 'the original bytes',
    received_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset);

CREATE TABLE IF NOT EXISTS {database}.alerts (
    fingerprint String,
    rule String,
    kind LowCardinality(String),
    severity LowCardinality(String),
    status LowCardinality(String),
    model LowCardinality(String),
    model_version LowCardinality(String),
    variant LowCardinality(String),
    feature String,
    segment Map(String, String),
    value Float64,
    threshold Nullable(Float64),
    starts_at DateTime64(3, 'UTC'),
    ends_at Nullable(DateTime64(3, 'UTC')),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    labels Map(String, String),
    payload String COMMENT 'the whole alert as JSON',
    version UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (fingerprint, starts_at, status);

CREATE TABLE IF NOT EXISTS {database}.retrain_events (
    event_id String,
    model LowCardinality(String),
    model_version LowCardinality(String),
    reason String,
    created_at DateTime64(3, 'UTC'),
    payload String COMMENT 'the whole retrain event as JSON',
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (model, model_version, event_id);

CREATE TABLE IF NOT EXISTS {database}.worker_metrics (
    worker String,
    at DateTime64(3, 'UTC'),
    name LowCardinality(String),
    labels Map(String, String),
    value Float64
) ENGINE = MergeTree
ORDER BY (name, at)
TTL toDateTime(at) + INTERVAL 30 DAY;
