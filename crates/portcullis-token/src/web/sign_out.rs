//! `POST /web/sign-out`: ends the sign-in of the client's own cookie.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use portcullis_store::UnixTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::forms::WebClient;
use super::{allow, checked, cookie, failure};
use crate::grants::MAX_REFRESH_TOKEN;
use crate::responses::WebErrors;
use crate::revocation::revoke_token;
use crate::{GrantError, TokenService};

/// `{}`
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Empty {}

/// `POST /web/sign-out`: revokes the sign-in of the client's cookie (its
/// whole refresh family) and clears the cookie. 200 whether or not there
/// was one; 400 `invalid_grant`, with the cookie left alone, when the
/// cookie holds another client's sign-in.
#[utoipa::path(
    post,
    path = "/web/sign-out",
    tag = "web",
    summary = "Sign out: the sign-in ends, the cookie is cleared",
    description = "Reads only the client's own cookie (`__Host-portcullis-refresh-<client_id>`). A cookie \
        holding another client's sign-in is refused with 400 `invalid_grant` and neither revoked nor cleared.",
    request_body(content = WebClient, content_type = "application/x-www-form-urlencoded"),
    params(
        ("Origin" = String, Header, description = "The page's origin: one registered for the client."),
        ("X-Portcullis-CSRF" = String, Header, description = "`1`."),
    ),
    responses(
        (status = 200, description = "Signed out (or was not signed in).", body = Empty, headers(
            ("Set-Cookie" = String, description = "Clears the client's refresh cookie (`Max-Age=0`)."),
            ("Cache-Control" = String, description = "`no-store`"),
            ("Access-Control-Allow-Origin" = String, description = "The registered origin."),
            ("Access-Control-Allow-Credentials" = String, description = "`true`"),
        )),
        WebErrors,
    ),
)]
pub(crate) async fn sign_out(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    let web = match checked(&svc, req).await {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if let Some(token) = &web.cookie {
        match owner(&svc, token).await {
            Ok(Some(owner)) if web.client.id != owner.as_str() => {
                // A planted cookie, or a page of one app trying to end
                // another's sign-in: nothing is revoked, nothing cleared.
                tracing::info!(cookie_client = %owner, "sign-out with another client's refresh cookie refused");
                return failure(GrantError::InvalidGrant, &web.origin);
            }
            Ok(_) => {}
            Err(e) => return failure(e, &web.origin),
        }
        // The registered page's own cookie, sent with the CSRF header from
        // its origin: signing out needs no proof of the DPoP key (a page
        // that lost its key can still sign out).
        if let Err(e) = revoke_token(&svc, token, &web.client, UnixTime::now(), None).await {
            // Nothing was revoked: keep the cookie so the page can retry.
            return failure(e, &web.origin);
        }
    }
    let mut res = Json(Empty {}).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, cookie::set(&svc, &web.client.id, None));
    allow(res, &web.origin)
}

/// The client whose sign-in `token` (a refresh token) belongs to; `None`
/// for anything else (unknown, garbage), which sign-out simply clears.
async fn owner(svc: &TokenService, token: &str) -> Result<Option<String>, GrantError> {
    if token.len() > MAX_REFRESH_TOKEN {
        return Ok(None);
    }
    Ok(crate::refresh_token::family_of(svc.store(), token)
        .await?
        .map(|(_, family)| family.client_id))
}
