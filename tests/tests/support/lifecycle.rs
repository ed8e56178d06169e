//! Helpers for the user and client lifecycle tests: an admin token, JSON
//! requests to the admin and account APIs, the revocation feed and the
//! audit log read from the store.

use portcullis_store::testing::TestDb;
use portcullis_store::{AuditStore as _, RevocationStore as _};
use serde_json::Value;

use super::{App, HttpResponse, PASSWORD, public, user};

/// A passphrase for new passwords (long and random, as a policy against
/// common passwords expects).
pub const NEW_PASSWORD: &str = "quartz-lantern-gallop-ninety-umbrella-fjord";
/// Another one.
pub const OTHER_PASSWORD: &str = "mossy-kettle-orbit-saffron-tundra-violin";

/// Signs the admin `root` in through the console client `console`.
pub async fn admin_token(db: &TestDb, app: &App) -> String {
    public(db, "console", "portcullis:admin").await;
    user(db, "root", "portcullis:admin").await;
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "console"),
                ("username", "root"),
                ("password", PASSWORD),
                ("scope", "portcullis:admin"),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("at")
        .to_owned()
}

/// `method path` with a bearer token and an optional JSON body.
pub async fn call(app: &App, method: &str, path: &str, token: &str, body: Option<Value>) -> HttpResponse {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    req.send().await.expect("request")
}

/// Asserts status and `no-store`, and returns the JSON body.
pub async fn json(res: HttpResponse, status: u16) -> Value {
    let got = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json body");
    assert_eq!(got, status, "{body}");
    body
}

/// Asserts an API error: status, code, `no-store`, a short ASCII
/// description when `described`.
pub async fn api_error(res: HttpResponse, status: u16, code: &str) -> Value {
    let body = json(res, status).await;
    assert_eq!(body["error"], code, "{body}");
    if let Some(d) = body.get("error_description") {
        let d = d.as_str().expect("description");
        assert!(d.is_ascii() && !d.is_empty() && d.len() <= 200, "{d}");
    }
    body
}

/// The revocation feed entries `(kind, subject)`.
pub async fn feed(db: &TestDb) -> Vec<(String, String)> {
    db.revocations_since(0, 10_000)
        .await
        .expect("feed")
        .into_iter()
        .map(|e| (e.kind.as_str().to_owned(), e.subject))
        .collect()
}

/// The audit events `(action, actor, subject)`, newest first.
pub async fn audit(db: &TestDb) -> Vec<(String, Option<String>, Option<String>)> {
    db.audit_events(None, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.action, e.actor, e.subject))
        .collect()
}

/// Signs `username` in with `password` through the public client
/// `client_id`; the whole answer.
pub async fn sign_in_with(app: &App, client_id: &str, username: &str, password: &str) -> HttpResponse {
    app.token(
        &[
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", username),
            ("password", password),
        ],
        None,
    )
    .await
}

/// The `sub` of an access token (its payload read without a check).
pub fn sub_of(access_token: &str) -> String {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims");
    claims["sub"].as_str().expect("sub").to_owned()
}
