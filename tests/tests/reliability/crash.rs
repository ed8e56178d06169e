//! Scenario 2: `kill -9` under load, three times. Every refresh token the
//! server delivered and the client has not used still works after the
//! restart; every token rotated before the kill stays dead; SQLite's file
//! passes `integrity_check`; the server is ready again within 5 s.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::Value;

use crate::support::*;
use crate::{Server, wait_ready};

const ROUNDS: usize = 3;
const REFRESHERS: usize = 8;
const SIGNERS: usize = 2;

/// What the clients know: tokens delivered in a 200 and not yet sent
/// (`live`), tokens whose refresh was answered 200 (`rotated`), requests
/// that got no answer (their token's fate is unknown), and anything that
/// went wrong before the kill.
#[derive(Default)]
struct Ledger {
    live: HashSet<String>,
    rotated: Vec<String>,
    unknown: usize,
    faults: Vec<String>,
}

type Shared = Arc<Mutex<Ledger>>;

fn lock(l: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn client() -> Http {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .into()
}

async fn post(http: &Http, base: &str, body: String) -> Result<(u16, Value), reqwest::Error> {
    let res = http
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let status = res.status().as_u16();
    // `send` has read the whole body, so only the connection can fail; a
    // body that is not JSON shows as `null` in the ledger's faults.
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

fn sign_in_body() -> String {
    form(&[
        ("grant_type", "password"),
        ("client_id", "mobile"),
        ("username", "alice"),
        ("password", PASSWORD),
    ])
}

fn refresh_body(rt: &str) -> String {
    form(&[
        ("grant_type", "refresh_token"),
        ("client_id", "mobile"),
        ("refresh_token", rt),
    ])
}

/// Signs in, waiting as told while the server is busy (429 or 503).
async fn sign_in(http: &Http, base: &str, ledger: &Shared) -> Option<String> {
    loop {
        match post(http, base, sign_in_body()).await {
            Ok((200, body)) => return Some(body["refresh_token"].as_str().expect("rt").to_owned()),
            Ok((429 | 503, _)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok((status, body)) => {
                lock(ledger).faults.push(format!("sign-in: {status} {body}"));
                return None;
            }
            Err(_) => return None,
        }
    }
}

/// Signs in once, then refreshes its own chain until the server dies.
async fn refresher(base: String, ledger: Shared) {
    let http = client();
    let Some(mut current) = sign_in(&http, &base, &ledger).await else {
        return;
    };
    lock(&ledger).live.insert(current.clone());
    loop {
        match post(&http, &base, refresh_body(&current)).await {
            Ok((200, body)) => {
                let next = body["refresh_token"].as_str().expect("rt").to_owned();
                let mut l = lock(&ledger);
                l.live.remove(&current);
                l.rotated.push(std::mem::replace(&mut current, next.clone()));
                l.live.insert(next);
            }
            Ok((status, body)) => {
                lock(&ledger).faults.push(format!("refresh: {status} {body}"));
                return;
            }
            Err(_) => {
                // No answer: the rotation may or may not have happened.
                let mut l = lock(&ledger);
                l.live.remove(&current);
                l.unknown += 1;
                return;
            }
        }
    }
}

/// Signs in until the server dies; each delivered token is left unused.
async fn signer(base: String, ledger: Shared) {
    let http = client();
    while let Some(rt) = sign_in(&http, &base, &ledger).await {
        lock(&ledger).live.insert(rt);
    }
}

async fn a_killed_server_loses_no_delivered_token_and_revives_no_spent_one(db: &TestDb) {
    let _suite = crate::shared().await;
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    // Strict rotation and no race grace: any second use of a token is
    // refused and ends its family, so "dead" is unambiguous.
    let flags = [
        "--refresh-retry-window",
        "0",
        "--refresh-race-grace",
        "0",
        "--hash-workers",
        "2",
    ];
    let http = client();
    let mut server = Server::start(&db.url, &flags);
    for round in 0..ROUNDS {
        let ledger = Shared::default();
        let mut load = Vec::new();
        for _ in 0..REFRESHERS {
            load.push(tokio::spawn(refresher(server.base.clone(), ledger.clone())));
        }
        for _ in 0..SIGNERS {
            load.push(tokio::spawn(signer(server.base.clone(), ledger.clone())));
        }
        // Kill at a random moment once the load is under way: rotations
        // done and a signer's token delivered (each refresher holds at most
        // one live token, and loses it if its request is in flight at the
        // kill). On a busy machine the first ones can take longer than the
        // random delay alone.
        let started = std::time::Instant::now();
        loop {
            {
                let l = lock(&ledger);
                if !l.rotated.is_empty() && l.live.len() > REFRESHERS {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "round {round}: no rotation within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200 + crate::jitter(1200))).await;
        server.kill9();
        for task in load {
            task.await.expect("client task");
        }
        let Ledger {
            live,
            rotated,
            unknown,
            faults,
        } = std::mem::take(&mut *lock(&ledger));
        assert!(faults.is_empty(), "round {round}: {faults:?}");
        assert!(!rotated.is_empty() && !live.is_empty(), "round {round}: the load ran");
        if let Some(check) = db.sqlite_integrity_check().await {
            assert_eq!(check, "ok", "round {round}");
        }

        let restarted = std::time::Instant::now();
        server = Server::start(&db.url, &flags);
        let ready = restarted.elapsed() + wait_ready(&http, &server.base, Duration::from_secs(5)).await;
        assert!(ready <= Duration::from_secs(5), "round {round}: ready after {ready:?}");

        // Live tokens first: replaying a rotated one ends its family.
        for rt in &live {
            let (status, body) = post(&http, &server.base, refresh_body(rt)).await.expect("answer");
            assert_eq!(status, 200, "round {round}: a delivered token was lost: {body}");
        }
        for rt in &rotated {
            let (status, body) = post(&http, &server.base, refresh_body(rt)).await.expect("answer");
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "round {round}: a rotated token came back"
            );
        }
        eprintln!(
            "round {round}: {} live and {} rotated tokens checked, {unknown} unanswered, ready in {ready:?}",
            live.len(),
            rotated.len()
        );
    }
}

on_both_backends!(a_killed_server_loses_no_delivered_token_and_revives_no_spent_one);
