-- Schema 4: flow records kept ([history.flows]). One row of `flow_batches` (Null) per batch of
-- decoded records: parallel arrays, item i being (i_what[i], i_time[i], …): i_what 0 a record,
-- 1 a sum per minute, made by the writer in Rust as the samples' rollups are (a GROUP BY inside
-- a view is slow on 18.16). The per-5-minute and per-hour views take the same sums with their
-- time rounded down (a batch is seconds of records: its 5-minute and hour sums would be its
-- minute sums again), and SummingMergeTree adds them up as it merges. Every view ARRAY JOINs
-- every array and keeps its own kind, in the same INSERT: 18.16 copies an array left out of an
-- ARRAY JOIN once per item (measured: out of memory at 10,000 records), and a view into a Null
-- table does not run that table's views (measured), so the tables cannot share one ARRAY JOIN.
-- `flow_writers` takes the batch's sequence from the same row, so a batch and its sequence
-- land together.
-- A sum is per (time, dim, key, number): dim 0 source, 1 destination (key the address in i_src,
-- number 0), 2 source port, 3 destination port, 4 protocol, 5 source AS (number in i_src_as,
-- key zeros). Per dimension, not per combination: with ephemeral ports a combination repeats
-- too rarely to consolidate anything. Questions across dimensions read the records.
-- Addresses are FixedString(16): IPv6, IPv4 mapped (::ffff:a.b.c.d), none as zeros (18.16 has
-- no IPv6 type). Partitions are whole days (records, per minute), weeks (per 5 minutes) and
-- 30 days (per hour) counted from the epoch, independent of the server's time zone, and
-- retention drops them whole (18.16 has no TTL).
CREATE TABLE IF NOT EXISTS {db}.flow_batches (
    writer String, sequence UInt64,
    i_what Array(UInt8), i_dim Array(UInt8), i_time Array(DateTime),
    i_exporter Array(FixedString(16)), i_src Array(FixedString(16)),
    i_dst Array(FixedString(16)), i_src_port Array(UInt16), i_dst_port Array(UInt16),
    i_protocol Array(UInt8), i_tcp_flags Array(UInt8), i_src_as Array(UInt32),
    i_dst_as Array(UInt32), i_bytes Array(UInt64), i_packets Array(UInt64)
) ENGINE = Null;
CREATE TABLE IF NOT EXISTS {db}.flow_writers (writer String, sequence UInt64)
  ENGINE = ReplacingMergeTree(sequence) ORDER BY writer;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flow_writers_mv TO {db}.flow_writers AS
  SELECT writer, sequence FROM {db}.flow_batches;
-- The records: ordered by time, which is what a range's top-N reads.
CREATE TABLE IF NOT EXISTS {db}.flows (
    time DateTime, exporter FixedString(16), src FixedString(16), dst FixedString(16),
    src_port UInt16, dst_port UInt16, protocol UInt8, tcp_flags UInt8, src_as UInt32,
    dst_as UInt32, bytes UInt64, packets UInt64
) ENGINE = MergeTree PARTITION BY intDiv(toUInt32(time), 86400) ORDER BY time;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_mv TO {db}.flows AS
  SELECT a_time AS time, a_exporter AS exporter, a_src AS src, a_dst AS dst,
         a_src_port AS src_port, a_dst_port AS dst_port, a_protocol AS protocol,
         a_tcp_flags AS tcp_flags, a_src_as AS src_as, a_dst_as AS dst_as, a_bytes AS bytes,
         a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN i_what AS a_what, i_dim AS a_dim, i_time AS a_time, i_exporter AS a_exporter,
             i_src AS a_src, i_dst AS a_dst, i_src_port AS a_src_port, i_dst_port AS a_dst_port,
             i_protocol AS a_protocol, i_tcp_flags AS a_tcp_flags, i_src_as AS a_src_as,
             i_dst_as AS a_dst_as, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 0;
CREATE TABLE IF NOT EXISTS {db}.flows_1m (
    time DateTime, dim UInt8, key FixedString(16), number UInt32, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY intDiv(toUInt32(time), 86400)
  ORDER BY (dim, time, key, number);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_1m_mv TO {db}.flows_1m AS
  SELECT a_time AS time, a_dim AS dim, a_src AS key, a_src_as AS number, a_bytes AS bytes,
         a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN i_what AS a_what, i_dim AS a_dim, i_time AS a_time, i_exporter AS a_exporter,
             i_src AS a_src, i_dst AS a_dst, i_src_port AS a_src_port, i_dst_port AS a_dst_port,
             i_protocol AS a_protocol, i_tcp_flags AS a_tcp_flags, i_src_as AS a_src_as,
             i_dst_as AS a_dst_as, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 1;
CREATE TABLE IF NOT EXISTS {db}.flows_5m (
    time DateTime, dim UInt8, key FixedString(16), number UInt32, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY intDiv(toUInt32(time), 604800)
  ORDER BY (dim, time, key, number);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_5m_mv TO {db}.flows_5m AS
  SELECT toDateTime(intDiv(toUInt32(a_time), 300) * 300) AS time, a_dim AS dim, a_src AS key, a_src_as AS number, a_bytes AS bytes,
         a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN i_what AS a_what, i_dim AS a_dim, i_time AS a_time, i_exporter AS a_exporter,
             i_src AS a_src, i_dst AS a_dst, i_src_port AS a_src_port, i_dst_port AS a_dst_port,
             i_protocol AS a_protocol, i_tcp_flags AS a_tcp_flags, i_src_as AS a_src_as,
             i_dst_as AS a_dst_as, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 1;
CREATE TABLE IF NOT EXISTS {db}.flows_1h (
    time DateTime, dim UInt8, key FixedString(16), number UInt32, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY intDiv(toUInt32(time), 2592000)
  ORDER BY (dim, time, key, number);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_1h_mv TO {db}.flows_1h AS
  SELECT toDateTime(intDiv(toUInt32(a_time), 3600) * 3600) AS time, a_dim AS dim, a_src AS key, a_src_as AS number, a_bytes AS bytes,
         a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN i_what AS a_what, i_dim AS a_dim, i_time AS a_time, i_exporter AS a_exporter,
             i_src AS a_src, i_dst AS a_dst, i_src_port AS a_src_port, i_dst_port AS a_dst_port,
             i_protocol AS a_protocol, i_tcp_flags AS a_tcp_flags, i_src_as AS a_src_as,
             i_dst_as AS a_dst_as, i_bytes AS a_bytes, i_packets AS a_packets
  WHERE a_what = 1;
