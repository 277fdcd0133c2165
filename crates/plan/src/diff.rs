//! From two plans to an ordered list of changes.

use crate::model::*;
use net_types::{ClassId, IfName};
use serde::Serialize;
use std::collections::BTreeMap;

/// One change to the kernel.
///
/// The fields are named after the objects they hold (`key`, `class`,
/// `map`…); each variant's own line says what the change does.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Change {
    /// Create a device.
    AddLink { name: IfName, link: Link },
    /// Remove a device (and everything on it).
    DelLink { name: IfName },
    /// Create a qdisc.
    AddQdisc { key: QdiscKey, qdisc: Qdisc },
    /// Remove a qdisc (and its classes).
    DelQdisc { key: QdiscKey },
    /// Create a class.
    AddClass { key: ClassKey, class: Class },
    /// Change a class's rates in place (its parent is unchanged).
    ChangeClass { key: ClassKey, class: Class },
    /// Remove a class. The dataplane waits for it to drain first.
    DelClass { key: ClassKey },
    /// Create or atomically replace a filter.
    SetFilter { key: FilterKey, filter: Filter },
    /// Remove a filter.
    DelFilter { key: FilterKey },
    /// Create an nftables map (empty).
    AddMap { name: String, kind: MapKind },
    /// Remove an nftables map.
    DelMap { name: String },
    /// Create a chain or replace its rules.
    SetChain { name: String, chain: Chain },
    /// Remove a chain.
    DelChain { name: String },
    /// Add a map element or change its value. `previous` is the value it
    /// replaces, because nftables must delete an element to change it.
    SetElement {
        map: String,
        key: MapKey,
        value: MapValue,
        previous: Option<MapValue>,
    },
    /// Remove a map element.
    DelElement { map: String, key: MapKey },
}

/// The three phases of a change set, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// New devices, qdiscs, classes, maps and chains: nothing points at them yet.
    Create,
    /// Classification moves to the new objects: map elements and filters.
    Switch,
    /// Old objects, now unused, are removed (children before parents).
    Remove,
}

impl Change {
    /// The phase this change belongs to.
    pub fn step(&self) -> Step {
        match self {
            Change::AddLink { .. }
            | Change::AddQdisc { .. }
            | Change::AddClass { .. }
            | Change::ChangeClass { .. }
            | Change::AddMap { .. }
            | Change::SetChain { .. } => Step::Create,
            Change::SetElement { .. } | Change::SetFilter { .. } => Step::Switch,
            _ => Step::Remove,
        }
    }

    /// The object this change touches.
    pub fn object(&self) -> ObjectId {
        match self {
            Change::AddLink { name, .. } | Change::DelLink { name } => ObjectId::Link(*name),
            Change::AddQdisc { key, .. } | Change::DelQdisc { key } => ObjectId::Qdisc(*key),
            Change::AddClass { key, .. }
            | Change::ChangeClass { key, .. }
            | Change::DelClass { key } => ObjectId::Class(*key),
            Change::SetFilter { key, .. } | Change::DelFilter { key } => ObjectId::Filter(*key),
            Change::AddMap { name, .. } | Change::DelMap { name } => ObjectId::Map(name.clone()),
            Change::SetChain { name, .. } | Change::DelChain { name } => {
                ObjectId::Chain(name.clone())
            }
            Change::SetElement { map, key, .. } | Change::DelElement { map, key } => {
                ObjectId::Element(map.clone(), key.clone())
            }
        }
    }
}

/// An ordered list of changes, safe to apply from first to last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSet {
    /// The changes, in order.
    pub changes: Vec<Change>,
}

