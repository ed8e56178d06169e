//! DPoP-bound tokens at a resource server (RFC 9449 §7): the axum layer
//! with a proof, a bound token sent as a bearer token, nonces.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use portcullis_verify::axum::{Authenticated, VerifyLayer};
use portcullis_verify::dpop::{DpopChecker, NonceKey};
use portcullis_verify::{BuildError, Verifier};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const API: &str = "https://api.example";

/// The client's proof key (a P-256 key like the signing key's).
struct Client {
    key: TestKey,
}

impl Client {
    fn new() -> Self {
        Self {
            key: TestKey::es256("client"),
        }
    }

    fn jwk(&self) -> Value {
        let mut jwk = self.key.jwk();
        for member in ["kid", "alg", "use"] {
            jwk.as_object_mut().expect("object").remove(member);
        }
        jwk
    }

    fn jkt(&self) -> String {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk()).expect("jwk");
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
    }

    fn proof(&self, method: &str, url: &str, token: &str, extra: Value) -> String {
        let ath = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
        let mut jti = [0u8; 12];
        aws_lc_rs::rand::fill(&mut jti).expect("random");
        let mut claims = json!({"jti": b64(&jti), "htm": method, "htu": url, "iat": now(), "ath": ath});
        if let Value::Object(o) = extra {
            for (k, v) in o {
                claims[k] = v;
            }
        }
        self.key
            .token_with(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()}), &claims)
    }
}

fn app(signer: &TestKey, checker: DpopChecker) -> Router {
    let verifier = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[signer]))
        .dpop(checker)
        .external_url(format!("{API}/"))
        .build()
        .expect("verifier");
    async fn me(auth: Authenticated) -> String {
        format!("{} bound={}", auth.0.sub, auth.is_dpop_bound())
    }
    Router::new()
        .route("/v1/me", get(me))
        .layer(VerifyLayer::new(verifier.clone()))
        .with_state(verifier)
}

async fn call(
    app: &Router,
    auth: Option<String>,
    proofs: &[&str],
) -> (StatusCode, Vec<String>, Option<String>, String) {
    let mut req = Request::get("/v1/me");
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    for p in proofs {
        req = req.header("dpop", *p);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let challenges = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    let nonce = res
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.expect("body");
    (
        status,
        challenges,
        nonce,
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

#[tokio::test]
async fn a_bound_token_with_its_proof_passes_and_without_it_fails() {
    let signer = TestKey::es256("k1");
    let app = app(&signer, DpopChecker::new());
    let client = Client::new();
    let token = signer.token(json!({"cnf": {"jkt": client.jkt()}}));
    let url = format!("{API}/v1/me");

    let proof = client.proof("GET", &url, &token, json!({}));
    let (status, _, _, body) = call(&app, Some(format!("DPoP {token}")), &[&proof]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "user-1 bound=true"));

    // The same proof again, a bearer presentation, no proof, a proof by
    // another key, for another URL or method, or without the token's hash.
    let (status, challenges, _, _) = call(&app, Some(format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges,
        [r#"DPoP realm="api", algs="ES256 EdDSA Ed25519 RS256 PS256", error="invalid_dpop_proof""#]
    );

    let (status, challenges, _, _) = call(&app, Some(format!("Bearer {token}")), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="api", error="invalid_token""#,
            r#"DPoP realm="api", algs="ES256 EdDSA Ed25519 RS256 PS256""#
        ]
    );
    let other = Client::new();
    for (why, proofs) in [
        ("no proof", vec![]),
        ("another key", vec![other.proof("GET", &url, &token, json!({}))]),
        (
            "another URL",
            vec![client.proof("GET", &format!("{API}/v1/other"), &token, json!({}))],
        ),
        (
            "http",
            vec![client.proof("GET", "http://api.example/v1/me", &token, json!({}))],
        ),
        ("another method", vec![client.proof("POST", &url, &token, json!({}))]),
        ("another token", vec![client.proof("GET", &url, "x.y.z", json!({}))]),
        (
            "stale",
            vec![client.proof("GET", &url, &token, json!({"iat": now() - 600}))],
        ),
    ] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, challenges, _, _) = call(&app, Some(format!("DPoP {token}")), &proofs).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
        assert!(
            challenges[0].ends_with(r#"error="invalid_dpop_proof""#),
            "{why}: {challenges:?}"
        );
    }
    // The URL with a query is still this URL.
    let proof = client.proof("GET", &format!("{url}?page=2"), &token, json!({}));
    assert_eq!(
        call(&app, Some(format!("DPoP {token}")), &[&proof]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bearer_tokens_still_pass_and_dpop_is_offered() {
    let signer = TestKey::es256("k1");
    let app = app(&signer, DpopChecker::new());
    let token = signer.token(json!({}));
    let (status, _, _, body) = call(&app, Some(format!("Bearer {token}")), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "user-1 bound=false"));
    // An unbound token with the DPoP scheme is refused.
    let client = Client::new();
    let proof = client.proof("GET", &format!("{API}/v1/me"), &token, json!({}));
    let (status, challenges, _, _) = call(&app, Some(format!("DPoP {token}")), &[&proof]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges,
        [r#"DPoP realm="api", algs="ES256 EdDSA Ed25519 RS256 PS256", error="invalid_token""#]
    );
    // No token: both schemes offered.
    let (status, challenges, _, _) = call(&app, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="api""#,
            r#"DPoP realm="api", algs="ES256 EdDSA Ed25519 RS256 PS256""#
        ]
    );
}

#[tokio::test]
async fn a_resource_server_can_require_its_own_nonces() {
    let signer = TestKey::es256("k1");
    let checker = DpopChecker::new()
        .nonces(NonceKey::new(&[3u8; 32], Duration::from_secs(60)))
        .require_nonces();
    let app = app(&signer, checker);
    let client = Client::new();
    let token = signer.token(json!({"cnf": {"jkt": client.jkt()}}));
    let url = format!("{API}/v1/me");
    let (status, challenges, nonce, _) = call(
        &app,
        Some(format!("DPoP {token}")),
        &[&client.proof("GET", &url, &token, json!({}))],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenges[0].ends_with(r#"error="use_dpop_nonce""#), "{challenges:?}");
    let nonce = nonce.expect("a nonce to use");
    let proof = client.proof("GET", &url, &token, json!({"nonce": nonce}));
    assert_eq!(
        call(&app, Some(format!("DPoP {token}")), &[&proof]).await.0,
        StatusCode::OK
    );
}

#[test]
fn dpop_needs_the_external_url() {
    let signer = TestKey::es256("k1");
    let built = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&signer]))
        .dpop(DpopChecker::new())
        .build();
    assert_eq!(built.err(), Some(BuildError::NoExternalUrl));
}

#[tokio::test]
async fn verify_refuses_a_bound_token_and_inspect_reads_it() {
    let signer = TestKey::es256("k1");
    let verifier = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&signer]))
        .build()
        .expect("verifier");
    let token = signer.token(json!({"cnf": {"jkt": "abc"}}));
    assert_eq!(
        verifier.verify(&token).await.err().map(|e| e.code()),
        Some(Some("invalid_token"))
    );
    assert_eq!(
        verifier.inspect(&token).await.expect("claims").cnf.expect("cnf").jkt,
        "abc"
    );
    // Without DPoP configured, the DPoP scheme is not taken.
    assert_eq!(
        verifier
            .verify_dpop(&token, "p", "GET", API)
            .await
            .err()
            .map(|e| e.status()),
        Some(400)
    );
}
