//! The revocation feed over HTTP on both backends: private by default
//! (the feed secret, or an access token with `portcullis:feed` of a
//! resource servers' client), public only when configured so, never
//! stored by a cache; and a `portcullis-verify` verifier that follows it.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_store::testing::TestDb;
use portcullis_store::{ClientStore as _, NewClient, RevocationKind, RevocationStore as _, UnixTime, on_both_backends};
use serde_json::Value;
use support::*;

const FEED_SECRET: &str = "feed-secret.Seven-rough-otters-sing-beneath-the-orchard_R8tZ1cN6bH";
const CHALLENGE: &str = r#"Bearer realm="portcullis""#;

fn feed_url(app: &App) -> String {
    format!("{}/oauth/revocations", app.base)
}

/// `GET /oauth/revocations` with an optional bearer credential.
async fn get_feed(app: &App, bearer: Option<&str>) -> HttpResponse {
    let mut req = app.http.get(feed_url(app));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.expect("feed")
}

/// A refusal: the status, the RFC 6750 challenge, nothing cached, no body.
async fn assert_refused(res: HttpResponse, status: u16, challenge: &str) {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["www-authenticate"], challenge);
    assert_no_store(&res);
    assert!(res.bytes().await.expect("body").is_empty());
}

/// An answer with entries, and the `Cache-Control` it must carry.
async fn assert_entries(res: HttpResponse, cache_control: &str) -> Vec<Value> {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], cache_control);
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: Value = res.json().await.expect("json");
    body["entries"].as_array().expect("entries").clone()
}

/// The resource servers' client: confidential, allowed to introspect, and
/// allowed the feed scope for its service user. Returns its secret.
async fn feed_reader(db: &TestDb, id: &str, introspect: bool) -> String {
    let secret = portcullis_token::secret::OpaqueSecret::generate();
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: Some(secret.hash()),
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grants"),
        scope: portcullis_domain::Scopes::parse("portcullis:feed read").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect,
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

/// An access token of `user` through the confidential client `id`.
async fn token_of(app: &App, (id, secret): (&str, &str), user: &str, scope: &str) -> Value {
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", PASSWORD),
                ("scope", scope),
            ],
            Some((id, secret)),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

async fn one_revocation(db: &TestDb) {
    db.append_revocation(RevocationKind::User, "a-user-id", UnixTime::now())
        .await
        .expect("append");
}

async fn the_feed_needs_a_credential_by_default(db: &TestDb) {
    one_revocation(db).await;
    let app = spawn(db).await;
    // No credential: 401 with a bare challenge, and not a word of the feed.
    assert_refused(get_feed(&app, None).await, 401, CHALLENGE).await;
    // A made-up one, or Basic instead of Bearer (a malformed request,
    // RFC 6750 §3.1).
    let invalid = r#"Bearer realm="portcullis", error="invalid_token""#;
    assert_refused(get_feed(&app, Some("guessed")).await, 401, invalid).await;
    let res = app
        .http
        .get(feed_url(&app))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .expect("feed");
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="portcullis", error="invalid_request""#
    );
    assert_error(res, 400, "invalid_request").await;
    // A token in the query string is not a credential either.
    let res = app
        .http
        .get(format!("{}?access_token=x", feed_url(&app)))
        .send()
        .await
        .expect("feed");
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="portcullis", error="invalid_request""#
    );
    assert_error(res, 400, "invalid_request").await;
}

async fn the_feed_secret_reads_the_feed_privately(db: &TestDb) {
    one_revocation(db).await;
    let app = spawn_with(db, |c| c.revocation_feed_secret = Some(FEED_SECRET.into())).await;
    let entries = assert_entries(get_feed(&app, Some(FEED_SECRET)).await, "private, no-store").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "user");
    assert_refused(get_feed(&app, None).await, 401, CHALLENGE).await;
    let wrong = format!("{FEED_SECRET}x");
    let invalid = r#"Bearer realm="portcullis", error="invalid_token""#;
    assert_refused(get_feed(&app, Some(&wrong)).await, 401, invalid).await;
}

