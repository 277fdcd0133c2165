//! The schema and its migrations, recorded in `schema_migrations`.
//!
//! Each migration runs in its own transaction together with the row that
//! records it, so a crash mid-migration leaves the previous version intact.
//!
//! Table layout (version 7), chosen for the three hot paths: ingesting an
//! interval (or an hour of intervals) of every key, reading one tenant's
//! month, ranking every tenant's month. The packed tables and their blobs
//! are described in [`super::codec`].
//! - `samples`: one row per tenant per hour, keyed `hour << 32 | tenant`,
//!   holding that hour's samples of every key of the tenant and their
//!   count. An ingest appends at the end of the tree.
//! - `samples_days`: the same for one tenant's whole UTC day, keyed
//!   `day << 32 | tenant`, written by compaction
//!   ([`crate::Store::compact`]) from the day's 24 hour rows, which it
//!   deletes: a tenant's day is in one table or the other, never both. A
//!   compacted tenant's month is 31 point reads instead of 744.
//! - `hourly`, `daily`: one row per tenant per hour (day), keyed the same
//!   way, holding totals per realm and direction, summed over bands; a
//!   tenant-day built into `hours_by_day` has no `hourly` rows (nor
//!   entries in `tenants_hourly`).
//! - `hours_by_day`: one row per tenant per UTC day, keyed `day << 32 |
//!   tenant`, holding the tenant's `hourly` rows of that day in one blob,
//!   so a tenant's month of hourly totals is 31 point reads instead of
//!   744; `hours_by_day_mark` (one row) says up to which day and tenant
//!   the rows are built. See [`super::hours`].
//! - `tenants_hourly`, `tenants_daily`: one row per hour (day) holding
//!   every tenant's totals, so ranking a month's tenants reads about 31
//!   rows instead of 310,000.
//! - `slots`: which slots the accountant observed and how well.
//! - `accounting_state`: one row, replaced with every batch.
//! - `writers`: one row per writer other than the accountant (a flow
//!   collector) that adds samples ([`crate::Store::add`]): its last
//!   sequence and its state, replaced with every batch it adds.
//! - `batches`: one row per appended batch, so that a batch is never
//!   applied twice and a crash test can count them.
//! - `frozen_periods`: closed periods' bills; triggers refuse any update
//!   or delete.
//!
//! - `quarantine`: samples a write refused (see [`crate::refusal`]), at
//!   most [`crate::QUARANTINE_CAP`]; `quarantine_counts` (one row) counts
//!   every refusal, kept or dropped.
//! - `retention_marks`: up to where retention removed raw samples, hourly
//!   and daily rollups (see [`super::marks`]).
//! - `attacks`: the guard's ended attacks, keyed by (start, target,
//!   direction), indexed by end ([`crate::attacks`]); retention leaves
//!   them (a row each, a few kB).
//!
//! Version 1 kept one row per sample (`(day, tenant, realm, dir, band,
//! slot)`) and per rollup key; migrating to version 2 converts its rows.
//! Version 3 adds `writers` and changes no existing data: the samples'
//! source bit (see [`super::codec`]) is clear in every older row, which
//! reads as the kernel. Version 4 adds `samples_days`, empty until the
//! first compaction. Version 5 adds the quarantine and the retention marks,
//! setting the marks from the data already stored. Version 6 adds
//! `hours_by_day`, empty and without a mark: compaction builds its rows
//! from the `hourly` rows already stored, oldest day first, a bounded
//! number per call like the rest of compaction. Version 7 adds the
//! latency tables and version 8 `attacks`, empty. Version 9 rewrites every
//! sample row in format 2 ([`super::series`]: a series per key, values as
//! bit-packed differences; about a quarter of format 1's size), in the
//! migration's one transaction; the file is then switched to
//! `auto_vacuum = INCREMENTAL` by a `VACUUM` (see [`super::vacuum`]), so
//! the pages compaction and retention free go back to the file system.
//! Version 10 deletes the `hourly` rows and `tenants_hourly` entries of
//! the tenant-days built into `hours_by_day`, which versions 6 to 9 kept
//! beside them: a tenant-day's hours are in one form or the other since
//! (see [`super::hours`]); the pages go back to the file system when the
//! store is opened.

