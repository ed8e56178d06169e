//! `/account/v1/email` and `/account/v1/email/verify`: the signed-in user
//! sets or changes their address and confirms it with a mailed code.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use portcullis_store::UnixTime;
use portcullis_verify::AccessTokenClaims;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{AccountErrors, Api, ApiError, Routes, user};
use super::self_service::{Body, client_ip, parse_email, refused};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/email", post(set_email))
        .route("/email/verify", post(verify_email))
}

/// A new address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetEmail {
    /// The address (`name@example.com`).
    email: String,
}

/// The account's address and whether it is verified.
#[derive(Serialize, ToSchema)]
pub(crate) struct EmailState {
    /// The address.
    email: Option<String>,
    /// Whether its owner confirmed it with a code.
    email_verified: bool,
}

impl From<portcullis_store::User> for EmailState {
    fn from(u: portcullis_store::User) -> Self {
        Self {
            email_verified: u.email_verified_at.is_some(),
            email: u.email.map(|e| e.as_str().to_owned()),
        }
    }
}

/// `POST /account/v1/email`.
#[utoipa::path(
    post,
    path = "/account/v1/email",
    tag = "account",
    summary = "Set or change my email address",
    description = "Sets the address, unverified, and mails a code to it (8 characters, 15 minutes, \
        one use, 5 tries) for `POST /account/v1/email/verify`. Counted per user and per client \
        address (each sends a mail). Without mail configured: `501 mail_not_configured`.",
    request_body = SetEmail,
    security(("access_token" = [])),
    responses(
        (status = 202, description = "Set, unverified; the code is on its way.", body = EmailState, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        (status = 409, description = "`conflict` (`reason: email_taken`): another account has this address.", body = ApiError),
        (status = 429, description = "Too many addresses set lately.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 501, description = "`mail_not_configured`: this server sends no mail.", body = ApiError),
    ),
)]
pub(crate) async fn set_email(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(req): Body<SetEmail>,
) -> Result<Response, ApiError> {
    let Some(mailer) = api.mailer.clone() else {
        return Err(ApiError::mail_not_configured());
    };
    let email = parse_email(&req.email)?;
    let ip = client_ip(info.as_deref());
    api.tokens
        .config()
        .throttle
        .admit_reset(&api.store, Some(&format!("mail:{}", me.sub)), ip, UnixTime::now())
        .await
        .map_err(refused)?;
    let changed = ops::account::set_email(&api.store, &user(&me), &me.sub, email, &mailer).await?;
    Ok((StatusCode::ACCEPTED, Json(EmailState::from(changed))).into_response())
}

/// A verification code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyEmail {
    /// The code from the mail (any case; dashes and spaces ignored).
    code: String,
}

/// `POST /account/v1/email/verify`.
#[utoipa::path(
    post,
    path = "/account/v1/email/verify",
    tag = "account",
    summary = "Confirm my email address with the mailed code",
    description = "A wrong, used or expired code, or one sent to an address since replaced, is \
        `400 invalid_grant` (`reason: invalid_code`); the fifth wrong try ends the code.",
    request_body = VerifyEmail,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Verified.", body = EmailState, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        (status = 501, description = "`mail_not_configured`: this server sends no mail.", body = ApiError),
    ),
)]
pub(crate) async fn verify_email(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Body(req): Body<VerifyEmail>,
) -> Result<Json<EmailState>, ApiError> {
    if api.mailer.is_none() {
        return Err(ApiError::mail_not_configured());
    }
    let verified = ops::account::verify_email(&api.store, &user(&me), &me.sub, &req.code).await?;
    Ok(Json(verified.into()))
}
