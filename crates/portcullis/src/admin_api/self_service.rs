//! `/account/v1/sign-up` and `/account/v1/password-reset[/confirm]`: what
//! a person does without a token (they have no account yet, or forgot its
//! password). The app names itself by `client_id`; no client secret is
//! asked for (these are mobile and browser apps).
//!
//! Each counts its attempt per client address (and per client or per
//! account) before any hashing or mail, and takes its hashing place from
//! the pool sign-ins use, within the same per-address share.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use portcullis_domain::{Email, Username};
use portcullis_store::UnixTime;
use portcullis_token::GrantError;
use portcullis_token::password::SlotError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{Api, ApiError, Routes};
use crate::ops::{self, OpsError};

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/sign-up", post(sign_up))
        .route("/password-reset", post(password_reset))
        .route("/password-reset/confirm", post(password_reset_confirm))
}

/// A JSON body, refused with the API's 400 `invalid_request` (a body that
/// is not JSON, not an object of the expected fields, or sent as another
/// content type).
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(|_| {
                ApiError::invalid_request().explained(
                    "invalid_body",
                    "The body must be a JSON object with the documented fields (Content-Type: application/json).",
                )
            })
    }
}

/// The client's address, as the proxy rules resolved it.
pub(crate) fn client_ip(info: Option<&ConnectInfo<SocketAddr>>) -> Option<IpAddr> {
    info.map(|c| c.0.ip())
}

/// A throttle or hashing refusal as the API's answer.
pub(crate) fn refused(e: GrantError) -> ApiError {
    match e {
        GrantError::Throttled { retry_after } => ApiError::throttled(retry_after),
        GrantError::AddressBusy => ApiError::throttled(1),
        GrantError::Unavailable | GrantError::Saturated => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            super::common::ApiErrorCode::TemporarilyUnavailable,
        ),
        other => {
            tracing::error!(error = %other, "account API: unexpected refusal");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                super::common::ApiErrorCode::ServerError,
            )
        }
    }
}

/// An unknown or revoked client is 401 here (the app names itself).
fn client_error(e: OpsError) -> ApiError {
    match e {
        OpsError::NoClient(_) => ApiError::invalid_client(),
        other => other.into(),
    }
}

/// A sign-up.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUpRequest {
    /// The app, a client that allows sign-up.
    client_id: String,
    /// The sign-in name asked for.
    username: String,
    /// The password (at least 15 characters by default; not a common one).
    #[schema(format = Password)]
    password: String,
    /// An address to confirm (a code is mailed to it when mail is on).
    email: Option<String>,
}

/// The account created.
#[derive(Serialize, ToSchema)]
pub(crate) struct SignedUp {
    /// The user's id (the `sub` of their tokens).
    sub: String,
    /// The sign-in name, as given.
    username: String,
    /// The scopes the account holds (the client's sign-up scope).
    scope: String,
    /// The address given, unverified, if any.
    email: Option<String>,
    /// Whether the address is verified (never at sign-up).
    email_verified: bool,
}

