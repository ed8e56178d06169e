//! Test support (feature `testing`): a fresh, migrated database per test, on
//! SQLite or PostgreSQL, and [`on_both_backends!`](crate::on_both_backends)
//! to run one test body on each.
//!
//! PostgreSQL tests use the server at `PORTCULLIS_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`): each test creates its
//! own database there and drops it afterwards, so tests run in parallel.
//! A missing server fails the tests. Setting the variable to `skip` skips
//! them with a warning, except under `CI=true`, where it is an error.
//!
//! [`TestingStore`] holds the store writes that only tests use.

use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::{ConnectOptions, SqlStore};

mod store;
pub use store::{LegacyFamily, LegacyToken, RefreshRowCounts, TestingStore};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Applies the migrations up to `version`, or all of them.
async fn migrate(store: &SqlStore, version: Option<i64>) {
    match version {
        None => store.migrate().await.expect("migrate"),
        Some(v) => store.migrate_to(v).await.expect("migrate to an earlier version"),
    }
}

/// A database that exists for one test.
pub struct TestDb {
    /// The store on it.
    pub store: SqlStore,
    /// Its URL, to open it again (e.g. from a server under test).
    pub url: String,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres { admin: Box<PgConnectOptions>, name: String },
}

/// Tests wait longer for a connection than the server does: a busy CI
/// machine must not turn contention tests into flakes.
fn test_options() -> ConnectOptions {
    ConnectOptions {
        acquire_timeout: Duration::from_secs(30),
        busy_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    }
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    ///
    /// # Panics
    /// When the file cannot be created or migrated.
    pub async fn sqlite() -> Self {
        Self::sqlite_at(None).await
    }

    /// A fresh SQLite file with no migration applied (see
    /// [`SqlStore::migrate_to`]).
    ///
    /// # Panics
    /// When the file cannot be created.
    pub async fn sqlite_unmigrated() -> Self {
        Self::sqlite_at(Some(0)).await
    }

    /// A fresh SQLite file with the migrations up to `version` applied
    /// (all of them for `None`).
    ///
    /// # Panics
    /// When the file cannot be created or migrated.
    pub async fn sqlite_at(version: Option<i64>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
        let store = SqlStore::connect_with(&url, &test_options())
            .await
            .expect("open SQLite");
        migrate(&store, version).await;
        Self {
            store,
            url,
            cleanup: Some(Cleanup::Sqlite(dir)),
        }
    }

    /// A fresh database on the test PostgreSQL server; `None` only when
    /// PostgreSQL tests were explicitly skipped outside CI.
    ///
    /// # Panics
    /// When the server is unreachable (unless skipped), or under `CI=true`
    /// when skipped.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_at(None).await
    }

    /// A fresh database on the test PostgreSQL server with no migration
    /// applied (see [`SqlStore::migrate_to`]); `None` as for
    /// [`TestDb::postgres`].
    ///
    /// # Panics
    /// As [`TestDb::postgres`].
    pub async fn postgres_unmigrated() -> Option<Self> {
        Self::postgres_at(Some(0)).await
    }

    /// A fresh PostgreSQL database with the migrations up to `version`
    /// applied (all of them for `None`); `None` as [`TestDb::postgres`].
    ///
    /// # Panics
    /// As [`TestDb::postgres`].
    pub async fn postgres_at(version: Option<i64>) -> Option<Self> {
        let admin_url = std::env::var("PORTCULLIS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        if admin_url == "skip" {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PORTCULLIS_TEST_POSTGRES_URL=skip is not allowed under CI=true: the PostgreSQL suite must run"
            );
            eprintln!("WARNING: PostgreSQL tests skipped (PORTCULLIS_TEST_POSTGRES_URL=skip)");
            return None;
        }
        let admin =
            PgConnectOptions::from_str(&admin_url).expect("PORTCULLIS_TEST_POSTGRES_URL is not a PostgreSQL URL");
        let mut conn = admin.connect().await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and is not reachable at {}:{}: {e}. \
                 Start it, point PORTCULLIS_TEST_POSTGRES_URL at one, or set it to `skip` outside CI.",
                admin.get_host(),
                admin.get_port()
            )
        });
        drop_stale_databases(&mut conn).await;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let name = format!("pct_{secs}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        let store = SqlStore::connect_with(&url, &test_options())
            .await
            .expect("open PostgreSQL");
        migrate(&store, version).await;
        Some(Self {
            store,
            url,
            cleanup: Some(Cleanup::Postgres {
                admin: Box::new(admin),
                name,
            }),
        })
    }

    /// The versions of the migrations the database has applied.
    ///
    /// # Panics
    /// When the database cannot be read.
    pub async fn applied_migrations(&self) -> Vec<i64> {
        self.store.applied_migrations().await.expect("applied migrations")
    }

    /// SQLite's `PRAGMA integrity_check`, on a connection of its own
    /// (`ok` when the file is sound); `None` on PostgreSQL.
    ///
    /// # Panics
    /// When the file cannot be opened or checked.
    pub async fn sqlite_integrity_check(&self) -> Option<String> {
        if !self.url.starts_with("sqlite:") {
            return None;
        }
        let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("open SQLite");
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&mut c)
            .await
            .expect("integrity_check");
        Some(rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n"))
    }

    /// Writes what earlier work left pending to the database files (a
    /// PostgreSQL `CHECKPOINT`, a SQLite WAL checkpoint), so that a
    /// measurement that follows is not charged for it.
    ///
    /// # Panics
    /// When the database refuses.
    pub async fn settle(&self) {
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("open SQLite");
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut c)
                .await
                .expect("checkpoint");
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.expect("open PostgreSQL");
            sqlx::query("CHECKPOINT").execute(&mut c).await.expect("checkpoint");
        }
    }

    /// Takes SQLite's write lock from a connection of its own, as another
    /// process holding the file would; writers of the store then fail
    /// until [`SqliteWriteLock::release`]. `None` on PostgreSQL.
    ///
    /// # Panics
    /// When the lock cannot be taken.
    pub async fn sqlite_write_lock(&self) -> Option<SqliteWriteLock> {
        if !self.url.starts_with("sqlite:") {
            return None;
        }
        let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("open SQLite");
        sqlx::query("PRAGMA busy_timeout = 30000")
            .execute(&mut c)
            .await
            .expect("busy_timeout");
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut c).await.expect("lock");
        Some(SqliteWriteLock(c))
    }

    /// How many rotations wait for the group-commit writer, not yet taken
    /// into a group (a test that needs several rotations in one group holds
    /// the writer with [`TestDb::hold_rotations`] and waits for them to
    /// queue). `None` with group commit off.
    #[must_use]
    pub fn queued_rotations(&self) -> Option<usize> {
        self.store.group_commit.as_ref().map(|g| g.queued())
    }

    /// Closes the store and removes the database.
    ///
    /// # Panics
    /// When the PostgreSQL database cannot be dropped.
    pub async fn finish(mut self) {
        self.store.close().await;
        match self.cleanup.take() {
            Some(Cleanup::Postgres { admin, name }) => drop_database(&admin, &name).await,
            Some(Cleanup::Sqlite(dir)) => drop(dir),
            None => {}
        }
    }

    /// Holds every rotation of the store back until
    /// [`RotationHold::release`], from a connection of its own: SQLite's
    /// write lock, or on PostgreSQL an `EXCLUSIVE` lock on the families
    /// (reads go on, writes wait).
    ///
    /// # Panics
    /// When the lock cannot be taken.
    pub async fn hold_rotations(&self) -> RotationHold {
        if let Some(lock) = self.sqlite_write_lock().await {
            return RotationHold::Sqlite(lock);
        }
        let mut c = sqlx::PgConnection::connect(&self.url).await.expect("open PostgreSQL");
        sqlx::query("BEGIN").execute(&mut c).await.expect("begin");
        sqlx::query("LOCK TABLE refresh_families IN EXCLUSIVE MODE")
            .execute(&mut c)
            .await
            .expect("lock");
        RotationHold::Postgres(c)
    }
}

