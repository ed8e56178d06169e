//! The HTTP edge: `POST /oauth/token`, the JWKS and the RFC 8414 metadata.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_domain::GrantType;
use portcullis_store::UnixTime;
use serde_json::json;

use crate::client_auth;
use crate::error::no_store;
use crate::form::{Form, FormError};
use crate::grants::{self, Request as GrantRequest};
#[allow(unused_imports, reason = "named by the OpenAPI annotations")]
use crate::openapi::{
    Forbidden, FormErrors, Introspection, Jwks, Metadata, OAuthError, RevocationFeed, Throttled, TokenQuery,
    TokenRequest,
};
use crate::{GrantError, TokenResponse, TokenService};

/// The routes of the token service.
pub(crate) fn router(svc: Arc<TokenService>) -> Router {
    Router::new()
        // The layer covers every answer of this path, 405 and 413 included.
        .route("/oauth/token", post(token).layer(map_response(no_store_layer)))
        .route("/oauth/revoke", post(revoke).layer(map_response(no_store_layer)))
        .route(
            "/oauth/introspect",
            post(introspect).layer(map_response(no_store_layer)),
        )
        .route("/oauth/revocations", get(revocations))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .with_state(svc.clone())
        .merge(crate::web::router(svc))
}

async fn no_store_layer(res: Response) -> Response {
    no_store(res)
}

/// `POST /oauth/token`. Parameters come from the form body only; the query
/// string is never read (RFC 6749 §3.2).
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    summary = "Sign in (password grant) or refresh (refresh_token grant)",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "The tokens (RFC 6749 §5.1).", body = TokenResponse, headers(
            ("Cache-Control" = String, description = "`no-store`"),
            ("Pragma" = String, description = "`no-cache`"),
        )),
        FormErrors,
        Throttled,
    ),
)]
async fn token(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    match token_inner(&svc, req).await {
        Ok(res) => no_store(Json(res).into_response()),
        Err(e) => {
            if e.is_refusal() {
                let reason = match e {
                    GrantError::AddressBusy => "address_busy",
                    GrantError::Saturated => "saturated",
                    _ => "throttled",
                };
                metrics::counter!("portcullis_sign_in_refusals_total", "reason" => reason).increment(1);
                // A tarpit: a client that retries at once (a flood's
                // closed loop) is held to one attempt per delay per
                // connection, so refusing it costs almost nothing.
                tokio::time::sleep(svc.config().refusal_delay).await;
            }
            e.into_response()
        }
    }
}

/// A client-authenticated form request: the request head, its form and
/// the client. Shared by the token, revocation and introspection endpoints.
async fn client_request(
    svc: &TokenService,
    req: Request,
) -> Result<(axum::http::request::Parts, Form, portcullis_store::Client), GrantError> {
    let (parts, form) = form_request(svc, req).await?;
    let presented = client_auth::presented(&parts.headers, &form)?;
    let client = client_auth::authenticate(svc.store(), presented, None).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    Ok((parts, form, client))
}

/// The request head and its form (content type, size limit, strict parse).
pub(crate) async fn form_request(
    svc: &TokenService,
    req: Request,
) -> Result<(axum::http::request::Parts, Form), GrantError> {
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

async fn token_inner(svc: &TokenService, req: Request) -> Result<grants::TokenResponse, GrantError> {
    let (parts, form) = form_request(svc, req).await?;
    let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let slot = match form.get("grant_type") {
        Some("password") => Some(grants::reserve(svc, ip)?),
        _ => None,
    };
    let presented = client_auth::presented(&parts.headers, &form)?;
    // A refresh reads its token with the family, user and client in one
    // query, before the client is authenticated; the client row is then
    // used for the authentication (when it is the client presented), and
    // the rest by the grant. No answer depends on the token before the
    // client is authenticated; only the timing can tell an unauthenticated
    // caller holding a real token of a confidential client that it exists
    // (one read fewer), which does not let it use the token.
    let context = grants::prefetch_refresh(svc, &form).await;
    let known = context.as_ref().and_then(|c| c.as_ref().ok()).map(|c| c.3.clone());
    let client = client_auth::authenticate(svc.store(), presented, known).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    let grant_type = form
        .get("grant_type")
        .ok_or(GrantError::InvalidRequest("grant_type is required"))?;
    let grant: GrantType = grant_type.parse().map_err(|_| GrantError::UnsupportedGrantType)?;
    // A browser client's refresh token lives in an HttpOnly cookie set by
    // the /web/ endpoints; this endpoint would hand it to page scripts.
    if !client.grant_types.allows(grant) || !client.web_origins.is_empty() {
        return Err(GrantError::UnauthorizedClient);
    }
    let req = GrantRequest {
        form: &form,
        client: &client,
        ip,
        now: UnixTime::now(),
    };
    let outcome = match grant {
        GrantType::Password => grants::password(svc, &req, slot.ok_or(GrantError::Internal)?).await,
        GrantType::RefreshToken => grants::refresh(svc, &req, context).await,
    };
    let result = outcome.as_ref().map_or_else(GrantError::code, |_| "success");
    metrics::counter!("portcullis_grants_total", "grant_type" => grant.as_str(), "result" => result).increment(1);
    outcome
}

/// `POST /oauth/revoke` (RFC 7009): 200 with an empty body whether or not
/// the token was known.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    summary = "Revoke a token (RFC 7009)",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "Revoked, or not a token of this client: the same answer (§2.2). \
            No body.", headers(("Cache-Control" = String, description = "`no-store`"))),
        FormErrors,
    ),
)]
async fn revoke(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    let outcome = async {
        let (_, form, client) = client_request(&svc, req).await?;
        crate::introspection::revoke(&svc, &form, &client, UnixTime::now()).await
    };
    match outcome.await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

/// `POST /oauth/introspect` (RFC 7662), for clients allowed to introspect.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    summary = "Introspect a token (RFC 7662)",
    description = "For confidential clients registered with `--introspect`.",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "What the token is.", body = Introspection, headers(
            ("Cache-Control" = String, description = "`no-store`"),
        )),
        FormErrors,
        Forbidden,
    ),
)]
async fn introspect(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    let outcome = async {
        let (_, form, client) = client_request(&svc, req).await?;
        crate::introspection::introspect(&svc, &form, &client, UnixTime::now()).await
    };
    match outcome.await {
        Ok(doc) => no_store(Json(doc).into_response()),
        Err(e) => e.into_response(),
    }
}