async fn a_feed_token_of_a_resource_servers_client_reads_the_feed(db: &TestDb) {
    one_revocation(db).await;
    let rs = feed_reader(db, "resource-server", true).await;
    let app_client = feed_reader(db, "mobile-app", false).await;
    user(db, "feed-reader", "portcullis:feed read").await;
    let app = spawn(db).await;
    let rs_creds = ("resource-server", rs.as_str());

    let body = token_of(&app, rs_creds, "feed-reader", "portcullis:feed").await;
    let at = body["access_token"].as_str().expect("at");
    let entries = assert_entries(get_feed(&app, Some(at)).await, "private, no-store").await;
    assert_eq!(entries.len(), 1);

    // The same client without the scope: 403, naming the scope.
    let insufficient = r#"Bearer realm="portcullis", error="insufficient_scope", scope="portcullis:feed""#;
    let read_only = token_of(&app, rs_creds, "feed-reader", "read").await;
    let res = get_feed(&app, read_only["access_token"].as_str()).await;
    assert_refused(res, 403, insufficient).await;
    // The scope, but through a client that is no resource servers' client.
    let other = token_of(&app, ("mobile-app", &app_client), "feed-reader", "portcullis:feed").await;
    let res = get_feed(&app, other["access_token"].as_str()).await;
    assert_refused(res, 403, insufficient).await;

    // Once its sign-in is revoked, the token reads nothing more.
    let rt = body["refresh_token"].as_str().expect("rt");
    let res = app.post_form("/oauth/revoke", &[("token", rt)], Some(rs_creds)).await;
    assert_eq!(res.status(), 200);
    let invalid = r#"Bearer realm="portcullis", error="invalid_token""#;
    assert_refused(get_feed(&app, Some(at)).await, 401, invalid).await;
}

async fn a_public_feed_answers_anyone_but_no_cache_keeps_it(db: &TestDb) {
    one_revocation(db).await;
    let app = spawn_with(db, |c| {
        c.revocation_feed_public = true;
        c.revocation_feed_secret = Some(FEED_SECRET.into());
    })
    .await;
    let entries = assert_entries(get_feed(&app, None).await, "no-store").await;
    assert_eq!(entries.len(), 1);
    // With the credential: private. A wrong one is still refused.
    assert_entries(get_feed(&app, Some(FEED_SECRET)).await, "private, no-store").await;
    let invalid = r#"Bearer realm="portcullis", error="invalid_token""#;
    assert_refused(get_feed(&app, Some("wrong")).await, 401, invalid).await;
}

async fn the_feed_pages_and_refuses_bad_cursors(db: &TestDb) {
    let app = spawn_with(db, |c| c.revocation_feed_secret = Some(FEED_SECRET.into())).await;
    for i in 0..5 {
        db.append_revocation(RevocationKind::Jti, &format!("j{i}"), UnixTime::now())
            .await
            .expect("append");
    }
    let page = |query: String| {
        app.http
            .get(format!("{}?{query}", feed_url(&app)))
            .bearer_auth(FEED_SECRET)
            .send()
    };
    let first = page("since=0&limit=2".into()).await.expect("feed");
    let entries = assert_entries(first, "private, no-store").await;
    let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["j0", "j1"]);
    let cursor = entries[1]["cursor"].as_i64().expect("cursor");
    let rest = page(format!("since={cursor}")).await.expect("feed");
    assert_eq!(assert_entries(rest, "private, no-store").await.len(), 3);
    assert_error(page("since=abc".into()).await.expect("feed"), 400, "invalid_request").await;
}

