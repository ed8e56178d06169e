//! DPoP (RFC 9449): checking a proof of possession of the key a token is
//! bound to.
//!
//! A [`DpopChecker`] checks one `DPoP` header against the request it came
//! with ([`Target`]): the proof is a JWS whose header carries the client's
//! public key; it is signed with the private key, names the request's
//! method and URL, is recent, is not replayed, carries the hash of the
//! access token it is sent with and, when the server asks, a nonce the
//! server handed out. The authorization server and resource servers use
//! the same checker.
//!
//! What a single instance can and cannot stop:
//! - the `jti` of every accepted proof is remembered for the proof's
//!   lifetime (the `iat` window), so a proof cannot be replayed to the
//!   same instance;
//! - another instance does not share that memory: a proof captured in
//!   transit could be replayed to another instance within the `iat`
//!   window. Server-issued nonces ([`NonceKey`]) shrink that window to the
//!   nonce's lifetime without shared state, since every instance derives
//!   the same nonces from the same key. Neither lets a thief make a new
//!   proof: that needs the private key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest accepted proof: an RSA-4096 key in the header fits well within.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest accepted `jti`.
const MAX_JTI_LEN: usize = 256;
/// Members that only a private (or symmetric) JWK has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused.
///
/// The `&'static str` says why, for logs and `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// The proof is malformed, forged, stale, replayed, for another
    /// request or with a key this server does not take:
    /// `invalid_dpop_proof` (RFC 9449 §5, §7.1).
    #[error("invalid DPoP proof: {0}")]
    InvalidProof(&'static str),
    /// The proof lacks a current server nonce: `use_dpop_nonce` (RFC 9449
    /// §8, §9), answered with a fresh nonce in `DPoP-Nonce`.
    #[error("a current DPoP nonce is required")]
    UseNonce,
}

impl DpopError {
    /// The RFC 9449 error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidProof(_) => "invalid_dpop_proof",
            Self::UseNonce => "use_dpop_nonce",
        }
    }
}

/// What a valid proof proves: possession of the key with this thumbprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's public key,
    /// base64url: what `cnf.jkt` of a bound token holds.
    pub jkt: String,
}

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The HTTP method, as sent (`POST`).
    pub method: &'a str,
    /// The request's URL as the client addressed it, without query and
    /// fragment (`https://auth.example.com/oauth/token`): behind a proxy,
    /// built from the configured external URL, not the `Host` header.
    pub url: &'a str,
    /// The access token sent with the request, if any: the proof's `ath`
    /// must be its hash.
    pub access_token: Option<&'a str>,
}

/// Checks DPoP proofs. Share one per process: it holds the replay cache.
pub struct DpopChecker {
    algorithms: Vec<Algorithm>,
    max_age: i64,
    leeway: i64,
    nonces: Option<NonceKey>,
    /// [`Verifier`](crate::Verifier) requests must carry a nonce.
    require_nonces: bool,
    replay: Replay,
}

impl std::fmt::Debug for DpopChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopChecker")
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for DpopChecker {
    fn default() -> Self {
        Self::new()
    }
}

/// The proof's JOSE header.
#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// The proof's claims (RFC 9449 §4.2). Times are numbers: a string `iat`
/// does not deserialize.
#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

