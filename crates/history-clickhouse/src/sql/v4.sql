-- Schema 4: flow records kept ([history.flows]). One row of `flow_batches` (Null) per batch of
-- decoded records: parallel arrays, item i being (f_what[i], f_time[i], …), f_what 0 a record,
-- 1 a per-minute row, 2 a per-5-minute row, 3 a per-hour row (the writer sums those in Rust, as
-- the samples' rollups are: a GROUP BY inside a view is slow on 18.16). The views ARRAY JOIN
-- every array and keep their kind, in the same INSERT; `flow_writers` takes the batch's
-- sequence from the same row, so a batch and its sequence land together.
-- Addresses are FixedString(16): IPv6, IPv4 mapped (::ffff:a.b.c.d), none as zeros (18.16 has
-- no IPv6 type). Partitions are whole days (raw, per minute), weeks (per 5 minutes) and 30 days
-- (per hour) counted from the epoch, independent of the server's time zone, and retention
-- drops them whole (18.16 has no TTL).
CREATE TABLE IF NOT EXISTS {db}.flow_batches (
    writer String, sequence UInt64,
    f_what Array(UInt8), f_time Array(DateTime), f_exporter Array(FixedString(16)),
    f_src Array(FixedString(16)), f_dst Array(FixedString(16)), f_src_port Array(UInt16),
    f_dst_port Array(UInt16), f_protocol Array(UInt8), f_tcp_flags Array(UInt8),
    f_src_as Array(UInt32), f_dst_as Array(UInt32), f_bytes Array(UInt64), f_packets Array(UInt64)
) ENGINE = Null;
CREATE TABLE IF NOT EXISTS {db}.flow_writers (writer String, sequence UInt64)
  ENGINE = ReplacingMergeTree(sequence) ORDER BY writer;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flow_writers_mv TO {db}.flow_writers AS
  SELECT writer, sequence FROM {db}.flow_batches;
-- The records: ordered by time first, which is what a range's top-N reads.
CREATE TABLE IF NOT EXISTS {db}.flows (
    time DateTime, exporter FixedString(16), src FixedString(16), dst FixedString(16),
    src_port UInt16, dst_port UInt16, protocol UInt8, tcp_flags UInt8, src_as UInt32,
    dst_as UInt32, bytes UInt64, packets UInt64
) ENGINE = MergeTree PARTITION BY intDiv(toUInt32(time), 86400) ORDER BY (time, dst, src);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_mv TO {db}.flows AS
  SELECT a_time AS time, a_exporter AS exporter, a_src AS src, a_dst AS dst,
         a_src_port AS src_port, a_dst_port AS dst_port, a_protocol AS protocol,
         a_tcp_flags AS tcp_flags, a_src_as AS src_as, a_dst_as AS dst_as, a_bytes AS bytes,
         a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN f_what AS a_what, f_time AS a_time, f_exporter AS a_exporter, f_src AS a_src, f_dst AS a_dst,
             f_src_port AS a_src_port, f_dst_port AS a_dst_port, f_protocol AS a_protocol,
             f_tcp_flags AS a_tcp_flags, f_src_as AS a_src_as, f_dst_as AS a_dst_as,
             f_bytes AS a_bytes, f_packets AS a_packets
  WHERE a_what = 0;
CREATE TABLE IF NOT EXISTS {db}.flows_1m (
    time DateTime, src FixedString(16), dst FixedString(16), src_port UInt16, dst_port UInt16,
    protocol UInt8, src_as UInt32, dst_as UInt32, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY intDiv(toUInt32(time), 86400)
  ORDER BY (time, src, dst, src_port, dst_port, protocol, src_as, dst_as);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_1m_mv TO {db}.flows_1m AS
  SELECT a_time AS time, a_src AS src, a_dst AS dst, a_src_port AS src_port,
         a_dst_port AS dst_port, a_protocol AS protocol, a_src_as AS src_as, a_dst_as AS dst_as,
         a_bytes AS bytes, a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN f_what AS a_what, f_time AS a_time, f_exporter AS a_exporter, f_src AS a_src, f_dst AS a_dst,
             f_src_port AS a_src_port, f_dst_port AS a_dst_port, f_protocol AS a_protocol,
             f_tcp_flags AS a_tcp_flags, f_src_as AS a_src_as, f_dst_as AS a_dst_as,
             f_bytes AS a_bytes, f_packets AS a_packets
  WHERE a_what = 1;
CREATE TABLE IF NOT EXISTS {db}.flows_5m (
    time DateTime, src FixedString(16), dst FixedString(16), src_port UInt16, dst_port UInt16,
    protocol UInt8, src_as UInt32, dst_as UInt32, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY intDiv(toUInt32(time), 604800)
  ORDER BY (time, src, dst, src_port, dst_port, protocol, src_as, dst_as);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_5m_mv TO {db}.flows_5m AS
  SELECT a_time AS time, a_src AS src, a_dst AS dst, a_src_port AS src_port,
         a_dst_port AS dst_port, a_protocol AS protocol, a_src_as AS src_as, a_dst_as AS dst_as,
         a_bytes AS bytes, a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN f_what AS a_what, f_time AS a_time, f_exporter AS a_exporter, f_src AS a_src, f_dst AS a_dst,
             f_src_port AS a_src_port, f_dst_port AS a_dst_port, f_protocol AS a_protocol,
             f_tcp_flags AS a_tcp_flags, f_src_as AS a_src_as, f_dst_as AS a_dst_as,
             f_bytes AS a_bytes, f_packets AS a_packets
  WHERE a_what = 2;
CREATE TABLE IF NOT EXISTS {db}.flows_1h (
    time DateTime, src FixedString(16), dst FixedString(16), src_port UInt16, dst_port UInt16,
    protocol UInt8, src_as UInt32, dst_as UInt32, bytes UInt64, packets UInt64
) ENGINE = SummingMergeTree((bytes, packets)) PARTITION BY intDiv(toUInt32(time), 2592000)
  ORDER BY (time, src, dst, src_port, dst_port, protocol, src_as, dst_as);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.flows_1h_mv TO {db}.flows_1h AS
  SELECT a_time AS time, a_src AS src, a_dst AS dst, a_src_port AS src_port,
         a_dst_port AS dst_port, a_protocol AS protocol, a_src_as AS src_as, a_dst_as AS dst_as,
         a_bytes AS bytes, a_packets AS packets
  FROM {db}.flow_batches
  ARRAY JOIN f_what AS a_what, f_time AS a_time, f_exporter AS a_exporter, f_src AS a_src, f_dst AS a_dst,
             f_src_port AS a_src_port, f_dst_port AS a_dst_port, f_protocol AS a_protocol,
             f_tcp_flags AS a_tcp_flags, f_src_as AS a_src_as, f_dst_as AS a_dst_as,
             f_bytes AS a_bytes, f_packets AS a_packets
  WHERE a_what = 3;
