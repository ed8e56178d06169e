//! Verification keys: parsed from a JWKS, cached, refetched within limits.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::VerifyError;

/// How long a JWKS without `Cache-Control: max-age` is kept.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest a JWKS is kept, whatever its `max-age` says.
const LONGEST_MAX_AGE: Duration = Duration::from_secs(86_400);

/// One verification key and the only algorithm it verifies.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) key: Arc<DecodingKey>,
}

/// Keys by `kid`.
pub(crate) type KeyMap = HashMap<String, Key>;

/// Reads a JWKS document, keeping only signature keys with a `kid` whose
/// algorithm is allowed and matches the key type. The algorithm comes from
/// the JWK's `alg`, or from its key type when absent (EC P-256 → ES256,
/// P-384 → ES384, OKP Ed25519 → EdDSA, RSA → RS256): never from a token.
/// Symmetric (`oct`) keys are never used. Keys that do not parse are
/// skipped, so one odd key does not take the others down.
pub(crate) fn parse_jwks(doc: &serde_json::Value, allowed: &[Algorithm]) -> KeyMap {
    let mut out = KeyMap::new();
    let Some(keys) = doc.get("keys").and_then(serde_json::Value::as_array) else {
        return out;
    };
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            continue;
        }
        let Some(alg) = algorithm(&jwk) else { continue };
        if !allowed.contains(&alg) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        out.insert(
            kid,
            Key {
                alg,
                key: Arc::new(key),
            },
        );
    }
    out
}

/// The algorithm a JWK verifies, if its `alg` and key type agree.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    use AlgorithmParameters as P;
    let inferred = match &jwk.algorithm {
        P::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        P::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        P::RSA(_) => Algorithm::RS256,
        _ => return None, // symmetric or unsupported
    };
    let Some(declared) = jwk.common.key_algorithm else {
        return Some(inferred);
    };
    let declared = match declared {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        _ => return None,
    };
    let rsa = |a| {
        matches!(
            a,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        )
    };
    let agrees = declared == inferred || (rsa(declared) && rsa(inferred));
    agrees.then_some(declared)
}

/// Where keys come from.
pub(crate) enum Source {
    /// A fixed set.
    Static(KeyMap),
    /// A JWKS URL, cached.
    Remote(Remote),
}

/// A fetched, cached JWKS.
pub(crate) struct Remote {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) allowed: Vec<Algorithm>,
    /// The least time between two fetches, whatever asks for them.
    pub(crate) cooldown: Duration,
    cache: RwLock<Cached>,
    /// Held while fetching; holds the time of the last attempt.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches made (for tests and metrics).
    pub(crate) fetches: std::sync::atomic::AtomicU64,
}

struct Cached {
    keys: KeyMap,
    fresh_until: Option<Instant>,
}

impl Remote {
    pub(crate) fn new(url: String, http: reqwest::Client, allowed: Vec<Algorithm>, cooldown: Duration) -> Self {
        Self {
            url,
            http,
            allowed,
            cooldown,
            cache: RwLock::new(Cached {
                keys: KeyMap::new(),
                fresh_until: None,
            }),
            fetching: tokio::sync::Mutex::new(None),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lookup(&self, kid: &str) -> (Option<Key>, bool, bool) {
        let c = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = c.fresh_until.is_some_and(|t| Instant::now() < t);
        (c.keys.get(kid).cloned(), fresh, c.fresh_until.is_some())
    }

    /// The key for `kid`: from the cache while it is fresh; otherwise (or
    /// for an unknown `kid`, e.g. after a key rotation) after a refetch, but
    /// at most one fetch per cooldown, so a flood of made-up `kid`s cannot
    /// flood the authorization server.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<Key>, VerifyError> {
        let (key, fresh, _) = self.lookup(kid);
        if key.is_some() && fresh {
            return Ok(key);
        }
        {
            let mut last = self.fetching.lock().await;
            // Another caller may have fetched while this one waited.
            let (key, fresh, _) = self.lookup(kid);
            if key.is_some() && fresh {
                return Ok(key);
            }
            if last.is_none_or(|t| t.elapsed() >= self.cooldown) {
                *last = Some(Instant::now());
                self.fetch().await;
            }
        }
        let (key, _, ever) = self.lookup(kid);
        match key {
            Some(k) => Ok(Some(k)),
            None if !ever => Err(VerifyError::KeysUnavailable),
            None => Ok(None),
        }
    }

    async fn fetch(&self) {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let res = match self.http.get(&self.url).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(status = %r.status(), url = %self.url, "JWKS fetch failed");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "JWKS fetch failed");
                return;
            }
        };
        let max_age = max_age(
            res.headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let doc: serde_json::Value = match res.json().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "JWKS is not JSON");
                return;
            }
        };
        let keys = parse_jwks(&doc, &self.allowed);
        let mut c = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        c.keys = keys;
        c.fresh_until = Some(Instant::now() + max_age);
    }
}

/// The freshness lifetime from `Cache-Control`: `max-age` (capped at a
/// day), zero for `no-store`/`no-cache`, five minutes when absent.
pub(crate) fn max_age(cache_control: Option<&str>) -> Duration {
    let Some(cc) = cache_control else {
        return DEFAULT_MAX_AGE;
    };
    let mut age = DEFAULT_MAX_AGE;
    for directive in cc.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            if let Ok(secs) = v.trim_matches('"').parse::<u64>() {
                age = Duration::from_secs(secs).min(LONGEST_MAX_AGE);
            }
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_sets_the_lifetime() {
        assert_eq!(max_age(None), DEFAULT_MAX_AGE);
        assert_eq!(max_age(Some("public, max-age=60")), Duration::from_secs(60));
        assert_eq!(max_age(Some("max-age=999999999")), LONGEST_MAX_AGE);
        assert_eq!(max_age(Some("no-store")), Duration::ZERO);
        assert_eq!(max_age(Some("public")), DEFAULT_MAX_AGE);
    }

    #[test]
    fn only_allowed_signature_keys_with_agreeing_types_are_kept() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "EC", "crv": "P-256", "kid": "lying", "alg": "RS256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "good",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "weird", "kid": "odd"}
        ]});
        let keys = parse_jwks(&doc, &[Algorithm::ES256, Algorithm::RS256]);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(keys["good"].alg, Algorithm::ES256);
        assert!(parse_jwks(&doc, &[Algorithm::RS256]).is_empty());
    }
}
