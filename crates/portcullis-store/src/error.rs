//! The one error type of the store.

/// What can go wrong in the store, as callers need to tell it apart.
///
/// The variants carry no SQL text, no bound values and no driver message: the
/// cause is logged (at `error` level for backend faults) where it happens, and
/// callers only learn the class of failure. This keeps database internals out
/// of HTTP error bodies by construction.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The record asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The write would break a uniqueness rule (e.g. a taken username).
    #[error("conflict with an existing record")]
    Conflict,
    /// The database cannot be reached right now (pool timeout, connection
    /// refused, database shutting down); the request may be retried later.
    #[error("database unavailable")]
    Unavailable,
    /// The database answered with an error that is neither of the above, or
    /// returned data this version cannot read.
    #[error("database error")]
    Backend,
    /// The configuration names a database this build cannot open.
    #[error("unsupported database: {0}")]
    Unsupported(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &err {
            E::RowNotFound => Self::NotFound,
            E::Database(db) if db.is_unique_violation() => Self::Conflict,
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                tracing::warn!(error = %err, "database unavailable");
                Self::Unavailable
            }
            E::Database(db) if is_transient(db.as_ref()) => {
                tracing::warn!(error = %err, "database unavailable");
                Self::Unavailable
            }
            _ => {
                tracing::error!(error = %err, "database error");
                Self::Backend
            }
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(e) | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => e.into(),
            other => {
                tracing::error!(error = %other, "database migration failed");
                Self::Backend
            }
        }
    }
}

/// Errors that mean "the database is busy, starting or going away", as
/// opposed to "this statement is wrong".
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_READONLY (8),
        // SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_CANTOPEN (14), and their
        // extended codes (the low byte is the primary code).
        return db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14));
    }
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // Class 08 (connection exception), 53 (insufficient resources),
        // 57P01..57P03 (shutdown, cannot connect now), 40001 / 40P01
        // (serialization failure, deadlock detected).
        let c = pg.code();
        return c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") || c == "40001" || c == "40P01";
    }
    false
}

/// Why [`crate::SqlStore::migrate`] stopped.
///
/// Unlike [`StoreError`], [`MigrationError::Usernames`] names users (ids
/// and usernames): it is for the operator running the migration, never an
/// HTTP answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MigrationError {
    /// The database failed or refused a migration.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored usernames that the username rules refuse or that would become
    /// one account; nothing was changed.
    #[error(transparent)]
    Usernames(#[from] crate::UsernameConflicts),
}