/// `POST /account/v1/sign-up`.
#[utoipa::path(
    post,
    path = "/account/v1/sign-up",
    tag = "account",
    summary = "Create an account (clients that allow sign-up)",
    description = "Creates a user holding the client's sign-up scope; the app then signs in with the \
        password grant. Counted per client address and per client (429 past either limit). A taken \
        username is `409` with `reason: username_taken` (docs/security.md says what that reveals).",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Created.", body = SignedUp, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request`: a malformed body, username or address, or a password the policy refuses (`reason`: `password_too_short`, `password_too_long`, `password_too_common`, `invalid_username`, `invalid_email`, `invalid_body`).", body = ApiError),
        (status = 401, description = "`invalid_client`: no active client has this id.", body = ApiError),
        (status = 403, description = "`access_denied`: the client does not allow sign-up (`reason: sign_up_off`).", body = ApiError),
        (status = 409, description = "`conflict`: `reason` `username_taken` or `email_taken`.", body = ApiError),
        (status = 429, description = "Too many sign-ups from this address or for this client.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Busy or the database is unreachable.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(crate) async fn sign_up(
    State(api): State<Api>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(req): Body<SignUpRequest>,
) -> Result<Response, ApiError> {
    let ip = client_ip(info.as_deref());
    let store = &api.store;
    let username = Username::parse(&req.username).map_err(|e| {
        ApiError::invalid_request().explained("invalid_username", format!("The username is not accepted: {e}."))
    })?;
    let email = req.email.as_deref().map(parse_email).transpose()?;
    let password = req.password.as_str();
    api.tokens
        .config()
        .password
        .check_new(password, false)
        .map_err(OpsError::from)?;
    let client = ops::account::sign_up_client(store, &req.client_id)
        .await
        .map_err(client_error)?;
    // The hashing place first (per-address share), then the count.
    let passwords = api.tokens.passwords();
    let slot = passwords.reserve(ip).map_err(|e| match e {
        SlotError::Address => refused(GrantError::AddressBusy),
        SlotError::Busy => refused(GrantError::Saturated),
    })?;
    api.tokens
        .config()
        .throttle
        .admit_sign_up(store, client.id.as_str(), ip, UnixTime::now())
        .await
        .map_err(refused)?;
    if ops::account::username_taken(store, &username).await? {
        return Err(OpsError::UserExists(username.to_string()).into());
    }
    let password_hash = passwords
        .hash_reserved(slot, password)
        .await
        .map_err(|_| refused(GrantError::Saturated))?;
    let input = ops::account::SignUp {
        username,
        password_hash,
        email,
    };
    let user = ops::account::sign_up(store, &client, input, api.mailer.as_deref()).await?;
    let body = SignedUp {
        sub: user.id,
        username: user.username.to_string(),
        scope: user.scope.to_string(),
        email: user.email.map(|e| e.as_str().to_owned()),
        email_verified: user.email_verified_at.is_some(),
    };
    Ok(crate::http::no_store((StatusCode::CREATED, Json(body)).into_response()))
}

pub(crate) fn parse_email(text: &str) -> Result<Email, ApiError> {
    Email::parse(text).map_err(|e| {
        ApiError::invalid_request().explained("invalid_email", format!("The email address is not accepted: {e}."))
    })
}

/// A password reset request: one of `username` and `email`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    /// The app asking.
    client_id: String,
    /// The account's sign-in name.
    username: Option<String>,
    /// Or the account's (verified) address.
    email: Option<String>,
}

/// The answer to every accepted reset request.
#[derive(Serialize, ToSchema)]
pub(crate) struct ResetAccepted {
    /// Always `accepted`.
    status: &'static str,
    /// What happens next, the same words whether the account exists or not.
    message: &'static str,
}

const ACCEPTED: ResetAccepted = ResetAccepted {
    status: "accepted",
    message: "If this account exists and has a verified email address, a code has been sent to it.",
};

