//! `tollgate token`: API tokens, kept hashed in the file the policy's
//! `[api] tokens` names (default `api-tokens.json` next to the policy).

use super::Context;
use crate::cli::token::TokenCommand;
use crate::error::{Context as _, Error, Result};
use api::tokens::{Scope, TokenFile};
use std::process::ExitCode;

fn refuse(e: api::tokens::TokenError) -> Error {
    match e {
        api::tokens::TokenError::Invalid(m) => Error::invalid(m),
        other => Error::runtime(other.to_string()),
    }
}

pub fn run(cx: &Context, cmd: &TokenCommand) -> Result<ExitCode> {
    // The policy names the file; a policy that does not load still has a
    // default place, next to it.
    let policy = crate::policy_file::load(&cx.config)
        .ok()
        .and_then(|l| l.policy);
    let path = crate::api_server::tokens_path(&cx.config, policy.as_ref());
    let mut file = TokenFile::load(&path).map_err(refuse)?;
    match cmd {
        TokenCommand::Add { name, scope, json } => {
            let scope: Scope = scope.parse().map_err(refuse)?;
            if let (Scope::Tenant(id), Some(p)) = (scope, &policy) {
                if p.tenant(net_types::TenantId(id)).is_none() {
                    return Err(Error::invalid(format!("the policy has no tenant {id}"))
                        .hint("a tenant token names the tenant's numeric id; `tollgate status` lists them"));
                }
            }
            let secret = file
                .add(name, scope, jiff::Timestamp::now())
                .map_err(refuse)?;
            crate::state_dir::replace_atomically(&path, file.to_text().as_bytes())?;
            if *json {
                sayln!(
                    "{}",
                    crate::output::json_line(
                        &serde_json::json!({"name": name, "scope": scope.to_string(), "token": secret, "file": path.display().to_string()})
                    )?
                );
            } else {
                sayln!("{secret}");
                eprintln!(
                    "token `{name}` ({scope}) added to {}; the secret above is shown once: keep it now",
                    path.display()
                );
            }
        }
        TokenCommand::List { json } => {
            if *json {
                let list: Vec<_> = file
                    .tokens
                    .iter()
                    .map(|t| serde_json::json!({"name": t.name, "scope": t.scope.to_string(), "created": t.created}))
                    .collect();
                say!("{}", crate::output::json_pretty(&list)?);
            } else if file.tokens.is_empty() {
                sayln!("no tokens in {}", path.display());
            } else {
                say!("{}", crate::output::api::tokens(&file));
            }
        }
        TokenCommand::Revoke { name } => {
            let t = file.revoke(name).map_err(refuse)?;
            crate::state_dir::replace_atomically(&path, file.to_text().as_bytes())
                .runtime("cannot write the tokens file")?;
            sayln!(
                "token `{}` ({}) revoked; it stops working at once",
                t.name,
                t.scope
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