use super::{convert, hours, marks};
use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

/// Rewrites the data of the previous version inside the migration's
/// transaction.
type Convert = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// One schema version: SQL, then optionally a conversion of the data in
/// Rust, then more SQL, all in one transaction.
struct Migration {
    version: i64,
    description: &'static str,
    before: &'static str,
    convert: Option<Convert>,
    after: &'static str,
}

/// Applied in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "samples, slots, rollups, batches, accounting state, frozen periods",
        before: "
        CREATE TABLE samples (
            day INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            dir INTEGER NOT NULL,
            band INTEGER NOT NULL,
            slot INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            packets INTEGER NOT NULL,
            PRIMARY KEY (day, tenant, realm, dir, band, slot)
        ) WITHOUT ROWID;
        CREATE TABLE slots (
            slot INTEGER PRIMARY KEY,
            status INTEGER NOT NULL
        );
        CREATE TABLE hourly (
            hour INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            dir INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            packets INTEGER NOT NULL,
            PRIMARY KEY (hour, tenant, realm, dir)
        ) WITHOUT ROWID;
        CREATE TABLE daily (
            day INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            dir INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            packets INTEGER NOT NULL,
            PRIMARY KEY (day, tenant, realm, dir)
        ) WITHOUT ROWID;
        CREATE TABLE batches (
            sequence INTEGER PRIMARY KEY,
            samples INTEGER NOT NULL,
            slots INTEGER NOT NULL
        );
        CREATE TABLE accounting_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            sequence INTEGER NOT NULL,
            blob BLOB NOT NULL
        );
        CREATE TABLE frozen_periods (
            label TEXT PRIMARY KEY,
            start_ms INTEGER NOT NULL,
            end_ms INTEGER NOT NULL,
            frozen_at_ms INTEGER NOT NULL,
            bill TEXT NOT NULL
        );
        CREATE TRIGGER frozen_periods_no_update BEFORE UPDATE ON frozen_periods
            BEGIN SELECT RAISE(ABORT, 'frozen periods are immutable'); END;
        CREATE TRIGGER frozen_periods_no_delete BEFORE DELETE ON frozen_periods
            BEGIN SELECT RAISE(ABORT, 'frozen periods are immutable'); END;
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 2,
        description:
            "samples and rollups packed per tenant and hour; every tenant's totals per hour and day",
        before: "
        ALTER TABLE samples RENAME TO samples_v1;
        ALTER TABLE hourly RENAME TO hourly_v1;
        ALTER TABLE daily RENAME TO daily_v1;
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,
            samples BLOB NOT NULL
        );
        CREATE TABLE hourly (id INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE daily (id INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE tenants_hourly (hour INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE tenants_daily (day INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        ",
        convert: Some(convert::from_v1),
        after: "
        DROP TABLE samples_v1;
        DROP TABLE hourly_v1;
        DROP TABLE daily_v1;
        ",
    },
    Migration {
        version: 3,
        description: "writers other than the accountant: their last sequence and state",
        before: "
        CREATE TABLE writers (
            writer TEXT PRIMARY KEY,
            sequence INTEGER NOT NULL,
            blob BLOB NOT NULL
        );
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 4,
        description: "samples compacted to one row per tenant per UTC day",
        before: "
        CREATE TABLE samples_days (
            id INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,
            samples BLOB NOT NULL
        );
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 5,
        description: "the quarantine of refused samples; retention marks",
        before: "
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            writer TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            batch_index INTEGER NOT NULL,
            slot INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            direction INTEGER NOT NULL,
            band INTEGER NOT NULL,
            source INTEGER NOT NULL,
            bytes TEXT NOT NULL,
            packets TEXT NOT NULL,
            reason TEXT NOT NULL,
            sum_bytes TEXT,
            sum_packets TEXT
        );
        CREATE TABLE quarantine_counts (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            refused INTEGER NOT NULL,
            dropped INTEGER NOT NULL
        );
        INSERT INTO quarantine_counts (id, refused, dropped) VALUES (1, 0, 0);
        CREATE TABLE retention_marks (
            name TEXT PRIMARY KEY,
            before INTEGER NOT NULL
        );
        ",
        convert: Some(marks::initial),
        after: "",
    },
    Migration {
        version: 6,
        description: "a tenant's hourly totals of a UTC day in one row, and how far they are built",
        before: "
        CREATE TABLE hours_by_day (id INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE hours_by_day_mark (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            before INTEGER NOT NULL
        );
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 7,
        description: "latency minutes: TCP RTT per tenant and realm, probes, busy queues",
        // Durations in whole microseconds, 0 when absent (see
        // crate::latency). No unique key: a minute split by a daemon
        // restart is two rows, both kept.
        before: "
        CREATE TABLE latency_rtt (
            minute INTEGER NOT NULL, tenant INTEGER NOT NULL, realm INTEGER NOT NULL,
            up_samples INTEGER NOT NULL, up_min_us INTEGER NOT NULL, up_p50_us INTEGER NOT NULL,
            up_p95_us INTEGER NOT NULL, up_p99_us INTEGER NOT NULL, up_max_us INTEGER NOT NULL,
            down_samples INTEGER NOT NULL, down_min_us INTEGER NOT NULL,
            down_p50_us INTEGER NOT NULL, down_p95_us INTEGER NOT NULL,
            down_p99_us INTEGER NOT NULL, down_max_us INTEGER NOT NULL,
            retransmits_up INTEGER NOT NULL, retransmits_down INTEGER NOT NULL
        );
        CREATE INDEX latency_rtt_minute ON latency_rtt (minute);
        CREATE INDEX latency_rtt_tenant ON latency_rtt (tenant, minute);
        CREATE TABLE latency_probes (
            minute INTEGER NOT NULL, probe TEXT NOT NULL, sent INTEGER NOT NULL,
            lost INTEGER NOT NULL, p50_us INTEGER NOT NULL, max_us INTEGER NOT NULL,
            jitter_us INTEGER NOT NULL
        );
        CREATE INDEX latency_probes_minute ON latency_probes (minute);
        CREATE TABLE latency_queues (
            minute INTEGER NOT NULL, class TEXT NOT NULL, tenant INTEGER NOT NULL,
            label TEXT NOT NULL, max_delay_us INTEGER NOT NULL, drops INTEGER NOT NULL,
            overlimits INTEGER NOT NULL, at_ceil_us INTEGER NOT NULL
        );
        CREATE INDEX latency_queues_minute ON latency_queues (minute);
        CREATE INDEX latency_queues_tenant ON latency_queues (tenant, minute);
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 8,
        description: "the guard's ended attacks",
        before: "
        CREATE TABLE attacks (
            started_ms INTEGER NOT NULL,
            target TEXT NOT NULL,
            direction TEXT NOT NULL,
            ended_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,
            peak_pps INTEGER NOT NULL,
            peak_bps INTEGER NOT NULL,
            rungs TEXT NOT NULL,
            sources TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (started_ms, target, direction)
        ) WITHOUT ROWID;
        CREATE INDEX attacks_by_end ON attacks (ended_ms);
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 9,
        description: "samples as per-key series, differences bit-packed (format 2)",
        // The file is then switched to auto_vacuum = INCREMENTAL, which
        // needs a VACUUM outside any transaction: see
        // `super::vacuum::incremental`.
        before: "",
        convert: Some(convert::to_series),
        after: "",
    },
    Migration {
        version: 10,
        description: "a built tenant-day's hourly totals in hours_by_day only, not in hourly or tenants_hourly",
        before: "",
        convert: Some(|tx| hours::remove_built_hourly(tx).map(|_| ())),
        after: "",
    },
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The database's schema version (0 for a new database).
pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            description TEXT NOT NULL
        );",
    )
    .map_err(StoreError::db("create schema_migrations"))?;
    conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .optional()
    .map_err(StoreError::db("read the schema version"))
    .map(|v| v.flatten().unwrap_or(0))
}

