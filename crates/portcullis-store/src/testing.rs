//! Test support (feature `testing`): a fresh, migrated database per test, on
//! SQLite or PostgreSQL, and [`on_both_backends!`](crate::on_both_backends)
//! to run one test body on each.
//!
//! PostgreSQL tests use the server at `PORTCULLIS_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`): each test creates its
//! own database there and drops it afterwards, so tests run in parallel.
//! A missing server fails the tests. Setting the variable to `skip` skips
//! them with a warning, except under `CI=true`, where it is an error.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::SqlStore;
use sqlx::Connection as _;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that exists for one test.
pub struct TestDb {
    /// The store on it.
    pub store: SqlStore,
    /// Its URL, to open it again (e.g. from a server under test).
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    ///
    /// # Panics
    /// When the file cannot be created or migrated.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
        let store = SqlStore::connect(&url).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        Self {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh database on the test PostgreSQL server; `None` only when
    /// PostgreSQL tests were explicitly skipped outside CI.
    ///
    /// # Panics
    /// When the server is unreachable (unless skipped), or under `CI=true`
    /// when skipped.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var("PORTCULLIS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        if admin_url == "skip" {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PORTCULLIS_TEST_POSTGRES_URL=skip is not allowed under CI=true: the PostgreSQL suite must run"
            );
            eprintln!("WARNING: PostgreSQL store tests skipped (PORTCULLIS_TEST_POSTGRES_URL=skip)");
            return None;
        }
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for the store tests and is not reachable at {admin_url}: {e}. \
                 Start it, point PORTCULLIS_TEST_POSTGRES_URL at one, or set it to `skip` outside CI."
            )
        });
        drop_stale_databases(&mut admin).await;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let name = format!("pct_{secs}_{}", uuid_simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let store = SqlStore::connect(&url).await.expect("open PostgreSQL");
        store.migrate().await.expect("migrate PostgreSQL");
        Some(Self {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// Closes the store and removes the database.
    ///
    /// # Panics
    /// When the PostgreSQL database cannot be dropped.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres { admin_url, name } => {
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("reconnect to PostgreSQL");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .expect("drop test database");
                admin.close().await.ok();
            }
        }
    }
}

impl std::ops::Deref for TestDb {
    type Target = SqlStore;
    fn deref(&self) -> &SqlStore {
        &self.store
    }
}

/// Databases left behind by tests that panicked, more than an hour old.
async fn drop_stale_databases(admin: &mut sqlx::PgConnection) {
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

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn uuid_simple() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Runs each named `async fn(&SqlStore)` (or `async fn(&TestDb)`) on a fresh
/// SQLite database and on a fresh PostgreSQL database: one test body, two
/// backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::testing::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
