//! A checked [`Config`] turned into what the hot path reads: one profile
//! per group with every threshold resolved through its parents, and
//! longest-prefix-match tables from address to profile.

use std::collections::HashMap;
use std::net::IpAddr;

use net_types::Prefix;

use crate::config::{
    truncate, Config, ConfigError, InvalidConfig, Limit, Metric, PrefixSet, RungConfig, Thresholds,
    GLOBAL, METRICS,
};
use crate::sample::Direction;
use crate::table::{Table4, Table6};

/// Thresholds ready to compare: `f64::INFINITY` is "no check".
pub(crate) type Limits = [[f64; METRICS]; 2];

/// One resolved group (index 0 is the global profile).
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    pub name: String,
    pub limits: Limits,
    pub totals: Limits,
    pub has_totals: bool,
    /// Index into [`Resolved::ladders`].
    pub ladder: usize,
    /// The group's prefixes (the networks for the global profile).
    pub prefixes: Vec<Prefix>,
}

/// What a table lookup finds: the profile whose thresholds apply, and the
/// total slots (see [`Resolved::total_slots`]) the address counts in.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub profile: u32,
    pub totals: Vec<u32>,
}

/// The resolved configuration.
#[derive(Clone)]
pub(crate) struct Resolved {
    pub cfg: Config,
    pub profiles: Vec<Profile>,
    pub ladders: Vec<Vec<RungConfig>>,
    pub entries: Vec<Entry>,
    /// The profiles with total thresholds, in profile order: only these
    /// keep (and reset every tick) a group state, so ten thousand tenant
    /// groups without totals cost nothing per tick.
    pub total_slots: Vec<usize>,
    /// Per profile, its index in `total_slots`.
    pub slot_of: Vec<Option<u32>>,
    /// The networks, for coverage checks.
    networks: PrefixSet,
    v4: Option<Table4>,
    v6: Option<Table6>,
}

impl Resolved {
    pub fn new(cfg: Config) -> Result<Resolved, InvalidConfig> {
        let errors = cfg.check();
        if !errors.is_empty() {
            return Err(InvalidConfig(errors));
        }
        let names: HashMap<&str, usize> = cfg
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.as_str(), i + 1))
            .collect();
        let parent_of = |g: usize| -> usize {
            if g == 0 {
                return 0;
            }
            match cfg.groups[g - 1].parent.as_deref() {
                None | Some(GLOBAL) => 0,
                Some(p) => names.get(p).copied().unwrap_or(0),
            }
        };
        // Resolve in an order where parents come first: depth in the
        // inheritance tree (no cycles: `check` refused them).
        let depth = |mut g: usize| {
            let mut d = 0;
            while g != 0 {
                g = parent_of(g);
                d += 1;
            }
            d
        };
        let n = cfg.groups.len() + 1;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&g| (depth(g), g));
        let mut ladders = vec![cfg.ladder.clone()];
        let mut profiles: Vec<Option<Profile>> = vec![None; n];
        for g in order {
            let profile = if g == 0 {
                Profile {
                    name: GLOBAL.to_owned(),
                    limits: limits(&cfg.global, None),
                    totals: limits(&Thresholds::new(), None),
                    has_totals: false,
                    ladder: 0,
                    prefixes: cfg.networks.clone(),
                }
            } else {
                let group = &cfg.groups[g - 1];
                let parent = profiles[parent_of(g)]
                    .as_ref()
                    .expect("parents are resolved first");
                let ladder = match &group.ladder {
                    Some(l) => {
                        ladders.push(l.clone());
                        ladders.len() - 1
                    }
                    None => parent.ladder,
                };
                Profile {
                    name: group.name.clone(),
                    limits: limits(&group.thresholds, Some(&parent.limits)),
                    totals: limits(&group.totals, None),
                    has_totals: !group.totals.is_empty(),
                    ladder,
                    prefixes: group.prefixes.clone(),
                }
            };
            profiles[g] = Some(profile);
        }
        let profiles: Vec<Profile> = profiles.into_iter().map(|p| p.expect("resolved")).collect();

        // Table entries: one per network (global) and per group prefix.
        // An entry counts towards the totals of every group with totals
        // that has a prefix covering it (longest match picks the entry, so
        // every covering group prefix is the entry's or a shorter one).
        let mut with_totals: HashMap<Prefix, u32> = HashMap::new();
        let mut total_slots = Vec::new();
        let mut slot_of = vec![None; profiles.len()];
        for (g, p) in profiles.iter().enumerate() {
            if p.has_totals {
                let slot = total_slots.len() as u32;
                total_slots.push(g);
                slot_of[g] = Some(slot);
                for prefix in &p.prefixes {
                    with_totals.insert(*prefix, slot);
                }
            }
        }
        let mut entries = Vec::new();
        let mut items4 = Vec::new();
        let mut items6 = Vec::new();
        for (g, p) in profiles.iter().enumerate() {
            for prefix in &p.prefixes {
                let mut totals = Vec::new();
                for len in (0..=prefix.len()).rev() {
                    if let Some(&t) = with_totals.get(&truncate(*prefix, len)) {
                        if !totals.contains(&t) {
                            totals.push(t);
                        }
                    }
                }
                let e = entries.len() as u32;
                entries.push(Entry {
                    profile: g as u32,
                    totals,
                });
                match *prefix {
                    Prefix::V4(a, l) => items4.push((a, l, e)),
                    Prefix::V6(a, l) => items6.push((a, l, e)),
                }
            }
        }
        // Groups come after the networks in `entries`, and a group prefix
        // equal to a network must win: `build` keeps the last value given.
        let v4 = (!items4.is_empty())
            .then(|| Table4::build(items4))
            .transpose()
            .map_err(|_| InvalidConfig(vec![ConfigError::MinPrefix { v6: false }]))?;
        let v6 = (!items6.is_empty())
            .then(|| Table6::build(items6))
            .transpose()
            .map_err(|_| InvalidConfig(vec![ConfigError::MinPrefix { v6: true }]))?;
        let networks = PrefixSet::new(cfg.networks.iter().copied());
        Ok(Resolved {
            cfg,
            profiles,
            ladders,
            entries,
            total_slots,
            slot_of,
            networks,
            v4,
            v6,
        })
    }

    /// The table entry for `addr`, `None` outside the networks.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.as_ref()?.lookup(a),
            IpAddr::V6(a) => self.v6.as_ref()?.lookup(a),
        }
    }

    /// Whether `prefix` lies inside the protected networks and is no
    /// shorter than the configured limit: the only prefixes a blackhole,
    /// RTBH or FlowSpec decision may name.
    pub fn may_announce(&self, prefix: Prefix) -> bool {
        let min = if prefix.is_ipv4() {
            self.cfg.min_prefix_v4
        } else {
            self.cfg.min_prefix_v6
        };
        prefix.len() >= min && self.networks.covers(prefix)
    }

    /// The ladder of a profile.
    pub fn ladder(&self, profile: u32) -> &[RungConfig] {
        let p = self.profiles.get(profile as usize).map_or(0, |p| p.ladder);
        &self.ladders[p]
    }
}

/// Resolves one profile's thresholds over its parent's.
fn limits(own: &Thresholds, parent: Option<&Limits>) -> Limits {
    let mut out = [[f64::INFINITY; METRICS]; 2];
    for d in Direction::ALL {
        for m in Metric::ALL {
            out[d.index()][m.index()] = match own.get(d, m) {
                Limit::At(v) => v as f64,
                Limit::Off => f64::INFINITY,
                Limit::Inherit => parent.map_or(f64::INFINITY, |p| p[d.index()][m.index()]),
            };
        }
    }
    out
}
