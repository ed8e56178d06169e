//! Portcullis storage: the records an OAuth 2.0 authorization server keeps
//! (users, clients, refresh-token families and tokens, signing keys, audit
//! events, throttle counters, the revocation feed) and one SQL
//! implementation of them that runs on SQLite (feature `sqlite`, default)
//! and PostgreSQL (feature `postgres`).
//!
//! Callers hold an `Arc<dyn Store>`; [`Store`] is the sum of narrow traits
//! ([`UserStore`], [`ClientStore`], [`RefreshStore`], [`KeyStore`],
//! [`AuditStore`], [`ThrottleStore`], [`RevocationStore`], [`LifecycleStore`],
//! [`CodeStore`], [`SecondFactorStore`], [`ChallengeStore`], [`HealthStore`]).
//! [`SqlStore`] implements them all:
//!
//! ```no_run
//! # async fn demo() -> Result<(), portcullis_store::MigrationError> {
//! use portcullis_store::{SqlStore, UserStore};
//! let store = SqlStore::connect("sqlite://portcullis.db").await?;
//! store.migrate().await?;
//! let users = store.list_users(None, 50).await?;
//! # Ok(()) }
//! ```
//!
//! Times are [`UnixTime`] seconds passed in by the caller, so expiry rules
//! are testable without waiting. Secrets are stored only as hashes
//! ([`TokenHash`]); no error carries SQL text ([`StoreError`]).

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("portcullis-store needs the `sqlite` or the `postgres` feature (or both)");

mod audit;
mod challenge;
mod clients;
mod codes;
mod db;
mod error;
mod files;
mod keys;
mod lifecycle;
mod mfa;
mod migrations;
mod refresh;
mod revocations;
mod throttle;
mod types;
mod usernames;
mod users;

#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;

pub use audit::{AuditEvent, AuditStore, NewAuditEvent};
pub use challenge::{AuthSession, AuthorizationCode, ChallengeGrant, ChallengeStore, CodeUse};
pub use clients::{Client, ClientChanges, ClientStatus, ClientStore, NewClient, PreviousSecret};
pub use codes::{CodePurpose, CodeStore, CodeTry, NewCode};
pub use db::{Backend, ConnectOptions, SqlStore};
pub use error::{MigrationError, StoreError};
pub use files::{database_files, exposed_files};
pub use keys::{KeyState, KeyStore, NewSigningKey, PrivateKeyChange, SigningKey};
pub use lifecycle::LifecycleStore;
pub use mfa::{SecondFactor, SecondFactorStore, StoredTotpSecret, Totp, TotpSecretChange};
pub use refresh::{
    CurrentToken, NewFamily, PreviousToken, RefreshFamily, RefreshStore, Refusal, RevokeReason, Rotate, Rotation,
    Sealed, SignInRecord, TokenKey,
};
pub use revocations::{RevocationEntry, RevocationKind, RevocationStore, UserUpdate};
pub use throttle::{ThrottleCount, ThrottleStore};
pub use types::{TokenHash, UnixTime};
pub use usernames::UsernameConflicts;
pub use users::{NewUser, User, UserChanges, UserStatus, UserStore};

/// Whether the database answers (for readiness probes).
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Runs a trivial query.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database does not answer.
    async fn ping(&self) -> Result<(), StoreError>;
}

#[async_trait]
impl HealthStore for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // The write pool: readiness means this instance can write. On
        // SQLite that is the writer connection plus the file's write lock
        // (another process holding it, or a read-only file, makes every
        // sign-in and refresh fail), taken and given back at once.
        match &self.write {
            #[cfg(feature = "sqlite")]
            db::Pool::Sqlite(pool) => {
                // Dropping the transaction rolls it back, even when the
                // probe is cancelled half-way.
                pool.begin_with("BEGIN IMMEDIATE").await?.rollback().await?;
            }
            #[cfg(feature = "postgres")]
            db::Pool::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }
}

/// Everything the server needs from storage.
pub trait Store:
    UserStore
    + ClientStore
    + RefreshStore
    + KeyStore
    + AuditStore
    + ThrottleStore
    + RevocationStore
    + LifecycleStore
    + CodeStore
    + SecondFactorStore
    + ChallengeStore
    + HealthStore
{
}

impl<T> Store for T where
    T: UserStore
        + ClientStore
        + RefreshStore
        + KeyStore
        + AuditStore
        + ThrottleStore
        + RevocationStore
        + LifecycleStore
        + CodeStore
        + SecondFactorStore
        + ChallengeStore
        + HealthStore
{
}
