//! The admin API (`/admin/v1/…`) and the account API (`/account/v1/…`).
//!
//! Both are resource servers of this very server: requests carry one of its
//! access tokens, checked with `portcullis-verify` and then against the
//! database (so a revocation takes effect at once on every instance). The
//! admin API needs the scope `portcullis:admin`; the account API serves the
//! token's own user.
//!
//! Handlers parse the request, call an operation ([`crate::ops`]) as the
//! token's user, and answer with the typed response beside them, which is
//! also its OpenAPI schema.

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod client_changes;
pub(crate) mod clients;
pub(crate) mod common;
pub(crate) mod devices;
pub(crate) mod email;
mod guard;
pub(crate) mod keys;
pub(crate) mod mfa;
pub(crate) mod self_service;
pub(crate) mod user_changes;
pub(crate) mod users;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use portcullis_domain::ADMIN_SCOPE;
use portcullis_store::SqlStore;
use portcullis_token::TokenService;

use common::Api;
use guard::{Guard, require};

/// The admin and account routes; `mailer` sends the account API's codes
/// (none: those routes answer 501).
pub fn router(store: SqlStore, tokens: Arc<TokenService>, mailer: Option<Arc<crate::mail::Mailer>>) -> Router {
    let api = Api { store, tokens, mailer };
    let admin_only = Guard {
        api: api.clone(),
        scopes: &[ADMIN_SCOPE],
    };
    let admin = clients::router()
        .merge(client_changes::router())
        .merge(users::router())
        .merge(user_changes::router())
        .merge(devices::router())
        .merge(keys::router())
        .merge(audit::router())
        .merge(mfa::admin_router())
        .layer(from_fn_with_state(admin_only, require));
    let any_user = Guard {
        api: api.clone(),
        scopes: &[],
    };
    let account = account::router()
        .merge(email::router())
        .merge(mfa::account_router())
        .layer(from_fn_with_state(any_user, require))
        // Sign-up and password reset: no token (the user has none yet).
        .merge(self_service::router());
    Router::new()
        .nest("/admin/v1", admin)
        .nest("/account/v1", account)
        .with_state(api)
}
