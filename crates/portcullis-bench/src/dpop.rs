//! DPoP proofs (RFC 9449): one P-256 key per virtual client, a fresh ES256
//! proof for every token request, and the server's nonce remembered.
//!
//! The proof is built by hand rather than by a JWT library: the header is
//! encoded once per client, the claims are one small `write!`, so the hot
//! loop pays for the signature and little else.

use std::{
    fmt::Write as _,
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    rand::{self, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hyper::header::HeaderValue;

use crate::LoadError;

/// The name of the request header that carries the proof.
pub(crate) const DPOP: &str = "dpop";
/// The name of the response header that carries a server-provided nonce.
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// Why a proof could not be made (the key or the random source failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot make a DPoP proof")]
pub(crate) struct ProofError;

/// One virtual client's DPoP key and the server nonce it last received.
pub(crate) struct DpopKey {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// `base64url(header) + "."`, built once: the header only names the key.
    header: String,
    /// The `htu` claim as a JSON string literal, quotes included.
    htu_json: String,
    /// The last `DPoP-Nonce` the server sent, as received.
    nonce: Option<HeaderValue>,
    /// That nonce as a JSON string literal, ready for the claims.
    nonce_json: String,
}

impl DpopKey {
    /// Generates a fresh P-256 key pair for proofs sent to `htu` (the token
    /// endpoint's URL without query or fragment).
    ///
    /// # Errors
    ///
    /// [`LoadError::Dpop`] when the key cannot be generated.
    pub(crate) fn generate(htu: &str) -> Result<Self, LoadError> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| LoadError::Dpop)?;
        // The uncompressed SEC 1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = key.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(LoadError::Dpop);
        }
        let header = format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}}}"#,
            B64.encode(&point[1..33]),
            B64.encode(&point[33..65]),
        );
        let htu_json = serde_json::to_string(htu).map_err(|_| LoadError::Dpop)?;
        Ok(Self {
            key,
            rng: SystemRandom::new(),
            header: B64.encode(header) + ".",
            htu_json,
            nonce: None,
            nonce_json: String::new(),
        })
    }

    /// Remembers the nonce of a `DPoP-Nonce` response header for later proofs.
    pub(crate) fn set_nonce(&mut self, nonce: &HeaderValue) {
        if self.nonce.as_ref() == Some(nonce) {
            return;
        }
        // Nonces are printable ASCII (RFC 9449 §8); anything else is kept
        // out of the proof rather than sent mangled.
        let Ok(text) = nonce.to_str() else { return };
        let Ok(json) = serde_json::to_string(text) else { return };
        self.nonce = Some(nonce.clone());
        self.nonce_json = json;
    }

    /// A fresh proof for a POST to the token endpoint: a new `jti`, the
    /// current `iat` and the last nonce the server sent, if any.
    ///
    /// # Errors
    ///
    /// [`ProofError`] when the random source or the signature fails.
    pub(crate) fn proof(&self) -> Result<HeaderValue, ProofError> {
        let mut jti = [0u8; 16];
        rand::fill(&mut jti).map_err(|_| ProofError)?;
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut claims = String::with_capacity(128 + self.htu_json.len() + self.nonce_json.len());
        claims.push_str(r#"{"jti":""#);
        B64.encode_string(jti, &mut claims);
        claims.push_str(r#"","htm":"POST","htu":"#);
        claims.push_str(&self.htu_json);
        // Writing to a String cannot fail.
        let _ = write!(claims, r#","iat":{iat}"#);
        if self.nonce.is_some() {
            claims.push_str(r#","nonce":"#);
            claims.push_str(&self.nonce_json);
        }
        claims.push('}');

        let mut jws = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 96);
        jws.push_str(&self.header);
        B64.encode_string(claims, &mut jws);
        let signature = self.key.sign(&self.rng, jws.as_bytes()).map_err(|_| ProofError)?;
        jws.push('.');
        B64.encode_string(signature.as_ref(), &mut jws);
        HeaderValue::try_from(jws).map_err(|_| ProofError)
    }
}

/// The `htu` of a token endpoint URL: the URL without query or fragment
/// (RFC 9449 §4.2).
pub(crate) fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use serde_json::Value;

    use super::*;

    fn part(b64: &str) -> Value {
        serde_json::from_slice(&B64.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_names_its_key_and_verifies_with_it() {
        let mut key = DpopKey::generate("http://127.0.0.1:1/oauth/token").unwrap();
        let first = key.proof().unwrap();
        key.set_nonce(&HeaderValue::from_static("n\"1"));
        let second = key.proof().unwrap();

        let parts: Vec<_> = second.to_str().unwrap().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = part(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header["jwk"].get("d").is_none());
        let claims = part(parts[1]);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "http://127.0.0.1:1/oauth/token");
        assert_eq!(claims["nonce"], "n\"1");
        assert!(claims["iat"].is_u64());
        assert_eq!(B64.decode(claims["jti"].as_str().unwrap()).unwrap().len(), 16);

        let first_claims = part(first.to_str().unwrap().split('.').nth(1).unwrap());
        assert!(first_claims.get("nonce").is_none());
        assert_ne!(first_claims["jti"], claims["jti"]);

        let mut point = vec![4u8];
        for c in ["x", "y"] {
            point.extend(B64.decode(header["jwk"][c].as_str().unwrap()).unwrap());
        }
        let signature = B64.decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64);
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(signed.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn htu_drops_query_and_fragment() {
        assert_eq!(htu("http://h:1/oauth/token?x=1#f"), "http://h:1/oauth/token");
        assert_eq!(htu("http://h/t#f"), "http://h/t");
        assert_eq!(htu("http://h/t"), "http://h/t");
    }
}
