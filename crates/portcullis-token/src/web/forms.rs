//! The cookie endpoints' form parameters, as request-body schemas for
//! the OpenAPI document (the handlers read the strict [`Form`](crate::form::Form)).

use utoipa::ToSchema;

/// `POST /web/sign-in`: a browser client's sign-in, as form parameters.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "spa", "username": "alice", "password": "a long passphrase"}))]
#[allow(dead_code, reason = "a request-body schema: the handler reads the form")]
pub(crate) struct WebSignIn {
    /// The browser client (a public client with registered origins).
    #[schema(min_length = 1)]
    client_id: String,
    /// The user's name, as at `/oauth/token`: compared in its RFC 8265
    /// form (`ALICE` is `alice`); one the username rules refuse is
    /// `invalid_request`.
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
#[allow(dead_code, reason = "a request-body schema: the handler reads the form")]
pub(crate) struct WebClient {
    /// The browser client.
    #[schema(min_length = 1)]
    client_id: String,
}
