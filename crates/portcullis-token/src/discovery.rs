//! Discovery: `GET /.well-known/jwks.json` (the public signing keys) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414 metadata).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::TokenService;

/// The routes.
pub(crate) fn router() -> Router<Arc<TokenService>> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
}

/// `GET /.well-known/jwks.json`: the public signing keys.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    summary = "The public signing keys (JWKS)",
    responses((status = 200, description = "The keys that verify access tokens.", body = Jwks, headers(
        ("Cache-Control" = String, description = "`public, max-age=…` (the configured JWKS max-age)"),
    ))),
)]
pub(crate) async fn jwks(State(svc): State<Arc<TokenService>>) -> Response {
    let max_age = svc.config().jwks_max_age.as_secs();
    let mut res = Json(svc.keys().jwks.clone()).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    res
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    summary = "Authorization server metadata (RFC 8414)",
    responses((status = 200, description = "The server's endpoints and what they support.", body = Metadata,
        headers(("Cache-Control" = String, description = "`public, max-age=300`")))),
)]
pub(crate) async fn metadata(State(svc): State<Arc<TokenService>>) -> Response {
    let cfg = svc.config();
    let issuer = &cfg.issuer;
    let doc = Metadata {
        issuer: issuer.clone(),
        token_endpoint: format!("{issuer}/oauth/token"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        authorization_challenge_endpoint: format!("{issuer}{}", crate::authorize_challenge::PATH),
        grant_types_supported: &["authorization_code", "password", "refresh_token"],
        code_challenge_methods_supported: &["S256"],
        token_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post", "none"],
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        revocation_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post", "none"],
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        introspection_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post"],
        // No authorization endpoint (no browser redirects): codes come from
        // the Authorization Challenge Endpoint.
        response_types_supported: &[],
        scopes_supported: cfg.scopes_supported.clone(),
        dpop_signing_alg_values_supported: svc.dpop().algorithm_names(),
    };
    let mut res = Json(doc).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// The public signing keys (RFC 7517).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Jwks {
    /// The published keys.
    keys: Vec<Jwk>,
}

/// A public signing key; never a private member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Jwk {
    /// `EC`, `OKP` or `RSA`.
    kty: String,
    kid: String,
    /// `ES256`, `EdDSA` or `RS256`.
    alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    use_: String,
    /// `P-256` (EC) or `Ed25519` (OKP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    e: Option<String>,
}

/// Authorization server metadata (RFC 8414 §2).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    /// The Authorization Challenge Endpoint
    /// (draft-ietf-oauth-first-party-apps), for first-party clients.
    authorization_challenge_endpoint: String,
    #[schema(value_type = Vec<String>)]
    grant_types_supported: &'static [&'static str],
    /// PKCE methods (RFC 7636): `S256` only.
    #[schema(value_type = Vec<String>)]
    code_challenge_methods_supported: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    token_endpoint_auth_methods_supported: &'static [&'static str],
    revocation_endpoint: String,
    #[schema(value_type = Vec<String>)]
    revocation_endpoint_auth_methods_supported: &'static [&'static str],
    introspection_endpoint: String,
    #[schema(value_type = Vec<String>)]
    introspection_endpoint_auth_methods_supported: &'static [&'static str],
    /// Empty: there is no authorization endpoint.
    #[schema(value_type = Vec<String>)]
    response_types_supported: &'static [&'static str],
    /// When scopes are configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    scopes_supported: Vec<String>,
    /// The algorithms DPoP proofs may use (RFC 9449 §5.1).
    #[schema(value_type = Vec<String>)]
    dpop_signing_alg_values_supported: Vec<&'static str>,
}
