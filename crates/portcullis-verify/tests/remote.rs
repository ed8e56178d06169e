//! Keys from a JWKS URL (rotation, refetch cooldown, Cache-Control), the
//! revocation feed, and the axum integration, against small local servers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Request, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::*;
use portcullis_verify::axum::{Authenticated, VerifyLayer};
use portcullis_verify::{Verifier, VerifyError};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A stand-in authorization server: a JWKS and a revocation feed, both
/// changeable, with the JWKS fetches counted.
#[derive(Clone, Default)]
struct Fake {
    jwks: Arc<Mutex<Value>>,
    cache_control: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    feed: Arc<Mutex<Vec<Value>>>,
}

async fn serve_jwks(State(f): State<Fake>) -> impl IntoResponse {
    f.fetches.fetch_add(1, Ordering::SeqCst);
    let cc = f.cache_control.lock().expect("lock").clone();
    let body = f.jwks.lock().expect("lock").clone();
    ([(header::CACHE_CONTROL, cc)], axum::Json(body))
}

async fn feed(State(f): State<Fake>, Query(q): Query<std::collections::HashMap<String, i64>>) -> axum::Json<Value> {
    let since = q.get("since").copied().unwrap_or(0);
    let entries: Vec<Value> = f
        .feed
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e["cursor"].as_i64().unwrap_or(0) > since)
        .cloned()
        .collect();
    axum::Json(json!({ "entries": entries }))
}

