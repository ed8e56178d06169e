//! The OpenAPI description of the token service's routes. The `portcullis`
//! crate merges it into the server's document (`GET /openapi.json`).
//!
//! It only gathers: each handler documents itself, and its answers are the
//! types it returns.

use utoipa::openapi::RefOr;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorCode, OAuthError};
pub use crate::responses::{integer_header, string_header};
use crate::{authorize_challenge, discovery, revocation, token, web};

/// The token service's part of the server's OpenAPI document.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    TokenApi::openapi()
}

#[derive(OpenApi)]
#[openapi(
    paths(
        token::token,
        authorize_challenge::authorize_challenge,
        revocation::revoke,
        revocation::introspect,
        revocation::revocations,
        discovery::jwks,
        discovery::metadata,
        web::sign_in,
        web::refresh,
        web::sign_out,
        web::preflight_sign_in,
        web::preflight_refresh,
        web::preflight_sign_out,
    ),
    components(schemas(OAuthError, ErrorCode, web::WebTokens)),
    modifiers(&Shared),
    tags(
        (name = "oauth", description = "The OAuth 2.0 endpoints (RFC 6749, 7009, 7662, 8414)"),
        (name = "web", description = "Browser clients: the refresh token only in an HttpOnly cookie. Every \
            call needs the page's `Origin` (registered for the client) and `X-Portcullis-CSRF: 1`."),
    ),
)]
struct TokenApi;

/// Adds the shared error responses and the client authentication schemes.
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
                "The revocation-feed secret (`revocation_feed_secret`), when one is configured. \
                 An access token with the scope `portcullis:feed` reads the feed too.",
            ))
            .build();
        c.security_schemes
            .insert("revocation_feed_secret".to_owned(), SecurityScheme::Http(feed));
        for (name, res) in crate::responses::shared() {
            c.responses.insert(name, RefOr::T(res));
        }
    }
}