impl DpopChecker {
    /// A checker taking ES256, EdDSA (Ed25519), RS256 and PS256 proofs
    /// (RSA keys of 2048 bits or more) issued at most 60 s ago (5 s ahead
    /// for clock skew), without nonces.
    #[must_use]
    pub fn new() -> Self {
        let checker = Self {
            algorithms: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256],
            max_age: 60,
            leeway: 5,
            nonces: None,
            require_nonces: false,
            replay: Replay::new(65),
        };
        checker.with_window()
    }

    /// The algorithms accepted. Symmetric ones (`HS*`) are dropped: a
    /// proof must be signed with a private key only the client holds.
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.iter().copied().filter(|a| key_type(*a).is_some()).collect();
        self
    }

    /// How old a proof's `iat` may be (default 60 s). `jti`s are
    /// remembered for that long.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        self.with_window()
    }

    /// Issues and checks server nonces with this key.
    #[must_use]
    pub fn nonces(mut self, key: NonceKey) -> Self {
        self.nonces = Some(key);
        self
    }

    /// Makes a [`Verifier`](crate::Verifier) with this checker require a
    /// current nonce in every proof (with [`DpopChecker::nonces`]): a
    /// request without one is answered `use_dpop_nonce` with a fresh one.
    #[must_use]
    pub fn require_nonces(mut self) -> Self {
        self.require_nonces = true;
        self
    }

    /// Whether a [`Verifier`](crate::Verifier) requires nonces.
    #[must_use]
    pub fn requires_nonces(&self) -> bool {
        self.require_nonces && self.nonces.is_some()
    }

    fn with_window(mut self) -> Self {
        self.replay = Replay::new(self.max_age.saturating_add(self.leeway));
        self
    }

    /// The accepted algorithms' names, for `dpop_signing_alg_values_supported`
    /// and `WWW-Authenticate: DPoP algs="…"`.
    #[must_use]
    pub fn algorithm_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for alg in &self.algorithms {
            names.extend(alg_name(*alg));
            // RFC 9864 deprecates `EdDSA` for the fully-specified name.
            if *alg == Algorithm::EdDSA {
                names.push("Ed25519");
            }
        }
        names
    }

    /// A nonce for the current time, if nonces are on.
    #[must_use]
    pub fn nonce(&self) -> Option<String> {
        self.nonces.as_ref().map(|n| n.issue(unix_now()))
    }

    /// A nonce for the time `now` (Unix seconds), if nonces are on.
    #[must_use]
    pub fn nonce_at(&self, now: i64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.issue(now))
    }

    /// Whether nonces are on.
    #[must_use]
    pub fn issues_nonces(&self) -> bool {
        self.nonces.is_some()
    }

    /// Checks `proof` for `target`, now. With nonces on and
    /// `require_nonce`, the proof must carry a current server nonce; a
    /// nonce it carries must be current either way.
    ///
    /// # Errors
    /// See [`DpopError`].
    pub fn check(&self, proof: &str, target: &Target<'_>, require_nonce: bool) -> Result<Proof, DpopError> {
        self.check_at(proof, target, require_nonce, unix_now())
    }

    /// [`DpopChecker::check`] at the time `now` (Unix seconds).
    ///
    /// # Errors
    /// See [`DpopError`].
    pub fn check_at(
        &self,
        proof: &str,
        target: &Target<'_>,
        require_nonce: bool,
        now: i64,
    ) -> Result<Proof, DpopError> {
        let invalid = DpopError::InvalidProof;
        if proof.len() > MAX_PROOF_LEN {
            return Err(invalid("too long"));
        }
        let mut parts = proof.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("malformed"));
        };
        let header: ProofHeader = decode_part(header_b64)?;
        // RFC 7515 §4.1.11: no extension is understood.
        if header.crit.is_some() {
            return Err(invalid("crit extension not understood"));
        }
        // RFC 9449 §4.3 (4): `typ` is `dpop+jwt`.
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(invalid("typ is not dpop+jwt"));
        }
        // §4.3 (5): an asymmetric algorithm this server accepts. `none`,
        // `HS*` and unknown names are not in the list.
        // RFC 9864's fully-specified `Ed25519` is `EdDSA` with Ed25519.
        let alg = self
            .algorithms
            .iter()
            .copied()
            .find(|a| alg_name(*a) == Some(header.alg.as_str()) || (*a == Algorithm::EdDSA && header.alg == "Ed25519"))
            .ok_or(invalid("algorithm not allowed"))?;
        // §4.3 (7): a public key, of the algorithm's type.
        let jwk = header.jwk.as_ref().ok_or(invalid("no jwk"))?;
        let (key, jkt) = public_key(jwk, alg)?;
        // §4.3 (6): the signature, by that key.
        let message = &proof.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
        match jsonwebtoken::crypto::verify(signature_b64, message, &key, alg) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(invalid("bad signature")),
        }
        let claims: ProofClaims = decode_part(claims_b64)?;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(invalid("bad jti"));
        }
        // §4.3 (8), (9): this request's method and URL.
        if claims.htm != target.method {
            return Err(invalid("htm does not match the request"));
        }
        if !same_url(&claims.htu, target.url) {
            return Err(invalid("htu does not match the request"));
        }
        // §4.3 (11): recent. A proof from the future is allowed a little
        // clock skew.
        if claims.iat < now.saturating_sub(self.max_age) || claims.iat > now.saturating_add(self.leeway) {
            return Err(invalid("iat is outside the accepted window"));
        }
        // §4.3 (12): the access token's hash.
        if let Some(token) = target.access_token {
            let expected = B64.encode(digest::digest(&digest::SHA256, token.as_bytes()));
            if claims.ath.as_deref() != Some(expected.as_str()) {
                return Err(invalid("ath does not match the access token"));
            }
        }
        // §4.3 (10), §8: the server's nonce, when it asks for one; one the
        // proof carries must be current.
        // Without a nonce key there is no nonce to ask for.
        if let Some(keys) = &self.nonces {
            match claims.nonce.as_deref() {
                Some(nonce) if !keys.is_current(nonce, now) => return Err(DpopError::UseNonce),
                None if require_nonce => return Err(DpopError::UseNonce),
                _ => {}
            }
        }
        // §11.1: not seen before within the window. Last, so a refused
        // proof is not remembered.
        if !self.replay.first_use(replay_key(&jkt, &claims.jti), now) {
            return Err(invalid("jti was used before"));
        }
        Ok(Proof { jkt })
    }
}

