//! Reaching nftables: `nft` processes, and an nfnetlink socket for small
//! element changes.
//!
//! A script given to `nft -f` is one kernel transaction: it applies
//! entirely or not at all, which is what makes an element's delete-and-add
//! (moving a tenant) atomic. So is an nfnetlink batch ([`crate::nfnl`]),
//! which [`Nft::apply_elements`] uses for the small element-only changes
//! of a move or a rate change, where `nft`'s start-up and its reading of
//! the whole map would cost 30–40 ms at 10,000 tenants.

use crate::DataplaneError;
use std::io::Write;
use std::process::{Command, Stdio};

/// How to reach nftables.
#[derive(Debug)]
pub struct Nft {
    program: String,
    /// Opened on first use.
    netlink: Option<crate::nfnl::Nfnl>,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: "nft".into(),
            netlink: None,
        }
    }
}

impl Nft {
    fn command(&self) -> Command {
        Command::new(&self.program)
    }

    fn spawn_error(&self, e: std::io::Error) -> DataplaneError {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataplaneError::Missing {
                feature: "the `nft` program".into(),
                hint: "install nftables: apt-get install nftables".into(),
            }
        } else {
            DataplaneError::io("run nft", e)
        }
    }

    /// Applies element changes as one nfnetlink transaction.
    pub fn apply_elements(
        &mut self,
        changes: &[nft_netlink::ElementChange<'_>],
    ) -> Result<(), String> {
        if self.netlink.is_none() {
            let s = crate::nfnl::Nfnl::open().map_err(|e| format!("open nfnetlink: {e}"))?;
            self.netlink = Some(s);
        }
        let s = self.netlink.as_mut().expect("opened above");
        s.apply(plan::NFT_TABLE, changes)
    }

    /// Runs a script as one transaction.
    pub fn run_script(&self, script: &str) -> Result<(), DataplaneError> {
        if script.trim().is_empty() {
            return Ok(());
        }
        let mut child = self
            .command()
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| DataplaneError::io("write to nft", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| DataplaneError::io("wait for nft", e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(DataplaneError::Nft {
            what: "apply a transaction".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// `nft -j list table netdev tollgate`, or `None` if there is no table.
    pub fn list_table(&self) -> Result<Option<String>, DataplaneError> {
        let out = self
            .command()
            .args(["-j", "list", "table", "netdev", plan::NFT_TABLE])
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        Err(DataplaneError::Nft {
            what: "read tollgate's table".into(),
            message: err.trim().to_owned(),
        })
    }
}
