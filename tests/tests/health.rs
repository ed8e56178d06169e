//! Liveness and readiness, on SQLite and on PostgreSQL.

use std::time::Duration;

use portcullis::{Application, Settings};
use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;

/// A server on a random loopback port over `db`; stopped when the returned
/// sender is dropped or sent to.
async fn spawn_app(db: &TestDb) -> (String, tokio::sync::oneshot::Sender<()>) {
    let settings = Settings::new("127.0.0.1:0".parse().expect("addr"), &db.url, "http://127.0.0.1");
    let app = Application::build(&settings).await.expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn healthz_answers_ok_without_caching(db: &TestDb) {
    let (base, _stop) = spawn_app(db).await;
    let res = client().get(format!("{base}/healthz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

async fn readyz_answers_ready_when_the_database_answers(db: &TestDb) {
    let (base, _stop) = spawn_app(db).await;
    let res = client().get(format!("{base}/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers().get("retry-after").is_none());
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ready"}));
}

async fn the_server_migrates_its_database_on_start(db: &TestDb) {
    // `TestDb` migrated already; a second start must find nothing to do and
    // still serve.
    let (base, _stop) = spawn_app(db).await;
    let (_base2, _stop2) = spawn_app(db).await;
    let res = client().get(format!("{base}/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
}

async fn unknown_paths_are_404(db: &TestDb) {
    let (base, _stop) = spawn_app(db).await;
    let res = client()
        .get(format!("{base}/no/such/path"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);
}

on_both_backends!(
    healthz_answers_ok_without_caching,
    readyz_answers_ready_when_the_database_answers,
    the_server_migrates_its_database_on_start,
    unknown_paths_are_404,
);

/// PostgreSQL only: a SQLite file cannot be taken away from an open process
/// the same way. Dropping the database under the running server makes
/// readiness fail with 503 + Retry-After while liveness stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_database_is_gone_and_healthz_does_not() {
    let Some(db) = TestDb::postgres().await else { return };
    let (base, _stop) = spawn_app(&db).await;
    let url = db.url.clone();
    db.finish().await; // DROP DATABASE … WITH (FORCE): every connection is cut
    let res = client().get(format!("{base}/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    assert!(!body.to_string().contains(&url), "no database URL in the answer");
    let res = client().get(format!("{base}/healthz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
}

/// RFC 6749 §3.2: the token endpoint needs TLS. Plain HTTP on a public
/// address is refused unless a TLS-terminating proxy is declared.
#[tokio::test]
async fn plain_http_on_a_public_address_is_refused_without_a_tls_proxy() {
    let db = TestDb::sqlite().await;
    let mut settings = Settings::new("0.0.0.0:0".parse().expect("addr"), &db.url, "http://127.0.0.1");
    let err = Application::build(&settings).await.err().expect("refused");
    assert!(err.to_string().contains("refusing to serve plain HTTP"), "{err}");
    settings.behind_tls_proxy = true;
    assert!(Application::build(&settings).await.is_ok());
    db.finish().await;
}
