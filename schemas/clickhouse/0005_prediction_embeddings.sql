-- streamwatch schema, version 5: raw predictions keep their embeddings (contract version 2).
--
-- Each embedding's numbers as Float32, which is the precision producers send (the SDK sends numpy arrays as
-- float32), by name: nothing the worker read is lost to the raw store. Rows stored before have none (an
-- empty map). ZSTD, like the feature map: vectors of one model resemble each other.

ALTER TABLE {database}.predictions
    ADD COLUMN IF NOT EXISTS embeddings Map(LowCardinality(String), Array(Float32)) CODEC(ZSTD(1))
        COMMENT 'embedding name -> its numbers (contract version 2)' AFTER metadata;
