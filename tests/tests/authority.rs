//! The server's own checks of its access tokens, on both backends: the
//! admin API asks the stored user, not only the token; a token without
//! `sid`, with a `crit` header or claiming a lifetime longer than the
//! configured one is refused by the admin and account APIs and
//! introspects inactive, even when signed with the server's own key (a
//! stolen copy of it, say).

mod support;

use portcullis_domain::ADMIN_SCOPE;
use portcullis_store::testing::{TestDb, TestingStore as _};
use portcullis_store::{KeyStore as _, UnixTime, on_both_backends};
use portcullis_token::keys::Signer;
use serde_json::{Value, json};
use support::*;

/// Signs the admin `root` in through `console`; returns the user id and
/// the access token.
async fn admin_sign_in(db: &TestDb, app: &App) -> (String, String) {
    public(db, "console", ADMIN_SCOPE).await;
    let id = user(db, "root", ADMIN_SCOPE).await;
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "console"),
                ("username", "root"),
                ("password", PASSWORD),
                ("scope", ADMIN_SCOPE),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let at = res.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    (id, at)
}

async fn get(app: &App, path: &str, token: &str) -> HttpResponse {
    app.http
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// The claims of a token (no check).
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}

/// A token signed with the server's own stored key: `claims`, and
/// `extra` merged into the usual header.
async fn forge(db: &TestDb, claims: &Value, extra: Value) -> String {
    let keys = db.signing_keys().await.expect("keys");
    let signer = Signer::from_stored(&keys[0], None).expect("signer");
    let mut header = json!({"typ": "at+jwt", "alg": signer.alg().as_str(), "kid": signer.kid()});
    for (k, v) in extra.as_object().expect("object") {
        header[k] = v.clone();
    }
    signer.sign_jwt(&header, claims).expect("sign")
}

/// Whether the introspecting client `rs` sees `token` as active.
async fn active(app: &App, secret: &str, token: &str) -> bool {
    let res = app
        .post_form("/oauth/introspect", &[("token", token)], Some(("rs", secret)))
        .await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    res.json::<Value>().await.expect("json")["active"] == json!(true)
}

async fn assert_invalid_token(res: HttpResponse, why: &str) {
    assert_eq!(res.status(), 401, "{why}");
    let challenge = res.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
    assert!(challenge.contains(r#"error="invalid_token""#), "{why}: {challenge}");
    assert_eq!(res.headers()["cache-control"], "no-store", "{why}");
}

async fn an_admin_whose_admin_scope_was_removed_is_refused_at_once(db: &TestDb) {
    let app = spawn(db).await;
    let (id, at) = admin_sign_in(db, &app).await;
    assert_eq!(get(&app, "/admin/v1/keys", &at).await.status(), 200);
    db.set_user_scope(&id, "", UnixTime::now()).await.expect("demote");
    // The token still says `portcullis:admin`, and is live; the user no
    // longer is an admin.
    let res = get(&app, "/admin/v1/keys", &at).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let challenge = res.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(
        challenge.contains(r#"error="insufficient_scope", scope="portcullis:admin""#),
        "{challenge}"
    );
    // The account API needs no admin right: the same token still works.
    assert_eq!(get(&app, "/account/v1/me", &at).await.status(), 200);
    db.set_user_scope(&id, ADMIN_SCOPE, UnixTime::now())
        .await
        .expect("restore");
    assert_eq!(get(&app, "/admin/v1/keys", &at).await.status(), 200);
}

async fn tokens_without_sid_too_long_or_with_crit_are_refused_by_the_server(db: &TestDb) {
    let app = spawn(db).await;
    let secret = introspector(db, "rs").await;
    let (_, at) = admin_sign_in(db, &app).await;
    let real = claims_of(&at);
    // The same claims, re-signed with the server's key: accepted.
    let resigned = forge(db, &real, json!({})).await;
    assert_eq!(get(&app, "/admin/v1/keys", &resigned).await.status(), 200);
    assert!(active(&app, &secret, &resigned).await);

    let mut no_sid = real.clone();
    no_sid.as_object_mut().expect("object").remove("sid");
    let mut long = real.clone();
    long["exp"] = json!(real["iat"].as_i64().expect("iat") + 86_400);
    let cases = [
        ("no sid", forge(db, &no_sid, json!({})).await),
        ("a day-long lifetime", forge(db, &long, json!({})).await),
        ("crit", forge(db, &real, json!({"crit": ["exp"]})).await),
        ("empty crit", forge(db, &real, json!({"crit": []})).await),
    ];
    for (why, token) in &cases {
        assert_invalid_token(get(&app, "/admin/v1/keys", token).await, why).await;
        assert_invalid_token(get(&app, "/account/v1/me", token).await, why).await;
        assert!(!active(&app, &secret, token).await, "{why}: introspection");
    }
    // The genuine token was never affected.
    assert_eq!(get(&app, "/admin/v1/keys", &at).await.status(), 200);
}

on_both_backends!(
    an_admin_whose_admin_scope_was_removed_is_refused_at_once,
    tokens_without_sid_too_long_or_with_crit_are_refused_by_the_server,
);
