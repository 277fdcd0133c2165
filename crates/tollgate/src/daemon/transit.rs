//! The transit guard's side of the shell: the figures it decides on,
//! read through the query layer as `tollgate transit` reads them, and a
//! relax asked for by `tollgate transit relax` (a request file).

use engine::transit_run::{TransitAssessment, UpstreamFigures};
use history::Store;
use jiff::Timestamp;
use policy::Policy;

/// Every upstream's status at `at` and each tenant's bytes above its
/// commit.
pub(super) fn assess(policy: &Policy, store: &dyn Store, at: Timestamp) -> TransitAssessment {
    match figures(policy, store, at) {
        Ok(upstreams) => TransitAssessment {
            upstreams,
            error: None,
        },
        Err(e) => TransitAssessment {
            upstreams: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

fn figures(
    policy: &Policy,
    store: &dyn Store,
    at: Timestamp,
) -> Result<Vec<UpstreamFigures>, query::QueryError> {
    let open = query::open::open_samples(store)?;
    let mut out = Vec::new();
    for u in policy.transit.iter().flat_map(|t| &t.upstreams) {
        let (report, series) = query::transit::upstream(policy, u, store, &open, at, None)?;
        let shares = query::transit::shares(policy, u, store, &open, &report, &series)?;
        out.push(UpstreamFigures {
            name: u.name.value.clone(),
            status: report.status,
            shares,
        });
    }
    Ok(out)
}
