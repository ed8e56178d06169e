//! RFC 7515 §4.1.11 (`crit`) and the optional lifetime limit.

mod common;

use std::time::Duration;

use common::*;
use portcullis_verify::{Verifier, VerifyError};
use serde_json::json;

fn verifier(key: &TestKey, max_lifetime: Option<Duration>) -> Verifier {
    let mut b = Verifier::builder(ISSUER).audience(AUDIENCE).jwks(jwks(&[key]));
    if let Some(max) = max_lifetime {
        b = b.max_lifetime(max);
    }
    b.build().expect("verifier")
}

fn invalid(result: Result<portcullis_verify::AccessTokenClaims, VerifyError>, why: &str) {
    match result {
        Err(e @ VerifyError::InvalidToken(_)) => {
            assert_eq!((e.status(), e.code()), (401, Some("invalid_token")), "{why}");
        }
        other => panic!("{why}: expected invalid_token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_header_with_crit_is_refused_whatever_it_names() {
    let key = TestKey::es256("k1");
    let v = verifier(&key, None);
    let c = claims(json!({}));
    v.verify(&key.token_with(&key.header(), &c))
        .await
        .expect("no crit: valid");
    for crit in [
        json!(["exp"]),
        json!(["b64"]),
        json!(["urn:example:unknown"]),
        json!([]),
        json!(null),
    ] {
        let mut header = key.header();
        header["crit"] = crit.clone();
        if crit.is_array() && !crit.as_array().expect("array").is_empty() {
            // The named extension present too, as RFC 7515 asks.
            let name = crit[0].as_str().expect("name");
            if name != "exp" {
                header[name] = json!(false);
            }
        }
        invalid(v.verify(&key.token_with(&header, &c)).await, &format!("crit {crit}"));
    }
}

#[tokio::test]
async fn max_lifetime_refuses_tokens_that_claim_to_live_longer() {
    let key = TestKey::es256("k1");
    let t = now();
    let long = key.token(json!({"iat": t, "nbf": t, "exp": t + 86_400}));
    let usual = key.token(json!({"iat": t, "nbf": t, "exp": t + 900}));
    // Without the limit both pass (the default stays as it was).
    let lenient = verifier(&key, None);
    lenient.verify(&long).await.expect("no limit configured");
    let strict = verifier(&key, Some(Duration::from_secs(900)));
    strict.verify(&usual).await.expect("exactly the lifetime");
    invalid(
        strict.verify(&long).await,
        "a day-long token against a 15-minute lifetime",
    );
    // Within the leeway (60 s by default) still passes; beyond does not.
    let skewed = key.token(json!({"iat": t, "nbf": t, "exp": t + 900 + 60}));
    strict.verify(&skewed).await.expect("within the leeway");
    let over = key.token(json!({"iat": t, "nbf": t, "exp": t + 900 + 61}));
    invalid(strict.verify(&over).await, "past the leeway");
}
