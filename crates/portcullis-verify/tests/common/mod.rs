//! Test keys and hand-made tokens (so that malformed ones can be made too).

#![allow(dead_code, unreachable_pub)]

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://auth.example";
pub const AUDIENCE: &str = "https://api.example";

pub fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()).expect("time")
}

pub enum Pair {
    Es(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    pub pair: Pair,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
        Self {
            kid: kid.into(),
            alg: "ES256",
            pair: Pair::Es(pair),
        }
    }

    pub fn eddsa(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            alg: "EdDSA",
            pair: Pair::Ed(Ed25519KeyPair::generate().expect("key")),
        }
    }

    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Es(p) => p.public_key().as_ref().to_vec(),
            Pair::Ed(p) => p.public_key().as_ref().to_vec(),
        }
    }

    pub fn jwk(&self) -> Value {
        match &self.pair {
            Pair::Es(p) => {
                let pt = p.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..]),
                       "kid": self.kid, "alg": "ES256", "use": "sig"})
            }
            Pair::Ed(p) => json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(p.public_key().as_ref()),
                                  "kid": self.kid, "alg": "EdDSA", "use": "sig"}),
        }
    }

    pub fn sign_raw(&self, input: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Es(p) => p.sign(&SystemRandom::new(), input).expect("sign").as_ref().to_vec(),
            Pair::Ed(p) => p.sign(input).as_ref().to_vec(),
        }
    }

    /// The standard header for this key.
    pub fn header(&self) -> Value {
        json!({"typ": "at+jwt", "alg": self.alg, "kid": self.kid})
    }

    /// A token with `header` and `claims`, signed by this key.
    pub fn token_with(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        format!("{input}.{}", B64.encode(self.sign_raw(input.as_bytes())))
    }

    /// A valid token for `claims` overrides.
    pub fn token(&self, overrides: Value) -> String {
        self.token_with(&self.header(), &claims(overrides))
    }
}

pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()))
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Valid claims, with `overrides` merged in (a `null` removes a claim).
pub fn claims(overrides: Value) -> Value {
    let t = now();
    let mut c = json!({
        "iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "client_id": "mobile", "scope": "read write",
        "iat": t, "nbf": t, "exp": t + 900, "jti": "jti-1", "sid": "family-1"
    });
    if let Value::Object(o) = overrides {
        for (k, v) in o {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(&k);
            } else {
                c[k] = v;
            }
        }
    }
    c
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}
