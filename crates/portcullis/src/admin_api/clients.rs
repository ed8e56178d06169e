//! `/admin/v1/clients…`: list, show, revoke.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json};
use portcullis_domain::{GrantType, GrantTypes, Scopes, WebOrigins};
use portcullis_verify::AccessTokenClaims;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, Type};

use super::common::{AdminErrors, Api, ApiResult, NotFound, Path, Routes, admin};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/clients", get(clients))
        .route("/clients/{id}", get(client))
        .route("/clients/{id}/revoke", post(revoke_client))
}

/// A registered client (RFC 7591 names; never its secret).
#[derive(Serialize, ToSchema)]
pub(crate) struct Client {
    client_id: String,
    client_name: String,
    #[schema(schema_with = grant_types)]
    grant_types: GrantTypes,
    /// The scopes it may be granted, space-delimited.
    #[schema(value_type = String)]
    scope: Scopes,
    /// Granted when a request names none.
    #[schema(value_type = String)]
    default_scope: Scopes,
    token_endpoint_auth_method: AuthMethod,
    /// Whether it may call the introspection endpoint.
    introspect: bool,
    /// Origins whose pages may use the /web/ endpoints (browser clients).
    #[schema(value_type = Vec<String>)]
    web_origins: WebOrigins,
    /// Whether users may sign up through this client.
    allow_sign_up: bool,
    /// The scopes of users who sign up through it, space-delimited.
    #[schema(value_type = String)]
    sign_up_scope: Scopes,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    dpop_bound_access_tokens: bool,
    /// DPoP proofs must carry a current server nonce (RFC 9449 §8).
    dpop_nonce_required: bool,
    /// A first-party client: may use the Authorization Challenge Endpoint.
    first_party: bool,
    /// Users without a second factor cannot sign in through this client.
    mfa_required: bool,
    /// After a secret rotation with a grace period: until when (Unix
    /// seconds) the previous secret still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<i64>,
    status: ClientStatus,
    created_at: i64,
}

impl From<&portcullis_store::Client> for Client {
    fn from(c: &portcullis_store::Client) -> Self {
        Self {
            client_id: c.id.clone(),
            client_name: c.name.clone(),
            grant_types: c.grant_types.clone(),
            scope: c.scope.clone(),
            default_scope: c.default_scope.clone(),
            token_endpoint_auth_method: AuthMethod::of(c),
            introspect: c.introspect,
            web_origins: c.web_origins.clone(),
            allow_sign_up: c.allow_sign_up,
            sign_up_scope: c.sign_up_scope.clone(),
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            dpop_nonce_required: c.dpop_nonce_required,
            first_party: c.first_party,
            mfa_required: c.mfa_required,
            previous_secret_expires_at: c
                .previous_secret_at(portcullis_store::UnixTime::now())
                .and(c.previous_secret.map(|p| p.expires_at.0)),
            status: c.status.into(),
            created_at: c.created_at.0,
        }
    }
}

/// The grant types (an array of their names).
pub(crate) fn grant_types() -> Array {
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(GrantType::ALL.map(GrantType::as_str)))
        .build();
    ArrayBuilder::new().items(name).build()
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuthMethod {
    None,
    ClientSecretBasic,
}

impl AuthMethod {
    /// `none` for a public client, else `client_secret_basic`.
    pub(crate) fn of(c: &portcullis_store::Client) -> Self {
        if c.is_public() {
            Self::None
        } else {
            Self::ClientSecretBasic
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClientStatus {
    Active,
    Revoked,
}

impl From<portcullis_store::ClientStatus> for ClientStatus {
    fn from(s: portcullis_store::ClientStatus) -> Self {
        match s {
            portcullis_store::ClientStatus::Active => Self::Active,
            portcullis_store::ClientStatus::Revoked => Self::Revoked,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ClientList {
    clients: Vec<Client>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ClientRevoked {
    client_id: String,
    status: ClientStatus,
    /// Sign-ins (refresh families) ended.
    sign_ins_ended: u64,
}

impl ClientRevoked {
    pub(crate) fn new(client_id: &str, sign_ins_ended: u64) -> Self {
        Self {
            client_id: client_id.to_owned(),
            status: ClientStatus::Revoked,
            sign_ins_ended,
        }
    }
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
pub(crate) async fn clients(State(api): State<Api>) -> ApiResult<ClientList> {
    let all = ops::clients::list(&api.store).await?;
    Ok(Json(ClientList {
        clients: all.iter().map(Client::from).collect(),
    }))
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
pub(crate) async fn client(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<Client> {
    Ok(Json(Client::from(&ops::clients::show(&api.store, &id).await?)))
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
pub(crate) async fn revoke_client(
    State(api): State<Api>,
    Extension(me): Extension<AccessTokenClaims>,
    Path(id): Path<String>,
) -> ApiResult<ClientRevoked> {
    let ended = ops::clients::revoke(&api.store, &admin(&me), &id).await?;
    Ok(Json(ClientRevoked::new(&id, ended)))
}