/// The current Unix time in seconds.
fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// A base64url JSON part of the proof.
fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, DpopError> {
    let bytes = B64.decode(part).map_err(|_| DpopError::InvalidProof("malformed"))?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::InvalidProof("malformed"))
}

/// The JWA name of an algorithm proofs may use.
fn alg_name(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::ES256 => Some("ES256"),
        Algorithm::ES384 => Some("ES384"),
        Algorithm::EdDSA => Some("EdDSA"),
        Algorithm::RS256 => Some("RS256"),
        Algorithm::PS256 => Some("PS256"),
        _ => None,
    }
}

/// The key type (`kty`, `crv`) an algorithm signs with.
fn key_type(alg: Algorithm) -> Option<(&'static str, Option<&'static str>)> {
    match alg {
        Algorithm::ES256 => Some(("EC", Some("P-256"))),
        Algorithm::ES384 => Some(("EC", Some("P-384"))),
        Algorithm::EdDSA => Some(("OKP", Some("Ed25519"))),
        Algorithm::RS256 | Algorithm::PS256 => Some(("RSA", None)),
        _ => None,
    }
}

/// The verification key of a public JWK for `alg`, and its RFC 7638
/// thumbprint.
fn public_key(jwk: &Map<String, Value>, alg: Algorithm) -> Result<(DecodingKey, String), DpopError> {
    let invalid = DpopError::InvalidProof;
    // §4.3 (7): a private key in the header is refused outright.
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("jwk holds a private key"));
    }
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or(invalid("jwk is incomplete"))
    };
    // Each coordinate must decode, canonically, to its exact size: the
    // thumbprint is over the text as sent.
    let sized = |name: &str, len: std::ops::RangeInclusive<usize>| -> Result<&str, DpopError> {
        let text = member(name)?;
        match B64.decode(text) {
            Ok(bytes) if len.contains(&bytes.len()) => Ok(text),
            _ => Err(invalid("jwk has a bad coordinate")),
        }
    };
    let (kty, crv) = key_type(alg).ok_or(invalid("algorithm not allowed"))?;
    if member("kty")? != kty {
        return Err(invalid("jwk does not match the algorithm"));
    }
    if let Some(crv) = crv {
        if member("crv")? != crv {
            return Err(invalid("jwk does not match the algorithm"));
        }
    }
    let bad_key = |_| invalid("jwk is not a usable key");
    // The RFC 7638 members in lexicographic order, no whitespace. Every
    // value is base64url or a fixed name, so needs no escaping.
    let (key, canonical) = match (kty, crv) {
        ("EC", Some(crv)) => {
            let size = if crv == "P-256" { 32 } else { 48 };
            let (x, y) = (sized("x", size..=size)?, sized("y", size..=size)?);
            (
                DecodingKey::from_ec_components(x, y).map_err(bad_key)?,
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#),
            )
        }
        ("OKP", _) => {
            let x = sized("x", 32..=32)?;
            (
                DecodingKey::from_ed_components(x).map_err(bad_key)?,
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            )
        }
        _ => {
            // RSA of 2048 to 8192 bits.
            let (n, e) = (sized("n", 256..=1024)?, sized("e", 1..=8)?);
            (
                DecodingKey::from_rsa_components(n, e).map_err(bad_key)?,
                format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            )
        }
    };
    Ok((key, B64.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))))
}

/// Whether `htu` names `expected`, ignoring query and fragment (RFC 9449
/// §4.3 (9)) and comparing after RFC 3986 §6.2.2–6.2.3 normalization
/// (scheme and host case, default port, empty path).
fn same_url(htu: &str, expected: &str) -> bool {
    if htu == expected {
        return true;
    }
    match (normalize_url(htu), normalize_url(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `url` normalized, without query and fragment: what an `htu` is compared
/// as. `None` for anything but an absolute `http(s)` URL.
#[must_use]
pub fn normalize_url(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.into())
}

mod nonce;
mod replay;
#[cfg(test)]
mod tests;

pub use nonce::NonceKey;
use replay::{Replay, replay_key};
