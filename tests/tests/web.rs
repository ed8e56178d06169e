//! Browser clients over HTTP: the refresh token only in an HttpOnly
//! `__Host-` cookie, rotation through `/web/refresh`, sign-out, and the
//! CSRF rules (registered `Origin` plus the custom header) that refuse a
//! forged request before it changes anything. On SQLite and PostgreSQL.

mod support;

use portcullis_store::testing::TestDb;
use portcullis_store::{
    AuditStore as _, ClientStore as _, NewClient, RefreshStore as _, RevocationStore as _, UnixTime, on_both_backends,
};
use reqwest::header::HeaderMap;
use serde_json::Value;
use support::{App, PASSWORD, assert_error, assert_no_store, form, spawn_with, user};

const ORIGIN: &str = "https://app.example";
const COOKIE: &str = "__Host-portcullis-refresh";

async fn web_client(db: &TestDb, id: &str, origins: &str) {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::parse(origins).expect("origins"),
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
}

/// A call to a cookie endpoint as a page of `origin` makes it (`None`: no
/// `Origin` header), with or without the CSRF header and a cookie.
async fn call(
    app: &App,
    path: &str,
    pairs: &[(&str, &str)],
    origin: Option<&str>,
    csrf: bool,
    cookie: Option<&str>,
) -> support::HttpResponse {
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
    if let Some(c) = cookie {
        req = req.header("cookie", format!("theme=dark; {COOKIE}={c}"));
    }
    req.send().await.expect("request")
}

async fn sign_in(app: &App, client: &str) -> support::HttpResponse {
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

/// The refresh cookie set by `headers`: (value, attributes).
fn set_cookie(headers: &HeaderMap) -> (String, String) {
    let all: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let (pair, attrs) = all[0].split_once("; ").expect("attributes");
    let (name, value) = pair.split_once('=').expect("name=value");
    assert_eq!(name, COOKIE);
    (value.to_owned(), attrs.to_owned())
}

fn assert_cors(headers: &HeaderMap) {
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(headers.get_all("vary").iter().any(|v| v == "Origin"), "{headers:?}");
}

/// A refused request: 403, the OAuth-style error, no CORS (the page may
/// not even read the answer), no cookie.
async fn assert_forbidden(res: support::HttpResponse) {
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(res.headers().get("set-cookie").is_none());
    assert_error(res, 403, "access_denied").await;
}

/// Sign-ins and their ends, as the audit log and the user's families
/// show them: what a refused request must leave alone.
async fn state(db: &TestDb, user_id: &str) -> (usize, Vec<String>) {
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

async fn me(app: &App, access: &str) -> support::HttpResponse {
    app.http
        .get(format!("{}/account/v1/me", app.base))
        .bearer_auth(access)
        .send()
        .await
        .expect("me")
}

async fn web_sign_in_refresh_and_sign_out(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    let alice = user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.refresh_retry_window = std::time::Duration::ZERO;
        c.refresh_race_grace = std::time::Duration::ZERO;
    })
    .await;

    // Sign-in: the access token in the body, the refresh token only in the
    // cookie.
    let res = sign_in(&app, "spa").await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    assert_cors(res.headers());
    let (first, attrs) = set_cookie(res.headers());
    assert_eq!(attrs, "Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=2592000");
    assert!(first.len() >= 32, "{first}");
    let body: Value = res.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    let access = body["access_token"].as_str().expect("access token").to_owned();
    let res = me(&app, &access).await;
    assert_eq!(res.status(), 200);
    let who: Value = res.json().await.expect("json");
    assert_eq!(who["username"], "alice");
    assert_eq!(who["sub"], alice.as_str());
    assert_eq!(who["client_id"], "spa");

    // Refresh: the cookie rotates; the body never carries it.
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&first),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    assert_cors(res.headers());
    let (second, _) = set_cookie(res.headers());
    assert_ne!(second, first);
    let body: Value = res.json().await.expect("json");
    assert!(body.get("refresh_token").is_none() && body["access_token"].is_string());
    // A refresh token in the body is ignored: only the cookie counts.
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa"), ("refresh_token", &second)],
        Some(ORIGIN),
        true,
        None,
    )
    .await;
    // A failed refresh leaves the cookie alone (another tab may just have
    // rotated it).
    assert!(res.headers().get("set-cookie").is_none());
    assert_error(res, 400, "invalid_grant").await;

    // Sign-out ends the sign-in and clears the cookie.
    let res = call(
        &app,
        "/web/sign-out",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&second),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    assert_cors(res.headers());
    let (cleared, attrs) = set_cookie(res.headers());
    assert!(cleared.is_empty() && attrs.ends_with("Max-Age=0"), "{attrs}");
    assert_eq!(res.json::<Value>().await.expect("json"), serde_json::json!({}));
    assert!(state(db, &alice).await.1.is_empty(), "the family lives on");
    // Replaying the cookie after sign-out: refused.
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&second),
    )
    .await;
    assert_error(res, 400, "invalid_grant").await;
    // And the access tokens of the ended sign-in are refused at once.
    assert_eq!(me(&app, &access).await.status(), 401);
    // Signing out again is harmless.
    let res = call(&app, "/web/sign-out", &[("client_id", "spa")], Some(ORIGIN), true, None).await;
    assert_eq!(res.status(), 200);
}

