//! Scenario 3: the database goes away for 20 s under load and comes back.
//! PostgreSQL is cut off by a TCP proxy (established connections reset,
//! new ones closed at once, as when the server stops); SQLite's file is
//! locked by another process. Requests fail within 3 s with 503,
//! `Retry-After` and `no-store`; `/readyz` fails while `/healthz` and the
//! JWKS keep answering; service is back within 5 s of the database,
//! without a restart; every token delivered works.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const OUTAGE: Duration = Duration::from_secs(20);
const FAIL_FAST: Duration = Duration::from_secs(3);
const RECOVERY: Duration = Duration::from_secs(5);
/// How long the server reuses a readiness answer.
const READY_REUSE: Duration = Duration::from_secs(1);

/// A TCP proxy to PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().expect("links").push(link.abort_handle());
            }
        });
        Self { port, up, links }
    }

    /// The database "stops": open connections are dropped, new ones closed.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// One request's outcome, by when it was sent.
struct Outcome {
    sent: Instant,
    took: Duration,
    status: u16,
    retry_after: bool,
    no_store: bool,
    what: &'static str,
}

struct Probe {
    sent: Instant,
    readyz: u16,
    healthz: u16,
    jwks: u16,
}

#[derive(Default)]
struct Record {
    outcomes: Vec<Outcome>,
    probes: Vec<Probe>,
    live: Vec<String>,
    faults: Vec<String>,
}

type Shared = Arc<Mutex<Record>>;

async fn send(http: &Http, base: &str, body: String, what: &'static str, rec: &Shared) -> Option<Value> {
    let sent = Instant::now();
    let res = match http
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            rec.lock().expect("rec").faults.push(format!("{what}: no answer: {e}"));
            return None;
        }
    };
    let status = res.status().as_u16();
    let outcome = Outcome {
        sent,
        took: sent.elapsed(),
        status,
        retry_after: res.headers().contains_key("retry-after"),
        no_store: res.headers().get("cache-control").is_some_and(|v| v == "no-store"),
        what,
    };
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let mut r = rec.lock().expect("rec");
    r.outcomes.push(outcome);
    match status {
        200 => Some(body),
        503 => None,
        _ => {
            r.faults.push(format!("{what}: {status} {body}"));
            None
        }
    }
}

