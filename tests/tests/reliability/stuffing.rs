//! Scenario 6: credential stuffing. 200 concurrent wrong-password
//! sign-ins for 30 s, across many usernames, from four addresses, against
//! the real binary: its memory stays within idle, plus workers times the
//! Argon2 memory, plus 16 MiB; excess attempts get a quick 429 or 503 with
//! `Retry-After`; a user's refreshes keep a p99 under 50 ms; the owner of
//! an attacked account signs in from another address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::Server;
use crate::support::*;

const ATTACKERS: usize = 200;
const WORKERS: u64 = 2;
const ARGON2_MIB: u64 = 19; // 19456 KiB, the default
const MIB: u64 = 1024 * 1024;

#[derive(Default)]
struct Seen {
    invalid_grant: usize,
    refused: Vec<Duration>,
    faults: Vec<String>,
}

async fn credential_stuffing_is_contained(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let _suite = crate::alone().await;
    db.settle().await;
    let secs = crate::env_number("PORTCULLIS_STUFFING_SECS", 30);
    let server = Server::start(&db.url, &["--hash-workers", &WORKERS.to_string()]);
    let base = server.base.clone();
    let http = http_client(None);
    crate::wait_ready(&http, &base, Duration::from_secs(10)).await;
    let idle = server.rss_bytes();
    let bound = idle + WORKERS * ARGON2_MIB * MIB + 16 * MIB;

    // The user's session, refreshed throughout.
    let signed_in: Value = http
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "password"),
            ("client_id", "mobile"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("json");
    let rt = signed_in["refresh_token"].as_str().expect("rt").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let source: IpAddr = format!("127.0.0.{}", 2 + i % 4).parse().expect("ip");
            let (base, stop, seen) = (base.clone(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                // A bare keep-alive HTTP/1.1 client: the attack's own cost
                // on this machine stays small, so the server is measured.
                let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
                let mut conn = None;
                let mut n = i;
                while !stop.load(Ordering::SeqCst) {
                    n += ATTACKERS;
                    // Mostly unknown names; every 50th attempt the real one.
                    let username = if n % 50 == 0 {
                        "alice".to_owned()
                    } else {
                        format!("user{}", n % 1000)
                    };
                    let body = form(&[
                        ("grant_type", "password"),
                        ("client_id", "mobile"),
                        ("username", &username),
                        ("password", "Winter2026!"),
                    ]);
                    let request = format!(
                        "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.is_none() {
                        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                        socket.bind((source, 0).into()).expect("bind");
                        conn = Some(socket.connect(addr).await.expect("connect"));
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    let started = Instant::now();
                    let answer = match c.write_all(request.as_bytes()).await {
                        Ok(()) => crate::try_read_answer(c).await,
                        Err(_) => None,
                    };
                    let took = started.elapsed();
                    let Some(answer) = answer else {
                        // The server closed an idle or finished connection.
                        conn = None;
                        continue;
                    };
                    crate::check_raw(request.as_bytes(), &answer);
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                    let retry_after = answer.headers.contains_key("retry-after");
                    let mut s = seen.lock().expect("seen");
                    match (answer.status, body["error"].as_str()) {
                        (400, Some("invalid_grant")) => s.invalid_grant += 1,
                        (429 | 503, Some("temporarily_unavailable")) if retry_after => s.refused.push(took),
                        (status, _) => s.faults.push(format!("{status} {body}")),
                    }
                }
            })
        })
        .collect();

    // The user and the memory probe run on a thread and runtime of their
    // own, so that what they measure is the server, not the 200 attacking
    // tasks of this process.
    let pid = server.pid();
    let user_side = std::thread::spawn({
        let base = base.clone();
        move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(the_user(base, rt, secs, pid))
        }
    });
    let (latencies, peak, owner_signed_in) = tokio::task::spawn_blocking(move || user_side.join().expect("user"))
        .await
        .expect("join");
    let mut latencies = latencies;
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        a.await.expect("attacker");
    }

    let mut seen = std::mem::take(&mut *seen.lock().expect("seen"));
    assert!(seen.faults.is_empty(), "{:?}", &seen.faults[..seen.faults.len().min(5)]);
    assert_eq!(owner_signed_in, Some(200), "the owner signs in from elsewhere");
    assert!(
        seen.invalid_grant > 0 && !seen.refused.is_empty(),
        "the flood was hashed and refused"
    );
    let refusal_p99 = crate::quantile(&mut seen.refused, 0.99);
    let refresh_p99 = crate::quantile(&mut latencies, 0.99);
    eprintln!(
        "stuffing: {} hashed, {} refused (p99 {refusal_p99:?}); {} refreshes, p99 {refresh_p99:?}; \
         RSS idle {} MiB, peak {} MiB, bound {} MiB",
        seen.invalid_grant,
        seen.refused.len(),
        latencies.len(),
        idle / MIB,
        peak / MIB,
        bound / MIB
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB",
        peak / MIB,
        bound / MIB
    );
    assert!(refusal_p99 < Duration::from_millis(500), "refusals p99 {refusal_p99:?}");
    assert!(refresh_p99 < Duration::from_millis(50), "refresh p99 {refresh_p99:?}");
}

/// The user: refreshes every 20 ms for `secs`, signs in from an address
/// of their own half-way, and samples the server's memory. Returns the
/// refresh latencies, the peak RSS and the sign-in's status.
async fn the_user(base: String, mut rt: String, secs: u64, pid: u32) -> (Vec<Duration>, u64, Option<u16>) {
    let http = http_client(None);
    let mut peak = 0;
    let mut latencies = Vec::new();
    let mut owner_signed_in = None;
    let started = Instant::now();
    let mut next_sample = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        if Instant::now() >= next_sample {
            peak = peak.max(crate::rss_of(pid));
            next_sample += Duration::from_millis(250);
        }
        if owner_signed_in.is_none() && started.elapsed() >= Duration::from_secs(secs / 2) {
            // The owner, from an address of their own, in the thick of it.
            let owner = http_client(Some("127.0.0.9".parse().expect("ip")));
            let res = owner
                .post(format!("{base}/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("grant_type", "password"),
                    ("client_id", "mobile"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ]))
                .send()
                .await
                .expect("owner sign-in");
            owner_signed_in = Some(res.status().as_u16());
        }
        let sent = Instant::now();
        let res = http
            .post(format!("{base}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "mobile"),
                ("refresh_token", &rt),
            ]))
            .send()
            .await
            .expect("refresh");
        assert_eq!(res.status(), 200, "the user's refresh");
        rt = res.json::<Value>().await.expect("json")["refresh_token"]
            .as_str()
            .expect("rt")
            .to_owned();
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (latencies, peak, owner_signed_in)
}

on_both_backends!(credential_stuffing_is_contained);
