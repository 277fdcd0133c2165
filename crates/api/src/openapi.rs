//! `GET /api/v1/openapi.json`: the API described as OpenAPI 3.1, generated
//! from the handlers' annotations and the answer types (utoipa), so it
//! cannot drift from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tollgate",
        description = "Shape, account and bill tenants. Every call needs `Authorization: Bearer TOKEN` (`tollgate token add`). Errors are RFC 9457 problem details naming the field at fault.",
    ),
    paths(
        crate::read::status,
        crate::read::tenants,
        crate::read::tenant_one,
        crate::read::usage,
        crate::read::bill,
        crate::read::bills,
        crate::read::realms,
        crate::read::top,
        crate::read::overage,
        crate::read::lookup,
        crate::read::flows,
        crate::write::move_tenant,
        crate::write::patch_tenant,
        crate::write::release,
        crate::write::reload,
        crate::write::transit_relax,
        crate::guard::status,
        crate::guard::history,
        crate::guard::ban,
        crate::guard::unban,
        crate::latency::status,
        crate::latency::history,
        crate::flows::top,
        crate::agents::add_batch,
        crate::agents::standing,
        crate::agents::list,
        crate::session::current,
        crate::session::sign_in,
        crate::session::sign_out,
        crate::site::summary,
        crate::site::usage,
        crate::site::plans,
        crate::transit::report,
        crate::graph::tenant_graph,
        crate::graph::site_graph,
    ),
    components(schemas(crate::problem::Problem)),
    modifiers(&Bearer),
    security(("token" = [])),
)]
pub struct Document;

/// The document as JSON.
pub fn json() -> String {
    Document::openapi().to_pretty_json().unwrap_or_default()
}
