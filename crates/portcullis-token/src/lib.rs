//! The Portcullis token endpoint, as an axum `Router`.
//!
//! - `POST /oauth/token`: the password grant (RFC 6749 §4.3) and the
//!   refresh_token grant (§6) with rotation, reuse detection and a retry
//!   window; client authentication by `client_secret_basic`,
//!   `client_secret_post` or `none` (public clients).
//! - `POST /oauth/authorize-challenge`: the Authorization Challenge
//!   Endpoint (draft-ietf-oauth-first-party-apps) for first-party apps,
//!   with the authorization_code grant and PKCE at `/oauth/token`.
//! - `POST /oauth/revoke`: token revocation (RFC 7009).
//! - `POST /oauth/introspect`: token introspection (RFC 7662), for clients
//!   allowed to introspect.
//! - `GET /oauth/revocations`: the revocation feed resource servers poll.
//! - `GET /.well-known/jwks.json`: the public signing keys.
//! - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata.
//! - `POST /web/sign-in`, `/web/refresh`, `/web/sign-out` (and their CORS
//!   preflights): the same grants for browser clients, with the refresh
//!   token in an HttpOnly cookie ([`web`]).
//!
//! Access tokens are RFC 9068 JWTs (ES256 by default, EdDSA or RS256),
//! signed with keys kept in the store. Start with [`TokenService::start`],
//! serve [`TokenService::router`].

mod authorize_challenge;
pub mod client_auth;
pub mod config;
mod discovery;
mod dpop;
mod edge;
mod error;
pub mod form;
mod grants;
pub mod keys;
pub mod mfa;
pub mod openapi;
pub mod password;
pub mod pkce;
mod reauth;
mod refresh_token;
mod responses;
mod revocation;
pub mod secret;
mod successor;
pub mod throttle;
mod token;
pub mod web;

use std::sync::{Arc, RwLock};

use portcullis_store::{KeyState, Store, StoreError, UnixTime};
use portcullis_verify::dpop::{DpopChecker, NonceKey};

pub use config::TokenConfig;
pub use error::GrantError;
pub use grants::TokenResponse;
use keys::KeySet;
use password::Passwords;
pub use refresh_token::family_key;

/// The token service: configuration, store, keys and the hashing pool.
pub struct TokenService {
    store: Arc<dyn Store>,
    config: TokenConfig,
    passwords: Passwords,
    keys: RwLock<Arc<Loaded>>,
    /// DPoP proofs (RFC 9449): one replay cache for every endpoint of this
    /// instance, nonces keyed by the secret all instances share.
    dpop: Arc<DpopChecker>,
}

/// The key set, and a verifier of this server's own access tokens built
/// from its published keys (for revocation and introspection).
pub(crate) struct Loaded {
    pub(crate) set: KeySet,
    /// The published keys, as `/.well-known/jwks.json` answers them.
    pub(crate) jwks: discovery::Jwks,
    pub(crate) own: portcullis_verify::Verifier,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A signing key could not be created or read.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The password policy is invalid.
    #[error(transparent)]
    Policy(#[from] password::InvalidPolicy),
}

impl TokenService {
    /// Loads the signing keys (creating the first one on a new database)
    /// and sets up the hashing pool.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn start(store: Arc<dyn Store>, config: TokenConfig) -> Result<Arc<Self>, StartError> {
        if config.key_publish_delay < config.jwks_max_age + std::time::Duration::from_secs(30) {
            tracing::warn!(
                "the key publication delay is shorter than the JWKS max-age plus the 30 s key reload: \
                 resource servers may see tokens signed by a key they have not fetched yet"
            );
        }
        if config.revocation_feed_public {
            tracing::warn!(
                "the revocation feed is public (revocation_feed_public = true): anyone can list the user and \
                 client ids revoked and when; give resource servers a credential instead"
            );
        }
        let passwords = Passwords::new(&config.password)?;
        let dpop = Arc::new(dpop_checker(store.as_ref(), &config).await?);
        let keys = load_keys(store.as_ref(), &config, &dpop).await?;
        Ok(Arc::new(Self {
            store,
            config,
            passwords,
            keys: RwLock::new(Arc::new(keys)),
            dpop,
        }))
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .merge(token::router(self))
            .merge(authorize_challenge::router(self))
            .merge(revocation::router())
            .merge(discovery::router())
            .merge(web::router(self))
            .with_state(self.clone())
    }

