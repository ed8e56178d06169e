//! Liveness and readiness probes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use portcullis_store::HealthStore;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::{no_store, retry_after};

/// How long readiness waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a readiness answer is reused.
const READY_CACHE: Duration = Duration::from_secs(1);

/// The store, and the last readiness check: probes share one check a
/// second, so a flood of them (the endpoint is public) cannot keep the
/// database's writer, which the check takes, from the requests.
struct ReadyCheck {
    store: Arc<dyn HealthStore>,
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

/// Liveness.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub(crate) struct Health {
    status: HealthStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HealthStatus {
    Ok,
}

/// Readiness.
#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    status: ReadyStatus,
    /// Why not ready: `database`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    reason: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReadyStatus {
    Ready,
    Unavailable,
}

/// `GET /healthz` and `GET /readyz`.
pub fn router(store: Arc<dyn HealthStore>) -> Router {
    let state = Arc::new(ReadyCheck {
        store,
        last: tokio::sync::Mutex::new(None),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Liveness: the process serves HTTP. It does not touch the database, so an
/// orchestrator does not restart healthy instances during a database outage.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The process serves HTTP.", body = Health,
        headers(("Cache-Control" = String, description = "`no-store`")))),
)]
async fn healthz() -> Response {
    let ok = Health {
        status: HealthStatus::Ok,
    };
    no_store((StatusCode::OK, Json(ok)).into_response())
}

/// Readiness: the database answers within [`READY_TIMEOUT`]; otherwise 503
/// with `Retry-After`, so a load balancer stops sending traffic here.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness",
    responses(
        (status = 200, description = "The database answers.", body = Readiness,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 503, description = "The database does not answer within 2 s.", body = Readiness,
            headers(
                ("Cache-Control" = String, description = "`no-store`"),
                ("Retry-After" = u32, description = "Seconds to wait before retrying (5)."),
            )),
    ),
)]
async fn readyz(State(state): State<Arc<ReadyCheck>>) -> Response {
    let ok = {
        // One check at a time; the others wait for it and take its answer.
        let mut last = state.last.lock().await;
        match *last {
            Some((at, ok)) if at.elapsed() < READY_CACHE => ok,
            _ => {
                let ok = matches!(
                    tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await,
                    Ok(Ok(()))
                );
                *last = Some((std::time::Instant::now(), ok));
                ok
            }
        }
    };
    if ok {
        let ready = Readiness {
            status: ReadyStatus::Ready,
            reason: None,
        };
        no_store((StatusCode::OK, Json(ready)).into_response())
    } else {
        let down = Readiness {
            status: ReadyStatus::Unavailable,
            reason: Some("database"),
        };
        no_store(retry_after(
            (StatusCode::SERVICE_UNAVAILABLE, Json(down)).into_response(),
        ))
    }
}