/// Rotations held back by [`TestDb::hold_rotations`].
pub enum RotationHold {
    /// SQLite's write lock.
    Sqlite(SqliteWriteLock),
    /// A PostgreSQL transaction holding the families' lock.
    Postgres(sqlx::PgConnection),
}

impl RotationHold {
    /// Lets the rotations go.
    ///
    /// # Panics
    /// When the transaction cannot be ended.
    pub async fn release(self) {
        match self {
            Self::Sqlite(lock) => lock.release().await,
            Self::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.expect("unlock");
            }
        }
    }
}

/// SQLite's write lock, held by a connection outside the store.
pub struct SqliteWriteLock(sqlx::SqliteConnection);

impl SqliteWriteLock {
    /// Gives the lock back.
    ///
    /// # Panics
    /// When the transaction cannot be ended.
    pub async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.expect("unlock");
    }
}

impl Drop for TestDb {
    /// A test that panicked never reached [`TestDb::finish`]: drop its
    /// PostgreSQL database from a helper thread (the test's runtime may be
    /// shutting down).
    fn drop(&mut self) {
        if let Some(Cleanup::Postgres { admin, name }) = self.cleanup.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(drop_database(&admin, &name));
                }
            })
            .join();
        }
    }
}

impl std::ops::Deref for TestDb {
    type Target = SqlStore;
    fn deref(&self) -> &SqlStore {
        &self.store
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) {
    let mut conn = admin.connect().await.expect("reconnect to PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    conn.close().await.ok();
}

/// Databases left behind by killed test runs, more than an hour old.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let cutoff = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() - 3600;
    let names: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'pct\\_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for (name,) in names {
        let stale = name
            .split('_')
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|t| t < cutoff);
        if stale {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Runs each named `async fn(&SqlStore)` (or `async fn(&TestDb)`) on a fresh
/// SQLite database and on a fresh PostgreSQL database: one test body, two
/// backends.
///
/// `on_both_backends!(migrated_to = 4; name, …)` starts each database with
/// the migrations up to 4 only, for tests of a later migration.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@at None; $($name),*);
    };
    (migrated_to = $v:expr; $($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@at Some($v); $($name),*);
    };
    (@at $at:expr; $($name:ident),*) => {
        /// The migrations each test's database starts with (`None`: all).
        const ON_BOTH_BACKENDS_MIGRATED_TO: Option<i64> = $at;
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::testing::TestDb::sqlite_at(super::ON_BOTH_BACKENDS_MIGRATED_TO).await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::TestDb::postgres_at(super::ON_BOTH_BACKENDS_MIGRATED_TO).await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
