//! Who may read the revocation feed.
//!
//! The feed lists user ids (the `sub` of their tokens), client ids and the
//! moment each was cut off: whoever knows someone's `sub` could watch them
//! being disabled or signed out. So it is not public unless configured so
//! (`revocation_feed_public`); resource servers present the feed secret or
//! an access token with the scope `portcullis:feed`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::StoreError;
use portcullis_verify::{VerifyError, bearer_token, require_scopes};
use subtle::ConstantTimeEq as _;

use crate::error::no_store;
use crate::{GrantError, TokenService};

/// The scope of access tokens that read the feed.
pub(crate) const FEED_SCOPE: &str = "portcullis:feed";

/// Who is reading the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// No credential, on a feed configured public.
    Anyone,
    /// The feed secret, or a live access token with [`FEED_SCOPE`].
    Authenticated,
}

/// The request's reader, or the answer refusing it (RFC 6750 §3).
pub(super) async fn reader(svc: &TokenService, headers: &HeaderMap, query: Option<&str>) -> Result<Reader, Response> {
    let authorization = headers.get_all(header::AUTHORIZATION).iter().map(HeaderValue::as_bytes);
    let token = match bearer_token(authorization, query) {
        Ok(token) => token,
        Err(VerifyError::Missing) if svc.config().revocation_feed_public => return Ok(Reader::Anyone),
        // A credential that is presented must be right, also on a public
        // feed: a resource server with a wrong one should find out.
        Err(e) => return Err(refuse(&e)),
    };
    if let Some(secret) = &svc.config().revocation_feed_secret {
        if bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
            return Ok(Reader::Authenticated);
        }
    }
    let claims = svc.verify_live_access_token(token).await.map_err(|e| refuse(&e))?;
    // A token for another API (an RFC 8707 `resource`) is not for this one.
    if !claims.aud.contains(&svc.config().audience) {
        return Err(refuse(&VerifyError::InvalidToken("audience")));
    }
    require_scopes(&claims, &[FEED_SCOPE]).map_err(|e| refuse(&e))?;
    // Only a client of resource servers (one allowed to introspect): the
    // scope given by mistake to an app on users' devices opens nothing.
    match svc.store().client_by_id(&claims.client_id).await {
        Ok(client) if client.introspect => Ok(Reader::Authenticated),
        Ok(_) | Err(StoreError::NotFound) => Err(refuse(&VerifyError::InsufficientScope {
            required: FEED_SCOPE.to_owned(),
        })),
        Err(e) => Err(GrantError::from(e).into_response()),
    }
}

/// The RFC 6750 answer: a challenge, no body (400 and 503 carry the
/// endpoint's JSON error, as its other answers of those statuses).
fn refuse(e: &VerifyError) -> Response {
    let mut res = match e {
        VerifyError::InvalidRequest(_) => GrantError::InvalidRequest("malformed credential").into_response(),
        VerifyError::KeysUnavailable => return GrantError::Unavailable.into_response(),
        _ => StatusCode::from_u16(e.status())
            .unwrap_or(StatusCode::UNAUTHORIZED)
            .into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&e.www_authenticate("portcullis")) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(res)
}
