//! The audit log.

use std::collections::HashMap;

use portcullis_domain::AuditAction;
use portcullis_store::{AuditEvent, Store, StoreError};

/// Up to `limit` events with an id below `before` (all when `None`),
/// newest first.
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store, before: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>, super::OpsError> {
    Ok(store.audit_events(before, limit).await?)
}

/// What an event's subject is, from its action (the rule of
/// [`super::Actor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// A user id (sign-ins, user changes).
    User,
    /// A client id.
    Client,
    /// A sign-in on one device (a refresh family id).
    Device,
    /// A revoked token: a device (refresh family) or an access token's
    /// `jti`.
    Token,
    /// A signing key id.
    Key,
}

impl SubjectKind {
    /// The kind of the subject of `action` (`None` for an action this build
    /// does not know).
    #[must_use]
    pub fn of(action: &str) -> Option<Self> {
        use AuditAction as A;
        Some(match action.parse::<AuditAction>().ok()? {
            A::LoginSuccess | A::LoginFailure | A::UserCreate | A::UserDisable | A::UserSetPassword => Self::User,
            A::UserRevokeTokens | A::UserUpdate | A::UserEnable | A::UserChangePassword | A::UserSignUp => Self::User,
            // A deleted user's subject is a pseudonym of their id.
            A::UserDelete | A::UserResetRequest | A::UserResetPassword | A::UserCodeFailure => Self::User,
            A::UserSetEmail | A::UserVerifyEmail => Self::User,
            A::UserMfaStart | A::UserMfaEnrol | A::UserMfaRemove | A::UserMfaReset => Self::User,
            A::UserRecoveryCodes | A::UserMfaFailure => Self::User,
            A::Refresh | A::RefreshReuse | A::DeviceSignOut => Self::Device,
            A::TokenRevoke => Self::Token,
            A::ClientCreate | A::ClientRevoke | A::ClientRotateSecret | A::ClientUpdate => Self::Client,
            A::KeysRotate | A::KeysWrap => Self::Key,
        })
    }

    /// `user`, `client`, `device`, `token` or `key`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::Device => "device",
            Self::Token => "token",
            Self::Key => "key",
        }
    }
}

/// An event with the names a person reads: the acting user's username
/// (or who else acted), the client's name, and the subject's kind and
/// name (a username or a client name; other subjects have no name).
#[derive(Debug)]
pub struct NamedEvent {
    /// The event as stored.
    pub event: AuditEvent,
    /// `command line`, `rotation schedule`, or the acting user's username
    /// (`None` when unknown: a failed sign-in, a deleted user).
    pub actor_name: Option<String>,
    /// The name of the client acted through.
    pub client_name: Option<String>,
    /// What the subject is.
    pub subject_kind: Option<SubjectKind>,
    /// The subject's username or client name.
    pub subject_name: Option<String>,
}

/// [`list`], each event with its names. Users and clients are looked up
/// once per page.
///
/// # Errors
/// A store failure.
pub async fn list_named(
    store: &dyn Store,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<NamedEvent>, super::OpsError> {
    let events = list(store, before, limit).await?;
    let clients: HashMap<String, String> = store
        .list_clients()
        .await?
        .into_iter()
        .map(|c| (c.id.to_string(), c.name))
        .collect();
    let mut users: HashMap<String, Option<String>> = HashMap::new();
    let mut named = Vec::with_capacity(events.len());
    for event in events {
        let actor_name = match event.actor.as_deref() {
            None => None,
            Some("cli") => Some("command line".to_owned()),
            Some("schedule") => Some("rotation schedule".to_owned()),
            Some(id) => username(store, &mut users, id).await?,
        };
        let subject_kind = SubjectKind::of(&event.action);
        let subject_name = match (subject_kind, event.subject.as_deref()) {
            (Some(SubjectKind::User), Some(id)) => username(store, &mut users, id).await?,
            (Some(SubjectKind::Client), Some(id)) => clients.get(id).cloned(),
            _ => None,
        };
        let client_name = event.client_id.as_ref().and_then(|c| clients.get(c).cloned());
        named.push(NamedEvent {
            event,
            actor_name,
            client_name,
            subject_kind,
            subject_name,
        });
    }
    Ok(named)
}

/// The username of the user `id`, looked up once (`None`: no such user).
async fn username(
    store: &dyn Store,
    cache: &mut HashMap<String, Option<String>>,
    id: &str,
) -> Result<Option<String>, StoreError> {
    if let Some(name) = cache.get(id) {
        return Ok(name.clone());
    }
    let name = match store.user_by_id(id).await {
        Ok(u) => Some(u.username.to_string()),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    cache.insert(id.to_owned(), name.clone());
    Ok(name)
}
