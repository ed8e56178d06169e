//! `/admin/v1/users…`: list, show, disable, end every sign-in.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json};
use portcullis_domain::{Scopes, Username};
use portcullis_verify::AccessTokenClaims;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{AdminErrors, Api, ApiResult, NotFound, Page, Path, Query, Routes, admin};
use super::mfa::MfaStatus;
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/users", get(users))
        .route("/users/{username}", get(user))
        .route("/users/{username}/disable", post(disable_user))
        .route("/users/{username}/revoke-tokens", post(revoke_user))
}

/// A user (never their password hash).
#[derive(Serialize, ToSchema)]
pub(crate) struct User {
    /// Stable id: the `sub` of their tokens.
    id: String,
    #[schema(value_type = String)]
    username: Username,
    /// The scopes they may be granted, space-delimited.
    #[schema(value_type = String)]
    scope: Scopes,
    status: UserStatus,
    /// The user's email address, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// Whether the owner proved they read mail sent to `email`.
    email_verified: bool,
    /// Whether a password is set (without one the user cannot sign in).
    has_password: bool,
    created_at: i64,
    /// The user's second factor (shown for one user, not in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa: Option<MfaStatus>,
}

impl From<&portcullis_store::User> for User {
    fn from(u: &portcullis_store::User) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            scope: u.scope.clone(),
            status: u.status.into(),
            email: u.email.as_ref().map(ToString::to_string),
            email_verified: u.email_verified_at.is_some(),
            has_password: u.password_hash.is_some(),
            created_at: u.created_at.0,
            mfa: None,
        }
    }
}

impl User {
    /// The user with their second factor.
    pub(crate) fn with_mfa(u: &portcullis_store::User, factor: &portcullis_store::SecondFactor) -> Self {
        Self {
            mfa: Some(MfaStatus::from(factor)),
            ..Self::from(u)
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UserStatus {
    Active,
    Disabled,
}

impl From<portcullis_store::UserStatus> for UserStatus {
    fn from(s: portcullis_store::UserStatus) -> Self {
        match s {
            portcullis_store::UserStatus::Active => Self::Active,
            portcullis_store::UserStatus::Disabled => Self::Disabled,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserList {
    /// By username.
    users: Vec<User>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserDisabled {
    #[schema(value_type = String)]
    username: Username,
    status: UserStatus,
    sign_ins_ended: u64,
}

impl From<ops::users::SignInsEnded> for UserDisabled {
    fn from(done: ops::users::SignInsEnded) -> Self {
        Self {
            username: done.user.username,
            status: UserStatus::Disabled,
            sign_ins_ended: done.ended,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserTokensRevoked {
    #[schema(value_type = String)]
    username: Username,
    sign_ins_ended: u64,
}

impl From<ops::users::SignInsEnded> for UserTokensRevoked {
    fn from(done: ops::users::SignInsEnded) -> Self {
        Self {
            username: done.user.username,
            sign_ins_ended: done.ended,
        }
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/users",
    tag = "admin",
    summary = "List users",
    params(
        ("after" = Option<String>, Query, description = "Users after this username."),
        ("limit" = Option<u64>, Query, maximum = 4_294_967_295_u64, description = "At most this many (default 100; more than 500 counts as 500)."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "A page of users.", body = UserList, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
pub(crate) async fn users(State(api): State<Api>, Query(p): Query<Page>) -> ApiResult<UserList> {
    let page = ops::users::list(&api.store, p.after.as_deref(), p.limit()).await?;
    Ok(Json(UserList {
        users: page.iter().map(User::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/users/{username}",
    tag = "admin",
    summary = "One user",
    params(
        ("username" = String, Path),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The user.", body = User, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn user(State(api): State<Api>, Path(username): Path<String>) -> ApiResult<User> {
    let found = ops::users::show(&api.store, &username).await?;
    let factor = ops::mfa::status(&api.store, &found.id).await?;
    Ok(Json(User::with_mfa(&found, &factor)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/users/{username}/disable",
    tag = "admin",
    summary = "Disable a user",
    params(
        ("username" = String, Path),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Disabled: sign-in is refused and every sign-in ends.", body = UserDisabled, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn disable_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult<UserDisabled> {
    let done = ops::users::disable(&api.store, &admin(&me), &username).await?;
    Ok(Json(done.into()))
}

#[utoipa::path(
    post,
    path = "/admin/v1/users/{username}/revoke-tokens",
    tag = "admin",
    summary = "End a user's sign-ins",
    params(
        ("username" = String, Path),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Every sign-in of the user ended.", body = UserTokensRevoked, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
pub(crate) async fn revoke_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult<UserTokensRevoked> {
    let done = ops::users::revoke_tokens(&api.store, &admin(&me), &username).await?;
    Ok(Json(done.into()))
}
