//! `POST /oauth/revoke` (RFC 7009).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use portcullis_store::{Client, NewAuditEvent, RevocationKind, RevokeReason, UnixTime};
use utoipa::ToSchema;

use crate::edge::client_request;
use crate::grants::MAX_REFRESH_TOKEN;
use crate::responses::FormErrors;
use crate::{GrantError, TokenService};

/// `POST /oauth/revoke` (RFC 7009): 200 with an empty body whether or not
/// the token was known.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    summary = "Revoke a token (RFC 7009)",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "Revoked, or not a token of this client: the same answer (§2.2). \
            No body.", headers(("Cache-Control" = String, description = "`no-store`"))),
        FormErrors,
    ),
)]
pub(crate) async fn revoke(State(svc): State<Arc<TokenService>>, req: Request) -> Result<StatusCode, GrantError> {
    let (parts, form, client) = client_request(&svc, req).await?;
    let token = form
        .get("token")
        .ok_or(GrantError::InvalidRequest("token is required"))?;
    // A proof, if sent, is checked whatever the token: a bound token needs
    // one of its key.
    let key = match crate::dpop::proof_header(&parts.headers)? {
        Some(proof) => Some(svc.check_proof(proof, "/oauth/revoke", None, client.dpop_nonce_required)?),
        None => None,
    };
    revoke_token(&svc, token, &client, UnixTime::now(), Some(key.as_deref())).await?;
    Ok(StatusCode::OK)
}

/// RFC 7009 §2.1: revokes `token` if it is one of `client`'s. A refresh
/// token ends its whole family (so its access tokens appear in the feed by
/// `sid`); an access token is revoked by `jti`. Unknown, invalid or other
/// clients' tokens change nothing, and the answer is the same (§2.2).
///
/// With `proved` (`Some`: the key the request's DPoP proof proved, if
/// any), a DPoP-bound token is revoked only with a proof of its key: a
/// copy of a bound token cannot end its owner's sign-in.
///
/// # Errors
/// [`GrantError`] when the store fails;
/// [`GrantError::InvalidDpopProof`] for a bound token without a proof of
/// its key.
pub(crate) async fn revoke_token(
    svc: &TokenService,
    token: &str,
    client: &Client,
    now: UnixTime,
    proved: Option<Option<&str>>,
) -> Result<(), GrantError> {
    let key_ok = |bound: Option<&str>| match (bound, proved) {
        (None, _) | (_, None) => Ok(()),
        (Some(bound), Some(Some(key))) if bound == key => Ok(()),
        (Some(_), Some(_)) => Err(GrantError::InvalidDpopProof(
            "the token is bound to a DPoP key: send a proof of it",
        )),
    };
    let store = svc.store();
    // `token_type_hint` only says where to look first (§2.1); both are
    // looked at, so it changes nothing here.
    if token.len() <= MAX_REFRESH_TOKEN {
        if let Some((_, family)) = crate::refresh_token::family_of(store, token).await? {
            if family.client_id == client.id {
                key_ok(family.dpop_jkt.as_deref())?;
            }
            if family.client_id == client.id && store.revoke_family(&family.id, RevokeReason::Revoked, now).await? {
                audit(svc, client, family.user_id, family.id, now).await;
            }
            return Ok(());
        }
    }
    if let Ok(claims) = svc.keys().own.inspect(token).await {
        if claims.client_id == client.id {
            key_ok(claims.cnf.as_ref().map(|c| c.jkt.as_str()))?;
        }
        if claims.client_id == client.id && store.revoked_at(RevocationKind::Jti, &claims.jti).await?.is_none() {
            store.append_revocation(RevocationKind::Jti, &claims.jti, now).await?;
            audit(svc, client, claims.sub, claims.jti, now).await;
        }
    }
    Ok(())
}

/// Records that `client` revoked `subject` (a family or a `jti`) of `user_id`.
async fn audit(svc: &TokenService, client: &Client, user_id: String, subject: String, now: UnixTime) {
    let event = NewAuditEvent {
        actor: Some(user_id),
        client_id: Some(client.id.clone()),
        subject: Some(subject),
        ..NewAuditEvent::new(portcullis_domain::AuditAction::TokenRevoke)
    };
    svc.store().record_audit_or_warn(&event, now).await;
}

/// A revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1) request,
/// as form parameters, with client authentication as at the token endpoint.
#[derive(ToSchema)]
#[schema(example = json!({"token": "hG3kq0wJ3x7Yc9", "token_type_hint": "refresh_token"}))]
#[allow(dead_code, reason = "a request-body schema: the handlers read the form")]
pub(crate) struct TokenQuery {
    /// The token: an access token or a refresh token.
    #[schema(min_length = 1)]
    token: String,
    /// Where to look first; both kinds are looked up anyway.
    #[schema(required = false)]
    token_type_hint: String,
    /// `client_secret_post` and public clients.
    #[schema(required = false)]
    client_id: String,
    /// `client_secret_post`.
    #[schema(required = false, format = Password)]
    client_secret: String,
}
