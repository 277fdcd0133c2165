//! tollgate's web dashboard, served by `tollgate run` on the API's
//! listener.
//!
//! - The browser app lives in `web/` (plain JavaScript modules, uPlot for
//!   time series); `build.rs` builds it with npm and vite into `OUT_DIR`
//!   and embeds every file, gzipped once at build time, so the daemon
//!   needs nothing at run time: no CDN, no files beside the binary.
//! - [`router`] serves the pages (`/`, `/tenants`, `/tenants/{id}`,
//!   `/realms`, `/flows`: each the app, which reads its state from the
//!   URL) and the hashed files under `/assets/`, with a strict
//!   Content-Security-Policy. The pages hold no data: every number comes
//!   from `/api/v1`, which checks the session on every call, so a page or
//!   an asset can reveal nothing to anyone.
//! - [`graph`] draws a rate graph as PNG or SVG on the server, for
//!   customer portals and e-mails (the API's `graph.png` and `graph.svg`).

pub mod assets;
pub mod graph;

pub use assets::{router, Asset, ASSETS};
