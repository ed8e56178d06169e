//! Errors of the token endpoint and their RFC 6749 §5.2 answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::StoreError;
use serde::Serialize;

/// Why a token request failed. Only [`GrantError::into_response`] turns it
/// into HTTP; descriptions are short fixed ASCII and reveal no internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The request is malformed (§5.2 `invalid_request`).
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed (§5.2 `invalid_client`, 401). `basic`
    /// says whether the client tried HTTP Basic, which requires a
    /// `WWW-Authenticate` challenge in the answer.
    #[error("invalid_client")]
    InvalidClient {
        /// The client used the `Authorization: Basic` header.
        basic: bool,
    },
    /// The grant (password or refresh token) is invalid (§5.2
    /// `invalid_grant`). One answer for every cause, so it tells nothing.
    #[error("invalid_grant")]
    InvalidGrant,
    /// The client may not use this grant type.
    #[error("unauthorized_client")]
    UnauthorizedClient,
    /// The authenticated client may not use this endpoint (403).
    #[error("forbidden")]
    NotPermitted,
    /// The grant type is not one this server supports.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The scope is malformed or exceeds what may be granted.
    #[error("invalid_scope")]
    InvalidScope,
    /// The `resource` is not one this server issues tokens for (RFC 8707).
    #[error("invalid_target")]
    InvalidTarget,
    /// Too many failed sign-ins: retry after this many seconds (429).
    #[error("throttled")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// The client's address has as many sign-ins in progress as it may
    /// (429, retry in a second).
    #[error("address busy")]
    AddressBusy,
    /// The database is unreachable: retry later (503).
    #[error("temporarily_unavailable")]
    Unavailable,
    /// Password hashing is saturated: retry later (503).
    #[error("saturated")]
    Saturated,
    /// The body is larger than the endpoint accepts (413).
    #[error("payload too large")]
    TooLarge,
    /// The body did not arrive in time (408).
    #[error("request timeout")]
    Timeout,
    /// An unexpected fault; logged where it happened (500).
    #[error("server_error")]
    Internal,
    /// The DPoP proof is missing where required, malformed, forged,
    /// stale, replayed, for another request, or by another key than the
    /// one the refresh token is bound to (RFC 9449 §5
    /// `invalid_dpop_proof`, 400).
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The proof lacks a current server nonce (RFC 9449 §8
    /// `use_dpop_nonce`, 400); the answer carries one in `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseDpopNonce,
    /// The password was right and the user has a second factor: the
    /// request must carry its code as `otp` (400 `invalid_grant` with
    /// `mfa_required: true`).
    #[error("invalid_grant: mfa required")]
    MfaRequired,
    /// The `otp` was wrong, expired or used already (400 `invalid_grant`
    /// with `mfa_required: true`). A failed sign-in.
    #[error("invalid_grant: wrong one-time code")]
    InvalidOtp,
    /// The client requires a second factor and the user has none.
    #[error("invalid_grant: second factor not enrolled")]
    MfaNotEnrolled,
    /// The `auth_session` is unknown, expired, used, out of tries or of
    /// another client (draft-ietf-oauth-first-party-apps `invalid_session`).
    #[error("invalid_session")]
    InvalidSession,
    /// The client is not a first-party client: it may not use the
    /// Authorization Challenge Endpoint (400 `unauthorized_client`).
    #[error("unauthorized_client: not first-party")]
    NotFirstParty,
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable => Self::Unavailable,
            other => {
                tracing::error!(error = %other, "store error at the token endpoint");
                Self::Internal
            }
        }
    }
}

/// An error answer (RFC 6749 §5.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "the grant is invalid, expired or revoked"}))]
pub(crate) struct OAuthError {
    /// The error code.
    pub(crate) error: ErrorCode,
    /// Short fixed English text; it reveals no internals.
    #[schema(value_type = String)]
    pub(crate) error_description: &'static str,
    /// Present (`true`) when the password was right and the sign-in needs
    /// the code of the user's second factor, sent as `otp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub(crate) mfa_required: Option<bool>,
}

/// The error codes the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    TemporarilyUnavailable,
    ServerError,
    /// A cookie endpoint's CSRF rules refused the request (403).
    AccessDenied,
    /// RFC 9449 §5.
    InvalidDpopProof,
    /// RFC 9449 §8.
    UseDpopNonce,
    /// draft-ietf-oauth-first-party-apps: the `auth_session` is invalid.
    InvalidSession,
    /// draft-ietf-oauth-first-party-apps: another step is needed.
    InsufficientAuthorization,
}

