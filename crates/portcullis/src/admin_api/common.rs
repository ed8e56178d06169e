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
    /// How mail is sent; `None` when it is not configured.
    pub(crate) mailer: Option<Arc<crate::mail::Mailer>>,
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
// Answered with its status and the JSON body `{"error": code}`, with an
// `error_description` when the caller can act on it, and a machine-readable
// `reason` where a program can (a refused password, a taken name).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiError {
    #[serde(skip)]
    #[schema(ignore)]
    status: StatusCode,
    error: ApiErrorCode,
    /// A short sentence an app can show as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<String>,
    /// Why, for programs: `password_too_short`, `password_too_long`,
    /// `password_too_common`, `invalid_code`, `username_taken`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    reason: Option<&'static str>,
    /// `Retry-After` seconds of a 429.
    #[serde(skip)]
    #[schema(ignore)]
    retry_after: Option<u64>,
}

/// The admin and account APIs' error codes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiErrorCode {
    InvalidRequest,
    /// An unknown or revoked client (401).
    InvalidClient,
    /// The client does not allow this (sign-up; 403).
    AccessDenied,
    /// Mail is not configured on this server (501).
    MailNotConfigured,
    NotFound,
    UnsupportedAlgorithm,
    /// The name, id or email address is taken; or the client is revoked;
    /// or the second factor is not in a state that allows this.
    Conflict,
    /// The current password given to re-authenticate is wrong, or a
    /// one-time code is wrong, used or expired.
    InvalidGrant,
    /// Too many attempts: see `Retry-After`.
    TooManyRequests,
    TemporarilyUnavailable,
    ServerError,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: ApiErrorCode) -> Self {
        Self {
            status,
            error,
            error_description: None,
            reason: None,
            retry_after: None,
        }
    }

    /// 429: too many attempts; retry after `secs`.
    pub(crate) fn throttled(secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, ApiErrorCode::TooManyRequests)
            .explained("too_many_attempts", "Too many attempts; retry later.");
        e.retry_after = Some(secs);
        e
    }

    /// 501: no SMTP server is configured.
    pub(crate) fn mail_not_configured() -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, ApiErrorCode::MailNotConfigured).explained(
            "mail_not_configured",
            "This server cannot send mail (no SMTP server is configured).",
        )
    }

    /// 401: an unknown or revoked client.
    pub(crate) fn invalid_client() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ApiErrorCode::InvalidClient)
    }

    /// This error with a description.
    pub(crate) fn describe(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }

    /// The error with a sentence to show and a machine-readable reason.
    pub(crate) fn explained(mut self, reason: &'static str, description: impl Into<String>) -> Self {
        self.reason = Some(reason);
        self.error_description = Some(description.into());
        self
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
            // The store unreachable, or the server's hashing pool full
            // (password changes share it with sign-ins): a retry may pass.
            OpsError::Store(StoreError::Unavailable)
            | OpsError::Key(RotateError::Store(StoreError::Unavailable))
            | OpsError::Hashing => Self::new(StatusCode::SERVICE_UNAVAILABLE, ApiErrorCode::TemporarilyUnavailable),
            // The one shape of a refused password, on every route that
            // sets one.
            OpsError::Password(refused) => Self::invalid_request().explained(refused.reason(), refused.description()),
            // Fixed ASCII sentences: the name as typed may be any script.
            OpsError::UserExists(_) => Self::new(StatusCode::CONFLICT, ApiErrorCode::Conflict).explained(
                "username_taken",
                "This username is taken (usernames are compared ignoring case and width).",
            ),
            OpsError::EmailTaken => Self::new(StatusCode::CONFLICT, ApiErrorCode::Conflict)
                .explained("email_taken", "This email address belongs to another account."),
            OpsError::ClientExists(_) | OpsError::ClientRevoked(_) => {
                let description = e.to_string();
                Self::new(StatusCode::CONFLICT, ApiErrorCode::Conflict).describe(description)
            }
            OpsError::SignUpOff => Self::new(StatusCode::FORBIDDEN, ApiErrorCode::AccessDenied)
                .explained("sign_up_off", "This app does not allow sign-up."),
            OpsError::BadCode => Self::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidGrant)
                .explained("invalid_code", "The code is wrong or has expired."),
            OpsError::Mail(e) => {
                tracing::warn!(error = %e, "mail not sent");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, ApiErrorCode::TemporarilyUnavailable)
                    .explained("mail_failed", "The mail could not be sent; retry later.")
            }
            OpsError::WrongPassword => {
                Self::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidGrant).describe("the current password is wrong")
            }
            OpsError::Throttled(secs) => Self::throttled(secs),
            OpsError::MfaEnrolled => Self::new(StatusCode::CONFLICT, ApiErrorCode::Conflict).explained(
                "mfa_enrolled",
                "An authenticator is enrolled already; remove it before enrolling another.",
            ),
            OpsError::NoPendingTotp => Self::new(StatusCode::CONFLICT, ApiErrorCode::Conflict).explained(
                "no_pending_totp",
                "No authenticator is waiting for confirmation; start enrolment first.",
            ),
            OpsError::NoSecondFactor => Self::new(StatusCode::CONFLICT, ApiErrorCode::Conflict)
                .explained("mfa_not_enrolled", "This account has no second factor."),
            // Refused input, described.
            OpsError::PublicClient(_)
            | OpsError::DefaultScopeTooWide
            | OpsError::IntrospectNeedsSecret
            | OpsError::GraceTooLong(_)
            | OpsError::Invalid(_)
            | OpsError::NoSignIn => {
                let description = e.to_string();
                Self::invalid_request().describe(description)
            }
            other => {
                tracing::error!(error = %other, "admin API operation failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, ApiErrorCode::ServerError)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(&self)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs.max(1)),
            );
            return res;
        }
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

/// A JSON request body, refusing with the API's JSON error (400
/// `invalid_request`, described) rather than axum's plain text: a body
/// that is not JSON, not an object of the documented fields, or over the
/// body limit.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => {
                let description = match &rejection {
                    axum::extract::rejection::JsonRejection::MissingJsonContentType(_) => {
                        "the body must be JSON (Content-Type: application/json)".to_owned()
                    }
                    axum::extract::rejection::JsonRejection::JsonDataError(e) => {
                        // serde's message names the field; it holds no
                        // secret (values are not echoed).
                        ascii(&e.body_text())
                    }
                    _ => "the body is not a JSON object".to_owned(),
                };
                Err(ApiError::invalid_request().describe(description))
            }
        }
    }
}

/// `text` in printable ASCII, at most 200 characters.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .take(200)
        .collect()
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

/// A route whose write can collide with a taken name or address, or a
/// revoked client.
pub(crate) struct Conflict;

impl IntoResponses for Conflict {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[("409", "ApiConflict")])
    }
}

/// A route that checks the current password (throttled like sign-in).
pub(crate) struct Reauthentication;

impl IntoResponses for Reauthentication {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[("429", "ApiTooManyRequests")])
    }
}

/// A route that names a client, user or device.
pub(crate) struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[("404", "ApiNotFound")])
    }
}
