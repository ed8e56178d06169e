//! Users: create, list, show, disable, set a password, end every sign-in.

use portcullis_domain::{AuditAction, Email, Scopes, Username};
use portcullis_store::{NewUser, RevokeReason, Store, StoreError, UnixTime, User, UserStatus, UserUpdate};
use portcullis_token::password::{PasswordPolicy, Passwords};
use secrecy::{ExposeSecret as _, SecretString};

use super::{Actor, OpsError, not_found, record};

/// A user to create.
#[derive(Debug)]
pub struct NewUserInput {
    /// The sign-in name.
    pub username: Username,
    /// The password, checked against the server's policy and hashed on
    /// its pool; `None` creates a user who cannot sign in until a password
    /// is set (by an admin, or by a reset through a verified email
    /// address).
    pub password: Option<SecretString>,
    /// The scopes they may be granted.
    pub scope: Scopes,
    /// An email address (unique, ignoring case).
    pub email: Option<Email>,
    /// Whether the address counts as verified at once (an admin vouches
    /// for it); a user's own address is verified by a code sent there.
    pub email_verified: bool,
}

/// A user after a change that ended their sign-ins.
#[derive(Debug)]
pub struct SignInsEnded {
    /// The user (as looked up, before the change).
    pub user: User,
    /// Sign-ins (refresh families) ended.
    pub ended: u64,
}

/// Creates a user; audited as `user.create`. A password is checked against
/// `policy` and hashed on `passwords`, the server's hashing pool.
///
/// # Errors
/// [`OpsError::Password`], [`OpsError::UserExists`],
/// [`OpsError::EmailTaken`], [`OpsError::Hashing`] (the pool is full) or
/// a store failure.
pub async fn create(
    store: &dyn Store,
    actor: &Actor,
    input: NewUserInput,
    policy: &PasswordPolicy,
    passwords: &Passwords,
) -> Result<User, OpsError> {
    let password_hash = match &input.password {
        // A new user has no second factor yet.
        Some(password) => Some(hash(password, false, policy, passwords).await?),
        None => None,
    };
    let new = NewUser {
        password_hash,
        username: input.username,
        scope: input.scope,
        email: input.email,
        email_verified: input.email_verified,
    };
    let user = match store.create_user(&new, UnixTime::now()).await {
        Ok(user) => user,
        Err(StoreError::Conflict) => {
            return Err(super::lifecycle::conflict(store, &new.username, new.email.as_ref()).await);
        }
        Err(other) => return Err(OpsError::Store(other)),
    };
    record(store, actor, AuditAction::UserCreate, &user.id).await;
    Ok(user)
}

/// Up to `limit` users after the username `after`, by username key (the
/// order of their compared form: `alice`, `Bob`, `carol`).
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store, after: Option<&str>, limit: u32) -> Result<Vec<User>, OpsError> {
    // A name the rules refuse belongs to no user, but still marks a place
    // in the order.
    let after = after.map(|a| Username::parse(a).map_or_else(|_| a.to_owned(), |u| u.key().to_owned()));
    Ok(store.list_users(after.as_deref(), limit).await?)
}