impl ChangeSet {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Applies the changes to a plan in memory, as the kernel would.
    ///
    /// This is the model the dataplane must match: tests check that applying
    /// `diff(desired, observed)` to `observed` yields `desired`.
    pub fn apply_to(&self, plan: &mut Plan) {
        for c in &self.changes {
            match c.clone() {
                Change::AddLink { name, link } => {
                    plan.links.insert(name, link);
                }
                Change::DelLink { name } => {
                    plan.links.remove(&name);
                    plan.qdiscs.retain(|k, _| k.dev != name);
                    plan.classes.retain(|k, _| k.dev != name);
                    plan.filters.retain(|k, _| k.dev != name);
                }
                Change::AddQdisc { key, qdisc } => {
                    plan.qdiscs.insert(key, qdisc);
                }
                Change::DelQdisc { key } => remove_qdisc(plan, key),
                Change::AddClass { key, class } | Change::ChangeClass { key, class } => {
                    plan.classes.insert(key, class);
                }
                Change::DelClass { key } => {
                    plan.classes.remove(&key);
                    // The kernel deletes a class's leaf qdisc with it.
                    remove_qdisc(
                        plan,
                        QdiscKey {
                            dev: key.dev,
                            attach: Attach::Class(key.id),
                        },
                    );
                }
                Change::SetFilter { key, filter } => {
                    plan.filters.insert(key, filter);
                }
                Change::DelFilter { key } => {
                    plan.filters.remove(&key);
                }
                Change::AddMap { name, kind } => {
                    plan.maps.insert(
                        name,
                        NftMap {
                            kind,
                            elements: BTreeMap::new(),
                        },
                    );
                }
                Change::DelMap { name } => {
                    plan.maps.remove(&name);
                }
                Change::SetChain { name, chain } => {
                    plan.chains.insert(name, chain);
                }
                Change::DelChain { name } => {
                    plan.chains.remove(&name);
                }
                Change::SetElement {
                    map, key, value, ..
                } => {
                    if let Some(m) = plan.maps.get_mut(&map) {
                        m.elements.insert(key, value);
                    }
                }
                Change::DelElement { map, key } => {
                    if let Some(m) = plan.maps.get_mut(&map) {
                        m.elements.remove(&key);
                    }
                }
            }
        }
    }
}

/// Removes a qdisc and what the kernel removes with it: the classes it
/// holds, the qdiscs nested under them, and (for clsact or a root HTB) the
/// filters attached to it.
fn remove_qdisc(plan: &mut Plan, key: QdiscKey) {
    let Some(q) = plan.qdiscs.remove(&key) else {
        return;
    };
    match (key.attach, q) {
        (Attach::Clsact, _) => plan
            .filters
            .retain(|k, _| k.dev != key.dev || k.hook == Hook::Root),
        (Attach::Root, _) => {
            plan.classes.retain(|k, _| k.dev != key.dev);
            plan.qdiscs
                .retain(|k, _| k.dev != key.dev || !matches!(k.attach, Attach::Class(_)));
            plan.filters
                .retain(|k, _| k.dev != key.dev || k.hook != Hook::Root);
        }
        (Attach::Class(_), Qdisc::Htb { major, .. }) => {
            let nested: Vec<QdiscKey> = plan
                .qdiscs
                .keys()
                .filter(|k| {
                    k.dev == key.dev && matches!(k.attach, Attach::Class(c) if c.major == major)
                })
                .copied()
                .collect();
            plan.classes
                .retain(|k, _| k.dev != key.dev || k.id.major != major);
            for n in nested {
                remove_qdisc(plan, n);
            }
        }
        (Attach::Class(_), Qdisc::Clsact) => {}
    }
}

/// How deep classes sit below their qdisc (0 for a class whose parent is the
/// qdisc), remembered as they are asked for: children are ordered after their
/// parents and most parents are asked for many times, so each class's depth
/// costs about one hash lookup.
struct Depths<'a> {
    classes: &'a BTreeMap<ClassKey, Class>,
    memo: std::collections::HashMap<ClassKey, usize>,
}

impl<'a> Depths<'a> {
    fn new(classes: &'a BTreeMap<ClassKey, Class>) -> Self {
        Depths {
            classes,
            memo: Default::default(),
        }
    }

    /// The depth of a class whose parent is `parent` on `dev`.
    fn below(&mut self, dev: net_types::IfName, parent: net_types::ClassId) -> usize {
        if parent.minor == 0 {
            return 0;
        }
        self.of(ClassKey { dev, id: parent }).map_or(0, |d| d + 1)
    }

