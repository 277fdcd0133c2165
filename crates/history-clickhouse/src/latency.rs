//! Latency minutes on ClickHouse: one `latency` table for the three kinds
//! of row (schema 2, `sql/v2.sql`), so a close is one `INSERT`; the raw
//! retention's cut in `latency_marks`, honoured by every read at once.

use crate::client::{truncated, Client};
use crate::rowbinary::{Reader, Writer};
use history::latency::{self as lat, LatencyQuery, LatencyReport, RTT_FIGURES};
use history::StoreError;
use latency::Minutes;

const RTT: u8 = 0;
const PROBE: u8 = 1;
const QUEUE: u8 = 2;

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Stores the rows of `m` that pass [`lat::check`] in one insert.
pub fn append(client: &Client, m: &Minutes) -> Result<LatencyReport, StoreError> {
    let (ok, refused) = lat::check(m);
    let mut w = Writer::default();
    let row =
        |w: &mut Writer, minute, kind, tenant: i64, realm, name: &str, label: &str, f: &[i64]| {
            w.i64(minute);
            w.u8(kind);
            w.i64(tenant);
            w.u16(realm);
            w.bytes(name.as_bytes());
            w.bytes(label.as_bytes());
            w.array(f, |w, v| w.i64(*v));
        };
    for r in &ok.rtt {
        let f = lat::rtt_columns(r);
        row(&mut w, r.minute, RTT, r.tenant.into(), r.realm, "", "", &f);
    }
    for p in &ok.probes {
        let c = lat::probe_columns(p);
        let f = [p.sent.into(), p.lost.into(), c[0], c[1], c[2]];
        row(&mut w, p.minute, PROBE, -1, 0, &p.probe, "", &f);
    }
    for q in &ok.queues {
        let f = [
            lat::micros(q.max_delay),
            count(q.drops),
            count(q.overlimits),
            lat::micros(q.at_ceil),
        ];
        let tenant = q.tenant.map_or(-1, i64::from);
        row(&mut w, q.minute, QUEUE, tenant, 0, &q.class, &q.label, &f);
    }
    if !ok.is_empty() {
        // A fresh id per close: nothing here is retried under the same one.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("{}-latency-{nanos}", client.db);
        client.insert("latency", &w.buf, &id, "store latency minutes")?;
    }
    Ok(LatencyReport {
        stored: ok.len() as u64,
        refused,
    })
}

/// The rows in the query's range, earliest first.
pub fn read(client: &Client, q: &LatencyQuery) -> Result<Minutes, StoreError> {
    let db = &client.db;
    let tenant = match q.tenant {
        Some(t) => format!("AND tenant = {t} AND kind IN ({RTT}, {QUEUE})"),
        None => String::new(),
    };
    let sql = format!(
        "SELECT minute, kind, tenant, realm, name, label, figures FROM {db}.latency
         WHERE minute >= greatest({from}, (SELECT max(before) FROM {db}.latency_marks))
           AND minute < {to} {tenant}
         ORDER BY kind, minute, tenant, realm, name LIMIT {limit} BY kind FORMAT RowBinary",
        from = q.from,
        to = q.to,
        limit = q.limit,
    );
    let out = client.query(&sql, "read latency minutes")?;
    let mut rd = Reader::new(&out);
    let mut m = Minutes::default();
    let bad = |what: &str| StoreError::Corrupt {
        place: "latency".into(),
        problem: what.into(),
    };
    while !rd.done() {
        let t = truncated("latency");
        let minute = rd.i64().map_err(t)?;
        let kind = rd.u8().map_err(truncated("latency"))?;
        let tenant = rd.i64().map_err(truncated("latency"))?;
        let realm = rd.u16().map_err(truncated("latency"))?;
        let name = String::from_utf8_lossy(rd.bytes().map_err(truncated("latency"))?).into_owned();
        let label = String::from_utf8_lossy(rd.bytes().map_err(truncated("latency"))?).into_owned();
        let n = rd.len().map_err(truncated("latency"))?;
        let mut f = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            f.push(rd.i64().map_err(truncated("latency"))?);
        }
        match (kind, f.len()) {
            (RTT, RTT_FIGURES) => {
                let tenant =
                    u32::try_from(tenant).map_err(|_| bad("an RTT row without a tenant"))?;
                let mut c = [0; RTT_FIGURES];
                c.copy_from_slice(&f);
                m.rtt.push(lat::rtt_row(minute, tenant, realm, &c)?);
            }
            (PROBE, 5) => {
                let n = |v: i64| u32::try_from(v).map_err(|_| bad("a probe count"));
                m.probes.push(lat::probe_row(
                    minute,
                    name,
                    n(f[0])?,
                    n(f[1])?,
                    [f[2], f[3], f[4]],
                )?);
            }
            (QUEUE, 4) => m.queues.push(lat::queue_row(
                minute, name, tenant, label, f[0], f[1], f[2], f[3],
            )?),
            (k, n) => return Err(bad(&format!("a row of kind {k} with {n} figures"))),
        }
    }
    lat::order(&mut m);
    Ok(m)
}

/// Forgets the minutes before `minute`: the mark first (reads honour it at
/// once), then a mutation removes the rows. Returns how many go.
pub fn forget_before(client: &Client, minute: i64) -> Result<u64, StoreError> {
    let db = &client.db;
    let sql = format!(
        "SELECT count() FROM {db}.latency WHERE minute < {minute}
           AND minute >= (SELECT max(before) FROM {db}.latency_marks) FORMAT RowBinary"
    );
    let out = client.query(&sql, "retention: count latency minutes")?;
    let n = Reader::new(&out).u64().map_err(truncated("retention"))?;
    if n == 0 {
        return Ok(0);
    }
    client.query(
        &format!("INSERT INTO {db}.latency_marks VALUES ({minute})"),
        "retention: mark latency minutes",
    )?;
    client.query(
        &format!("ALTER TABLE {db}.latency DELETE WHERE minute < {minute}"),
        "retention: delete latency minutes",
    )?;
    Ok(n)
}
