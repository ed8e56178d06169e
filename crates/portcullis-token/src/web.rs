//! Browser clients: `POST /web/sign-in`, `/web/refresh` and `/web/sign-out`.
//!
//! A page's scripts can read whatever the page stores (localStorage,
//! sessionStorage, JS variables): one XSS and a long-lived refresh token is
//! gone. So for a web client (a public client with registered origins) the
//! refresh token never reaches the page: it lives in a cookie that scripts
//! cannot read (`HttpOnly`), that travels over TLS only (`Secure`), that
//! only this host can set (`__Host-`, RFC 6265bis §4.1.3.2) and that is
//! not sent on cross-site requests (`SameSite=Strict`). The access token,
//! short-lived, is returned in the body and kept in memory by the page.
//!
//! A cookie is sent by the browser whoever asks, so these endpoints defend
//! against cross-site request forgery before they change anything:
//! - `Origin` must be one of the client's registered origins (a browser
//!   always sends it on a cross-origin or POST fetch and a page cannot
//!   forge it; a request without it is not from a browser page we trust);
//! - the `X-Portcullis-CSRF: 1` header must be present: a custom header
//!   makes the request non-simple, so a cross-origin page needs a CORS
//!   preflight, which is answered only for registered origins, and an HTML
//!   form cannot send it at all.
//!
//! The rotation, reuse detection and retry window are the token
//! endpoint's own (the same grant functions run).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{options, post};
use axum::{Json, Router};
use portcullis_domain::GrantType;
use portcullis_store::{Client, ClientStatus, UnixTime};
use serde_json::json;

use crate::error::no_store;
use crate::grants::{self, Request as GrantRequest};
use crate::routes::form_request;
use crate::{GrantError, TokenService, client_auth};

/// The header a page must send with every call (any value but empty is
/// refused unless it is `1`).
pub const CSRF_HEADER: &str = "x-portcullis-csrf";
/// The refresh cookie's name over TLS.
pub const COOKIE: &str = "__Host-portcullis-refresh";
/// The refresh cookie's name when `web_insecure_cookies` is set
/// (development over plain HTTP on loopback): without `Secure` the
/// `__Host-` prefix is not allowed.
pub const COOKIE_INSECURE: &str = "portcullis-refresh";

pub(crate) fn router(svc: Arc<TokenService>) -> Router {
    Router::new()
        .route("/web/sign-in", post(sign_in))
        .route("/web/refresh", post(refresh))
        .route("/web/sign-out", post(sign_out))
        .route("/web/sign-in", options(preflight_sign_in))
        .route("/web/refresh", options(preflight_refresh))
        .route("/web/sign-out", options(preflight_sign_out))
        .layer(map_response(|res: Response| async move { no_store(res) }))
        .with_state(svc)
}

/// Why a cookie endpoint refused a request before doing anything.
enum Refusal {
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
                Json(json!({"error": "access_denied", "error_description": why})),
            )
                .into_response(),
            Self::Grant(e) => e.into_response(),
        }
    }
}

