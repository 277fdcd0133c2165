//! The Linux dataplane: the only crate in tollgate that changes kernel state.
//!
//! It observes what tollgate owns (its IFB devices, the qdiscs, classes and
//! filters on them and on the interfaces it hooks, and the `netdev tollgate`
//! nftables table) as a [`plan::Plan`], and applies a [`plan::ChangeSet`]
//! to the kernel: tc objects over one rtnetlink socket, nftables through
//! one `nft -f` transaction per run of changes.
//!
//! - [`rtnl`]: the rtnetlink socket (the wire format is the pure
//!   `tc-netlink` crate).
//! - [`observe`]: kernel → `Plan`.
//! - [`clsact`]: whose a clsact qdisc is (the chain that marks tollgate's).
//! - [`root_qdisc`]: whose an interface's root qdisc is (`shape_on =
//!   "interface"`: the kernel's default, tollgate's marked tree, or an
//!   operator's).
//! - [`apply`]: `ChangeSet` → kernel.
//! - [`nft`]: the `nft` program.
//! - [`netns`]: entering a network namespace (the lab, tests).
//! - [`bpf`]: the eBPF classifier's programs and maps (loaded with aya).
//! - [`blackhole`]: the guard's blackhole routes, marked with their own
//!   routing protocol so that only they are ever removed.

pub mod addr_counters;
pub mod apply;
pub mod blackhole;
pub mod bpf;
pub mod clsact;
pub mod guard_sets;
pub mod netns;
pub mod nfnl;
pub mod nft;
pub mod observe;
pub mod root_qdisc;
pub mod rtnl;
pub mod rtt_events;
pub mod xdp;

pub use apply::{ApplyOptions, ApplyReport};
pub use clsact::ClsactOwner;
pub use observe::Observed;

use std::fmt;

/// One change the kernel refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The object, as `ObjectId` prints it.
    pub object: String,
    /// The kernel's (or nft's) reason.
    pub message: String,
}

/// Why the dataplane could not do its work at all.
#[derive(Debug)]
pub enum DataplaneError {
    /// A system call failed.
    Io {
        /// What tollgate was doing.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// nft refused or failed.
    Nft {
        /// What tollgate was doing.
        what: String,
        /// nft's message.
        message: String,
    },
    /// The kernel or the system lacks something tollgate needs.
    Missing {
        /// What is missing.
        feature: String,
        /// What to do.
        hint: String,
    },
}

impl DataplaneError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, error: std::io::Error) -> Self {
        DataplaneError::Io {
            what: what.into(),
            error,
        }
    }
}

impl fmt::Display for DataplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataplaneError::Io { what, error } => {
                write!(f, "could not {what}: {error}")?;
                if error.raw_os_error() == Some(libc::EPERM) {
                    write!(
                        f,
                        "\n  hint: changing the kernel's shaping needs root (CAP_NET_ADMIN)"
                    )?;
                }
                Ok(())
            }
            DataplaneError::Nft { what, message } => write!(f, "nft could not {what}: {message}"),
            DataplaneError::Missing { feature, hint } => {
                write!(f, "this system lacks {feature}\n  hint: {hint}")
            }
        }
    }
}

impl std::error::Error for DataplaneError {}

/// The kernel, as tollgate sees it: one rtnetlink socket and nft.
pub struct Dataplane {
    /// The rtnetlink socket.
    pub rtnl: rtnl::Rtnl,
    /// nftables.
    pub nft: nft::Nft,
    /// Device indexes, refreshed by every observation.
    pub ifindex: std::collections::HashMap<net_types::IfName, u32>,
    /// The eBPF classifier in use, when the last observation found one
    /// with every program the plan needs (else the apply loads one).
    pub bpf: Option<bpf::Classifier>,
    /// tollgate's filters that run the classifier's programs, as last
    /// observed: the apply points them at a fresh object when it has to
    /// load one while they run the old.
    pub ebpf_filters: Vec<(plan::FilterKey, plan::Filter)>,
}

impl Dataplane {
    /// Opens the dataplane of the current network namespace.
    pub fn open() -> Result<Dataplane, DataplaneError> {
        let rtnl =
            rtnl::Rtnl::open().map_err(|e| DataplaneError::io("open an rtnetlink socket", e))?;
        Ok(Dataplane {
            rtnl,
            nft: nft::Nft::default(),
            ifindex: Default::default(),
            bpf: None,
            ebpf_filters: Vec::new(),
        })
    }

