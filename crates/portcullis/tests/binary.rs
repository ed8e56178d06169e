//! The real `portcullis` binary: `migrate` and `serve` as an operator runs
//! them.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_store::testing::TestDb;
use portcullis_store::{SqlStore, UserStore as _};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn portcullis(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env("RUST_LOG", "info");
    cmd
}

#[tokio::test]
async fn migrate_creates_a_sqlite_database_ready_for_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let out = portcullis(&["migrate", "--database", &url]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database is up to date"));
    assert!(dir.path().join("new.db").exists());
    let store = SqlStore::connect(&url).await.expect("open");
    assert!(store.list_users(None, 10).await.expect("tables exist").is_empty());
}

#[test]
fn migrate_takes_the_database_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("env.db").display());
    let out = portcullis(&["migrate"])
        .env("PORTCULLIS_DATABASE_URL", &url)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("env.db").exists());
}

#[test]
fn an_unsupported_database_url_fails_with_a_clear_message() {
    let out = portcullis(&["migrate", "--database", "mysql://root:hunter2@localhost/db"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sqlite: or postgres://"), "{err}");
    assert!(!err.contains("hunter2"), "the password is not echoed: {err}");
}

/// Starts `portcullis serve` on a free port; returns the child and base URL.
fn serve(database_url: &str) -> (Child, String) {
    let mut child = portcullis(&["serve", "--listen", "127.0.0.1:0", "--database", database_url])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
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
    (child, format!("http://{addr}"))
}

fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit after SIGTERM: {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn serve_answers_health_checks_and_stops_on_sigterm(db: &TestDb) {
    let (mut child, base) = serve(&db.url);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for path in ["/healthz", "/readyz"] {
        let res = http.get(format!("{base}{path}")).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }
    terminate(&mut child);
}

portcullis_store::on_both_backends!(serve_answers_health_checks_and_stops_on_sigterm);

#[test]
fn serve_on_the_default_database_creates_portcullis_db_in_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = portcullis(&["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let listening = stderr
        .lines()
        .map_while(Result::ok)
        .take(50)
        .any(|l| l.contains("listening"));
    assert!(listening, "the server started");
    assert!(dir.path().join("portcullis.db").exists());
    terminate(&mut child);
}
