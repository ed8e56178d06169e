//! Tokens that must be refused (RFC 8725, RFC 9068 §4, known attacks), and
//! the ones that must pass.

mod common;

use std::time::Duration;

use aws_lc_rs::hmac;
use common::*;
use portcullis_verify::{Verifier, VerifyError};
use serde_json::json;

fn verifier(keys: &[&TestKey]) -> Verifier {
    Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(keys))
        .build()
        .expect("verifier")
}

async fn refused(v: &Verifier, token: &str, why: &str) {
    match v.verify(token).await {
        Err(e @ VerifyError::InvalidToken(_)) => {
            assert_eq!((e.status(), e.code()), (401, Some("invalid_token")), "{why}");
        }
        other => panic!("{why}: expected invalid_token, got {other:?}"),
    }
}

#[tokio::test]
async fn valid_tokens_pass_for_each_algorithm() {
    let (es, ed) = (TestKey::es256("es"), TestKey::eddsa("ed"));
    let v = verifier(&[&es, &ed]);
    for key in [&es, &ed] {
        let c = v.verify(&key.token(json!({}))).await.expect("valid");
        assert_eq!(
            (c.sub.as_str(), c.client_id.as_str(), c.jti.as_str()),
            ("user-1", "mobile", "jti-1")
        );
        assert!(c.has_scope("read") && !c.has_scope("admin"));
    }
    // A list audience containing ours, and expiry within the leeway.
    let t = now();
    v.verify(&es.token(json!({"aud": ["other", AUDIENCE], "exp": t - 30})))
        .await
        .expect("within leeway");
}

#[tokio::test]
async fn alg_none_and_empty_or_zero_signatures_are_refused() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    let c = claims(json!({}));
    let none = signing_input(&json!({"typ": "at+jwt", "alg": "none", "kid": "k1"}), &c);
    refused(&v, &format!("{none}."), "alg none").await;
    let es = signing_input(&key.header(), &c);
    refused(&v, &format!("{es}."), "empty signature").await;
    // CVE-2022-21449: ECDSA with r = s = 0.
    refused(&v, &format!("{es}.{}", b64(&[0u8; 64])), "r = s = 0").await;
    let token = key.token(json!({}));
    let tampered = token.replace("user-1", "user-2");
    assert_eq!(
        token, tampered,
        "the claims are base64: tamper with the payload instead"
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
    refused(&v, &parts.join("."), "payload swapped under a valid signature").await;
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    let c = claims(json!({}));
    let header = json!({"typ": "at+jwt", "alg": "HS256", "kid": "k1"});
    let input = signing_input(&header, &c);
    for secret in [key.public_bytes(), key.jwk().to_string().into_bytes()] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), input.as_bytes());
        refused(
            &v,
            &format!("{input}.{}", b64(tag.as_ref())),
            "HS256 with the public key",
        )
        .await;
    }
    // HS* can never be allowed.
    let err = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&key]))
        .algorithms(&[portcullis_verify::Algorithm::HS256])
        .build()
        .expect_err("HS256");
    assert_eq!(err, portcullis_verify::BuildError::SymmetricAlgorithm);
}

#[tokio::test]
async fn an_algorithm_that_does_not_match_the_key_is_refused() {
    let (es, ed) = (TestKey::es256("es"), TestKey::eddsa("ed"));
    let v = verifier(&[&es, &ed]);
    // Signed by the Ed25519 key, but naming the ES256 key's kid.
    let header = json!({"typ": "at+jwt", "alg": "EdDSA", "kid": "es"});
    refused(
        &v,
        &ed.token_with(&header, &claims(json!({}))),
        "EdDSA under an ES256 kid",
    )
    .await;
}

#[tokio::test]
async fn keys_in_the_header_are_ignored_and_jku_is_never_fetched() {
    let ours = TestKey::es256("k1");
    let evil = TestKey::es256("evil");
    let v = verifier(&[&ours]);
    // A listener standing for the attacker's jku host: it must see nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let jku = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let accept = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    for kid in ["evil", "k1"] {
        let header = json!({"typ": "at+jwt", "alg": "ES256", "kid": kid, "jwk": evil.jwk(), "jku": jku,
                            "x5u": jku, "x5c": ["MIIB"]});
        refused(
            &v,
            &evil.token_with(&header, &claims(json!({}))),
            "self-signed with header keys",
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the jku URL received a request"
    );
    accept.abort();
}

