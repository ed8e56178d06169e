//! Refresh-token families: one sign-in each, holding its refresh token.
//!
//! A family is one sign-in on one device: it is created by the password
//! grant, holds the user, client, scope and device label, and ends when it
//! is revoked or reaches its absolute expiry. Its state is constant in
//! size however often it is refreshed (RFC 9700 §4.14.2 rotation): the
//! current token, the previous one (for the retry window and the race
//! grace), and the hash of the family's selector, the part of every
//! refresh token of the family that finds it. A refresh rewrites that state
//! and adds no row; any other token of the family presented later is
//! reuse. Only hashes of tokens and selectors are stored.
//!
//! Tokens issued before constant state (migration 5) are found through
//! their rows in `refresh_tokens`, kept until they expire ([`TokenKey::Legacy`]).
//!
//! This file holds the records and the [`RefreshStore`] trait; the
//! submodules hold the SQL behind them and import from here, never the
//! reverse: `rows` (row mapping), `rotate` (the rule for a current token,
//! the rotation statement and the classifier of refusals), `sqlite` and
//! `postgres` (a rotation on each backend), `group_commit` (SQLite's writer
//! task) and `store` (the trait's implementation).

use async_trait::async_trait;

use crate::types::text_enum;
use crate::{StoreError, TokenHash, UnixTime};

mod cleanup;
pub(crate) mod group_commit;
#[cfg(feature = "postgres")]
mod postgres;
mod rotate;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

/// One sign-in on one device: the unit that a "sign out this device" or a
/// reuse detection revokes, and the holder of its refresh token.
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
    /// The token that the next refresh must present.
    pub current: CurrentToken,
    /// The token the last refresh consumed, while it matters.
    pub previous: Option<PreviousToken>,
    /// The RFC 7638 thumbprint of the DPoP key the family is bound to:
    /// every refresh must prove possession of it (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
    /// How the sign-in was authenticated: RFC 8176 `amr` values,
    /// space-separated (`pwd`, `pwd otp mfa`); `None` for a family started
    /// before this was recorded (a password sign-in).
    pub amr: Option<String>,
}

impl RefreshFamily {
    /// Whether a token of this family may still be used at `now`.
    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// Whether `presented` (a token's hash) is the current token, usable at
    /// `now`: the family live, the token within its idle expiry.
    #[must_use]
    pub fn current_is(&self, presented: &TokenHash, now: UnixTime) -> bool {
        self.current.hash.as_ref() == Some(presented) && now < self.current.expires_at && self.is_live(now)
    }

    /// When the current token was issued: at the last refresh, or at
    /// sign-in.
    #[must_use]
    pub fn current_issued_at(&self) -> UnixTime {
        self.previous.as_ref().map_or(self.created_at, |p| p.used_at)
    }
}

/// A family's current refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentToken {
    /// How many refreshes the family has had: 1 for the token of the
    /// sign-in, 0 for a token issued before constant state.
    pub generation: i64,
    /// SHA-256 of the token; `None` only for a family revoked before
    /// constant state, which has none.
    pub hash: Option<TokenHash>,
    /// Idle expiry: it must be used before this.
    pub expires_at: UnixTime,
}

/// The token a family's last refresh consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// When it was consumed.
    pub used_at: UnixTime,
    /// The current token, sealed by the caller under a key only the holder
    /// of the previous token can derive (see [`Rotate::successor`]), so
    /// that a retry of that refresh is answered alike. Kept only while it
    /// may be needed: gone at the next refresh, when the family is
    /// revoked, and after the retry window
    /// ([`RefreshStore::clear_successors`]).
    pub successor: Option<Sealed>,
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

