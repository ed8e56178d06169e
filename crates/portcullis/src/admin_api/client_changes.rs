//! `/admin/v1/clients…`: register (RFC 7591 names in and out), change,
//! rotate the secret. Revocation is final: a revoked client cannot be
//! changed, re-activated or given a new secret.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Extension, Json};
use portcullis_domain::{ClientId, GrantTypes, Scopes, WebOrigin, WebOrigins};
use portcullis_verify::AccessTokenClaims;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::clients::{AuthMethod, Client, grant_types};
use super::common::{AdminErrors, Api, ApiError, ApiResult, Conflict, JsonBody, NotFound, Path, Routes, admin};
use crate::ops;
use crate::ops::clients::{ClientEdit, DEFAULT_SECRET_GRACE_SECS, MAX_NAME_LEN, MAX_SECRET_GRACE_SECS, NewClientInput};

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/clients", post(create_client))
        .route("/clients/{id}", patch(update_client))
        .route("/clients/{id}/secret", post(rotate_client_secret))
}

/// A client to register: RFC 7591 client metadata, and this server's own
/// settings. Metadata this server does not know is ignored (RFC 7591 §2).
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateClient {
    /// A human-readable name (1 to 200 characters).
    client_name: String,
    /// The `client_id` to use (A-Z a-z 0-9 - _ ., at most 64); a random
    /// one when absent.
    client_id: Option<String>,
    /// `client_secret_basic` (default: a confidential client, given a
    /// secret) or `none` (a public client: mobile or browser app).
    token_endpoint_auth_method: Option<AuthMethod>,
    /// The grant types it may use (default: every one).
    #[schema(schema_with = grant_types)]
    #[serde(default)]
    grant_types: Vec<String>,
    /// The scopes it may request, space-delimited (default none).
    #[serde(default)]
    scope: String,
    /// Granted when a request names none (default: all of `scope`).
    default_scope: Option<String>,
    /// Whether it may call the introspection endpoint (confidential only).
    #[serde(default)]
    introspect: bool,
    /// Origins whose pages may use the /web/ endpoints; makes the client a
    /// public browser client.
    #[serde(default)]
    web_origins: Vec<String>,
    /// Whether users may sign up through it (default `false`).
    #[serde(default)]
    allow_sign_up: bool,
    /// The scopes of users who sign up through it (never `portcullis:admin`).
    #[serde(default)]
    sign_up_scope: String,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2; default
    /// `false`: DPoP is optional).
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    /// DPoP proofs must carry a current server nonce (RFC 9449 §8; default
    /// `false`).
    #[serde(default)]
    dpop_nonce_required: bool,
    /// A first-party client, which may use the Authorization Challenge
    /// Endpoint (default `false`).
    #[serde(default)]
    first_party: bool,
    /// Users without a second factor cannot sign in through the client
    /// (default `false`).
    #[serde(default)]
    mfa_required: bool,
}

/// A registered client (RFC 7591 §3.2.1), with its secret shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct ClientCreated {
    #[serde(flatten)]
    client: Client,
    /// The secret of a confidential client: shown only now, stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    /// When the client was registered (Unix seconds).
    client_id_issued_at: i64,
    /// `0`: the secret does not expire (present with a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
}

/// A change to a client; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateClient {
    client_name: Option<String>,
    /// New grant types (at least one).
    #[schema(schema_with = grant_types)]
    grant_types: Option<Vec<String>>,
    /// New allowed scopes, space-delimited; the default scope narrows with
    /// them unless given too.
    scope: Option<String>,
    default_scope: Option<String>,
    introspect: Option<bool>,
    /// New browser origins (public clients only).
    web_origins: Option<Vec<String>>,
    allow_sign_up: Option<bool>,
    sign_up_scope: Option<String>,
    dpop_bound_access_tokens: Option<bool>,
    dpop_nonce_required: Option<bool>,
    first_party: Option<bool>,
    mfa_required: Option<bool>,
}

/// A secret rotation.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSecret {
    /// How long the previous secret keeps working, in seconds (default
    /// 86400, a day; at most 2592000, 30 days; `0` ends it at once, as
    /// after a leak).
    #[schema(maximum = 2_592_000)]
    grace_period: Option<u64>,
}

/// A new secret, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretRotated {
    client_id: String,
    /// The new secret: shown only now, stored hashed.
    client_secret: String,
    /// `0`: the new secret does not expire.
    client_secret_expires_at: i64,
    /// Until when (Unix seconds) the previous secret still works; absent
    /// when it stopped at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<i64>,
}

fn refused(what: &str) -> ApiError {
    ApiError::invalid_request().describe(what.to_owned())
}

fn scope(text: &str, field: &str) -> Result<Scopes, ApiError> {
    Scopes::parse(text.trim()).map_err(|_| refused(&format!("{field} is malformed (RFC 6749 3.3)")))
}

fn grants(names: &[String]) -> Result<GrantTypes, ApiError> {
    GrantTypes::parse(&names.join(" ")).map_err(|_| refused("grant_types holds an unknown grant type"))
}

