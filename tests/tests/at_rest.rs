//! What is protected at rest: the database files are the owner's alone,
//! and signing keys are stored encrypted under a key-encryption key
//! (KEK) when one is configured. The real binary, as an operator runs it;
//! the KEK scenarios on SQLite and on PostgreSQL.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use portcullis_store::testing::TestDb;
use portcullis_store::{AuditStore as _, KeyStore as _, on_both_backends};
use portcullis_token::keys::{Kek, kek};
use portcullis_token::secret::OpaqueSecret;
use serde_json::Value;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis-e2e");

fn portcullis(url: &str, args: &[&str], kek_file: Option<&Path>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("PORTCULLIS_DATABASE_URL", url)
        .env_remove("PORTCULLIS_KEY_ENCRYPTION_KEY_FILE")
        .env("RUST_LOG", "info");
    if let Some(f) = kek_file {
        cmd.env("PORTCULLIS_KEY_ENCRYPTION_KEY_FILE", f);
    }
    cmd
}

fn run(url: &str, args: &[&str], kek_file: Option<&Path>) -> Output {
    portcullis(url, args, kek_file).output().expect("run")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A new random KEK in base64, written to `dir/name`.
fn kek_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", OpaqueSecret::generate().expose())).expect("write kek");
    path
}

/// `serve` until it logs its address (then killed) or exits; the log.
fn serve_briefly(url: &str, extra: &[&str], kek_file: Option<&Path>) -> (bool, String) {
    use std::io::{BufRead as _, BufReader};
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1"];
    args.extend_from_slice(extra);
    let mut child = portcullis(url, &args, kek_file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut log = String::new();
    let mut started = false;
    for line in BufReader::new(child.stderr.take().expect("stderr"))
        .lines()
        .map_while(Result::ok)
    {
        log.push_str(&line);
        log.push('\n');
        if line.contains("address=") {
            started = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (started, log)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_database_and_its_wal_and_shm_are_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The directory itself is open to all, as a working directory often is.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let db = dir.path().join("fresh.db");
    let url = format!("sqlite://{}", db.display());
    // While the server runs, SQLite keeps its -wal and -shm beside the file.
    let app = spawn_settings(&url, |_| {}).await;
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        assert!(file.exists(), "{} exists", file.display());
        assert_eq!(mode(&file), 0o600, "{} is the owner's alone", file.display());
    }
    assert!(portcullis_store::exposed_files(portcullis_store::database_files(&url)).is_empty());
}

#[cfg(unix)]
#[test]
fn a_database_open_to_others_is_a_warning_and_with_strict_permissions_an_error() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("old.db");
    let url = format!("sqlite://{}", db.display());
    assert!(run(&url, &["migrate"], None).status.success());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (started, log) = serve_briefly(&url, &[], None);
    assert!(started, "a warning only: {log}");
    assert!(log.contains("is open to group or others (mode 644)"), "{log}");
    let (started, log) = serve_briefly(&url, &["--strict-permissions"], None);
    assert!(!started, "--strict-permissions refuses: {log}");
    assert!(log.contains("strict_permissions"), "{log}");
    assert!(log.contains(&db.display().to_string()), "names the file: {log}");
    // The configuration setting does the same as the flag.
    let out = portcullis(&url, &["serve", "--listen", "127.0.0.1:0"], None)
        .env("PORTCULLIS_STRICT_PERMISSIONS", "true")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("strict_permissions"), "{}", stderr(&out));
    // SQLite gives the -wal and -shm, while they exist (a clean close
    // removes them), the database file's mode 0644: they are named too,
    // until they are fixed with it.
    let exposed = portcullis_store::exposed_files(portcullis_store::database_files(&url));
    assert!(!exposed.is_empty(), "{exposed:?}");
    for (file, _) in exposed {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (started, log) = serve_briefly(&url, &["--strict-permissions"], None);
    assert!(started, "owner-only files start: {log}");
    assert!(!log.contains("open to group or others"), "{log}");
}

/// Every stored private key is encrypted (none is plain PKCS#8).
async fn all_encrypted(db: &TestDb) -> Vec<String> {
    let keys = db.signing_keys().await.expect("keys");
    for k in &keys {
        assert!(kek::is_sealed(&k.private_key), "{} is encrypted", k.kid);
        assert_ne!(k.private_key.first(), Some(&0x30), "{}: no DER at rest", k.kid);
    }
    keys.into_iter().map(|k| k.kid).collect()
}

async fn signing_keys_are_encrypted_under_the_kek_and_need_it_to_start(db: &TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (kek_file(dir.path(), "kek1"), kek_file(dir.path(), "kek2"));
    let url = db.url.as_str();
    // A key stored in plain, as before any KEK was configured.
    assert!(run(url, &["keys", "rotate"], None).status.success());
    let out = run(url, &["keys", "list"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("plaintext"));
    let out = run(url, &["keys", "encrypt"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("key_encryption_key_file"), "{}", stderr(&out));

    let out = run(url, &["keys", "encrypt", "--json"], Some(&first));
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["wrapped"].as_array().expect("list").len(), 1);
    // Run again: nothing left to do.
    let out = run(url, &["keys", "encrypt", "--json"], Some(&first));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json")["wrapped"],
        serde_json::json!([])
    );
    // No plaintext key is added beside encrypted ones.
    let out = run(url, &["keys", "rotate"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("key_encryption_key_file"), "{}", stderr(&out));
    // New keys are stored encrypted.
    assert!(
        run(url, &["keys", "rotate", "--alg", "EdDSA"], Some(&first))
            .status
            .success()
    );
    assert_eq!(all_encrypted(db).await.len(), 2);

    let (started, log) = serve_briefly(url, &[], None);
    assert!(!started);
    assert!(
        log.contains("key_encryption_key_file") && log.contains("PORTCULLIS_KEY_ENCRYPTION_KEY_FILE"),
        "{log}"
    );
    let (started, log) = serve_briefly(url, &[], Some(&first));
    assert!(started, "{log}");

    // A new KEK: every key moves to it; the old one no longer opens them.
    let out = run(
        url,
        &[
            "keys",
            "rewrap",
            "--new-key-file",
            second.to_str().expect("path"),
            "--json",
        ],
        Some(&first),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json")["wrapped"]
            .as_array()
            .expect("list")
            .len(),
        2
    );
    all_encrypted(db).await;
    let (started, log) = serve_briefly(url, &[], Some(&first));
    assert!(!started && log.contains("does not decrypt"), "{log}");
    let (started, log) = serve_briefly(url, &[], Some(&second));
    assert!(started, "{log}");
    let wraps = db.audit_events(None, 50).await.expect("audit");
    let wraps: Vec<_> = wraps.iter().filter(|e| e.action == "keys.wrap").collect();
    assert_eq!(wraps.len(), 3, "one row per key and wrap: {wraps:?}");
    assert!(wraps.iter().all(|e| e.actor.as_deref() == Some("cli")));
}

async fn a_server_with_a_kek_signs_with_its_encrypted_key(db: &TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = Kek::from_file(&kek_file(dir.path(), "kek")).expect("kek");
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_settings(&db.url, |s| s.token.key_encryption_key = Some(kek)).await;
    // The first key, created at start, is stored encrypted.
    assert_eq!(all_encrypted(db).await.len(), 1);
    let at = app.sign_in("mobile", "alice").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let res = app
        .http
        .get(format!("{}/account/v1/me", app.base))
        .bearer_auth(&at)
        .send()
        .await
        .expect("me");
    assert_eq!(res.status(), 200, "a token signed with the decrypted key verifies");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let jwks: Value = app
        .http
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 1);
    assert!(jwks["keys"][0].get("d").is_none());
}

on_both_backends!(
    signing_keys_are_encrypted_under_the_kek_and_need_it_to_start,
    a_server_with_a_kek_signs_with_its_encrypted_key,
);
