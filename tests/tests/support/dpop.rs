//! A DPoP client key (RFC 9449): ES256 proofs as an app makes them, with
//! every header and claim open to tampering for the negative tests.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// A device's P-256 key.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    /// The public JWK.
    pub jwk: Value,
    /// Its RFC 7638 thumbprint, computed by jsonwebtoken.
    pub jkt: String,
}

impl DpopKey {
    /// A fresh key.
    pub fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])});
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
        let jkt = parsed.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256);
        Self { pair, jwk, jkt }
    }

    /// The proof header.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    /// Claims for `method` `url`, now, with a fresh `jti`; `ath` for
    /// `access_token`, and `nonce`.
    pub fn claims(&self, method: &str, url: &str, access_token: Option<&str>, nonce: Option<&str>) -> Value {
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).expect("random");
        let mut claims = json!({"jti": B64.encode(jti), "htm": method, "htu": url, "iat": now()});
        if let Some(token) = access_token {
            claims["ath"] = json!(B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    /// A proof for `method` `url`.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>, nonce: Option<&str>) -> String {
        self.sign(&self.header(), &self.claims(method, url, access_token, nonce))
    }

    /// A proof of these header and claims, signed with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signature");
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

/// Unix seconds.
pub fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs()).expect("time")
}

/// The claims of a JWT (not verified: the tests read what was issued).
pub fn claims_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("claims part");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("json")
}
