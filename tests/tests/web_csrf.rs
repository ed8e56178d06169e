//! The CSRF rules of the cookie endpoints over HTTP: a registered
//! `Origin` plus the custom header, checked before anything changes, and
//! CORS preflights answered for registered origins only. On SQLite and
//! PostgreSQL.

mod support;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use support::web::{ORIGIN, assert_cors, assert_forbidden, call, cookie_name, set_cookie, sign_in, state, web_client};
use support::{PASSWORD, form, spawn_with, user};

async fn forged_requests_are_refused_and_change_nothing(db: &TestDb) {
    web_client(db, "spa", ORIGIN).await;
    let alice = user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.refresh_retry_window = std::time::Duration::ZERO;
        c.refresh_race_grace = std::time::Duration::ZERO;
    })
    .await;
    let (cookie, _) = set_cookie(sign_in(&app, "spa").await.headers(), "spa");
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
            .header("cookie", format!("{}={cookie}", cookie_name("spa")))
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
        "content-type, x-portcullis-csrf, dpop"
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

on_both_backends!(
    forged_requests_are_refused_and_change_nothing,
    preflights_are_answered_for_registered_origins_only,
);
