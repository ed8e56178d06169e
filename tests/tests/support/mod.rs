//! Shared helpers: a server on a fresh database, clients and users, and
//! requests to the token endpoint.
//!
//! Tests talk HTTP through [`Http`] (`App::http`, [`http_client`]): it
//! checks every answer of the admin, account and token APIs against
//! `docs/openapi.json` ([`openapi`]).

#![allow(dead_code, unreachable_pub)]

pub mod dpop;
mod http;
pub mod lifecycle;
pub mod openapi;
pub mod smtp;
pub mod web;

pub use http::{Http, HttpResponse};

use std::net::IpAddr;
use std::time::Duration;

use portcullis::{Application, Settings};
use portcullis_store::testing::TestDb;
use portcullis_store::{ClientStore as _, NewClient, NewUser, UnixTime, UserStore as _};
use portcullis_token::TokenConfig;
use portcullis_token::password::{PasswordPolicy, Passwords};
use portcullis_token::secret::OpaqueSecret;
use serde_json::Value;

pub const ISSUER: &str = "http://127.0.0.1";
pub const PASSWORD: &str = "correct horse battery staple";
/// The real `portcullis` binary, built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis-e2e");

/// A running server on a test database.
pub struct App {
    pub base: String,
    pub http: Http,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts a server over `db`, with `tweak` applied to the defaults.
pub async fn spawn_with(db: &TestDb, tweak: impl FnOnce(&mut TokenConfig)) -> App {
    spawn_settings(&db.url, |s| tweak(&mut s.token)).await
}

/// Starts a server on the database at `url`, with `tweak` applied to the
/// default settings.
pub async fn spawn_settings(url: &str, tweak: impl FnOnce(&mut Settings)) -> App {
    let mut settings = Settings::new("127.0.0.1:0".parse().expect("addr"), url, ISSUER);
    settings.token.password.workers = 2;
    tweak(&mut settings);
    let app = Application::build(&settings).await.expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    App {
        base,
        http: http_client(None),
        _stop: stop,
    }
}

/// A server with the default settings.
pub async fn spawn(db: &TestDb) -> App {
    spawn_with(db, |_| {}).await
}

/// An HTTP client, optionally bound to a loopback source address.
pub fn http_client(source: Option<IpAddr>) -> Http {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64);
    if let Some(ip) = source {
        b = b.local_address(ip);
    }
    b.build().expect("client").into()
}

/// A confidential client `id` with secret; returns the secret.
pub async fn confidential(db: &TestDb, id: &str, grants: &str, scope: &str, default_scope: &str) -> String {
    let secret = OpaqueSecret::generate();
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: Some(secret.hash()),
        grant_types: portcullis_domain::GrantTypes::parse(grants).expect("grant types"),
        scope: portcullis_domain::Scopes::parse(scope).expect("scope"),
        default_scope: portcullis_domain::Scopes::parse(default_scope).expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
    secret.expose().to_owned()
}

/// A confidential client allowed to introspect; returns the secret.
pub async fn introspector(db: &TestDb, id: &str) -> String {
    let secret = OpaqueSecret::generate();
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: Some(secret.hash()),
        grant_types: portcullis_domain::GrantTypes::default(),
        scope: portcullis_domain::Scopes::empty(),
        default_scope: portcullis_domain::Scopes::empty(),
        introspect: true,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
    secret.expose().to_owned()
}

/// A public client `id`.
pub async fn public(db: &TestDb, id: &str, scope: &str) {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse(scope).expect("scope"),
        default_scope: portcullis_domain::Scopes::parse(scope).expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
}

/// A user with [`PASSWORD`]; returns the user id.
pub async fn user(db: &TestDb, name: &str, scope: &str) -> String {
    let hash = Passwords::new(&PasswordPolicy {
        workers: 1,
        ..PasswordPolicy::default()
    })
    .expect("policy")
    .hash(PASSWORD)
    .await
    .expect("hash");
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: Some(hash),
        scope: portcullis_domain::Scopes::parse(scope).expect("scope"),
        email: None,
        email_verified: false,
    };
    db.create_user(&new, UnixTime::now()).await.expect("user").id
}

/// The family a refresh token belongs to, read from the store by the key
/// the server finds it by.
pub async fn family_of(db: &TestDb, refresh_token: &str) -> portcullis_store::RefreshFamily {
    let key = portcullis_token::family_key(refresh_token).expect("a refresh token's form");
    portcullis_store::RefreshStore::family_by_token(&**db, &key)
        .await
        .expect("the token's family")
}

/// Form-encodes pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `application/x-www-form-urlencoded` encoding of one component.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl App {
    /// `POST /oauth/token` with a raw body.
    pub async fn post_raw(&self, http: &Http, body: String, basic: Option<(&str, &str)>) -> HttpResponse {
        let mut req = http
            .post(format!("{}/oauth/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            let creds = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
            req = req.header("authorization", format!("Basic {creds}"));
        }
        req.send().await.expect("request")
    }

    /// `POST /oauth/token` with form pairs.
    pub async fn token(&self, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> HttpResponse {
        self.post_raw(&self.http, form(pairs), basic).await
    }

    /// Signs `username` in with the public client `client_id`.
    pub async fn sign_in(&self, client_id: &str, username: &str) -> Value {
        let res = self
            .token(
                &[
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("username", username),
                    ("password", PASSWORD),
                ],
                None,
            )
            .await;
        assert_eq!(res.status(), 200, "sign-in");
        res.json().await.expect("json")
    }

    /// Signs `username` in and returns the refresh token.
    pub async fn sign_in_refresh_token(&self, client_id: &str, username: &str) -> String {
        self.sign_in(client_id, username).await["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned()
    }

    /// `POST` a form to `path` with optional Basic credentials.
    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> HttpResponse {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            let creds = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
            req = req.header("authorization", format!("Basic {creds}"));
        }
        req.send().await.expect("request")
    }

    /// Refreshes with the public client `client_id`.
    pub async fn refresh(&self, client_id: &str, token: &str) -> HttpResponse {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", token),
            ],
            None,
        )
        .await
    }
}

/// Asserts the RFC 6749 §5.1 cache headers.
pub fn assert_no_store(res: &HttpResponse) {
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
}

/// Asserts an OAuth error answer: status, `error`, cache headers, and a
/// short ASCII description.
pub async fn assert_error(res: HttpResponse, status: u16, error: &str) -> Value {
    assert_eq!(res.status(), status, "status for {error}");
    assert_no_store(&res);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let body: Value = res.json().await.expect("json error body");
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(description.is_ascii() && description.len() < 100, "{description}");
    body
}

/// Runs the `portcullis` binary on `db` with `args` and `stdin`: (success,
/// stdout, stderr).
pub fn cli(db: &TestDb, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        std::io::Write::write_all(&mut input, text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
