-- Schema 5: a lean insert table for the common batch, one where no sample is refused
-- (the store picks `batches` of schema 1 for the others and for the quarantine). Measured on
-- 18.16 (issue 16): parsing the RowBinary row was half of an insert's time, and `batches`
-- carries 15 columns per item (about 54 bytes, three of them String arrays) plus an hourly
-- and a daily item per key. Here an item is 7 numbers, 28 bytes:
--   i_what 0 a sample: i_time the slot, i_key direction | band << 1 | source << 3;
--          1 coverage: i_time the slot, i_key the status;
--          2 an hourly sum: i_time the hour, i_key the direction. The daily view takes the
--            same items with the hour divided by 24 (SummingMergeTree adds them up), so a
--            key's sums are sent once, not twice;
--          5 7 bytes of the writer's state in i_bytes, as 0x01 then the bytes big-endian, so
--            that `hex` keeps every byte (its leading 01 is cut); i_time the state's length.
--            A String array cost a third of the parse even when every string was empty.
-- i_time is UInt32: the store sends here only slots in 0..=LAST_SLOT (2^32 seconds).
-- Every ARRAY JOIN still joins every array (18.16 copies an array left out of it once per
-- item); the writers' view needs none.
CREATE TABLE IF NOT EXISTS {db}.sample_batches (
    writer String, sequence UInt64,
    i_what Array(UInt8), i_time Array(UInt32), i_tenant Array(UInt32), i_realm Array(UInt16),
    i_key Array(UInt8), i_bytes Array(UInt64), i_packets Array(UInt64)
) ENGINE = Null;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sample_batches_samples_mv TO {db}.samples AS
  SELECT toInt64(a_time) AS slot, a_tenant AS tenant, a_realm AS realm,
         bitAnd(a_key, 1) AS direction, bitAnd(bitShiftRight(a_key, 1), 3) AS band,
         bitShiftRight(a_key, 3) AS source, a_bytes AS bytes, a_packets AS packets,
         writer, sequence
  FROM {db}.sample_batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_key AS a_key, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 0;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sample_batches_slots_mv TO {db}.slots AS
  SELECT toInt64(a_time) AS slot, a_key AS status
  FROM {db}.sample_batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_key AS a_key, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 1;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sample_batches_hourly_mv TO {db}.hourly AS
  SELECT toInt64(a_time) AS hour, a_tenant AS tenant, a_realm AS realm, a_key AS direction,
         a_bytes AS bytes, a_packets AS packets
  FROM {db}.sample_batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_key AS a_key, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 2;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sample_batches_daily_mv TO {db}.daily AS
  SELECT toInt64(intDiv(a_time, 24)) AS day, a_tenant AS tenant, a_realm AS realm,
         a_key AS direction, a_bytes AS bytes, a_packets AS packets
  FROM {db}.sample_batches
  ARRAY JOIN i_what AS a_what, i_time AS a_time, i_tenant AS a_tenant, i_realm AS a_realm,
             i_key AS a_key, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 2;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sample_batches_writers_mv TO {db}.writers AS
  SELECT writer, sequence,
         substring(unhex(arrayStringConcat(arrayMap(x -> substring(hex(x), 3),
                   arrayFilter((x, w) -> w = 5, i_bytes, i_what)))),
                   1, arrayFilter((t, w) -> w = 5, i_time, i_what)[1]) AS state
  FROM {db}.sample_batches
