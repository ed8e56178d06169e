//! Scenario 5: hostile input. Oversized bodies, a flood of form fields, a
//! 1 MiB password, oversized bearer tokens and headers, bad encodings, and
//! slow-loris connections.

use std::time::{Duration, Instant};

use portcullis_store::testing::TestDb;
use portcullis_store::{AuditStore as _, on_both_backends};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::*;

async fn audit_count(db: &TestDb) -> usize {
    db.audit_events(None, 1000).await.expect("audit").len()
}

/// Bodies: 10 MiB declared is refused before any of it is sent; 100 000
/// fields and a 1 MiB password are 400 `invalid_request`, quickly, with
/// no password hashed and nothing recorded.
async fn oversized_bodies_are_refused_early_and_change_nothing(db: &TestDb) {
    let _suite = crate::shared().await;
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let before = audit_count(db).await;

    // Only the head of a 10 MiB request: the answer comes without the body.
    let head = "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 10485760\r\n\r\n";
    let answer = crate::raw_exchange(&app.base, head.as_bytes()).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let body: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["error"], "invalid_request");

    // 100 000 fields.
    let fields = (0..100_000).map(|i| format!("f{i}=1")).collect::<Vec<_>>().join("&");
    let started = Instant::now();
    let res = app.post_raw(&app.http, fields, None).await;
    let took = started.elapsed();
    let err = assert_error(res, 400, "invalid_request").await;
    assert_eq!(err["error_description"], "too many parameters");
    assert!(took < Duration::from_secs(5), "answered in {took:?}");

    // A 1 MiB password, a dozen times from one address: never hashed, so
    // never counted by the throttle (the limit is 10 per address), and the
    // owner still signs in from that address.
    let huge = "p".repeat(1024 * 1024);
    for _ in 0..12 {
        let started = Instant::now();
        let res = app
            .token(
                &[
                    ("grant_type", "password"),
                    ("client_id", "mobile"),
                    ("username", "alice"),
                    ("password", &huge),
                ],
                None,
            )
            .await;
        let took = started.elapsed();
        let err = assert_error(res, 400, "invalid_request").await;
        assert_eq!(err["error_description"], "a parameter is too long");
        assert!(took < Duration::from_secs(5), "answered in {took:?}");
    }
    assert_eq!(audit_count(db).await, before, "no sign-in was attempted");
    app.sign_in("mobile", "alice").await;
}

/// A body trickled in a byte at a time is cut off by the body deadline
/// (2 s here, 10 s by default) with 408, long before it would end.
async fn a_trickled_body_is_cut_off_by_the_body_deadline(db: &TestDb) {
    let _suite = crate::shared().await;
    let app = spawn_settings(&db.url, |s| s.body_timeout = Duration::from_secs(2)).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let started = Instant::now();
    conn.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\n",
    )
    .await
    .expect("head");
    // A byte every 300 ms would take 30 s; stop once an answer waits.
    for _ in 0..100 {
        if tokio::time::timeout(Duration::from_millis(300), conn.readable())
            .await
            .is_ok()
        {
            break;
        }
        conn.write_all(b"a").await.expect("byte");
    }
    let answer = crate::read_answer(&mut conn).await;
    let took = started.elapsed();
    crate::check_raw(b"POST /oauth/token ", &answer);
    assert_eq!(answer.status, 408);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let body: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "cut after {took:?}"
    );
}

