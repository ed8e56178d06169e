//! `/account/v1/…`: the signed-in user's own account.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use portcullis_domain::Username;
use portcullis_verify::AccessTokenClaims;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{
    AccountErrors, Api, ApiError, ApiResult, JsonBody, NotFound, Path, Reauthentication, Routes, user,
};
use super::devices::{DeviceList, SignedOut};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/me", get(me))
        .route("/devices", get(my_devices))
        .route("/devices/{id}", delete(my_sign_out_device))
        .route("/password", post(change_my_password))
        .route("/", delete(delete_me))
}

/// Who an access token speaks for.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    /// The user's id (the token's `sub`).
    sub: String,
    #[schema(value_type = String)]
    username: Username,
    /// The client the token was issued to.
    client_id: String,
    /// The token's scope.
    scope: String,
    /// When the token expires (Unix seconds).
    exp: i64,
}

/// `GET /account/v1/me`: who the token speaks for (a protected call for
/// browser and mobile apps to show the signed-in user).
#[utoipa::path(
    get,
    path = "/account/v1/me",
    tag = "account",
    summary = "Who the access token speaks for",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The signed-in user.", body = Me, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
    ),
)]
pub(crate) async fn me(State(api): State<Api>, Extension(me): Extension<AccessTokenClaims>) -> ApiResult<Me> {
    let found = ops::users::by_id(&api.store, &me.sub).await?;
    Ok(Json(Me {
        username: found.username,
        sub: me.sub,
        client_id: me.client_id,
        scope: me.scope,
        exp: me.exp,
    }))
}

#[utoipa::path(
    get,
    path = "/account/v1/devices",
    tag = "account",
    summary = "My signed-in devices",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Live sign-ins.", body = DeviceList, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
    ),
)]
pub(crate) async fn my_devices(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
) -> ApiResult<DeviceList> {
    Ok(Json(ops::devices::list(&api.store, &me.sub).await?.into()))
}

#[utoipa::path(
    delete,
    path = "/account/v1/devices/{id}",
    tag = "account",
    summary = "Sign out one of my devices",
    description = "Another user's device is `404`.",
    params(
        ("id" = String, Path, description = "The device (refresh family) id."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Signed out (or already); the others stay signed in.", body = SignedOut, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        NotFound,
    ),
)]
pub(crate) async fn my_sign_out_device(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(id): Path<String>,
) -> ApiResult<SignedOut> {
    let signed_out = ops::devices::sign_out(&api.store, &user(&me), &me.sub, &id).await?;
    Ok(Json(SignedOut::new(id, signed_out)))
}

/// A password change: the current password (re-authentication) and the
/// new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    #[schema(format = Password)]
    current_password: String,
    #[schema(format = Password)]
    new_password: String,
}

/// The password changed.
#[derive(Serialize, ToSchema)]
pub(crate) struct PasswordChanged {
    /// The user's other sign-ins, ended.
    sign_ins_ended: u64,
}

/// An account deletion: the current password (re-authentication).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteAccount {
    #[schema(format = Password)]
    password: String,
}

/// The account is deleted.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountDeleted {
    #[schema(value_type = String)]
    username: Username,
    /// Every sign-in of the account, ended.
    sign_ins_ended: u64,
}

pub(super) type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

pub(super) fn ip(peer: &Peer) -> Option<std::net::IpAddr> {
    peer.as_ref().map(|Extension(ConnectInfo(a))| a.ip())
}

#[utoipa::path(
    post,
    path = "/account/v1/password",
    tag = "account",
    summary = "Change my password",
    description = "Checks the current password (counted like a sign-in attempt), sets the new one and ends \
        every other sign-in of the user at once (a `family` entry each in the revocation feed). The sign-in \
        the access token belongs to (its `sid`) stays. A wrong current password is `400` `invalid_grant`.",
    request_body = ChangePassword,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Changed.", body = PasswordChanged, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        Reauthentication,
    ),
)]
pub(crate) async fn change_my_password(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    peer: Peer,
    JsonBody(body): JsonBody<ChangePassword>,
) -> ApiResult<PasswordChanged> {
    let keep = me
        .sid
        .clone()
        .ok_or_else(|| ApiError::from(crate::ops::OpsError::NoSignIn))?;
    let current = SecretString::from(body.current_password);
    let who = ops::lifecycle::Reauthenticated {
        user_id: &me.sub,
        password: &current,
        ip: ip(&peer),
    };
    let ended = ops::lifecycle::change_own_password(
        &api.store,
        &api.tokens,
        &user(&me),
        who,
        &keep,
        &SecretString::from(body.new_password),
    )
    .await?;
    Ok(Json(PasswordChanged { sign_ins_ended: ended }))
}

#[utoipa::path(
    delete,
    path = "/account/v1",
    tag = "account",
    summary = "Delete my account",
    description = "Checks the password (counted like a sign-in attempt), then deletes the user and every \
        sign-in of theirs, as an admin's delete does; the revocation feed gets a `user` entry. The app \
        then forgets its tokens. A wrong password is `400` `invalid_grant`.",
    request_body = DeleteAccount,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Deleted.", body = AccountDeleted, headers(("Cache-Control" = String, description = "`no-store`"))),
        AccountErrors,
        Reauthentication,
    ),
)]
pub(crate) async fn delete_me(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    peer: Peer,
    JsonBody(body): JsonBody<DeleteAccount>,
) -> ApiResult<AccountDeleted> {
    let password = SecretString::from(body.password);
    let who = ops::lifecycle::Reauthenticated {
        user_id: &me.sub,
        password: &password,
        ip: ip(&peer),
    };
    let done = ops::lifecycle::delete_own(&api.store, &api.tokens, &user(&me), who).await?;
    Ok(Json(AccountDeleted {
        username: done.user.username,
        sign_ins_ended: done.ended,
    }))
}
