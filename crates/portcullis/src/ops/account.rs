//! What people do for themselves, through an app: sign up, set and
//! confirm an email address, reset a forgotten password.
//!
//! The handlers check the password against the policy, take a hashing
//! place and count the attempt (throttling) before calling these; these do
//! the change, the revocations it implies and the audit row.

use portcullis_domain::{AuditAction, Email, Username};
use portcullis_store::{
    Client, ClientStatus, CodePurpose, NewAuditEvent, NewUser, RevokeReason, Store, StoreError, UnixTime, User,
    UserChanges, UserStatus, UserUpdate,
};

use super::{Actor, OpsError, codes, record};
use crate::mail::{Mail, Mailer};

/// A sign-up, its password already checked and hashed.
#[derive(Debug)]
pub struct SignUp {
    /// The sign-in name asked for.
    pub username: Username,
    /// The password's hash.
    pub password_hash: String,
    /// An address to confirm, if given.
    pub email: Option<Email>,
}

/// The client, if it exists, is active and allows sign-up.
///
/// # Errors
/// [`OpsError::NoClient`] (unknown or revoked), [`OpsError::SignUpOff`].
pub async fn sign_up_client(store: &dyn Store, client_id: &str) -> Result<Client, OpsError> {
    let client = usable_client(store, client_id).await?;
    if !client.allow_sign_up {
        return Err(OpsError::SignUpOff);
    }
    Ok(client)
}

/// An active client with this id.
///
/// # Errors
/// [`OpsError::NoClient`] (unknown or revoked) or a store failure.
pub async fn usable_client(store: &dyn Store, client_id: &str) -> Result<Client, OpsError> {
    let no_client = || OpsError::NoClient(client_id.to_owned());
    let client = store
        .client_by_id(client_id)
        .await
        .map_err(|e| super::not_found(e, no_client))?;
    if client.status != ClientStatus::Active {
        return Err(no_client());
    }
    Ok(client)
}

/// Whether the username is taken (checked before hashing, so a taken name
/// costs no hash).
///
/// # Errors
/// A store failure.
pub async fn username_taken(store: &dyn Store, username: &Username) -> Result<bool, OpsError> {
    match store.user_by_username(username).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the user with the client's sign-up scope; audited as
/// `user.sign_up` (actor: the new user, through the client). With an
/// address and mail configured, a verification code is sent to it.
///
/// # Errors
/// [`OpsError::UserExists`], [`OpsError::EmailTaken`], a store failure.
pub async fn sign_up(
    store: &dyn Store,
    client: &Client,
    input: SignUp,
    mailer: Option<&Mailer>,
) -> Result<User, OpsError> {
    let new = NewUser {
        username: input.username,
        password_hash: Some(input.password_hash),
        scope: client.sign_up_scope.clone(),
        email: input.email,
        email_verified: false,
    };
    let user = match store.create_user(&new, UnixTime::now()).await {
        Ok(user) => user,
        // Which of the two unique keys was hit decides the answer.
        Err(StoreError::Conflict) if username_taken(store, &new.username).await? => {
            return Err(OpsError::UserExists(new.username.to_string()));
        }
        Err(StoreError::Conflict) => return Err(OpsError::EmailTaken),
        Err(other) => return Err(other.into()),
    };
    let actor = Actor::User {
        user_id: user.id.clone(),
        client_id: client.id.clone(),
    };
    record(store, &actor, AuditAction::UserSignUp, &user.id).await;
    if let (Some(mailer), Some(email)) = (mailer, &user.email) {
        if let Err(e) = send_verification(store, mailer, &user, email).await {
            tracing::warn!(error = %e, "sign-up: the verification code was not sent");
        }
    }
    Ok(user)
}

/// Sets or changes the user's address (unverified) and mails a code to
/// it; audited as `user.set_email`.
///
/// # Errors
/// [`OpsError::EmailTaken`] (another account has it), [`OpsError::Mail`]
/// when the mail could not be sent (the address stays set, unverified),
/// a store failure.
pub async fn set_email(
    store: &dyn Store,
    actor: &Actor,
    user_id: &str,
    email: Email,
    mailer: &Mailer,
) -> Result<User, OpsError> {
    let changes = UserChanges {
        email: Some(Some(email.clone())),
        email_verified: Some(false),
        ..UserChanges::default()
    };
    let user = store
        .update_user(user_id, &changes, UnixTime::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict => OpsError::EmailTaken,
            StoreError::NotFound => OpsError::NoUser(user_id.to_owned()),
            other => OpsError::Store(other),
        })?;
    record(store, actor, AuditAction::UserSetEmail, user_id).await;
    send_verification(store, mailer, &user, &email).await?;
    Ok(user)
}

async fn send_verification(store: &dyn Store, mailer: &Mailer, user: &User, email: &Email) -> Result<(), OpsError> {
    let code = codes::issue(
        store,
        &user.id,
        CodePurpose::VerifyEmail,
        Some(email.as_str()),
        UnixTime::now(),
    )
    .await?;
    let mail = Mail::VerifyEmail {
        code: &code,
        username: user.username.as_str(),
    };
    mailer.send(email.as_str(), mail).await.map_err(OpsError::Mail)
}

