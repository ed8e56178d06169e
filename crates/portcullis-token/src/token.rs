//! `POST /oauth/token`: the password and refresh_token grants, answered
//! as RFC 6749 §5.1 / §5.2 say.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::map_response;
use axum::routing::post;
use axum::{Json, Router};
use portcullis_domain::GrantType;
use utoipa::ToSchema;
use utoipa::openapi::{Ref, RefOr};

use crate::edge::{form_request, no_store_layer, peer};
use crate::grants::{self, CodeGrant, Grant, PasswordGrant, RefreshGrant};
use crate::responses::{FormErrors, Throttled};
use crate::{GrantError, TokenResponse, TokenService, client_auth};

/// The route.
pub(crate) fn router(svc: &Arc<TokenService>) -> Router<Arc<TokenService>> {
    // The layer covers every answer of the path, 405 and 413 included.
    Router::new().route(
        "/oauth/token",
        post(token)
            .layer(map_response(no_store_layer))
            .route_layer(axum::middleware::from_fn_with_state(
                svc.clone(),
                crate::dpop::nonce_layer,
            )),
    )
}

/// `POST /oauth/token`. Parameters come from the form body only; the query
/// string is never read (RFC 6749 §3.2).
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    summary = "Sign in (password grant, or a code of /oauth/authorize-challenge) or refresh (refresh_token grant)",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    params(
        ("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449 §4): the tokens are bound to its key \
            (`token_type` `DPoP`). Required for clients registered with `dpop_bound_access_tokens`."),
    ),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "The tokens (RFC 6749 §5.1).", body = TokenResponse, headers(
            ("Cache-Control" = String, description = "`no-store`"),
            ("Pragma" = String, description = "`no-cache`"),
            ("DPoP-Nonce" = String, description = "With a DPoP proof: the nonce to put in the next proofs (RFC 9449 §8)."),
        )),
        FormErrors,
        Throttled,
    ),
)]
pub(crate) async fn token(
    State(svc): State<Arc<TokenService>>,
    req: Request,
) -> Result<Json<TokenResponse>, GrantError> {
    token_inner(&svc, req).await.map(Json)
}

async fn token_inner(svc: &TokenService, req: Request) -> Result<TokenResponse, GrantError> {
    let (parts, mut form) = form_request(svc, req).await?;
    let ip = peer(&parts.extensions);
    let grant_type = form.get("grant_type").map(str::parse::<GrantType>);
    // Before the client is known, each grant does what must come first.
    // The password grant takes its place in the hashing pool (a flood is
    // refused before any database read). A refresh reads its token with
    // the family, user and client in one query; the client row is then
    // used for the authentication (when it is the client presented), and
    // the rest by the grant. No answer depends on the token before the
    // client is authenticated; only the timing can tell an unauthenticated
    // caller holding a real token of a confidential client that it exists
    // (one read fewer), which does not let it use the token. Parse errors
    // are answered after client authentication.
    let slot = match grant_type {
        Some(Ok(GrantType::Password)) => Some(grants::reserve(svc, ip).await?),
        _ => None,
    };
    // Counted until the answer: hashing keeps to sign-ins' share beside
    // the refreshes in flight (`password::Refreshing`).
    let _refreshing = matches!(grant_type, Some(Ok(GrantType::RefreshToken))).then(|| svc.passwords().refreshing());
    let presented = client_auth::presented(&parts.headers, &form)?;
    let grant = match (grant_type, slot) {
        (_, Some(slot)) => Some(Grant::Password(
            PasswordGrant::from_form(&mut form, svc.passwords()),
            slot,
        )),
        (Some(Ok(GrantType::RefreshToken)), None) => {
            let grant = RefreshGrant::from_form(&mut form);
            let context = match &grant {
                Ok(g) => Some(grants::prefetch(svc, g).await),
                Err(_) => None,
            };
            Some(Grant::Refresh(grant, context))
        }
        (Some(Ok(GrantType::AuthorizationCode)), None) => Some(Grant::Code(CodeGrant::from_form(&mut form))),
        _ => None,
    };
    let known = match &grant {
        Some(Grant::Refresh(_, Some(Ok(context)))) => Some(context.2.clone()),
        _ => None,
    };
    let client = client_auth::authenticate(svc.store(), presented, known).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    let grant_type = grant_type
        .ok_or(GrantError::InvalidRequest("grant_type is required"))?
        .map_err(|_| GrantError::UnsupportedGrantType)?;
    // A browser client's refresh token lives in an HttpOnly cookie set by
    // the /web/ endpoints; this endpoint would hand it to page scripts.
    if !client.grant_types.allows(grant_type) || !client.web_origins.is_empty() {
        return Err(GrantError::UnauthorizedClient);
    }
    // The proof before the grant: a nonce round trip or a bad proof never
    // reaches the password check (RFC 9449 §8 costs no failed sign-in).
    let dpop = svc.dpop_key(&parts.headers, "/oauth/token", &client)?;
    let grant = grant.ok_or(GrantError::Internal)?;
    grants::run(svc, grant, &client, ip, dpop.as_deref()).await
}

