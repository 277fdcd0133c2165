//! The decoder's templates under its [`Limits`]: per exporter, per
//! domain, per template and in bytes, with the least recently used
//! template evicted to make room.
//!
//! One allowlisted exporter (or anyone spoofing its address) can send any
//! number of templates, each up to a datagram of field specifiers. They
//! are kept only within the limits, accounted in bytes as they sit in
//! memory, and a template beyond a limit either pushes out the least
//! recently used one (of its domain, of its exporter, or of all) or, if it
//! could never fit, is refused and counted.
//!
//! "Recently used" is a logical clock, not wall time: it ticks once per
//! datagram and once per template learned, and a template is used when a
//! data set is read with it or it is re-sent. Marking a use costs one
//! store (the hot path decodes a set per datagram); the ordered indexes
//! are brought up to date lazily, when an eviction finds an entry whose
//! template was used since it was indexed.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::exporter::{ExporterKey, ExporterState, SamplingState};
use crate::record::{RefusedBy, TemplateRefusal};
use crate::template::{Kind, Template};

/// How much template state one [`crate::Decoder`] may hold.
///
/// The defaults hold every real exporter's templates with a wide margin
/// (routers use tens of templates of tens of fields per domain) while
/// bounding a hostile stream to 32 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Templates per exporter address, over all its domains and both
    /// protocols.
    pub templates_per_exporter: usize,
    /// Templates per exporter, protocol and observation domain.
    pub templates_per_domain: usize,
    /// Fields a template may have; one with more is refused.
    pub fields_per_template: usize,
    /// Bytes all templates and per-domain state may take together.
    pub template_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            templates_per_exporter: 4_096,
            templates_per_domain: 1_024,
            fields_per_template: 1_024,
            template_bytes: 32 << 20,
        }
    }
}

/// Templates in all, whatever the byte budget: keeps the indexes small.
pub(crate) const MAX_TEMPLATES: usize = 65_536;

/// One domain as saved or handed over: its key, sampling and templates.
pub(crate) type DomainPart = (ExporterKey, SamplingState, Vec<(u16, Template)>);

/// Which ordered index an eviction takes its victim from.
#[derive(Clone, Copy)]
enum Scope {
    All,
    Exporter(IpAddr),
    Domain(ExporterKey),
}

/// Templates and sampling per exporter and domain, within [`Limits`].
#[derive(Clone, Debug)]
pub(crate) struct TemplateCache {
    pub(crate) exporters: HashMap<ExporterKey, ExporterState>,
    /// Every template by the time it was last indexed, oldest first.
    lru: BTreeSet<(u64, ExporterKey, u16)>,
    /// The same, per exporter address.
    by_addr: HashMap<IpAddr, BTreeSet<(u64, ExporterKey, u16)>>,
    clock: u64,
    bytes: usize,
    templates: usize,
    limits: Limits,
    /// Changes whenever the saved state would: a template learned,
    /// replaced, withdrawn or evicted, or sampling learned.
    revision: u64,
    /// Templates evicted since the last [`TemplateCache::take_evicted`].
    evicted: u32,
}

impl Default for TemplateCache {
    fn default() -> Self {
        TemplateCache::new(Limits::default())
    }
}

