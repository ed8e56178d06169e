//! Signing keys: creation, loading from the store, JWT signing and the
//! public JWKS.
//!
//! Keys are created with aws-lc-rs, stored as PKCS#8 with their public JWK,
//! and parsed once when loaded, so that signing a token does not re-parse a
//! private key.

pub mod kek;
mod rotate;

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_store::{KeyState, NewSigningKey, SigningKey, UnixTime};
use serde_json::{Value, json};

pub use kek::Kek;
pub use rotate::{RotateError, rotate};

/// The JWS algorithms this server signs with (RFC 7518 names). Never `none`,
/// never HMAC: resource servers verify with public keys only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256 (default).
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
}

impl Alg {
    /// The JWS `alg` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }
}

impl FromStr for Alg {
    type Err = UnknownAlg;
    fn from_str(s: &str) -> Result<Self, UnknownAlg> {
        match s {
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            "RS256" => Ok(Self::Rs256),
            _ => Err(UnknownAlg),
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of ES256, EdDSA, RS256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signing algorithm (expected ES256, EdDSA or RS256)")]
pub struct UnknownAlg;

/// A key could not be created or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key error: {0}")]
pub struct KeyError(&'static str);

impl KeyError {
    pub(crate) fn internal(what: &'static str) -> Self {
        Self(what)
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// A private key ready to sign, with its id and public JWK.
pub struct Signer {
    kid: String,
    alg: Alg,
    pair: Pair,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    #[must_use]
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Parses a stored key, decrypting it with `kek` when it is stored
    /// encrypted.
    ///
    /// # Errors
    /// When the algorithm is unknown, the key is encrypted and `kek` is
    /// missing or wrong, or the key does not parse.
    pub fn from_stored(key: &SigningKey, kek: Option<&Kek>) -> Result<Self, KeyError> {
        Self::from_der(key, &kek::plaintext(key, kek)?)
    }

    /// Parses the PKCS#8 `der` of `key`.
    fn from_der(key: &SigningKey, der: &[u8]) -> Result<Self, KeyError> {
        let alg: Alg = key.alg.parse().map_err(|_| KeyError("unknown algorithm"))?;
        let pair = match alg {
            Alg::Es256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| KeyError("bad P-256 key"))?,
            ),
            Alg::EdDsa => Pair::EdDsa(Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError("bad Ed25519 key"))?),
            Alg::Rs256 => Pair::Rs256(RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError("bad RSA key"))?),
        };
        Ok(Self {
            kid: key.kid.clone(),
            alg,
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// Signs a JWS compact serialization: `header.payload.signature`.
    ///
    /// # Errors
    /// When the crypto library fails (it does not for valid keys).
    pub fn sign_jwt(&self, header: &Value, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        let header = serde_json::to_vec(header).map_err(|_| KeyError("header"))?;
        let claims = serde_json::to_vec(claims).map_err(|_| KeyError("claims"))?;
        let mut out = String::with_capacity(512);
        URL_SAFE_NO_PAD.encode_string(header, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut out);
        let sig = match &self.pair {
            Pair::Es256(k) => k
                .sign(&self.rng, out.as_bytes())
                .map_err(|_| KeyError("sign"))?
                .as_ref()
                .to_vec(),
            Pair::EdDsa(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
            Pair::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
                    .map_err(|_| KeyError("sign"))?;
                sig
            }
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        Ok(out)
    }
}

/// Creates a new key pair of `alg` with a random `kid`, ready to store.
///
/// # Errors
/// When the crypto library fails to generate a key.
pub fn generate(alg: Alg, retire_after: Option<UnixTime>) -> Result<NewSigningKey, KeyError> {
    let kid = crate::secret::OpaqueSecret::generate().expose()[..16].to_owned();
    let (private_key, mut jwk) = match alg {
        Alg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError("generate"))?;
            let der = pair.to_pkcs8v1().map_err(|_| KeyError("export"))?.as_ref().to_vec();
            // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError("unexpected P-256 public key encoding"));
            }
            let jwk = json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
            (der, jwk)
        }
        Alg::EdDsa => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError("generate"))?;
            let der = pair.to_pkcs8().map_err(|_| KeyError("export"))?.as_ref().to_vec();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
            (der, jwk)
        }
        Alg::Rs256 => {
            use aws_lc_rs::encoding::AsDer as _;
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError("generate"))?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().map_err(|_| KeyError("export"))?;
            let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let jwk =
                json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&parts.n), "e": URL_SAFE_NO_PAD.encode(&parts.e)});
            (der.as_ref().to_vec(), jwk)
        }
    };
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg.as_str());
    jwk["use"] = json!("sig");
    Ok(NewSigningKey {
        kid,
        alg: alg.as_str().to_owned(),
        public_jwk: jwk.to_string(),
        private_key,
        retire_after,
    })
}

