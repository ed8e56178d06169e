//! The OpenAPI 3.1 document of the whole HTTP API, served at
//! `GET /openapi.json` and checked in as `docs/openapi.json`.
//!
//! Built from the handlers' `#[utoipa::path]` annotations: those here and
//! the token service's ([`portcullis_token::openapi`]). The types below
//! describe JSON the handlers build with `json!`; they are never
//! constructed.
#![allow(dead_code, reason = "schema-only types: they describe, the handlers build")]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_token::openapi::{integer_header, string_header};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::{admin_api, health, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "An OAuth 2.0 authorization server for first-party apps: the token \
            endpoint (password and refresh_token grants), revocation, introspection, the JWKS and \
            metadata, the revocation feed, the admin and account APIs, probes and metrics. \
            Any endpoint may also answer 500 (an internal fault, logged with its cause) or 431 \
            (request headers over 32 KiB).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::render,
        serve,
        admin_api::clients,
        admin_api::client,
        admin_api::revoke_client,
        admin_api::users,
        admin_api::user,
        admin_api::disable_user,
        admin_api::revoke_user,
        admin_api::user_devices,
        admin_api::user_sign_out_device,
        admin_api::audit_events,
        admin_api::keys,
        admin_api::rotate_key,
        admin_api::me,
        admin_api::my_devices,
        admin_api::my_sign_out_device,
    ),
    components(schemas(ApiError, ApiErrorCode)),
    modifiers(&Shared),
    tags(
        (name = "admin", description = "Administration; tokens need the scope `portcullis:admin`"),
        (name = "account", description = "The signed-in user's own account"),
        (name = "operations", description = "Probes, metrics and this document"),
    ),
)]
struct ApiDoc;

/// The whole document.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(portcullis_token::openapi::openapi())
}

/// The document as served and checked in: pretty-printed JSON.
#[must_use]
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut text = document().to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
        text.push('\n');
        text
    })
}

/// `GET /openapi.json`.
pub(crate) fn router() -> Router {
    Router::new().route("/openapi.json", get(serve))
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json",
        body = Object)),
)]
pub(crate) async fn serve() -> Response {
    let mut res = document_json().into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Adds the bearer scheme and the shared error responses.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token of this server for its default audience, from the token endpoint. \
                 The admin API needs the scope `portcullis:admin`; the account API any scope. \
                 Checked against the database on every request.",
            ))
            .build();
        c.security_schemes
            .insert("access_token".to_owned(), SecurityScheme::Http(bearer));
        let challenge = || {
            string_header(
                "RFC 6750 §3: `Bearer realm=\"portcullis\"`, with `error` (and `scope`) when \
                 the token was there but refused.",
            )
        };
        let json_error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ApiError"))),
                )
                .header("Cache-Control", string_header("`no-store`"))
        };
        let responses = [
            (
                "ApiBadRequest",
                json_error(
                    "`invalid_request`: a malformed path, query or `Authorization` header, or a token \
                     in the query string; `unsupported_algorithm` for a key rotation.",
                ),
            ),
            (
                "ApiUnauthorized",
                ResponseBuilder::new()
                    .description("No token, or an invalid, expired or revoked one. No body.")
                    .header("WWW-Authenticate", challenge())
                    .header("Cache-Control", string_header("`no-store`")),
            ),
            (
                "ApiForbidden",
                ResponseBuilder::new()
                    .description("`insufficient_scope`: the token lacks `portcullis:admin`. No body.")
                    .header("WWW-Authenticate", challenge())
                    .header("Cache-Control", string_header("`no-store`")),
            ),
            ("ApiNotFound", json_error("`not_found`: no such name or id.")),
            (
                "ApiUnavailable",
                json_error("`temporarily_unavailable`: the database is unreachable.")
                    .header("Retry-After", integer_header("Seconds to wait before retrying (5).")),
            ),
        ];
        for (name, res) in responses {
            c.responses.insert(name.to_owned(), RefOr::T(res.build()));
        }
    }
}

fn refs(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    entries
        .iter()
        .map(|(status, name)| ((*status).to_owned(), RefOr::Ref(Ref::from_response_name(*name))))
        .collect()
}

/// The errors of every admin route: the token check's and the database's.
pub(crate) struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[
            ("400", "ApiBadRequest"),
            ("401", "ApiUnauthorized"),
            ("403", "ApiForbidden"),
            ("503", "ApiUnavailable"),
        ])
    }
}

/// The errors of every account route (no scope is required, so no 403).
pub(crate) struct AccountErrors;

