//! The CSRF rules of the cookie endpoints: a registered `Origin`, the
//! `X-Portcullis-CSRF: 1` header, and CORS preflights answered for
//! registered origins only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::{Client, ClientStatus};

use crate::error::{ErrorCode, OAuthError};
use crate::{GrantError, TokenService};

/// The header a page must send with every call (any value but empty is
/// refused unless it is `1`).
pub const CSRF_HEADER: &str = "x-portcullis-csrf";

/// Why a cookie endpoint refused a request before doing anything.
pub(super) enum Refusal {
    /// A CSRF rule failed (403).
    Forbidden(&'static str),
    /// The OAuth error of the grant or of client authentication.
    Grant(GrantError),
}

impl From<GrantError> for Refusal {
    fn from(e: GrantError) -> Self {
        Self::Grant(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                Json(OAuthError {
                    error: ErrorCode::AccessDenied,
                    error_description: why,
                    mfa_required: None,
                }),
            )
                .into_response(),
            Self::Grant(e) => e.into_response(),
        }
    }
}

/// The request's single `Origin`, lower-cased.
pub(super) fn origin(headers: &HeaderMap) -> Result<String, Refusal> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Refusal::Forbidden("the request must come from a registered origin"));
    };
    let value = value
        .to_str()
        .map_err(|_| Refusal::Forbidden("the request must come from a registered origin"))?;
    Ok(value.to_ascii_lowercase())
}

/// The CSRF header must be present and say `1`.
pub(super) fn csrf_header(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut values = headers.get_all(CSRF_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if v.as_bytes() == b"1" => Ok(()),
        _ => Err(Refusal::Forbidden("the X-Portcullis-CSRF: 1 header is required")),
    }
}

/// Whether `origin` is one of the client's.
pub(super) fn registered(client: &Client, origin: &str) -> bool {
    client.web_origins.contains(origin)
}

/// CORS for a registered origin: the page may read the answer and its
/// cookie is honoured (`credentials: "include"`).
pub(super) fn allow(mut res: Response, origin: &str) -> Response {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        // The page reads the DPoP nonce for its next proof.
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("dpop-nonce"),
        );
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    res
}

macro_rules! preflight_route {
    ($name:ident, $path:literal) => {
        #[utoipa::path(
            options,
            path = $path,
            tag = "web",
            summary = "CORS preflight",
            params(
                ("Origin" = String, Header, description = "The page's origin."),
                ("Access-Control-Request-Method" = String, Header, description = "`POST`."),
            ),
            responses(
                (status = 204, description = "The origin is registered for a browser client: the \
                    page may call with credentials, the `X-Portcullis-CSRF` header and a `DPoP` proof.", headers(
                    ("Access-Control-Allow-Origin" = String, description = "The origin."),
                    ("Access-Control-Allow-Credentials" = String, description = "`true`"),
                    ("Access-Control-Allow-Methods" = String, description = "`POST`"),
                    ("Access-Control-Allow-Headers" = String, description = "`content-type, x-portcullis-csrf, dpop`"),
                    ("Access-Control-Max-Age" = String, description = "`600`"),
                )),
                (status = 403, description = "Not a registered origin, or not a POST: no CORS headers, \
                    so the browser does not send the request. No body."),
                (status = 503, description = "The database is unreachable.", body = crate::error::OAuthError),
            ),
        )]
        pub(crate) async fn $name(svc: State<Arc<TokenService>>, headers: HeaderMap) -> Response {
            preflight(svc, headers).await
        }
    };
}

preflight_route!(preflight_sign_in, "/web/sign-in");
preflight_route!(preflight_refresh, "/web/refresh");
preflight_route!(preflight_sign_out, "/web/sign-out");

/// `OPTIONS /web/…`: the CORS preflight (Fetch standard §3.2.2). Answered
/// only for an origin some active web client registered; otherwise 403
/// without CORS headers, so the browser never sends the request.
pub(super) async fn preflight(State(svc): State<Arc<TokenService>>, headers: HeaderMap) -> Response {
    let Ok(origin) = origin(&headers) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let method_ok = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m.as_bytes() == Method::POST.as_str().as_bytes());
    // First-party deployments have a handful of clients: a scan is cheap.
    let known = match svc.store().list_clients().await {
        Ok(clients) => clients
            .iter()
            .any(|c| c.status == ClientStatus::Active && registered(c, &origin)),
        Err(e) => return GrantError::from(e).into_response(),
    };
    if !known || !method_ok {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-portcullis-csrf, dpop"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    allow(res, &origin)
}
