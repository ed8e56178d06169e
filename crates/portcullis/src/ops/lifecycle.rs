//! The rest of a user's life: profile changes (scope, admin right, email
//! address), enabling a disabled user, deletion, and what signed-in users
//! do to their own account after re-authenticating with their current
//! password (change it, delete the account).

use std::net::IpAddr;

use portcullis_domain::{ADMIN_SCOPE, AuditAction, Email, Scopes, Username};
use portcullis_store::{
    NewAuditEvent, RevokeReason, Store, StoreError, UnixTime, User, UserChanges, UserStatus, UserUpdate,
};
use portcullis_token::{GrantError, TokenService};
use secrecy::{ExposeSecret as _, SecretString};

use super::users::{hash, show};
use super::{Actor, OpsError, not_found, record};

/// A change to a user's profile; `None` fields stay as they are.
#[derive(Debug, Default)]
pub struct UserEdit {
    /// New scopes (the admin scope among them or not, as `admin` says
    /// when given).
    pub scope: Option<Scopes>,
    /// Grants (`true`) or takes away (`false`) `portcullis:admin`.
    pub admin: Option<bool>,
    /// A new address, or `Some(None)` to remove it.
    pub email: Option<Option<Email>>,
    /// Whether the address counts as verified (an admin vouches for it).
    pub email_verified: Option<bool>,
}

/// A deleted user.
#[derive(Debug)]
pub struct Deleted {
    /// The user as they were.
    pub user: User,
    /// Sign-ins (refresh families) deleted with them.
    pub ended: u64,
}

/// Changes a user's scope, admin right or email address. Audited as
/// `user.update`. Sign-ins stay: the admin and account APIs check the
/// stored user on every request, and refreshes keep the scope granted at
/// sign-in (narrower tokens need a new sign-in, or `revoke-tokens`).
///
/// # Errors
/// [`OpsError::NoUser`], [`OpsError::EmailTaken`] or a store failure.
pub async fn update(store: &dyn Store, actor: &Actor, username: &str, edit: UserEdit) -> Result<User, OpsError> {
    let user = show(store, username).await?;
    let scope = match (edit.scope, edit.admin) {
        (scope, Some(admin)) => Some(with_admin(&scope.unwrap_or_else(|| user.scope.clone()), admin)),
        (scope, None) => scope,
    };
    let changes = UserChanges {
        scope,
        email: edit.email,
        email_verified: edit.email_verified,
        status: None,
    };
    let updated = apply(store, &user, &changes).await?;
    record(store, actor, AuditAction::UserUpdate, &user.id).await;
    Ok(updated)
}

/// Enables a disabled user: they may sign in again (their old sign-ins
/// stay ended). Audited as `user.enable`; enabling an active user changes
/// nothing and is not audited.
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn enable(store: &dyn Store, actor: &Actor, username: &str) -> Result<User, OpsError> {
    let user = show(store, username).await?;
    if user.status == UserStatus::Active {
        return Ok(user);
    }
    let changes = UserChanges {
        status: Some(UserStatus::Active),
        ..UserChanges::default()
    };
    let updated = apply(store, &user, &changes).await?;
    record(store, actor, AuditAction::UserEnable, &user.id).await;
    Ok(updated)
}

/// Deletes the user named `username`; see [`delete_user`].
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn delete(store: &dyn Store, actor: &Actor, username: &str) -> Result<Deleted, OpsError> {
    let user = show(store, username).await?;
    delete_user(store, actor, user).await
}

/// Deletes a user with all their sign-ins; the revocation feed gets a
/// `user` entry, so resource servers refuse their live access tokens. The
/// audit row (`user.delete`) names the user by [`pseudonym`] only (and the
/// actor too, when users delete themselves), so the log keeps no personal
/// data of theirs from then on.
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn delete_user(store: &dyn Store, actor: &Actor, user: User) -> Result<Deleted, OpsError> {
    let ended = store
        .delete_user(&user.id, UnixTime::now())
        .await
        .map_err(|e| not_found(e, || OpsError::NoUser(user.username.to_string())))?;
    let subject = pseudonym(&user.id);
    let by_self = actor.user_id() == Some(user.id.as_str());
    let event = NewAuditEvent {
        actor: Some(if by_self {
            subject.clone()
        } else {
            actor.name().to_owned()
        }),
        client_id: actor.client_id().map(str::to_owned),
        subject: Some(subject),
        ..NewAuditEvent::new(AuditAction::UserDelete)
    };
    store.record_audit_or_warn(&event, UnixTime::now()).await;
    Ok(Deleted { user, ended })
}