    /// Reloads the signing keys from the store (after a rotation).
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn reload_keys(&self) -> Result<(), StartError> {
        let keys = load_keys(self.store.as_ref(), &self.config, &self.dpop).await?;
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(())
    }

    /// Key housekeeping, run periodically by the server: creates a key when
    /// the rotation period has passed; retires keys superseded long enough
    /// that no token they signed can still be live; deletes retired keys
    /// that have left the JWKS. Then reloads the keys.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn maintain_keys(&self) -> Result<(), StartError> {
        let maintained = self.maintain_stored_keys().await;
        // Reload whatever happened, so a failure above never leaves this
        // instance on a stale key set.
        let reloaded = self.reload_keys().await;
        maintained.and(reloaded)
    }

    async fn maintain_stored_keys(&self) -> Result<(), StartError> {
        // Several instances do this concurrently: a key another instance
        // retired or deleted first counts as done.
        let done = |r: Result<(), StoreError>| match r {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(StartError::Store(e)),
        };
        let now = UnixTime::now();
        let cfg = &self.config;
        let keep = config::secs(cfg.access_token_ttl).saturating_add(60);
        let delay = config::secs(cfg.key_publish_delay);
        let stored = self.store.signing_keys().await?;
        if let Some(period) = cfg.key_rotation_period {
            let newest = stored
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| k.created_at)
                .max();
            if newest.is_some_and(|t| t.plus(config::secs(period)) <= now) {
                let kek = cfg.key_encryption_key.as_ref();
                let new = keys::rotate(self.store.as_ref(), cfg.signing_alg, kek, ("schedule", None), now).await?;
                tracing::info!(kid = %new.kid, "rotated the signing key (rotation period)");
            }
        }
        if let Some(signer) = keys::signing_key(&stored, now, delay) {
            // Tokens of older keys expire `keep` after the signer took over.
            if signer.created_at.plus(delay).plus(keep) <= now {
                for old in stored
                    .iter()
                    .filter(|k| k.state == KeyState::Active && k.created_at < signer.created_at)
                {
                    done(self.store.retire_signing_key(&old.kid, now).await)?;
                    tracing::info!(kid = %old.kid, "retired a superseded signing key");
                }
            }
        }
        for gone in stored
            .iter()
            .filter(|k| k.retired_at.is_some_and(|t| t.plus(keep.saturating_mul(2)) <= now))
        {
            done(self.store.delete_signing_key(&gone.kid).await)?;
        }
        Ok(())
    }

    /// Verifies one of this server's own bearer access tokens and checks
    /// in the database that it is still live (user and client active,
    /// sign-in not revoked, token not revoked): what the admin API and
    /// account endpoints accept, with effect at once on every instance. A
    /// DPoP-bound token is refused: see
    /// [`TokenService::verify_live_dpop_token`].
    ///
    /// # Errors
    /// [`portcullis_verify::VerifyError::InvalidToken`] for an invalid or
    /// dead token, [`portcullis_verify::VerifyError::KeysUnavailable`] when
    /// the database cannot be reached.
    pub async fn verify_live_access_token(
        &self,
        token: &str,
    ) -> Result<portcullis_verify::AccessTokenClaims, portcullis_verify::VerifyError> {
        let claims = self.keys().own.verify(token).await?;
        self.live(claims).await
    }

    /// As [`TokenService::verify_live_access_token`], for a DPoP-bound
    /// token sent with the `DPoP` scheme and its `proof`, for a request
    /// `method` to `path` of this server (RFC 9449 §7).
    ///
    /// # Errors
    /// As [`TokenService::verify_live_access_token`], and
    /// [`portcullis_verify::VerifyError::InvalidDpopProof`],
    /// [`portcullis_verify::VerifyError::UseDpopNonce`] for the proof.
    pub async fn verify_live_dpop_token(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        path: &str,
    ) -> Result<portcullis_verify::AccessTokenClaims, portcullis_verify::VerifyError> {
        let url = format!("{}{path}", self.config.issuer);
        let claims = self.keys().own.verify_dpop(token, proof, method, &url).await?;
        self.live(claims).await
    }

    async fn live(
        &self,
        claims: portcullis_verify::AccessTokenClaims,
    ) -> Result<portcullis_verify::AccessTokenClaims, portcullis_verify::VerifyError> {
        match revocation::access_token_live(self, &claims).await {
            Ok(true) => Ok(claims),
            Ok(false) => Err(portcullis_verify::VerifyError::InvalidToken("revoked")),
            Err(_) => Err(portcullis_verify::VerifyError::KeysUnavailable),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Password-hashing places in use (hashing or waiting), for metrics.
    #[must_use]
    pub fn hashing_in_use(&self) -> usize {
        self.passwords().in_use()
    }

    /// The hashing pool (shared by sign-in, sign-up and password
    /// changes, with its per-address places).
    #[must_use]
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// The DPoP proof checker (its algorithms, replay cache and nonces).
    #[must_use]
    pub fn dpop(&self) -> &DpopChecker {
        &self.dpop
    }

    pub(crate) fn keys(&self) -> Arc<Loaded> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The name of the DPoP nonce key among the server secrets.
const DPOP_NONCE_SECRET: &str = "dpop_nonce";
/// How often the DPoP nonce changes; one is accepted for one to two steps.
const DPOP_NONCE_STEP: std::time::Duration = std::time::Duration::from_secs(60);

/// The DPoP checker of the configuration, with nonces keyed by the secret
/// every instance shares (made by the first instance to start).
async fn dpop_checker(store: &dyn Store, config: &TokenConfig) -> Result<DpopChecker, StartError> {
    let mut candidate = [0u8; 32];
    getrandom::fill(&mut candidate).map_err(|_| keys::KeyError::internal("randomness"))?;
    let secret = store
        .server_secret(DPOP_NONCE_SECRET, &candidate, UnixTime::now())
        .await?;
    Ok(DpopChecker::new()
        .algorithms(&config.dpop_algorithms)
        .max_age(config.dpop_max_age)
        .nonces(NonceKey::new(&secret, DPOP_NONCE_STEP)))
}

/// The key set from the store; on a database without an active key, one is
/// created first.
async fn load_keys(store: &dyn Store, config: &TokenConfig, dpop: &Arc<DpopChecker>) -> Result<Loaded, StartError> {
    let now = UnixTime::now();
    // Retired keys stay published while tokens they signed may be live.
    let keep = config::secs(config.access_token_ttl).saturating_add(60);
    let kek = config.key_encryption_key.as_ref();
    let mut stored = store.signing_keys().await?;
    if !stored.iter().any(|k| k.state == KeyState::Active) {
        let new = keys::kek::seal_new(keys::generate(config.signing_alg, None)?, kek)?;
        store.insert_signing_key(&new, now).await?;
        tracing::info!(kid = %new.kid, alg = %new.alg, "created a signing key");
        stored = store.signing_keys().await?;
    }
    if kek.is_some() && stored.iter().any(|k| !keys::kek::is_sealed(&k.private_key)) {
        tracing::warn!("some signing keys are stored unencrypted: run `portcullis keys encrypt`");
    }
    let set = KeySet::from_stored(&stored, kek, now, keep, config::secs(config.key_publish_delay))?;
    let jwks: serde_json::Value = serde_json::from_str(&set.jwks).map_err(|_| keys::KeyError::internal("JWKS"))?;
    let published = serde_json::from_value(jwks.clone()).map_err(|_| keys::KeyError::internal("JWKS"))?;
    let mut own = portcullis_verify::Verifier::builder(&config.issuer)
        .jwks(jwks)
        // A little leeway: instances' clocks differ slightly.
        .leeway(std::time::Duration::from_secs(10))
        // No token of ours lives longer than the configured lifetime.
        .max_lifetime(config.access_token_ttl)
        .audience(&config.audience)
        // The account and admin APIs take DPoP-bound tokens, their proofs
        // checked against the issuer's URLs, sharing the token endpoint's
        // replay cache.
        .dpop(dpop.clone())
        .external_url(&config.issuer);
    for r in &config.resources {
        own = own.audience(r);
    }
    let own = own.build().map_err(|_| keys::KeyError::internal("verifier"))?;
    Ok(Loaded {
        set,
        jwks: published,
        own,
    })
}