/// Bad encodings are 400 `invalid_request` and change nothing.
async fn bad_encodings_are_invalid_requests(db: &TestDb) {
    let _suite = crate::shared().await;
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let before = audit_count(db).await;
    let bad: [&[u8]; 6] = [
        b"grant_type=password&client_id=mobile&username=alice&password=%FF%FE",
        b"grant_type=password&client_id=mobile&username=al%ZZice&password=x",
        b"grant_type=password&client_id=mobile&username=alice&password=%",
        b"grant_type=password&client_id=mobile&username=alice&password=%C3",
        b"grant_type=password&client_id=mobile&username=\xff\xfe&password=x",
        b"grant_type=refresh_token&client_id=mobile&refresh_token=%E0%80%80",
    ];
    for body in bad {
        let res = app
            .http
            .post(format!("{}/oauth/token", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .expect("request");
        let err = assert_error(res, 400, "invalid_request").await;
        assert_eq!(err["error_description"], "the body is not valid form encoding");
    }
    assert_eq!(audit_count(db).await, before);
}

/// An 8 KiB bearer token at the admin API is 400 `invalid_request` with
/// the RFC 6750 §3 challenge; a 100 KiB header is refused (431) unread.
async fn oversized_bearer_tokens_and_headers_are_refused(db: &TestDb) {
    let _suite = crate::shared().await;
    let app = spawn(db).await;
    let long = "a".repeat(8 * 1024);
    let res = app
        .http
        .get(format!("{}/admin/v1/clients", app.base))
        .bearer_auth(&long)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let challenge = res.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_request""#),
        "{challenge}"
    );

    let head = format!(
        "GET /admin/v1/clients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let answer = crate::raw_exchange(&app.base, head.as_bytes()).await;
    assert_eq!(answer.status, 431);
}

/// 200 connections trickle their request heads, a byte every 500 ms: the
/// header timeout (2 s here) cuts every one of them, while refreshes on
/// another connection keep a p99 under 500 ms.
async fn slow_loris_connections_are_cut_and_others_are_served(db: &TestDb) {
    const LORIS: usize = 200;
    const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_settings(&db.url, |s| s.header_timeout = HEADER_TIMEOUT).await;
    let mut rt = app.sign_in_refresh_token("mobile", "alice").await;
    let _suite = crate::alone().await;
    db.settle().await;

    let addr = app.base.trim_start_matches("http://").to_owned();
    let loris: Vec<_> = (0..LORIS)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
                let opened = Instant::now();
                conn.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .expect("write");
                // Trickle a header forever; stop when the server hangs up.
                let mut buf = [0u8; 256];
                for _ in 0..60 {
                    tokio::select! {
                        read = conn.read(&mut buf) => {
                            // EOF or reset: cut. (Some servers write a 408 first.)
                            if matches!(read, Ok(0) | Err(_)) {
                                return opened.elapsed();
                            }
                        }
                        () = tokio::time::sleep(Duration::from_millis(500)) => {
                            if conn.write_all(b"X").await.is_err() {
                                return opened.elapsed();
                            }
                        }
                    }
                }
                panic!("a slow-loris connection was never cut");
            })
        })
        .collect();

    let mut latencies = Vec::new();
    let deadline = Instant::now() + HEADER_TIMEOUT + Duration::from_secs(2);
    let http = http_client(None);
    while Instant::now() < deadline {
        let started = Instant::now();
        let res = app
            .post_raw(
                &http,
                form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "mobile"),
                    ("refresh_token", &rt),
                ]),
                None,
            )
            .await;
        assert_eq!(res.status(), 200);
        rt = res.json::<Value>().await.expect("json")["refresh_token"]
            .as_str()
            .expect("rt")
            .to_owned();
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let p99 = crate::quantile(&mut latencies, 0.99);
    assert!(
        p99 < Duration::from_millis(500),
        "refresh p99 {p99:?} over {} requests",
        latencies.len()
    );
    for l in loris {
        let cut_after = l.await.expect("loris");
        assert!(
            cut_after >= HEADER_TIMEOUT - Duration::from_millis(100)
                && cut_after < HEADER_TIMEOUT + Duration::from_secs(3),
            "cut after {cut_after:?}"
        );
    }
}

on_both_backends!(
    oversized_bodies_are_refused_early_and_change_nothing,
    bad_encodings_are_invalid_requests,
    a_trickled_body_is_cut_off_by_the_body_deadline,
    oversized_bearer_tokens_and_headers_are_refused,
    slow_loris_connections_are_cut_and_others_are_served,
);
