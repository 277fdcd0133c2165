-- Schema 1. `{db}` is the database. Statements are separated by `;` at a line's end.
-- The insert table: one row per batch. Its items (samples, coverage, rollup rows, refusals, the
-- writer's state) are parallel arrays of one length, item i being (i_what[i], i_time[i], …):
-- 0 sample, 1 coverage, 2 hourly rollup, 3 daily rollup, 4 refusal, 5 the writer's state
-- (i_text), 6 the refusal counts (i_id refused, i_idx dropped). It keeps nothing (Null); each
-- view below ARRAY JOINs every array (so nothing large is copied per item, which 18.16 does for
-- columns left out of an ARRAY JOIN) and keeps its own kind of item, in the same INSERT.
CREATE TABLE IF NOT EXISTS {db}.batches (
    kind UInt8, writer String, sequence UInt64, q_writer String,
    i_what Array(UInt8), i_time Array(Int64), i_tenant Array(UInt32), i_realm Array(UInt16),
    i_direction Array(UInt8), i_band Array(UInt8), i_source Array(UInt8),
    i_bytes Array(UInt64), i_packets Array(UInt64), i_status Array(UInt8),
    i_id Array(UInt64), i_idx Array(UInt64),
    i_text Array(String), i_sum_bytes Array(String), i_sum_packets Array(String)
) ENGINE = Null;
CREATE TABLE IF NOT EXISTS {db}.samples (
    slot Int64, tenant UInt32, realm UInt16, direction UInt8, band UInt8, source UInt8,
    bytes UInt64, packets UInt64, writer String, sequence UInt64
) ENGINE = MergeTree PARTITION BY toYYYYMM(toDateTime(slot * 300))
  ORDER BY (tenant, slot, realm, direction, band, source);
CREATE TABLE IF NOT EXISTS {db}.hourly (
    hour Int64, tenant UInt32, realm UInt16, direction UInt8, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY toYYYYMM(toDateTime(hour * 3600))
  ORDER BY (tenant, hour, realm, direction);
CREATE TABLE IF NOT EXISTS {db}.daily (
    day Int64, tenant UInt32, realm UInt16, direction UInt8, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY toYear(toDateTime(day * 86400))
  ORDER BY (day, tenant, realm, direction);
CREATE TABLE IF NOT EXISTS {db}.slots (slot Int64, status UInt8)
  ENGINE = MergeTree PARTITION BY toYYYYMM(toDateTime(slot * 300)) ORDER BY slot;
CREATE TABLE IF NOT EXISTS {db}.writers (writer String, sequence UInt64, state String)
  ENGINE = ReplacingMergeTree(sequence) ORDER BY writer;
CREATE TABLE IF NOT EXISTS {db}.quarantine (
    id UInt64, writer String, sequence UInt64, batch_index UInt64, slot Int64, tenant UInt32,
    realm UInt16, direction UInt8, band UInt8, source UInt8, bytes UInt64, packets UInt64,
    reason String, sum_bytes String, sum_packets String
) ENGINE = MergeTree ORDER BY id;
CREATE TABLE IF NOT EXISTS {db}.quarantine_counts (one UInt8, refused UInt64, dropped UInt64)
  ENGINE = SummingMergeTree((refused, dropped)) ORDER BY one;
CREATE TABLE IF NOT EXISTS {db}.quarantine_cleared (through UInt64) ENGINE = MergeTree ORDER BY through;
CREATE TABLE IF NOT EXISTS {db}.frozen (
    label String, start_ms Int64, end_ms Int64, frozen_at_ms Int64, bill String
) ENGINE = MergeTree ORDER BY label;
CREATE TABLE IF NOT EXISTS {db}.marks (name String, before Int64)
  ENGINE = ReplacingMergeTree(before) ORDER BY name;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.samples_mv TO {db}.samples AS
  SELECT a_time AS slot, a_tenant AS tenant, a_realm AS realm, a_direction AS direction,
         a_band AS band, a_source AS source, a_bytes AS bytes, a_packets AS packets, writer, sequence
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 0;
-- The rollups arrive summed per batch (the store adds them up in Rust): a GROUP BY inside
-- the view cost 0.5 s per 20,000 samples on 18.16.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.hourly_mv TO {db}.hourly AS
  SELECT a_time AS hour, a_tenant AS tenant, a_realm AS realm, a_direction AS direction,
         a_bytes AS bytes, a_packets AS packets
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 2;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_mv TO {db}.daily AS
  SELECT a_time AS day, a_tenant AS tenant, a_realm AS realm, a_direction AS direction,
         a_bytes AS bytes, a_packets AS packets
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 3;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.slots_mv TO {db}.slots AS
  SELECT a_time AS slot, a_status AS status
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 1;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.writers_mv TO {db}.writers AS
  SELECT writer, sequence, a_text AS state
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 5;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quarantine_mv TO {db}.quarantine AS
  SELECT a_id AS id, q_writer AS writer, sequence, a_idx AS batch_index, a_time AS slot,
         a_tenant AS tenant, a_realm AS realm, a_direction AS direction, a_band AS band,
         a_source AS source, a_bytes AS bytes, a_packets AS packets, a_text AS reason,
         a_sum_bytes AS sum_bytes, a_sum_packets AS sum_packets
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 4;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quarantine_counts_mv TO {db}.quarantine_counts AS
  SELECT toUInt8(1) AS one, a_id AS refused, a_idx AS dropped
  FROM {db}.batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_direction AS a_direction, i_band AS a_band, i_source AS a_source,
             i_bytes AS a_bytes, i_packets AS a_packets, i_status AS a_status, i_id AS a_id,
             i_idx AS a_idx, i_text AS a_text, i_sum_bytes AS a_sum_bytes,
             i_sum_packets AS a_sum_packets
  WHERE a_what = 6
