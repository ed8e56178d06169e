//! `/admin/v1/users/{username}/devices…`: a user's signed-in devices, and
//! signing one out. The device types serve the account API too.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::{Extension, Json};
use portcullis_store::RefreshFamily;
use portcullis_verify::AccessTokenClaims;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{AdminErrors, Api, ApiResult, NotFound, Path, Routes, admin};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/users/{username}/devices", get(user_devices))
        .route("/users/{username}/devices/{id}", delete(user_sign_out_device))
}

/// A signed-in device: a live refresh family.
#[derive(Serialize, ToSchema)]
pub(crate) struct Device {
    id: String,
    /// As given at sign-in.
    #[schema(required = true)]
    device_name: Option<String>,
    client_id: String,
    scope: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceList {
    /// Newest first.
    devices: Vec<Device>,
}

impl From<Vec<RefreshFamily>> for DeviceList {
    fn from(families: Vec<RefreshFamily>) -> Self {
        let devices = families
            .into_iter()
            .map(|f| Device {
                id: f.id,
                device_name: f.device_label,
                client_id: f.client_id,
                scope: f.scope,
                created_at: f.created_at.0,
                last_used_at: f.last_used_at.0,
                expires_at: f.expires_at.0,
            })
            .collect();
        Self { devices }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SignedOut {
    id: String,
    /// False when it was signed out already.
    signed_out: bool,
}

impl SignedOut {
    pub(crate) fn new(id: String, signed_out: bool) -> Self {
        Self { id, signed_out }
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/users/{username}/devices",
    tag = "admin",
    summary = "A user's signed-in devices",
    params(
        ("username" = String, Path),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Live sign-ins.", body = DeviceList, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn user_devices(State(api): State<Api>, Path(username): Path<String>) -> ApiResult<DeviceList> {
    let user = ops::users::show(&api.store, &username).await?;
    Ok(Json(ops::devices::list(&api.store, &user.id).await?.into()))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/users/{username}/devices/{id}",
    tag = "admin",
    summary = "Sign out one of a user's devices",
    params(
        ("username" = String, Path),
        ("id" = String, Path, description = "The device (refresh family) id."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Signed out (or already).", body = SignedOut, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn user_sign_out_device(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path((username, id)): Path<(String, String)>,
) -> ApiResult<SignedOut> {
    let user = ops::users::show(&api.store, &username).await?;
    let signed_out = ops::devices::sign_out(&api.store, &admin(&me), &user.id, &id).await?;
    Ok(Json(SignedOut::new(id, signed_out)))
}
