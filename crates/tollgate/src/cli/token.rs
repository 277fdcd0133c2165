//! `tollgate token`'s arguments.

use clap::Subcommand;

/// `tollgate token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print its secret, once.
    #[command(
        after_help = "The token is stored hashed in the file named by the policy's `[api] tokens` \
(relative to the policy's folder); the secret is printed once and cannot be shown again.

Scopes:
  read         every GET of the API
  admin        every GET, and the writes (move, change, release, reload)
  tenant:ID    one tenant's own pages and bills, nothing else (a customer's view)
  agent        an agent's: ship its batches to this central, nothing else

Examples:
  tollgate token add grafana --scope read
  tollgate token add noc --scope admin
  tollgate token add alice-portal --scope tenant:7"
    )]
    Add {
        /// A name for the token, to list and revoke it by.
        name: String,
        /// What it may do: `read`, `admin`, `agent` or `tenant:ID`.
        #[arg(long)]
        scope: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the tokens (names and scopes; secrets are never shown).
    #[command(after_help = "Examples:
  tollgate token list
  tollgate token list --json | jq '.[].name'")]
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working at once.
    #[command(after_help = "Examples:
  tollgate token revoke grafana")]
    Revoke {
        /// The token's name.
        name: String,
    },
}
