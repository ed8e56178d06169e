//! What a new operator meets in the first hour, with the real binary: the
//! issuer follows a loopback `--listen`, `migrate` says what it applied,
//! `config check` shows a password-less URL as written, every counter is
//! in `/metrics` from the start, `user` commands list only the flags they
//! use, `list` commands print a header row and times are RFC 3339, and the
//! CLI's `client create` and `user create --admin` are in the audit log.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::Value;
use support::{BIN, cli};

const PASSWORD: &str = "quartz lantern tidal mosaic";

fn portcullis(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_LISTEN")
        .env_remove("PORTCULLIS_ISSUER")
        .env("RUST_LOG", "info");
    cmd
}

/// Runs a command to its end: (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run portcullis");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `portcullis serve`, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `serve` and waits (30 s at most) for the address it logs.
fn start(mut cmd: Command) -> (Server, String) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("address=").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address");
    (Server(child), format!("http://{addr}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && s.bytes().filter(u8::is_ascii_digit).count() == 14
}

#[tokio::test]
async fn the_default_issuer_follows_a_loopback_listen_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = portcullis(&["serve", "--listen", &listen]);
    cmd.current_dir(dir.path());
    let (_server, base) = start(cmd);
    assert_eq!(base, format!("http://{listen}"));
    let http = support::http_client(None);
    let meta: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["issuer"], format!("http://{listen}"), "{meta}");
    assert_eq!(meta["token_endpoint"], format!("http://{listen}/oauth/token"), "{meta}");

    // `config check` says so, and where the value came from.
    let (ok, out, err) = run(portcullis(&["config", "check", "--listen", &listen]).current_dir(dir.path()));
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "issuer = \"http://{listen}\"  # the listen address (--listen)"
        )),
        "{out}"
    );
    // An issuer that is set stays as set; the default listen address keeps
    // the default issuer.
    let (ok, out, err) = run(portcullis(&[
        "config",
        "check",
        "--listen",
        &listen,
        "--issuer",
        "https://auth.example.com",
    ])
    .current_dir(dir.path()));
    assert!(ok, "{err}");
    assert!(
        out.contains("issuer = \"https://auth.example.com\"  # --issuer"),
        "{out}"
    );
    let (ok, out, err) = run(portcullis(&["config", "check"]).current_dir(dir.path()));
    assert!(ok, "{err}");
    assert!(out.contains("issuer = \"http://127.0.0.1:8080\"  # default"), "{out}");
}

#[test]
fn a_default_issuer_that_cannot_follow_the_listen_address_is_warned_about() {
    let (ok, out, err) = run(&mut portcullis(&[
        "config",
        "check",
        "--listen",
        "0.0.0.0:8080",
        "--behind-tls-proxy",
    ]));
    assert!(ok, "{err}");
    assert!(out.contains("issuer = \"http://127.0.0.1:8080\"  # default"), "{out}");
    assert!(err.contains("set `issuer`"), "a warning names the key: {err}");
}

