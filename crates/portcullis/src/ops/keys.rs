//! Signing keys: list, rotate.

use portcullis_store::{SigningKey, Store, UnixTime};
use portcullis_token::TokenService;
use portcullis_token::keys::Alg;

use super::{Actor, OpsError};

/// Every stored key.
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store) -> Result<Vec<SigningKey>, OpsError> {
    Ok(store.signing_keys().await?)
}

/// Creates a signing key of `alg` with the one rotation
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
    tokens: Option<&TokenService>,
) -> Result<SigningKey, OpsError> {
    let key = portcullis_token::keys::rotate(store, alg, actor.name(), actor.client_id(), UnixTime::now()).await?;
    if let Some(tokens) = tokens {
        if let Err(e) = tokens.reload_keys().await {
            tracing::warn!(error = %e, "could not reload keys after a rotation");
        }
    }
    Ok(key)
}
