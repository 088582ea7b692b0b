-- streamwatch schema, version 2: what the workers need to resume exactly after a crash, and to
-- merge the partitions' partial aggregates (see the README, "How workers stay exact").

-- The mergeable aggregates of one window of one partition, written before the checkpoint that
-- covers them. A partition writes a window's partial again after a restart: the latest version wins.
CREATE TABLE IF NOT EXISTS {database}.partials (
    worker_group String,
    partition Int32,
    kind LowCardinality(String),
    key String COMMENT 'the window key as JSON: [model, version, variant(, production_version)]',
    window_start Int64,
    version UInt64,
    aggregate String COMMENT 'state_codec bytes',
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (worker_group, partition, kind, key, window_start)
TTL toDateTime(inserted_at) + INTERVAL 3 DAY;

-- Each partition's (and the reporter's) whole state with the next offset of each topic: the
-- row a worker resumes from. Written as one row, so it is there whole or not at all.
CREATE TABLE IF NOT EXISTS {database}.checkpoints (
    name String,
    partition Int32,
    version UInt64,
    watermark Int64,
    offsets Map(String, Int64),
    state String,
    saved_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (name, partition);