/// Confirms the user's address with the code mailed to it; audited as
/// `user.verify_email` (a wrong code as `user.code_failure`).
///
/// # Errors
/// [`OpsError::BadCode`] (wrong, used, expired, 5 tries, or the address
/// changed since it was sent), a store failure.
pub async fn verify_email(store: &dyn Store, actor: &Actor, user_id: &str, code: &str) -> Result<User, OpsError> {
    let now = UnixTime::now();
    let used = match codes::redeem(store, user_id, CodePurpose::VerifyEmail, code, now).await {
        Ok(used) => used,
        Err(e) => {
            if matches!(e, OpsError::BadCode) {
                record(store, actor, AuditAction::UserCodeFailure, user_id).await;
            }
            return Err(e);
        }
    };
    let user = super::users::by_id(store, user_id).await?;
    let current = user.email.as_ref().map(Email::as_str);
    if used.email.is_none() || current != used.email.as_deref() {
        return Err(OpsError::BadCode);
    }
    let changes = UserChanges {
        email_verified: Some(true),
        ..UserChanges::default()
    };
    let user = store.update_user(user_id, &changes, now).await?;
    record(store, actor, AuditAction::UserVerifyEmail, user_id).await;
    Ok(user)
}

/// Who a reset request names.
#[derive(Debug, Clone)]
pub enum ResetFor {
    /// By sign-in name.
    Username(Username),
    /// By address.
    Email(Email),
}

impl ResetFor {
    /// The account as the per-account throttle counts it (known or not).
    #[must_use]
    pub fn throttle_key(&self) -> String {
        match self {
            Self::Username(u) => format!("u:{}", u.key()),
            Self::Email(e) => format!("e:{}", e.key()),
        }
    }
}

/// The work of a reset request, after the answer (202) is given: when the
/// account exists, is active and has a verified address, a code is mailed
/// to it; audited as `user.reset_request`. An unknown account does
/// nothing. Run apart from the request, so the answer's timing does not
/// depend on the account.
pub async fn request_reset(store: &dyn Store, client_id: &str, who: ResetFor, mailer: &Mailer) {
    let found = match &who {
        ResetFor::Username(u) => store.user_by_username(u).await,
        ResetFor::Email(e) => store.user_by_email(e).await,
    };
    let user = match found {
        Ok(u) if u.status == UserStatus::Active => u,
        Ok(_) | Err(StoreError::NotFound) => return,
        Err(e) => {
            tracing::warn!(error = %e, "password reset: lookup failed");
            return;
        }
    };
    let actor = Actor::User {
        user_id: user.id.clone(),
        client_id: client_id.to_owned(),
    };
    record(store, &actor, AuditAction::UserResetRequest, &user.id).await;
    let Some(email) = user.email.as_ref().filter(|_| user.email_verified_at.is_some()) else {
        return;
    };
    let sent = async {
        let code = codes::issue(store, &user.id, CodePurpose::PasswordReset, None, UnixTime::now()).await?;
        let mail = Mail::PasswordReset {
            code: &code,
            username: user.username.as_str(),
        };
        mailer.send(email.as_str(), mail).await.map_err(OpsError::Mail)
    };
    if let Err(e) = sent.await {
        tracing::warn!(error = %e, "password reset: the code was not sent");
    }
}

/// The user a reset code is for, if the code is right (used up then).
/// An unknown username answers as a wrong code, after the same work.
///
/// # Errors
/// [`OpsError::BadCode`], a store failure.
pub async fn redeem_reset(
    store: &dyn Store,
    client_id: Option<&str>,
    username: &str,
    code: &str,
) -> Result<User, OpsError> {
    let user = match Username::parse(username) {
        Ok(name) => match store.user_by_username(&name).await {
            Ok(u) => Some(u),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    // An unknown account tries a code of no user: the same statement.
    let id = user.as_ref().map_or("", |u| u.id.as_str());
    let redeemed = codes::redeem(store, id, CodePurpose::PasswordReset, code, UnixTime::now()).await;
    match (redeemed, user) {
        (Ok(_), Some(user)) if user.status == UserStatus::Active => Ok(user),
        (Err(OpsError::BadCode), Some(user)) => {
            record_own(store, &user.id, client_id, AuditAction::UserCodeFailure).await;
            Err(OpsError::BadCode)
        }
        (Err(e @ OpsError::Store(_)), _) => Err(e),
        _ => Err(OpsError::BadCode),
    }
}

/// Sets the new password of a user who redeemed a reset code and ends
/// every sign-in (with a revocation feed entry); audited as
/// `user.reset_password`. The address the code went to is now verified
/// twice over; it stays so.
///
/// # Errors
/// [`OpsError::NoUser`] when the user is gone; a store failure.
pub async fn finish_reset(
    store: &dyn Store,
    client_id: Option<&str>,
    user: &User,
    password_hash: String,
) -> Result<u64, OpsError> {
    let update = UserUpdate {
        status: None,
        password_hash: Some(password_hash),
    };
    let ended = store
        .update_and_revoke_user(&user.id, &update, RevokeReason::PasswordChanged, UnixTime::now())
        .await
        .map_err(|e| super::not_found(e, || OpsError::NoUser(user.id.clone())))?;
    record_own(store, &user.id, client_id, AuditAction::UserResetPassword).await;
    Ok(ended)
}

/// Records what a user did to their own account without a token (a
/// reset), through `client_id` when the request named one.
async fn record_own(store: &dyn Store, user_id: &str, client_id: Option<&str>, action: AuditAction) {
    let event = NewAuditEvent {
        actor: Some(user_id.to_owned()),
        client_id: client_id.map(str::to_owned),
        subject: Some(user_id.to_owned()),
        ..NewAuditEvent::new(action)
    };
    store.record_audit_or_warn(&event, UnixTime::now()).await;
}