/// Every user, by username.
///
/// # Errors
/// A store failure.
pub async fn list_all(store: &dyn Store) -> Result<Vec<User>, OpsError> {
    const PAGE: u32 = 500;
    let mut all: Vec<User> = Vec::new();
    loop {
        let after = all.last().map(|u| u.username.to_string());
        let page = list(store, after.as_deref(), PAGE).await?;
        let done = page.len() < PAGE as usize;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// The user named `username`, in any case or width (`ALICE` is `alice`).
///
/// # Errors
/// [`OpsError::NoUser`] (also for a name the rules refuse: no user has
/// it) or a store failure.
pub async fn show(store: &dyn Store, username: &str) -> Result<User, OpsError> {
    let no_user = || OpsError::NoUser(username.to_owned());
    let name = Username::parse(username).map_err(|_| no_user())?;
    store.user_by_username(&name).await.map_err(|e| not_found(e, no_user))
}

/// The user with id `id`.
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn by_id(store: &dyn Store, id: &str) -> Result<User, OpsError> {
    store
        .user_by_id(id)
        .await
        .map_err(|e| not_found(e, || OpsError::NoUser(id.to_owned())))
}

/// Disables a user: sign-in refused, every sign-in ended. Audited as
/// `user.disable`.
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn disable(store: &dyn Store, actor: &Actor, username: &str) -> Result<SignInsEnded, OpsError> {
    change(store, actor, username, Change::Disable).await
}

/// Sets a user's password (checked against `policy`, hashed on
/// `passwords`, the server's hashing pool) and ends every sign-in.
/// Audited as `user.set_password`.
///
/// # Errors
/// [`OpsError::NoUser`], [`OpsError::Password`], [`OpsError::Hashing`]
/// (the pool is full) or a store failure.
pub async fn set_password(
    store: &dyn Store,
    actor: &Actor,
    username: &str,
    password: &SecretString,
    policy: &PasswordPolicy,
    passwords: &Passwords,
) -> Result<SignInsEnded, OpsError> {
    let user = show(store, username).await?;
    let second_factor = super::mfa::has_second_factor(store, &user.id).await?;
    let hash = hash(password, second_factor, policy, passwords).await?;
    change(store, actor, username, Change::Password(hash)).await
}

/// Ends every sign-in of a user (all devices). Audited as
/// `user.revoke_tokens`.
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn revoke_tokens(store: &dyn Store, actor: &Actor, username: &str) -> Result<SignInsEnded, OpsError> {
    change(store, actor, username, Change::EndSignIns).await
}

/// A change to a user that ends all their sign-ins.
enum Change {
    Disable,
    /// A new password hash.
    Password(String),
    EndSignIns,
}

impl Change {
    /// The store's update, the reason its revocation records, the audit
    /// action.
    fn parts(self) -> (UserUpdate, RevokeReason, AuditAction) {
        match self {
            Self::Disable => (
                UserUpdate {
                    status: Some(UserStatus::Disabled),
                    password_hash: None,
                },
                RevokeReason::UserRevoked,
                AuditAction::UserDisable,
            ),
            Self::Password(hash) => (
                UserUpdate {
                    status: None,
                    password_hash: Some(hash),
                },
                RevokeReason::PasswordChanged,
                AuditAction::UserSetPassword,
            ),
            Self::EndSignIns => (
                UserUpdate::default(),
                RevokeReason::UserRevoked,
                AuditAction::UserRevokeTokens,
            ),
        }
    }
}

/// Applies the change to the user and ends their sign-ins in one write
/// (`update_and_revoke_user`), then records it.
async fn change(store: &dyn Store, actor: &Actor, username: &str, change: Change) -> Result<SignInsEnded, OpsError> {
    let user = show(store, username).await?;
    let (update, reason, action) = change.parts();
    let ended = store
        .update_and_revoke_user(&user.id, &update, reason, UnixTime::now())
        .await
        .map_err(|e| not_found(e, || OpsError::NoUser(username.to_owned())))?;
    record(store, actor, action, &user.id).await;
    Ok(SignInsEnded { user, ended })
}

/// Checks a new password against the policy (length, common passwords;
/// the shorter minimum when the account has a second factor) and hashes it
/// on `passwords`: the server's bounded pool, so that admin and account
/// changes share its limits with sign-ins instead of starting threads of
/// their own.
pub(super) async fn hash(
    password: &SecretString,
    second_factor: bool,
    policy: &PasswordPolicy,
    passwords: &Passwords,
) -> Result<String, OpsError> {
    let password = password.expose_secret();
    policy.check_new(password, second_factor)?;
    passwords.hash(password).await.map_err(|_| OpsError::Hashing)
}
