//! The SQL store: one implementation for SQLite and PostgreSQL.
//!
//! Every method is written once. [`with_pool!`] expands a query body for each
//! compiled-in backend; the body only uses what both dialects share (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`, TEXT ids, integer epoch
//! seconds), and [`Dialect`] covers the few places where they differ.

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use crate::StoreError;
use crate::refresh::group_commit::{Committer, GroupCommit};

/// A connection pool of one of the compiled-in backends.
#[derive(Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server (or a compatible engine).
    Postgres,
}

/// The places where the two SQL dialects differ.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The advisory-lock key that serialises appends to the revocation feed.
#[cfg(feature = "postgres")]
const FEED_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c; // "portcull"

impl Dialect {
    /// A statement to run first in a transaction that appends to the
    /// revocation feed, or `None` when the backend needs none.
    ///
    /// PostgreSQL hands out identity values when a row is inserted, not when
    /// it commits, so two concurrent appends can commit out of order and a
    /// reader polling `cursor > N` could skip one for ever. Holding a
    /// transaction-scoped advisory lock across the append makes cursors
    /// commit in order. SQLite has a single writer, so it needs nothing.
    pub(crate) fn feed_lock(self) -> Option<&'static str> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite => None,
            #[cfg(feature = "postgres")]
            Self::Postgres => Some("SELECT pg_advisory_xact_lock($1)"),
        }
    }

    /// The argument of [`Dialect::feed_lock`].
    pub(crate) fn feed_lock_key(self) -> i64 {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite => 0,
            #[cfg(feature = "postgres")]
            Self::Postgres => FEED_LOCK_KEY,
        }
    }
}

/// Runs `$body` with `$c` bound to the concrete pool (`&SqlitePool` or
/// `&PgPool`) and `$d` to its [`Dialect`]. The body is compiled once per
/// backend, so it must only use SQL both dialects accept.
macro_rules! with_pool {
    ($pool:expr, |$c:ident, $d:ident| $body:expr) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            $crate::db::Pool::Sqlite($c) => {
                #[allow(unused_variables)]
                let $d = $crate::db::Dialect::Sqlite;
                $body
            }
            #[cfg(feature = "postgres")]
            $crate::db::Pool::Postgres($c) => {
                #[allow(unused_variables)]
                let $d = $crate::db::Dialect::Postgres;
                $body
            }
        }
    };
    ($pool:expr, |$c:ident| $body:expr) => {
        $crate::db::with_pool!($pool, |$c, _dialect| $body)
    };
}
pub(crate) use with_pool;

/// Runs `$body` with `$c` bound to a writer for a write that need not wait
/// for the disk: throttle counters and audit events written on their own.
/// On SQLite the transaction commits with `synchronous=NORMAL`: it survives
/// a crash of the process (the WAL is written), and a power loss can lose
/// the last such writes, never a token, a family or a revocation (those
/// commit with `FULL`, and each `FULL` commit also makes every earlier
/// write durable). Without it, a sign-in flood's three writes per failed
/// attempt, each waiting for an `fsync`, hold the single writer and delay
/// refreshes. PostgreSQL commits as usual.
macro_rules! with_relaxed_writer {
    ($pool:expr, |$c:ident| $body:expr) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            $crate::db::Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                let $c = &mut *conn;
                $body
            }
            #[cfg(feature = "postgres")]
            $crate::db::Pool::Postgres($c) => $body,
        }
    };
}
pub(crate) use with_relaxed_writer;

/// Tuning for [`SqlStore::connect_with`]. The defaults suit one instance.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Connections in the PostgreSQL pool, or SQLite reader connections.
    /// SQLite always has exactly one writer connection.
    pub max_connections: u32,
    /// How long a request waits for a free connection before the store
    /// answers [`StoreError::Unavailable`]. Kept short so that callers fail
    /// fast with 503 while the database is down.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another process (e.g. the CLI
    /// writing while the server runs) before giving up.
    pub busy_timeout: Duration,
    /// Commit refresh-token rotations that arrive together in one
    /// transaction (one log flush for the group instead of one each; on
    /// PostgreSQL also one statement and one round trip). Every caller
    /// still gets its answer only after its rotation committed. On by
    /// default.
    pub group_commit: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            // Together at most 3 s: a request that finds the database
            // down or locked fails with 503 within that.
            acquire_timeout: Duration::from_secs(2),
            busy_timeout: Duration::from_millis(500),
            group_commit: true,
        }
    }
}

