//! The second factor: `/account/v1/mfa…` (the signed-in user's own:
//! status, enrol an authenticator, remove it, new recovery codes) and
//! `DELETE /admin/v1/users/{username}/mfa` (an admin's reset).

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use portcullis_domain::Username;
use portcullis_store::SecondFactor;
use portcullis_verify::AccessTokenClaims;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::{Peer, ip};
use super::common::{
    AccountErrors, AdminErrors, Api, ApiResult, Conflict, JsonBody, NotFound, Path, Reauthentication, Routes, admin,
    user,
};
use crate::ops;

/// The account routes (under `/account/v1`).
pub(super) fn account_router() -> Routes {
    Routes::new()
        .route("/mfa", get(my_mfa))
        .route("/mfa/totp", post(start_totp))
        .route("/mfa/totp", delete(remove_totp))
        .route("/mfa/totp/confirm", post(confirm_totp))
        .route("/mfa/recovery-codes", post(new_recovery_codes))
}

/// The admin routes (under `/admin/v1`).
pub(super) fn admin_router() -> Routes {
    Routes::new().route("/users/{username}/mfa", delete(reset_mfa))
}

/// Where a user's authenticator is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TotpState {
    /// None enrolled.
    None,
    /// Enrolment started, waiting for its first code; not asked for at
    /// sign-in.
    Pending,
    /// Confirmed: sign-in asks for a code.
    Enrolled,
}

/// A user's second factor.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MfaStatus {
    totp: TotpState,
    /// Recovery codes not used yet.
    recovery_codes_left: i64,
}

impl From<&SecondFactor> for MfaStatus {
    fn from(f: &SecondFactor) -> Self {
        let totp = match &f.totp {
            None => TotpState::None,
            Some(t) if t.confirmed_at.is_some() => TotpState::Enrolled,
            Some(_) => TotpState::Pending,
        };
        Self {
            totp,
            recovery_codes_left: f.recovery_codes_left,
        }
    }
}

/// A started enrolment, shown once.
#[derive(Serialize, ToSchema)]
pub(crate) struct TotpEnrolment {
    /// The shared secret in base32 (RFC 4648, no padding), for typing in.
    secret: String,
    /// The `otpauth://totp/ISSUER:USERNAME?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
    /// URI authenticator apps scan.
    otpauth_uri: String,
    /// `otpauth_uri` as a QR code: an SVG document.
    qr_svg: String,
}

/// A code of the authenticator (6 digits).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TotpCode {
    /// 6 digits; for new recovery codes, a recovery code works too.
    code: String,
}

/// Removal: the password and a current code (or a recovery code).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveTotp {
    #[schema(format = Password)]
    password: String,
    /// A code of the authenticator, or a recovery code (not needed for an
    /// authenticator never confirmed).
    #[serde(default)]
    code: String,
}

/// New recovery codes, shown once (each works once, in place of an
/// authenticator code).
#[derive(Serialize, ToSchema)]
pub(crate) struct RecoveryCodes {
    /// 10 codes `xxxx-xxxx-xxxx-xxxx`.
    recovery_codes: Vec<String>,
}

impl From<ops::mfa::RecoveryCodes> for RecoveryCodes {
    fn from(c: ops::mfa::RecoveryCodes) -> Self {
        Self { recovery_codes: c.0 }
    }
}

/// The second factor was removed.
#[derive(Serialize, ToSchema)]
pub(crate) struct MfaRemoved {
    totp: TotpState,
    recovery_codes_left: i64,
}

/// An admin's reset.
#[derive(Serialize, ToSchema)]
pub(crate) struct MfaReset {
    #[schema(value_type = String)]
    username: Username,
    /// Whether the user had a second factor (or a pending one).
    removed: bool,
    /// Every sign-in of the user, ended.
    sign_ins_ended: u64,
}

#[utoipa::path(
    get,
    path = "/account/v1/mfa",
    tag = "account",
    summary = "My second factor",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The authenticator's state and the recovery codes left.", body = MfaStatus, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
    ),
)]
pub(crate) async fn my_mfa(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
) -> ApiResult<MfaStatus> {
    Ok(Json(MfaStatus::from(&ops::mfa::status(&api.store, &me.sub).await?)))
}