    /// The names of every network device, for the compiler's host facts.
    pub fn interfaces(&mut self) -> Result<Vec<net_types::IfName>, DataplaneError> {
        let links = self
            .rtnl
            .links()
            .map_err(|e| DataplaneError::io("list network devices", e))?;
        Ok(links
            .iter()
            .filter_map(|l| net_types::IfName::new(&l.name).ok())
            .collect())
    }

    /// Reads tollgate's objects back; `hint` is the desired plan.
    pub fn observe(&mut self, hint: &plan::Plan) -> Result<Observed, DataplaneError> {
        let mut o = observe::observe(&mut self.rtnl, &self.nft, hint)?;
        self.ifindex = o.ifindex.clone();
        self.observe_bpf(&mut o, hint);
        Ok(o)
    }

    /// Finds the eBPF classifier and reads its maps into the observation.
    /// Filters that run a program other than the classifier's in use are
    /// read as foreign programs, so that the apply points them at it.
    fn observe_bpf(&mut self, o: &mut Observed, hint: &plan::Plan) {
        use plan::Select;
        let needed: Vec<plan::Program> = hint
            .filters
            .values()
            .filter_map(|f| match f.select {
                Select::Ebpf(p) => Some(p),
                _ => None,
            })
            .collect();
        let programs: Vec<(plan::Program, u32)> =
            o.ebpf_filters.iter().map(|(_, p, id)| (*p, *id)).collect();
        self.bpf = bpf::Classifier::find(&programs);
        // Whether it can serve the desired plan is decided where the plan
        // is known (`Observed::plan_for`); with a hint, here too.
        if !needed.is_empty() || hint.maps.keys().any(|m| plan::is_bpf_map(m)) {
            let usable = self.bpf.as_ref().is_some_and(|c| {
                c.has(needed.iter().copied())
                    && hint
                        .maps
                        .keys()
                        .filter(|m| plan::is_bpf_map(m))
                        .all(|m| c.has_map(m))
            });
            if !usable {
                self.bpf = None;
            }
        }
        let names: std::collections::HashMap<u32, net_types::IfName> =
            o.ifindex.iter().map(|(n, i)| (*i, *n)).collect();
        if let Some(c) = &self.bpf {
            o.bpf_programs = plan::Program::ALL
                .into_iter()
                .filter(|p| c.program_id(*p).is_some())
                .collect();
            match c.read(&names) {
                Ok(maps) => o.bpf_maps = maps,
                Err(e) => {
                    tracing::warn!("could not read the eBPF classifier's maps: {e}");
                    self.bpf = None;
                    o.bpf_programs.clear();
                }
            }
        }
        for (key, p, id) in &o.ebpf_filters {
            let current = self.bpf.as_ref().and_then(|c| c.program_id(*p)) == Some(*id);
            if !current {
                if let Some(f) = o.plan.filters.get_mut(key) {
                    f.select = Select::Mark(u32::MAX);
                }
            }
        }
        o.plan.maps.extend(o.bpf_maps.clone());
        self.ebpf_filters = o
            .plan
            .filters
            .iter()
            .filter(|(_, f)| matches!(f.select, Select::Ebpf(_)))
            .map(|(k, f)| (*k, *f))
            .collect();
    }

    /// The eBPF classifier's throttle victims, when it runs here (one
    /// observation to find its programs: the guard's rungs are rare).
    pub fn victims(&mut self) -> Result<Option<bpf::Victims>, DataplaneError> {
        let o = observe::observe(&mut self.rtnl, &self.nft, &plan::Plan::default())?;
        let programs: Vec<(plan::Program, u32)> =
            o.ebpf_filters.iter().map(|(_, p, id)| (*p, *id)).collect();
        if programs.is_empty() {
            return Ok(None);
        }
        Ok(bpf::Victims::find(&programs))
    }

    /// Applies a change set.
    pub fn apply(
        &mut self,
        cs: &plan::ChangeSet,
        opts: &ApplyOptions,
    ) -> Result<ApplyReport, DataplaneError> {
        apply::apply(
            &mut self.rtnl,
            &mut self.nft,
            &mut self.ifindex,
            &mut self.bpf,
            &self.ebpf_filters,
            cs,
            opts,
        )
    }
}
