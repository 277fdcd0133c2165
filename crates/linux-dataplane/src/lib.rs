//! The Linux dataplane: the only crate in tollgate that changes kernel state.
//!
//! It observes what tollgate owns (its IFB devices, the qdiscs, classes and
//! filters on them and on the interfaces it hooks, and the `netdev tollgate`
//! nftables table) as a [`plan::Plan`], and applies a [`plan::ChangeSet`]
//! to the kernel: tc objects over one rtnetlink socket, nftables through
//! one `nft -f` transaction.

pub mod rtnl;
pub mod lab;
