//! Usernames compared in one form (RFC 8265 UsernameCaseMapped), end to
//! end: look-alikes cannot be created, sign-in in another case or width
//! reaches the same account (and counts against it), and names the rules
//! refuse are answered `invalid_request` without changing anything. On
//! SQLite and PostgreSQL.

mod support;

use base64::Engine as _;
use portcullis_store::testing::{TestDb, TestingStore as _};
use portcullis_store::{AuditStore as _, UnixTime, on_both_backends};
use serde_json::Value;
use support::*;

/// Names the rules refuse: zero-width, bidi and control characters, and
/// surrounding or inner spaces.
const REFUSED: [&str; 8] = [
    "ali\u{200b}ce",
    "ali\u{200d}ce",
    "\u{202e}ecila",
    "ali\u{200f}ce",
    "ali\u{7}ce",
    " alice",
    "alice ",
    "ali ce",
];

/// The `sub` of an access token (its signature is checked elsewhere).
fn sub(access: &Value) -> String {
    let jwt = access["access_token"].as_str().expect("access token");
    let payload = jwt.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

/// Failed sign-ins counted on the throttle key `key` this hour.
async fn failures(db: &TestDb, key: &str) -> i64 {
    db.throttle_count(key, 3600, UnixTime::now())
        .await
        .expect("count")
        .count
}

fn password_grant<'a>(username: &'a str, password: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "password"),
        ("client_id", "mobile"),
        ("username", username),
        ("password", password),
    ]
}

async fn look_alikes_cannot_be_created_with_the_cli(db: &TestDb) {
    let (ok, _, err) = cli(db, &["user", "create", "alice", "--password-stdin"], Some(PASSWORD));
    assert!(ok, "{err}");
    for look_alike in ["Alice", "ａｌｉｃｅ", "ALICE"] {
        let (ok, _, err) = cli(db, &["user", "create", look_alike, "--password-stdin"], Some(PASSWORD));
        assert!(!ok, "{look_alike}");
        assert!(err.contains("exists already"), "{err}");
    }
    let (ok, _, err) = cli(
        db,
        &["user", "create", "ali\u{200b}ce", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(!ok);
    assert!(err.contains("U+200B"), "{err}");
    let (ok, out, err) = cli(db, &["user", "list", "--json"], None);
    assert!(ok, "{err}");
    let users: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    assert_eq!(users[0]["username"], "alice");
    // The admin commands find the user in any case or width.
    let (ok, out, err) = cli(db, &["user", "revoke-tokens", "ＡＬＩＣＥ", "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json")["username"], "alice");
}

async fn sign_in_in_another_case_or_width_reaches_the_same_account(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let app = spawn(db).await;
    for typed in ["alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ"] {
        assert_eq!(sub(&app.sign_in("mobile", typed).await), alice, "{typed}");
    }
    // A wrong password in another case counts against the same account.
    let res = app
        .token(&password_grant("ALICE", "not the passphrase at all"), None)
        .await;
    assert_error(res, 400, "invalid_grant").await;
    assert_eq!(failures(db, "pw:u:alice").await, 1);
}

async fn refused_usernames_are_invalid_requests_that_change_nothing(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let app = spawn(db).await;
    let events = db.audit_events(None, 500).await.expect("audit").len();
    for bad in REFUSED {
        let res = app.token(&password_grant(bad, PASSWORD), None).await;
        let body = assert_error(res, 400, "invalid_request").await;
        assert_eq!(body["error_description"], "username is not valid", "{bad:?}");
        assert_eq!(failures(db, &format!("pw:u:{bad}")).await, 0, "{bad:?}");
    }
    assert_eq!(db.audit_events(None, 500).await.expect("audit").len(), events);
    assert_eq!(failures(db, "pw:u:alice").await, 0);
    assert_eq!(sub(&app.sign_in("mobile", "alice").await), alice);
}

async fn the_web_sign_in_refuses_the_same_names(db: &TestDb) {
    const ORIGIN: &str = "https://app.example";
    let (ok, _, err) = cli(
        db,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--client-id",
            "spa",
            "--scope",
            "read",
            "--web",
            "--origin",
            ORIGIN,
        ],
        None,
    );
    assert!(ok, "{err}");
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let web = |username: &'static str| {
        app.http
            .post(format!("{}/web/sign-in", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", ORIGIN)
            .header("x-portcullis-csrf", "1")
            .body(form(&[
                ("client_id", "spa"),
                ("username", username),
                ("password", PASSWORD),
            ]))
            .send()
    };
    for bad in REFUSED {
        let res = web(bad).await.expect("request");
        assert!(res.headers().get("set-cookie").is_none(), "{bad:?}");
        assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);
        let body = assert_error(res, 400, "invalid_request").await;
        assert_eq!(body["error_description"], "username is not valid", "{bad:?}");
    }
    let res = web("ＡＬＩＣＥ").await.expect("request");
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("set-cookie").is_some());
}

on_both_backends!(
    look_alikes_cannot_be_created_with_the_cli,
    sign_in_in_another_case_or_width_reaches_the_same_account,
    refused_usernames_are_invalid_requests_that_change_nothing,
    the_web_sign_in_refuses_the_same_names,
);
