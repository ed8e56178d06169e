//! Signing-key rotation and `kid` floods while the verifier is under a
//! steady load, against a local JWKS server that counts its fetches.
//! Loopback only; every loop is bounded in iterations.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use common::*;
use portcullis_verify::{Verifier, VerifyError};
use serde_json::{Value, json};
use tokio::time::{MissedTickBehavior, interval, sleep, sleep_until};

/// A JWKS endpoint whose document can be changed, counting its fetches.
#[derive(Clone)]
struct Issuer {
    jwks: Arc<Mutex<Value>>,
    cache_control: &'static str,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start(keys: &[&TestKey], cache_control: &'static str) -> (Self, String) {
        let issuer = Self {
            jwks: Arc::new(Mutex::new(jwks(keys))),
            cache_control,
            fetches: Arc::default(),
        };
        async fn serve(State(i): State<Issuer>) -> impl IntoResponse {
            i.fetches.fetch_add(1, Ordering::SeqCst);
            let body = i.jwks.lock().expect("lock").clone();
            ([(header::CACHE_CONTROL, i.cache_control)], axum::Json(body))
        }
        let app = Router::new().route("/jwks", get(serve)).with_state(issuer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (issuer, url)
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().expect("lock") = jwks(keys);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn verifier(url: &str, cooldown: Duration) -> Verifier {
    Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks_url(url)
        .refetch_cooldown(cooldown)
        .build()
        .expect("verifier")
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    by_old_key: AtomicUsize,
    by_new_key: AtomicUsize,
    /// The first few rejections of valid tokens, with their cause.
    rejected: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_under_load_rejects_no_valid_token_and_the_new_key_takes_over() {
    // The issuer's side of a rotation: publish the new key, keep signing
    // with the old one for longer than the JWKS may be cached, then sign
    // with the new one; drop the old key once its tokens are gone.
    let max_age = Duration::from_secs(1);
    let cooldown = Duration::from_millis(200);
    let (old, new) = (
        Arc::new(TestKey::es256("2026-old")),
        Arc::new(TestKey::es256("2026-new")),
    );
    let (issuer, url) = Issuer::start(&[&old], "public, max-age=1").await;
    let v = verifier(&url, cooldown);
    v.verify(&old.token(json!({}))).await.expect("warm the cache");

    let start = tokio::time::Instant::now();
    let publish_at = start + Duration::from_millis(500);
    let switch_at = publish_at + max_age + cooldown + Duration::from_millis(100);
    let drop_at = switch_at + Duration::from_millis(500);
    let load_ends = start + Duration::from_secs(3);
    // 0: the old key signs, 1: the new one.
    let signing = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());

    // Four clients, each issuing a token every 8 ms and verifying either
    // that fresh token or the one it was issued about 100 ms before
    // (a token is used for a while): about 500 verifications a second.
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (v, old, new, signing, tally) = (v.clone(), old.clone(), new.clone(), signing.clone(), tally.clone());
            tokio::spawn(async move {
                let mut tick = interval(Duration::from_millis(8));
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut recent: std::collections::VecDeque<(usize, String)> = std::collections::VecDeque::new();
                for n in 0..1_000u32 {
                    tick.tick().await;
                    if tokio::time::Instant::now() >= load_ends {
                        break;
                    }
                    let by = signing.load(Ordering::SeqCst);
                    let key = if by == 0 { &old } else { &new };
                    recent.push_back((by, key.token(json!({"jti": format!("{w}-{n}")}))));
                    let (by, token) = if n % 2 == 0 || recent.len() < 12 {
                        recent.back().expect("just pushed").clone()
                    } else {
                        recent.pop_front().expect("not empty")
                    };
                    if recent.len() > 12 {
                        recent.pop_front();
                    }
                    match v.verify(&token).await {
                        Ok(_) => {
                            let counter = if by == 0 { &tally.by_old_key } else { &tally.by_new_key };
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            let mut r = tally.rejected.lock().expect("lock");
                            if r.len() < 5 {
                                r.push(format!("key {by}: {e:?}"));
                            }
                        }
                    }
                }
            })
        })
        .collect();

    sleep_until(publish_at).await;
    issuer.publish(&[&old, &new]);
    sleep_until(switch_at).await;
    signing.store(1, Ordering::SeqCst);
    sleep_until(drop_at).await;
    issuer.publish(&[&new]);
    for w in workers {
        w.await.expect("worker");
    }

    let rejected = tally.rejected.lock().expect("lock").clone();
    let (by_old, by_new) = (
        tally.by_old_key.load(Ordering::SeqCst),
        tally.by_new_key.load(Ordering::SeqCst),
    );
    assert!(rejected.is_empty(), "valid tokens were rejected: {rejected:?}");
    assert!(by_old > 0 && by_new > 0, "{by_old} by the old key, {by_new} by the new");

    // Once the cache has outlived the old key's removal, the old key is
    // gone and the new one verifies.
    sleep_until(drop_at + max_age + cooldown + Duration::from_millis(100)).await;
    assert_eq!(
        v.verify(&old.token(json!({})))
            .await
            .expect_err("the old key was dropped"),
        VerifyError::InvalidToken("unknown kid")
    );
    v.verify(&new.token(json!({}))).await.expect("the new key");

    // The warm-up fetch, at least one that saw the new key before it
    // signed and one after the old key was dropped; after the warm-up,
    // never more than one per cooldown.
    let fetches = issuer.fetches();
    let most = 1 + (start.elapsed().as_millis() / cooldown.as_millis()) as usize;
    assert!((3..=most).contains(&fetches), "{fetches} JWKS fetches (at most {most})");
    assert_eq!(v.jwks_fetches(), fetches as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown_and_valid_tokens_keep_verifying() {
    let cooldown = Duration::from_millis(500);
    let (key, next) = (Arc::new(TestKey::es256("k1")), TestKey::es256("k2"));
    let (issuer, url) = Issuer::start(&[&key], "public, max-age=300").await;
    let v = verifier(&url, cooldown);
    v.verify(&key.token(json!({}))).await.expect("warm the cache");
    assert_eq!(issuer.fetches(), 1);
    let start = Instant::now();

    // Sixteen attackers, each sending a token with a made-up `kid` every
    // 10 ms, 300 times: 4 800 unknown kids over at least three seconds.
    let c = claims(json!({}));
    let flood: Vec<_> = (0..16)
        .map(|a| {
            let (v, key, c) = (v.clone(), key.clone(), c.clone());
            tokio::spawn(async move {
                let mut tick = interval(Duration::from_millis(10));
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut refused = 0usize;
                for n in 0..300 {
                    tick.tick().await;
                    let header = json!({"typ": "at+jwt", "alg": "ES256", "kid": format!("made-up-{a}-{n}")});
                    if v.verify(&key.token_with(&header, &c)).await == Err(VerifyError::InvalidToken("unknown kid")) {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    // Meanwhile two clients with valid tokens.
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (v, key) = (v.clone(), key.clone());
            tokio::spawn(async move {
                let mut tick = interval(Duration::from_millis(20));
                let mut failures = Vec::new();
                for _ in 0..150 {
                    tick.tick().await;
                    if let Err(e) = v.verify(&key.token(json!({}))).await {
                        failures.push(e);
                    }
                }
                failures
            })
        })
        .collect();

    // The issuer publishes a new key mid-flood: the flood must not keep it
    // from being picked up within a cooldown.
    sleep(Duration::from_secs(1)).await;
    issuer.publish(&[&key, &next]);
    sleep(cooldown + Duration::from_millis(100)).await;
    v.verify(&next.token(json!({})))
        .await
        .expect("a newly published key during the flood");

    let mut refused = 0;
    for f in flood {
        refused += f.await.expect("attacker");
    }
    for c in clients {
        let failures = c.await.expect("client");
        assert!(
            failures.is_empty(),
            "valid tokens refused during the flood: {failures:?}"
        );
    }
    let elapsed = start.elapsed();
    assert_eq!(refused, 16 * 300, "every made-up kid is an unknown kid");

    // The warm-up, then at most one fetch per cooldown for the flood (the
    // first no sooner than a cooldown after the warm-up); at least one, or
    // the new key could not have been found.
    let fetches = issuer.fetches();
    let most = 1 + (elapsed.as_millis() / cooldown.as_millis()) as usize;
    assert!(
        (2..=most).contains(&fetches),
        "{fetches} JWKS fetches in {elapsed:?} (at most {most})"
    );
    assert_eq!(v.jwks_fetches(), fetches as u64);
}
