//! `POST /oauth/authorize-challenge`: the Authorization Challenge Endpoint
//! of OAuth 2.0 for First-Party Applications
//! (draft-ietf-oauth-first-party-apps), for first-party native apps that
//! sign users in without a browser. Parses and renders; the rules are in
//! [`crate::grants::challenge`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use portcullis_domain::GrantType;
use portcullis_store::UnixTime;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{Ref, RefOr};

use crate::edge::{form_request, no_store_layer, peer};
use crate::error::{ErrorCode, no_store};
use crate::grants::challenge::Outcome;
use crate::grants::{self, ChallengeRequest};
use crate::{GrantError, TokenService, client_auth};

/// The endpoint's path.
pub(crate) const PATH: &str = "/oauth/authorize-challenge";

/// The route.
pub(crate) fn router(svc: &Arc<TokenService>) -> Router<Arc<TokenService>> {
    Router::new().route(
        PATH,
        post(authorize_challenge)
            .layer(map_response(no_store_layer))
            .route_layer(axum::middleware::from_fn_with_state(
                svc.clone(),
                crate::dpop::nonce_layer,
            )),
    )
}

/// `POST /oauth/authorize-challenge`.
#[utoipa::path(
    post,
    path = "/oauth/authorize-challenge",
    tag = "oauth",
    summary = "Sign in a first-party app without a browser: an authorization code for the token endpoint",
    description = "The Authorization Challenge Endpoint (draft-ietf-oauth-first-party-apps-04) for clients \
        registered as first-party. The first request sends `username`, `password` and a PKCE \
        `code_challenge` (`code_challenge_method=S256`). A user without a second factor gets an \
        `authorization_code` at once; for a user with one, the answer is 400 \
        `insufficient_authorization` with an `auth_session` and `mfa_required: \"otp\"`, and the next \
        request sends `auth_session` and `otp` (an authenticator code or a recovery code). Exchange the \
        code at `/oauth/token` with `grant_type=authorization_code` and the `code_verifier`.",
    request_body(content = ChallengeForm, content_type = "application/x-www-form-urlencoded"),
    params(
        ("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449): the auth session and the code \
            are bound to its key; every later request of the sign-in, and the token request, must prove the same key."),
    ),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "The authorization code (valid 60 s, once).", body = ChallengeCode, headers(
            ("Cache-Control" = String, description = "`no-store`"),
            ("Pragma" = String, description = "`no-cache`"),
        )),
        (status = 400, description = "`insufficient_authorization` (send the second factor's code with the \
            `auth_session`), or a refusal: `invalid_request`, `invalid_grant` (wrong username or password), \
            `invalid_session`, `unauthorized_client` (not a first-party client), `invalid_scope`, \
            `invalid_dpop_proof`, `use_dpop_nonce`.", body = ChallengeRefusal, headers(
            ("Cache-Control" = String, description = "`no-store`"),
            ("Pragma" = String, description = "`no-cache`"),
        )),
        crate::responses::ChallengeErrors,
    ),
)]
pub(crate) async fn authorize_challenge(State(svc): State<Arc<TokenService>>, req: Request) -> Response {
    match inner(&svc, req).await {
        Ok(Outcome::Code(code)) => no_store(
            Json(ChallengeCode {
                authorization_code: code.expose().to_owned(),
            })
            .into_response(),
        ),
        Ok(Outcome::NeedsOtp(session)) => insufficient(
            session.expose(),
            "a second factor is required: send its code as otp with this auth_session",
        ),
        Ok(Outcome::WrongOtp(session)) => insufficient(
            session.expose_secret(),
            "the one-time code is wrong or was used already: try again",
        ),
        Err(e) => e.into_response(),
    }
}

