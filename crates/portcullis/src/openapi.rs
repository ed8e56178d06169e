//! The OpenAPI 3.1 document of the whole HTTP API, served at
//! `GET /openapi.json` and checked in as `docs/openapi.json`.
//!
//! Gathered from the handlers' `#[utoipa::path]` annotations, whose
//! bodies are the handlers' own response types: those of this binary and
//! the token service's ([`portcullis_token::openapi`]).

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_token::openapi::{integer_header, string_header};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::admin_api::common::{ApiError, ApiErrorCode};
use crate::admin_api::{
    account, audit, client_changes, clients, devices, email, keys, mfa, self_service, user_changes, users,
};
use crate::{health, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "An OAuth 2.0 authorization server for first-party apps: the token \
            endpoint (password and refresh_token grants), revocation, introspection, the JWKS and \
            metadata, the revocation feed, the admin and account APIs, probes and metrics. \
            Any endpoint may also answer 500 (an internal fault, logged with its cause).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::render,
        serve,
        clients::clients,
        clients::client,
        clients::revoke_client,
        client_changes::create_client,
        client_changes::update_client,
        client_changes::rotate_client_secret,
        users::users,
        users::user,
        users::disable_user,
        users::revoke_user,
        user_changes::create_user,
        user_changes::update_user,
        user_changes::enable_user,
        user_changes::set_user_password,
        user_changes::delete_user,
        devices::user_devices,
        devices::user_sign_out_device,
        audit::audit_events,
        keys::keys,
        keys::rotate_key,
        account::me,
        account::my_devices,
        account::my_sign_out_device,
        account::change_my_password,
        account::delete_me,
        mfa::my_mfa,
        mfa::start_totp,
        mfa::confirm_totp,
        mfa::remove_totp,
        mfa::new_recovery_codes,
        mfa::reset_mfa,
        email::set_email,
        email::verify_email,
        self_service::sign_up,
        self_service::password_reset,
        self_service::password_reset_confirm,
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
    let mut doc = ApiDoc::openapi().merge_from(portcullis_token::openapi::openapi());
    headers_too_large(&mut doc);
    doc
}

/// Every operation may answer 431: the server refuses request heads over
/// 32 KiB before routing (`startup.rs`), whatever the path.
fn headers_too_large(doc: &mut utoipa::openapi::OpenApi) {
    const NAME: &str = "RequestHeadersTooLarge";
    let response = ResponseBuilder::new()
        .description("The request head is over 32 KiB: refused unread, with no body.")
        .build();
    doc.components
        .get_or_insert_with(Default::default)
        .responses
        .insert(NAME.to_owned(), RefOr::T(response));
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            op.responses
                .responses
                .insert("431".to_owned(), RefOr::Ref(Ref::from_response_name(NAME)));
        }
    }
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
                    "`invalid_request`: a malformed path, query, body or `Authorization` header, or a \
                     token in the query string, with an `error_description` where the caller can act on \
                     it (a refused new password also carries `reason`); `invalid_grant`: a wrong current \
                     password or one-time code; `unsupported_algorithm` for a key rotation.",
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
                "ApiConflict",
                json_error(
                    "`conflict`: the username, email address or client id is taken, or the client is \
                     revoked (revocation is final).",
                ),
            ),
            (
                "ApiTooManyRequests",
                json_error("`too_many_requests`: too many wrong passwords for this account; retry later.")
                    .header("Retry-After", integer_header("Seconds to wait before retrying.")),
            ),
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