/// The request's single `Origin`, lower-cased.
fn origin(headers: &HeaderMap) -> Result<String, Refusal> {
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
fn csrf_header(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut values = headers.get_all(CSRF_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if v.as_bytes() == b"1" => Ok(()),
        _ => Err(Refusal::Forbidden("the X-Portcullis-CSRF: 1 header is required")),
    }
}

/// Whether `origin` is one of the client's.
fn registered(client: &Client, origin: &str) -> bool {
    client.web_origins.contains(origin)
}

/// CORS for a registered origin: the page may read the answer and its
/// cookie is honoured (`credentials: "include"`).
fn allow(mut res: Response, origin: &str) -> Response {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
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
                    page may call with credentials and the `X-Portcullis-CSRF` header.", headers(
                    ("Access-Control-Allow-Origin" = String, description = "The origin."),
                    ("Access-Control-Allow-Credentials" = String, description = "`true`"),
                    ("Access-Control-Allow-Methods" = String, description = "`POST`"),
                    ("Access-Control-Allow-Headers" = String, description = "`content-type, x-portcullis-csrf`"),
                    ("Access-Control-Max-Age" = String, description = "`600`"),
                )),
                (status = 403, description = "Not a registered origin, or not a POST: no CORS headers, \
                    so the browser does not send the request. No body."),
                (status = 503, description = "The database is unreachable.", body = crate::openapi::OAuthError),
            ),
        )]
        async fn $name(svc: State<Arc<TokenService>>, headers: HeaderMap) -> Response {
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
async fn preflight(State(svc): State<Arc<TokenService>>, headers: HeaderMap) -> Response {
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
        HeaderValue::from_static("content-type, x-portcullis-csrf"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    allow(res, &origin)
}

/// A checked cookie-endpoint request: its form, the web client, the origin
/// and the caller's address.
struct WebRequest {
    form: crate::form::Form,
    client: Client,
    origin: String,
    cookie: Option<String>,
    ip: Option<std::net::IpAddr>,
}

/// The CSRF rules, then the form and the client: a request refused here
/// has changed nothing. The header checks come first and cost nothing.
async fn checked(svc: &TokenService, req: Request) -> Result<WebRequest, Refusal> {
    let origin = origin(req.headers())?;
    csrf_header(req.headers())?;
    let (parts, form) = form_request(svc, req).await?;
    let presented = client_auth::presented(&parts.headers, &form)?;
    if presented.secret().is_some() || presented.is_basic() {
        // Browser clients are public: a secret in a page is no secret.
        return Err(Refusal::Grant(GrantError::InvalidClient {
            basic: presented.is_basic(),
        }));
    }
    let client = client_auth::authenticate(svc.store(), presented, None).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    if client.web_origins.is_empty() {
        return Err(Refusal::Grant(GrantError::UnauthorizedClient));
    }
    if !registered(&client, &origin) {
        return Err(Refusal::Forbidden("the request must come from a registered origin"));
    }
    let name = cookie_name(svc);
    let cookie = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    Ok(WebRequest {
        form,
        client,
        origin,
        cookie,
        ip,
    })
}

fn cookie_name(svc: &TokenService) -> &'static str {
    if svc.config().web_insecure_cookies {
        COOKIE_INSECURE
    } else {
        COOKIE
    }
}

/// `Set-Cookie` for a refresh token (`None`: clear the cookie).
fn set_cookie(svc: &TokenService, token: Option<&str>) -> HeaderValue {
    let (value, max_age) = match token {
        Some(t) => (t, svc.config().refresh_idle_ttl.as_secs()),
        None => ("", 0),
    };
    let cookie = if svc.config().web_insecure_cookies {
        // Development only (loopback, refused elsewhere): no `Secure`, so
        // no prefix; the path keeps it to these endpoints.
        format!("{COOKIE_INSECURE}={value}; Path=/web/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    } else {
        // `__Host-` requires `Secure`, `Path=/` and no `Domain`: only this
        // host can set or overwrite it, which blocks a sibling subdomain
        // from planting its own refresh token (cookie tossing). A narrower
        // path would not be a security boundary anyway (RFC 6265 §8.5).
        format!("{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    };
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The token response without its refresh token, which goes into the
/// cookie.
fn answer(svc: &TokenService, mut tokens: grants::TokenResponse, origin: &str) -> Response {
    let refresh = tokens.refresh_token.take();
    let mut res = Json(tokens).into_response();
    if let Some(rt) = refresh {
        res.headers_mut().append(header::SET_COOKIE, set_cookie(svc, Some(&rt)));
    }
    allow(res, origin)
}

/// An error, readable by the registered page. A refresh that fails leaves
/// the cookie alone: clearing it could undo a refresh that another tab made
/// at the same moment (strict mode's race loser answers after the winner),
/// signing the user out. A dead cookie only fails; sign-out clears it.
fn failure(e: GrantError, origin: &str) -> Response {
    allow(e.into_response(), origin)
}

/// Counts a refusal and holds it like the token endpoint does (a tarpit
/// for floods that retry at once).
async fn refusal_delay(svc: &TokenService, e: &GrantError) {
    if e.is_refusal() {
        tokio::time::sleep(svc.config().refusal_delay).await;
    }
}

/// `POST /web/sign-in`: the password grant; the refresh token is set as a
/// cookie.
#[utoipa::path(
    post,
    path = "/web/sign-in",
    tag = "web",
    summary = "Sign in from a browser page",
    request_body(content = crate::openapi::WebSignIn, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "The page's origin: one registered for the client."),
        ("X-Portcullis-CSRF" = String, Header, description = "`1`."),
    ),
    responses(
        (status = 200, description = "Signed in.", body = crate::openapi::WebTokens, headers(
            ("Set-Cookie" = String, description = "The refresh token: `__Host-portcullis-refresh=…; Path=/; \
                Secure; HttpOnly; SameSite=Strict; Max-Age=…`."),
            ("Cache-Control" = String, description = "`no-store`"),
            ("Access-Control-Allow-Origin" = String, description = "The registered origin."),
            ("Access-Control-Allow-Credentials" = String, description = "`true`"),
        )),
        crate::openapi::WebErrors,
        crate::openapi::Throttled,
    ),
)]
pub(crate) async fn sign_in(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    // The per-address hashing place is taken before anything else, as at
    // the token endpoint.
    let slot = match grants::reserve(&svc, ip) {
        Ok(slot) => slot,
        Err(e) => {
            refusal_delay(&svc, &e).await;
            return e.into_response();
        }
    };
    let web = match checked(&svc, req).await {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if !web.client.grant_types.allows(GrantType::Password) {
        return failure(GrantError::UnauthorizedClient, &web.origin);
    }
    let req = GrantRequest {
        form: &web.form,
        client: &web.client,
        ip: web.ip,
        now: UnixTime::now(),
    };
    let outcome = grants::password(&svc, &req, slot).await;
    let result = outcome.as_ref().map_or_else(GrantError::code, |_| "success");
    metrics::counter!("portcullis_grants_total", "grant_type" => "password", "result" => result).increment(1);
    match outcome {
        Ok(tokens) => answer(&svc, tokens, &web.origin),
        Err(e) => {
            refusal_delay(&svc, &e).await;
            failure(e, &web.origin)
        }
    }
}

/// `POST /web/refresh`: the refresh grant with the cookie's token; the new
/// one replaces it.
#[utoipa::path(
    post,
    path = "/web/refresh",
    tag = "web",
    summary = "A new access token; the refresh cookie rotates",
    request_body(content = crate::openapi::WebClient, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "The page's origin: one registered for the client."),
        ("X-Portcullis-CSRF" = String, Header, description = "`1`."),
    ),
    responses(
        (status = 200, description = "Refreshed.", body = crate::openapi::WebTokens, headers(
            ("Set-Cookie" = String, description = "The refresh token: `__Host-portcullis-refresh=…; Path=/; \
                Secure; HttpOnly; SameSite=Strict; Max-Age=…`."),
            ("Cache-Control" = String, description = "`no-store`"),
            ("Access-Control-Allow-Origin" = String, description = "The registered origin."),
            ("Access-Control-Allow-Credentials" = String, description = "`true`"),
        )),
        crate::openapi::WebErrors,
    ),
)]
pub(crate) async fn refresh(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    let mut web = match checked(&svc, req).await {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if !web.client.grant_types.allows(GrantType::RefreshToken) {
        return failure(GrantError::UnauthorizedClient, &web.origin);
    }
    let Some(cookie) = web.cookie.take() else {
        return failure(GrantError::InvalidGrant, &web.origin);
    };
    // The token comes from the cookie only, never from the body.
    web.form.set("grant_type", "refresh_token");
    web.form.set("refresh_token", &cookie);
    let context = grants::prefetch_refresh(&svc, &web.form).await;
    let req = GrantRequest {
        form: &web.form,
        client: &web.client,
        ip: web.ip,
        now: UnixTime::now(),
    };
    let outcome = grants::refresh(&svc, &req, context).await;
    let result = outcome.as_ref().map_or_else(GrantError::code, |_| "success");
    metrics::counter!("portcullis_grants_total", "grant_type" => "refresh_token", "result" => result).increment(1);
    match outcome {
        Ok(tokens) => answer(&svc, tokens, &web.origin),
        Err(e) => failure(e, &web.origin),
    }
}

/// `POST /web/sign-out`: revokes the cookie's sign-in (its whole refresh
/// family) and clears the cookie. 200 whether or not there was one.
#[utoipa::path(
    post,
    path = "/web/sign-out",
    tag = "web",
    summary = "Sign out: the sign-in ends, the cookie is cleared",
    request_body(content = crate::openapi::WebClient, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "The page's origin: one registered for the client."),
        ("X-Portcullis-CSRF" = String, Header, description = "`1`."),
    ),
    responses(
        (status = 200, description = "Signed out (or was not signed in).", body = crate::openapi::Empty, headers(
            ("Set-Cookie" = String, description = "Clears the refresh cookie (`Max-Age=0`)."),
            ("Cache-Control" = String, description = "`no-store`"),
            ("Access-Control-Allow-Origin" = String, description = "The registered origin."),
            ("Access-Control-Allow-Credentials" = String, description = "`true`"),
        )),
        crate::openapi::WebErrors,
    ),
)]
pub(crate) async fn sign_out(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    let mut web = match checked(&svc, req).await {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if let Some(cookie) = web.cookie.take() {
        web.form.set("token", &cookie);
        if let Err(e) = crate::introspection::revoke(&svc, &web.form, &web.client, UnixTime::now()).await {
            // Nothing was revoked: keep the cookie so the page can retry.
            return allow(e.into_response(), &web.origin);
        }
    }
    let mut res = Json(json!({})).into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie(&svc, None));
    allow(res, &web.origin)
}
