//! The arguments of the commands that change the live kernel for one
//! tenant or interface: `tenant move` and `hook vif`.

use clap::{Subcommand, ValueEnum};

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Move a tenant to another plan (and optionally parent), make-before-break.
    #[command(
        after_help = "The policy file is edited in place, keeping its comments and layout, \
and only that tenant's kernel objects change: new classes are built, classification switches to \
them atomically, and the old classes are removed once their queues have drained.

Examples:
  tollgate tenant move alice --plan business
  tollgate tenant move alice --plan business --parent reseller-b
  tollgate tenant move 7 --plan overage      # into a shared pool"
    )]
    Move {
        /// The tenant's id or name.
        tenant: String,
        /// The plan to move to.
        #[arg(long)]
        plan: String,
        /// The parent to move under. A tenant moving into a shared plan
        /// leaves its parent, because the plan's pool has its own.
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// A VM interface appeared (`online`) or is going away (`offline`).
    #[command(
        after_help = "Applies or removes the shaping of the tenant whose `interface` is \
IFNAME, and nothing else. See docs/dataplane.md for wiring it into Xen's vif scripts and \
libvirt's qemu hook.

Examples:
  tollgate hook vif online vif3.0
  tollgate hook vif offline vif3.0"
    )]
    Vif {
        /// `online` or `offline`.
        #[arg(value_enum)]
        state: VifState,
        /// The interface.
        ifname: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VifState {
    /// The interface exists: shape it.
    Online,
    /// The interface is going: unhook it.
    Offline,
}
