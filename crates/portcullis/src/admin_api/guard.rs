//! The token check in front of the admin and account routes: a live
//! access token of this server, for its own audience, with the scopes the
//! group of routes requires.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_domain::ADMIN_SCOPE;
use portcullis_store::{SecondFactorStore as _, StoreError, UserStore as _};
use portcullis_verify::axum::Rejection;
use portcullis_verify::{AccessTokenClaims, Scheme, VerifyError, access_token, dpop_proof, require_scopes};

use super::common::{Api, ApiError, ApiErrorCode};

/// What a group of routes requires: a live token of this server with
/// these scopes.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) api: Api,
    pub(crate) scopes: &'static [&'static str],
}

async fn authenticate(guard: &Guard, req: &Parts) -> Result<AccessTokenClaims, Rejection> {
    let (api, scopes) = (&guard.api, guard.scopes);
    let reject = |e, scheme| Rejection::with_dpop(e, "portcullis", api.tokens.dpop(), scheme);
    let (scheme, token) = access_token(
        req.headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
        req.uri.query(),
    )
    .map_err(|e| reject(e, None))?;
    let claims = match scheme {
        Scheme::Bearer => api.tokens.verify_live_access_token(token).await,
        // RFC 9449 §7: a bound token with a proof for this request, whose
        // URL is the issuer's (the route's full path, also when nested).
        Scheme::Dpop => match dpop_proof(req.headers.get_all("dpop").iter().map(HeaderValue::as_bytes)) {
            Ok(proof) => {
                // The full path, as the client addressed it: these routes
                // are nested, and see it without their prefix.
                let path = req
                    .extensions
                    .get::<axum::extract::OriginalUri>()
                    .map_or_else(|| req.uri.path(), |u| u.0.path());
                api.tokens
                    .verify_live_dpop_token(token, proof, req.method.as_str(), path)
                    .await
            }
            Err(e) => Err(e),
        },
    }
    .map_err(|e| reject(e, Some(scheme)))?;
    // Only tokens for this server's own audience, not for other APIs.
    if !claims.aud.contains(&api.tokens.config().audience) {
        return Err(reject(VerifyError::InvalidToken("audience"), Some(scheme)));
    }
    require_scopes(&claims, scopes).map_err(|e| reject(e, Some(scheme)))?;
    stored_user_holds(api, &claims, scopes)
        .await
        .map_err(|e| reject(e, Some(scheme)))?;
    Ok(claims)
}

/// The token's scopes are what the user held when signing in; the stored
/// user must still hold every scope the routes require, so that taking
/// `portcullis:admin` away from an admin ends their authority at once,
/// not when their access token expires.
async fn stored_user_holds(api: &Api, claims: &AccessTokenClaims, scopes: &[&str]) -> Result<(), VerifyError> {
    if scopes.is_empty() {
        return Ok(());
    }
    let user = match api.store.user_by_id(&claims.sub).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Err(VerifyError::InvalidToken("revoked")),
        Err(_) => return Err(VerifyError::KeysUnavailable),
    };
    if !scopes.iter().all(|s| user.scope.contains(s)) {
        return Err(VerifyError::InsufficientScope {
            required: scopes.join(" "),
        });
    }
    // An admin who has a second factor acts only from a sign-in that used
    // it: a sign-in from before the enrolment (a refresh keeps how it
    // started) gets the RFC 9470 step-up answer.
    if scopes.contains(&ADMIN_SCOPE) && !claims.is_multi_factor() {
        match api.store.second_factor(&user.id).await {
            Ok(f) if f.is_enrolled() => return Err(VerifyError::InsufficientUserAuthentication),
            Ok(_) => {}
            Err(_) => return Err(VerifyError::KeysUnavailable),
        }
    }
    Ok(())
}

/// The middleware: the claims go into the request's extensions for the
/// handlers; every answer is `no-store`.
pub(crate) async fn require(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match authenticate(&guard, &parts).await {
        Ok(claims) => {
            parts.extensions.insert(claims);
            crate::http::no_store(next.run(Request::from_parts(parts, body)).await)
        }
        Err(r) => rejection(r),
    }
}

/// The RFC 6750 answer to a refused token. A 400 or 503 also carries the
/// JSON error body that the handlers' answers of the same status carry,
/// so each status has one shape.
fn rejection(r: Rejection) -> Response {
    let code = match r.error.status() {
        400 => ApiErrorCode::InvalidRequest,
        503 => ApiErrorCode::TemporarilyUnavailable,
        _ => return r.into_response(),
    };
    let (mut parts, _) = r.into_response().into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_string(&ApiError::new(parts.status, code)).unwrap_or_default();
    Response::from_parts(parts, body.into())
}
