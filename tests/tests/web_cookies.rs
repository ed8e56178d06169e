//! Each web client has its own refresh cookie
//! (`__Host-portcullis-refresh-<client_id>`): apps on one server are signed
//! in side by side, `/web/refresh` and `/web/sign-out` read only the
//! calling client's cookie, and a cookie holding another client's sign-in
//! is refused (400 `invalid_grant`) and neither revoked nor cleared. On
//! SQLite and PostgreSQL.

mod support;

use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use support::web::{ORIGIN, call_with_jar, cookie_name, set_cookie, sign_in, state, web_client};
use support::{App, assert_error, form, spawn_with, user};

/// Two web clients on one origin and alice; strict rotation, so that any
/// refresh a test did not expect would show up as reuse.
async fn two_apps(db: &TestDb) -> (App, String) {
    web_client(db, "spa", ORIGIN).await;
    web_client(db, "notes", ORIGIN).await;
    let alice = user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.refresh_retry_window = Duration::ZERO;
        c.refresh_race_grace = Duration::ZERO;
    })
    .await;
    (app, alice)
}

/// Asserts that `res` is refused with `invalid_grant`, readable by the
/// page, and sets no cookie.
async fn assert_refused_keeping_cookies(res: support::HttpResponse) {
    assert!(res.headers().get("set-cookie").is_none(), "{:?}", res.headers());
    assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);
    assert_error(res, 400, "invalid_grant").await;
}

async fn two_web_apps_are_signed_in_side_by_side_and_sign_out_alone(db: &TestDb) {
    let (app, alice) = two_apps(db).await;
    let (spa, attrs) = set_cookie(sign_in(&app, "spa").await.headers(), "spa");
    assert_eq!(attrs, "Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=2592000");
    let (notes, _) = set_cookie(sign_in(&app, "notes").await.headers(), "notes");
    // The browser sends both apps' cookies with every request.
    let jar = |spa: &str, notes: &str| format!("{}={spa}; {}={notes}", cookie_name("spa"), cookie_name("notes"));

    // Each refresh reads and rotates its own client's cookie only.
    let res = call_with_jar(&app, "/web/refresh", "spa", &jar(&spa, &notes)).await;
    assert_eq!(res.status(), 200);
    let (spa, _) = set_cookie(res.headers(), "spa");
    let res = call_with_jar(&app, "/web/refresh", "notes", &jar(&spa, &notes)).await;
    assert_eq!(res.status(), 200);
    let (notes, _) = set_cookie(res.headers(), "notes");
    assert_eq!(state(db, &alice).await.1.len(), 2);

    // spa signs out: its sign-in ends and its cookie is cleared; notes' lives on.
    let res = call_with_jar(&app, "/web/sign-out", "spa", &jar(&spa, &notes)).await;
    assert_eq!(res.status(), 200);
    let (cleared, attrs) = set_cookie(res.headers(), "spa");
    assert!(cleared.is_empty() && attrs.ends_with("Max-Age=0"), "{attrs}");
    assert_eq!(state(db, &alice).await.1.len(), 1);
    let res = call_with_jar(&app, "/web/refresh", "spa", &jar(&spa, &notes)).await;
    assert_refused_keeping_cookies(res).await;
    let res = call_with_jar(
        &app,
        "/web/refresh",
        "notes",
        &format!("{}={notes}", cookie_name("notes")),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (notes, _) = set_cookie(res.headers(), "notes");

    // Then notes signs out, alone too.
    let res = call_with_jar(
        &app,
        "/web/sign-out",
        "notes",
        &format!("{}={notes}", cookie_name("notes")),
    )
    .await;
    assert_eq!(res.status(), 200);
    set_cookie(res.headers(), "notes");
    assert!(state(db, &alice).await.1.is_empty());
}

async fn a_cookie_of_another_client_is_refused_and_not_cleared(db: &TestDb) {
    let (app, alice) = two_apps(db).await;
    let (spa, _) = set_cookie(sign_in(&app, "spa").await.headers(), "spa");
    let before = state(db, &alice).await;
    // spa's sign-in planted under notes' cookie name (cookie tossing, or a
    // page of notes replaying what it got hold of).
    let planted = format!("{}={spa}", cookie_name("notes"));
    assert_refused_keeping_cookies(call_with_jar(&app, "/web/refresh", "notes", &planted).await).await;
    assert_refused_keeping_cookies(call_with_jar(&app, "/web/sign-out", "notes", &planted).await).await;
    assert_eq!(state(db, &alice).await, before, "a foreign cookie changed something");

    // notes signing out with only spa's cookie in the jar touches nothing
    // of spa's: it clears notes' (absent) cookie only.
    let res = call_with_jar(&app, "/web/sign-out", "notes", &format!("{}={spa}", cookie_name("spa"))).await;
    assert_eq!(res.status(), 200);
    set_cookie(res.headers(), "notes");
    assert_eq!(state(db, &alice).await, before);

    // The old shared cookie name is not read by anyone.
    let legacy = format!("__Host-portcullis-refresh={spa}");
    assert_refused_keeping_cookies(call_with_jar(&app, "/web/refresh", "spa", &legacy).await).await;

    // spa's sign-in was never rotated or ended by any of it (strict mode).
    let res = call_with_jar(&app, "/web/refresh", "spa", &format!("{}={spa}", cookie_name("spa"))).await;
    assert_eq!(res.status(), 200);
}

on_both_backends!(
    two_web_apps_are_signed_in_side_by_side_and_sign_out_alone,
    a_cookie_of_another_client_is_refused_and_not_cleared,
);

/// Development over plain HTTP: no `Secure`, so no `__Host-` prefix; the
/// path keeps the cookie to the cookie endpoints. Still one per client.
#[tokio::test]
async fn insecure_development_cookies_have_no_prefix() {
    let db = TestDb::sqlite().await;
    web_client(&db, "spa", ORIGIN).await;
    user(&db, "alice", "read").await;
    let app = spawn_with(&db, |c| c.web_insecure_cookies = true).await;
    let res = sign_in(&app, "spa").await;
    assert_eq!(res.status(), 200);
    let raw = res.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(raw.starts_with("portcullis-refresh-spa="), "{raw}");
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
        .header("cookie", format!("portcullis-refresh-spa={value}"))
        .body(form(&[("client_id", "spa")]))
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200);
    db.finish().await;
}
