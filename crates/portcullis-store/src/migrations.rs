//! The embedded migrations of each backend (`migrations/<backend>/` at the
//! top of the workspace), run by [`crate::SqlStore::migrate`].

use sqlx::migrate::Migrator;

use crate::db::Dialect;

#[cfg(feature = "sqlite")]
static SQLITE: Migrator = sqlx::migrate!("../../migrations/sqlite");

#[cfg(feature = "postgres")]
static POSTGRES: Migrator = sqlx::migrate!("../../migrations/postgres");

pub(crate) fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => &SQLITE,
        #[cfg(feature = "postgres")]
        Dialect::Postgres => &POSTGRES,
    }
}
