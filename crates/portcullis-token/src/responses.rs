//! Response sets shared by the handlers' OpenAPI annotations: the error
//! answers every form endpoint gives, registered once as named responses
//! ([`shared`]) and referred to by status ([`FormErrors`], [`WebErrors`],
//! [`Throttled`], [`Forbidden`]).

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder, Type};

/// The named error responses, for the document's `components.responses`.
pub(crate) fn shared() -> impl Iterator<Item = (String, Response)> {
    [
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
    ]
    .into_iter()
    .map(|(name, description, retry)| {
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
        (name.to_owned(), res.build())
    })
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
#[must_use]
pub fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// A response header holding a whole number.
#[must_use]
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

/// A cookie endpoint's success: the tokens for the page, the refresh
/// token in the cookie, readable by the registered origin.
fn web_tokens(description: &str) -> BTreeMap<String, RefOr<Response>> {
    let res = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("WebTokens"))),
        )
        .header(
            "Set-Cookie",
            string_header(
                "The refresh token, in the client's own cookie: \
                 `__Host-portcullis-refresh-<client_id>=…; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=…`.",
            ),
        )
        .header("Cache-Control", string_header("`no-store`"))
        .header("Access-Control-Allow-Origin", string_header("The registered origin."))
        .header("Access-Control-Allow-Credentials", string_header("`true`"))
        .build();
    BTreeMap::from([("200".to_owned(), RefOr::T(res))])
}

/// `POST /web/sign-in`'s success.
pub(crate) struct SignedIn;

impl IntoResponses for SignedIn {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        web_tokens("Signed in.")
    }
}

/// `POST /web/refresh`'s success.
pub(crate) struct Refreshed;

impl IntoResponses for Refreshed {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        web_tokens("Refreshed.")
    }
}

/// Sign-in refusals (429).
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

/// The errors of the Authorization Challenge Endpoint other than its 400
/// (which has its own schema, `ChallengeRefusal`).
pub(crate) struct ChallengeErrors;

impl IntoResponses for ChallengeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[
            ("401", "OAuthInvalidClient"),
            ("408", "OAuthRequestTimeout"),
            ("413", "OAuthPayloadTooLarge"),
            ("429", "OAuthThrottled"),
            ("503", "OAuthUnavailable"),
        ])
    }
}