#[utoipa::path(
    post,
    path = "/account/v1/mfa/totp",
    tag = "account",
    summary = "Start enrolling an authenticator",
    description = "A new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s), replacing one never confirmed. \
        Sign-in does not ask for it until it is confirmed with a first code. `409` (`reason: mfa_enrolled`) \
        when one is enrolled already.",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The secret, its URI and QR code: shown once.", body = TotpEnrolment, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        Conflict,
    ),
)]
pub(crate) async fn start_totp(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
) -> ApiResult<TotpEnrolment> {
    let e = ops::mfa::start_totp(&api.store, &api.tokens, &user(&me), &me.sub).await?;
    Ok(Json(TotpEnrolment {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
        qr_svg: e.qr_svg,
    }))
}

#[utoipa::path(
    post,
    path = "/account/v1/mfa/totp/confirm",
    tag = "account",
    summary = "Confirm the authenticator",
    description = "A code the new authenticator shows (one step of clock drift either side) activates it: \
        sign-in asks for a code from then on. The answer holds 10 recovery codes, shown this once. A wrong \
        code is `400 invalid_grant` (`reason: invalid_code`) and counts like a wrong password.",
    request_body = TotpCode,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Enrolled.", body = RecoveryCodes, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        Conflict,
        Reauthentication,
    ),
)]
pub(crate) async fn confirm_totp(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    peer: Peer,
    JsonBody(body): JsonBody<TotpCode>,
) -> ApiResult<RecoveryCodes> {
    let codes = ops::mfa::confirm_totp(&api.store, &api.tokens, &user(&me), &me.sub, &body.code, ip(&peer)).await?;
    Ok(Json(codes.into()))
}

#[utoipa::path(
    delete,
    path = "/account/v1/mfa/totp",
    tag = "account",
    summary = "Remove my second factor",
    description = "Checks the password and a current code (or a recovery code), each counted like a sign-in \
        attempt, then removes the authenticator and the recovery codes. The password must meet the policy \
        for an account without a second factor (`400`, `reason: password_too_short`: change it first). `409` \
        (`reason: mfa_not_enrolled`) when there is nothing to remove.",
    request_body = RemoveTotp,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Removed.", body = MfaRemoved, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        Conflict,
        Reauthentication,
    ),
)]
pub(crate) async fn remove_totp(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    peer: Peer,
    JsonBody(body): JsonBody<RemoveTotp>,
) -> ApiResult<MfaRemoved> {
    let password = SecretString::from(body.password);
    let who = ops::lifecycle::Reauthenticated {
        user_id: &me.sub,
        password: &password,
        ip: ip(&peer),
    };
    ops::mfa::remove(&api.store, &api.tokens, &user(&me), who, &body.code).await?;
    Ok(Json(MfaRemoved {
        totp: TotpState::None,
        recovery_codes_left: 0,
    }))
}

#[utoipa::path(
    post,
    path = "/account/v1/mfa/recovery-codes",
    tag = "account",
    summary = "New recovery codes",
    description = "Checks a current code of the authenticator (or a recovery code, then used), counted like \
        a sign-in attempt, and replaces every recovery code with 10 new ones, shown this once.",
    request_body = TotpCode,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The new codes; the old ones no longer work.", body = RecoveryCodes, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        Conflict,
        Reauthentication,
    ),
)]
pub(crate) async fn new_recovery_codes(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    peer: Peer,
    JsonBody(body): JsonBody<TotpCode>,
) -> ApiResult<RecoveryCodes> {
    let codes =
        ops::mfa::new_recovery_codes(&api.store, &api.tokens, &user(&me), &me.sub, &body.code, ip(&peer)).await?;
    Ok(Json(codes.into()))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/users/{username}/mfa",
    tag = "admin",
    summary = "Reset a user's second factor",
    description = "Removes the user's authenticator and recovery codes (a user who lost both) and ends every \
        sign-in of theirs, as `revoke-tokens` does. They sign in with the password alone until \
        they enrol again.",
    params(
        ("username" = String, Path),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Reset.", body = MfaReset, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn reset_mfa(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult<MfaReset> {
    let done = ops::mfa::reset(&api.store, &admin(&me), &username).await?;
    Ok(Json(done.into()))
}

impl From<ops::mfa::Reset> for MfaReset {
    fn from(done: ops::mfa::Reset) -> Self {
        Self {
            username: done.user.username,
            removed: done.removed,
            sign_ins_ended: done.ended,
        }
    }
}