/// Polls until `verifier` refuses `token` (at most 5 s).
async fn wait_until_refused(verifier: &portcullis_verify::Verifier, token: &str) {
    let started = std::time::Instant::now();
    while verifier.verify(token).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still accepted 5 s after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Revokes the sign-in of `body` (a token response of the public client
/// `mobile`) and waits until `verifier` refuses its access token.
async fn revoke_and_wait(app: &App, verifier: &portcullis_verify::Verifier, body: &Value) {
    let at = body["access_token"].as_str().expect("at");
    verifier.verify(at).await.expect("valid before the revocation");
    let rt = body["refresh_token"].as_str().expect("rt");
    let res = app
        .post_form("/oauth/revoke", &[("client_id", "mobile"), ("token", rt)], None)
        .await;
    assert_eq!(res.status(), 200);
    wait_until_refused(verifier, at).await;
}

fn verifier(app: &App) -> portcullis_verify::VerifierBuilder {
    portcullis_verify::Verifier::builder(ISSUER)
        .audience(ISSUER)
        .jwks_url(format!("{}/.well-known/jwks.json", app.base))
        .revocation_feed(feed_url(app), Duration::from_millis(100))
}

/// A verifier given the feed secret follows the feed: a revoked sign-in's
/// access token is refused within a poll or two; so is a revoked client's.
async fn a_verifier_with_the_feed_secret_refuses_revoked_tokens_within_seconds(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| c.revocation_feed_secret = Some(FEED_SECRET.into())).await;
    let v = verifier(&app)
        .revocation_feed_credential(FEED_SECRET)
        .build()
        .expect("verifier");
    revoke_and_wait(&app, &v, &app.sign_in("mobile", "alice").await).await;
    let other = app.sign_in("mobile", "alice").await;
    let at = other["access_token"].as_str().expect("at");
    v.verify(at).await.expect("valid before the client is revoked");
    db.revoke_client("mobile", UnixTime::now())
        .await
        .expect("revoke client");
    wait_until_refused(&v, at).await;
}

/// A verifier whose credential is an access token with `portcullis:feed`,
/// asked for before every poll, follows the feed too.
async fn a_verifier_with_a_feed_token_follows_the_feed(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let rs = feed_reader(db, "resource-server", true).await;
    user(db, "feed-reader", "portcullis:feed").await;
    let app = spawn(db).await;
    let body = token_of(&app, ("resource-server", &rs), "feed-reader", "portcullis:feed").await;
    let feed_token = body["access_token"].as_str().expect("at").to_owned();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = asked.clone();
    let v = verifier(&app)
        .revocation_feed_credential_source(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let token = feed_token.clone();
            async move { Some(token) }
        })
        .build()
        .expect("verifier");
    revoke_and_wait(&app, &v, &app.sign_in("mobile", "alice").await).await;
    assert!(v.feed_synced());
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

/// Without a credential, a verifier never syncs with a private feed (and
/// logs why), rather than taking the refusal for an empty feed.
async fn a_verifier_without_a_credential_does_not_sync_a_private_feed(db: &TestDb) {
    let app = spawn(db).await;
    let v = verifier(&app).build().expect("verifier");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!v.feed_synced());
}

on_both_backends!(
    the_feed_needs_a_credential_by_default,
    the_feed_secret_reads_the_feed_privately,
    a_feed_token_of_a_resource_servers_client_reads_the_feed,
    a_public_feed_answers_anyone_but_no_cache_keeps_it,
    the_feed_pages_and_refuses_bad_cursors,
    a_verifier_with_the_feed_secret_refuses_revoked_tokens_within_seconds,
    a_verifier_with_a_feed_token_follows_the_feed,
    a_verifier_without_a_credential_does_not_sync_a_private_feed,
);

/// The real binary: the feed is private unless `revocation_feed_public`
/// (here from the environment) opens it, which is warned about at start.
#[tokio::test]
async fn opening_the_feed_to_the_public_is_warned_about_at_start() {
    let db = TestDb::sqlite().await;
    for public in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis-e2e"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1"])
            .env("PORTCULLIS_DATABASE_URL", &db.url)
            .env("PORTCULLIS_REVOCATION_FEED_PUBLIC", public.to_string())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped());
        let mut child = Server(cmd.spawn().expect("spawn"));
        let (log, base) = startup_log(&mut child.0);
        let warned = log
            .iter()
            .any(|l| l.contains("WARN") && l.contains("revocation feed is public"));
        assert_eq!(warned, public, "{log:#?}");
        let res = Http::new()
            .get(format!("{base}/oauth/revocations"))
            .send()
            .await
            .expect("feed");
        assert_eq!(res.status(), if public { 200 } else { 401 });
        assert_eq!(res.headers()["cache-control"], "no-store");
        drop(child);
    }
    db.finish().await;
}

/// The server process, stopped when dropped (also when an assertion fails).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's log up to the line naming its address, and that address.
fn startup_log(child: &mut std::process::Child) -> (Vec<String>, String) {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let addr = line.split("address=").nth(1).map(|a| a.trim().to_owned());
            seen.push(line);
            if let Some(addr) = addr {
                let _ = tx.send((seen.clone(), format!("http://{addr}")));
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address")
}