impl ErrorCode {
    /// The code as it appears in the answer (and in metrics labels).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::AccessDenied => "access_denied",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidSession => "invalid_session",
            Self::InsufficientAuthorization => "insufficient_authorization",
        }
    }
}

impl GrantError {
    /// A refusal of a sign-in for load or throttling (429, 503): "not
    /// now" rather than "no". (A database outage is not one: its 503 is
    /// answered at once.)
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::AddressBusy | Self::Saturated)
    }

    /// The RFC 6749 §5.2 `error` code of the answer.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.parts().1.as_str()
    }

    fn parts(&self) -> (StatusCode, ErrorCode, &'static str) {
        use ErrorCode as C;
        use StatusCode as S;
        match self {
            Self::InvalidRequest(why) => (S::BAD_REQUEST, C::InvalidRequest, why),
            Self::InvalidClient { .. } => (S::UNAUTHORIZED, C::InvalidClient, "client authentication failed"),
            Self::InvalidGrant => (
                S::BAD_REQUEST,
                C::InvalidGrant,
                "the grant is invalid, expired or revoked",
            ),
            Self::UnauthorizedClient => (
                S::BAD_REQUEST,
                C::UnauthorizedClient,
                "the client may not use this grant type",
            ),
            Self::UnsupportedGrantType => (S::BAD_REQUEST, C::UnsupportedGrantType, "unsupported grant_type"),
            Self::NotPermitted => (
                S::FORBIDDEN,
                C::UnauthorizedClient,
                "the client may not use this endpoint",
            ),
            Self::InvalidScope => (
                S::BAD_REQUEST,
                C::InvalidScope,
                "the requested scope is invalid or not allowed",
            ),
            Self::InvalidTarget => (S::BAD_REQUEST, C::InvalidTarget, "the requested resource is not known"),
            Self::Throttled { .. } => (
                S::TOO_MANY_REQUESTS,
                C::TemporarilyUnavailable,
                "too many failed attempts; retry later",
            ),
            Self::AddressBusy => (
                S::TOO_MANY_REQUESTS,
                C::TemporarilyUnavailable,
                "too many sign-ins at once from this address; retry later",
            ),
            Self::Unavailable | Self::Saturated => (
                S::SERVICE_UNAVAILABLE,
                C::TemporarilyUnavailable,
                "the server is busy; retry later",
            ),
            Self::TooLarge => (S::PAYLOAD_TOO_LARGE, C::InvalidRequest, "the request body is too large"),
            Self::Timeout => (
                S::REQUEST_TIMEOUT,
                C::InvalidRequest,
                "the request body was not sent in time",
            ),
            Self::Internal => (S::INTERNAL_SERVER_ERROR, C::ServerError, "internal error"),
            Self::InvalidDpopProof(why) => (S::BAD_REQUEST, C::InvalidDpopProof, why),
            Self::UseDpopNonce => (
                S::BAD_REQUEST,
                C::UseDpopNonce,
                "a DPoP nonce is required: sign a new proof with the one in DPoP-Nonce",
            ),
            Self::MfaRequired => (
                S::BAD_REQUEST,
                C::InvalidGrant,
                "a second factor is required: send the authenticator code (or a recovery code) as otp",
            ),
            Self::InvalidOtp => (
                S::BAD_REQUEST,
                C::InvalidGrant,
                "the one-time code is wrong, expired or was used already",
            ),
            Self::MfaNotEnrolled => (
                S::BAD_REQUEST,
                C::InvalidGrant,
                "this client requires a second factor: set up an authenticator first",
            ),
            Self::InvalidSession => (
                S::BAD_REQUEST,
                C::InvalidSession,
                "the auth_session is invalid, expired or used up: start again",
            ),
            Self::NotFirstParty => (
                S::BAD_REQUEST,
                C::UnauthorizedClient,
                "only first-party clients may use this endpoint",
            ),
        }
    }
}

impl IntoResponse for GrantError {
    fn into_response(self) -> Response {
        let (status, error, error_description) = self.parts();
        let mut res = (
            status,
            axum::Json(OAuthError {
                error,
                error_description,
                mfa_required: matches!(self, Self::MfaRequired | Self::InvalidOtp).then_some(true),
            }),
        )
            .into_response();
        let h = res.headers_mut();
        match self {
            Self::InvalidClient { basic: true } => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="portcullis""#),
                );
            }
            Self::Throttled { retry_after } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            }
            Self::Unavailable | Self::Saturated => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::AddressBusy => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        no_store(res)
    }
}

/// Marks an answer as not cacheable (RFC 6749 §5.1: `Cache-Control:
/// no-store` and `Pragma: no-cache` on every token-endpoint answer).
pub(crate) fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