fn insufficient(auth_session: &str, error_description: &'static str) -> Response {
    let body = InsufficientAuthorization {
        error: ErrorCode::InsufficientAuthorization,
        error_description,
        auth_session: auth_session.to_owned(),
        mfa_required: "otp",
    };
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

async fn inner(svc: &TokenService, req: Request) -> Result<Outcome, GrantError> {
    let (parts, mut form) = form_request(svc, req).await?;
    let ip = peer(&parts.extensions);
    // A first request checks a password: its place in the hashing pool
    // comes first, as at the token endpoint.
    let slot = match form.get("auth_session") {
        None => Some(grants::reserve(svc, ip).await?),
        Some(_) => None,
    };
    let presented = client_auth::presented(&parts.headers, &form)?;
    let request = ChallengeRequest::from_form(&mut form, svc.passwords());
    let client = client_auth::authenticate(svc.store(), presented, None).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    // The draft's §4: only first-party clients; a browser client's tokens
    // belong in the /web/ cookie, which this flow does not set.
    if !client.first_party || !client.web_origins.is_empty() {
        return Err(GrantError::NotFirstParty);
    }
    // The code is only good for the authorization_code grant.
    if !client.grant_types.allows(GrantType::AuthorizationCode) {
        return Err(GrantError::UnauthorizedClient);
    }
    let dpop = svc.dpop_key(&parts.headers, PATH, &client)?;
    let request = request?;
    let req = grants::Request {
        client: &client,
        ip,
        now: UnixTime::now(),
        dpop: dpop.as_deref(),
    };
    grants::challenge::run(svc, request, &req, slot).await
}

/// The authorization code (the draft's §5.2.1).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"authorization_code": "uY29tL2F1dGhlbnRpY2F0aW9uX2NvZGVfZXhhbXBsZQ"}))]
pub(crate) struct ChallengeCode {
    /// Exchange it at `/oauth/token` (`grant_type=authorization_code`)
    /// within 60 seconds, once.
    authorization_code: String,
}

/// The password was right and the user has a second factor (the draft's
/// §5.2.2 `insufficient_authorization`), or the code sent was wrong.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "error": "insufficient_authorization",
    "error_description": "a second factor is required: send its code as otp with this auth_session",
    "auth_session": "nb3qZ8xV3L0m2cJ4b8yq1Tz5pW7rK9sD2fG6hJ1kL3o",
    "mfa_required": "otp"
}))]
pub(crate) struct InsufficientAuthorization {
    /// `insufficient_authorization`.
    error: ErrorCode,
    /// Short fixed English text.
    #[schema(value_type = String)]
    error_description: &'static str,
    /// Send it back with `otp`; it lives 5 minutes and allows 5 tries.
    auth_session: String,
    /// What to send: `otp`, the code of the user's authenticator app or
    /// one of their recovery codes.
    #[schema(value_type = String, example = "otp")]
    mfa_required: &'static str,
}

/// A 400 answer of the endpoint: another step, or a refusal.
struct ChallengeRefusal;

impl utoipa::PartialSchema for ChallengeRefusal {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(Ref::from_schema_name("InsufficientAuthorization"))
            .item(Ref::from_schema_name("OAuthError"))
            .description(Some(
                "`insufficient_authorization` with an `auth_session`, or an RFC 6749 §5.2 error.",
            ))
            .into()
    }
}

impl ToSchema for ChallengeRefusal {
    fn schemas(schemas: &mut Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push((
            "InsufficientAuthorization".to_owned(),
            <InsufficientAuthorization as utoipa::PartialSchema>::schema(),
        ));
        <InsufficientAuthorization as ToSchema>::schemas(schemas);
    }
}

/// The first request (username, password, PKCE challenge), or a next one
/// (auth_session and otp). A parameter sent empty counts as absent; a
/// repeated one is an error.
#[derive(ToSchema)]
#[schema(example = json!({
    "client_id": "mobile", "response_type": "code", "username": "alice", "password": "a long passphrase",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
    "scope": "read"
}))]
#[allow(
    dead_code,
    reason = "a request-body schema: the handler parses the form into grants::ChallengeRequest"
)]
struct ChallengeForm {
    /// The client (public clients: this alone; confidential clients may
    /// use HTTP Basic instead).
    #[schema(required = false)]
    client_id: String,
    /// `client_secret_post`.
    #[schema(required = false, format = Password)]
    client_secret: String,
    /// `code`, if sent.
    #[schema(required = false)]
    response_type: String,
    /// First request: the user's name.
    #[schema(required = false)]
    username: String,
    /// First request: the user's password.
    #[schema(required = false, format = Password)]
    password: String,
    /// First request: `BASE64URL(SHA256(code_verifier))` (RFC 7636).
    #[schema(required = false, min_length = 43, max_length = 43)]
    code_challenge: String,
    /// First request: `S256` (`plain` is refused).
    #[schema(required = false)]
    code_challenge_method: String,
    /// First request: space-delimited scopes (by default the client's
    /// default scope).
    #[schema(required = false)]
    scope: String,
    /// Next request: the `auth_session` of the previous answer.
    #[schema(required = false)]
    auth_session: String,
    /// Next request: the authenticator code or a recovery code.
    #[schema(required = false, format = Password)]
    otp: String,
}