/// Brings the database to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the database to version `target` (tests build old databases
/// with it).
pub(super) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target);
    for m in pending {
        let context = format!(
            "migrate the history database to version {} ({})",
            m.version, m.description
        );
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::db(context.clone()))?;
        // Another connection may have migrated while this one waited for
        // the write lock (readers and the writer opening a new database
        // at once): what is done is not done again.
        if version(&tx)? >= m.version {
            continue;
        }
        tx.execute_batch(m.before)
            .map_err(StoreError::db(context.clone()))?;
        if let Some(convert) = m.convert {
            convert(&tx)?;
        }
        tx.execute_batch(m.after)
            .map_err(StoreError::db(context.clone()))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES (?1, ?2)",
            (m.version, m.description),
        )
        .map_err(StoreError::db(context.clone()))?;
        tx.commit().map_err(StoreError::db(context))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::codec::{self, Span};
    use super::super::{write, SqliteOptions, SqliteStore};
    use super::*;
    use crate::store::*;
    use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
    use net_types::{RealmId, TenantId};

    fn kernel(tenant: u32) -> UsageKey {
        UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(1),
            direction: Direction::Down,
            band: Band::Normal,
            source: Source::Kernel,
        }
    }

    #[test]
    fn connections_opening_a_new_database_at_once_migrate_it_once() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("h.sqlite");
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        SqliteStore::open(&path, &SqliteOptions { cache_mib: 1 }).map(|_| ())
                    })
                })
                .collect();
            for t in threads {
                let opened = t.join().unwrap();
                assert!(opened.is_ok(), "round {round}: {opened:?}");
            }
            let store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 1 }).unwrap();
            let versions: i64 = store
                .conn
                .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
                .unwrap();
            assert_eq!(versions, SCHEMA_VERSION, "round {round}");
        }
    }

    #[test]
    fn a_version_2_database_keeps_its_data_and_takes_adds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.sqlite");
        let sample = |slot, tenant, bytes| Sample {
            slot: Slot(slot),
            key: kernel(tenant),
            bytes,
            packets: 1,
        };
        let old = vec![sample(300, 7, 1_000), sample(300, 9, 20), sample(301, 7, 5)];
        let coverage = [300, 301].map(|s| SlotCoverage {
            slot: Slot(s),
            status: SlotStatus::Measured,
        });
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate_to(&mut conn, 2).unwrap();
            // This build's append writes the version 2 tables as the
            // version 2 build did; it also looks for compacted days and
            // built hours, so their tables exist (empty) for the append
            // only.
            conn.execute_batch(
                "CREATE TABLE samples_days (id INTEGER PRIMARY KEY);
                 CREATE TABLE hours_by_day_mark (id INTEGER PRIMARY KEY, before INTEGER);",
            )
            .unwrap();
            write::append(
                &mut conn,
                &Batch {
                    sequence: 41,
                    samples: &old,
                    coverage: &coverage,
                    state: b"v2 state",
                },
            )
            .unwrap();
            conn.execute_batch("DROP TABLE samples_days; DROP TABLE hours_by_day_mark")
                .unwrap();
            assert_eq!(version(&conn).unwrap(), 2);
        }
        let mut store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let all = SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(1_000),
        };
        // Rows written before sources read as the kernel's.
        assert_eq!(store.samples(&all).unwrap(), old);
        assert_eq!(store.coverage(Slot(0), Slot(1_000)).unwrap(), coverage);
        let st = store.last_state().unwrap().unwrap();
        assert_eq!((st.sequence, st.blob.as_slice()), (41, &b"v2 state"[..]));
        assert_eq!(store.batch_sequences().unwrap(), vec![41]);
        let sums: Vec<u128> = store.rollup_bytes().unwrap().iter().map(|r| r.1).collect();
        assert_eq!(sums, vec![1_025; 4]);
        // The new table works, and the accountant goes on from 41.
        let flow = Sample {
            key: UsageKey {
                source: Source::Flow,
                ..kernel(7)
            },
            ..sample(300, 7, 75)
        };
        store
            .add(&AddBatch {
                writer: "flow",
                sequence: 1,
                samples: &[flow],
                coverage: &[],
                state: b"f",
            })
            .unwrap();
        store
            .append(&Batch {
                sequence: 42,
                samples: &[sample(302, 7, 1)],
                coverage: &[],
                state: b"v3 state",
            })
            .unwrap();
        let got = store.samples(&all).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[1], flow);
        let sums: Vec<u128> = store.rollup_bytes().unwrap().iter().map(|r| r.1).collect();
        assert_eq!(sums, vec![1_101; 4]);
    }

    #[test]
    fn a_version_4_database_gets_marks_where_its_data_begins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.sqlite");
        let sample = |slot, tenant| Sample {
            slot: Slot(slot),
            key: kernel(tenant),
            bytes: 10,
            packets: 1,
        };
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate_to(&mut conn, 4).unwrap();
            // Hours 100 to 102 of two tenants; then retention (as a version
            // 4 build did it) removes hour 100's samples and slots 1212
            // and 1213 of hour 101, keeping their rollups.
            let samples: Vec<Sample> = (1200..1236)
                .flat_map(|s| [sample(s, 1), sample(s, 2)])
                .collect();
            let batch = Batch {
                sequence: 1,
                samples: &samples,
                coverage: &[],
                state: b"",
            };
            // This build's append looks for built hours (version 6).
            conn.execute_batch("CREATE TABLE hours_by_day_mark (id INTEGER PRIMARY KEY, before)")
                .unwrap();
            write::append(&mut conn, &batch).unwrap();
            conn.execute_batch("DROP TABLE hours_by_day_mark").unwrap();
            conn.execute("DELETE FROM samples WHERE id < ?1", [101i64 << 32])
                .unwrap();
            let mut blob = Vec::new();
            let kept: Vec<Sample> = (1214..1224).map(|s| sample(s, 1)).collect();
            super::super::codec::encode_samples(
                super::super::codec::Span::Hour,
                101,
                &kept,
                &mut blob,
            );
            conn.execute(
                "UPDATE samples SET samples = ?1 WHERE id = ?2",
                rusqlite::params![blob, 101i64 << 32 | 1],
            )
            .unwrap();
            conn.execute("DELETE FROM samples WHERE id = ?1", [101i64 << 32 | 2])
                .unwrap();
        }
        let store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        let marks = super::super::marks::read(store.connection()).unwrap();
        assert_eq!(
            marks,
            super::super::marks::Marks {
                raw: Some(Slot(1214)),
                hourly: Some(100),
                daily: Some(4),
            }
        );
        let q = store.quarantined(10).unwrap();
        assert_eq!((q.refused, q.dropped, q.held), (0, 0, 0));
    }

    /// Three days of 12 tenants with 2 to 8 keys each (one with a flow
    /// key), some with every third slot absent, values from 0 to near
    /// 2^64, in hourly batches.
    fn three_days() -> (Vec<Batch<'static>>, jiff::Timestamp) {
        let day0 = 20_400i64;
        let mut batches = Vec::new();
        for hour in 0..72i64 {
            let mut samples = Vec::new();
            let mut coverage = Vec::new();
            for s in 0..12 {
                let slot = (day0 * 24 + hour) * 12 + s;
                coverage.push(SlotCoverage {
                    slot: Slot(slot),
                    status: SlotStatus::Measured,
                });
                for t in 0..12u32 {
                    if t % 3 == 0 && slot % 3 == 0 {
                        continue;
                    }
                    for realm in 1..=(1 + t as u16 % 4) {
                        for direction in Direction::BOTH {
                            let mut key = kernel(t);
                            key.realm = RealmId(realm);
                            key.direction = direction;
                            key.band = Band::Whole;
                            let h = (slot as u64 ^ u64::from(t) << 40 ^ u64::from(realm) << 50)
                                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
                            let bytes = match t {
                                11 if s == 5 => 40_000_000_000 + h % 1000,
                                10 => 64 + h % 100,
                                _ => (1 + u64::from(t)) * 1_000_000 + h % 700_000,
                            };
                            samples.push(Sample {
                                slot: Slot(slot),
                                key,
                                bytes,
                                packets: bytes / 900 + h % 50,
                            });
                            if t == 3 {
                                key.source = Source::Flow;
                                samples.push(Sample {
                                    key,
                                    bytes: bytes / 2,
                                    ..samples[samples.len() - 1]
                                });
                            }
                        }
                    }
                }
            }
            samples.sort_by_key(|s| (s.slot, s.key));
            batches.push(Batch {
                sequence: hour as u64 + 1,
                samples: Vec::leak(samples),
                coverage: Vec::leak(coverage),
                state: b"state",
            });
        }
        // Days 0 and 1 old enough to compact, day 2 left in hour rows.
        let now = jiff::Timestamp::from_second((day0 + 3) * 86_400).unwrap();
        (batches, now)
    }

    /// The bytes of the sample tables' rows (not their pages: the page
    /// size changes with the version).
    fn sample_bytes(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT SUM(payload) FROM dbstat WHERE name IN ('samples', 'samples_days')",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Every figure a store answers about [`three_days`], as text.
    fn figures(store: &SqliteStore) -> String {
        use std::fmt::Write;
        let day0 = 20_400i64;
        let mut out = String::new();
        let all = SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(i64::MAX),
        };
        let samples = store.samples(&all).unwrap();
        writeln!(out, "{} samples: {samples:?}", samples.len()).unwrap();
        let (from, to) = (Slot(day0 * 288), Slot((day0 + 3) * 288));
        writeln!(out, "{:?}", store.coverage(from, to).unwrap()).unwrap();
        let (start, end) = (from.start(), to.start());
        for zone in ["UTC", "Asia/Kathmandu"] {
            let q = UsageQuery {
                tenants: Tenants::All,
                from: start,
                to: end,
                bucket: Bucket::Day,
                zone: jiff::tz::TimeZone::get(zone).unwrap(),
            };
            writeln!(out, "{:?}", store.usage(&q).unwrap()).unwrap();
        }
        let top = TopQuery {
            from: start,
            to: end,
            by: RankBy::Total,
            limit: 5,
        };
        writeln!(out, "{:?}", store.top_tenants(&top).unwrap()).unwrap();
        // Whole hours and ragged ones of the built days, and of day 2.
        for (limit, from, to) in [
            (5, 5 * 60 + 45, 40 * 60 + 15),
            (100, 18 * 60 + 15, 65 * 60 + 5),
        ] {
            let top = TopQuery {
                from: start + jiff::SignedDuration::from_mins(from),
                to: start + jiff::SignedDuration::from_mins(to),
                by: RankBy::Total,
                limit,
            };
            writeln!(out, "{:?}", store.top_tenants(&top).unwrap()).unwrap();
        }
        // Two tenants' local days: hours of built days read per tenant.
        let q = UsageQuery {
            tenants: Tenants::Only(vec![TenantId(3), TenantId(7)]),
            from: start,
            to: end,
            bucket: Bucket::Day,
            zone: jiff::tz::TimeZone::get("Asia/Kathmandu").unwrap(),
        };
        writeln!(out, "{:?}", store.usage(&q).unwrap()).unwrap();
        for t in 0..12 {
            let hours = day0 * 24..(day0 + 3) * 24;
            writeln!(
                out,
                "{:?}",
                store.hourly_totals(TenantId(t), hours).unwrap()
            )
            .unwrap();
        }
        writeln!(out, "{:?}", store.rollup_bytes().unwrap()).unwrap();
        writeln!(out, "{:?}", store.batch_sequences().unwrap()).unwrap();
        out
    }

    #[test]
    fn a_version_8_database_converts_in_place_and_answers_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (batches, now) = three_days();
        // The same data written by this build from the start.
        let mut fresh = SqliteStore::open(
            &dir.path().join("new.sqlite"),
            &SqliteOptions { cache_mib: 4 },
        )
        .unwrap();
        for b in &batches {
            fresh.append(b).unwrap();
        }
        assert!(fresh.compact(now, 10_000).unwrap().done);
        let expected = figures(&fresh);
        let input: Vec<Sample> = batches
            .iter()
            .flat_map(|b| b.samples.iter().copied())
            .collect();
        let stored = fresh
            .samples(&SampleQuery {
                tenants: Tenants::All,
                from: Slot(0),
                to: Slot(i64::MAX),
            })
            .unwrap();
        assert!(
            stored == input,
            "{} samples stored of {}",
            stored.len(),
            input.len()
        );
        // A version 8 file as version 8 builds left it: format 1 rows,
        // auto_vacuum off.
        let path = dir.path().join("v8.sqlite");
        let samples_before = {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL")
                .unwrap();
            migrate_to(&mut conn, 8).unwrap();
            for b in &batches {
                write::append(&mut conn, b).unwrap();
            }
            assert!(
                super::super::compact::compact(&mut conn, now, 10_000)
                    .unwrap()
                    .done
            );
            let mut rows = 0;
            for span in [Span::Hour, Span::Day] {
                let table = span.table();
                let old: Vec<(i64, Vec<u8>)> = conn
                    .prepare(&format!("SELECT id, samples FROM {table}"))
                    .unwrap()
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                for (id, blob) in old {
                    let (time, tenant) = codec::split_row_id(id);
                    let mut samples = Vec::new();
                    let all = (Slot(i64::MIN), Slot(i64::MAX));
                    codec::decode_samples((span, time), TenantId(tenant), &blob, all, &mut samples)
                        .unwrap();
                    let mut v1 = Vec::new();
                    codec::encode_samples_v1(span, time, &samples, &mut v1);
                    conn.execute(
                        &format!("UPDATE {table} SET samples = ?2 WHERE id = ?1"),
                        rusqlite::params![id, v1],
                    )
                    .unwrap();
                    rows += 1;
                }
            }
            // 12 tenants × (2 compacted days + 24 hours).
            assert_eq!(rows, 12 * 26);
            let old: Vec<(i64, Vec<u8>)> = conn
                .prepare("SELECT id, totals FROM hours_by_day")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(old.len(), 12 * 2);
            for (id, blob) in old {
                let mut totals = Vec::new();
                codec::decode_day_hours(&blob, "t", 0..24, &mut totals).unwrap();
                let mut v1 = Vec::new();
                codec::encode_day_hours_v1(&totals, &mut v1);
                conn.execute(
                    "UPDATE hours_by_day SET totals = ?2 WHERE id = ?1",
                    rusqlite::params![id, v1],
                )
                .unwrap();
            }
            conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
            let auto: i64 = conn
                .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
                .unwrap();
            assert_eq!((version(&conn).unwrap(), auto), (8, 0));
            sample_bytes(&conn)
        };
        let store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(figures(&store), expected);
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
        let conn = store.connection();
        let formats: Vec<(i64, i64)> = conn
            .prepare(
                "SELECT substr(samples, 1, 1) = x'02', COUNT(*) FROM samples GROUP BY 1
                 UNION ALL
                 SELECT substr(samples, 1, 1) = x'02', COUNT(*) FROM samples_days GROUP BY 1
                 UNION ALL
                 SELECT substr(totals, 1, 1) = x'02', COUNT(*) FROM hours_by_day GROUP BY 1",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            formats,
            [(1, 12 * 24), (1, 12 * 2), (1, 12 * 2)],
            "every row in format 2"
        );
        let auto: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((auto, mode.as_str()), (2, "wal"));
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        // The whole file is not compared: the same open moved it to 64 kB
        // pages, and each of its 30-odd tables and indexes takes at least
        // one (2 MB for this small store). The samples' rows: 20 random
        // bits in every value keep format 2 at about half.
        let samples_after = sample_bytes(conn);
        assert!(
            samples_after * 3 < samples_before * 2,
            "{samples_before} → {samples_after}"
        );
        drop(store);
        // Opened again: nothing left to do, the same answers.
        let again = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(figures(&again), expected);
    }

    /// `hourly` rows in the file, how many of them are of the built days
    /// (the first two of [`three_days`]), and `tenants_hourly` rows.
    fn hourly_rows(conn: &Connection) -> (i64, i64, i64) {
        let day2 = codec::first_row_id((20_400 + 2) * 24);
        conn.query_row(
            "SELECT COUNT(*), IFNULL(SUM(id < ?1), 0), (SELECT COUNT(*) FROM tenants_hourly)
             FROM hourly",
            [day2],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_version_9_database_loses_built_days_hourly_rollups_and_answers_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (batches, now) = three_days();
        let mut fresh = SqliteStore::open(
            &dir.path().join("new.sqlite"),
            &SqliteOptions { cache_mib: 4 },
        )
        .unwrap();
        for b in &batches {
            fresh.append(b).unwrap();
        }
        assert!(fresh.compact(now, 10_000).unwrap().done);
        let expected = figures(&fresh);
        // This build keeps no `hourly` row (nor `tenants_hourly` entry) of
        // a built day: 12 tenants × the 24 hours of day 2.
        assert_eq!(hourly_rows(fresh.connection()), (12 * 24, 0, 24));
        // A version 9 file as version 9 builds left it: compacted, every
        // `hourly` row and `tenants_hourly` entry kept beside the built
        // days' `hours_by_day` rows.
        let path = dir.path().join("v9.sqlite");
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL")
                .unwrap();
            migrate_to(&mut conn, 9).unwrap();
            for b in &batches {
                write::append(&mut conn, b).unwrap();
            }
            conn.execute_batch(
                "CREATE TABLE hourly_kept AS SELECT id, totals FROM hourly;
                 CREATE TABLE tenants_hourly_kept AS SELECT hour, totals FROM tenants_hourly;",
            )
            .unwrap();
            let compacted = super::super::compact::compact(&mut conn, now, 10_000).unwrap();
            assert!(compacted.done && compacted.hour_days == 24);
            conn.execute_batch(
                "INSERT INTO hourly SELECT id, totals FROM hourly_kept
                     WHERE id NOT IN (SELECT id FROM hourly);
                 DROP TABLE hourly_kept;
                 DELETE FROM tenants_hourly;
                 INSERT INTO tenants_hourly SELECT hour, totals FROM tenants_hourly_kept;
                 DROP TABLE tenants_hourly_kept;
                 PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .unwrap();
            assert_eq!(version(&conn).unwrap(), 9);
            assert_eq!(hourly_rows(&conn), (12 * 72, 12 * 48, 72));
        }
        let store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(hourly_rows(store.connection()), (12 * 24, 0, 24));
        // Moved to the current page size by the same open.
        let page: i64 = store
            .connection()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page, i64::from(super::super::PAGE_SIZE));
        assert_eq!(super::super::PAGE_SIZE, 65536);
        assert_eq!(figures(&store), expected);
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
        let free: i64 = store
            .connection()
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        assert_eq!(free, 0, "the deleted rows' pages are given back");
        drop(store);
        // Opened again: nothing left to do, the same answers.
        let again = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(figures(&again), expected);
    }

    #[test]
    fn the_vacuum_waits_for_the_only_connection_and_compaction_gives_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8.sqlite");
        let (batches, now) = three_days();
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL")
                .unwrap();
            migrate_to(&mut conn, 8).unwrap();
            for b in &batches {
                write::append(&mut conn, b).unwrap();
            }
        }
        // Another connection open: migrated, but not vacuumed yet.
        let other = Connection::open(&path).unwrap();
        other
            .query_row("SELECT COUNT(*) FROM samples", [], |r| r.get::<_, i64>(0))
            .unwrap();
        let store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!super::super::vacuum::is_incremental(store.connection()).unwrap());
        drop(store);
        drop(other);
        let mut store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert!(super::super::vacuum::is_incremental(store.connection()).unwrap());
        // Compaction deletes two days of hour rows; their pages leave the
        // file.
        store.compact(now, 10_000).unwrap();
        let free: i64 = store
            .connection()
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        assert_eq!(free, 0);
    }
}
