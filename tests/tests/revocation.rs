//! Revocation (RFC 7009) and introspection (RFC 7662) over HTTP on both
//! backends, and what each revocation puts in the revocation feed (whose
//! access rules and verifier are tested in `revocation_feed.rs`).

mod support;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use portcullis_store::{RevocationStore as _, UnixTime};
use serde_json::{Value, json};
use support::*;

fn sid_of(access_token: &str) -> String {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    let claims: Value = serde_json::from_slice(&bytes).expect("json");
    claims["sid"].as_str().expect("sid").to_owned()
}

const FEED_SECRET: &str = "feed-secret.Nine-amber-kites-drift-over-the-salt-marsh_7Qm2vX9pL4";

/// A server whose revocation feed these tests read with its secret (the
/// feed's own rules are tested in `revocation_feed.rs`).
async fn spawn(db: &TestDb) -> App {
    spawn_with(db, |c| c.revocation_feed_secret = Some(FEED_SECRET.into())).await
}

async fn feed(app: &App, since: i64) -> Value {
    let res = app
        .http
        .get(format!("{}/oauth/revocations?since={since}", app.base))
        .bearer_auth(FEED_SECRET)
        .send()
        .await
        .expect("feed");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "private, no-store");
    res.json().await.expect("json")
}

async fn revoking_a_refresh_token_ends_its_family_and_feeds_it(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let first = app.sign_in("mobile", "alice").await;
    let other = app.sign_in_refresh_token("mobile", "alice").await;
    let rt = first["refresh_token"].as_str().expect("rt");
    let res = app
        .post_form(
            "/oauth/revoke",
            &[
                ("client_id", "mobile"),
                ("token", rt),
                ("token_type_hint", "refresh_token"),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    assert!(res.bytes().await.expect("body").is_empty());
    assert_error(app.refresh("mobile", rt).await, 400, "invalid_grant").await;
    assert_eq!(
        app.refresh("mobile", &other).await.status(),
        200,
        "the other device is untouched"
    );
    let entries = feed(&app, 0).await["entries"].clone();
    assert_eq!(entries.as_array().expect("entries").len(), 1);
    assert_eq!(entries[0]["kind"], "family");
    assert_eq!(
        entries[0]["id"],
        sid_of(first["access_token"].as_str().expect("at")).as_str()
    );
    assert!(entries[0]["cursor"].as_i64().expect("cursor") > 0);
}

async fn revoking_unknown_or_foreign_tokens_answers_200_and_changes_nothing(db: &TestDb) {
    public(db, "mobile", "read").await;
    public(db, "other", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let rt = app.sign_in_refresh_token("mobile", "alice").await;
    for token in ["garbage", "", "x.y.z"] {
        let res = app
            .post_form("/oauth/revoke", &[("client_id", "mobile"), ("token", token)], None)
            .await;
        if token.is_empty() {
            assert_error(res, 400, "invalid_request").await;
        } else {
            assert_eq!(res.status(), 200, "{token}");
        }
    }
    let res = app
        .post_form("/oauth/revoke", &[("client_id", "other"), ("token", &rt)], None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.refresh("mobile", &rt).await.status(),
        200,
        "another client cannot revoke it"
    );
    let res = app
        .post_form("/oauth/revoke", &[("client_id", "nobody"), ("token", "x")], None)
        .await;
    assert_error(res, 401, "invalid_client").await;
    assert!(feed(&app, 0).await["entries"].as_array().expect("entries").is_empty());
}

async fn introspection_describes_live_tokens_only(db: &TestDb) {
    public(db, "mobile", "read write").await;
    let rs = introspector(db, "api").await;
    let alice = user(db, "alice", "read write").await;
    let app = spawn(db).await;
    let body = app.sign_in("mobile", "alice").await;
    let (at, rt) = (
        body["access_token"].as_str().expect("at"),
        body["refresh_token"].as_str().expect("rt"),
    );
    let auth = Some(("api", rs.as_str()));

    let res = app.post_form("/oauth/introspect", &[("token", at)], auth).await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    let info: Value = res.json().await.expect("json");
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["sub"], alice.as_str());
    assert_eq!(info["client_id"], "mobile");
    assert_eq!(info["scope"], "read write");
    assert!(info["exp"].as_i64().is_some() && info["jti"].as_str().is_some());

    let info: Value = app
        .post_form("/oauth/introspect", &[("token", rt)], auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(
        (info["client_id"].as_str(), info["sub"].as_str()),
        (Some("mobile"), Some(alice.as_str()))
    );
    assert_eq!(info["scope"], "read write");

    for dead in ["garbage", "a.b.c", &at.replace('.', "x")] {
        let info: Value = app
            .post_form("/oauth/introspect", &[("token", dead)], auth)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(info, json!({"active": false}), "{dead}");
    }
    // Spent refresh token; revoked family: both inactive, and the access
    // token of that family too.
    let next: Value = app.refresh("mobile", rt).await.json().await.expect("json");
    let info: Value = app
        .post_form("/oauth/introspect", &[("token", rt)], auth)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info, json!({"active": false}));
    let rt2 = next["refresh_token"].as_str().expect("rt");
    app.post_form("/oauth/revoke", &[("client_id", "mobile"), ("token", rt2)], None)
        .await;
    for token in [at, rt2] {
        let info: Value = app
            .post_form("/oauth/introspect", &[("token", token)], auth)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(info, json!({"active": false}));
    }
}

async fn introspection_needs_an_authenticated_client_with_permission(db: &TestDb) {
    public(db, "mobile", "read").await;
    let secret = confidential(db, "web", "password", "read", "read").await;
    let rs = introspector(db, "api").await;
    let app = spawn(db).await;
    assert_error(
        app.post_form("/oauth/introspect", &[("token", "x")], Some(("web", &secret)))
            .await,
        403,
        "unauthorized_client",
    )
    .await;
    assert_error(
        app.post_form("/oauth/introspect", &[("token", "x"), ("client_id", "mobile")], None)
            .await,
        403,
        "unauthorized_client",
    )
    .await;
    let res = app
        .post_form("/oauth/introspect", &[("token", "x")], Some(("api", "wrong")))
        .await;
    assert_error(res, 401, "invalid_client").await;
    assert_error(
        app.post_form("/oauth/introspect", &[], Some(("api", &rs))).await,
        400,
        "invalid_request",
    )
    .await;
}

async fn a_revoked_access_token_is_fed_by_jti_and_introspects_inactive(db: &TestDb) {
    public(db, "mobile", "read").await;
    let rs = introspector(db, "api").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let at = app.sign_in("mobile", "alice").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    assert_eq!(
        app.post_form("/oauth/revoke", &[("client_id", "mobile"), ("token", &at)], None)
            .await
            .status(),
        200
    );
    let entries = feed(&app, 0).await["entries"].clone();
    assert_eq!(entries[0]["kind"], "jti");
    let info: Value = app
        .post_form("/oauth/introspect", &[("token", &at)], Some(("api", &rs)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info, json!({"active": false}));
}

async fn a_revoked_client_gets_no_tokens_and_its_tokens_die(db: &TestDb) {
    public(db, "mobile", "read").await;
    let rs = introspector(db, "api").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let body = app.sign_in("mobile", "alice").await;
    db.revoke_client("mobile", UnixTime::now()).await.expect("revoke");
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "mobile"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    assert_error(res, 401, "invalid_client").await;
    assert_error(
        app.refresh("mobile", body["refresh_token"].as_str().expect("rt")).await,
        401,
        "invalid_client",
    )
    .await;
    let at = body["access_token"].as_str().expect("at");
    let info: Value = app
        .post_form("/oauth/introspect", &[("token", at)], Some(("api", &rs)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info, json!({"active": false}));
    let entries = feed(&app, 0).await["entries"].clone();
    assert_eq!(
        (entries[0]["kind"].as_str(), entries[0]["id"].as_str()),
        (Some("client"), Some("mobile"))
    );
}

on_both_backends!(
    revoking_a_refresh_token_ends_its_family_and_feeds_it,
    revoking_unknown_or_foreign_tokens_answers_200_and_changes_nothing,
    introspection_describes_live_tokens_only,
    introspection_needs_an_authenticated_client_with_permission,
    a_revoked_access_token_is_fed_by_jti_and_introspects_inactive,
    a_revoked_client_gets_no_tokens_and_its_tokens_die,
);
