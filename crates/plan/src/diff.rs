//! From two plans to an ordered list of changes.

use crate::model::*;
use net_types::IfName;
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
            Change::AddLink { name, .. } | Change::DelLink { name } => ObjectId::Link(name.clone()),
            Change::AddQdisc { key, .. } | Change::DelQdisc { key } => ObjectId::Qdisc(key.clone()),
            Change::AddClass { key, .. }
            | Change::ChangeClass { key, .. }
            | Change::DelClass { key } => ObjectId::Class(key.clone()),
            Change::SetFilter { key, .. } | Change::DelFilter { key } => {
                ObjectId::Filter(key.clone())
            }
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
                Change::DelQdisc { key } => {
                    match key.attach {
                        Attach::Root => plan.classes.retain(|k, _| k.dev != key.dev),
                        Attach::Clsact => plan.filters.retain(|k, _| k.dev != key.dev),
                    }
                    plan.qdiscs.remove(&key);
                }
                Change::AddClass { key, class } | Change::ChangeClass { key, class } => {
                    plan.classes.insert(key, class);
                }
                Change::DelClass { key } => {
                    plan.classes.remove(&key);
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

/// How deep a class sits below its qdisc (0 for a class whose parent is the qdisc).
fn depth(classes: &BTreeMap<ClassKey, Class>, key: &ClassKey) -> usize {
    let mut d = 0;
    let mut parent = classes.get(key).map(|c| c.parent);
    while let Some(p) = parent {
        if p.minor == 0 || d > classes.len() {
            break;
        }
        d += 1;
        parent = classes
            .get(&ClassKey {
                dev: key.dev.clone(),
                id: p,
            })
            .map(|c| c.parent);
    }
    d
}

/// The changes that turn `observed` into `desired`, make-before-break.
///
/// Objects that exist in both with equal content produce no change, so a
/// change to one tenant yields a change set about that tenant only.
pub fn diff(desired: &Plan, observed: &Plan) -> ChangeSet {
    let mut create = Vec::new();
    let mut switch = Vec::new();
    let mut remove = Vec::new();
    // Objects that cannot be changed in place are removed first and created
    // again; this is the only break-before-make the diff ever emits, and the
    // compiler avoids it by giving moved tenants new handles.
    let mut early_remove = Vec::new();
    let mut late_create = Vec::new();

    for (name, link) in &desired.links {
        if observed.links.get(name) != Some(link) {
            create.push(Change::AddLink {
                name: name.clone(),
                link: *link,
            });
        }
    }
    for (key, q) in &desired.qdiscs {
        match observed.qdiscs.get(key) {
            Some(o) if o == q => {}
            Some(_) => {
                early_remove.push(Change::DelQdisc { key: key.clone() });
                create.push(Change::AddQdisc {
                    key: key.clone(),
                    qdisc: *q,
                });
            }
            None => create.push(Change::AddQdisc {
                key: key.clone(),
                qdisc: *q,
            }),
        }
    }
    // A qdisc being replaced takes its classes with it, so they count as absent.
    let replaced: Vec<&QdiscKey> = desired
        .qdiscs
        .iter()
        .filter(|(k, q)| observed.qdiscs.get(*k).is_some_and(|o| o != *q))
        .map(|(k, _)| k)
        .collect();
    let class_gone = |k: &ClassKey| {
        replaced
            .iter()
            .any(|q| q.attach == Attach::Root && q.dev == k.dev)
    };

    let mut adds: Vec<(usize, Change)> = Vec::new();
    for (key, class) in &desired.classes {
        match observed.classes.get(key).filter(|_| !class_gone(key)) {
            Some(o) if o == class => {}
            Some(o) if o.parent == class.parent => {
                create.push(Change::ChangeClass {
                    key: key.clone(),
                    class: *class,
                });
            }
            Some(_) => {
                early_remove.push(Change::DelClass { key: key.clone() });
                late_create.push((
                    depth(&desired.classes, key),
                    Change::AddClass {
                        key: key.clone(),
                        class: *class,
                    },
                ));
            }
            None => adds.push((
                depth(&desired.classes, key),
                Change::AddClass {
                    key: key.clone(),
                    class: *class,
                },
            )),
        }
    }
    adds.sort_by_key(|(d, _)| *d);
    create.extend(adds.into_iter().map(|(_, c)| c));

    for (name, map) in &desired.maps {
        match observed.maps.get(name) {
            Some(o) if o.kind == map.kind => {
                for (k, v) in &map.elements {
                    let previous = o.elements.get(k).copied();
                    if previous != Some(*v) {
                        switch.push(Change::SetElement {
                            map: name.clone(),
                            key: k.clone(),
                            value: *v,
                            previous,
                        });
                    }
                }
                for k in o.elements.keys() {
                    if !map.elements.contains_key(k) {
                        remove.push(Change::DelElement {
                            map: name.clone(),
                            key: k.clone(),
                        });
                    }
                }
            }
            other => {
                if other.is_some() {
                    early_remove.push(Change::DelMap { name: name.clone() });
                }
                create.push(Change::AddMap {
                    name: name.clone(),
                    kind: map.kind,
                });
                for (k, v) in &map.elements {
                    switch.push(Change::SetElement {
                        map: name.clone(),
                        key: k.clone(),
                        value: *v,
                        previous: None,
                    });
                }
            }
        }
    }
    // Chains refer to maps, so they come after the maps in the create step.
    for (name, chain) in &desired.chains {
        if observed.chains.get(name) != Some(chain) {
            create.push(Change::SetChain {
                name: name.clone(),
                chain: chain.clone(),
            });
        }
    }
    for (key, f) in &desired.filters {
        let gone = replaced
            .iter()
            .any(|q| q.attach == Attach::Clsact && q.dev == key.dev);
        if gone || observed.filters.get(key) != Some(f) {
            switch.push(Change::SetFilter {
                key: key.clone(),
                filter: f.clone(),
            });
        }
    }

    for key in observed.filters.keys() {
        if !desired.filters.contains_key(key) {
            remove.push(Change::DelFilter { key: key.clone() });
        }
    }
    for name in observed.chains.keys() {
        if !desired.chains.contains_key(name) {
            remove.push(Change::DelChain { name: name.clone() });
        }
    }
    for name in observed.maps.keys() {
        if !desired.maps.contains_key(name) {
            remove.push(Change::DelMap { name: name.clone() });
        }
    }
    let mut dels: Vec<(usize, Change)> = observed
        .classes
        .keys()
        .filter(|k| !desired.classes.contains_key(*k))
        .map(|k| {
            (
                depth(&observed.classes, k),
                Change::DelClass { key: k.clone() },
            )
        })
        .collect();
    dels.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
    remove.extend(dels.into_iter().map(|(_, c)| c));
    for key in observed.qdiscs.keys() {
        if !desired.qdiscs.contains_key(key) {
            remove.push(Change::DelQdisc { key: key.clone() });
        }
    }
    for name in observed.links.keys() {
        if !desired.links.contains_key(name) {
            remove.push(Change::DelLink { name: name.clone() });
        }
    }

    // Early removals (children first), then creates, switches, removals,
    // and last the classes that had to be rebuilt under a new parent.
    early_remove.sort_by_key(|c| match c {
        Change::DelClass { key } => std::cmp::Reverse(depth(&observed.classes, key)),
        _ => std::cmp::Reverse(0),
    });
    late_create.sort_by_key(|(d, _)| *d);
    let mut changes = early_remove;
    changes.extend(create);
    changes.extend(late_create.into_iter().map(|(_, c)| c));
    changes.extend(switch);
    changes.extend(remove);
    ChangeSet { changes }
}