fn origins(list: &[String]) -> Result<WebOrigins, ApiError> {
    list.iter()
        .map(|o| WebOrigin::parse(o).map_err(|e| refused(&format!("web_origins: {e}"))))
        .collect()
}

fn name(text: &str) -> Result<String, ApiError> {
    if text.trim().is_empty() || text.len() > MAX_NAME_LEN || text.chars().any(char::is_control) {
        return Err(refused(
            "client_name must be 1 to 200 characters, no control characters",
        ));
    }
    Ok(text.to_owned())
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients",
    tag = "admin",
    summary = "Register a client",
    description = "RFC 7591 metadata names in and out. A confidential client's `client_secret` is in this answer only.",
    request_body = CreateClient,
    security(("access_token" = [])),
    responses(
        (status = 201, description = "Registered.", body = ClientCreated, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        Conflict,
    ),
)]
pub(crate) async fn create_client(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    JsonBody(body): JsonBody<CreateClient>,
) -> Result<(StatusCode, Json<ClientCreated>), ApiError> {
    let input = NewClientInput {
        id: body
            .client_id
            .as_deref()
            .map(ClientId::parse)
            .transpose()
            .map_err(|_| refused("client_id must be 1 to 64 characters of A-Z a-z 0-9 - _ ."))?,
        name: name(&body.client_name)?,
        public: body.token_endpoint_auth_method == Some(AuthMethod::None),
        web: origins(&body.web_origins)?,
        grants: grants(&body.grant_types)?,
        scope: scope(&body.scope, "scope")?,
        default_scope: body
            .default_scope
            .as_deref()
            .map(|d| scope(d, "default_scope"))
            .transpose()?,
        introspect: body.introspect,
        allow_sign_up: body.allow_sign_up,
        sign_up_scope: scope(&body.sign_up_scope, "sign_up_scope")?,
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
        dpop_nonce_required: body.dpop_nonce_required,
        first_party: body.first_party,
        mfa_required: body.mfa_required,
    };
    let created = ops::clients::create(&api.store, &admin(&me), input).await?;
    let secret = created.secret.as_ref().map(|s| s.expose().to_owned());
    Ok((
        StatusCode::CREATED,
        Json(ClientCreated {
            client_id_issued_at: created.client.created_at.0,
            client_secret_expires_at: secret.as_ref().map(|_| 0),
            client: Client::from(&created.client),
            client_secret: secret,
        }),
    ))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/clients/{id}",
    tag = "admin",
    summary = "Change a client",
    description = "Name, grants, scopes, default scope, introspection, browser origins, sign-up and DPoP. \
        A confidential client stays confidential and a public one public. A revoked client is `409`: revocation is final.",
    params(("id" = String, Path, description = "The client id.")),
    request_body = UpdateClient,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The client as changed.", body = Client, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
        Conflict,
    ),
)]
pub(crate) async fn update_client(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateClient>,
) -> ApiResult<Client> {
    let edit = ClientEdit {
        name: body.client_name.as_deref().map(name).transpose()?,
        grants: body.grant_types.as_deref().map(grants).transpose()?,
        scope: body.scope.as_deref().map(|s| scope(s, "scope")).transpose()?,
        default_scope: body
            .default_scope
            .as_deref()
            .map(|s| scope(s, "default_scope"))
            .transpose()?,
        introspect: body.introspect,
        web: body.web_origins.as_deref().map(origins).transpose()?,
        allow_sign_up: body.allow_sign_up,
        sign_up_scope: body
            .sign_up_scope
            .as_deref()
            .map(|s| scope(s, "sign_up_scope"))
            .transpose()?,
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
        dpop_nonce_required: body.dpop_nonce_required,
        first_party: body.first_party,
        mfa_required: body.mfa_required,
    };
    let client = ops::clients::update(&api.store, &admin(&me), &id, edit).await?;
    Ok(Json(Client::from(&client)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/secret",
    tag = "admin",
    summary = "Rotate a client's secret",
    description = "A new secret, shown this once. The previous one keeps working for `grace_period` seconds \
        (default a day, at most 30 days, `0` ends it at once); one kept from an earlier rotation ends now. \
        A public client is `400`, a revoked one `409`. The body may be empty.",
    params(("id" = String, Path, description = "The client id.")),
    request_body(content = Option<RotateSecret>, content_type = "application/json"),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Rotated.", body = SecretRotated, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
        NotFound,
        Conflict,
    ),
)]
pub(crate) async fn rotate_client_secret(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<SecretRotated> {
    let body: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| refused("the body must be empty or {\"grace_period\": seconds}"))?
    };
    let grace = body.grace_period.unwrap_or(DEFAULT_SECRET_GRACE_SECS);
    if grace > MAX_SECRET_GRACE_SECS {
        return Err(refused("grace_period may be at most 2592000 seconds (30 days)"));
    }
    let rotated = ops::clients::rotate_secret(&api.store, &admin(&me), &id, grace).await?;
    Ok(Json(SecretRotated {
        client_id: id,
        client_secret: rotated.secret.expose().to_owned(),
        client_secret_expires_at: 0,
        previous_secret_expires_at: rotated.previous_expires_at.map(|t| t.0),
    }))
}
