-- Schema 3: the guard's ended attacks (history::attacks). Keyed by
-- (started_ms, target, direction); a record written twice is refused by
-- the store before its insert, and reads keep one row per key
-- (LIMIT 1 BY) in case two writers raced.
CREATE TABLE IF NOT EXISTS {db}.attacks (
    started_ms Int64, target String, direction String, ended_ms Int64, kind String,
    peak_pps UInt64, peak_bps UInt64, rungs String, sources String, record String
) ENGINE = ReplacingMergeTree ORDER BY (started_ms, target, direction);
