//! Refresh-token families and their rotating tokens.
//!
//! A family is one sign-in on one device: it is created by the password
//! grant, holds the user, client, scope and device label, and ends when it
//! is revoked or reaches its absolute expiry. Each refresh consumes the
//! family's current token and adds its child (RFC 9700 §4.14.2). Only the
//! SHA-256 of a token is stored.
//!
//! This file holds the records and the [`RefreshStore`] trait; the
//! submodules hold the SQL behind them and import from here, never the
//! reverse: `rows` (row mapping), `rotate` (the rule for a consumable token
//! and the classifier of refusals), `sqlite` and `postgres` (a rotation on
//! each backend), `group_commit` (SQLite's writer task) and `store` (the
//! trait's implementation).

use async_trait::async_trait;

use crate::types::text_enum;
use crate::{StoreError, TokenHash, UnixTime};

#[cfg(feature = "sqlite")]
pub(crate) mod group_commit;
#[cfg(feature = "postgres")]
mod postgres;
mod rotate;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

/// One sign-in on one device: the unit that a "sign out this device" or a
/// reuse detection revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Family id, carried in access tokens as `sid`.
    pub id: String,
    /// The user who signed in.
    pub user_id: String,
    /// The client the tokens are bound to (RFC 6749 §6).
    pub client_id: String,
    /// Space-delimited scope granted at sign-in; refreshes never widen it.
    pub scope: String,
    /// A name for the device, as given at sign-in.
    pub device_label: Option<String>,
    /// When the user signed in.
    pub created_at: UnixTime,
    /// When a token of the family was last used.
    pub last_used_at: UnixTime,
    /// Absolute expiry: no refresh after this, however often used.
    pub expires_at: UnixTime,
    /// When the family was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
    /// Why the family was revoked.
    pub revoke_reason: Option<RevokeReason>,
}

impl RefreshFamily {
    /// Whether a token of this family may still be used at `now`.
    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

text_enum! {
    /// Why a refresh family was revoked.
    RevokeReason {
        /// The user signed out (or signed out this device).
        SignOut => "sign_out",
        /// A spent refresh token was presented again (RFC 9700 §4.14.2).
        Reuse => "reuse",
        /// The token was revoked through RFC 7009.
        Revoked => "revoked",
        /// An admin revoked the user's tokens or disabled the user.
        UserRevoked => "user_revoked",
        /// An admin revoked the client.
        ClientRevoked => "client_revoked",
        /// The user's password was changed.
        PasswordChanged => "password_changed",
        /// An admin signed out this device.
        Admin => "admin",
    }
}

/// A refresh token's successor, sealed by the token endpoint under a key
/// derived from the consumed token. The store cannot open it; `Debug`
/// does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed([redacted])")
    }
}

/// One refresh token of a family, as stored (the token itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Token id.
    pub id: String,
    /// The family it belongs to.
    pub family_id: String,
    /// The token this one replaced; `None` for the first of a family.
    pub parent_id: Option<String>,
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// Idle expiry: it must be used before this.
    pub expires_at: UnixTime,
    /// When it was consumed by a refresh, if it was.
    pub used_at: Option<UnixTime>,
    /// The id of the token that replaced it.
    pub replaced_by: Option<String>,
    /// The replacing token, sealed by the caller under a key only the
    /// holder of this token can derive (see [`Rotate::successor`]). Kept
    /// only while it may be needed: cleared when the successor is itself
    /// rotated, when the family is revoked, and by
    /// [`RefreshStore::clear_successors`] after the retry window.
    pub successor: Option<Sealed>,
}

/// What is needed to start a family (a password-grant sign-in).
#[derive(Debug, Clone)]
pub struct NewFamily {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Space-delimited granted scope.
    pub scope: String,
    /// Optional device name.
    pub device_label: Option<String>,
    /// Absolute expiry of the family.
    pub expires_at: UnixTime,
    /// SHA-256 of the family's first refresh token.
    pub first_token: TokenHash,
    /// Idle expiry of the first token (capped at the family's expiry).
    pub first_token_expires_at: UnixTime,
    /// The sign-in is refused if the user's tokens were revoked at or after
    /// this time (when the password check began): a password change or a
    /// "sign out everywhere" that lands while the password is being
    /// checked must not let this sign-in through.
    pub not_revoked_since: UnixTime,
    /// The password hash the password was checked against; the sign-in is
    /// refused if the stored hash is no longer this one.
    pub password_hash: Option<String>,
    /// The sign-in's own bookkeeping, written in the same transaction as
    /// the family (one durable write per sign-in instead of four).
    pub sign_in: Option<SignInRecord>,
}

