//! Settings of the token endpoint.

use std::time::Duration;

use crate::keys::Alg;
use crate::password::PasswordPolicy;
use crate::throttle::ThrottlePolicy;

/// How the token endpoint behaves. [`TokenConfig::new`] gives the defaults
/// for an issuer; every field can be changed afterwards.
#[derive(Clone)]
pub struct TokenConfig {
    /// The `iss` of every token and the RFC 8414 `issuer` (no trailing `/`).
    pub issuer: String,
    /// The `aud` of access tokens that name no `resource`.
    pub audience: String,
    /// Further audiences a client may ask for with an RFC 8707 `resource`
    /// parameter.
    pub resources: Vec<String>,
    /// Scopes published in the metadata (`scopes_supported`); informative.
    pub scopes_supported: Vec<String>,
    /// Access-token lifetime (default 15 min).
    pub access_token_ttl: Duration,
    /// Refresh-token idle lifetime: unused this long, it expires (default 30 days).
    pub refresh_idle_ttl: Duration,
    /// Refresh-family absolute lifetime, however often used (default 90 days).
    pub refresh_absolute_ttl: Duration,
    /// How long after a refresh a retry with the same token gets the same
    /// new token instead of counting as reuse (default 10 s; zero = strict).
    pub refresh_retry_window: Duration,
    /// In strict mode (no retry window), how soon after a rotation another
    /// request with the same token counts as a lost race, refused without
    /// ending the family, rather than reuse (default 2 s). Zero: every
    /// replay is reuse.
    pub refresh_race_grace: Duration,
    /// Record every refresh in the audit log (default off). Sign-ins,
    /// revocations, reuse detections and admin actions are always
    /// recorded; a routine refresh is not, by default: it would add a row
    /// per refresh (the most frequent request) to a log kept for
    /// investigations, and a family's `last_used_at` already says when each
    /// device was last seen.
    pub audit_refreshes: bool,
    /// The algorithm of keys created by this server (default ES256).
    pub signing_alg: Alg,
    /// Password hashing.
    pub password: PasswordPolicy,
    /// Failed sign-in throttling.
    pub throttle: ThrottlePolicy,
    /// How long the token endpoint waits before answering 429 or 503
    /// (default 200 ms), so that a flood retrying at once is slowed to one
    /// attempt per delay per connection.
    pub refusal_delay: Duration,
    /// How long the token endpoint waits for a whole request body (default
    /// 10 s; then 408): a deadline, so a body trickled in a byte at a time
    /// cannot hold the connection.
    pub body_timeout: Duration,
    /// Browser clients' refresh cookie without `Secure` (and so without
    /// the `__Host-` prefix), for development over plain HTTP on loopback
    /// in browsers that do not treat loopback as secure. The server refuses
    /// it on other addresses.
    pub web_insecure_cookies: bool,
    /// Largest accepted request body at the token endpoint.
    pub max_body_bytes: usize,
    /// `max-age` of the JWKS answer.
    pub jwks_max_age: Duration,
    /// How long a new signing key is published before it signs, so that
    /// every cached JWKS holds it first (default 390 s: the JWKS `max-age`,
    /// plus the 30 s in which every instance reloads keys, plus a minute).
    pub key_publish_delay: Duration,
    /// Create a new signing key when the newest is this old (default:
    /// never; rotate with `portcullis keys rotate`).
    pub key_rotation_period: Option<Duration>,
    /// The key-encryption key: when set, new signing keys are stored
    /// encrypted under it, and encrypted keys are decrypted with it
    /// (default none: keys are stored as plain PKCS#8).
    pub key_encryption_key: Option<crate::keys::Kek>,
    /// A credential that reads the revocation feed: `Authorization:
    /// Bearer <this>`. Access tokens with the scope `portcullis:feed` of a
    /// client allowed to introspect read it too.
    pub revocation_feed_secret: Option<String>,
    /// Serve the revocation feed to anyone, with no credential (default
    /// off: the feed lists user and client ids and when each was cut off).
    pub revocation_feed_public: bool,
    /// The algorithms DPoP proofs may be signed with (RFC 9449 §5.1
    /// `dpop_signing_alg_values_supported`).
    pub dpop_algorithms: Vec<portcullis_verify::Algorithm>,
    /// How old a DPoP proof's `iat` may be.
    pub dpop_max_age: Duration,
    /// How long an `auth_session` of the Authorization Challenge Endpoint
    /// waits for the second factor (default 5 minutes).
    pub auth_session_ttl: Duration,
    /// How long an authorization code may wait to be exchanged (default
    /// 60 seconds).
    pub authorization_code_ttl: Duration,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_retry_window", &self.refresh_retry_window)
            .field("refresh_race_grace", &self.refresh_race_grace)
            .field("audit_refreshes", &self.audit_refreshes)
            .field("signing_alg", &self.signing_alg)
            .field(
                "key_encryption_key",
                &self.key_encryption_key.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "revocation_feed_secret",
                &self.revocation_feed_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("revocation_feed_public", &self.revocation_feed_public)
            .field("dpop_algorithms", &self.dpop_algorithms)
            .field("dpop_max_age", &self.dpop_max_age)
            .field("auth_session_ttl", &self.auth_session_ttl)
            .field("authorization_code_ttl", &self.authorization_code_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenConfig {
    /// The defaults for `issuer`; the default audience is the issuer.
    #[must_use]
    pub fn new(issuer: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self {
            audience: issuer.clone(),
            issuer,
            resources: Vec::new(),
            scopes_supported: Vec::new(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_idle_ttl: Duration::from_secs(30 * 86_400),
            refresh_absolute_ttl: Duration::from_secs(90 * 86_400),
            refresh_retry_window: Duration::from_secs(10),
            refresh_race_grace: Duration::from_secs(2),
            audit_refreshes: false,
            signing_alg: Alg::Es256,
            password: PasswordPolicy::default(),
            throttle: ThrottlePolicy::default(),
            refusal_delay: Duration::from_millis(200),
            body_timeout: Duration::from_secs(10),
            web_insecure_cookies: false,
            max_body_bytes: 16 * 1024,
            jwks_max_age: Duration::from_secs(300),
            key_publish_delay: Duration::from_secs(390),
            key_rotation_period: None,
            key_encryption_key: None,
            revocation_feed_secret: None,
            revocation_feed_public: false,
            dpop_algorithms: vec![
                portcullis_verify::Algorithm::ES256,
                portcullis_verify::Algorithm::EdDSA,
                portcullis_verify::Algorithm::RS256,
                portcullis_verify::Algorithm::PS256,
            ],
            dpop_max_age: Duration::from_secs(60),
            auth_session_ttl: Duration::from_secs(5 * 60),
            authorization_code_ttl: Duration::from_secs(60),
        }
    }
}

/// Whole seconds of a duration, as the store counts time.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
