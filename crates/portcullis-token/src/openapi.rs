//! The OpenAPI description of the token service's routes. The `portcullis`
//! crate merges it into the server's document (`GET /openapi.json`).
//!
//! Types here describe JSON the handlers build with `json!` and the form
//! they parse with [`Form`](crate::form::Form); they are never constructed.
#![allow(dead_code, reason = "schema-only types: they describe, the handlers build")]

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::{routes, web};

/// The token service's part of the server's OpenAPI document.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    TokenApi::openapi()
}

#[derive(OpenApi)]
#[openapi(
    paths(
        routes::token,
        routes::revoke,
        routes::introspect,
        routes::revocations,
        routes::jwks,
        routes::metadata,
        web::sign_in,
        web::refresh,
        web::sign_out,
        web::preflight_sign_in,
        web::preflight_refresh,
        web::preflight_sign_out,
    ),
    components(schemas(OAuthError, ErrorCode)),
    modifiers(&Shared),
    tags(
        (name = "oauth", description = "The OAuth 2.0 endpoints (RFC 6749, 7009, 7662, 8414)"),
        (name = "web", description = "Browser clients: the refresh token only in an HttpOnly cookie. Every \
            call needs the page's `Origin` (registered for the client) and `X-Portcullis-CSRF: 1`."),
    ),
)]
struct TokenApi;

/// Adds the shared error responses and the client authentication scheme.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let basic = Http::builder()
            .scheme(HttpAuthScheme::Basic)
            .description(Some(
                "`client_secret_basic` (RFC 6749 §2.3.1): the client id and secret, each \
                 form-urlencoded, as the HTTP Basic user and password. Confidential clients may \
                 send `client_id` and `client_secret` in the body instead; public clients send \
                 `client_id` alone.",
            ))
            .build();
        c.security_schemes
            .insert("client_secret_basic".to_owned(), SecurityScheme::Http(basic));
        let feed = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The revocation-feed secret (`--revocation-feed-secret`), when one is configured.",
            ))
            .build();
        c.security_schemes
            .insert("revocation_feed_secret".to_owned(), SecurityScheme::Http(feed));
        for (name, description, retry) in [
            (
                "OAuthBadRequest",
                "A malformed or refused request (RFC 6749 §5.2).",
                None,
            ),
            (
                "OAuthInvalidClient",
                "`invalid_client`: client authentication failed. With `WWW-Authenticate: Basic \
                 realm=\"portcullis\"` when the client used HTTP Basic.",
                None,
            ),
            (
                "WebForbidden",
                "`access_denied`: the CSRF rules refused the request (no `Origin`, one not \
                 registered for the client, or no `X-Portcullis-CSRF: 1`). Nothing changed.",
                None,
            ),
            (
                "OAuthForbidden",
                "`unauthorized_client`: the client may not use this endpoint.",
                None,
            ),
            ("OAuthRequestTimeout", "The body did not arrive in time.", None),
            ("OAuthPayloadTooLarge", "The body is over 2 MiB.", None),
            (
                "OAuthThrottled",
                "`temporarily_unavailable`: too many failed sign-ins for this user or address, or \
                 too many sign-ins in progress from this address.",
                Some("Seconds to wait before retrying."),
            ),
            (
                "OAuthUnavailable",
                "`temporarily_unavailable`: the database is unreachable or password hashing is \
                 saturated.",
                Some("Seconds to wait before retrying (5)."),
            ),
        ] {
            let mut res = oauth_error(description);
            if name == "OAuthInvalidClient" {
                res = res.header(
                    "WWW-Authenticate",
                    string_header("`Basic realm=\"portcullis\"`, when the client used HTTP Basic."),
                );
            }
            if let Some(retry) = retry {
                res = res.header("Retry-After", integer_header(retry));
            }
            c.responses.insert(name.to_owned(), RefOr::T(res.build()));
        }
    }
}

/// An RFC 6749 §5.2 error answer, not cacheable.
fn oauth_error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("OAuthError"))),
        )
        .header("Cache-Control", string_header("`no-store`"))
        .header("Pragma", string_header("`no-cache`"))
}

/// A response header holding a string.
pub fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// A response header holding a whole number.
pub fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

/// References to shared responses, by status.
fn refs(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    entries
        .iter()
        .map(|(status, name)| ((*status).to_owned(), RefOr::Ref(Ref::from_response_name(*name))))
        .collect()
}

/// The errors of every client-authenticated form endpoint.
pub(crate) struct FormErrors;

impl IntoResponses for FormErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[
            ("400", "OAuthBadRequest"),
            ("401", "OAuthInvalidClient"),
            ("408", "OAuthRequestTimeout"),
            ("413", "OAuthPayloadTooLarge"),
            ("503", "OAuthUnavailable"),
        ])
    }
}

/// Sign-in refusals of the token endpoint (429).
pub(crate) struct Throttled;