impl TemplateCache {
    pub(crate) fn new(limits: Limits) -> TemplateCache {
        TemplateCache {
            exporters: HashMap::new(),
            lru: BTreeSet::new(),
            by_addr: HashMap::new(),
            clock: 0,
            bytes: 0,
            templates: 0,
            limits,
            revision: 0,
            evicted: 0,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn template_count(&self) -> usize {
        self.templates
    }

    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// Advances the clock (once per datagram) and returns it.
    pub(crate) fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub(crate) fn clock(&self) -> u64 {
        self.clock
    }

    /// Evictions since the last call.
    pub(crate) fn take_evicted(&mut self) -> u32 {
        std::mem::take(&mut self.evicted)
    }

    /// Marks the saved state as changed (sampling learned).
    pub(crate) fn changed(&mut self) {
        self.revision += 1;
    }

    /// The template `tid` of `key`, if known.
    pub(crate) fn known(&self, key: &ExporterKey, tid: u16) -> Option<&Template> {
        self.exporters.get(key)?.templates.get(&tid)
    }

    /// Marks a known template as used now (a re-sent identical template).
    pub(crate) fn touch(&mut self, key: &ExporterKey, tid: u16) {
        let now = self.clock;
        if let Some(t) = self
            .exporters
            .get_mut(key)
            .and_then(|s| s.templates.get_mut(&tid))
        {
            t.last_used = now;
        }
    }

    /// Whether a template of `fields` fields is refused outright, before
    /// anything is spent compiling it.
    pub(crate) fn refuses_fields(&self, tid: u16, fields: usize) -> Option<TemplateRefusal> {
        (fields > self.limits.fields_per_template).then_some(TemplateRefusal {
            template: tid,
            fields,
            bytes: 0,
            limit: RefusedBy::Fields(self.limits.fields_per_template),
        })
    }

    /// Stores `t` as template `tid` of `key`, replacing one of the same id
    /// and evicting the least recently used templates as the limits
    /// require.
    pub(crate) fn insert(
        &mut self,
        key: ExporterKey,
        tid: u16,
        mut t: Template,
    ) -> Result<(), TemplateRefusal> {
        let need = t.memory();
        let state_need = if self.exporters.contains_key(&key) {
            0
        } else {
            ExporterState::default().own_memory()
        };
        if let Some(r) = self.refuses_fields(tid, t.fields.len()) {
            return Err(r);
        }
        if need + state_need > self.limits.template_bytes {
            return Err(TemplateRefusal {
                template: tid,
                fields: t.fields.len(),
                bytes: need,
                limit: RefusedBy::Bytes(self.limits.template_bytes),
            });
        }
        self.remove(&key, tid);
        while self.domain_count(&key) >= self.limits.templates_per_domain.max(1) {
            if !self.evict(Scope::Domain(key)) {
                break;
            }
        }
        while self.addr_count(key.addr) >= self.limits.templates_per_exporter.max(1) {
            if !self.evict(Scope::Exporter(key.addr)) {
                break;
            }
        }
        loop {
            // Evicting may have dropped this very domain's state.
            let state_need = if self.exporters.contains_key(&key) {
                0
            } else {
                ExporterState::default().own_memory()
            };
            let fits = self.bytes + need + state_need <= self.limits.template_bytes
                && self.templates < MAX_TEMPLATES;
            if fits || !self.evict(Scope::All) {
                break;
            }
        }
        self.clock += 1;
        t.last_used = self.clock;
        t.indexed = self.clock;
        let state = match self.exporters.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let s = v.insert(ExporterState::default());
                self.bytes += s.own_memory();
                s
            }
        };
        state.lru.insert((self.clock, tid));
        state.templates.insert(tid, t);
        self.lru.insert((self.clock, key, tid));
        self.by_addr
            .entry(key.addr)
            .or_default()
            .insert((self.clock, key, tid));
        self.bytes += need;
        self.templates += 1;
        self.revision += 1;
        Ok(())
    }

    /// Removes template `tid` of `key`; drops the domain's state with its
    /// last template. Says whether there was one.
    pub(crate) fn remove(&mut self, key: &ExporterKey, tid: u16) -> bool {
        let Some(state) = self.exporters.get_mut(key) else {
            return false;
        };
        let Some(t) = state.templates.remove(&tid) else {
            return false;
        };
        state.lru.remove(&(t.indexed, tid));
        self.lru.remove(&(t.indexed, *key, tid));
        if let Some(a) = self.by_addr.get_mut(&key.addr) {
            a.remove(&(t.indexed, *key, tid));
            if a.is_empty() {
                self.by_addr.remove(&key.addr);
            }
        }
        self.bytes = self.bytes.saturating_sub(t.memory());
        self.templates = self.templates.saturating_sub(1);
        if state.templates.is_empty() {
            let own = state.own_memory();
            self.exporters.remove(key);
            self.bytes = self.bytes.saturating_sub(own);
        }
        self.revision += 1;
        true
    }

