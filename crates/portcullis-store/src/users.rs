//! Users: the resource owners who sign in with the password grant.

use std::fmt;

use async_trait::async_trait;

use crate::db::with_pool;
use crate::types::{new_id, text_enum};
use portcullis_domain::{Email, Scopes, Username};

use crate::{SqlStore, StoreError, UnixTime};

text_enum! {
    /// Whether a user may sign in.
    UserStatus {
        /// May sign in and refresh.
        Active => "active",
        /// Refused at sign-in and at refresh.
        Disabled => "disabled",
    }
}

/// A user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (UUIDv7), used as the token `sub`.
    pub id: String,
    /// The sign-in name, as typed when the user was created; unique by its
    /// [`key`](Username::key).
    pub username: Username,
    /// Argon2id hash in PHC string format; `None` for a user created
    /// without a password, who cannot sign in until one is set.
    pub password_hash: Option<String>,
    /// Whether the user may sign in.
    pub status: UserStatus,
    /// The scopes the user may be granted (RFC 6749 §3.3).
    pub scope: Scopes,
    /// The user's email address, unique by its key.
    pub email: Option<Email>,
    /// When the user proved they read mail sent to `email`.
    pub email_verified_at: Option<UnixTime>,
    /// When the user was created.
    pub created_at: UnixTime,
    /// When the user was last changed.
    pub updated_at: UnixTime,
    /// How many times every sign-in of the user was ended at once (see
    /// [`crate::RevocationStore::update_and_revoke_user`]); a sign-in
    /// passes the value it read to [`crate::NewFamily::sessions_epoch`].
    pub sessions_epoch: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("status", &self.status)
            .field("scope", &self.scope)
            .field("email", &self.email)
            .field("email_verified_at", &self.email_verified_at)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("sessions_epoch", &self.sessions_epoch)
            .finish()
    }
}

/// What is needed to create a user.
#[derive(Clone)]
pub struct NewUser {
    /// The unique sign-in name.
    pub username: Username,
    /// Argon2id hash in PHC string format, or `None`: the user must have
    /// a password set (by an admin or a reset) before signing in.
    pub password_hash: Option<String>,
    /// The scopes the user may be granted.
    pub scope: Scopes,
    /// An email address (unique by its key), or none.
    pub email: Option<Email>,
    /// Whether `email` counts as verified from the start (an admin vouches
    /// for it).
    pub email_verified: bool,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("scope", &self.scope)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// A change to a user's profile; `None` fields stay as they are. Status
/// changes that end sign-ins (disable) and password changes go through
/// [`crate::RevocationStore::update_and_revoke_user`] instead.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New scopes.
    pub scope: Option<Scopes>,
    /// A new address (`Some(None)` removes it). A changed address is not
    /// verified, unless `email_verified` says otherwise.
    pub email: Option<Option<Email>>,
    /// Marks the address verified (`true`, at `now`) or not.
    pub email_verified: Option<bool>,
    /// A new status (`Active` re-enables a disabled user).
    pub status: Option<UserStatus>,
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an active user.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the username's key is taken (by the
    /// same name in any case or width).
    async fn create_user(&self, new: &NewUser, now: UnixTime) -> Result<User, StoreError>;

    /// The user with this id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn user_by_id(&self, id: &str) -> Result<User, StoreError>;

    /// The user whose username has the key of `username` (`ALICE` finds
    /// `alice`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn user_by_username(&self, username: &Username) -> Result<User, StoreError>;

    /// Up to `limit` users ordered by username key, starting after the key
    /// `after`.
    ///
    /// # Errors
    /// Only database failures.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError>;

    /// Replaces the password hash only if it is still `old` (a rehash after
    /// sign-in must not undo a password change made meanwhile). Returns
    /// whether it was replaced.
    ///
    /// # Errors
    /// Only database failures.
    async fn rehash_user_password(&self, id: &str, old: &str, new: &str, now: UnixTime) -> Result<bool, StoreError>;

    /// The user whose address has the key of `email`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn user_by_email(&self, email: &Email) -> Result<User, StoreError>;

    /// Applies `changes` and returns the user as changed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user;
    /// [`StoreError::Conflict`] when the new address's key belongs to
    /// another user.
    async fn update_user(&self, id: &str, changes: &UserChanges, now: UnixTime) -> Result<User, StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    status: String,
    scope: String,
    created_at: i64,
    updated_at: i64,
    email: Option<String>,
    email_verified_at: Option<i64>,
    sessions_epoch: i64,
}

/// The stored form of "no password" (see migrations/*/0007): no PHC
/// string is empty.
const NO_PASSWORD: &str = "";

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            status: UserStatus::from_row(&r.status)?,
            id: r.id,
            username: Username::parse(&r.username).map_err(|_| crate::clients::stored("username"))?,
            password_hash: Some(r.password_hash).filter(|h| h.as_str() != NO_PASSWORD),
            scope: Scopes::parse(&r.scope).map_err(|_| crate::clients::stored("scope"))?,
            email: r
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|_| crate::clients::stored("email"))?,
            email_verified_at: r.email_verified_at.map(UnixTime),
            created_at: UnixTime(r.created_at),
            updated_at: UnixTime(r.updated_at),
            sessions_epoch: r.sessions_epoch,
        })
    }
}