async fn a_replayed_cookie_is_reuse_and_ends_the_sign_in(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    let alice = user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.refresh_retry_window = std::time::Duration::ZERO;
        c.refresh_race_grace = std::time::Duration::ZERO;
    })
    .await;
    let (first, _) = set_cookie(sign_in(&app, "spa").await.headers());
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&first),
    )
    .await;
    let (second, _) = set_cookie(res.headers());
    // A stolen copy of the first cookie is replayed: reuse, the family ends.
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&first),
    )
    .await;
    assert_error(res, 400, "invalid_grant").await;
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&second),
    )
    .await;
    assert_error(res, 400, "invalid_grant").await;
    assert!(state(db, &alice).await.1.is_empty());
}

async fn the_retry_window_gives_a_retried_refresh_the_same_cookie(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |_| {}).await;
    let (first, _) = set_cookie(sign_in(&app, "spa").await.headers());
    let a = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&first),
    )
    .await;
    let b = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&first),
    )
    .await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_eq!(set_cookie(a.headers()).0, set_cookie(b.headers()).0);
}

async fn forged_requests_are_refused_and_change_nothing(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    let alice = user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.refresh_retry_window = std::time::Duration::ZERO;
        c.refresh_race_grace = std::time::Duration::ZERO;
    })
    .await;
    let (cookie, _) = set_cookie(sign_in(&app, "spa").await.headers());
    let before = state(db, &alice).await;
    let creds = [("client_id", "spa"), ("username", "alice"), ("password", PASSWORD)];
    let spa = [("client_id", "spa")];
    for path in ["/web/sign-in", "/web/refresh", "/web/sign-out"] {
        let pairs: &[(&str, &str)] = if path == "/web/sign-in" { &creds } else { &spa };
        // A foreign page.
        assert_forbidden(call(&app, path, pairs, Some("https://evil.example"), true, Some(&cookie)).await).await;
        // A look-alike of the registered origin.
        assert_forbidden(call(&app, path, pairs, Some("https://app.example.evil"), true, Some(&cookie)).await).await;
        assert_forbidden(call(&app, path, pairs, Some("http://app.example"), true, Some(&cookie)).await).await;
        // No Origin (not a browser page, or a privacy-stripped one).
        assert_forbidden(call(&app, path, pairs, None, true, Some(&cookie)).await).await;
        // An opaque origin (sandboxed frame, data: URL).
        assert_forbidden(call(&app, path, pairs, Some("null"), true, Some(&cookie)).await).await;
        // A cross-site form post: a registered-looking Origin cannot come
        // with it, but even from the right origin the custom header is
        // required.
        assert_forbidden(call(&app, path, pairs, Some(ORIGIN), false, Some(&cookie)).await).await;
        let res = app
            .http
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", ORIGIN)
            .header("x-portcullis-csrf", "0")
            .header("cookie", format!("{COOKIE}={cookie}"))
            .body(form(pairs))
            .send()
            .await
            .expect("request");
        assert_forbidden(res).await;
    }
    assert_eq!(state(db, &alice).await, before, "a refused request changed something");
    // The cookie was not rotated by any of them (strict mode: a rotation
    // would make this a reuse) and still works.
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&cookie),
    )
    .await;
    assert_eq!(res.status(), 200);
}

