//! The built app, embedded, and the routes that serve it.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One built file.
#[derive(Debug)]
pub struct Asset {
    /// Its URL path (`/index.html`, `/assets/index-HASH.js`).
    pub path: &'static str,
    /// Its content type.
    pub mime: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
    /// The same, gzipped.
    pub gzip: &'static [u8],
    /// A strong validator of its content.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The app's pages: each is `index.html`, which shows the page its URL
/// names.
pub const PAGES: &[&str] = &["/", "/tenants", "/tenants/{id}", "/realms", "/flows"];

/// What a page may load: only this origin's scripts, styles, images and
/// API. No inline script or style attribute, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The file at `path`, if the app has one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The size of the app's JavaScript and CSS, gzipped (what a browser
/// downloads), in bytes.
pub fn compressed_js_css() -> usize {
    ASSETS
        .iter()
        .filter(|a| a.path.ends_with(".js") || a.path.ends_with(".css"))
        .map(|a| a.gzip.len())
        .sum()
}

fn serve(asset: &'static Asset, headers: &HeaderMap, immutable: bool) -> Response {
    let mut r = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let gzip = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut r = if gzip { asset.gzip } else { asset.body }.into_response();
        if gzip {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
        r
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            // Hashed names: a new build has new names.
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn index(headers: HeaderMap) -> Response {
    match find("/index.html") {
        Some(a) => serve(a, &headers, false),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    match find(uri.path()) {
        Some(a) => serve(a, &headers, uri.path().starts_with("/assets/")),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file",
        )
            .into_response(),
    }
}

/// The pages and the app's files, for any state (they need none).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new();
    for page in PAGES {
        r = r.route(page, get(index));
    }
    r = r.route("/assets/{file}", get(file));
    for a in ASSETS {
        if !a.path.starts_with("/assets/") && a.path != "/index.html" {
            r = r.route(a.path, get(file));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn call(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn the_app_is_small_compressed() {
        // The issue's budget: JS and CSS together at most 150 KB as a
        // browser downloads them.
        let size = compressed_js_css();
        assert!(size > 5_000, "no app? {size} bytes");
        assert!(size <= 150_000, "JS + CSS gzipped: {size} bytes > 150 KB");
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.body);
            for bad in [
                "https://cdn",
                "//unpkg.com",
                "//cdn.jsdelivr",
                "fonts.googleapis",
            ] {
                assert!(!text.contains(bad), "{} loads from {bad}", a.path);
            }
        }
    }

    #[tokio::test]
    async fn every_page_is_the_app_with_a_strict_policy() {
        for page in ["/", "/tenants", "/tenants/7", "/realms", "/flows"] {
            let r = call(page, &[]).await;
            assert_eq!(r.status(), StatusCode::OK, "{page}");
            assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            assert!(String::from_utf8_lossy(&body).contains("<main id=\"main\""));
        }
    }

    #[tokio::test]
    async fn assets_are_gzipped_when_asked_and_revalidate_by_etag() {
        let js = ASSETS.iter().find(|a| a.path.ends_with(".js")).unwrap();
        let r = call(js.path, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let body = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, js.body);
        let r = call(js.path, &[("if-none-match", js.etag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            call("/assets/nothing.js", &[]).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