async fn start(fake: &Fake) -> String {
    let app = Router::new()
        .route("/jwks", get(serve_jwks))
        .route("/revocations", get(feed))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_picked_up_after_one_refetch() {
    let (k1, k2) = (TestKey::es256("k1"), TestKey::es256("k2"));
    let fake = Fake::default();
    *fake.jwks.lock().expect("lock") = jwks(&[&k1]);
    *fake.cache_control.lock().expect("lock") = "public, max-age=300".into();
    let base = start(&fake).await;
    let v = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks_url(format!("{base}/jwks"))
        .refetch_cooldown(Duration::from_millis(200))
        .build()
        .expect("verifier");
    v.verify(&k1.token(json!({}))).await.expect("k1");
    v.verify(&k1.token(json!({}))).await.expect("k1 again, cached");
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
    // The server rotates: k2 signs, k1 stays published.
    *fake.jwks.lock().expect("lock") = jwks(&[&k1, &k2]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    v.verify(&k2.token(json!({}))).await.expect("k2 after one refetch");
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(v.jwks_fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch_per_cooldown() {
    let key = TestKey::es256("k1");
    let fake = Fake::default();
    *fake.jwks.lock().expect("lock") = jwks(&[&key]);
    let base = start(&fake).await;
    let v = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks_url(format!("{base}/jwks"))
        .build()
        .expect("verifier");
    v.verify(&key.token(json!({}))).await.expect("warm the cache");
    let c = claims(json!({}));
    let tasks: Vec<_> = (0..10_000)
        .map(|i| {
            let v = v.clone();
            let token = key.token_with(
                &json!({"typ": "at+jwt", "alg": "ES256", "kid": format!("random-{i}")}),
                &c,
            );
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.expect("task"), Err(VerifyError::InvalidToken(_))));
    }
    // One fetch to warm the cache, then at most one for the whole flood
    // (the 30 s cooldown spans the test).
    let fetches = fake.fetches.load(Ordering::SeqCst);
    assert!(fetches <= 2, "{fetches} JWKS fetches for 10 000 unknown kids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_refetched_when_its_max_age_runs_out() {
    let key = TestKey::es256("k1");
    let fake = Fake::default();
    *fake.jwks.lock().expect("lock") = jwks(&[&key]);
    *fake.cache_control.lock().expect("lock") = "max-age=1".into();
    let base = start(&fake).await;
    let v = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks_url(format!("{base}/jwks"))
        .refetch_cooldown(Duration::from_millis(100))
        .build()
        .expect("verifier");
    v.verify(&key.token(json!({}))).await.expect("first");
    v.verify(&key.token(json!({}))).await.expect("cached");
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&key.token(json!({}))).await.expect("after max-age");
    assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_jwks_is_keys_unavailable() {
    let key = TestKey::es256("k1");
    let v = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks_url("http://127.0.0.1:1/jwks")
        .build()
        .expect("verifier");
    let err = v.verify(&key.token(json!({}))).await.expect_err("no keys");
    assert_eq!((err.clone(), err.status()), (VerifyError::KeysUnavailable, 503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_feed_rejects_tokens_issued_before_a_revocation() {
    let key = TestKey::es256("k1");
    let fake = Fake::default();
    let base = start(&fake).await;
    let v = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&key]))
        .revocation_feed(format!("{base}/revocations"), Duration::from_millis(50))
        .build()
        .expect("verifier");
    let t = now();
    let old = key.token(json!({"iat": t - 10, "nbf": t - 10, "sid": "fam-1", "jti": "a"}));
    let other_family = key.token(json!({"iat": t - 10, "nbf": t - 10, "sid": "fam-2", "jti": "b"}));
    v.verify(&old).await.expect("not revoked yet");
    fake.feed
        .lock()
        .expect("lock")
        .push(json!({"cursor": 1, "kind": "family", "id": "fam-1", "revoked_at": t - 5}));
    let mut revoked = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if v.verify(&old).await.is_err() {
            revoked = true;
            break;
        }
    }
    assert!(revoked, "the revocation was not applied within 2 s");
    assert!(v.feed_synced());
    assert_eq!(
        v.verify(&old).await.expect_err("revoked"),
        VerifyError::InvalidToken("revoked")
    );
    v.verify(&other_family).await.expect("another family is unaffected");
    // A token issued after the revocation (a new sign-in) passes.
    let newer = key.token(json!({"iat": t, "nbf": t, "sid": "fam-1", "jti": "c"}));
    v.verify(&newer).await.expect("issued after the revocation");
    // User and client revocations.
    fake.feed
        .lock()
        .expect("lock")
        .push(json!({"cursor": 2, "kind": "user", "id": "user-1", "revoked_at": t + 1}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(v.verify(&newer).await.is_err(), "revoked with its user");
}

fn app(verifier: Verifier) -> Router {
    async fn me(Authenticated(c): Authenticated) -> String {
        c.sub
    }
    async fn admin(auth: Authenticated) -> Result<String, portcullis_verify::axum::Rejection> {
        auth.require_scopes(&["admin"])?;
        Ok("ok".into())
    }
    Router::new()
        .route(
            "/layered",
            get(me).layer(VerifyLayer::new(verifier.clone()).require_scopes(&["write"])),
        )
        .route("/me", get(me))
        .route("/admin", get(admin))
        .with_state(verifier)
}

async fn call(app: &Router, path: &str, auth: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = Request::get(path);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf8");
    (status, challenge, body)
}

#[tokio::test]
async fn the_axum_extractor_and_layer_answer_per_rfc_6750() {
    let key = TestKey::es256("k1");
    let v = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&key]))
        .realm("notes")
        .build()
        .expect("verifier");
    let app = app(v);
    let good = format!("Bearer {}", key.token(json!({})));
    assert_eq!(call(&app, "/me", Some(&good)).await, (200, None, "user-1".into()));
    assert_eq!(call(&app, "/layered", Some(&good)).await, (200, None, "user-1".into()));
    let (s, c, _) = call(&app, "/me", None).await;
    assert_eq!((s, c.as_deref()), (401, Some(r#"Bearer realm="notes""#)));
    // Another scheme is a malformed request (RFC 6750 §3.1), not a
    // missing token.
    let (s, c, _) = call(&app, "/me", Some("Basic YTpi")).await;
    assert_eq!(
        (s, c.as_deref()),
        (400, Some(r#"Bearer realm="notes", error="invalid_request""#))
    );
    let (s, c, _) = call(&app, "/me", Some("Bearer not a token")).await;
    assert_eq!(
        (s, c.as_deref()),
        (400, Some(r#"Bearer realm="notes", error="invalid_request""#))
    );
    let expired = format!("Bearer {}", key.token(json!({"exp": now() - 3600})));
    let (s, c, _) = call(&app, "/me", Some(&expired)).await;
    assert_eq!(
        (s, c.as_deref()),
        (401, Some(r#"Bearer realm="notes", error="invalid_token""#))
    );
    let (s, c, _) = call(&app, "/admin", Some(&good)).await;
    assert_eq!(s, 403);
    assert!(
        c.expect("challenge")
            .contains(r#"error="insufficient_scope", scope="admin""#)
    );
    let read_only = format!("Bearer {}", key.token(json!({"scope": "read"})));
    let (s, c, _) = call(&app, "/layered", Some(&read_only)).await;
    assert_eq!(
        (s, c.as_deref()),
        (
            403,
            Some(r#"Bearer realm="notes", error="insufficient_scope", scope="write""#)
        )
    );
    // Tokens in the query string are refused, not read.
    let token = key.token(json!({}));
    let (s, c, _) = call(&app, &format!("/me?access_token={token}"), None).await;
    assert_eq!(
        (s, c.as_deref()),
        (400, Some(r#"Bearer realm="notes", error="invalid_request""#))
    );
}