async fn the_database_going_away_fails_fast_and_recovers_without_restart(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let _suite = crate::alone().await;
    // PostgreSQL through the proxy: postgres://user@HOST:PORT/db becomes
    // postgres://user@127.0.0.1:PROXY/db.
    let proxy = if db.url.starts_with("postgres") {
        let (head, rest) = db.url.split_once('@').expect("url with a host");
        let (host, path) = rest.split_once('/').expect("url with a database");
        let proxy = Proxy::start(host.to_owned()).await;
        let url = format!("{head}@127.0.0.1:{}/{path}", proxy.port);
        Some((proxy, url))
    } else {
        None
    };
    let url = proxy.as_ref().map_or_else(|| db.url.clone(), |(_, url)| url.clone());
    // A generous retry window: a rotation whose commit was acknowledged
    // by the database but not to the client is recovered by the retry.
    let app = spawn_settings(&url, |s| s.token.refresh_retry_window = Duration::from_secs(120)).await;
    let rec = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let http: Http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .into();

    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, base, rec, stop) = (http.clone(), app.base.clone(), rec.clone(), stop.clone());
        let mut rt = app.sign_in_refresh_token("mobile", "alice").await;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let body = form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "mobile"),
                    ("refresh_token", &rt),
                ]);
                match send(&http, &base, body, "refresh", &rec).await {
                    Some(b) => rt = b["refresh_token"].as_str().expect("rt").to_owned(),
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            rec.lock().expect("rec").live.push(rt);
        }));
    }
    {
        let (http, base, rec, stop) = (http.clone(), app.base.clone(), rec.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let body = form(&[
                    ("grant_type", "password"),
                    ("client_id", "mobile"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ]);
                match send(&http, &base, body, "sign-in", &rec).await {
                    Some(b) => {
                        let rt = b["refresh_token"].as_str().expect("rt").to_owned();
                        rec.lock().expect("rec").live.push(rt);
                    }
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }));
    }
    {
        let (http, base, rec, stop) = (http.clone(), app.base.clone(), rec.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let status = |path: &'static str| {
                let (http, url) = (http.clone(), format!("{base}{path}"));
                async move { http.get(url).send().await.map_or(0, |r| r.status().as_u16()) }
            };
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let (readyz, healthz, jwks) =
                    tokio::join!(status("/readyz"), status("/healthz"), status("/.well-known/jwks.json"));
                rec.lock().expect("rec").probes.push(Probe {
                    sent,
                    readyz,
                    healthz,
                    jwks,
                });
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let lock = match &proxy {
        Some((p, _)) => {
            p.cut();
            None
        }
        None => Some(db.sqlite_write_lock().await.expect("SQLite lock")),
    };
    // The outage starts once PostgreSQL is cut off or SQLite's lock is
    // held (taking the lock waits for the server's writer to let go).
    let down = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let up = Instant::now();
    match (&proxy, lock) {
        (Some((p, _)), _) => p.restore(),
        (None, Some(lock)) => lock.release().await,
        (None, None) => unreachable!(),
    }
    tokio::time::sleep(RECOVERY + Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("task");
    }

    let rec = std::mem::take(&mut *rec.lock().expect("rec"));
    assert!(rec.faults.is_empty(), "{:?}", rec.faults);
    let settle = Duration::from_millis(200);
    let mut during = 0;
    for o in &rec.outcomes {
        assert!(o.took <= FAIL_FAST, "{} took {:?}", o.what, o.took);
        assert!(o.no_store, "{} {} without no-store", o.what, o.status);
        // Answered while the database was away: refused. (One sent near
        // the end may wait for it and succeed once it is back.)
        if o.sent >= down + settle && o.sent + o.took < up {
            during += 1;
            assert_eq!(
                o.status,
                503,
                "{} sent {:?} into the outage, answered in {:?}",
                o.what,
                o.sent - down,
                o.took
            );
        }
        if o.status == 503 {
            assert!(o.retry_after, "503 without Retry-After");
        }
    }
    assert!(during > 10, "only {during} requests during the outage");
    let mut probes_during = 0;
    for p in &rec.probes {
        assert_eq!((p.healthz, p.jwks), (200, 200), "liveness and JWKS always answer");
        // Readiness answers are reused for a second (one database check a
        // second, however many probes), so a probe early in the outage may
        // still see the last check made before it.
        if p.sent >= down + READY_REUSE + settle && p.sent + Duration::from_secs(3) < up {
            probes_during += 1;
            assert_eq!(
                p.readyz,
                503,
                "readiness fails during the outage (probe sent {:?} into it)",
                p.sent - down
            );
        }
    }
    assert!(probes_during > 5);
    let refreshed_again = rec
        .outcomes
        .iter()
        .filter(|o| o.what == "refresh" && o.status == 200 && o.sent >= up)
        .map(|o| o.sent + o.took)
        .min()
        .expect("refreshes succeed again");
    assert!(
        refreshed_again - up <= RECOVERY,
        "first refresh {:?} after the database returned",
        refreshed_again - up
    );
    let ready_again = rec
        .probes
        .iter()
        .filter(|p| p.sent >= up && p.readyz == 200)
        .map(|p| p.sent)
        .min()
        .expect("ready again");
    assert!(ready_again - up <= RECOVERY);
    let slowest = rec.outcomes.iter().map(|o| o.took).max().unwrap_or_default();
    eprintln!(
        "outage: {during} requests refused during it, slowest answer {slowest:?}; \
         refreshing again {:?} and ready {:?} after the database returned",
        refreshed_again - up,
        ready_again - up
    );

    // Every token delivered in a 200 was stored.
    assert!(rec.live.len() > 4);
    for rt in &rec.live {
        let res = app.refresh("mobile", rt).await;
        assert_eq!(res.status(), 200, "a delivered token does not work");
    }
}

on_both_backends!(the_database_going_away_fails_fast_and_recovers_without_restart);
