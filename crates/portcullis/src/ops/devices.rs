//! Devices: a user's live sign-ins (refresh families), and signing one out.

use portcullis_domain::AuditAction;
use portcullis_store::{RefreshFamily, RevokeReason, Store, UnixTime};

use super::{Actor, OpsError, not_found, record};

/// The live sign-ins of the user with id `user_id`, newest first.
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store, user_id: &str) -> Result<Vec<RefreshFamily>, OpsError> {
    Ok(store.live_families_for_user(user_id, UnixTime::now()).await?)
}

/// Signs out one device of the user with id `user_id`; their other
/// sign-ins stay. The reason recorded on the family is a sign-out when the
/// user does it themselves, an admin's revocation otherwise. Audited as
/// `device.sign_out` when it was live. Returns whether it was.
///
/// # Errors
/// [`OpsError::NoDevice`] when there is no such device or it is another
/// user's, or a store failure.
pub async fn sign_out(store: &dyn Store, actor: &Actor, user_id: &str, device_id: &str) -> Result<bool, OpsError> {
    let family = store
        .family_by_id(device_id)
        .await
        .map_err(|e| not_found(e, || OpsError::NoDevice))?;
    if family.user_id != user_id {
        return Err(OpsError::NoDevice);
    }
    let reason = if actor.user_id() == Some(user_id) {
        RevokeReason::SignOut
    } else {
        RevokeReason::Admin
    };
    let signed_out = store
        .revoke_family(device_id, reason, UnixTime::now())
        .await
        .map_err(|e| not_found(e, || OpsError::NoDevice))?;
    if signed_out {
        record(store, actor, AuditAction::DeviceSignOut, device_id).await;
    }
    Ok(signed_out)
}