#[test]
fn config_check_shows_a_url_without_a_password_as_written() {
    let (ok, out, err) =
        run(portcullis(&["config", "check"])
            .env("PORTCULLIS_DATABASE_URL", "postgres://postgres@db.internal:5432/auth"));
    assert!(ok, "{err}");
    assert!(
        out.contains("database_url = \"postgres://postgres@db.internal:5432/auth\""),
        "{out}"
    );
    let (ok, out, err) =
        run(portcullis(&["config", "check"]).env("PORTCULLIS_DATABASE_URL", "postgres://app:hunter2@db.internal/auth"));
    assert!(ok, "{err}");
    assert!(out.contains("postgres://app:***@db.internal/auth"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn user_commands_list_only_the_flags_they_use() {
    for command in [["user", "create"], ["user", "set-password"]] {
        let (ok, out, err) = run(&mut portcullis(&[command[0], command[1], "--help"]));
        assert!(ok, "{err}");
        for server_only in ["--hash-queue", "--hash-workers", "--hash-per-address", "--listen"] {
            assert!(
                !out.contains(server_only),
                "{command:?} --help lists {server_only}:\n{out}"
            );
        }
        assert!(out.contains("--argon2-memory-kib"), "{out}");
    }
    let (ok, out, err) = run(&mut portcullis(&["serve", "--help"]));
    assert!(ok, "{err}");
    for flag in ["--hash-queue", "--hash-workers", "--argon2-memory-kib"] {
        assert!(out.contains(flag), "serve --help lacks {flag}");
    }
}

async fn a_fresh_server_reports_every_counter_at_zero(db: &TestDb) {
    let mut cmd = portcullis(&["serve", "--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1"]);
    cmd.env("PORTCULLIS_DATABASE_URL", &db.url);
    let (_server, base) = start(cmd);
    let body = support::http_client(None)
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    for series in [
        "portcullis_refresh_reuse_total 0",
        "portcullis_sign_in_refusals_total{reason=\"throttled\"} 0",
        "portcullis_sign_in_refusals_total{reason=\"address_busy\"} 0",
        "portcullis_sign_in_refusals_total{reason=\"saturated\"} 0",
        "portcullis_grants_total{grant_type=\"password\",result=\"success\"} 0",
        "portcullis_grants_total{grant_type=\"refresh_token\",result=\"invalid_grant\"} 0",
        "portcullis_hash_places_in_use 0",
    ] {
        assert!(
            body.lines().any(|l| l == series),
            "no `{series}` before any event:\n{body}"
        );
    }
    assert!(body.contains("# HELP portcullis_refresh_reuse_total"), "{body}");
}

async fn lists_print_a_header_and_utc_times_and_creations_are_audited(db: &TestDb) {
    let ok = |args: &[&str], stdin: Option<&str>| {
        let (ok, out, err) = cli(db, args, stdin);
        assert!(ok, "{args:?}: {err}");
        out
    };
    ok(
        &[
            "client",
            "create",
            "--name",
            "Mobile app",
            "--public",
            "--client-id",
            "mobile",
        ],
        None,
    );
    ok(
        &[
            "client",
            "create",
            "--name",
            "Billing",
            "--client-id",
            "billing",
            "--introspect",
        ],
        None,
    );
    ok(
        &["user", "create", "root", "--admin", "--password-stdin"],
        Some(PASSWORD),
    );
    // The first key signs at once (there is no other); the second waits
    // for the publication delay.
    ok(&["keys", "rotate"], None);
    let second = ok(&["keys", "rotate"], None);
    assert!(second.contains("published now, signs from "), "{second}");

    let clients = ok(&["client", "list"], None);
    let lines: Vec<&str> = clients.lines().collect();
    assert!(lines[0].starts_with("CLIENT_ID  "), "{clients}");
    for (id, kind) in [("mobile", "public"), ("billing", "confidential")] {
        let row = lines.iter().find(|l| l.starts_with(id)).expect(id);
        assert_eq!(row.split_whitespace().nth(1), Some(kind), "{clients}");
    }
    let users = ok(&["user", "list"], None);
    assert!(users.starts_with("USERNAME  "), "{users}");
    assert!(users.lines().nth(1).is_some_and(|l| l.starts_with("root ")), "{users}");

    let keys = ok(&["keys", "list"], None);
    let lines: Vec<&str> = keys.lines().collect();
    assert!(lines[0].starts_with("KID  "), "{keys}");
    assert_eq!(lines.len(), 3, "a header and two keys: {keys}");
    assert!(lines.iter().any(|l| l.contains("  signing  ")), "one key signs: {keys}");
    assert!(
        lines.iter().any(|l| l.contains("  published, signs from ")),
        "the new key is published: {keys}"
    );
    for line in &lines[1..] {
        assert!(
            line.split_whitespace().any(is_rfc3339_utc),
            "an RFC 3339 time in {line:?}"
        );
    }

    let audit = ok(&["audit"], None);
    let lines: Vec<&str> = audit.lines().collect();
    assert!(lines[0].starts_with("ID  TIME (UTC)  "), "{audit}");
    for line in &lines[1..] {
        let time = line.split_whitespace().nth(1).expect("a time");
        assert!(is_rfc3339_utc(time), "{time:?} in {audit}");
    }
    for (action, subject) in [
        ("client.create", "client Mobile app"),
        ("client.create", "client Billing"),
        ("user.create", "user root"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(action) && l.contains("command line") && l.contains(subject)),
            "{action} of {subject} by the command line:\n{audit}"
        );
    }
    // The JSON keeps ids: the CLI acts as `cli`, the subject is the user's id.
    let events: Value = serde_json::from_str(&ok(&["audit", "--json"], None)).expect("json");
    let root: Value = serde_json::from_str(&ok(&["user", "list", "--json"], None)).expect("json");
    let root_id = &root[0]["id"];
    assert!(
        events
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "user.create"
                && e["actor"] == "cli"
                && &e["subject"] == root_id
                && e["subject_kind"] == "user"
                && e["subject_name"] == "root"),
        "{events}"
    );
}

on_both_backends!(
    a_fresh_server_reports_every_counter_at_zero,
    lists_print_a_header_and_utc_times_and_creations_are_audited,
);

mod fresh {
    use super::*;

    /// `migrate` on an empty database lists what it applied; run again,
    /// it says there was nothing to do.
    async fn migrate_says_what_it_applied(db: &TestDb) {
        let (ok, _, err) = run(portcullis(&["migrate"]).env("PORTCULLIS_DATABASE_URL", &db.url));
        assert!(ok, "{err}");
        assert!(err.contains("applied migration 1: initial"), "{err}");
        assert!(
            err.contains("migration(s) applied; the database is up to date"),
            "{err}"
        );
        assert!(!err.contains("no migration to apply"), "{err}");
        let (ok, _, err) = run(portcullis(&["migrate"]).env("PORTCULLIS_DATABASE_URL", &db.url));
        assert!(ok, "{err}");
        assert!(
            err.contains("the database is up to date (no migration to apply)"),
            "{err}"
        );
        assert!(!err.contains("applied migration"), "{err}");
    }

    on_both_backends!(migrated_to = 0; migrate_says_what_it_applied);
}
