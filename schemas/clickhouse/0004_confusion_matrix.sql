-- streamwatch schema, version 4: a multiclass model's confusion matrix as a table to query.
--
-- The matrix is stored in `metrics` like every figure (metric 'confusion', value = count), the cell in
-- `feature` as a JSON array ["<actual>", "<predicted>"]: the table's sorting key then keeps one row per
-- window, variant, slice and cell, and later reports of a window (labels keep arriving) replace earlier
-- ones. This view gives the cell its own columns.

CREATE VIEW IF NOT EXISTS {database}.confusion_matrix AS
SELECT
    model,
    model_version,
    variant,
    window,
    window_start,
    window_end,
    segment,
    segment_key,
    JSONExtractString(feature, 1) AS actual,
    JSONExtractString(feature, 2) AS predicted,
    toUInt64(value) AS count
FROM {database}.metrics FINAL
WHERE metric = 'confusion';
