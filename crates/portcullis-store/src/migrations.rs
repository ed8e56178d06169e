//! The embedded migrations of each backend (`migrations/<backend>/` at the
//! top of the workspace), and [`SqlStore::migrate`], which runs them with
//! the steps SQL cannot do (the username keys, [`crate::usernames`]).

use sqlx::migrate::{Migrate as _, Migrator};

use crate::db::{Dialect, with_pool};
use crate::{MigrationError, SqlStore, StoreError};

#[cfg(feature = "sqlite")]
static SQLITE: Migrator = sqlx::migrate!("../../migrations/sqlite");

#[cfg(feature = "postgres")]
static POSTGRES: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The migration that creates the users table.
const USERS: i64 = 1;
/// The migration that adds `users.username_key`.
pub(crate) const USERNAME_KEYS: i64 = 6;

pub(crate) fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => &SQLITE,
        #[cfg(feature = "postgres")]
        Dialect::Postgres => &POSTGRES,
    }
}

impl SqlStore {
    /// Applies the embedded migrations that the database has not seen yet.
    /// Safe to run from several instances at once (the migrator takes a
    /// lock).
    ///
    /// Before adding username keys (migration 6) it checks every stored
    /// username against the rules of [`portcullis_domain::Username`] and
    /// stops, with nothing changed, when one is refused or several would
    /// become one account; after it, it fills in the key of every user
    /// that has none.
    ///
    /// # Errors
    /// [`MigrationError::Usernames`] listing the usernames that stop the
    /// upgrade; [`StoreError::Unavailable`] when the database cannot be
    /// reached, [`StoreError::Backend`] when a migration fails or the
    /// database holds a migration this build does not know.
    pub async fn migrate(&self) -> Result<(), MigrationError> {
        let applied = self.applied_migrations().await?;
        if applied.contains(&USERS) && !applied.contains(&USERNAME_KEYS) {
            crate::usernames::check_stored(self).await?;
        }
        with_pool!(&self.write, |c, d| migrator(d)
            .run(c)
            .await
            .map_err(StoreError::from)?);
        crate::usernames::fill_missing_keys(self).await
    }

    /// [`SqlStore::migrate`], returning the migrations it applied now
    /// (version and description, oldest first): empty when the database
    /// was up to date.
    ///
    /// # Errors
    /// As [`SqlStore::migrate`].
    pub async fn migrate_and_report(&self) -> Result<Vec<(i64, String)>, MigrationError> {
        let before = self.applied_migrations().await?;
        self.migrate().await?;
        Ok(with_pool!(&self.write, |_c, d| migrator(d)
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect()))
    }

    /// The versions of the migrations the database has applied.
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied = with_pool!(&self.write, |c| {
            let mut conn = c.acquire().await?;
            conn.ensure_migrations_table().await?;
            conn.list_applied_migrations().await?
        });
        Ok(applied.into_iter().map(|m| m.version).collect())
    }

    /// Applies the embedded migrations up to `version` only, as an earlier
    /// release would have: for tests of later migrations on older data.
    ///
    /// # Errors
    /// As [`SqlStore::migrate`], without the username steps.
    #[cfg(feature = "testing")]
    pub async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        with_pool!(&self.write, |c, d| {
            let all = migrator(d);
            let older = Migrator {
                migrations: all.iter().filter(|m| m.version <= version).cloned().collect(),
                ignore_missing: all.ignore_missing,
                locking: all.locking,
                no_tx: all.no_tx,
            };
            older.run(c).await?;
        });
        Ok(())
    }
}