impl IntoResponses for Throttled {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[("429", "OAuthThrottled")])
    }
}

/// The introspection endpoint's refusal of clients not allowed to use it.
pub(crate) struct Forbidden;

impl IntoResponses for Forbidden {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[("403", "OAuthForbidden")])
    }
}

/// An error answer (RFC 6749 §5.2).
#[derive(ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "the grant is invalid, expired or revoked"}))]
pub(crate) struct OAuthError {
    /// The error code.
    error: ErrorCode,
    /// Short fixed English text; it reveals no internals.
    error_description: String,
}

/// The error codes the server answers.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    TemporarilyUnavailable,
    ServerError,
    /// A cookie endpoint's CSRF rules refused the request (403).
    AccessDenied,
}

/// A token request, as form parameters: the password grant (RFC 6749
/// §4.3.2) or the refresh_token grant (§6), told apart by `grant_type`. A
/// parameter sent empty counts as absent; a repeated one is an error.
pub(crate) struct TokenRequest;

impl utoipa::PartialSchema for TokenRequest {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let mapping = [
            ("password", "#/components/schemas/PasswordGrant"),
            ("refresh_token", "#/components/schemas/RefreshGrant"),
        ];
        let mut discriminator = utoipa::openapi::Discriminator::new("grant_type");
        discriminator.mapping = mapping.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(Ref::from_schema_name("PasswordGrant"))
            .item(Ref::from_schema_name("RefreshGrant"))
            .discriminator(Some(discriminator))
            .description(Some(
                "The password grant or the refresh_token grant, told apart by `grant_type`. A \
                 parameter sent empty counts as absent; a repeated one is an error.",
            ))
            .into()
    }
}

impl ToSchema for TokenRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>) {
        for (name, schema) in [
            ("PasswordGrant", <PasswordGrant as utoipa::PartialSchema>::schema()),
            ("RefreshGrant", <RefreshGrant as utoipa::PartialSchema>::schema()),
        ] {
            schemas.push((name.to_owned(), schema));
        }
        <PasswordGrant as ToSchema>::schemas(schemas);
        <RefreshGrant as ToSchema>::schemas(schemas);
    }
}