    /// The depth of an existing class, or `None` if there is no such class.
    fn of(&mut self, key: ClassKey) -> Option<usize> {
        if let Some(d) = self.memo.get(&key) {
            return Some(*d);
        }
        // Walk up to the first class whose depth is known (or the top), then
        // fill in the chain on the way back down. A loop (impossible in a
        // kernel, possible in a hand-made plan) stops after every class.
        let mut chain = vec![key];
        let mut top = 0;
        loop {
            let last = chain[chain.len() - 1];
            let Some(class) = self.classes.get(&last) else {
                chain.pop();
                break;
            };
            let parent = ClassKey {
                dev: last.dev,
                id: class.parent,
            };
            if class.parent.minor == 0
                || !self.classes.contains_key(&parent)
                || chain.len() > self.classes.len()
            {
                break;
            }
            if let Some(d) = self.memo.get(&parent) {
                top = d + 1;
                break;
            }
            chain.push(parent);
        }
        let found = !chain.is_empty();
        for (i, k) in chain.iter().rev().enumerate() {
            self.memo.insert(*k, top + i);
        }
        found.then(|| self.memo[&key])
    }
}

/// Walks two sorted maps together and calls `f` once per key with the value
/// on each side: a merge join, so that diffing is linear and does no lookups.
fn merge<'a, K: Ord, V>(
    desired: &'a BTreeMap<K, V>,
    observed: &'a BTreeMap<K, V>,
    mut f: impl FnMut(&'a K, Option<&'a V>, Option<&'a V>),
) {
    let mut d = desired.iter().peekable();
    let mut o = observed.iter().peekable();
    loop {
        match (d.peek(), o.peek()) {
            (Some((dk, dv)), Some((ok, ov))) => match dk.cmp(ok) {
                std::cmp::Ordering::Less => {
                    f(dk, Some(dv), None);
                    d.next();
                }
                std::cmp::Ordering::Greater => {
                    f(ok, None, Some(ov));
                    o.next();
                }
                std::cmp::Ordering::Equal => {
                    f(dk, Some(dv), Some(ov));
                    d.next();
                    o.next();
                }
            },
            (Some((dk, dv)), None) => {
                f(dk, Some(dv), None);
                d.next();
            }
            (None, Some((ok, ov))) => {
                f(ok, None, Some(ov));
                o.next();
            }
            (None, None) => break,
        }
    }
}

/// The changes that turn `observed` into `desired`, make-before-break.
///
/// Objects that exist in both with equal content produce no change, so a
/// change to one tenant yields a change set about that tenant only.
pub fn diff(desired: &Plan, observed: &Plan) -> ChangeSet {
    // A qdisc whose parameters changed, or a class whose parent changed,
    // cannot be changed in place: it is deleted first, with everything the
    // kernel deletes along with it (or refuses to delete it without), and
    // the rest is diffed against what remains. This is the only
    // break-before-make the diff emits; the compiler avoids it by giving
    // moved owners new handles.
    let replaced: Vec<QdiscKey> = desired
        .qdiscs
        .iter()
        .filter(|(k, d)| observed.qdiscs.get(k).is_some_and(|o| o != *d))
        .map(|(k, _)| *k)
        .collect();
    let reparented: Vec<ClassKey> = desired
        .classes
        .iter()
        .filter(|(k, d)| {
            observed
                .classes
                .get(k)
                .is_some_and(|o| o.parent != d.parent)
        })
        .map(|(k, _)| *k)
        .collect();
    if replaced.is_empty() && reparented.is_empty() {
        return diff_in_place(desired, observed);
    }
    let mut pruned = observed.clone();
    let mut changes = Vec::new();
    for key in replaced {
        changes.push(Change::DelQdisc { key });
        remove_qdisc(&mut pruned, key);
    }
    for key in subtrees(&pruned, &reparented) {
        // A class may already be gone with a qdisc deleted above it.
        if pruned.classes.contains_key(&key) {
            changes.push(Change::DelClass { key });
            ChangeSet {
                changes: vec![Change::DelClass { key }],
            }
            .apply_to(&mut pruned);
        }
    }
    changes.extend(diff_in_place(desired, &pruned).changes);
    ChangeSet { changes }
}