/// What a successful sign-in records besides its family.
#[derive(Debug, Clone)]
pub struct SignInRecord {
    /// A throttle counter to delete (the (username, address) one).
    pub clear_counter: String,
    /// A throttle counter to take this attempt back from (the account-wide
    /// one; never below zero).
    pub forgive_counter: String,
    /// The audit event of the sign-in.
    pub audit: crate::NewAuditEvent,
}

/// A refresh: consume `presented` and issue its child, atomically.
#[derive(Debug, Clone)]
pub struct Rotate<'a> {
    /// SHA-256 of the token the client presented.
    pub presented: TokenHash,
    /// The authenticated client; a token of another client is not touched.
    pub client_id: &'a str,
    /// SHA-256 of the new token.
    pub child: TokenHash,
    /// Idle expiry of the new token (capped at the family's expiry).
    pub child_expires_at: UnixTime,
    /// The new token sealed under a key derived from the presented one,
    /// stored on the consumed token so that a retry of the same refresh can
    /// be answered with the same new token. The store cannot open it.
    pub successor: Option<Sealed>,
    /// The time of the request.
    pub now: UnixTime,
    /// An audit event to record with the rotation, in the same
    /// transaction (so it costs no extra durable write).
    pub audit: Option<crate::NewAuditEvent>,
}

/// The outcome of [`RefreshStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This caller consumed the token; its child is stored (committed)
    /// before this returns.
    Rotated {
        /// The family, with `last_used_at` updated.
        family: RefreshFamily,
        /// The consumed token.
        parent: RefreshToken,
        /// The new token.
        child: RefreshToken,
    },
    /// The token had been consumed already, by this or a concurrent request:
    /// a retry or a replay. `token.replaced_by` names the child.
    Spent {
        /// The family (possibly live, possibly revoked since).
        family: RefreshFamily,
        /// The spent token, with `used_at` and `replaced_by`.
        token: RefreshToken,
    },
    /// The token exists and is unspent but may not be used: expired, its
    /// family revoked or expired, or it belongs to another client. Nothing
    /// was written.
    Refused(Refusal),
    /// No token has this hash.
    NotFound,
}

/// Why an unspent refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token is past its idle expiry.
    TokenExpired,
    /// The family is past its absolute expiry.
    FamilyExpired,
    /// The family was revoked.
    FamilyRevoked,
    /// The token was issued to another client.
    WrongClient,
}

/// Refresh families and tokens.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Starts a family with its first token, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user or client does not exist or
    /// is not active, the password hash changed, or the user's tokens were
    /// revoked since [`NewFamily::not_revoked_since`];
    /// [`StoreError::Conflict`] when the token hash is already stored.
    async fn start_family(&self, new: &NewFamily, now: UnixTime) -> Result<(RefreshFamily, RefreshToken), StoreError>;

    /// Consumes a refresh token and stores its child, as one atomic
    /// conditional write: under any concurrency exactly one caller gets
    /// [`Rotation::Rotated`] for a given token; the others get
    /// [`Rotation::Spent`] naming the winner's child.
    ///
    /// # Errors
    /// Only database failures; every refusal is a [`Rotation`] variant.
    async fn rotate_refresh(&self, rotate: &Rotate<'_>) -> Result<Rotation, StoreError>;

    /// A token and its family, by the token's hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no token has this hash.
    async fn refresh_token_by_hash(&self, hash: TokenHash) -> Result<(RefreshToken, RefreshFamily), StoreError>;

    /// A token, its family, the family's user and the family's client, by
    /// the token's hash, in one read (what every refresh needs before it
    /// rotates, including the client to authenticate the request with).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no token has this hash.
    async fn refresh_context(
        &self,
        hash: TokenHash,
    ) -> Result<(RefreshToken, RefreshFamily, crate::User, crate::Client), StoreError>;

    /// A token by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn refresh_token_by_id(&self, id: &str) -> Result<RefreshToken, StoreError>;

    /// A family by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn family_by_id(&self, id: &str) -> Result<RefreshFamily, StoreError>;

    /// The user's live families (their signed-in devices), newest first.
    ///
    /// # Errors
    /// Only database failures.
    async fn live_families_for_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<RefreshFamily>, StoreError>;

    /// Forgets the sealed successors of tokens consumed before `cutoff`
    /// (the end of the retry window), so that a database copy plus an old
    /// token cannot reveal a live one. Returns how many were cleared.
    ///
    /// # Errors
    /// Only database failures.
    async fn clear_successors(&self, cutoff: UnixTime) -> Result<u64, StoreError>;

    /// Deletes families (with their tokens) that expired or were revoked
    /// before `cutoff`. Returns how many families were deleted.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_families(&self, cutoff: UnixTime) -> Result<u64, StoreError>;
}
