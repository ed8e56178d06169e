//! `GET /metrics`: Prometheus text with requests, grants, refusals, reuse
//! detections, hashing and database pools, on SQLite and on PostgreSQL.
//! The recorder is per process, so values are checked as lower bounds.

mod support;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use support::*;

/// The value of the first sample of `name` carrying every label in `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_count_requests_grants_reuse_hashing_and_connections(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.refresh_retry_window = std::time::Duration::ZERO;
        c.refresh_race_grace = std::time::Duration::ZERO;
    })
    .await;
    let rt = app.sign_in_refresh_token("mobile", "alice").await;
    let wrong = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "mobile"),
                ("username", "alice"),
                ("password", "wrong"),
            ],
            None,
        )
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(app.refresh("mobile", &rt).await.status(), 200);
    assert_eq!(app.refresh("mobile", &rt).await.status(), 400, "reuse");

    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain"),
        "{:?}",
        res.headers()
    );
    let body = res.text().await.expect("text");
    let at_least_one = |name: &str, labels: &[&str]| {
        let v = sample(&body, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{body}"));
        assert!(v >= 1.0, "{name} {labels:?} = {v}");
    };
    at_least_one(
        "portcullis_grants_total",
        &[r#"grant_type="password""#, r#"result="success""#],
    );
    at_least_one(
        "portcullis_grants_total",
        &[r#"grant_type="password""#, r#"result="invalid_grant""#],
    );
    at_least_one(
        "portcullis_grants_total",
        &[r#"grant_type="refresh_token""#, r#"result="success""#],
    );
    at_least_one(
        "portcullis_grants_total",
        &[r#"grant_type="refresh_token""#, r#"result="invalid_grant""#],
    );
    at_least_one("portcullis_refresh_reuse_total", &[]);
    at_least_one(
        "portcullis_http_requests_total",
        &[r#"path="/oauth/token""#, r#"status="200""#],
    );
    at_least_one(
        "portcullis_http_request_duration_seconds_bucket",
        &[r#"path="/oauth/token""#, r#"le="+Inf""#],
    );
    at_least_one("portcullis_hash_wait_seconds_count", &[]);
    at_least_one("portcullis_db_connections", &[r#"state="open""#]);
    assert!(sample(&body, "portcullis_hash_places_in_use", &[]).is_some(), "{body}");
    // No secret or token value is a label.
    assert!(!body.contains(&rt), "a token in the metrics");
}

on_both_backends!(metrics_count_requests_grants_reuse_hashing_and_connections);