/// Every class under `roots` (same qdisc, by parent), with the roots, in an
/// order the kernel can delete them: deeper trees first, children before
/// parents. HTB refuses to delete a class that still has children; a class
/// holding a nested qdisc takes that qdisc and its classes with it.
fn subtrees(plan: &Plan, roots: &[ClassKey]) -> Vec<ClassKey> {
    let mut children: std::collections::HashMap<ClassKey, Vec<ClassKey>> = Default::default();
    for (k, c) in &plan.classes {
        if c.parent.minor != 0 {
            children
                .entry(ClassKey {
                    dev: k.dev,
                    id: c.parent,
                })
                .or_default()
                .push(*k);
        }
    }
    let mut seen: std::collections::HashSet<ClassKey> = Default::default();
    let mut order = Vec::new();
    let mut stack: Vec<ClassKey> = roots
        .iter()
        .filter(|k| plan.classes.contains_key(k))
        .copied()
        .collect();
    while let Some(k) = stack.pop() {
        if seen.insert(k) {
            order.push(k);
            stack.extend(children.get(&k).into_iter().flatten().copied());
        }
    }
    let nesting = Nesting::of(plan);
    let mut depths = Depths::new(&plan.classes);
    let mut keyed: Vec<((usize, usize), ClassKey)> = order
        .into_iter()
        .map(|k| {
            (
                (nesting.level(k.dev, k.id.major), depths.of(k).unwrap_or(0)),
                k,
            )
        })
        .collect();
    keyed.sort_by_key(|(d, k)| (std::cmp::Reverse(*d), *k));
    keyed.into_iter().map(|(_, k)| k).collect()
}

/// How many HTB qdiscs sit above each HTB qdisc of a plan (0 for a root
/// qdisc), by device and major: a nested tree can only be built after the
/// class it hangs from, and must be removed before it.
struct Nesting {
    parent: std::collections::HashMap<(IfName, u16), ClassId>,
}

impl Nesting {
    fn of(plan: &Plan) -> Nesting {
        let parent = plan
            .qdiscs
            .iter()
            .filter_map(|(k, q)| match (k.attach, q) {
                (Attach::Class(c), Qdisc::Htb { major, .. }) => Some(((k.dev, *major), c)),
                _ => None,
            })
            .collect();
        Nesting { parent }
    }

    fn level(&self, dev: IfName, major: u16) -> usize {
        let mut level = 0;
        let mut m = major;
        while let Some(c) = self.parent.get(&(dev, m)) {
            level += 1;
            if level > self.parent.len() {
                break; // a loop in a hand-made plan
            }
            m = c.major;
        }
        level
    }
}