/// `POST /account/v1/password-reset`.
#[utoipa::path(
    post,
    path = "/account/v1/password-reset",
    tag = "account",
    summary = "Ask for a password reset code by mail",
    description = "Answers `202` with the same body whether or not the account exists; the lookup \
        and the mail happen after the answer. An account with a verified address gets a code (8 \
        characters, 15 minutes, one use, 5 tries). Counted per client address and per account named \
        (429 past either). Without mail configured: `501 mail_not_configured`.",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists).", body = ResetAccepted, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request`: a malformed body, neither or both of `username` and `email`, or a malformed address.", body = ApiError),
        (status = 401, description = "`invalid_client`: no active client has this id.", body = ApiError),
        (status = 429, description = "Too many requests from this address or for this account.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 501, description = "`mail_not_configured`: this server sends no mail.", body = ApiError),
        (status = 503, description = "The database is unreachable.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(crate) async fn password_reset(
    State(api): State<Api>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(req): Body<ResetRequest>,
) -> Result<Response, ApiError> {
    let ip = client_ip(info.as_deref());
    let Some(mailer) = api.mailer.clone() else {
        return Err(ApiError::mail_not_configured());
    };
    let who = match (req.username.as_deref(), req.email.as_deref()) {
        (Some(name), None) => Username::parse(name).ok().map(ops::account::ResetFor::Username),
        (None, Some(email)) => Some(ops::account::ResetFor::Email(parse_email(email)?)),
        _ => {
            return Err(ApiError::invalid_request().explained("invalid_body", "Give one of `username` and `email`."));
        }
    };
    let client = ops::account::usable_client(&api.store, &req.client_id)
        .await
        .map_err(client_error)?;
    // A name no account can have is counted like any other.
    let account = who.as_ref().map_or_else(
        || format!("u:{}", req.username.unwrap_or_default()),
        ops::account::ResetFor::throttle_key,
    );
    api.tokens
        .config()
        .throttle
        .admit_reset(&api.store, Some(&account), ip, UnixTime::now())
        .await
        .map_err(refused)?;
    if let Some(who) = who {
        let store = api.store.clone();
        let client_id = client.id.clone();
        tokio::spawn(async move { ops::account::request_reset(&store, &client_id, who, &mailer).await });
    }
    Ok(crate::http::no_store(
        (StatusCode::ACCEPTED, Json(ACCEPTED)).into_response(),
    ))
}

/// A reset code and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetConfirm {
    /// The app, if it names itself (recorded in the audit log).
    client_id: Option<String>,
    /// The account's sign-in name.
    username: String,
    /// The code from the mail (any case; dashes and spaces ignored).
    code: String,
    /// The new password.
    #[schema(format = Password)]
    password: String,
}

/// A password set by reset.
#[derive(Serialize, ToSchema)]
pub(crate) struct PasswordReset {
    /// Always `true`.
    password_changed: bool,
    /// Sign-ins (devices) ended.
    signed_out: u64,
}

/// `POST /account/v1/password-reset/confirm`.
#[utoipa::path(
    post,
    path = "/account/v1/password-reset/confirm",
    tag = "account",
    summary = "Set a new password with a reset code",
    description = "Sets the password (the policy applies) and ends every sign-in of the account \
        (a revocation feed entry). A wrong, used or expired code, or an unknown username, is the \
        same `400 invalid_grant` (`reason: invalid_code`); the fifth wrong try ends the code. \
        Counted per client address.",
    request_body = ResetConfirm,
    responses(
        (status = 200, description = "Password set; every sign-in ended.", body = PasswordReset, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_grant` (`reason: invalid_code`), or `invalid_request`: a malformed body or a password the policy refuses.", body = ApiError),
        (status = 429, description = "Too many tries from this address.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Busy or the database is unreachable.", body = ApiError, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(crate) async fn password_reset_confirm(
    State(api): State<Api>,
    info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(req): Body<ResetConfirm>,
) -> Result<Response, ApiError> {
    let ip = client_ip(info.as_deref());
    let store = &api.store;
    let password = req.password.as_str();
    // The policy for an account without a second factor, whether or not
    // this one has it: the answer, given before the code is checked, must
    // not tell who has one (the second factor stays through a reset).
    api.tokens
        .config()
        .password
        .check_new(password, false)
        .map_err(OpsError::from)?;
    let passwords = api.tokens.passwords();
    let slot = passwords.reserve(ip).map_err(|e| match e {
        SlotError::Address => refused(GrantError::AddressBusy),
        SlotError::Busy => refused(GrantError::Saturated),
    })?;
    api.tokens
        .config()
        .throttle
        .admit_reset(store, None, ip, UnixTime::now())
        .await
        .map_err(refused)?;
    let client_id = req.client_id.as_deref();
    let user = ops::account::redeem_reset(store, client_id, &req.username, &req.code).await?;
    let hash = passwords
        .hash_reserved(slot, password)
        .await
        .map_err(|_| refused(GrantError::Saturated))?;
    let signed_out = ops::account::finish_reset(store, client_id, &user, hash).await?;
    let body = PasswordReset {
        password_changed: true,
        signed_out,
    };
    Ok(crate::http::no_store(Json(body).into_response()))
}
