//! What every admin and account route shares: the state, the JSON error,
//! extractors that refuse with it, and the documented error responses.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use portcullis_store::{SqlStore, StoreError};
use portcullis_token::TokenService;
use portcullis_token::keys::RotateError;
use portcullis_verify::AccessTokenClaims;
use serde::Serialize;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

use crate::ops::{Actor, OpsError};

/// The state of the admin and account routes.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) store: SqlStore,
    pub(crate) tokens: Arc<TokenService>,
}

/// A group of routes.
pub(crate) type Routes = Router<Api>;

/// The admin acting with a verified admin token.
pub(crate) fn admin(claims: &AccessTokenClaims) -> Actor {
    Actor::Admin {
        user_id: claims.sub.clone(),
        client_id: claims.client_id.clone(),
    }
}

/// The user acting on their own account.
pub(crate) fn user(claims: &AccessTokenClaims) -> Actor {
    Actor::User {
        user_id: claims.sub.clone(),
        client_id: claims.client_id.clone(),
    }
}

/// An admin or account API error.
// Answered with its status and the JSON body `{"error": code}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiError {
    #[serde(skip)]
    #[schema(ignore)]
    status: StatusCode,
    error: ApiErrorCode,
}

/// The admin and account APIs' error codes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiErrorCode {
    InvalidRequest,
    NotFound,
    UnsupportedAlgorithm,
    TemporarilyUnavailable,
    ServerError,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: ApiErrorCode) -> Self {
        Self { status, error }
    }

    pub(crate) fn invalid_request() -> Self {
        Self::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRequest)
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ApiErrorCode::NotFound)
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::NoClient(_)
            | OpsError::NoUser(_)
            | OpsError::NoDevice
            | OpsError::Store(StoreError::NotFound) => Self::not_found(),
            OpsError::Store(StoreError::Unavailable) | OpsError::Key(RotateError::Store(StoreError::Unavailable)) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, ApiErrorCode::TemporarilyUnavailable)
            }
            // Refused input; no route here creates clients or users or
            // sets passwords yet, so none of these is reached today.
            OpsError::ClientExists(_)
            | OpsError::UserExists(_)
            | OpsError::PublicClient(_)
            | OpsError::DefaultScopeTooWide
            | OpsError::IntrospectNeedsSecret
            | OpsError::PasswordLength(_) => Self::invalid_request(),
            other => {
                tracing::error!(error = %other, "admin API operation failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, ApiErrorCode::ServerError)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let res = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            crate::http::retry_after(res)
        } else {
            res
        }
    }
}

/// A handler's answer.
pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

/// `axum::extract::Path`, refusing with the API's JSON error (400
/// `invalid_request`) rather than axum's plain text. A NUL byte (`%00`) is
/// refused too: no name or id has one, and PostgreSQL cannot compare text
/// with one (the lookup would fail as a database error, 500).
pub(crate) struct Path<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.path().contains("%00") {
            return Err(ApiError::invalid_request());
        }
        axum::extract::Path::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|_| ApiError::invalid_request())
    }
}

/// `axum::extract::Query`, refusing like [`Path`].
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::invalid_request());
        }
        axum::extract::Query::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|_| ApiError::invalid_request())
    }
}

/// A page of a listing: `?after=` or `?before=`, and `?limit=` (default
/// 100, at most 500).
#[derive(serde::Deserialize)]
pub(crate) struct Page {
    pub(crate) after: Option<String>,
    pub(crate) before: Option<i64>,
    limit: Option<u32>,
}

impl Page {
    pub(crate) fn limit(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, 500)
    }
}

fn refs(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    entries
        .iter()
        .map(|(status, name)| ((*status).to_owned(), RefOr::Ref(Ref::from_response_name(*name))))
        .collect()
}

/// The errors of every admin route: the token check's and the database's.
pub(crate) struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[
            ("400", "ApiBadRequest"),
            ("401", "ApiUnauthorized"),
            ("403", "ApiForbidden"),
            ("503", "ApiUnavailable"),
        ])
    }
}

/// The errors of every account route (no scope is required, so no 403).
pub(crate) struct AccountErrors;

impl IntoResponses for AccountErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[
            ("400", "ApiBadRequest"),
            ("401", "ApiUnauthorized"),
            ("503", "ApiUnavailable"),
        ])
    }
}

/// A route that names a client, user or device.
pub(crate) struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[("404", "ApiNotFound")])
    }
}