impl IntoResponses for AccountErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[
            ("400", "ApiBadRequest"),
            ("401", "ApiUnauthorized"),
            ("503", "ApiUnavailable"),
        ])
    }
}

/// A route that names a client, user or device.
pub(crate) struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&[("404", "ApiNotFound")])
    }
}

/// An admin or account API error.
#[derive(ToSchema)]
pub(crate) struct ApiError {
    error: ApiErrorCode,
}

/// The admin and account APIs' error codes.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ApiErrorCode {
    InvalidRequest,
    NotFound,
    UnsupportedAlgorithm,
    TemporarilyUnavailable,
    ServerError,
}

/// A registered client (RFC 7591 names; never its secret).
#[derive(ToSchema)]
pub(crate) struct Client {
    client_id: String,
    client_name: String,
    grant_types: Vec<GrantType>,
    /// The scopes it may be granted, space-delimited.
    scope: String,
    /// Granted when a request names none.
    default_scope: String,
    token_endpoint_auth_method: AuthMethod,
    /// Whether it may call the introspection endpoint.
    introspect: bool,
    status: ClientStatus,
    created_at: i64,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum GrantType {
    Password,
    RefreshToken,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum AuthMethod {
    None,
    ClientSecretBasic,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ClientStatus {
    Active,
    Revoked,
}

#[derive(ToSchema)]
pub(crate) struct ClientList {
    clients: Vec<Client>,
}

#[derive(ToSchema)]
pub(crate) struct ClientRevoked {
    client_id: String,
    status: ClientStatus,
    /// Sign-ins (refresh families) ended.
    sign_ins_ended: u64,
}

/// A user (never their password hash).
#[derive(ToSchema)]
pub(crate) struct User {
    /// Stable id: the `sub` of their tokens.
    id: String,
    username: String,
    /// The scopes they may be granted, space-delimited.
    scope: String,
    status: UserStatus,
    created_at: i64,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum UserStatus {
    Active,
    Disabled,
}

#[derive(ToSchema)]
pub(crate) struct UserList {
    /// By username.
    users: Vec<User>,
}

#[derive(ToSchema)]
pub(crate) struct UserDisabled {
    username: String,
    status: UserStatus,
    sign_ins_ended: u64,
}

#[derive(ToSchema)]
pub(crate) struct UserTokensRevoked {
    username: String,
    sign_ins_ended: u64,
}

/// A signed-in device: a live refresh family.
#[derive(ToSchema)]
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

/// Who an access token speaks for.
#[derive(ToSchema)]
pub(crate) struct Me {
    /// The user's id (the token's `sub`).
    sub: String,
    username: String,
    /// The client the token was issued to.
    client_id: String,
    /// The token's scope.
    scope: String,
    /// When the token expires (Unix seconds).
    exp: i64,
}

#[derive(ToSchema)]
pub(crate) struct DeviceList {
    /// Newest first.
    devices: Vec<Device>,
}

#[derive(ToSchema)]
pub(crate) struct SignedOut {
    id: String,
    /// False when it was signed out already.
    signed_out: bool,
}

/// An audit-log entry.
#[derive(ToSchema)]
pub(crate) struct AuditEvent {
    id: i64,
    at: i64,
    /// E.g. `login.success`, `refresh.reuse`, `client.revoke`.
    action: String,
    #[schema(required = true)]
    actor: Option<String>,
    #[schema(required = true)]
    client_id: Option<String>,
    #[schema(required = true)]
    subject: Option<String>,
    #[schema(required = true)]
    ip: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct AuditEvents {
    /// Newest first.
    events: Vec<AuditEvent>,
}

/// A signing key (its public half is in the JWKS).
#[derive(ToSchema)]
pub(crate) struct SigningKey {
    kid: String,
    alg: Alg,
    state: KeyState,
    created_at: i64,
    #[schema(required = true)]
    retired_at: Option<i64>,
}

/// The signing algorithms.
#[derive(ToSchema)]
pub(crate) enum Alg {
    ES256,
    EdDSA,
    RS256,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum KeyState {
    Active,
    Retired,
}

#[derive(ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<SigningKey>,
}

/// Liveness.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub(crate) struct Health {
    status: HealthStatus,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum HealthStatus {
    Ok,
}

/// Readiness.
#[derive(ToSchema)]
pub(crate) struct Readiness {
    status: ReadyStatus,
    /// Why not ready: `database`.
    #[schema(required = false)]
    reason: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ReadyStatus {
    Ready,
    Unavailable,
}