#[tokio::test]
async fn a_kid_is_only_a_lookup_key() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    for kid in [
        "../../dev/null".to_owned(),
        "' OR '1'='1".to_owned(),
        "k".repeat(8 * 1024),
        String::new(),
    ] {
        let header = json!({"typ": "at+jwt", "alg": "ES256", "kid": kid});
        refused(&v, &key.token_with(&header, &claims(json!({}))), "odd kid").await;
    }
    let header = json!({"typ": "at+jwt", "alg": "ES256"});
    refused(&v, &key.token_with(&header, &claims(json!({}))), "no kid").await;
}

#[tokio::test]
async fn wrong_typ_issuer_or_audience_is_refused() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    for typ in [json!("JWT"), json!("jwt"), json!(null)] {
        let mut header = key.header();
        header["typ"] = typ;
        refused(&v, &key.token_with(&header, &claims(json!({}))), "typ").await;
    }
    let mut header = key.header();
    header["typ"] = json!("application/at+jwt");
    v.verify(&key.token_with(&header, &claims(json!({}))))
        .await
        .expect("the media-type form of typ");
    refused(&v, &key.token(json!({"iss": "https://evil.example"})), "iss").await;
    refused(&v, &key.token(json!({"iss": format!("{ISSUER}/")})), "iss is exact").await;
    refused(&v, &key.token(json!({"aud": null})), "no aud").await;
    refused(&v, &key.token(json!({"aud": "https://other.example"})), "other aud").await;
    refused(&v, &key.token(json!({"aud": []})), "empty aud").await;
}

#[tokio::test]
async fn times_are_checked_with_leeway_and_must_be_numbers() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    let t = now();
    refused(&v, &key.token(json!({"exp": t - 120})), "expired beyond leeway").await;
    refused(&v, &key.token(json!({"nbf": t + 120})), "nbf in the future").await;
    refused(&v, &key.token(json!({"iat": t + 600, "nbf": t})), "iat in the future").await;
    refused(&v, &key.token(json!({"exp": (t + 900).to_string()})), "exp as a string").await;
    refused(&v, &key.token(json!({"iat": t.to_string()})), "iat as a string").await;
    refused(
        &v,
        &key.token(json!({"nbf": (t + 3600).to_string()})),
        "nbf as a string",
    )
    .await;
    refused(&v, &key.token(json!({"exp": null})), "no exp").await;
    let strict = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&key]))
        .leeway(Duration::ZERO)
        .build()
        .expect("v");
    refused(&strict, &key.token(json!({"exp": t - 5})), "no leeway").await;
    // RFC 7519 §4.1.4: not accepted on or after `exp`.
    refused(&strict, &key.token(json!({"exp": t})), "at exp").await;
    strict
        .verify(&key.token(json!({"exp": t + 5})))
        .await
        .expect("before exp");
}

#[tokio::test]
async fn required_claims_must_be_present() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    for claim in ["jti", "client_id", "sub", "iat"] {
        refused(&v, &key.token(json!({claim: null})), claim).await;
    }
    refused(&v, &key.token(json!({"sub": ""})), "empty sub").await;
}

#[tokio::test]
async fn garbage_is_refused() {
    let key = TestKey::es256("k1");
    let v = verifier(&[&key]);
    for junk in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJFUzI1NiJ9.e30.",
        &"A".repeat(20_000),
    ] {
        refused(&v, junk, "garbage").await;
    }
    // A valid token with anything appended as more parts (a JWE has five).
    let good = key.token(json!({}));
    v.verify(&good).await.expect("valid");
    refused(&v, &format!("{good}."), "four parts").await;
    refused(&v, &format!("{good}.e30.e30"), "five parts").await;
    // Padding or standard base64 instead of base64url.
    refused(&v, &good.replacen('.', "=.", 1), "padded header").await;
}
