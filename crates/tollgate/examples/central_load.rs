//! Many agents shipping to one central tollgate, simulated: the load
//! generator behind `bench/central_load.sh` (issue 16's "100 agents
//! shipping to one central: throughput and lag").
//!
//! Each simulated agent is a thread with its own writer name (`hv001`,
//! …) and its own tenants, posting batches to `POST
//! /api/v1/history/batches` exactly as the daemon's shipper does (one
//! batch per closed 5-minute slot, sequence = slot × 4096, every key's
//! sample and the slot's coverage). Two phases:
//!
//! 1. **Catch-up:** every agent sends `--slots` closed slots in order, as
//!    after an outage of the central, all agents at once. Throughput is
//!    batches and samples committed per second of wall time.
//! 2. **A slot closes everywhere:** all agents send the next slot at the
//!    same instant (a barrier), as they do every five minutes. The lag is
//!    the time from that instant to each agent's acknowledgement; its
//!    maximum is how long the central takes to hold a whole slot.
//!
//! Then it checks the central's own account (`GET /api/v1/agents`):
//! every writer's committed sequence and byte count must equal what it
//! sent, or the run fails. Numbers come out as one JSON object.

use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use net_types::{RealmId, TenantId};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    url: String,
    token: String,
    agents: usize,
    tenants: u32,
    slots: i64,
}

fn usage() -> ! {
    eprintln!(
        "usage: central_load --url URL --token-file FILE [--agents 100] [--tenants 50] [--slots 24]\n\
         posts simulated agents' batches to a central tollgate and prints throughput and lag as JSON"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        token: String::new(),
        agents: 100,
        tenants: 50,
        slots: 24,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let number = |v: &str| v.parse::<i64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--url" => a.url = value.trim_end_matches('/').to_string(),
            "--token-file" => {
                a.token = std::fs::read_to_string(&value)
                    .unwrap_or_else(|e| {
                        eprintln!("central_load: cannot read {value}: {e}");
                        std::process::exit(2)
                    })
                    .trim()
                    .to_string()
            }
            "--agents" => a.agents = number(&value).clamp(1, 999) as usize,
            "--tenants" => a.tenants = number(&value).clamp(1, 100_000) as u32,
            "--slots" => a.slots = number(&value).clamp(1, 10_000),
            _ => usage(),
        }
    }
    if a.url.is_empty() || a.token.is_empty() {
        usage()
    }
    a
}

