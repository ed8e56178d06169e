//! The one signing-key rotation.

use portcullis_domain::AuditAction;
use portcullis_store::{AuditStore, KeyStore, NewAuditEvent, SigningKey, StoreError, UnixTime};

use super::{Alg, Kek, KeyError, generate, kek};

/// A key rotation failed.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The key could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key could not be stored.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl From<RotateError> for crate::StartError {
    fn from(e: RotateError) -> Self {
        match e {
            RotateError::Key(k) => Self::Key(k),
            RotateError::Store(s) => Self::Store(s),
        }
    }
}

/// The one key rotation, whoever asks for it (the CLI, the admin API, the
/// rotation schedule): creates a key of `alg` and stores it (published at
/// once, signing once the publication delay has passed; see
/// [`KeySet::signer`]), encrypted under `kek` when one is configured,
/// and records `keys.rotate` in the audit log with `actor` and
/// `client_id` and the new key's id as subject.
///
/// # Errors
/// [`RotateError`] when the key cannot be generated or stored, or when
/// the stored keys are encrypted and no `kek` is given. A failure
/// to write the audit row is logged, not returned.
pub async fn rotate<S: KeyStore + AuditStore + ?Sized>(
    store: &S,
    alg: Alg,
    kek: Option<&Kek>,
    (actor, client_id): (&str, Option<&str>),
    now: UnixTime,
) -> Result<SigningKey, RotateError> {
    if kek.is_none()
        && store
            .signing_keys()
            .await?
            .iter()
            .any(|k| kek::is_sealed(&k.private_key))
    {
        // Never add a plaintext key beside encrypted ones: a CLI run
        // without the KEK would undo the protection unnoticed.
        return Err(RotateError::Key(KeyError(kek::NO_KEK)));
    }
    let key = store
        .insert_signing_key(&kek::seal_new(generate(alg, None)?, kek)?, now)
        .await?;
    let event = NewAuditEvent {
        actor: Some(actor.to_owned()),
        client_id: client_id.map(str::to_owned),
        subject: Some(key.kid.clone()),
        ..NewAuditEvent::new(AuditAction::KeysRotate)
    };
    store.record_audit_or_warn(&event, now).await;
    Ok(key)
}