/// The name a deleted user keeps in the audit log: `deleted:` and the
/// first 128 bits of SHA-256 over their id, in hex. Who holds the id (an
/// older audit row, a token) can link it; the log alone names no one.
#[must_use]
pub fn pseudonym(user_id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("portcullis deleted user\u{1f}{user_id}").as_bytes());
    format!("deleted:{}", hex::encode(&digest[..16]))
}

/// A signed-in user's re-authenticated request.
pub struct Reauthenticated<'a> {
    /// The user's id (the access token's `sub`).
    pub user_id: &'a str,
    /// The current password.
    pub password: &'a SecretString,
    /// The client address, for the throttle and the hashing pool.
    pub ip: Option<IpAddr>,
}

impl std::fmt::Debug for Reauthenticated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reauthenticated")
            .field("user_id", &self.user_id)
            .field("password", &"[redacted]")
            .field("ip", &self.ip)
            .finish()
    }
}

/// A user changes their own password: the current one is checked (a
/// sign-in attempt for the throttle), the new one set, and every other
/// sign-in of theirs ends at once (a `family` feed entry each); `keep`,
/// the sign-in the request came from, stays. Audited as
/// `user.change_password`. Returns how many sign-ins ended.
///
/// # Errors
/// [`OpsError::WrongPassword`], [`OpsError::Throttled`],
/// [`OpsError::NoUser`], the new password's refusal, a hashing or store
/// failure.
pub async fn change_own_password(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    me: Reauthenticated<'_>,
    keep: &str,
    new_password: &SecretString,
) -> Result<u64, OpsError> {
    let user = reauthenticate(store, tokens, &me).await?;
    let second_factor = super::mfa::has_second_factor(store, &user.id).await?;
    let hash = hash(
        new_password,
        second_factor,
        &tokens.config().password,
        tokens.passwords(),
    )
    .await?;
    let update = UserUpdate {
        status: None,
        password_hash: Some(hash),
    };
    let ended = store
        .update_and_revoke_other_families(&user.id, &update, keep, RevokeReason::PasswordChanged, UnixTime::now())
        .await
        .map_err(|e| not_found(e, || OpsError::NoUser(user.id.clone())))?;
    record(store, actor, AuditAction::UserChangePassword, &user.id).await;
    Ok(ended)
}

/// A user deletes their own account after re-authenticating; as
/// [`delete_user`].
///
/// # Errors
/// [`OpsError::WrongPassword`], [`OpsError::Throttled`],
/// [`OpsError::NoUser`], a hashing or store failure.
pub async fn delete_own(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    me: Reauthenticated<'_>,
) -> Result<Deleted, OpsError> {
    let user = reauthenticate(store, tokens, &me).await?;
    delete_user(store, actor, user).await
}

pub(super) async fn reauthenticate(
    store: &dyn Store,
    tokens: &TokenService,
    me: &Reauthenticated<'_>,
) -> Result<User, OpsError> {
    let user = store
        .user_by_id(me.user_id)
        .await
        .map_err(|e| not_found(e, || OpsError::NoUser(me.user_id.to_owned())))?;
    tokens
        .reauthenticate(&user, me.password.expose_secret(), me.ip, UnixTime::now())
        .await
        .map_err(|e| match e {
            GrantError::InvalidGrant => OpsError::WrongPassword,
            GrantError::Throttled { retry_after } => OpsError::Throttled(retry_after),
            GrantError::AddressBusy => OpsError::Throttled(1),
            GrantError::Unavailable => OpsError::Store(StoreError::Unavailable),
            _ => OpsError::Hashing,
        })?;
    Ok(user)
}

/// `scope` with the admin scope added or taken away.
fn with_admin(scope: &Scopes, admin: bool) -> Scopes {
    let mut tokens: Vec<&str> = scope.sorted().into_iter().filter(|s| *s != ADMIN_SCOPE).collect();
    if admin {
        tokens.push(ADMIN_SCOPE);
    }
    Scopes::trusted(&tokens.join(" "))
}

async fn apply(store: &dyn Store, user: &User, changes: &UserChanges) -> Result<User, OpsError> {
    store
        .update_user(&user.id, changes, UnixTime::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict => OpsError::EmailTaken,
            other => not_found(other, || OpsError::NoUser(user.username.to_string())),
        })
}

/// Which uniqueness rule a create broke: the username's or the address's.
pub(crate) async fn conflict(store: &dyn Store, username: &Username, email: Option<&Email>) -> OpsError {
    match (store.user_by_username(username).await, email) {
        (Err(StoreError::NotFound), Some(_)) => OpsError::EmailTaken,
        _ => OpsError::UserExists(username.to_string()),
    }
}