/// The signing keys and the published set, built from the stored keys.
#[derive(Debug)]
pub struct KeySet {
    /// Every active key, parsed once, with the time it was created.
    signers: Vec<(UnixTime, Signer)>,
    /// Seconds a key is published before it signs.
    publish_delay_secs: i64,
    /// The JWKS document (public members only), serialized once.
    pub jwks: String,
}

impl KeySet {
    /// Builds the set from stored keys. Every active key, and retired keys
    /// younger than `keep_retired_secs`, are published. See
    /// [`KeySet::signer`] for which key signs.
    ///
    /// # Errors
    /// When no active key exists or one cannot be decrypted (with `kek`)
    /// or parsed.
    pub fn from_stored(
        keys: &[SigningKey],
        kek: Option<&Kek>,
        now: UnixTime,
        keep_retired_secs: i64,
        publish_delay_secs: i64,
    ) -> Result<Self, KeyError> {
        let signers = keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| Ok((k.created_at, Signer::from_stored(k, kek)?)))
            .collect::<Result<Vec<_>, KeyError>>()?;
        if signers.is_empty() {
            return Err(KeyError("no active signing key"));
        }
        let published: Vec<Value> = keys
            .iter()
            .filter(|k| match k.state {
                KeyState::Active => true,
                KeyState::Retired => k.retired_at.is_some_and(|t| t.plus(keep_retired_secs) > now),
            })
            .filter_map(|k| public_only(&k.public_jwk))
            .collect();
        Ok(Self {
            signers,
            publish_delay_secs,
            jwks: json!({ "keys": published }).to_string(),
        })
    }

    /// The key that signs at `now`: the newest active key that has been
    /// published for the publication delay (so that resource servers'
    /// cached JWKS already hold it when the first token it signs arrives),
    /// or the oldest active key when none has. Chosen per token, so a new
    /// key takes over on time without a reload.
    #[must_use]
    pub fn signer(&self, now: UnixTime) -> &Signer {
        let chosen = pick(
            self.signers.iter(),
            |(t, s)| (*t, s.kid()),
            now,
            self.publish_delay_secs,
        );
        // `signers` is never empty (checked at construction).
        &chosen.unwrap_or(&self.signers[0]).1
    }
}

/// The key that signs now (see [`KeySet::from_stored`]).
#[must_use]
pub fn signing_key(keys: &[SigningKey], now: UnixTime, publish_delay_secs: i64) -> Option<&SigningKey> {
    let active = keys.iter().filter(|k| k.state == KeyState::Active);
    pick(active, |k| (k.created_at, k.kid.as_str()), now, publish_delay_secs)
}

/// The rule of [`KeySet::signer`], over any list of keys: the newest
/// published for `delay` seconds, else the oldest.
fn pick<'a, T>(
    items: impl Iterator<Item = &'a T> + Clone,
    key: impl Fn(&'a T) -> (UnixTime, &'a str),
    now: UnixTime,
    delay: i64,
) -> Option<&'a T> {
    let ready = items
        .clone()
        .filter(|i| key(i).0.plus(delay) <= now)
        .max_by_key(|i| key(i));
    ready.or_else(|| items.min_by_key(|i| key(i)))
}

/// The JWK with only public members kept (RFC 7517 §4, RFC 7518 §6): a
/// stored JWK carrying private parts by mistake never reaches the JWKS.
fn public_only(jwk: &str) -> Option<Value> {
    const PUBLIC: [&str; 9] = ["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"];
    let Value::Object(map) = serde_json::from_str::<Value>(jwk).ok()? else {
        return None;
    };
    Some(Value::Object(
        map.into_iter().filter(|(k, _)| PUBLIC.contains(&k.as_str())).collect(),
    ))
}

#[cfg(test)]
mod tests;
