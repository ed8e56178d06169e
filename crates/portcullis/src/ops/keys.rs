//! Signing keys: list, rotate, encrypt at rest.

use portcullis_domain::AuditAction;
use portcullis_store::{KeyState, SigningKey, Store, UnixTime};
use portcullis_token::TokenService;
use portcullis_token::keys::{Alg, Kek};

use super::{Actor, OpsError};

/// Where a key is in its life, as the servers use it (the rule of
/// `portcullis_token::keys::KeySet::signer` and of the key housekeeping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In the JWKS, not signing yet: it signs from this time (its creation
    /// plus the publication delay), when resource servers have seen it.
    Published {
        /// When it starts signing.
        signs_from: UnixTime,
    },
    /// The key that signs new tokens now.
    Signing,
    /// Superseded by the signing key but still in the JWKS, so that tokens
    /// it signed keep verifying; retired at about this time (once they have
    /// all expired).
    Retiring {
        /// When the housekeeping retires it.
        until: UnixTime,
    },
    /// Retired: not signing; published a little longer, then deleted.
    Retired,
}

impl Phase {
    /// The phase's name: `published`, `signing`, `retiring` or `retired`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Published { .. } => "published",
            Self::Signing => "signing",
            Self::Retiring { .. } => "retiring",
            Self::Retired => "retired",
        }
    }
}

/// The phase of each of `keys` at `now`, with the servers' publication
/// delay and access-token lifetime (in seconds).
#[must_use]
pub fn phases(keys: &[SigningKey], now: UnixTime, publish_delay: i64, access_token_ttl: i64) -> Vec<Phase> {
    let signer = portcullis_token::keys::signing_key(keys, now, publish_delay);
    // As the housekeeping: tokens of older keys expire this long after the
    // signer took over.
    let keep = access_token_ttl.saturating_add(60);
    keys.iter()
        .map(|k| match (k.state, signer) {
            (KeyState::Retired, _) => Phase::Retired,
            (_, Some(s)) if s.kid == k.kid => Phase::Signing,
            (_, Some(s)) if k.created_at < s.created_at => Phase::Retiring {
                until: s.created_at.plus(publish_delay).plus(keep),
            },
            _ => Phase::Published {
                signs_from: k.created_at.plus(publish_delay),
            },
        })
        .collect()
}

/// Every stored key.
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store) -> Result<Vec<SigningKey>, OpsError> {
    Ok(store.signing_keys().await?)
}

/// Creates a signing key of `alg`, encrypted under `kek` if given, with
/// the one rotation
/// ([`portcullis_token::keys::rotate`], which also writes the audit row):
/// published at once, signing once the publication delay has passed.
/// When `tokens` is this server's token service, it reloads its keys so
/// that this instance publishes the key now; other instances pick it up
/// within their key reload.
///
/// # Errors
/// [`OpsError::Key`] when the key cannot be created or stored.
pub async fn rotate(
    store: &dyn Store,
    actor: &Actor,
    alg: Alg,
    kek: Option<&Kek>,
    tokens: Option<&TokenService>,
) -> Result<SigningKey, OpsError> {
    let who = (actor.name(), actor.client_id());
    let key = portcullis_token::keys::rotate(store, alg, kek, who, UnixTime::now()).await?;
    if let Some(tokens) = tokens {
        if let Err(e) = tokens.reload_keys().await {
            tracing::warn!(error = %e, "could not reload keys after a rotation");
        }
    }
    Ok(key)
}

/// What [`wrap`] changed.
#[derive(Debug, Default)]
pub struct Wrapped {
    /// The ids of the signing keys changed.
    pub keys: Vec<String>,
    /// How many authenticator (TOTP) secrets were changed.
    pub totp_secrets: usize,
}

/// Leaves every stored private key and every authenticator (TOTP) secret
/// encrypted under `new`: plaintext ones are encrypted, ones encrypted
/// under `old` re-encrypted, ones already under `new` left as they are.
/// The keys change in one transaction, then the secrets in another (an
/// interrupted run can be run again). Each changed key gets a `keys.wrap`
/// audit row; the secrets one row with the subject `totp-secrets`.
/// `old` = `new` is `portcullis keys encrypt`; a new KEK is `keys rewrap`.
///
/// Servers still running with the old KEK keep the keys they loaded but
/// cannot load keys again, nor check authenticator codes, until restarted
/// with the new one.
///
/// # Errors
/// [`OpsError::Wrap`] when a stored key or secret opens under neither KEK
/// (nothing of its kind is changed), or a store failure.
pub async fn wrap(store: &dyn Store, actor: &Actor, old: Option<&Kek>, new: &Kek) -> Result<Wrapped, OpsError> {
    let changes =
        portcullis_token::keys::kek::rewrap(&store.signing_keys().await?, old, new).map_err(OpsError::Wrap)?;
    // Checked before anything is written: a secret under a third key
    // stops the whole run.
    let secrets =
        portcullis_token::mfa::rewrap_secrets(&store.totp_secrets().await?, old, new).map_err(OpsError::Wrap)?;
    store.replace_private_keys(&changes).await?;
    for change in &changes {
        super::record(store, actor, AuditAction::KeysWrap, &change.kid).await;
    }
    store.replace_totp_secrets(&secrets).await?;
    if !secrets.is_empty() {
        super::record(store, actor, AuditAction::KeysWrap, "totp-secrets").await;
    }
    Ok(Wrapped {
        keys: changes.into_iter().map(|c| c.kid).collect(),
        totp_secrets: secrets.len(),
    })
}
