//! The operations layer: every change a person, an app or the server
//! makes to clients, users, devices and keys, each one function that does
//! the change, the revocations it implies and its audit row together.
//!
//! The front ends only parse and render: the CLI (`crate::admin`) and
//! the admin and account APIs (`crate::admin_api`) turn their input into
//! typed values ([`portcullis_domain`]), call an operation with the
//! [`Actor`] they speak for, and render what it returns or map its
//! [`OpsError`].

pub mod account;
pub mod audit;
pub mod clients;
pub mod codes;
pub mod devices;
pub mod keys;
pub mod lifecycle;
pub mod mfa;
pub mod users;

use portcullis_domain::AuditAction;
use portcullis_store::{NewAuditEvent, Store, StoreError, UnixTime};

/// Who performs an operation.
///
/// Every audit row an operation writes follows one rule:
/// - `actor`: `cli` for the command line, otherwise the acting user's id
///   (the `sub` of their access token). The rotation schedule, which is no
///   person, records `schedule`.
/// - `client_id`: the client through which the actor acted (the client
///   their access token was issued to); none for the command line.
/// - `subject`: what was acted on: a client id, a user id, a device
///   (refresh family) id or a signing key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator at the command line, working straight on the database.
    Cli,
    /// An admin through the admin API, with a verified access token that
    /// holds `portcullis:admin`.
    Admin {
        /// The admin's user id.
        user_id: String,
        /// The client their token was issued to.
        client_id: String,
    },
    /// A user acting on their own account through the account API.
    User {
        /// The user's id.
        user_id: String,
        /// The client their token was issued to.
        client_id: String,
    },
}

impl Actor {
    /// The audit row's `actor`: `cli` or the acting user's id.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Cli => "cli",
            Self::Admin { user_id, .. } | Self::User { user_id, .. } => user_id,
        }
    }

    /// The audit row's `client_id`: the client acted through, if any.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Cli => None,
            Self::Admin { client_id, .. } | Self::User { client_id, .. } => Some(client_id),
        }
    }

    /// The acting user's id, if a user acts.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Cli => None,
            Self::Admin { user_id, .. } | Self::User { user_id, .. } => Some(user_id),
        }
    }
}

/// Records `action` on `subject` by `actor` (see [`Actor`] for the rule).
/// A failure is logged, not returned: the change is done already.
async fn record(store: &dyn Store, actor: &Actor, action: AuditAction, subject: &str) {
    let event = NewAuditEvent {
        actor: Some(actor.name().to_owned()),
        client_id: actor.client_id().map(str::to_owned),
        subject: Some(subject.to_owned()),
        ..NewAuditEvent::new(action)
    };
    store.record_audit_or_warn(&event, UnixTime::now()).await;
}

/// Why an operation failed. Each front end maps it: the CLI to a message,
/// the APIs to a status and an error code.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No client has this id.
    #[error("no client with id {0:?}")]
    NoClient(String),
    /// No user has this name (or id).
    #[error("no user named {0:?}")]
    NoUser(String),
    /// No such device, or not the user's.
    #[error("no such device")]
    NoDevice,
    /// The client id is taken.
    #[error("a client with id {0:?} exists already")]
    ClientExists(String),
    /// The username is taken.
    #[error("a user named {0:?} exists already (usernames are compared ignoring case and width)")]
    UserExists(String),
    /// Refused input, with a short reason an admin can act on.
    #[error("{0}")]
    Invalid(&'static str),
    /// The email address belongs to another user.
    #[error("another user has this email address (addresses are compared ignoring case)")]
    EmailTaken,
    /// The client is revoked: it cannot be changed or re-activated.
    #[error("client {0:?} is revoked; revocation is final (register a new client)")]
    ClientRevoked(String),
    /// The grace period asked for a rotated secret is too long.
    #[error("the grace period may be at most {0} seconds")]
    GraceTooLong(u64),
    /// The current password given to re-authenticate is wrong (or the
    /// user has none).
    #[error("the current password is wrong")]
    WrongPassword,
    /// Too many wrong passwords: try again after this many seconds.
    #[error("too many attempts; retry after {0} seconds")]
    Throttled(u64),
    /// The access token has no sign-in (`sid`) to keep.
    #[error("the access token names no sign-in")]
    NoSignIn,
    /// A public client has no secret to rotate.
    #[error("client {0:?} is public: it has no secret to rotate")]
    PublicClient(String),
    /// The default scope is not within the client's scope.
    #[error("the default scope must be within the scope")]
    DefaultScopeTooWide,
    /// Introspection needs a confidential client (it authenticates with a
    /// secret).
    #[error("introspection needs a confidential client")]
    IntrospectNeedsSecret,
    /// The new password breaks the password policy (too short, too long,
    /// too common); its description is fit to show as it is.
    #[error("{}", .0.description())]
    Password(#[from] portcullis_token::password::Refused),
    /// The client does not allow sign-up.
    #[error("this client does not allow sign-up")]
    SignUpOff,
    /// The user has a confirmed authenticator already (remove it first).
    #[error("an authenticator is enrolled already")]
    MfaEnrolled,
    /// No authenticator waits for its first code.
    #[error("no authenticator is waiting for confirmation (start enrolment first)")]
    NoPendingTotp,
    /// The user has no second factor.
    #[error("the user has no second factor")]
    NoSecondFactor,
    /// A one-time code is wrong, used, expired or out of tries.
    #[error("the code is wrong or has expired")]
    BadCode,
    /// A mail could not be sent.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// The system's random source failed.
    #[error("no randomness available")]
    Random,
    /// The password hashing settings are refused.
    #[error("password policy: {0}")]
    Policy(#[from] portcullis_token::password::InvalidPolicy),
    /// The hashing pool refused the work.
    #[error("password hashing failed")]
    Hashing,
    /// A signing key could not be created or stored.
    #[error(transparent)]
    Key(#[from] portcullis_token::keys::RotateError),
    /// The signing keys could not be encrypted under a key-encryption key.
    #[error(transparent)]
    Wrap(portcullis_token::keys::KeyError),
    /// The store failed (unavailable or a backend fault).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// `NotFound` from the store as the operation's own error.
fn not_found(e: StoreError, missing: impl FnOnce() -> OpsError) -> OpsError {
    match e {
        StoreError::NotFound => missing(),
        other => OpsError::Store(other),
    }
}
