//! The bench traffic of a hosting provider's tenants, 5-minute samples
//! made from a hash of slot and key (every run stores the same data).
//! Shared by `history`'s store bench and `history-clickhouse`'s ingest
//! bench (`#[path]`), so both stores are measured on the same data.

#![allow(dead_code)]

use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
use net_types::{RealmId, TenantId};

pub(crate) const REALMS: [u16; 4] = [1, 2, 3, 4];

pub(crate) fn keys(tenants: u32) -> Vec<UsageKey> {
    let mut out = Vec::new();
    for t in 0..tenants {
        for realm in REALMS {
            for direction in Direction::BOTH {
                out.push(UsageKey {
                    tenant: TenantId(t),
                    realm: RealmId(realm),
                    direction,
                    band: Band::Whole,
                    source: Source::Kernel,
                });
            }
        }
    }
    out
}

/// A 64-bit mix of `x` (splitmix64's finaliser): the bench's only
/// randomness, so every run and every build stores the same data.
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ x >> 31
}

/// A uniform draw in `[0, 1)` from a hash.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// What a hosting provider's tenants look like at 5-minute resolution,
/// per key, fixed for the run (drawn from a hash of the key).
#[derive(Clone, Copy)]
pub(crate) struct Profile {
    /// Mean bytes per 5 minutes at the daily peak; 0 for a realm the
    /// tenant never reaches.
    peak: f64,
    /// Mean packet size in bytes (bytes / packets).
    packet: f64,
    /// The tenant's hour of peak, in slots after 00:00 UTC.
    phase: f64,
    /// Idle keys: background traffic only (monitoring, NTP, ARP), not
    /// every slot.
    idle: bool,
}

pub(crate) fn profile(key: &UsageKey) -> Profile {
    let t = mix(u64::from(key.tenant.0) ^ 0x5eed);
    // Tenant sizes are heavy-tailed: a Pareto (α = 1.1) mean rate from
    // 20 kbit/s up, clamped at 2 Gbit/s; a quarter of the tenants are idle
    // machines.
    let idle = unit(t) < 0.25;
    let rate_bps = (20e3 / (1.0 - unit(mix(t))).powf(1.0 / 1.1)).min(2e9);
    // Realm shares: most traffic to the first realm; a tenant reaches
    // realms 3 and 4 only sometimes.
    let realm = key.realm.0;
    let k = mix(t ^ u64::from(realm));
    let (share, reached) = match realm {
        1 => (0.65, true),
        2 => (0.25, unit(k) < 0.8),
        3 => (0.07, unit(k) < 0.4),
        _ => (0.03, unit(k) < 0.2),
    };
    // Servers mostly send: up is the larger direction, down 20-60% of it,
    // with small packets (acks); up's packets are near full size.
    let d = mix(k ^ 7);
    let (dir_share, packet) = match key.direction {
        Direction::Up => (1.0, 900.0 + 500.0 * unit(d)),
        Direction::Down => (0.2 + 0.4 * unit(d), 80.0 + 400.0 * unit(mix(d))),
    };
    let peak = if !reached || (idle && realm != 1) {
        0.0
    } else if idle {
        2_000.0 + 30_000.0 * unit(d)
    } else {
        rate_bps / 8.0 * 300.0 * share * dir_share
    };
    Profile {
        peak,
        packet,
        phase: 12.0 * (17.0 + 6.0 * unit(t >> 7)),
        idle,
    }
}

/// Samples of every key in one slot, with the traffic of a hosting
/// provider ([`profile`]): tenants from idle machines to gigabits, a
/// diurnal curve (the trough at 30% of the peak) and a quieter weekend,
/// ±25% noise per slot and an occasional burst, packets from bytes by the
/// key's mean packet size ±10%. Idle keys send background traffic in
/// about one slot in three, and realms a tenant never reaches have no
/// samples: the accountant stores no zero samples.
pub(crate) fn realistic(
    slot: Slot,
    keys: &[UsageKey],
    profiles: &[Profile],
    out: &mut Vec<Sample>,
) {
    use std::f64::consts::TAU;
    let day_slot = slot.0.rem_euclid(288) as f64;
    // 1 November 2026 is a Sunday; day 0 of the epoch a Thursday.
    let weekday = (slot.0.div_euclid(288) + 4).rem_euclid(7);
    let week = if weekday == 0 || weekday == 6 {
        0.8
    } else {
        1.0
    };
    for (i, (&key, p)) in keys.iter().zip(profiles).enumerate() {
        if p.peak == 0.0 {
            continue;
        }
        let h = mix((slot.0 as u64) << 24 ^ i as u64);
        let bytes = if p.idle {
            if unit(h) > 0.35 {
                continue;
            }
            p.peak * (0.2 + unit(mix(h)))
        } else {
            let diurnal = 0.65 + 0.35 * (TAU * (day_slot - p.phase) / 288.0).cos();
            let noise = 0.75 + 0.5 * unit(mix(h));
            let burst = if h.is_multiple_of(500) { 4.0 } else { 1.0 };
            p.peak * diurnal * week * noise * burst
        };
        let bytes = bytes.max(64.0) as u64;
        let packet = p.packet * (0.9 + 0.2 * unit(mix(h ^ 1)));
        out.push(Sample {
            slot,
            key,
            bytes,
            packets: (bytes as f64 / packet).max(1.0) as u64,
        });
    }
}

/// The bench's tenants and their traffic: [`realistic`] unless
/// `HISTORY_BENCH_DATA=uniform` asks for the data of the benches before
/// issue 16 ([`uniform`]: every key in every slot, 2-5 MB × a tenant scale
/// of 1-1000, uniformly random), to compare with older figures.
pub(crate) struct Traffic {
    pub(crate) keys: Vec<UsageKey>,
    profiles: Vec<Profile>,
    uniform: bool,
}

impl Traffic {
    pub(crate) fn new(tenants: u32) -> Traffic {
        let keys = keys(tenants);
        let profiles = keys.iter().map(profile).collect();
        let uniform = std::env::var("HISTORY_BENCH_DATA").is_ok_and(|v| v == "uniform");
        Traffic {
            keys,
            profiles,
            uniform,
        }
    }

    /// Appends the samples of `slot`.
    pub(crate) fn interval(&self, slot: Slot, out: &mut Vec<Sample>) {
        if self.uniform {
            uniform(slot, &self.keys, out)
        } else {
            realistic(slot, &self.keys, &self.profiles, out)
        }
    }
}

/// The data of the benches before issue 16: every key in every slot, each
/// sample a hash of slot and key; tenants differ in size by up to 1000×
/// (a few MB to a few GB per five minutes), packets are bytes / 900. Not
/// what traffic looks like: no idle keys, no daily curve, and 20 random
/// bits in every value.
pub(crate) fn uniform(slot: Slot, keys: &[UsageKey], out: &mut Vec<Sample>) {
    for (i, &key) in keys.iter().enumerate() {
        let mut h = (slot.0 as u64) << 32 ^ i as u64 ^ 0x9e37_79b9_7f4a_7c15;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        let scale = 1 + u64::from(key.tenant.0 * 7919 % 1000);
        let bytes = scale * (2_000_000 + h % 3_000_000);
        out.push(Sample {
            slot,
            key,
            bytes,
            packets: bytes / 900,
        });
    }
}