fn diff_in_place(desired: &Plan, observed: &Plan) -> ChangeSet {
    let mut create = Vec::new();
    let mut switch = Vec::new();
    let mut remove = Vec::new();
    // A map whose kind changed is removed first and created again (the
    // classes and qdiscs that cannot change in place were pruned by `diff`).
    let mut early_remove = Vec::new();
    let mut remove_filters = Vec::new();
    let mut remove_chains = Vec::new();
    let mut remove_maps = Vec::new();
    let mut remove_classes = Vec::new();
    let mut remove_qdiscs = Vec::new();
    let mut remove_links = Vec::new();

    merge(&desired.links, &observed.links, |name, d, o| match (d, o) {
        (Some(d), o) if o != Some(d) => create.push(Change::AddLink {
            name: *name,
            link: *d,
        }),
        (None, Some(_)) => remove_links.push(Change::DelLink { name: *name }),
        _ => {}
    });
    // Nested qdiscs are ordered with the classes: after the class they hang
    // from and before the classes they hold (and the reverse on removal).
    let desired_nesting = Nesting::of(desired);
    let observed_nesting = Nesting::of(observed);
    let mut adds: Vec<((usize, usize), Change)> = Vec::new();
    merge(&desired.qdiscs, &observed.qdiscs, |key, d, o| {
        match (d, o, key.attach) {
            (Some(d), None, Attach::Class(c)) => adds.push((
                (desired_nesting.level(key.dev, c.major) + 1, 0),
                Change::AddQdisc {
                    key: *key,
                    qdisc: *d,
                },
            )),
            (Some(d), None, _) => create.push(Change::AddQdisc {
                key: *key,
                qdisc: *d,
            }),
            (None, Some(_), Attach::Class(c)) => remove_classes.push((
                (observed_nesting.level(key.dev, c.major) + 1, 0),
                Change::DelQdisc { key: *key },
            )),
            (None, Some(_), _) => remove_qdiscs.push(Change::DelQdisc { key: *key }),
            _ => {}
        }
    });

    let mut desired_depth = Depths::new(&desired.classes);
    let mut observed_depth = Depths::new(&observed.classes);
    let dlevel = |key: &ClassKey| desired_nesting.level(key.dev, key.id.major);
    let olevel = |key: &ClassKey| observed_nesting.level(key.dev, key.id.major);
    merge(&desired.classes, &observed.classes, |key, d, o| {
        match (d, o) {
            (Some(d), Some(o)) if d == o => {}
            // Same parent: `diff` has rebuilt every class whose parent changed.
            (Some(d), Some(_)) => create.push(Change::ChangeClass {
                key: *key,
                class: *d,
            }),
            (Some(d), None) => adds.push((
                (dlevel(key), desired_depth.below(key.dev, d.parent) + 1),
                Change::AddClass {
                    key: *key,
                    class: *d,
                },
            )),
            (None, Some(o)) => remove_classes.push((
                (olevel(key), observed_depth.below(key.dev, o.parent) + 1),
                Change::DelClass { key: *key },
            )),
            (None, None) => {}
        }
    });
    // Stable by depth (ties keep key order), without a stable sort's
    // scratch copy: the position breaks ties. A first apply at 100,000
    // tenants sorts 1.8 million adds here.
    let mut order: Vec<((usize, usize), u32)> = adds
        .iter()
        .enumerate()
        .map(|(i, (d, _))| (*d, i as u32))
        .collect();
    order.sort_unstable();
    let mut slots: Vec<Option<Change>> = adds.into_iter().map(|(_, c)| Some(c)).collect();
    create.reserve(order.len());
    create.extend(
        order
            .into_iter()
            .filter_map(|(_, i)| slots[i as usize].take()),
    );
    drop(slots);

    let empty = BTreeMap::new();
    merge(&desired.maps, &observed.maps, |name, d, o| match (d, o) {
        // The guard's sets: their elements are the guard's (added and
        // removed while its rungs hold), so the plan only declares them.
        (Some(d), Some(o)) if d.kind == o.kind && d.kind.is_guard_set() => {}
        (Some(d), Some(o)) if d.kind == o.kind => {
            merge(&d.elements, &o.elements, |k, dv, ov| match (dv, ov) {
                (Some(v), previous) if previous != Some(v) => switch.push(Change::SetElement {
                    map: name.clone(),
                    key: k.clone(),
                    value: *v,
                    previous: previous.copied(),
                }),
                (None, Some(_)) => remove.push(Change::DelElement {
                    map: name.clone(),
                    key: k.clone(),
                }),
                _ => {}
            });
        }
        (Some(d), o) => {
            if o.is_some() {
                early_remove.push(Change::DelMap { name: name.clone() });
            }
            create.push(Change::AddMap {
                name: name.clone(),
                kind: d.kind,
            });
            merge(&d.elements, &empty, |k, v, _| {
                if let Some(v) = v {
                    switch.push(Change::SetElement {
                        map: name.clone(),
                        key: k.clone(),
                        value: *v,
                        previous: None,
                    });
                }
            });
        }
        (None, Some(_)) => remove_maps.push(Change::DelMap { name: name.clone() }),
        (None, None) => {}
    });
    // Chains refer to maps, so they come after the maps in the create step.
    merge(&desired.chains, &observed.chains, |name, d, o| {
        match (d, o) {
            (Some(d), o) if o != Some(d) => create.push(Change::SetChain {
                name: name.clone(),
                chain: d.clone(),
            }),
            (None, Some(o)) => {
                remove_chains.push((o.hook.is_none(), Change::DelChain { name: name.clone() }))
            }
            _ => {}
        }
    });
    merge(&desired.filters, &observed.filters, |key, d, o| {
        match (d, o) {
            (Some(d), o) if o != Some(d) => switch.push(Change::SetFilter {
                key: *key,
                filter: *d,
            }),
            (None, Some(_)) => remove_filters.push(Change::DelFilter { key: *key }),
            _ => {}
        }
    });

    remove.extend(remove_filters);
    // Base chains go first: they jump to the regular ones, and nftables
    // refuses to delete a chain that is still jumped to.
    remove_chains.sort_by_key(|(regular, _)| *regular);
    remove.extend(remove_chains.into_iter().map(|(_, c)| c));
    remove.extend(remove_maps);
    // Children before parents.
    remove_classes.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
    remove.extend(remove_classes.into_iter().map(|(_, c)| c));
    remove.extend(remove_qdiscs);
    remove.extend(remove_links);

    // Early removals, then creates, switches, and removals, in one list
    // sized once.
    let mut changes = early_remove;
    changes.reserve_exact(create.len() + switch.len() + remove.len());
    changes.extend(create);
    changes.extend(switch);
    changes.extend(remove);
    ChangeSet { changes }
}
