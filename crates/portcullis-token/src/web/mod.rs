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
//! Each client has a cookie of its own, named after its id, and these
//! endpoints read only the calling client's: apps on one server never
//! overwrite each other's sign-in, and one cannot sign a user out of
//! another.
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

mod cookie;
mod csrf;
mod forms;
mod sign_out;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{options, post};
use axum::{Json, Router};
use portcullis_domain::GrantType;
use portcullis_store::Client;
use serde::Serialize;
use utoipa::ToSchema;

pub use cookie::{COOKIE_INSECURE_PREFIX, COOKIE_PREFIX, cookie_name};
pub use csrf::CSRF_HEADER;
pub(crate) use csrf::{
    __path_preflight_refresh, __path_preflight_sign_in, __path_preflight_sign_out, preflight_refresh,
    preflight_sign_in, preflight_sign_out,
};
use csrf::{Refusal, allow, csrf_header, origin, registered};
use forms::{WebClient, WebSignIn};
pub(crate) use sign_out::{__path_sign_out, sign_out};

use crate::edge::{form_request, no_store_layer, peer};
use crate::form::Form;
use crate::grants::{self, Grant, PasswordGrant, RefreshGrant, TokenResponse};
use crate::responses::{Refreshed, SignedIn, Throttled, WebErrors};
use crate::{GrantError, TokenService, client_auth};

/// The routes.
pub(crate) fn router(svc: &Arc<TokenService>) -> Router<Arc<TokenService>> {
    Router::new()
        .route("/web/sign-in", post(sign_in))
        .route("/web/refresh", post(refresh))
        .route("/web/sign-out", post(sign_out))
        .route("/web/sign-in", options(preflight_sign_in))
        .route("/web/refresh", options(preflight_refresh))
        .route("/web/sign-out", options(preflight_sign_out))
        .layer(map_response(no_store_layer))
        .route_layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            crate::dpop::nonce_layer,
        ))
}

/// A browser client's tokens: the access token only; the refresh token is
/// in the `Set-Cookie` header.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebTokens {
    /// The JWT access token (RFC 9068); keep it in memory only.
    access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the proof's key.
    #[schema(value_type = String)]
    token_type: &'static str,
    /// Access-token lifetime in seconds.
    expires_in: i64,
    /// The granted scope.
    scope: String,
}

/// A checked cookie-endpoint request: its form, the web client, the origin,
/// the client's own refresh cookie and the caller's address.
struct WebRequest {
    form: Form,
    client: Client,
    origin: String,
    cookie: Option<String>,
    ip: Option<std::net::IpAddr>,
    /// The key the request's DPoP proof proved, if it had one; a refused
    /// proof is answered with the grant, readable by the page.
    dpop: Result<Option<String>, GrantError>,
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
    // A page's key (WebCrypto, not extractable) binds the sign-in: a
    // copy of the cookie is useless without it.
    let dpop = svc.dpop_key(&parts.headers, parts.uri.path(), &client);
    Ok(WebRequest {
        dpop,
        // Only this client's cookie: another app's is never read here.
        cookie: cookie::read(svc, &client.id, &parts.headers),
        ip: peer(&parts.extensions),
        form,
        client,
        origin,
    })
}

/// The token response without its refresh token, which goes into the
/// cookie.
fn answer(svc: &TokenService, tokens: TokenResponse, client: &Client, origin: &str) -> Response {
    let TokenResponse {
        access_token,
        token_type,
        expires_in,
        refresh_token,
        scope,
    } = tokens;
    let mut res = Json(WebTokens {
        access_token,
        token_type,
        expires_in,
        scope,
    })
    .into_response();
    if let Some(rt) = refresh_token {
        res.headers_mut()
            .append(header::SET_COOKIE, cookie::set(svc, &client.id, Some(&rt)));
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

/// The grant's answer for the page.
async fn respond(svc: &TokenService, web: &WebRequest, grant: Grant) -> Response {
    let dpop = match &web.dpop {
        Ok(dpop) => dpop.as_deref(),
        Err(e) => return failure(e.clone(), &web.origin),
    };
    match grants::run(svc, grant, &web.client, web.ip, dpop).await {
        Ok(tokens) => answer(svc, tokens, &web.client, &web.origin),
        Err(e) => failure(e, &web.origin),
    }
}

/// `POST /web/sign-in`: the password grant; the refresh token is set as a
/// cookie.
#[utoipa::path(
    post,
    path = "/web/sign-in",
    tag = "web",
    summary = "Sign in from a browser page",
    request_body(content = WebSignIn, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "The page's origin: one registered for the client."),
        ("X-Portcullis-CSRF" = String, Header, description = "`1`."),
    ),
    responses(
        SignedIn,
        WebErrors,
        Throttled,
    ),
)]
pub(crate) async fn sign_in(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    // The per-address hashing place is taken before anything else, as at
    // the token endpoint.
    let slot = match grants::reserve(&svc, peer(req.extensions())).await {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    let mut web = match checked(&svc, req).await {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if !web.client.grant_types.allows(GrantType::Password) {
        return failure(GrantError::UnauthorizedClient, &web.origin);
    }
    let grant = PasswordGrant::from_form(&mut web.form, svc.passwords());
    respond(&svc, &web, Grant::Password(grant, slot)).await
}

/// `POST /web/refresh`: the refresh grant with the cookie's token; the new
/// one replaces it.
#[utoipa::path(
    post,
    path = "/web/refresh",
    tag = "web",
    summary = "A new access token; the refresh cookie rotates",
    request_body(content = WebClient, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "The page's origin: one registered for the client."),
        ("X-Portcullis-CSRF" = String, Header, description = "`1`."),
    ),
    responses(
        Refreshed,
        WebErrors,
    ),
)]
pub(crate) async fn refresh(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    // As on the token endpoint: see `password::Refreshing`.
    let _refreshing = svc.passwords().refreshing();
    let mut web = match checked(&svc, req).await {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if !web.client.grant_types.allows(GrantType::RefreshToken) {
        return failure(GrantError::UnauthorizedClient, &web.origin);
    }
    // The token comes from the cookie only, never from the body.
    let Some(cookie) = web.cookie.take() else {
        return failure(GrantError::InvalidGrant, &web.origin);
    };
    let grant = RefreshGrant::with_token(cookie, &mut web.form);
    let context = match &grant {
        Ok(g) => Some(grants::prefetch(&svc, g).await),
        Err(_) => None,
    };
    respond(&svc, &web, Grant::Refresh(grant, context)).await
}
