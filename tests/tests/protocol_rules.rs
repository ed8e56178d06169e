//! HTTP and OAuth rules from the security review, on both backends: the
//! `Host` header (RFC 9112 §3.2), and revocation requests for another
//! client's tokens (RFC 7009 §2.1).

mod support;

use portcullis_store::testing::TestDb;
use portcullis_store::{AuditStore as _, RevocationStore as _, on_both_backends};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sends `head` (a request without body) on a fresh connection and
/// returns the whole answer as text.
async fn raw(app: &App, head: &str) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("read");
    String::from_utf8(answer).expect("utf-8")
}

async fn requests_without_exactly_one_valid_host_get_400(db: &TestDb) {
    let app = spawn(db).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let refused = [
        "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        "GET /healthz HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".to_owned(),
        "GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n".to_owned(),
        "POST /oauth/token HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    ];
    for head in &refused {
        let answer = raw(&app, head).await;
        let (head_part, body) = answer.split_once("\r\n\r\n").expect("head and body");
        let status = head_part.split(' ').nth(1);
        assert_eq!(status, Some("400"), "{head:?} -> {head_part}");
        let lower = head_part.to_ascii_lowercase();
        assert!(lower.contains("cache-control: no-store"), "{lower}");
        assert!(lower.contains("content-type: application/json"), "{lower}");
        let body: Value = serde_json::from_str(body).expect("json body");
        assert_eq!(body["error"], "invalid_request", "{head:?}");
    }
    let accepted = [
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        // HTTP/1.0 did not require Host.
        "GET /healthz HTTP/1.0\r\n\r\n".to_owned(),
    ];
    for head in &accepted {
        let answer = raw(&app, head).await;
        assert_eq!(answer.split(' ').nth(1), Some("200"), "{head:?} -> {answer}");
    }
}

async fn revoking_another_clients_tokens_answers_200_and_records_nothing(db: &TestDb) {
    public(db, "mobile", "read").await;
    public(db, "other", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let signed_in = app.sign_in("mobile", "alice").await;
    let at = signed_in["access_token"].as_str().expect("at");
    let rt = signed_in["refresh_token"].as_str().expect("rt");
    for (token, hint) in [(at, "access_token"), (rt, "refresh_token")] {
        let res = app
            .post_form(
                "/oauth/revoke",
                &[("client_id", "other"), ("token", token), ("token_type_hint", hint)],
                None,
            )
            .await;
        assert_eq!(res.status(), 200, "{hint}");
        assert_no_store(&res);
        assert!(res.headers().get("set-cookie").is_none(), "{hint}: no cookie touched");
        assert!(res.bytes().await.expect("body").is_empty());
    }
    assert!(
        db.revocations_since(0, 100).await.expect("feed").is_empty(),
        "no revocation recorded"
    );
    let events = db.audit_events(None, 100).await.expect("audit");
    assert!(
        events.iter().all(|e| e.action != "token.revoke"),
        "no revocation audited: {events:?}"
    );
    assert_eq!(app.refresh("mobile", rt).await.status(), 200, "the sign-in lives on");
}

on_both_backends!(
    requests_without_exactly_one_valid_host_get_400,
    revoking_another_clients_tokens_answers_200_and_records_nothing,
);
