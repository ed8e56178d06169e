//! The HTTP edge every form endpoint shares: content type, body limit and
//! timeout, strict form parsing, client authentication, the caller's
//! address and the no-store headers.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, header};
use axum::response::Response;
use portcullis_store::Client;

use crate::client_auth;
use crate::error::no_store;
use crate::form::{Form, FormError};
use crate::{GrantError, TokenService};

/// Marks every answer of a route as not cacheable (a layer: it covers 405
/// and 413 answers too).
pub(crate) async fn no_store_layer(res: Response) -> Response {
    no_store(res)
}

/// The caller's address, from the request's connection info.
pub(crate) fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// A client-authenticated form request: the request head, its form and
/// the client. Shared by the token, revocation and introspection endpoints.
pub(crate) async fn client_request(svc: &TokenService, req: Request) -> Result<(Parts, Form, Client), GrantError> {
    let (parts, form) = form_request(svc, req).await?;
    let presented = client_auth::presented(&parts.headers, &form)?;
    let client = client_auth::authenticate(svc.store(), presented, None).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    Ok((parts, form, client))
}

/// The request head and its form (content type, size limit, strict parse).
pub(crate) async fn form_request(svc: &TokenService, req: Request) -> Result<(Parts, Form), GrantError> {
    let (parts, body) = req.into_parts();
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(GrantError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let cfg = svc.config();
    let body = tokio::time::timeout(cfg.body_timeout, read_limited(body, &parts.headers, cfg.max_body_bytes))
        .await
        .map_err(|_| GrantError::Timeout)??;
    let form = Form::parse(&body).map_err(|e| match e {
        FormError::Repeated => GrantError::InvalidRequest("a parameter is repeated"),
        FormError::Malformed => GrantError::InvalidRequest("the body is not valid form encoding"),
        FormError::TooMany => GrantError::InvalidRequest("too many parameters"),
    })?;
    Ok((parts, form))
}

/// Bodies up to this size that are too long to read get an OAuth error
/// (400 `invalid_request`) a client can show, e.g. for a pasted 1 MiB
/// password; larger ones are 413.
pub(crate) const OVERSIZE_LIMIT: u64 = 2 * 1024 * 1024;

/// Reads the body, keeping at most `limit` bytes in memory:
/// - a declared length over [`OVERSIZE_LIMIT`] is refused (413) before
///   anything is read; a body without one, as soon as it passes it;
/// - a body over `limit` (up to [`OVERSIZE_LIMIT`]) is read through to its
///   end, keeping only its first `limit` bytes, and refused with 400
///   `invalid_request` naming the cause seen in them (too many parameters,
///   or one too long). Reading it through lets the client read the answer:
///   closing a connection with unread data resets it.
/// - the caller bounds how long all this may take (the body timeout, 408).
async fn read_limited(body: Body, headers: &axum::http::HeaderMap, limit: usize) -> Result<Vec<u8>, GrantError> {
    use http_body_util::BodyExt as _;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > OVERSIZE_LIMIT) {
        return Err(GrantError::TooLarge);
    }
    let mut body = body;
    let mut kept: Vec<u8> = Vec::new();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| GrantError::InvalidRequest("the body could not be read"))?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if total > OVERSIZE_LIMIT {
            return Err(GrantError::TooLarge);
        }
        let room = limit.saturating_sub(kept.len()).min(data.len());
        kept.extend_from_slice(&data[..room]);
    }
    if total > limit as u64 {
        return Err(oversize(&kept));
    }
    Ok(kept)
}

/// The answer to a body over the in-memory limit, from its first bytes.
fn oversize(head: &[u8]) -> GrantError {
    let params = head.split(|&b| b == b'&').filter(|p| !p.is_empty()).count();
    if params > crate::form::MAX_PARAMS {
        GrantError::InvalidRequest("too many parameters")
    } else {
        GrantError::InvalidRequest("a parameter is too long")
    }
}
