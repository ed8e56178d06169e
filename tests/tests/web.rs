//! Browser clients over HTTP: the refresh token only in an HttpOnly
//! `__Host-` cookie, rotation through `/web/refresh`, sign-out, and which
//! clients may use these endpoints. On SQLite and PostgreSQL. The CSRF
//! rules are in `web_csrf.rs`, the per-client cookies in `web_cookies.rs`.

mod support;

use portcullis_store::testing::TestDb;
use portcullis_store::{RevocationStore as _, UnixTime, on_both_backends};
use serde_json::Value;
use support::web::{ORIGIN, assert_cors, call, set_cookie, sign_in, state, web_client};
use support::{App, PASSWORD, assert_error, assert_no_store, spawn_with, user};

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
    let (first, attrs) = set_cookie(res.headers(), "spa");
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
    let (second, _) = set_cookie(res.headers(), "spa");
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
    let (cleared, attrs) = set_cookie(res.headers(), "spa");
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
    let (first, _) = set_cookie(sign_in(&app, "spa").await.headers(), "spa");
    let res = call(
        &app,
        "/web/refresh",
        &[("client_id", "spa")],
        Some(ORIGIN),
        true,
        Some(&first),
    )
    .await;
    let (second, _) = set_cookie(res.headers(), "spa");
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
    let (first, _) = set_cookie(sign_in(&app, "spa").await.headers(), "spa");
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
    assert_eq!(set_cookie(a.headers(), "spa").0, set_cookie(b.headers(), "spa").0);
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
    only_web_clients_use_the_cookie_endpoints_and_only_them,
    a_throttled_web_sign_in_is_counted_as_a_refusal,
);
