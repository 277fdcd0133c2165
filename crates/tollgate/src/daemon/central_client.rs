//! The agent's HTTP(S) client for the central tollgate's API
//! (docs/agents.md): `ureq` with rustls (ring), as the webhooks use, so
//! that `[central] url` may be `https://` with the central's own CA
//! (`[central] ca`). Blocking: the shipper thread has nothing else to do
//! while it waits.

use crate::error::{Error, Result};
use engine::shipping::ShippedBatch;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long one exchange may take, connection and TLS included, before
/// it counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may take: a central cut off (packets dropped,
/// no refusal) is noticed in this, not in the whole exchange's time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an agent ships: a central tollgate's API ([`Central`]) or a
/// ClickHouse history written directly
/// ([`super::central_clickhouse::ClickHouseCentral`]). An `Err` is a
/// failure worth retrying (unreachable, a server error); a batch refused
/// for its content is `Ok(Delivery::Refused)`.
pub trait CentralLink: Send {
    /// Where `writer` stands: its committed sequence.
    fn standing(&mut self, writer: &str) -> std::result::Result<Option<u64>, String>;
    /// Delivers a batch.
    fn post(&mut self, batch: &ShippedBatch) -> std::result::Result<Delivery, String>;
}

impl CentralLink for Central {
    fn standing(&mut self, writer: &str) -> std::result::Result<Option<u64>, String> {
        Central::standing(self, writer)
    }

    fn post(&mut self, batch: &ShippedBatch) -> std::result::Result<Delivery, String> {
        Central::post(self, batch)
    }
}

/// The central's API, as this agent reaches it.
pub struct Central {
    url: String,
    token: String,
    agent: ureq::Agent,
}

/// What the central did with a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Committed, or already held: the writer's committed sequence.
    Acknowledged(u64),
    /// Refused for its content (422): sending it again cannot help.
    Refused(String),
}

impl Central {
    /// A client for `url` with `token`; with `ca`, the PEM file whose
    /// certificates may sign the central's (https), read now so that a
    /// wrong path stops the daemon at start rather than at each batch.
    pub fn new(url: &str, token: String, ca: Option<&Path>) -> Result<Central> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(EXCHANGE_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // A connection per exchange: a batch every few minutes does not
            // need one kept, and one kept across a cut link would only be
            // found dead after the whole exchange's timeout.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .http_status_as_error(false)
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| {
                Error::invalid(format!("[central] ca {}: {e}", ca.display()))
                    .hint("name the PEM file of the CA that signed the central's certificate")
            })?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::invalid(format!("[central] ca {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(Error::invalid(format!(
                    "[central] ca {}: no certificate in it",
                    ca.display()
                ))
                .hint("the file must hold PEM certificates (-----BEGIN CERTIFICATE-----)"));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
                    .build(),
            );
        }
        Ok(Central {
            url: url.trim_end_matches('/').to_string(),
            token,
            agent: config.build().into(),
        })
    }

    /// Where `writer` stands on the central: its committed sequence.
    pub fn standing(&self, writer: &str) -> std::result::Result<Option<u64>, String> {
        let path = format!("/api/v1/agents/{writer}");
        let (status, text) = self.exchange(&path, None)?;
        if status != 200 {
            return Err(format!(
                "the central answered {status} to GET {path}: {text}"
            ));
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("the central's answer: {e}"))?;
        Ok(v["sequence"].as_u64())
    }

    /// Posts a batch.
    pub fn post(&self, batch: &ShippedBatch) -> std::result::Result<Delivery, String> {
        let body = serde_json::to_string(batch).map_err(|e| e.to_string())?;
        let (status, text) = self.exchange("/api/v1/history/batches", Some(&body))?;
        match status {
            200 => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("the central's answer: {e}"))?;
                v["sequence"]
                    .as_u64()
                    .map(Delivery::Acknowledged)
                    .ok_or_else(|| format!("the central's answer has no sequence: {text}"))
            }
            422 => Ok(Delivery::Refused(text)),
            _ => Err(format!(
                "the central answered {status} to batch {}: {text}",
                batch.sequence
            )),
        }
    }

    /// One request; the status and the body.
    fn exchange(
        &self,
        path: &str,
        body: Option<&str>,
    ) -> std::result::Result<(u16, String), String> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let unreachable = |e: ureq::Error| format!("cannot reach the central at {}: {e}", self.url);
        let response = match body {
            Some(b) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b),
            None => self.agent.get(&url).header("Authorization", &auth).call(),
        }
        .map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(unreachable)?;
        Ok((status, text))
    }
}