    /// Withdraws template `tid` of `key`, or every template of `kind` when
    /// `tid` is the set id (RFC 7011 §8.1). Returns how many went.
    pub(crate) fn withdraw(&mut self, key: &ExporterKey, tid: u16, set_id: u16, kind: Kind) -> u32 {
        let Some(state) = self.exporters.get(key) else {
            return 0;
        };
        let ids: Vec<u16> = if tid == set_id {
            state
                .templates
                .iter()
                .filter(|(_, t)| t.kind == kind)
                .map(|(id, _)| *id)
                .collect()
        } else {
            vec![tid]
        };
        let mut removed = 0u32;
        for id in ids {
            if self.remove(key, id) {
                removed = removed.saturating_add(1);
            }
        }
        removed
    }

    /// Re-counts `key`'s own (non-template) memory after its sampling
    /// state changed from `before` bytes, then evicts to stay within the
    /// byte budget.
    pub(crate) fn resized(&mut self, key: &ExporterKey, before: usize) {
        if let Some(s) = self.exporters.get(key) {
            self.bytes = (self.bytes + s.own_memory()).saturating_sub(before);
        }
        self.enforce();
    }

    /// Applies new limits, evicting what they no longer allow. Returns
    /// how many templates went.
    pub(crate) fn set_limits(&mut self, limits: Limits) -> u32 {
        self.limits = limits;
        let before = self.evicted;
        let over: Vec<ExporterKey> = self
            .exporters
            .iter()
            .filter(|(_, s)| s.templates.len() > limits.templates_per_domain)
            .map(|(k, _)| *k)
            .collect();
        for key in over {
            while self.domain_count(&key) > limits.templates_per_domain {
                if !self.evict(Scope::Domain(key)) {
                    break;
                }
            }
        }
        let addrs: Vec<IpAddr> = self.by_addr.keys().copied().collect();
        for addr in addrs {
            while self.addr_count(addr) > limits.templates_per_exporter {
                if !self.evict(Scope::Exporter(addr)) {
                    break;
                }
            }
        }
        let wide: Vec<(ExporterKey, u16)> = self
            .exporters
            .iter()
            .flat_map(|(k, s)| {
                s.templates
                    .iter()
                    .filter(|(_, t)| t.fields.len() > limits.fields_per_template)
                    .map(|(id, _)| (*k, *id))
            })
            .collect();
        for (key, tid) in wide {
            if self.remove(&key, tid) {
                self.evicted = self.evicted.saturating_add(1);
            }
        }
        self.enforce();
        self.evicted - before
    }

    /// Evicts the least recently used templates until the byte budget
    /// holds.
    pub(crate) fn enforce(&mut self) {
        while self.bytes > self.limits.template_bytes || self.templates > MAX_TEMPLATES {
            if !self.evict(Scope::All) {
                break;
            }
        }
    }

    fn domain_count(&self, key: &ExporterKey) -> usize {
        self.exporters.get(key).map_or(0, |s| s.templates.len())
    }

    fn addr_count(&self, addr: IpAddr) -> usize {
        self.by_addr.get(&addr).map_or(0, BTreeSet::len)
    }

    /// Evicts the least recently used template of `scope`. An index entry
    /// whose template was used since it was indexed is moved to its place
    /// first. Says whether one went.
    fn evict(&mut self, scope: Scope) -> bool {
        loop {
            let oldest = match scope {
                Scope::All => self.lru.first().copied(),
                Scope::Exporter(a) => self.by_addr.get(&a).and_then(|s| s.first().copied()),
                Scope::Domain(k) => self
                    .exporters
                    .get(&k)
                    .and_then(|s| s.lru.first().map(|&(t, id)| (t, k, id))),
            };
            let Some((indexed, key, tid)) = oldest else {
                return false;
            };
            let Some(used) = self.known(&key, tid).map(|t| t.last_used) else {
                // An index entry without its template would be a bug;
                // drop it rather than loop.
                self.lru.remove(&(indexed, key, tid));
                if let Some(a) = self.by_addr.get_mut(&key.addr) {
                    a.remove(&(indexed, key, tid));
                }
                if let Some(s) = self.exporters.get_mut(&key) {
                    s.lru.remove(&(indexed, tid));
                }
                continue;
            };
            if used > indexed {
                self.reindex(key, tid, indexed, used);
                continue;
            }
            self.remove(&key, tid);
            self.evicted = self.evicted.saturating_add(1);
            return true;
        }
    }

