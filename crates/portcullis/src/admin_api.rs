//! The admin API (`/admin/v1/…`) and the account API (`/account/v1/…`).
//!
//! Both are resource servers of this very server: requests carry one of its
//! access tokens, checked with `portcullis-verify` and then against the
//! database (so a revocation takes effect at once on every instance). The
//! admin API needs the scope `portcullis:admin`; the account API serves the
//! token's own user.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use portcullis_domain::AuditAction;
use portcullis_store::{
    AuditStore as _, ClientStore as _, KeyStore as _, NewAuditEvent, RefreshFamily, RefreshStore as _,
    RevocationStore as _, RevokeReason, SqlStore, StoreError, UnixTime, UserStatus, UserStore as _, UserUpdate,
};
use portcullis_token::TokenService;
use portcullis_verify::axum::Rejection;
use portcullis_verify::{AccessTokenClaims, VerifyError, bearer_token, require_scopes};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{ADMIN_SCOPE, client_json, key_json, user_json};
use crate::health::no_store;
#[allow(unused_imports, reason = "named by the OpenAPI annotations")]
use crate::openapi::{
    AccountErrors, AdminErrors, AuditEvents, Client, ClientList, ClientRevoked, DeviceList, KeyList, Me, NotFound,
    SignedOut, SigningKey, User, UserDisabled, UserList, UserTokensRevoked,
};

#[derive(Clone)]
struct Api {
    store: SqlStore,
    tokens: Arc<TokenService>,
}

/// The admin and account routes.
pub fn router(store: SqlStore, tokens: Arc<TokenService>) -> Router {
    let api = Api { store, tokens };
    let admin = Router::new()
        .route("/clients", get(clients))
        .route("/clients/{id}", get(client))
        .route("/clients/{id}/revoke", post(revoke_client))
        .route("/users", get(users))
        .route("/users/{username}", get(user))
        .route("/users/{username}/disable", post(disable_user))
        .route("/users/{username}/revoke-tokens", post(revoke_user))
        .route("/users/{username}/devices", get(user_devices))
        .route("/users/{username}/devices/{id}", delete(user_sign_out_device))
        .route("/audit", get(audit_events))
        .route("/keys", get(keys))
        .route("/keys/rotate", post(rotate_key))
        .layer(from_fn_with_state(
            Guard {
                api: api.clone(),
                scopes: &[ADMIN_SCOPE],
            },
            require,
        ));
    let account = Router::new()
        .route("/me", get(me))
        .route("/devices", get(my_devices))
        .route("/devices/{id}", delete(my_sign_out_device))
        .layer(from_fn_with_state(
            Guard {
                api: api.clone(),
                scopes: &[],
            },
            require,
        ));
    Router::new()
        .nest("/admin/v1", admin)
        .nest("/account/v1", account)
        .with_state(api)
}

async fn authenticate(api: &Api, req: &Parts, scopes: &[&str]) -> Result<AccessTokenClaims, Rejection> {
    let realm = "portcullis";
    let token = bearer_token(
        req.headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
        req.uri.query(),
    )
    .map_err(|e| Rejection::new(e, realm))?;
    let claims = api
        .tokens
        .verify_live_access_token(token)
        .await
        .map_err(|e| Rejection::new(e, realm))?;
    // Only tokens for this server's own audience, not for other APIs.
    if !claims.aud.contains(&api.tokens.config().audience) {
        return Err(Rejection::new(VerifyError::InvalidToken("audience"), realm));
    }
    require_scopes(&claims, scopes).map_err(|e| Rejection::new(e, realm))?;
    Ok(claims)
}

/// What a group of routes requires: a live token of this server with
/// these scopes.
#[derive(Clone)]
struct Guard {
    api: Api,
    scopes: &'static [&'static str],
}

async fn require(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match authenticate(&guard.api, &parts, guard.scopes).await {
        Ok(claims) => {
            parts.extensions.insert(claims);
            no_store(next.run(Request::from_parts(parts, body)).await)
        }
        Err(r) => rejection(r),
    }
}

/// The RFC 6750 answer to a refused token. A 400 or 503 also carries the
/// JSON error body that the handlers' answers of the same status carry,
/// so each status has one shape.
fn rejection(r: Rejection) -> Response {
    let code = match r.error.status() {
        400 => "invalid_request",
        503 => "temporarily_unavailable",
        _ => return r.into_response(),
    };
    let (mut parts, _) = r.into_response().into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, json!({ "error": code }).to_string().into())
}

