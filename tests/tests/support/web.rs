//! Calls to the cookie endpoints (`/web/…`) as a browser page makes them,
//! and what their answers must carry.

use portcullis_store::testing::TestDb;
use portcullis_store::{AuditStore as _, ClientStore as _, NewClient, RefreshStore as _, UnixTime};
use reqwest::header::HeaderMap;

use super::{App, HttpResponse, PASSWORD, assert_error, form};

/// The registered origin of the web clients made by [`web_client`].
pub const ORIGIN: &str = "https://app.example";

/// The refresh cookie's name for `client`.
pub fn cookie_name(client: &str) -> String {
    format!("__Host-portcullis-refresh-{client}")
}

/// A web client `id` (public, password and refresh grants, scope `read`)
/// with the space-separated `origins`.
pub async fn web_client(db: &TestDb, id: &str, origins: &str) {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::parse(origins).expect("origins"),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
}

/// A call to a cookie endpoint as a page of `origin` makes it (`None`: no
/// `Origin` header), with or without the CSRF header, and with `cookie`
/// (a value) under the refresh cookie name of the form's `client_id`.
pub async fn call(
    app: &App,
    path: &str,
    pairs: &[(&str, &str)],
    origin: Option<&str>,
    csrf: bool,
    cookie: Option<&str>,
) -> HttpResponse {
    let client = pairs.iter().find(|(k, _)| *k == "client_id").map_or("", |(_, v)| v);
    let jar = cookie.map(|c| format!("theme=dark; {}={c}", cookie_name(client)));
    post(app, path, pairs, origin, csrf, jar.as_deref()).await
}

/// A call from [`ORIGIN`] with the CSRF header, for `client`, carrying the
/// raw `Cookie` header `jar` (several apps' cookies, as a browser sends
/// them).
pub async fn call_with_jar(app: &App, path: &str, client: &str, jar: &str) -> HttpResponse {
    post(app, path, &[("client_id", client)], Some(ORIGIN), true, Some(jar)).await
}

async fn post(
    app: &App,
    path: &str,
    pairs: &[(&str, &str)],
    origin: Option<&str>,
    csrf: bool,
    jar: Option<&str>,
) -> HttpResponse {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if csrf {
        req = req.header("x-portcullis-csrf", "1");
    }
    if let Some(j) = jar {
        req = req.header("cookie", j);
    }
    req.send().await.expect("request")
}

/// `alice` signs in through the web client `client` from [`ORIGIN`].
pub async fn sign_in(app: &App, client: &str) -> HttpResponse {
    call(
        app,
        "/web/sign-in",
        &[("client_id", client), ("username", "alice"), ("password", PASSWORD)],
        Some(ORIGIN),
        true,
        None,
    )
    .await
}

/// The one refresh cookie set by `headers`, which must be `client`'s:
/// (value, attributes).
pub fn set_cookie(headers: &HeaderMap, client: &str) -> (String, String) {
    let all: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let (pair, attrs) = all[0].split_once("; ").expect("attributes");
    let (name, value) = pair.split_once('=').expect("name=value");
    assert_eq!(name, cookie_name(client));
    (value.to_owned(), attrs.to_owned())
}

/// The CORS headers a registered page needs to read an answer.
pub fn assert_cors(headers: &HeaderMap) {
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    // The page reads the DPoP nonce for its next proof.
    assert_eq!(headers["access-control-expose-headers"], "dpop-nonce");
    assert!(headers.get_all("vary").iter().any(|v| v == "Origin"), "{headers:?}");
}

/// A refused request: 403, the OAuth-style error, no CORS (the page may
/// not even read the answer), no cookie.
pub async fn assert_forbidden(res: HttpResponse) {
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(res.headers().get("set-cookie").is_none());
    assert_error(res, 403, "access_denied").await;
}

/// Sign-ins and their ends, as the audit log and the user's families
/// show them: what a refused request must leave alone.
pub async fn state(db: &TestDb, user_id: &str) -> (usize, Vec<String>) {
    let events = db.audit_events(None, 500).await.expect("audit").len();
    let mut families: Vec<String> = db
        .live_families_for_user(user_id, UnixTime::now())
        .await
        .expect("families")
        .into_iter()
        .map(|f| f.id)
        .collect();
    families.sort();
    (events, families)
}
