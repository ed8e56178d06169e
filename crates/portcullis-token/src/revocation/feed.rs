//! `GET /oauth/revocations`: the revocation feed resource servers poll.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::RevocationKind;
use serde::Serialize;
use utoipa::ToSchema;

use super::feed_access::{Reader, reader};
use crate::error::{OAuthError, no_store};
use crate::{GrantError, TokenService};

/// `GET /oauth/revocations?since=CURSOR&limit=N`: the revocation feed,
/// for resource servers with a credential (or anyone, when configured
/// public). Never stored by caches.
#[utoipa::path(
    get,
    path = "/oauth/revocations",
    tag = "oauth",
    summary = "The revocation feed resource servers poll",
    description = "Needs `Authorization: Bearer` with the feed secret (`revocation_feed_secret`) or a live \
        access token of this server with the scope `portcullis:feed`, issued to a client allowed to \
        introspect. With `revocation_feed_public = true` a request without credential is answered too.",
    params(
        ("since" = Option<i64>, Query, description = "Entries after this cursor (default 0)."),
        ("limit" = Option<u64>, Query, maximum = 4_294_967_295_u64,
            description = "At most this many entries (default 500; more than 1000 counts as 1000)."),
    ),
    security(("revocation_feed_secret" = []), ("access_token" = ["portcullis:feed"]), ()),
    responses(
        (status = 200, description = "Entries after `since`.", body = RevocationFeed, headers(
            ("Cache-Control" = String, description = "`private, no-store` with a credential, `no-store` on a \
                public feed without one"),
        )),
        (status = 400, description = "`since` or `limit` is not a whole number, or the credential is \
            malformed.", body = OAuthError),
        (status = 401, description = "No credential (and the feed is not public), or a wrong, expired or \
            revoked one. No body.", headers(
                ("WWW-Authenticate" = String, description = "`Bearer realm=\"portcullis\"`, with \
                    `error=\"invalid_token\"` for a wrong credential"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 403, description = "An access token without the scope `portcullis:feed`, or of a client \
            not allowed to introspect. No body.", headers(
                ("WWW-Authenticate" = String, description = "`Bearer realm=\"portcullis\", \
                    error=\"insufficient_scope\", scope=\"portcullis:feed\"`"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 503, description = "The database is unreachable.", body = OAuthError,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (5)."))),
    ),
)]
pub(crate) async fn revocations(
    State(svc): State<Arc<TokenService>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let reader = match reader(&svc, &headers, uri.query()).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let mut since = 0i64;
    let mut limit = 500u32;
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let ok = match k {
            "since" => v.parse().map(|n: i64| since = n.max(0)).is_ok(),
            "limit" => v.parse().map(|n: u32| limit = n.clamp(1, 1000)).is_ok(),
            _ => true,
        };
        if !ok {
            return GrantError::InvalidRequest("since and limit must be whole numbers").into_response();
        }
    }
    match feed(&svc, since, limit).await {
        Ok(doc) => {
            // Who was cut off, and when, is nothing for a shared cache.
            let mut res = no_store(Json(doc).into_response());
            if reader == Reader::Authenticated {
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The feed page after `since` (RFC-less, documented in the API docs).
async fn feed(svc: &TokenService, since: i64, limit: u32) -> Result<RevocationFeed, GrantError> {
    let entries = svc.store().revocations_since(since, limit).await?;
    let entries = entries
        .into_iter()
        .map(|e| FeedEntry {
            cursor: e.cursor,
            kind: e.kind.into(),
            id: e.subject,
            revoked_at: e.revoked_at.0,
        })
        .collect();
    Ok(RevocationFeed { entries })
}

/// A page of the revocation feed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RevocationFeed {
    /// In cursor order.
    entries: Vec<FeedEntry>,
}

/// One revocation. A token is revoked when an entry matches it with
/// `revoked_at >= iat`.
#[derive(Debug, Serialize, ToSchema)]
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub(crate) enum FeedKind {
    Client,
    User,
    Family,
    Jti,
}

impl From<RevocationKind> for FeedKind {
    fn from(kind: RevocationKind) -> Self {
        match kind {
            RevocationKind::Client => Self::Client,
            RevocationKind::User => Self::User,
            RevocationKind::Family => Self::Family,
            RevocationKind::Jti => Self::Jti,
        }
    }
}
