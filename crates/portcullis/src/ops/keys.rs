//! Signing keys: list, rotate, encrypt at rest.

use portcullis_domain::AuditAction;
use portcullis_store::{SigningKey, Store, UnixTime};
use portcullis_token::TokenService;
use portcullis_token::keys::{Alg, Kek};

use super::{Actor, OpsError};

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

/// Leaves every stored private key encrypted under `new`: plaintext keys
/// are encrypted, keys encrypted under `old` re-encrypted, keys already
/// under `new` left as they are. All keys change in one transaction, and
/// each changed key gets a `keys.wrap` audit row. `old` = `new` is
/// `portcullis keys encrypt`; a new KEK is `keys rewrap`. Returns the ids
/// of the keys changed.
///
/// Servers still running with the old KEK keep the keys they loaded but
/// cannot load keys again until restarted with the new one.
///
/// # Errors
/// [`OpsError::Wrap`] when a stored key opens under neither KEK (nothing
/// is changed), or a store failure.
pub async fn wrap(store: &dyn Store, actor: &Actor, old: Option<&Kek>, new: &Kek) -> Result<Vec<String>, OpsError> {
    let changes =
        portcullis_token::keys::kek::rewrap(&store.signing_keys().await?, old, new).map_err(OpsError::Wrap)?;
    store.replace_private_keys(&changes).await?;
    for change in &changes {
        super::record(store, actor, AuditAction::KeysWrap, &change.kid).await;
    }
    Ok(changes.into_iter().map(|c| c.kid).collect())
}
