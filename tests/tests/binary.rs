//! The real binary, as an operator uses it: `migrate`, `serve` and its
//! shutdown, the admin commands, and a whole sign-in: create a client and a
//! user with the CLI, start `portcullis serve`, sign in, refresh, replay,
//! and check the access token against the served JWKS with an independent
//! JWT library. On SQLite and on PostgreSQL.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::Value;
use support::{BIN, cli};

const PASSWORD: &str = "a long and correct passphrase";

/// A running `portcullis serve`, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Sends SIGTERM and expects a clean exit within 10 s.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
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
}

fn portcullis(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env("RUST_LOG", "info");
    cmd
}

fn serve(db: &TestDb, extra: &[&str]) -> (Server, String) {
    let mut cmd = portcullis(&["serve", "--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1"]);
    cmd.args(extra).env("PORTCULLIS_DATABASE_URL", &db.url);
    start(cmd)
}

/// Spawns a `serve` command and waits for the address it logs.
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

async fn token(http: &support::Http, base: &str, body: &str) -> (u16, Value) {
    let res = http
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["cache-control"], "no-store");
    (res.status().as_u16(), res.json().await.expect("json"))
}

async fn an_operator_signs_a_user_in_and_refreshes_with_the_real_binary(db: &TestDb) {
    let (ok, out, err) = cli(
        db,
        &[
            "client",
            "create",
            "--name",
            "Mobile app",
            "--public",
            "--scope",
            "read write",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let client: Value = serde_json::from_str(&out).expect("client JSON");
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["client_name"], "Mobile app");
    assert!(client.get("client_secret").is_none());
    let client_id = client["client_id"].as_str().expect("client_id").to_owned();

    let (ok, _, err) = cli(
        db,
        &["user", "create", "alice", "--password-stdin", "--scope", "read write"],
        Some(PASSWORD),
    );
    assert!(ok, "{err}");

    let (_server, base) = serve(db, &["--refresh-retry-window", "0", "--refresh-race-grace", "0"]);
    let http: support::Http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .into();
    let pw = PASSWORD.replace(' ', "+");
    let (status, body) = token(
        &http,
        &base,
        &format!("grant_type=password&client_id={client_id}&username=alice&password={pw}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().expect("access").to_owned();
    let first = body["refresh_token"].as_str().expect("refresh").to_owned();

    let mut current = first.clone();
    for _ in 0..3 {
        let (status, body) = token(
            &http,
            &base,
            &format!("grant_type=refresh_token&client_id={client_id}&refresh_token={current}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let next = body["refresh_token"].as_str().expect("refresh").to_owned();
        assert_ne!(next, current);
        current = next;
    }
    let replay = format!("grant_type=refresh_token&client_id={client_id}&refresh_token={first}");
    let (status, body) = token(&http, &base, &replay).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let newest = format!("grant_type=refresh_token&client_id={client_id}&refresh_token={current}");
    let (status, body) = token(&http, &base, &newest).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the family died"
    );

    // The access token, checked against the served JWKS by jsonwebtoken.
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let header = jsonwebtoken::decode_header(&access).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("kid in JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&["http://127.0.0.1"]);
    v.set_audience(&["http://127.0.0.1"]);
    let claims = jsonwebtoken::decode::<Value>(&access, &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"), &v)
        .expect("signature and claims verify")
        .claims;
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "read write");
    for claim in ["sub", "jti", "sid", "iat", "nbf", "exp"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }
}

async fn the_cli_refuses_bad_input_with_a_clear_message(db: &TestDb) {
    let (ok, _, err) = cli(db, &["user", "create", "bob", "--password-stdin"], Some(PASSWORD));
    assert!(ok, "{err}");
    let (ok, _, err) = cli(db, &["user", "create", "bob", "--password-stdin"], Some(PASSWORD));
    assert!(!ok);
    assert!(err.contains("exists already"), "{err}");
    let (ok, _, err) = cli(
        db,
        &["user", "create", "carol", "--password-stdin", "--scope", "read\"x"],
        Some(PASSWORD),
    );
    assert!(!ok);
    assert!(err.contains("invalid scope"), "{err}");
    let (ok, _, err) = cli(db, &["user", "create", "dave", "--password-stdin"], Some(""));
    assert!(!ok);
    assert!(err.contains("password"), "{err}");
    let (ok, _, err) = cli(db, &["client", "create", "--name", "x", "--grant", "implicit"], None);
    assert!(!ok);
    assert!(err.contains("implicit"), "{err}");
    let (ok, out, err) = cli(
        db,
        &[
            "client",
            "create",
            "--name",
            "Web",
            "--client-id",
            "web",
            "--scope",
            "read",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let client: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(client["client_secret"].as_str().map(str::len), Some(43));
    let (ok, _, err) = cli(db, &["client", "create", "--name", "Web", "--client-id", "web"], None);
    assert!(!ok);
    assert!(err.contains("exists already"), "{err}");
}

#[tokio::test]
async fn migrate_creates_a_sqlite_database_ready_for_use() {
    use portcullis_store::{SqlStore, UserStore as _};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let out = portcullis(&["migrate", "--database", &url]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database is up to date"));
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

#[test]
fn serve_on_the_default_database_creates_portcullis_db_in_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = portcullis(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.current_dir(dir.path());
    let (server, _) = start(cmd);
    assert!(dir.path().join("portcullis.db").exists());
    server.terminate();
}

async fn serve_answers_health_checks_and_stops_on_sigterm(db: &TestDb) {
    let (server, base) = serve(db, &[]);
    let http: support::Http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .into();
    for path in ["/healthz", "/readyz"] {
        let res = http.get(format!("{base}{path}")).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }
    server.terminate();
}

/// `PORTCULLIS_LOG_FORMAT=json`: one JSON object per line; each request's
/// events carry its span (method, route, status, client), and no secret
/// appears anywhere.
async fn json_logs_carry_the_request_span_and_no_secret(db: &TestDb) {
    let (ok, out, err) = cli(
        db,
        &["client", "create", "--name", "web", "--scope", "read", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let client: Value = serde_json::from_str(&out).expect("client JSON");
    let id = client["client_id"].as_str().expect("id").to_owned();
    let secret = client["client_secret"].as_str().expect("secret").to_owned();
    let (ok, _, err) = cli(
        db,
        &["user", "create", "alice", "--password-stdin", "--scope", "read"],
        Some(PASSWORD),
    );
    assert!(ok, "{err}");

    let mut child = portcullis(&["serve", "--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1"])
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,portcullis=debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if let Some(addr) = v["fields"]["address"].as_str() {
                    let _ = tx.send(addr.to_owned());
                }
            }
            sink.lock().expect("lines").push(line);
        }
    });
    let server = Server(child);
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address");
    let http = support::Http::new();
    let (status, body) = password_grant(&http, &format!("http://{addr}"), (&id, &secret), "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().expect("rt").to_owned();
    let access = body["access_token"].as_str().expect("at").to_owned();
    server.terminate();

    let lines = lines.lock().expect("lines").clone();
    let mut answered = None;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for secret in [PASSWORD, secret.as_str(), refresh.as_str(), access.as_str()] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
        if v["fields"]["message"] == "answered" && v["span"]["path"] == "/oauth/token" {
            answered = Some(v);
        }
    }
    let answered = answered.expect("the token request was logged");
    assert_eq!(answered["span"]["method"], "POST");
    assert_eq!(answered["span"]["status"], 200);
    assert_eq!(answered["span"]["client_id"], id.as_str());
    assert!(answered["fields"]["latency_ms"].as_f64().is_some());
}

fn ok_json(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Value {
    let (ok, out, err) = cli(db, args, stdin);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

async fn password_grant(http: &support::Http, base: &str, client: (&str, &str), user: &str, pw: &str) -> (u16, Value) {
    let res = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(client.0, Some(client.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={user}&password={}",
            pw.replace(' ', "+")
        ))
        .send()
        .await
        .expect("request");
    (res.status().as_u16(), res.json().await.expect("json"))
}

async fn admin_commands_manage_clients_users_and_keys(db: &TestDb) {
    let web = ok_json(
        db,
        &[
            "client",
            "create",
            "--name",
            "Web",
            "--client-id",
            "web",
            "--scope",
            "read",
            "--json",
        ],
        None,
    );
    let old_secret = web["client_secret"].as_str().expect("secret").to_owned();
    ok_json(
        db,
        &[
            "user",
            "create",
            "alice",
            "--password-stdin",
            "--scope",
            "read",
            "--json",
        ],
        Some(PASSWORD),
    );
    ok_json(
        db,
        &["user", "create", "bob", "--password-stdin", "--scope", "read", "--json"],
        Some(PASSWORD),
    );
    let listed = ok_json(db, &["client", "list", "--json"], None);
    assert_eq!(listed[0]["client_id"], "web");
    assert!(
        listed[0].get("client_secret").is_none(),
        "a secret is shown only at creation"
    );
    let shown = ok_json(db, &["client", "show", "web", "--json"], None);
    assert_eq!(
        (shown["client_name"].as_str(), shown["status"].as_str()),
        (Some("Web"), Some("active"))
    );
    let users = ok_json(db, &["user", "list", "--json"], None);
    assert_eq!(users.as_array().expect("users").len(), 2);
    assert!(users[0].get("password_hash").is_none());

    let (_server, base) = serve(db, &[]);
    let http: support::Http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .into();
    let (status, alice) = password_grant(&http, &base, ("web", &old_secret), "alice", PASSWORD).await;
    assert_eq!(status, 200, "{alice}");
    let (status, bob) = password_grant(&http, &base, ("web", &old_secret), "bob", PASSWORD).await;
    assert_eq!(status, 200, "{bob}");

    // Secret rotation: the old secret stops working at once.
    let rotated = ok_json(
        db,
        &["client", "rotate-secret", "web", "--grace-period", "0", "--json"],
        None,
    );
    let new_secret = rotated["client_secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        password_grant(&http, &base, ("web", &old_secret), "alice", PASSWORD)
            .await
            .0,
        401
    );
    assert_eq!(
        password_grant(&http, &base, ("web", &new_secret), "alice", PASSWORD)
            .await
            .0,
        200
    );

    // Revoking a user's tokens ends their sign-ins, not others'.
    let refresh = |rt: String, secret: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/oauth/token"))
                .basic_auth("web", Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=refresh_token&refresh_token={rt}"))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    let revoked = ok_json(db, &["user", "revoke-tokens", "alice", "--json"], None);
    assert_eq!(revoked["sign_ins_ended"], 2);
    assert_eq!(
        refresh(alice["refresh_token"].as_str().expect("rt").into(), new_secret.clone()).await,
        400
    );
    assert_eq!(
        refresh(bob["refresh_token"].as_str().expect("rt").into(), new_secret.clone()).await,
        200
    );

    // A new password: the old one fails, the new one works at once.
    let (ok, _, err) = cli(
        db,
        &["user", "set-password", "alice", "--password-stdin"],
        Some("a brand new passphrase"),
    );
    assert!(ok, "{err}");
    assert_eq!(
        password_grant(&http, &base, ("web", &new_secret), "alice", PASSWORD)
            .await
            .0,
        400
    );
    assert_eq!(
        password_grant(&http, &base, ("web", &new_secret), "alice", "a brand new passphrase")
            .await
            .0,
        200
    );

    // Disabling: no more sign-ins.
    ok_json(db, &["user", "disable", "alice", "--json"], None);
    assert_eq!(
        password_grant(&http, &base, ("web", &new_secret), "alice", "a brand new passphrase")
            .await
            .0,
        400
    );

    // Revoking the client: invalid_client from now on.
    let revoked = ok_json(db, &["client", "revoke", "web", "--json"], None);
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(
        password_grant(&http, &base, ("web", &new_secret), "bob", PASSWORD)
            .await
            .0,
        401
    );

    // Keys: the server made one; a rotation adds one, published at once.
    let keys = ok_json(db, &["keys", "list", "--json"], None);
    assert_eq!(keys.as_array().expect("keys").len(), 1);
    let new_key = ok_json(db, &["keys", "rotate", "--alg", "EdDSA", "--json"], None);
    assert_eq!(new_key["alg"], "EdDSA");
    let keys = ok_json(db, &["keys", "list", "--json"], None);
    assert_eq!(keys.as_array().expect("keys").len(), 2);
    let (_second, base2) = serve(db, &["--key-publish-delay", "0"]);
    let jwks: Value = http
        .get(format!("{base2}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&new_key["kid"].as_str().expect("kid")) && kids.len() == 2,
        "{kids:?}"
    );

    // The audit log holds the admin actions and the sign-ins.
    let events = ok_json(db, &["audit", "--limit", "100", "--json"], None);
    let actions: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "client.rotate_secret",
        "user.revoke_tokens",
        "user.set_password",
        "user.disable",
        "client.revoke",
        "keys.rotate",
        "login.success",
        "login.failure",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }

    // Unknown names fail clearly.
    for args in [
        &["client", "show", "nope"][..],
        &["client", "revoke", "nope"],
        &["user", "disable", "nobody"],
    ] {
        let (ok, _, err) = cli(db, args, None);
        assert!(
            !ok && (err.contains("no client") || err.contains("no user")),
            "{args:?}: {err}"
        );
    }
    let (ok, _, err) = cli(
        db,
        &["client", "create", "--name", "M", "--public", "--client-id", "m"],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(db, &["client", "rotate-secret", "m"], None);
    assert!(!ok && err.contains("public"), "{err}");

    // A browser client: public, its origins normalised; a bad origin or a
    // missing one is refused.
    let (ok, out, err) = cli(
        db,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--client-id",
            "spa",
            "--web",
            "--origin",
            "https://App.Example:443/",
            "--origin",
            "http://127.0.0.1:5173",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        doc["web_origins"],
        serde_json::json!(["https://app.example", "http://127.0.0.1:5173"])
    );
    assert_eq!(doc["token_endpoint_auth_method"], "none");
    assert!(doc.get("client_secret").is_none());
    let (ok, out, _) = cli(db, &["client", "show", "spa", "--json"], None);
    assert!(ok);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["web_origins"][0], "https://app.example");
    for args in [
        &[
            "client",
            "create",
            "--name",
            "W",
            "--web",
            "--origin",
            "http://app.example",
        ][..],
        &[
            "client",
            "create",
            "--name",
            "W",
            "--web",
            "--origin",
            "https://app.example/login",
        ],
        &["client", "create", "--name", "W", "--web"],
        &["client", "create", "--name", "W", "--origin", "https://app.example"],
    ] {
        let (ok, _, err) = cli(db, args, None);
        assert!(
            !ok && (err.contains("origin") || err.contains("--web")),
            "{args:?}: {err}"
        );
    }
}

/// One audit rule for every front end: `actor` is `cli` or the acting
/// user, `client_id` the client they acted through (none for the CLI),
/// `subject` what was acted on. A client revoked from the CLI and one
/// revoked through the admin API give rows of the same shape; the CLI's
/// own creations are audited too.
async fn the_cli_and_the_api_audit_a_client_revoke_alike(db: &TestDb) {
    for (id, scope) in [("console", "portcullis:admin"), ("by-cli", "read"), ("by-api", "read")] {
        ok_json(
            db,
            &[
                "client",
                "create",
                "--name",
                id,
                "--client-id",
                id,
                "--public",
                "--scope",
                scope,
                "--json",
            ],
            None,
        );
    }
    let root = ok_json(
        db,
        &["user", "create", "root", "--password-stdin", "--admin", "--json"],
        Some(PASSWORD),
    );
    let root_id = root["id"].as_str().expect("id").to_owned();

    let (_server, base) = serve(db, &[]);
    let http = support::Http::new();
    let pw = PASSWORD.replace(' ', "+");
    let (status, body) = token(
        &http,
        &base,
        &format!("grant_type=password&client_id=console&username=root&password={pw}&scope=portcullis:admin"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let admin = body["access_token"].as_str().expect("at").to_owned();

    ok_json(db, &["client", "revoke", "by-cli", "--json"], None);
    let res = http
        .post(format!("{base}/admin/v1/clients/by-api/revoke"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);

    let events = ok_json(db, &["audit", "--limit", "100", "--json"], None);
    let row = |action: &str, subject: &str| {
        events
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["action"] == action && e["subject"] == subject)
            .unwrap_or_else(|| panic!("no {action} of {subject} in {events}"))
            .clone()
    };
    let by_cli = row("client.revoke", "by-cli");
    assert_eq!(
        (&by_cli["actor"], &by_cli["client_id"]),
        (&Value::from("cli"), &Value::Null),
        "the CLI acts through no client: {by_cli}"
    );
    let by_api = row("client.revoke", "by-api");
    assert_eq!(
        (&by_api["actor"], &by_api["client_id"]),
        (&Value::from(root_id.as_str()), &Value::from("console")),
        "the admin, and the client they acted through: {by_api}"
    );
    for (action, subject) in [
        ("client.create", "console"),
        ("client.create", "by-cli"),
        ("user.create", root_id.as_str()),
    ] {
        let created = row(action, subject);
        assert_eq!(
            (&created["actor"], &created["client_id"]),
            (&Value::from("cli"), &Value::Null)
        );
    }
}

on_both_backends!(
    the_cli_and_the_api_audit_a_client_revoke_alike,
    admin_commands_manage_clients_users_and_keys,
    serve_answers_health_checks_and_stops_on_sigterm,
    json_logs_carry_the_request_span_and_no_secret,
    an_operator_signs_a_user_in_and_refreshes_with_the_real_binary,
    the_cli_refuses_bad_input_with_a_clear_message,
);
