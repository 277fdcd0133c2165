//! `tollgate usage` (day and period totals per tenant, realm and
//! direction, like vnStat) and `tollgate realms` (per-realm totals, like
//! rtacct, IPv6 included and with no limit on the number of realms).
//!
//! Both read the history's daily rollups and add the traffic recorded in
//! slots that have not closed yet (see [`crate::ledger`]), so they show
//! everything up to the daemon's last read. Days are local days in the
//! billing time zone.

use crate::ledger::{self, human_bytes, human_count, StateArgs};
use crate::settings::Settings;
use accounting::Direction;
use billing::Period;
use clap::Args;
use history::{Bucket, Store, Tenants, UsageQuery};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use policy::{Loaded, Policy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Which stretch of time: a billing period, or from a date until now.
#[derive(Args, Debug, Clone)]
pub struct RangeArgs {
    /// A billing period, `YYYY-MM` [default: the current one].
    #[arg(long, value_name = "YYYY-MM", conflicts_with = "since")]
    pub period: Option<String>,
    /// From this local date (`YYYY-MM-DD`) until now.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
}

/// `tollgate usage`'s options.
#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only this tenant (id or name).
    pub tenant: Option<String>,
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate realms`' options.
#[derive(Args, Debug)]
pub struct RealmsArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A resolved stretch of time.
#[derive(Clone, Debug, Serialize)]
pub struct Range {
    /// `2026-11`, or `since 2026-11-03`.
    pub label: String,
    /// The first instant.
    pub from: Timestamp,
    /// The end (exclusive).
    pub to: Timestamp,
    /// The zone days are counted in.
    pub zone: String,
}

/// Resolves `--period` / `--since` against the billing cycle.
pub fn range(settings: &Settings, args: &RangeArgs, now: Timestamp) -> Result<Range, String> {
    let zone = settings.cycle.zone_name().to_string();
    let cycle_err = |e: billing::BillingError| format!("{e}");
    if let Some(since) = &args.since {
        let date: Date = since
            .parse()
            .map_err(|_| format!("--since `{since}` is not a date; write YYYY-MM-DD"))?;
        let tz = TimeZone::get(&zone).map_err(|e| e.to_string())?;
        let from = date
            .to_zoned(tz)
            .map_err(|e| format!("--since {since}: {e}"))?
            .timestamp();
        return Ok(Range {
            label: format!("since {since}"),
            from,
            to: now,
            zone,
        });
    }
    let period: Period = match &args.period {
        Some(p) => settings.cycle.period_labelled(p).map_err(cycle_err)?,
        None => settings.cycle.period_containing(now).map_err(cycle_err)?,
    };
    Ok(Range {
        label: period.label,
        from: period.start,
        to: period.end,
        zone,
    })
}

/// Bytes and packets in both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Toward the tenant.
    pub down_bytes: u64,
    /// Toward the tenant.
    pub down_packets: u64,
    /// From the tenant.
    pub up_bytes: u64,
    /// From the tenant.
    pub up_packets: u64,
}

impl Traffic {
    fn add(&mut self, dir: Direction, bytes: u64, packets: u64) {
        let (b, p) = match dir {
            Direction::Down => (&mut self.down_bytes, &mut self.down_packets),
            Direction::Up => (&mut self.up_bytes, &mut self.up_packets),
        };
        *b = b.saturating_add(bytes);
        *p = p.saturating_add(packets);
    }

    fn plus(mut self, o: &Traffic) -> Traffic {
        self.add(Direction::Down, o.down_bytes, o.down_packets);
        self.add(Direction::Up, o.up_bytes, o.up_packets);
        self
    }
}

/// Totals per tenant × realm × local day over a range, closed samples and
/// open ones together.
pub fn totals(
    store: &dyn Store,
    range: &Range,
    tenants: Tenants,
) -> Result<BTreeMap<(u32, u16, Date), Traffic>, String> {
    let zone = TimeZone::get(&range.zone).map_err(|e| e.to_string())?;
    // The store rounds `to` down to the hour; round up so that the
    // current hour is in.
    let to = range
        .to
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap_or(range.to);
    let rows = store
        .usage(&UsageQuery {
            tenants: tenants.clone(),
            from: range.from,
            to,
            bucket: Bucket::Day,
            zone: zone.clone(),
        })
        .map_err(|e| format!("cannot read usage totals: {e}"))?;
    let mut out: BTreeMap<(u32, u16, Date), Traffic> = BTreeMap::new();
    for r in rows {
        out.entry((r.tenant.0, r.realm.0, r.bucket))
            .or_default()
            .add(r.direction, r.bytes, r.packets);
    }
    for o in ledger::open_samples(store)? {
        let start = o.slot.start();
        let wanted = match &tenants {
            Tenants::All => true,
            Tenants::Only(list) => list.contains(&o.key.tenant),
        };
        if !wanted || start < range.from || start >= range.to {
            continue;
        }
        let day = start.to_zoned(zone.clone()).date();
        out.entry((o.key.tenant.0, o.key.realm.0, day))
            .or_default()
            .add(o.key.direction, o.usage.bytes, o.usage.packets);
    }
    Ok(out)
}

/// The policy, if it can be read, for names and for its `[billing]`;
/// usage works without it (the settings file's billing applies then).
pub fn policy_for_names(path: &Path) -> Option<Loaded> {
    crate::files::load_policy(path).ok()
}

/// A realm's name, or its number.
pub fn realm_name(policy: Option<&Policy>, realm: u16) -> String {
    policy
        .and_then(|p| p.realms.by_id(RealmId(realm)))
        .map_or_else(|| format!("realm {realm}"), |r| r.name.clone())
}

/// A tenant's name, or its number.
pub fn tenant_name(policy: Option<&Policy>, tenant: u32) -> String {
    policy
        .and_then(|p| p.tenant(TenantId(tenant)))
        .map_or_else(|| format!("tenant {tenant}"), |t| t.name.clone())
}

/// Finds a tenant by id or name.
pub fn tenant_id(policy: Option<&Policy>, who: &str) -> Result<u32, String> {
    if let Some(t) = policy.and_then(|p| p.tenants.iter().find(|t| t.name == who)) {
        return Ok(t.id.0);
    }
    who.parse().map_err(|_| match policy {
        Some(_) => format!("no tenant has the id or name `{who}`\n  hint: `tollgate explain` and `tollgate status` list them"),
        None => format!("`{who}` is not a tenant id, and without a readable policy (-c) names cannot be looked up"),
    })
}

/// `tollgate usage`.
pub fn usage(path: &Path, args: &UsageArgs) -> Result<String, String> {
    let loaded = policy_for_names(path);
    let settings = args.state.settings(loaded.as_ref())?;
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let range = range(&settings, &args.range, Timestamp::now())?;
    let tenants = match &args.tenant {
        Some(who) => Tenants::Only(vec![TenantId(tenant_id(p, who)?)]),
        None => Tenants::All,
    };
    let store = ledger::open_for_reading(&args.state.state_dir)?;
    let t = totals(&store, &range, tenants)?;
    let mut per: BTreeMap<u32, Vec<(Date, u16, Traffic)>> = BTreeMap::new();
    for (&(tenant, realm, day), v) in &t {
        per.entry(tenant).or_default().push((day, realm, *v));
    }
    if args.json {
        let list: Vec<_> = per
            .iter()
            .map(|(tenant, rows)| {
                let mut sums: BTreeMap<u16, Traffic> = BTreeMap::new();
                for (_, realm, v) in rows {
                    let s = sums.entry(*realm).or_default();
                    *s = s.plus(v);
                }
                serde_json::json!({
                    "tenant": tenant,
                    "name": tenant_name(p, *tenant),
                    "days": rows.iter().map(|(day, realm, v)| serde_json::json!({
                        "day": day.to_string(), "realm": realm, "realm_name": realm_name(p, *realm),
                        "down_bytes": v.down_bytes, "down_packets": v.down_packets,
                        "up_bytes": v.up_bytes, "up_packets": v.up_packets,
                    })).collect::<Vec<_>>(),
                    "totals": sums.iter().map(|(realm, v)| serde_json::json!({
                        "realm": realm, "realm_name": realm_name(p, *realm),
                        "down_bytes": v.down_bytes, "down_packets": v.down_packets,
                        "up_bytes": v.up_bytes, "up_packets": v.up_packets,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let out = serde_json::json!({ "range": range, "tenants": list });
        return Ok(serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n");
    }
    let mut out = format!(
        "{} [{} .. {}), days in {}\n",
        range.label, range.from, range.to, range.zone
    );
    if per.is_empty() {
        out.push_str("no traffic recorded in this range\n");
    }
    let row = |out: &mut String, when: &str, realm: &str, v: &Traffic| {
        let _ = writeln!(
            out,
            "  {when:<11} {realm:<16} {:>12} {:>12} {:>12}",
            human_bytes(v.down_bytes),
            human_bytes(v.up_bytes),
            human_bytes(v.down_bytes.saturating_add(v.up_bytes))
        );
    };
    for (tenant, rows) in &per {
        let _ = writeln!(
            out,
            "\n{} (tenant {tenant})\n  {:<11} {:<16} {:>12} {:>12} {:>12}",
            tenant_name(p, *tenant),
            "day",
            "realm",
            "down",
            "up",
            "total"
        );
        let mut sums: BTreeMap<u16, Traffic> = BTreeMap::new();
        for (day, realm, v) in rows {
            row(&mut out, &day.to_string(), &realm_name(p, *realm), v);
            let s = sums.entry(*realm).or_default();
            *s = s.plus(v);
        }
        let _ = writeln!(out, "  {}", "-".repeat(66));
        let mut all = Traffic::default();
        for (realm, v) in &sums {
            row(&mut out, "total", &realm_name(p, *realm), v);
            all = all.plus(v);
        }
        row(&mut out, "total", "(all realms)", &all);
    }
    Ok(out)
}

/// `tollgate realms`.
pub fn realms(path: &Path, args: &RealmsArgs) -> Result<String, String> {
    let loaded = policy_for_names(path);
    let settings = args.state.settings(loaded.as_ref())?;
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let range = range(&settings, &args.range, Timestamp::now())?;
    let store = ledger::open_for_reading(&args.state.state_dir)?;
    let mut per: BTreeMap<u16, Traffic> = BTreeMap::new();
    for (&(_, realm, _), v) in &totals(&store, &range, Tenants::All)? {
        let s = per.entry(realm).or_default();
        *s = s.plus(v);
    }
    if args.json {
        let list: Vec<_> = per
            .iter()
            .map(|(realm, v)| {
                serde_json::json!({
                    "realm": realm, "name": realm_name(p, *realm),
                    "bytes_to": v.up_bytes, "packets_to": v.up_packets,
                    "bytes_from": v.down_bytes, "packets_from": v.down_packets,
                })
            })
            .collect();
        let out = serde_json::json!({ "range": range, "realms": list });
        return Ok(serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n");
    }
    let mut out = format!(
        "{} [{} .. {}); \"to\" is tenants' traffic toward the realm (up), \"from\" toward the tenants (down)\n{:<16} {:>6} {:>12} {:>10} {:>12} {:>10}\n",
        range.label, range.from, range.to, "realm", "id", "bytes to", "pkts to", "bytes from", "pkts from"
    );
    for (realm, v) in &per {
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>12} {:>10} {:>12} {:>10}",
            realm_name(p, *realm),
            realm,
            human_bytes(v.up_bytes),
            human_count(v.up_packets),
            human_bytes(v.down_bytes),
            human_count(v.down_packets)
        );
    }
    if per.is_empty() {
        out.push_str("no traffic recorded in this range\n");
    }
    Ok(out)
}
