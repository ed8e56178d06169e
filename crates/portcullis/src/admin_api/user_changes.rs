//! `/admin/v1/users…`: create, change, enable, set a password, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, patch, post};
use axum::{Extension, Json};
use portcullis_domain::{ADMIN_SCOPE, Email, Scopes, Username};
use portcullis_verify::AccessTokenClaims;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{AdminErrors, Api, ApiError, ApiResult, Conflict, JsonBody, NotFound, Path, Routes, admin};
use super::users::User;
use crate::ops;
use crate::ops::lifecycle::UserEdit;
use crate::ops::users::NewUserInput;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/users", post(create_user))
        .route("/users/{username}", patch(update_user))
        .route("/users/{username}", delete(delete_user))
        .route("/users/{username}/enable", post(enable_user))
        .route("/users/{username}/password", post(set_user_password))
}

/// A user to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// The sign-in name (RFC 8265: compared ignoring case and width).
    username: String,
    /// The password. Without one the user cannot sign in until a
    /// password is set (by an admin, or reset through a verified email).
    #[schema(format = Password)]
    password: Option<String>,
    /// An email address, unique ignoring case.
    email: Option<String>,
    /// Whether the address counts as verified at once (default `false`).
    #[serde(default)]
    email_verified: bool,
    /// The scopes the user may be granted, space-delimited (default none).
    #[serde(default)]
    scope: String,
    /// Grants `portcullis:admin` (default `false`).
    #[serde(default)]
    admin: bool,
}

/// A change to a user; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    /// New scopes, space-delimited.
    scope: Option<String>,
    /// Grants (`true`) or takes away (`false`) `portcullis:admin`.
    admin: Option<bool>,
    /// A new email address; `null` removes it. A new address is not
    /// verified unless `email_verified` is `true`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    /// Marks the address verified or not.
    email_verified: Option<bool>,
}

/// A field that may be given as `null`: `Some(None)`, unlike an absent one.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A password set by an admin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassword {
    #[schema(format = Password)]
    password: String,
}

/// What a password change or a deletion did.
#[derive(Serialize, ToSchema)]
pub(crate) struct SignInsEnded {
    #[schema(value_type = String)]
    username: Username,
    /// Sign-ins (refresh families) ended.
    sign_ins_ended: u64,
}

fn scope(text: &str) -> Result<Scopes, ApiError> {
    Scopes::parse(text.trim()).map_err(|_| ApiError::invalid_request().describe("scope is malformed (RFC 6749 3.3)"))
}

fn email(text: &str) -> Result<Email, ApiError> {
    Email::parse(text).map_err(|e| ApiError::invalid_request().describe(e.to_string()))
}

#[utoipa::path(
    post,
    path = "/admin/v1/users",
    tag = "admin",
    summary = "Create a user",
    request_body = CreateUser,
    security(("access_token" = [])),
    responses(
        (status = 201, description = "Created.", body = User, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        Conflict,
    ),
)]
pub(crate) async fn create_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let username = Username::parse(&body.username).map_err(|e| ApiError::invalid_request().describe(e.to_string()))?;
    let mut scope = scope(&body.scope)?;
    if body.admin {
        scope = Scopes::trusted(&format!("{scope} {ADMIN_SCOPE}"));
    }
    let input = NewUserInput {
        username,
        password: body.password.map(SecretString::from),
        scope,
        email: body.email.as_deref().map(email).transpose()?,
        email_verified: body.email_verified,
    };
    let user = ops::users::create(
        &api.store,
        &admin(&me),
        input,
        &api.tokens.config().password,
        api.tokens.passwords(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/users/{username}",
    tag = "admin",
    summary = "Change a user's scope, admin right or email address",
    params(("username" = String, Path)),
    request_body = UpdateUser,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The user as changed.", body = User, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
        Conflict,
    ),
)]
pub(crate) async fn update_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> ApiResult<User> {
    let edit = UserEdit {
        scope: body.scope.as_deref().map(scope).transpose()?,
        admin: body.admin,
        email: body.email.map(|e| e.as_deref().map(email).transpose()).transpose()?,
        email_verified: body.email_verified,
    };
    let user = ops::lifecycle::update(&api.store, &admin(&me), &username, edit).await?;
    Ok(Json(User::from(&user)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/users/{username}/enable",
    tag = "admin",
    summary = "Enable a disabled user",
    description = "The user may sign in again; sign-ins ended by the disable stay ended. Enabling an active user changes nothing.",
    params(("username" = String, Path)),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The user, active.", body = User, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn enable_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult<User> {
    let user = ops::lifecycle::enable(&api.store, &admin(&me), &username).await?;
    Ok(Json(User::from(&user)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/users/{username}/password",
    tag = "admin",
    summary = "Set a user's password",
    description = "Every sign-in of the user ends (a `user` entry in the revocation feed).",
    params(("username" = String, Path)),
    request_body = SetPassword,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Set; every sign-in ended.", body = SignInsEnded, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn set_user_password(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<SetPassword>,
) -> ApiResult<SignInsEnded> {
    let done = ops::users::set_password(
        &api.store,
        &admin(&me),
        &username,
        &SecretString::from(body.password),
        &api.tokens.config().password,
        api.tokens.passwords(),
    )
    .await?;
    Ok(Json(SignInsEnded {
        username: done.user.username,
        sign_ins_ended: done.ended,
    }))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/users/{username}",
    tag = "admin",
    summary = "Delete a user",
    description = "Deletes the user and every sign-in of theirs; the revocation feed gets a `user` entry, \
        the audit log a `user.delete` row naming them by a pseudonym.",
    params(("username" = String, Path)),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Deleted.", body = SignInsEnded, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn delete_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult<SignInsEnded> {
    let done = ops::lifecycle::delete(&api.store, &admin(&me), &username).await?;
    Ok(Json(SignInsEnded {
        username: done.user.username,
        sign_ins_ended: done.ended,
    }))
}
