//! The verifier and its builder.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;

use crate::bearer::MAX_TOKEN_LEN;
use crate::credential::Credential;
use crate::dpop::{DpopChecker, Target};
use crate::feed::{Feed, Poller};
use crate::jose::{Header, decode_part};
use crate::jwks::{Key, Remote, Source, parse_jwks};
use crate::{AccessTokenClaims, VerifyError};

/// Longest accepted `kid`: it is only a lookup key.
const MAX_KID_LEN: usize = 256;

/// Checks access tokens. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    max_lifetime: Option<Duration>,
    realm: String,
    source: Source,
    feed: Option<(Arc<Feed>, Poller)>,
    dpop: Option<Arc<DpopChecker>>,
    external_url: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("algorithms", &self.inner.algorithms)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Verifier`]; see [`Verifier::builder`].
#[derive(Debug)]
pub struct VerifierBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    max_lifetime: Option<Duration>,
    realm: String,
    jwks_url: Option<String>,
    jwks: Option<serde_json::Value>,
    cooldown: Duration,
    feed: Option<(String, Duration)>,
    pub(crate) feed_credential: Credential,
    http: Option<reqwest::Client>,
    dpop: Option<Arc<DpopChecker>>,
    external_url: Option<String>,
}

/// The configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// No audience: every token would be accepted for any API.
    #[error("at least one audience is required")]
    NoAudience,
    /// No key source.
    #[error("a JWKS URL or static keys are required")]
    NoKeys,
    /// An algorithm that must never be allowed (`HS*`: a public key would
    /// become an HMAC secret).
    #[error("only asymmetric algorithms may be allowed")]
    SymmetricAlgorithm,
    /// DPoP without the external URL its `htu`s are built from.
    #[error("DPoP needs the external URL (external_url)")]
    NoExternalUrl,
    /// The revocation feed needs a running tokio runtime to poll from.
    #[error("the revocation feed needs a tokio runtime")]
    NoRuntime,
}

impl Verifier {
    /// Starts a configuration for tokens issued by `issuer` (exactly as in
    /// their `iss`).
    #[must_use]
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
            leeway: Duration::from_secs(60),
            max_lifetime: None,
            realm: "api".into(),
            jwks_url: None,
            jwks: None,
            cooldown: Duration::from_secs(30),
            feed: None,
            feed_credential: Credential::None,
            http: None,
            dpop: None,
            external_url: None,
        }
    }

    /// The `realm` of `WWW-Authenticate` challenges.
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// Checks a bearer token (RFC 9068 §4, RFC 8725) and returns its
    /// claims. A DPoP-bound token (with `cnf`) is refused: without its
    /// proof it is only a stolen copy (RFC 9449 §7.2); see
    /// [`Verifier::verify_dpop`].
    ///
    /// # Errors
    /// [`VerifyError::InvalidToken`] for anything wrong with the token,
    /// [`VerifyError::KeysUnavailable`] when the JWKS was never fetched.
    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, VerifyError> {
        let claims = self.verify_token(token).await?;
        if claims.cnf.is_some() {
            return Err(VerifyError::InvalidToken("a DPoP-bound token sent as a bearer token"));
        }
        Ok(claims)
    }

    /// Checks a DPoP-bound token sent with the `DPoP` scheme and its proof
    /// (RFC 9449 §7): the token as [`Verifier::verify`] does; the proof for
    /// this request (`method`, and `url` as the client addressed it,
    /// without query), with `ath` the token's hash; and that the proof's
    /// key is the one the token is bound to (`cnf.jkt`). With nonces
    /// required ([`DpopChecker::require_nonces`]), the proof must carry a
    /// current one.
    ///
    /// # Errors
    /// As [`Verifier::verify`]; [`VerifyError::InvalidToken`] for a token
    /// that is not bound; [`VerifyError::InvalidDpopProof`],
    /// [`VerifyError::UseDpopNonce`] for the proof;
    /// [`VerifyError::InvalidRequest`] when this verifier does not take
    /// DPoP.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<AccessTokenClaims, VerifyError> {
        let checker = self
            .inner
            .dpop
            .as_ref()
            .ok_or(VerifyError::InvalidRequest("DPoP is not accepted"))?;
        let claims = self.verify_token(token).await?;
        let bound = claims
            .cnf
            .as_ref()
            .ok_or(VerifyError::InvalidToken("a bearer token sent with the DPoP scheme"))?;
        let target = Target {
            method,
            url,
            access_token: Some(token),
        };
        let proof = checker.check(proof, &target, checker.requires_nonces())?;
        if proof.jkt != bound.jkt {
            return Err(VerifyError::InvalidDpopProof("the proof's key is not the token's"));
        }
        Ok(claims)
    }

    /// Checks a token as [`Verifier::verify`] does, but takes a DPoP-bound
    /// token without its proof: for an endpoint where the token is what
    /// the request is about (introspection, revocation), not the caller's
    /// credential. Never use it to let a request in.
    ///
    /// # Errors
    /// As [`Verifier::verify`].
    pub async fn inspect(&self, token: &str) -> Result<AccessTokenClaims, VerifyError> {
        self.verify_token(token).await
    }

    /// The DPoP checker, when DPoP is accepted.
    #[must_use]
    pub fn dpop(&self) -> Option<&DpopChecker> {
        self.inner.dpop.as_deref()
    }

    /// The external base URL requests are addressed to (for DPoP `htu`).
    #[must_use]
    pub fn external_url(&self) -> Option<&str> {
        self.inner.external_url.as_deref()
    }

    async fn verify_token(&self, token: &str) -> Result<AccessTokenClaims, VerifyError> {
        let i = &self.inner;
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::InvalidToken("too long"));
        }
        // A JWS in compact serialization: exactly three base64url parts
        // (RFC 7515 §7.1). Each part is decoded once.
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::InvalidToken("malformed"));
        };
        // The header is read only for `typ`, `alg` and `kid`; key material
        // it may carry (`jwk`, `jku`, `x5u`, `x5c`) is never used.
        let header: Header = decode_part(header_b64)?;
        // RFC 7515 §4.1.11: a recipient must refuse a token whose `crit`
        // names an extension it does not understand; this verifier
        // understands none (and an empty `crit` is itself invalid).
        if header.crit.is_some() {
            return Err(VerifyError::InvalidToken("crit extension not understood"));
        }
        let typ_ok = header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
        if !typ_ok {
            return Err(VerifyError::InvalidToken("typ is not at+jwt"));
        }
        if !i.algorithms.contains(&header.alg) {
            return Err(VerifyError::InvalidToken("algorithm not allowed"));
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::InvalidToken("no kid"))?;
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(VerifyError::InvalidToken("bad kid"));
        }
        let key = self.key(kid).await?.ok_or(VerifyError::InvalidToken("unknown kid"))?;
        // The key's own algorithm decides; the token's `alg` must agree.
        if key.alg != header.alg {
            return Err(VerifyError::InvalidToken("algorithm does not match the key"));
        }
        // The signature over `header.claims`, with the key's algorithm.
        let message = &token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
        match jsonwebtoken::crypto::verify(signature_b64, message, &key.key, key.alg) {
            Ok(true) => {}
            Ok(false) => return Err(VerifyError::InvalidToken("bad signature")),
            Err(_) => return Err(VerifyError::InvalidToken("malformed")),
        }
        // Typed claims: a missing required claim, or a time given as a
        // string (jsonwebtoken before 10.3 skipped such an `exp`), fails
        // here.
        let claims: AccessTokenClaims = decode_part(claims_b64)?;
        if claims.iss != i.issuer {
            return Err(VerifyError::InvalidToken("wrong issuer"));
        }
        if !i.audiences.iter().any(|a| claims.aud.contains(a)) {
            return Err(VerifyError::InvalidToken("wrong audience"));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let leeway = i64::try_from(i.leeway.as_secs()).unwrap_or(i64::MAX);
        // RFC 7519 §4.1.4: not accepted on or after `exp` (plus leeway).
        if claims.exp.saturating_add(leeway) <= now {
            return Err(VerifyError::InvalidToken("expired"));
        }
        // §4.1.5: not accepted before `nbf` (minus leeway).
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(VerifyError::InvalidToken("not yet valid"));
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(VerifyError::InvalidToken("issued in the future"));
        }
        // A token that claims to live longer than the issuer's lifetime was
        // not minted by the issuer's rules (a stolen signing key, say).
        let too_long = |max: Duration| {
            let max = i64::try_from(max.as_secs()).unwrap_or(i64::MAX).saturating_add(leeway);
            claims.exp.saturating_sub(claims.iat) > max
        };
        if i.max_lifetime.is_some_and(too_long) {
            return Err(VerifyError::InvalidToken("lifetime too long"));
        }
        if claims.sub.is_empty() || claims.client_id.is_empty() || claims.jti.is_empty() {
            return Err(VerifyError::InvalidToken("empty required claim"));
        }
        if let Some((feed, _)) = &i.feed {
            if feed.revokes(&claims) {
                return Err(VerifyError::InvalidToken("revoked"));
            }
        }
        Ok(claims)
    }

    /// Checks a token and that it grants every scope in `required`.
    ///
    /// # Errors
    /// As [`Verifier::verify`], and [`VerifyError::InsufficientScope`].
    pub async fn verify_with_scopes(&self, token: &str, required: &[&str]) -> Result<AccessTokenClaims, VerifyError> {
        let claims = self.verify(token).await?;
        require_scopes(&claims, required)?;
        Ok(claims)
    }

    /// Whether the revocation feed (if configured) has been read once.
    #[must_use]
    pub fn feed_synced(&self) -> bool {
        self.inner.feed.as_ref().is_none_or(|(f, _)| f.synced())
    }

    /// How many times the JWKS was fetched (0 for static keys).
    #[must_use]
    pub fn jwks_fetches(&self) -> u64 {
        match &self.inner.source {
            Source::Static(_) => 0,
            Source::Remote(r) => r.fetches.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    async fn key(&self, kid: &str) -> Result<Option<Key>, VerifyError> {
        match &self.inner.source {
            Source::Static(keys) => Ok(keys.get(kid).cloned()),
            Source::Remote(r) => r.key(kid).await,
        }
    }
}

/// Fails with [`VerifyError::InsufficientScope`] unless `claims` grant
/// every scope in `required`.
///
/// # Errors
/// [`VerifyError::InsufficientScope`] naming all of `required`.
pub fn require_scopes(claims: &AccessTokenClaims, required: &[&str]) -> Result<(), VerifyError> {
    if required.iter().all(|s| claims.has_scope(s)) {
        Ok(())
    } else {
        Err(VerifyError::InsufficientScope {
            required: required.join(" "),
        })
    }
}

/// Fails with [`VerifyError::InsufficientUserAuthentication`] unless the
/// user signed in with a second factor (`acr` `"2"`, `amr` holding `mfa`):
/// for a sensitive call (RFC 9470 step-up).
///
/// # Errors
/// [`VerifyError::InsufficientUserAuthentication`].
pub fn require_multi_factor(claims: &AccessTokenClaims) -> Result<(), VerifyError> {
    if claims.is_multi_factor() {
        Ok(())
    } else {
        Err(VerifyError::InsufficientUserAuthentication)
    }
}

impl VerifierBuilder {
    /// Accepts tokens whose `aud` contains `audience` (repeat for several;
    /// one must match).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Fetches keys from this JWKS URL (e.g.
    /// `https://auth.example/.well-known/jwks.json`), caching them as its
    /// `Cache-Control` says.
    #[must_use]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Uses this JWKS document instead of fetching one.
    #[must_use]
    pub fn jwks(mut self, jwks: serde_json::Value) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// The algorithms accepted (default ES256, EdDSA, RS256).
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 60 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Refuses tokens whose `exp - iat` exceeds `max` (plus the leeway):
    /// set it to the issuer's access-token lifetime (default: no limit).
    #[must_use]
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// The least time between two JWKS fetches caused by unknown `kid`s or
    /// an expired cache (default 30 s).
    #[must_use]
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Polls the server's revocation feed (e.g.
    /// `https://auth.example/oauth/revocations`) every `every` (5 s is a
    /// good default) and rejects tokens revoked since they were issued.
    #[must_use]
    pub fn revocation_feed(mut self, url: impl Into<String>, every: Duration) -> Self {
        self.feed = Some((url.into(), every));
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges (default `api`).
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Accepts DPoP-bound tokens (RFC 9449) with the `DPoP` scheme, their
    /// proofs checked by `checker` (its algorithms, `iat` window, replay
    /// cache and nonces). Bearer tokens are still accepted; a bound token
    /// sent as a bearer token never is. The axum layer also needs
    /// [`VerifierBuilder::external_url`].
    #[must_use]
    pub fn dpop(mut self, checker: impl Into<Arc<DpopChecker>>) -> Self {
        self.dpop = Some(checker.into());
        self
    }

    /// The base URL clients address this resource server by
    /// (`https://api.example.com`, or with a path prefix): the axum layer
    /// builds each request's DPoP `htu` from it and the request's path, so
    /// it works behind a proxy.
    #[must_use]
    pub fn external_url(mut self, url: impl Into<String>) -> Self {
        self.external_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The HTTP client for the JWKS and the feed (default: a client with a
    /// 10 s timeout).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the verifier. With a revocation feed, call it inside a tokio
    /// runtime: the poller starts at once.
    ///
    /// # Errors
    /// See [`BuildError`].
    pub fn build(self) -> Result<Verifier, BuildError> {
        if self.audiences.is_empty() {
            return Err(BuildError::NoAudience);
        }
        let symmetric = |a: &Algorithm| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
        if self.algorithms.iter().any(symmetric) {
            return Err(BuildError::SymmetricAlgorithm);
        }
        if self.dpop.is_some() && self.external_url.is_none() {
            return Err(BuildError::NoExternalUrl);
        }
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|_| BuildError::NoKeys)?,
        };
        let source = match (self.jwks, self.jwks_url) {
            (Some(doc), _) => Source::Static(parse_jwks(&doc, &self.algorithms)),
            (None, Some(url)) => Source::Remote(Remote::new(url, http.clone(), self.algorithms.clone(), self.cooldown)),
            (None, None) => return Err(BuildError::NoKeys),
        };
        let feed = match self.feed {
            None => None,
            Some((url, every)) => {
                tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
                let feed = Arc::new(Feed::default());
                let poller = Poller::spawn(feed.clone(), http, url, self.feed_credential, every);
                Some((feed, poller))
            }
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences: self.audiences,
                algorithms: self.algorithms,
                leeway: self.leeway,
                max_lifetime: self.max_lifetime,
                realm: self.realm,
                source,
                feed,
                dpop: self.dpop,
                external_url: self.external_url,
            }),
        })
    }
}