/// Sign-in with a username and password (RFC 6749 §4.3.2).
#[derive(ToSchema)]
#[schema(example = json!({
    "grant_type": "password", "username": "alice", "password": "a long passphrase", "scope": "read",
    "device_name": "Alice's phone"
}))]
pub(crate) struct PasswordGrant {
    #[schema(inline)]
    grant_type: PasswordType,
    /// The user's name.
    #[schema(min_length = 1)]
    username: String,
    /// The user's password (at most 1024 bytes).
    #[schema(min_length = 1, format = Password)]
    password: String,
    /// Space-delimited scopes (by default the client's default scope).
    #[schema(required = false)]
    scope: String,
    /// RFC 8707 resource: the audience of the access token.
    #[schema(required = false)]
    resource: String,
    /// A name for the device, shown in the device list.
    #[schema(required = false, max_length = 100)]
    device_name: String,
    /// `client_secret_post` and public clients.
    #[schema(required = false)]
    client_id: String,
    /// `client_secret_post`.
    #[schema(required = false, format = Password)]
    client_secret: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum PasswordType {
    Password,
}

/// A refresh (RFC 6749 §6): a new access token and a new refresh token.
#[derive(ToSchema)]
pub(crate) struct RefreshGrant {
    #[schema(inline)]
    grant_type: RefreshType,
    /// The refresh token; it is spent by the refresh.
    #[schema(min_length = 1)]
    refresh_token: String,
    /// Space-delimited scopes, at most the sign-in's (by default the
    /// sign-in's).
    #[schema(required = false)]
    scope: String,
    /// RFC 8707 resource: the audience of the access token.
    #[schema(required = false)]
    resource: String,
    /// `client_secret_post` and public clients.
    #[schema(required = false)]
    client_id: String,
    /// `client_secret_post`.
    #[schema(required = false, format = Password)]
    client_secret: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RefreshType {
    RefreshToken,
}

/// A revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1) request,
/// as form parameters, with client authentication as at the token endpoint.
#[derive(ToSchema)]
#[schema(example = json!({"token": "hG3kq0wJ3x7Yc9", "token_type_hint": "refresh_token"}))]
pub(crate) struct TokenQuery {
    /// The token: an access token or a refresh token.
    #[schema(min_length = 1)]
    token: String,
    /// Where to look first; both kinds are looked up anyway.
    #[schema(required = false)]
    token_type_hint: String,
    /// `client_secret_post` and public clients.
    #[schema(required = false)]
    client_id: String,
    /// `client_secret_post`.
    #[schema(required = false, format = Password)]
    client_secret: String,
}

/// RFC 7662 §2.2. Anything not active is exactly `{"active": false}`; an
/// access token answers its claims, a refresh token those listed here.
#[derive(ToSchema)]
pub(crate) struct Introspection {
    active: bool,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    #[schema(required = false, nullable = false)]
    token_type: Option<IntrospectedType>,
    #[schema(required = false)]
    client_id: String,
    #[schema(required = false)]
    scope: String,
    /// The user's id.
    #[schema(required = false)]
    sub: String,
    #[schema(required = false)]
    iss: String,
    /// One audience or several.
    #[schema(required = false, schema_with = audience)]
    aud: String,
    #[schema(required = false)]
    exp: i64,
    #[schema(required = false)]
    iat: i64,
    #[schema(required = false)]
    nbf: i64,
    #[schema(required = false)]
    jti: String,
    /// The sign-in (refresh family).
    #[schema(required = false)]
    sid: String,
}

/// The `token_type` of an active token.
#[derive(ToSchema)]
pub(crate) enum IntrospectedType {
    Bearer,
    #[schema(rename = "refresh_token")]
    RefreshToken,
}

fn audience() -> utoipa::openapi::schema::Schema {
    let string = || utoipa::openapi::ObjectBuilder::new().schema_type(Type::String);
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(string())
        .item(utoipa::openapi::schema::ArrayBuilder::new().items(string()))
        .into()
}

/// A page of the revocation feed.
#[derive(ToSchema)]
pub(crate) struct RevocationFeed {
    /// In cursor order.
    entries: Vec<FeedEntry>,
}

/// One revocation. A token is revoked when an entry matches it with
/// `revoked_at >= iat`.
#[derive(ToSchema)]
pub(crate) struct FeedEntry {
    /// Ask for entries after the last one seen.
    cursor: i64,
    kind: FeedKind,
    /// The `client_id`, `sub`, `sid` or `jti` it matches.
    id: String,
    revoked_at: i64,
}

/// What a feed entry matches: `client` a token's `client_id`, `user` its
/// `sub`, `family` its `sid`, `jti` its `jti`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum FeedKind {
    Client,
    User,
    Family,
    Jti,
}

/// The public signing keys (RFC 7517).
#[derive(ToSchema)]
pub(crate) struct Jwks {
    keys: Vec<Jwk>,
}

/// A public signing key; never a private member.
#[derive(ToSchema)]
pub(crate) struct Jwk {
    /// `EC`, `OKP` or `RSA`.
    kty: String,
    kid: String,
    /// `ES256`, `EdDSA` or `RS256`.
    alg: String,
    /// Always `sig`.
    #[schema(rename = "use")]
    use_: String,
    /// `P-256` (EC) or `Ed25519` (OKP).
    #[schema(required = false)]
    crv: String,
    #[schema(required = false)]
    x: String,
    #[schema(required = false)]
    y: String,
    #[schema(required = false)]
    n: String,
    #[schema(required = false)]
    e: String,
}

/// Authorization server metadata (RFC 8414 §2).
#[derive(ToSchema)]
pub(crate) struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    grant_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Empty: there is no authorization endpoint.
    response_types_supported: Vec<String>,
    /// When scopes are configured.
    #[schema(required = false)]
    scopes_supported: Vec<String>,
}

/// The errors of the cookie endpoints (`/web/…`).
pub(crate) struct WebErrors;

impl IntoResponses for WebErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[
            ("400", "OAuthBadRequest"),
            ("401", "OAuthInvalidClient"),
            ("403", "WebForbidden"),
            ("408", "OAuthRequestTimeout"),
            ("413", "OAuthPayloadTooLarge"),
            ("503", "OAuthUnavailable"),
        ])
    }
}

/// `POST /web/sign-in`: a browser client's sign-in, as form parameters.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "spa", "username": "alice", "password": "a long passphrase"}))]
pub(crate) struct WebSignIn {
    /// The browser client (a public client with registered origins).
    #[schema(min_length = 1)]
    client_id: String,
    /// The user's name.
    #[schema(min_length = 1)]
    username: String,
    /// The user's password (at most 1024 bytes).
    #[schema(min_length = 1, format = Password)]
    password: String,
    /// Space-delimited scopes (by default the client's default scope).
    #[schema(required = false)]
    scope: String,
    /// A name for the device, shown in the device list.
    #[schema(required = false, max_length = 100)]
    device_name: String,
}

/// `POST /web/refresh` and `/web/sign-out`: the refresh token comes from
/// the cookie, never from the body.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "spa"}))]
pub(crate) struct WebClient {
    /// The browser client.
    #[schema(min_length = 1)]
    client_id: String,
}

/// A browser client's tokens: the access token only; the refresh token is
/// in the `Set-Cookie` header.
#[derive(ToSchema)]
pub(crate) struct WebTokens {
    /// The JWT access token (RFC 9068); keep it in memory only.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Access-token lifetime in seconds.
    expires_in: i64,
    /// The granted scope.
    scope: String,
}

/// `{}`
#[derive(ToSchema)]
pub(crate) struct Empty {}
