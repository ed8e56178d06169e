//! Token revocation (RFC 7009), introspection (RFC 7662) and the
//! revocation feed that resource servers poll.

mod feed;
mod feed_access;
mod introspect;
mod revoke;

use std::sync::Arc;

use axum::Router;
use axum::middleware::map_response;
use axum::routing::{get, post};

pub(crate) use feed::{__path_revocations, revocations};
pub(crate) use introspect::{__path_introspect, access_token_live, introspect};
pub(crate) use revoke::{__path_revoke, revoke, revoke_token};

use crate::TokenService;
use crate::edge::no_store_layer;

/// The routes.
pub(crate) fn router() -> Router<Arc<TokenService>> {
    Router::new()
        .route("/oauth/revoke", post(revoke).layer(map_response(no_store_layer)))
        .route(
            "/oauth/introspect",
            post(introspect).layer(map_response(no_store_layer)),
        )
        .route("/oauth/revocations", get(revocations))
}
