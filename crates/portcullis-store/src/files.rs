//! A SQLite database's files on disk: created readable by the owner only,
//! and those readable or writable by anyone else named at start.
//!
//! The database holds the signing keys, password hashes and the audit log.
//! A file created under the usual umask (022) is readable by every local
//! account, so the database file is created with mode 0600 before SQLite
//! opens it. SQLite creates its `-wal` and `-shm` files with the mode of
//! the database file, so they are 0600 too.

use std::path::{Path, PathBuf};

/// The files of the SQLite database at `url`: the database and its
/// `-wal` and `-shm`. Empty for PostgreSQL, in-memory databases and URLs
/// that do not parse.
#[must_use]
pub fn database_files(url: &str) -> Vec<PathBuf> {
    let Some(db) = sqlite_path(url) else {
        return Vec::new();
    };
    let mut files = vec![db.clone()];
    for suffix in ["-wal", "-shm"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        files.push(name.into());
    }
    files
}

/// Those of `files` that exist and that group or others may read or
/// write, with their mode bits (`0o644`, say).
#[must_use]
pub fn exposed_files(files: impl IntoIterator<Item = PathBuf>) -> Vec<(PathBuf, u32)> {
    files
        .into_iter()
        .filter_map(|f| mode(&f).filter(|m| m & 0o077 != 0).map(|m| (f, m)))
        .collect()
}

/// The database file of a `sqlite:` URL, or `None` for other URLs and
/// in-memory databases.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    #[cfg(feature = "sqlite")]
    {
        use std::str::FromStr as _;
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        Some(opts.get_filename().to_path_buf())
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = url;
        None
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode(_: &Path) -> Option<u32> {
    None
}

/// Creates the (empty) database file of `url` with mode 0600 unless it
/// exists; SQLite takes an empty file for an empty database.
///
/// # Errors
/// When the file cannot be created (its directory is missing, say): the
/// caller reports it as SQLite would have.
pub(crate) fn create_private(url: &str) -> std::io::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