async fn only_web_clients_use_the_cookie_endpoints_and_only_them(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    support::public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |_| {}).await;
    // A mobile (non-web) client has no origins: not here.
    let res = call(
        &app,
        "/web/sign-in",
        &[("client_id", "mobile"), ("username", "alice"), ("password", PASSWORD)],
        Some(ORIGIN),
        true,
        None,
    )
    .await;
    assert_error(res, 400, "unauthorized_client").await;
    // A web client cannot take the JSON flow, which would hand its refresh
    // token to page scripts.
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    assert_error(res, 400, "unauthorized_client").await;
    // An unknown client, or one with a secret: invalid_client.
    let res = call(
        &app,
        "/web/sign-in",
        &[("client_id", "nobody"), ("username", "alice"), ("password", PASSWORD)],
        Some(ORIGIN),
        true,
        None,
    )
    .await;
    assert_error(res, 401, "invalid_client").await;
    let res = call(
        &app,
        "/web/sign-in",
        &[
            ("client_id", "spa"),
            ("client_secret", "x"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
        Some(ORIGIN),
        true,
        None,
    )
    .await;
    assert_error(res, 401, "invalid_client").await;
    // A wrong password: the grant's own error, readable by the page.
    let res = call(
        &app,
        "/web/sign-in",
        &[("client_id", "spa"), ("username", "alice"), ("password", "wrong")],
        Some(ORIGIN),
        true,
        None,
    )
    .await;
    assert_cors(res.headers());
    assert!(res.headers().get("set-cookie").is_none());
    assert_error(res, 400, "invalid_grant").await;
    // A revoked web client is cut off here too.
    db.revoke_client("spa", UnixTime::now()).await.expect("revoke");
    assert_error(sign_in(&app, "spa").await, 401, "invalid_client").await;
}

async fn preflights_are_answered_for_registered_origins_only(db: &TestDb) {
    web_client(db, "spa", &format!("{ORIGIN} https://other.example")).await;
    let app = spawn_with(db, |_| {}).await;
    let preflight = |origin: &'static str, method: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/web/refresh", app.base))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type, x-portcullis-csrf")
            .send()
    };
    let res = preflight(ORIGIN, "POST").await.expect("preflight");
    assert_eq!(res.status(), 204);
    assert_cors(res.headers());
    assert_eq!(res.headers()["access-control-allow-methods"], "POST");
    assert_eq!(
        res.headers()["access-control-allow-headers"],
        "content-type, x-portcullis-csrf"
    );
    let res = preflight("https://other.example", "POST").await.expect("preflight");
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://other.example");
    for (origin, method) in [("https://evil.example", "POST"), (ORIGIN, "DELETE"), ("null", "POST")] {
        let res = preflight(origin, method).await.expect("preflight");
        assert_eq!(res.status(), 403, "{origin} {method}");
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }
}

/// The refusals counted at `/metrics`, by reason.
async fn refusals(app: &App, reason: &str) -> f64 {
    let body = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let label = format!(r#"reason="{reason}""#);
    body.lines()
        .filter(|l| l.starts_with("portcullis_sign_in_refusals_total{") && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// A sign-in refused at `/web/sign-in` for throttling is counted like one
/// at the token endpoint (and held by the refusal delay).
async fn a_throttled_web_sign_in_is_counted_as_a_refusal(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.throttle.per_user_and_address.max = 1;
        c.refusal_delay = std::time::Duration::from_millis(10);
    })
    .await;
    let before = refusals(&app, "throttled").await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let res = call(
            &app,
            "/web/sign-in",
            &[
                ("client_id", "spa"),
                ("username", "alice"),
                ("password", &format!("wrong {i}")),
            ],
            Some(ORIGIN),
            true,
            None,
        )
        .await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert_error(res, 429, "temporarily_unavailable").await;
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let after = refusals(&app, "throttled").await;
    assert!(after >= before + 1.0, "refusals before {before}, after {after}");
}

on_both_backends!(
    web_sign_in_refresh_and_sign_out,
    a_replayed_cookie_is_reuse_and_ends_the_sign_in,
    the_retry_window_gives_a_retried_refresh_the_same_cookie,
    forged_requests_are_refused_and_change_nothing,
    only_web_clients_use_the_cookie_endpoints_and_only_them,
    preflights_are_answered_for_registered_origins_only,
    a_throttled_web_sign_in_is_counted_as_a_refusal,
);

/// Development over plain HTTP: no `Secure`, so no `__Host-` prefix; the
/// path keeps the cookie to the cookie endpoints.
#[tokio::test]
async fn insecure_development_cookies_have_no_prefix() {
    let db = TestDb::sqlite().await;
    web_client(&db, "spa", ORIGIN).await;
    user(&db, "alice", "read").await;
    let app = spawn_with(&db, |c| c.web_insecure_cookies = true).await;
    let res = sign_in(&app, "spa").await;
    assert_eq!(res.status(), 200);
    let raw = res.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(raw.starts_with("portcullis-refresh="), "{raw}");
    assert!(
        raw.ends_with("; Path=/web/; HttpOnly; SameSite=Strict; Max-Age=2592000"),
        "{raw}"
    );
    let value = raw.split(';').next().and_then(|p| p.split_once('=')).expect("pair").1;
    let res = app
        .http
        .post(format!("{}/web/refresh", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", ORIGIN)
        .header("x-portcullis-csrf", "1")
        .header("cookie", format!("portcullis-refresh={value}"))
        .body(form(&[("client_id", "spa")]))
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200);
    db.finish().await;
}
