//! `/account/v1/…`: the signed-in user's own account.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::{Extension, Json};
use portcullis_domain::Username;
use portcullis_verify::AccessTokenClaims;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{AccountErrors, Api, ApiResult, NotFound, Path, Routes, user};
use super::devices::{DeviceList, SignedOut};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/me", get(me))
        .route("/devices", get(my_devices))
        .route("/devices/{id}", delete(my_sign_out_device))
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