    fn reindex(&mut self, key: ExporterKey, tid: u16, from: u64, to: u64) {
        self.lru.remove(&(from, key, tid));
        self.lru.insert((to, key, tid));
        if let Some(a) = self.by_addr.get_mut(&key.addr) {
            a.remove(&(from, key, tid));
            a.insert((to, key, tid));
        }
        if let Some(s) = self.exporters.get_mut(&key) {
            s.lru.remove(&(from, tid));
            s.lru.insert((to, tid));
            if let Some(t) = s.templates.get_mut(&tid) {
                t.indexed = to;
            }
        }
    }

    /// Adds what `other` knows about domains this cache has not heard
    /// from, within this cache's limits (see [`TemplateCache::absorb`]).
    /// Where both know a domain, this cache's knowledge is kept.
    pub(crate) fn merge(&mut self, other: TemplateCache) {
        let parts = other
            .exporters
            .into_iter()
            .map(|(k, s)| (k, s.sampling, s.templates.into_iter().collect()))
            .collect();
        self.absorb(parts);
    }

    /// Adds domains with their sampling and templates, skipping domains
    /// already known: templates in the order of their `last_used` (so the
    /// most recent survive if the limits cannot take all), then the
    /// sampling of the domains that kept a template.
    pub(crate) fn absorb(&mut self, parts: Vec<DomainPart>) {
        let mut incoming: Vec<(u64, ExporterKey, u16, Template)> = Vec::new();
        let mut sampling: Vec<(ExporterKey, SamplingState)> = Vec::new();
        for (key, s, templates) in parts {
            if self.exporters.contains_key(&key) {
                continue;
            }
            for (tid, t) in templates {
                incoming.push((t.last_used, key, tid, t));
            }
            sampling.push((key, s));
        }
        incoming.sort_by_key(|(used, key, tid, _)| (*used, *key, *tid));
        for (_, key, tid, t) in incoming {
            let _ = self.insert(key, tid, t);
        }
        sampling.sort_by_key(|(k, _)| *k);
        for (key, s) in sampling {
            if let Some(state) = self.exporters.get_mut(&key) {
                let before = state.own_memory();
                state.sampling = s;
                self.resized(&key, before);
            }
        }
        self.take_evicted();
        self.revision += 1;
    }

    /// Panics unless the counts, the byte total and the three indexes
    /// agree with the templates held, and the limits hold: for the fuzzing
    /// entry points and the tests.
    pub(crate) fn check(&self) {
        let mut templates = 0;
        let mut bytes = 0;
        let mut per_addr: HashMap<IpAddr, usize> = HashMap::new();
        for (key, s) in &self.exporters {
            assert!(!s.templates.is_empty(), "{key:?} is kept without templates");
            assert!(s.templates.len() <= self.limits.templates_per_domain.max(1));
            assert_eq!(s.lru.len(), s.templates.len(), "{key:?}'s index");
            bytes += s.own_memory();
            for (tid, t) in &s.templates {
                templates += 1;
                bytes += t.memory();
                assert!(
                    t.last_used >= t.indexed,
                    "{key:?} {tid} indexed ahead of use"
                );
                assert!(s.lru.contains(&(t.indexed, *tid)));
                assert!(self.lru.contains(&(t.indexed, *key, *tid)));
                assert!(self
                    .by_addr
                    .get(&key.addr)
                    .is_some_and(|a| a.contains(&(t.indexed, *key, *tid))));
                assert!(t.fields.len() <= self.limits.fields_per_template);
            }
            *per_addr.entry(key.addr).or_default() += s.templates.len();
        }
        assert_eq!(templates, self.templates, "template count drifted");
        assert_eq!(self.lru.len(), templates, "global index");
        assert_eq!(bytes, self.bytes, "byte count drifted");
        assert!(
            bytes <= self.limits.template_bytes,
            "{bytes} bytes over budget"
        );
        for (addr, n) in per_addr {
            assert!(
                n <= self.limits.templates_per_exporter.max(1),
                "{addr}: {n}"
            );
            assert_eq!(self.by_addr.get(&addr).map_or(0, BTreeSet::len), n);
        }
        assert_eq!(
            self.by_addr.values().map(BTreeSet::len).sum::<usize>(),
            templates
        );
    }
}