/// `axum::extract::Path`, refusing with the API's JSON error (400
/// `invalid_request`) rather than axum's plain text. A NUL byte (`%00`) is
/// refused too: no name or id has one, and PostgreSQL cannot compare text
/// with one (the lookup would fail as a database error, 500).
struct Path<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.path().contains("%00") {
            return Err(ApiError(StatusCode::BAD_REQUEST, "invalid_request"));
        }
        axum::extract::Path::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid_request"))
    }
}

/// `axum::extract::Query`, refusing like [`Path`].
struct Query<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError(StatusCode::BAD_REQUEST, "invalid_request"));
        }
        axum::extract::Query::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "invalid_request"))
    }
}

/// An admin API failure, as JSON.
struct ApiError(StatusCode, &'static str);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self(StatusCode::NOT_FOUND, "not_found"),
            StoreError::Unavailable => Self(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            _ => Self(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.0, Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

async fn record(api: &Api, actor: &AccessTokenClaims, action: AuditAction, subject: &str) {
    let event = NewAuditEvent {
        actor: Some(actor.sub.clone()),
        client_id: Some(actor.client_id.clone()),
        subject: Some(subject.to_owned()),
        ..NewAuditEvent::new(action)
    };
    api.store.record_audit_or_warn(&event, UnixTime::now()).await;
}

fn device_json(f: &RefreshFamily) -> Value {
    json!({
        "id": f.id, "device_name": f.device_label, "client_id": f.client_id, "scope": f.scope,
        "created_at": f.created_at.0, "last_used_at": f.last_used_at.0, "expires_at": f.expires_at.0,
    })
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients",
    tag = "admin",
    summary = "List clients",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Every client.", body = ClientList, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
async fn clients(State(api): State<Api>) -> ApiResult {
    let all = api.store.list_clients().await?;
    Ok(Json(
        json!({"clients": all.iter().map(client_json).collect::<Vec<_>>()}),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients/{id}",
    tag = "admin",
    summary = "One client",
    params(
        ("id" = String, Path, description = "The client id."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The client.", body = Client, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
async fn client(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(client_json(&api.store.client_by_id(&id).await?)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/revoke",
    tag = "admin",
    summary = "Revoke a client",
    params(
        ("id" = String, Path, description = "The client id."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Revoked: its sign-ins end and the feed gets an entry.", body = ClientRevoked, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
    ),
)]
async fn revoke_client(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(id): Path<String>,
) -> ApiResult {
    let ended = api.store.revoke_client(&id, UnixTime::now()).await?;
    record(&api, &me, AuditAction::ClientRevoke, &id).await;
    Ok(Json(
        json!({"client_id": id, "status": "revoked", "sign_ins_ended": ended}),
    ))
}

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
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
async fn users(State(api): State<Api>, Query(p): Query<Page>) -> ApiResult {
    let limit = p.limit.unwrap_or(100).clamp(1, 500);
    let page = api.store.list_users(p.after.as_deref(), limit).await?;
    Ok(Json(json!({"users": page.iter().map(user_json).collect::<Vec<_>>()})))
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
async fn user(State(api): State<Api>, Path(username): Path<String>) -> ApiResult {
    Ok(Json(user_json(&api.store.user_by_username(&username).await?)))
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
async fn disable_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult {
    let u = api.store.user_by_username(&username).await?;
    let update = UserUpdate {
        status: Some(UserStatus::Disabled),
        password_hash: None,
    };
    let ended = api
        .store
        .update_and_revoke_user(&u.id, &update, RevokeReason::UserRevoked, UnixTime::now())
        .await?;
    record(&api, &me, AuditAction::UserDisable, &u.id).await;
    Ok(Json(
        json!({"username": username, "status": "disabled", "sign_ins_ended": ended}),
    ))
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
async fn revoke_user(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(username): Path<String>,
) -> ApiResult {
    let u = api.store.user_by_username(&username).await?;
    let ended = api
        .store
        .revoke_user(&u.id, RevokeReason::UserRevoked, UnixTime::now())
        .await?;
    record(&api, &me, AuditAction::UserRevokeTokens, &u.id).await;
    Ok(Json(json!({"username": username, "sign_ins_ended": ended})))
}

async fn devices_of(api: &Api, user_id: &str) -> ApiResult {
    let live = api.store.live_families_for_user(user_id, UnixTime::now()).await?;
    Ok(Json(
        json!({"devices": live.iter().map(device_json).collect::<Vec<_>>()}),
    ))
}

/// Revokes one family of `user_id`; 404 when it is not theirs.
async fn sign_out(api: &Api, me: &AccessTokenClaims, user_id: &str, family_id: &str) -> ApiResult {
    let family = api.store.family_by_id(family_id).await?;
    if family.user_id != user_id {
        return Err(ApiError(StatusCode::NOT_FOUND, "not_found"));
    }
    let reason = if me.sub == user_id {
        RevokeReason::SignOut
    } else {
        RevokeReason::Admin
    };
    let signed_out = api.store.revoke_family(family_id, reason, UnixTime::now()).await?;
    if signed_out {
        record(api, me, AuditAction::DeviceSignOut, family_id).await;
    }
    Ok(Json(json!({"id": family_id, "signed_out": signed_out})))
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
async fn user_devices(State(api): State<Api>, Path(username): Path<String>) -> ApiResult {
    let u = api.store.user_by_username(&username).await?;
    devices_of(&api, &u.id).await
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
async fn user_sign_out_device(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path((username, id)): Path<(String, String)>,
) -> ApiResult {
    let u = api.store.user_by_username(&username).await?;
    sign_out(&api, &me, &u.id, &id).await
}

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
/// `GET /account/v1/me`: who the token speaks for (a protected call for
/// browser and mobile apps to show the signed-in user).
async fn me(State(api): State<Api>, Extension(me): Extension<AccessTokenClaims>) -> ApiResult {
    let user = api.store.user_by_id(&me.sub).await?;
    Ok(Json(json!({
        "sub": me.sub,
        "username": user.username,
        "client_id": me.client_id,
        "scope": me.scope,
        "exp": me.exp,
    })))
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
async fn my_devices(State(api): State<Api>, Extension(me): Extension<AccessTokenClaims>) -> ApiResult {
    devices_of(&api, &me.sub).await
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
async fn my_sign_out_device(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(id): Path<String>,
) -> ApiResult {
    let sub = me.sub.clone();
    sign_out(&api, &me, &sub, &id).await
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "admin",
    summary = "The audit log",
    params(
        ("before" = Option<i64>, Query, description = "Events before this id."),
        ("limit" = Option<u64>, Query, maximum = 4_294_967_295_u64, description = "At most this many (default 100; more than 500 counts as 500)."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Newest first.", body = AuditEvents, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
async fn audit_events(State(api): State<Api>, Query(p): Query<Page>) -> ApiResult {
    let limit = p.limit.unwrap_or(100).clamp(1, 500);
    let events = api.store.audit_events(p.before, limit).await?;
    Ok(Json(
        json!({ "events": events.iter().map(crate::admin::event_json).collect::<Vec<_>>() }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/keys",
    tag = "admin",
    summary = "The signing keys",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Every stored key.", body = KeyList, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
async fn keys(State(api): State<Api>) -> ApiResult {
    let keys = api.store.signing_keys().await?;
    Ok(Json(json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
struct RotateQuery {
    alg: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys/rotate",
    tag = "admin",
    summary = "Create a signing key",
    params(
        ("alg" = Option<crate::openapi::Alg>, Query, description = "The algorithm (default: the configured one)."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The new key; it signs once its publication delay has passed.", body = SigningKey, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
async fn rotate_key(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Query(q): Query<RotateQuery>,
) -> Result<Json<Value>, ApiError> {
    let alg = match q.alg.as_deref() {
        None => api.tokens.config().signing_alg,
        Some(a) => a
            .parse()
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "unsupported_algorithm"))?,
    };
    let new = portcullis_token::keys::generate(alg, None)
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "server_error"))?;
    let key = api.store.insert_signing_key(&new, UnixTime::now()).await?;
    record(&api, &me, AuditAction::KeysRotate, &key.kid).await;
    if let Err(e) = api.tokens.reload_keys().await {
        tracing::warn!(error = %e, "could not reload keys after a rotation");
    }
    Ok(Json(key_json(&key)))
}