/// A token request, as form parameters: the password grant (RFC 6749
/// §4.3.2) or the refresh_token grant (§6), told apart by `grant_type`. A
/// parameter sent empty counts as absent; a repeated one is an error.
struct TokenRequest;

impl utoipa::PartialSchema for TokenRequest {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let mapping = [
            ("authorization_code", "#/components/schemas/AuthorizationCodeGrant"),
            ("password", "#/components/schemas/PasswordGrant"),
            ("refresh_token", "#/components/schemas/RefreshGrant"),
        ];
        let mut discriminator = utoipa::openapi::Discriminator::new("grant_type");
        discriminator.mapping = mapping.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(Ref::from_schema_name("AuthorizationCodeGrant"))
            .item(Ref::from_schema_name("PasswordGrant"))
            .item(Ref::from_schema_name("RefreshGrant"))
            .discriminator(Some(discriminator))
            .description(Some(
                "The authorization_code, password or refresh_token grant, told apart by `grant_type`. A \
                 parameter sent empty counts as absent; a repeated one is an error.",
            ))
            .into()
    }
}

impl ToSchema for TokenRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>) {
        for (name, schema) in [
            ("AuthorizationCodeGrant", <CodeForm as utoipa::PartialSchema>::schema()),
            ("PasswordGrant", <PasswordForm as utoipa::PartialSchema>::schema()),
            ("RefreshGrant", <RefreshForm as utoipa::PartialSchema>::schema()),
        ] {
            schemas.push((name.to_owned(), schema));
        }
        <CodeForm as ToSchema>::schemas(schemas);
        <PasswordForm as ToSchema>::schemas(schemas);
        <RefreshForm as ToSchema>::schemas(schemas);
    }
}

/// Sign-in with a username and password (RFC 6749 §4.3.2).
#[derive(ToSchema)]
#[schema(example = json!({
    "grant_type": "password", "username": "alice", "password": "a long passphrase", "scope": "read",
    "device_name": "Alice's phone"
}))]
#[allow(
    dead_code,
    reason = "a request-body schema: the handler parses the form into grants::PasswordGrant"
)]
struct PasswordForm {
    #[schema(inline)]
    grant_type: PasswordType,
    /// The user's name, compared in its RFC 8265 UsernameCaseMapped form
    /// (`ALICE` and fullwidth `ａｌｉｃｅ` are `alice`). A name with a
    /// space, a control, zero-width or bidi character, or over 256 bytes,
    /// is `invalid_request`.
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
#[allow(dead_code, reason = "a request-body schema")]
enum PasswordType {
    Password,
}

/// A refresh (RFC 6749 §6): a new access token and a new refresh token.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "a request-body schema: the handler parses the form into grants::RefreshGrant"
)]
struct RefreshForm {
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
#[allow(dead_code, reason = "a request-body schema")]
enum RefreshType {
    RefreshToken,
}

/// Exchange of a code of `/oauth/authorize-challenge` (RFC 6749 §4.1.3,
/// RFC 7636 §4.5). No `redirect_uri`: the code was not sent through one.
#[derive(ToSchema)]
#[schema(example = json!({
    "grant_type": "authorization_code", "code": "uY29tL2F1dGhlbnRpY2F0aW9uX2NvZGVfZXhhbXBsZQ",
    "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "client_id": "mobile"
}))]
#[allow(
    dead_code,
    reason = "a request-body schema: the handler parses the form into grants::CodeGrant"
)]
struct CodeForm {
    #[schema(inline)]
    grant_type: CodeType,
    /// The code; it is spent by this request, whatever its outcome.
    #[schema(min_length = 1)]
    code: String,
    /// The PKCE verifier: 43 to 128 characters of `A-Z a-z 0-9 - . _ ~`.
    #[schema(min_length = 43, max_length = 128)]
    code_verifier: String,
    /// RFC 8707 resource: the audience of the access token.
    #[schema(required = false)]
    resource: String,
    /// A name for the device, shown in the device list.
    #[schema(required = false, max_length = 100)]
    device_name: String,
    /// The client the code was issued to (public clients; or
    /// `client_secret_post`).
    #[schema(required = false)]
    client_id: String,
    /// `client_secret_post`.
    #[schema(required = false, format = Password)]
    client_secret: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code, reason = "a request-body schema")]
enum CodeType {
    AuthorizationCode,
}
