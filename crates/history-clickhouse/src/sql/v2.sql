-- Schema 2: latency minutes (history::latency). One table for the three kinds of row, so that a
-- close is one INSERT (all of it or none of it): kind 0 TCP RTT per tenant × realm (figures: each
-- half's samples, min, p50, p95, p99, max in µs, then the retransmissions up and down), 1 a probe
-- (name; figures: sent, lost, p50, max, jitter), 2 a busy queue (name the class, label; figures:
-- max delay, drops, overlimits, time at ceil). tenant −1: none. No unique key: a minute split by a
-- daemon restart is two rows, both kept. latency_marks: the raw retention's cut, which every read
-- honours at once (the DELETE behind it is a mutation, asynchronous on 18.16).
CREATE TABLE IF NOT EXISTS {db}.latency (
    minute Int64, kind UInt8, tenant Int64, realm UInt16, name String, label String,
    figures Array(Int64)
) ENGINE = MergeTree PARTITION BY toYYYYMM(toDateTime(minute * 60)) ORDER BY (minute, kind, tenant);
CREATE TABLE IF NOT EXISTS {db}.latency_marks (before Int64) ENGINE = MergeTree ORDER BY before;