/// `GET /oauth/revocations?since=CURSOR&limit=N`: the revocation feed,
/// cacheable for 2 s; public unless a feed secret is configured.
#[utoipa::path(
    get,
    path = "/oauth/revocations",
    tag = "oauth",
    summary = "The revocation feed resource servers poll",
    params(
        ("since" = Option<i64>, Query, description = "Entries after this cursor (default 0)."),
        ("limit" = Option<u64>, Query, maximum = 4_294_967_295_u64,
            description = "At most this many entries (default 500; more than 1000 counts as 1000)."),
    ),
    security((), ("revocation_feed_secret" = [])),
    responses(
        (status = 200, description = "Entries after `since`.", body = RevocationFeed, headers(
            ("Cache-Control" = String, description = "`public, max-age=2`, or `private, max-age=2` with a feed secret"),
        )),
        (status = 400, description = "`since` or `limit` is not a whole number.", body = OAuthError),
        (status = 401, description = "A feed secret is configured and the request does not carry it. No body.",
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"portcullis\"`"))),
        (status = 503, description = "The database is unreachable.", body = OAuthError,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (5)."))),
    ),
)]
async fn revocations(
    State(svc): State<Arc<TokenService>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Some(secret) = &svc.config().revocation_feed_secret {
        let presented = portcullis_verify::bearer_token(
            headers.get_all(header::AUTHORIZATION).iter().map(HeaderValue::as_bytes),
            None,
        );
        let ok = presented.is_ok_and(|p| subtle::ConstantTimeEq::ct_eq(p.as_bytes(), secret.as_bytes()).into());
        if !ok {
            let mut res = StatusCode::UNAUTHORIZED.into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="portcullis""#),
            );
            return no_store(res);
        }
    }
    let mut since = 0i64;
    let mut limit = 500u32;
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let ok = match k {
            "since" => v.parse().map(|n: i64| since = n.max(0)).is_ok(),
            "limit" => v.parse().map(|n: u32| limit = n.clamp(1, 1000)).is_ok(),
            _ => true,
        };
        if !ok {
            return GrantError::InvalidRequest("since and limit must be whole numbers").into_response();
        }
    }
    match crate::introspection::feed(&svc, since, limit).await {
        Ok(doc) => {
            let mut res = Json(doc).into_response();
            let cache = if svc.config().revocation_feed_secret.is_some() {
                "private, max-age=2"
            } else {
                "public, max-age=2"
            };
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            res
        }
        Err(e) => e.into_response(),
    }
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

/// `GET /.well-known/jwks.json`: the public signing keys.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    summary = "The public signing keys (JWKS)",
    responses((status = 200, description = "The keys that verify access tokens.", body = Jwks, headers(
        ("Cache-Control" = String, description = "`public, max-age=…` (the configured JWKS max-age)"),
    ))),
)]
async fn jwks(State(svc): State<Arc<TokenService>>) -> Response {
    let max_age = svc.config().jwks_max_age.as_secs();
    let mut res = (StatusCode::OK, svc.keys().set.jwks.clone()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    res
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    summary = "Authorization server metadata (RFC 8414)",
    responses((status = 200, description = "The server's endpoints and what they support.", body = Metadata,
        headers(("Cache-Control" = String, description = "`public, max-age=300`")))),
)]
async fn metadata(State(svc): State<Arc<TokenService>>) -> Response {
    let cfg = svc.config();
    let mut doc = json!({
        "issuer": cfg.issuer,
        "token_endpoint": format!("{}/oauth/token", cfg.issuer),
        "jwks_uri": format!("{}/.well-known/jwks.json", cfg.issuer),
        "grant_types_supported": ["password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint": format!("{}/oauth/revoke", cfg.issuer),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{}/oauth/introspect", cfg.issuer),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        // No authorization endpoint: the password grant needs none.
        "response_types_supported": [],
    });
    if !cfg.scopes_supported.is_empty() {
        doc["scopes_supported"] = json!(cfg.scopes_supported);
    }
    let mut res = Json(doc).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}
