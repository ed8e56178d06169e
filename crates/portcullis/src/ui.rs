//! The browser pages: the sign-in demo (`/demo/`, off by default) and the
//! admin console (`/admin/`, on by default).
//!
//! Plain static files compiled into the binary (`crates/portcullis/ui/`),
//! plus a `config.json` beside each page naming the client it signs in
//! with. Every answer carries a strict Content-Security-Policy (scripts,
//! styles and requests from this origin only, no inline code, no framing),
//! so an injected `<script>` or a hostile frame gets nowhere.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// What the pages may load and where they may send requests: only this
/// origin, no inline scripts or styles, no frames, no `<base>`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One compiled-in file: its name under the page's directory (empty for
/// the index), content type and body.
struct Asset(&'static str, &'static str, &'static str);

const DEMO: &[Asset] = &[
    Asset("", HTML, include_str!("../ui/demo/index.html")),
    Asset("demo.js", JS, include_str!("../ui/demo/demo.js")),
    Asset("demo.css", CSS, include_str!("../ui/demo/demo.css")),
];

const ADMIN: &[Asset] = &[
    Asset("", HTML, include_str!("../ui/admin/index.html")),
    Asset("admin.js", JS, include_str!("../ui/admin/admin.js")),
    Asset("forms.js", JS, include_str!("../ui/admin/forms.js")),
    Asset("admin.css", CSS, include_str!("../ui/admin/admin.css")),
];

/// The pages switched on in `settings`: `/demo/` when `demo_client_id` is
/// set, `/admin/` when `admin_console_client_id` is. Paths of a page that
/// is off are not routed (404). `/admin/v1/…` is the admin API, routed
/// elsewhere.
pub fn router(settings: &crate::Settings) -> Router {
    let mut router = Router::new();
    if let Some(client_id) = &settings.demo_client_id {
        router = router.merge(site("/demo", DEMO, client_id));
    }
    if let Some(client_id) = &settings.admin_console_client_id {
        router = router.merge(site("/admin", ADMIN, client_id));
    }
    router.layer(map_response(protect))
}

/// The routes of one page: its files, its `config.json`, and a redirect
/// from the bare directory name to the slash form (so relative URLs in the
/// page resolve under it).
fn site(base: &'static str, assets: &'static [Asset], client_id: &str) -> Router {
    let config = serde_json::json!({ "client_id": client_id }).to_string();
    // Relative, so it also works behind a proxy that adds a path prefix.
    let slash = format!("{}/", base.trim_start_matches('/'));
    let mut router = Router::new().route(base, get(move || async move { Redirect::permanent(&slash) }));
    for &Asset(name, content_type, body) in assets {
        router = router.route(
            &format!("{base}/{name}"),
            get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }),
        );
    }
    router.route(
        &format!("{base}/config.json"),
        get(move || {
            let config = config.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], config).into_response() }
        }),
    )
}

/// The security headers of every UI answer. `no-cache`: browsers may keep
/// the files but check them on every load, so an upgrade is seen at once.
async fn protect(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in set {
        h.insert::<HeaderName>(name, HeaderValue::from_static(value));
    }
    res
}