/// The store on a SQL database; implements every trait of [`crate::Store`].
///
/// Cloning is cheap (the pools are reference-counted).
#[derive(Clone)]
pub struct SqlStore {
    /// Pool for statements that only read.
    pub(crate) read: Pool,
    /// Pool for statements that write. For SQLite this is a single
    /// connection: SQLite allows one writer at a time, and queueing in the
    /// pool is cheaper and fairer than retrying on `SQLITE_BUSY`.
    pub(crate) write: Pool,
    /// The writer task that group-commits rotations, if enabled.
    pub(crate) group_commit: Option<crate::refresh::group_commit::GroupCommit>,
}

impl fmt::Debug for SqlStore {
    // The URL may hold a database password: show the backend only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens the database named by `url` with default [`ConnectOptions`].
    ///
    /// `sqlite://FILE` (created if missing) or `postgres://…`.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] for a URL this build cannot open,
    /// [`StoreError::Unavailable`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// Opens the database named by `url`.
    ///
    /// SQLite is opened in WAL mode with `synchronous=FULL` (a refresh token
    /// handed out must survive a power loss), foreign keys on and a busy
    /// timeout.
    ///
    /// # Errors
    /// As [`SqlStore::connect`].
    pub async fn connect_with(url: &str, opts: &ConnectOptions) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            return Self::connect_sqlite(url, opts).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::connect_postgres(url, opts).await;
        }
        Err(StoreError::Unsupported(
            "the database URL must start with sqlite: or postgres://",
        ))
    }

    #[cfg(feature = "sqlite")]
    async fn connect_sqlite(url: &str, opts: &ConnectOptions) -> Result<Self, StoreError> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

        let conn = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::Unsupported("the SQLite URL cannot be parsed"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // Owner-only from the first byte; SQLite reports any failure.
        crate::files::create_private(url).ok();
        let mut write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            // Every use of the writer starts durable, whatever a relaxed
            // write before it (`with_relaxed_writer!`) set, even one
            // cancelled half-way.
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                    Ok(true)
                })
            });
        if in_memory {
            // An in-memory database lives as long as its connection: keep
            // the one connection open for the life of the pool.
            write = write.min_connections(1).idle_timeout(None).max_lifetime(None);
        }
        let write = write.connect_with(conn.clone()).await?;
        if in_memory {
            // Every connection to an in-memory database sees its own empty
            // database, so readers must share the writer's connection.
            let group_commit = opts
                .group_commit
                .then(|| GroupCommit::start(Committer::Sqlite(write.clone())));
            let pool = Pool::Sqlite(write);
            return Ok(Self {
                read: pool.clone(),
                write: pool,
                group_commit,
            });
        }
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(conn.read_only(true))
            .await?;
        let group_commit = opts
            .group_commit
            .then(|| GroupCommit::start(Committer::Sqlite(write.clone())));
        Ok(Self {
            read: Pool::Sqlite(read),
            write: Pool::Sqlite(write),
            group_commit,
        })
    }

    #[cfg(not(feature = "sqlite"))]
    async fn connect_sqlite(_: &str, _: &ConnectOptions) -> Result<Self, StoreError> {
        Err(StoreError::Unsupported(
            "this build has no SQLite support (feature `sqlite`)",
        ))
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str, opts: &ConnectOptions) -> Result<Self, StoreError> {
        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

        let conn = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Unsupported("the PostgreSQL URL cannot be parsed"))?
            .application_name("portcullis");
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(conn.clone())
            .await?;
        // The group-commit writer has a connection of its own: queued
        // behind the requests' reads in the shared pool, it would commit
        // later and in smaller groups.
        let group_commit = if opts.group_commit {
            // The writer runs only the rotation statements, each joining
            // the requests to `refresh_families` by primary key. A plan
            // made while the table was small (a fresh database, before
            // autovacuum's first analyze) scans the table instead, and
            // PostgreSQL keeps reusing it as the table grows; without
            // autovacuum at all, refreshes fell from ~7,000/s to ~600/s
            // after a few thousand sign-ins (docs/benchmarks.md; keeping
            // autovacuum on is the cure, this covers the first minutes).
            // No sequential scan is ever the right plan for a write of a
            // few rows by key.
            let writer = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .connect_lazy_with(conn.options([("enable_seqscan", "off")]));
            Some(GroupCommit::start(Committer::Postgres(writer)))
        } else {
            None
        };
        let pool = Pool::Postgres(pool);
        Ok(Self {
            read: pool.clone(),
            write: pool,
            group_commit,
        })
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_: &str, _: &ConnectOptions) -> Result<Self, StoreError> {
        Err(StoreError::Unsupported(
            "this build has no PostgreSQL support (feature `postgres`)",
        ))
    }

    /// Which database this store talks to.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match &self.write {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Connections of each pool: (pool, open, in use). `write` and `read`
    /// on SQLite; one `pool` on PostgreSQL.
    #[must_use]
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, u32)> {
        fn stats(p: &Pool) -> (u32, u32) {
            with_pool!(p, |c| {
                let idle = u32::try_from(c.num_idle()).unwrap_or(u32::MAX);
                (c.size(), c.size().saturating_sub(idle))
            })
        }
        match (&self.read, &self.write) {
            #[cfg(feature = "postgres")]
            (_, Pool::Postgres(_)) => {
                let (open, used) = stats(&self.write);
                vec![("pool", open, used)]
            }
            // Unreachable in a PostgreSQL-only build.
            #[allow(unreachable_patterns)]
            _ => {
                let (wo, wu) = stats(&self.write);
                let (ro, ru) = stats(&self.read);
                vec![("write", wo, wu), ("read", ro, ru)]
            }
        }
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        with_pool!(&self.read, |c| c.close().await);
        with_pool!(&self.write, |c| c.close().await);
        if let Some(g) = &self.group_commit {
            g.close().await;
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    async fn pragma(pool: &Pool, name: &str) -> String {
        let Pool::Sqlite(p) = pool else {
            panic!("sqlite expected")
        };
        use sqlx::Row as _;
        let row = sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(p)
            .await
            .expect("pragma");
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string()))
            .expect("value")
    }

    #[tokio::test]
    async fn sqlite_is_opened_with_wal_full_sync_foreign_keys_and_a_busy_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = SqlStore::connect(&url).await.expect("open");
        for pool in [&store.write, &store.read] {
            assert_eq!(pragma(pool, "journal_mode").await, "wal");
            assert_eq!(pragma(pool, "synchronous").await, "2", "2 is FULL");
            assert_eq!(pragma(pool, "foreign_keys").await, "1");
            assert_eq!(pragma(pool, "busy_timeout").await, "500");
        }
        let Pool::Sqlite(w) = &store.write else { panic!() };
        assert_eq!(w.options().get_max_connections(), 1, "one writer");
    }

    #[tokio::test]
    async fn a_relaxed_write_leaves_the_writer_durable() {
        use crate::{AuditStore as _, NewAuditEvent, ThrottleStore as _, UnixTime};
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = SqlStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        store.throttle_hit("k", 60, UnixTime(100)).await.expect("hit");
        let event = NewAuditEvent::new(portcullis_domain::AuditAction::LoginFailure);
        store.record_audit(&event, UnixTime(100)).await.expect("audit");
        // The next user of the writer (a rotation, a sign-in) commits FULL.
        assert_eq!(pragma(&store.write, "synchronous").await, "2", "2 is FULL");
        let Pool::Sqlite(w) = &store.write else { panic!() };
        let mut c = w.acquire().await.expect("writer");
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *c)
            .await
            .expect("relax");
        drop(c);
        assert_eq!(pragma(&store.write, "synchronous").await, "2", "reset on acquire");
    }
}
