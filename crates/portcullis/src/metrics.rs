//! Prometheus metrics at `GET /metrics` (text exposition format).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `portcullis_http_requests_total` | counter | `path` (matched route), `status` |
//! | `portcullis_http_request_duration_seconds` | histogram | `path` |
//! | `portcullis_grants_total` | counter | `grant_type`, `result` (`success` or the RFC 6749 error code) |
//! | `portcullis_sign_in_refusals_total` | counter | `reason`: `throttled`, `address_busy`, `saturated` |
//! | `portcullis_refresh_reuse_total` | counter | |
//! | `portcullis_hash_wait_seconds` | histogram | time a password hash waited for a thread |
//! | `portcullis_hash_pace_seconds` | histogram | time a hashing thread held back to keep sign-ins to their share beside refreshes |
//! | `portcullis_hash_places_in_use` | gauge | password hashes running or waiting |
//! | `portcullis_db_connections` | gauge | `pool`, `state` (`open`, `in_use`) |
//!
//! One recorder per process (the `metrics` facade is global); every
//! server in the process reports into it. Every counter and gauge above is
//! registered at zero when the recorder is installed ([`register`]), so
//! dashboards and alerts (`rate(portcullis_refresh_reuse_total[5m]) > 0`)
//! see each series from the first scrape, not from its first event.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use portcullis_store::SqlStore;
use portcullis_token::TokenService;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .map_or_else(
                    |_| PrometheusBuilder::new().build_recorder(),
                    PrometheusBuilder::build_recorder,
                );
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
            }
            register();
            handle
        })
        .clone()
}

/// Registers every series whose labels are known in advance at zero, with
/// its description: the sign-in refusals by reason, refresh-token reuse,
/// the grants' successes and the common refusals, the hashing gauge.
fn register() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("portcullis_http_requests_total", "Answers by matched route and status.");
    describe_histogram!(
        "portcullis_http_request_duration_seconds",
        "Answer latency by matched route."
    );
    describe_counter!(
        "portcullis_grants_total",
        "Token requests by grant type and result (success or the RFC 6749 error code)."
    );
    describe_counter!(
        "portcullis_sign_in_refusals_total",
        "Sign-ins refused for throttling or load (429, 503), by reason."
    );
    describe_counter!(
        "portcullis_refresh_reuse_total",
        "Spent refresh tokens presented again (their sign-in was revoked)."
    );
    describe_histogram!(
        "portcullis_hash_wait_seconds",
        "Time a password hash waited for a thread."
    );
    describe_histogram!(
        "portcullis_hash_pace_seconds",
        "Time a hashing thread held back between hashes to keep sign-ins to their share beside refreshes."
    );
    describe_gauge!("portcullis_hash_places_in_use", "Password hashes running or waiting.");
    describe_gauge!("portcullis_db_connections", "Database connections by pool and state.");
    for reason in ["throttled", "address_busy", "saturated"] {
        metrics::counter!("portcullis_sign_in_refusals_total", "reason" => reason).absolute(0);
    }
    metrics::counter!("portcullis_refresh_reuse_total").absolute(0);
    for grant_type in ["authorization_code", "password", "refresh_token"] {
        for result in ["success", "invalid_grant", "invalid_client"] {
            metrics::counter!("portcullis_grants_total", "grant_type" => grant_type, "result" => result).absolute(0);
        }
    }
    metrics::gauge!("portcullis_hash_places_in_use").set(0.0);
}

/// What `/metrics` reads at scrape time.
#[derive(Clone)]
pub(crate) struct Scrape {
    pub(crate) handle: PrometheusHandle,
    pub(crate) store: SqlStore,
    pub(crate) tokens: Arc<TokenService>,
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "The Prometheus text exposition format (see docs/operations.md).",
        content_type = "text/plain", body = String)),
)]
pub(crate) async fn render(State(s): State<Scrape>) -> Response {
    for (pool, open, in_use) in s.store.pool_stats() {
        metrics::gauge!("portcullis_db_connections", "pool" => pool, "state" => "open").set(f64::from(open));
        metrics::gauge!("portcullis_db_connections", "pool" => pool, "state" => "in_use").set(f64::from(in_use));
    }
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("portcullis_hash_places_in_use").set(s.tokens.hashing_in_use() as f64);
    let mut res = s.handle.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// Counts each answer and its latency by matched route and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("portcullis_http_requests_total", "path" => path.clone(), "status" => status).increment(1);
    metrics::histogram!("portcullis_http_request_duration_seconds", "path" => path)
        .record(started.elapsed().as_secs_f64());
    res
}