const COLUMNS: &str =
    "id, username, password_hash, status, scope, created_at, updated_at, email, email_verified_at, sessions_epoch";
/// [`COLUMNS`] qualified by the alias `u`, for joins.
pub(crate) const COLUMNS_U: &str = "u.id, u.username, u.password_hash, u.status, u.scope, u.created_at, \
                                    u.updated_at, u.email, u.email_verified_at, u.sessions_epoch";
/// How many columns [`COLUMNS_U`] names.
pub(crate) const COLUMN_COUNT: usize = 10;

impl UserRow {
    /// The user whose columns start at `base` (in [`COLUMNS`] order).
    pub(crate) fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get(base)?,
            username: row.try_get(base + 1)?,
            password_hash: row.try_get(base + 2)?,
            status: row.try_get(base + 3)?,
            scope: row.try_get(base + 4)?,
            created_at: row.try_get(base + 5)?,
            updated_at: row.try_get(base + 6)?,
            email: row.try_get(base + 7)?,
            email_verified_at: row.try_get(base + 8)?,
            sessions_epoch: row.try_get(base + 9)?,
        })
    }
}

/// Fails with `NotFound` when an UPDATE touched no row.
pub(crate) fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, new: &NewUser, now: UnixTime) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (id, username, username_key, password_hash, status, scope, created_at, updated_at, \
             email, email_key, email_verified_at) \
             VALUES ($1, $2, $7, $3, $4, $5, $6, $6, $8, $9, $10) RETURNING {COLUMNS}"
        );
        let row: UserRow = with_pool!(&self.write, |c| {
            sqlx::query_as(&sql)
                .bind(new_id())
                .bind(new.username.as_str())
                .bind(new.password_hash.as_deref().unwrap_or(NO_PASSWORD))
                .bind(UserStatus::Active.as_str())
                .bind(new.scope.to_string())
                .bind(now.0)
                .bind(new.username.key())
                .bind(new.email.as_ref().map(Email::as_str))
                .bind(new.email.as_ref().map(Email::key))
                .bind(new.email.as_ref().filter(|_| new.email_verified).map(|_| now.0))
                .fetch_one(c)
                .await?
        });
        row.try_into()
    }

    async fn user_by_id(&self, id: &str) -> Result<User, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row: UserRow = with_pool!(&self.read, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await?);
        row.try_into()
    }

    async fn user_by_username(&self, username: &Username) -> Result<User, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username_key = $1");
        let row: UserRow = with_pool!(&self.read, |c| {
            sqlx::query_as(&sql).bind(username.key()).fetch_one(c).await?
        });
        row.try_into()
    }

    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username_key > $1 ORDER BY username_key LIMIT $2");
        let rows: Vec<UserRow> = with_pool!(&self.read, |c| {
            sqlx::query_as(&sql)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?
        });
        rows.into_iter().map(User::try_from).collect()
    }

    async fn rehash_user_password(&self, id: &str, old: &str, new: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4")
                .bind(new)
                .bind(now.0)
                .bind(id)
                .bind(old)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    async fn user_by_email(&self, email: &Email) -> Result<User, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE email_key = $1");
        let row: UserRow = with_pool!(&self.read, |c| sqlx::query_as(&sql)
            .bind(email.key())
            .fetch_one(c)
            .await?);
        row.try_into()
    }

    async fn update_user(&self, id: &str, changes: &UserChanges, now: UnixTime) -> Result<User, StoreError> {
        // $5 says whether the address changes at all ($3/$4 may be NULL to
        // remove it); $6 is the verification time to keep or set, decided
        // below from the current row.
        let new_email = changes.email.as_ref();
        let verified = match (changes.email_verified, new_email) {
            (Some(true), _) => VerifiedAt::Set(now.0),
            (Some(false), _) | (None, Some(_)) => VerifiedAt::Clear,
            (None, None) => VerifiedAt::Keep,
        };
        let sql = format!(
            "UPDATE users SET scope = COALESCE($2, scope), \
             email = CASE WHEN $5 THEN $3 ELSE email END, \
             email_key = CASE WHEN $5 THEN $4 ELSE email_key END, \
             email_verified_at = CASE WHEN $6 THEN $7 ELSE email_verified_at END, \
             status = COALESCE($8, status), updated_at = $9 \
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row: UserRow = with_pool!(&self.write, |c| {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(changes.scope.as_ref().map(ToString::to_string))
                .bind(new_email.and_then(|e| e.as_ref().map(Email::as_str)))
                .bind(new_email.and_then(|e| e.as_ref().map(Email::key)))
                .bind(new_email.is_some())
                .bind(!matches!(verified, VerifiedAt::Keep))
                .bind(match verified {
                    VerifiedAt::Set(t) => Some(t),
                    VerifiedAt::Clear | VerifiedAt::Keep => None,
                })
                .bind(changes.status.map(UserStatus::as_str))
                .bind(now.0)
                .fetch_one(c)
                .await?
        });
        row.try_into()
    }
}

/// What [`UserStore::update_user`] does to `email_verified_at`.
#[derive(Clone, Copy)]
enum VerifiedAt {
    Keep,
    Set(i64),
    Clear,
}