/// One agent's batch for `slot`: two realms × two directions per tenant,
/// with byte counts that differ per agent, tenant and slot.
fn batch(agent: usize, tenants: u32, slot: i64) -> (serde_json::Value, u64, usize) {
    let mut samples = Vec::new();
    let mut bytes = 0u64;
    for t in 0..tenants {
        for realm in [1u16, 2] {
            for direction in [Direction::Down, Direction::Up] {
                let seed = (agent as u64) << 40 ^ u64::from(t) << 20 ^ slot as u64;
                let b = 1_000 + mix(seed ^ u64::from(realm) << 8 ^ direction as u64) % 50_000_000;
                bytes += b;
                samples.push(Sample {
                    slot: Slot(slot),
                    key: UsageKey {
                        tenant: TenantId(agent as u32 * 100_000 + t + 1),
                        realm: RealmId(realm),
                        direction,
                        band: Band::Whole,
                        source: Source::Kernel,
                    },
                    bytes: b,
                    packets: b / 900 + 1,
                });
            }
        }
    }
    let n = samples.len();
    let body = serde_json::json!({
        "writer": writer(agent),
        "sequence": slot as u64 * 4096,
        "samples": samples,
        "coverage": [SlotCoverage { slot: Slot(slot), status: SlotStatus::Measured }],
    });
    (body, bytes, n)
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn writer(agent: usize) -> String {
    format!("hv{:03}", agent + 1)
}

/// Posts one batch; the time it took, or why it failed.
fn post(http: &ureq::Agent, a: &Args, body: &serde_json::Value) -> Result<Duration, String> {
    let start = Instant::now();
    let text = body.to_string();
    let mut answer = http
        .post(format!("{}/api/v1/history/batches", a.url))
        .header("Authorization", format!("Bearer {}", a.token))
        .header("Content-Type", "application/json")
        .send(text.as_bytes())
        .map_err(|e| format!("post: {e}"))?;
    let status = answer.status().as_u16();
    let reply = answer.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        return Err(format!("the central answered {status}: {reply}"));
    }
    if reply.contains("\"duplicate\":true") {
        return Err(format!("a fresh batch was taken as a duplicate: {reply}"));
    }
    Ok(start.elapsed())
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn main() {
    let a = Arc::new(args());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Closed slots only: the last one ends at least a slot before now.
    let last = now / 300 - 2;
    let first = last - a.slots;
    let barrier = Arc::new(Barrier::new(a.agents + 1));
    let mut threads = Vec::new();
    let started = Instant::now();
    for agent in 0..a.agents {
        let (a, barrier) = (Arc::clone(&a), Arc::clone(&barrier));
        threads.push(std::thread::spawn(move || {
            let http: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(120)))
                .build()
                .into();
            let mut catch_up = Vec::new();
            let (mut bytes, mut samples) = (0u64, 0usize);
            for slot in first..last {
                let (body, b, n) = batch(agent, a.tenants, slot);
                catch_up.push(post(&http, &a, &body)?);
                bytes += b;
                samples += n;
            }
            let (body, b, n) = batch(agent, a.tenants, last);
            barrier.wait();
            let close = post(&http, &a, &body)?;
            Ok::<_, String>((catch_up, close, bytes + b, samples + n))
        }));
    }
    // The catch-up ends when the last agent reaches the barrier.
    barrier.wait();
    let catch_up_wall = started.elapsed();
    let closing = Instant::now();
    let mut catch_up = Vec::new();
    let mut close = Vec::new();
    let mut sent = Vec::new();
    for (agent, t) in threads.into_iter().enumerate() {
        match t.join().expect("agent thread") {
            Ok((c, l, bytes, samples)) => {
                catch_up.extend(c);
                close.push(l);
                sent.push((writer(agent), bytes, samples));
            }
            Err(e) => {
                eprintln!("central_load: agent {}: {e}", writer(agent));
                std::process::exit(1);
            }
        }
    }
    let close_wall = closing.elapsed();
    catch_up.sort();
    close.sort();
    let failures = check(&a, &sent, last as u64 * 4096);
    let samples_per_batch = a.tenants as usize * 4;
    let batches = catch_up.len();
    let out = serde_json::json!({
        "agents": a.agents,
        "tenants_per_agent": a.tenants,
        "samples_per_batch": samples_per_batch,
        "catch_up": {
            "batches": batches,
            "samples": batches * samples_per_batch,
            "seconds": catch_up_wall.as_secs_f64(),
            "batches_per_second": batches as f64 / catch_up_wall.as_secs_f64(),
            "samples_per_second": (batches * samples_per_batch) as f64 / catch_up_wall.as_secs_f64(),
            "batch_ms_p50": quantile(&catch_up, 0.5),
            "batch_ms_p99": quantile(&catch_up, 0.99),
        },
        "slot_close": {
            "lag_ms_p50": quantile(&close, 0.5),
            "lag_ms_p99": quantile(&close, 0.99),
            "lag_ms_max": quantile(&close, 1.0),
            "seconds_until_all_held": close_wall.as_secs_f64(),
        },
        "central_agrees": failures.is_empty(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("central_load: {f}");
        }
        std::process::exit(1);
    }
}

/// The central's own account of each writer against what was sent.
fn check(a: &Args, sent: &[(String, u64, usize)], sequence: u64) -> Vec<String> {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let listed = http
        .get(format!("{}/api/v1/agents", a.url))
        .header("Authorization", format!("Bearer {}", a.token))
        .call()
        .map_err(|e| e.to_string())
        .and_then(|mut r| r.body_mut().read_to_string().map_err(|e| e.to_string()))
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
    let listed = match listed {
        Ok(v) => v,
        Err(e) => return vec![format!("GET /api/v1/agents: {e}")],
    };
    let rows = listed["agents"].as_array().cloned().unwrap_or_default();
    let mut failures = Vec::new();
    for (name, bytes, _) in sent {
        let Some(row) = rows.iter().find(|r| r["writer"] == name.as_str()) else {
            failures.push(format!("{name}: not in the central's list"));
            continue;
        };
        if row["sequence"].as_u64() != Some(sequence) {
            failures.push(format!(
                "{name}: sequence {} != {sequence}",
                row["sequence"]
            ));
        }
        if row["bytes"].as_u64() != Some(*bytes) {
            failures.push(format!("{name}: bytes {} != {bytes} sent", row["bytes"]));
        }
        if row["duplicates"].as_u64() != Some(0) {
            failures.push(format!("{name}: {} duplicates", row["duplicates"]));
        }
    }
    failures
}