/// How a presented refresh token finds its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKey {
    /// SHA-256 of the token's selector (every token since constant state).
    Selector(TokenHash),
    /// SHA-256 of a whole token issued before constant state, found through
    /// its row in `refresh_tokens`.
    Legacy(TokenHash),
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
    /// SHA-256 of the family's selector, which every refresh token of the
    /// family carries.
    pub selector: TokenHash,
    /// SHA-256 of the family's first refresh token.
    pub first_token: TokenHash,
    /// Idle expiry of the first token (capped at the family's expiry).
    pub first_token_expires_at: UnixTime,
    /// The user's [`sessions_epoch`](crate::User::sessions_epoch) as read
    /// with the user, before the password check; the sign-in is refused if
    /// it changed since: a "sign out everywhere", a disable or a password
    /// set or reset that lands while the password is being checked must
    /// not let this sign-in through. Counting, not timing, so a sign-in
    /// that begins after such a change passes even within the same second.
    pub sessions_epoch: i64,
    /// The password hash the password was checked against; the sign-in is
    /// refused if the stored hash is no longer this one.
    pub password_hash: Option<String>,
    /// The sign-in's own bookkeeping, written in the same transaction as
    /// the family (one durable write per sign-in instead of four).
    pub sign_in: Option<SignInRecord>,
    /// The DPoP key the family is bound to, for good (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
    /// How the sign-in was authenticated (RFC 8176 `amr` values,
    /// space-separated); every access token of the family carries it.
    pub amr: Option<String>,
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

/// A refresh: replace the family's current token `presented` with `child`,
/// atomically.
#[derive(Debug, Clone)]
pub struct Rotate<'a> {
    /// The family (as read with the presented token).
    pub family_id: &'a str,
    /// SHA-256 of the token the client presented.
    pub presented: TokenHash,
    /// The authenticated client; a token of another client is not touched.
    pub client_id: &'a str,
    /// SHA-256 of the selector that `child` carries: the family's own, or
    /// for a family of tokens issued before constant state, its first one
    /// (a family's selector, once set, never changes).
    pub selector: TokenHash,
    /// SHA-256 of the new token.
    pub child: TokenHash,
    /// Idle expiry of the new token (capped at the family's expiry).
    pub child_expires_at: UnixTime,
    /// The new token sealed under a key derived from the presented one,
    /// kept as the previous token's successor so that a retry of the same
    /// refresh can be answered with the same new token. The store cannot
    /// open it.
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
    /// This caller replaced the current token; the family with its new
    /// current token is stored (committed) before this returns.
    Rotated(RefreshFamily),
    /// The presented token is not (or no longer) the family's current one:
    /// a retry, a lost race or a replay; the caller tells which from the
    /// family as it is now.
    Spent(RefreshFamily),
    /// The token is current but may not be used: expired, its family
    /// revoked or expired, or it belongs to another client. Nothing was
    /// written.
    Refused(Refusal),
    /// There is no such family.
    NotFound,
}

/// Why a current refresh token was refused.
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

/// Refresh families and their tokens.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Starts a family with its first token, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user or client does not exist or
    /// is not active, the password hash changed, or every sign-in of the
    /// user was ended since [`NewFamily::sessions_epoch`] was read;
    /// [`StoreError::Conflict`] when the selector is already taken.
    async fn start_family(&self, new: &NewFamily, now: UnixTime) -> Result<RefreshFamily, StoreError>;

    /// Replaces a family's current token with its child, as one atomic
    /// conditional write: under any concurrency exactly one caller
    /// presenting a given token gets [`Rotation::Rotated`]; the others get
    /// [`Rotation::Spent`] with the family as the winner left it.
    ///
    /// # Errors
    /// Only database failures; every refusal is a [`Rotation`] variant.
    async fn rotate_refresh(&self, rotate: &Rotate<'_>) -> Result<Rotation, StoreError>;

    /// The family a presented token belongs to.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no family has this key.
    async fn family_by_token(&self, key: &TokenKey) -> Result<RefreshFamily, StoreError>;

    /// The family a presented token belongs to, with the family's user and
    /// client, in one read (what every refresh needs before it rotates,
    /// including the client to authenticate the request with).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no family has this key.
    async fn refresh_context(&self, key: &TokenKey) -> Result<(RefreshFamily, crate::User, crate::Client), StoreError>;

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

    /// Deletes families that expired or were revoked before `cutoff`, and
    /// the rows of tokens issued before constant state that are past their
    /// idle expiry since `cutoff`. Returns how many families were deleted.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_families(&self, cutoff: UnixTime) -> Result<u64, StoreError>;
}
