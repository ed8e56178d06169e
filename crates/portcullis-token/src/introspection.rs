//! Token revocation (RFC 7009), introspection (RFC 7662) and the
//! revocation feed that resource servers poll.

use portcullis_store::{
    Client, ClientStatus, NewAuditEvent, RevocationKind, RevokeReason, StoreError, TokenHash, UnixTime, UserStatus,
};
use portcullis_verify::AccessTokenClaims;
use serde_json::{Value, json};

use crate::form::Form;
use crate::{GrantError, TokenService};

/// Longest token looked up as a refresh token.
const MAX_REFRESH_LEN: usize = 512;

/// RFC 7009 §2.1: revokes `token` if it is one of `client`'s. A refresh
/// token ends its whole family (so its access tokens appear in the feed by
/// `sid`); an access token is revoked by `jti`. Unknown, invalid or other
/// clients' tokens change nothing, and the answer is the same (§2.2).
pub(crate) async fn revoke(svc: &TokenService, form: &Form, client: &Client, now: UnixTime) -> Result<(), GrantError> {
    let token = form
        .get("token")
        .ok_or(GrantError::InvalidRequest("token is required"))?;
    let store = svc.store();
    // `token_type_hint` only says where to look first (§2.1); both are
    // looked at, so it changes nothing here.
    if token.len() <= MAX_REFRESH_LEN {
        match store.refresh_token_by_hash(TokenHash::of(token.as_bytes())).await {
            Ok((_, family)) => {
                if family.client_id == client.id && store.revoke_family(&family.id, RevokeReason::Revoked, now).await? {
                    let event = NewAuditEvent {
                        actor: Some(family.user_id.clone()),
                        client_id: Some(client.id.clone()),
                        subject: Some(family.id.clone()),
                        ..NewAuditEvent::new(portcullis_domain::AuditAction::TokenRevoke)
                    };
                    store.record_audit_or_warn(&event, now).await;
                }
                return Ok(());
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Ok(claims) = svc.keys().own.verify(token).await {
        if claims.client_id == client.id && store.revoked_at(RevocationKind::Jti, &claims.jti).await?.is_none() {
            store.append_revocation(RevocationKind::Jti, &claims.jti, now).await?;
            let event = NewAuditEvent {
                actor: Some(claims.sub.clone()),
                client_id: Some(client.id.clone()),
                subject: Some(claims.jti.clone()),
                ..NewAuditEvent::new(portcullis_domain::AuditAction::TokenRevoke)
            };
            store.record_audit_or_warn(&event, now).await;
        }
    }
    Ok(())
}

/// RFC 7662 §2.2: what `token` is, for a client allowed to ask. Anything
/// not active answers exactly `{"active": false}`.
pub(crate) async fn introspect(
    svc: &TokenService,
    form: &Form,
    client: &Client,
    now: UnixTime,
) -> Result<Value, GrantError> {
    if !client.introspect {
        return Err(GrantError::NotPermitted);
    }
    let token = form
        .get("token")
        .ok_or(GrantError::InvalidRequest("token is required"))?;
    let inactive = json!({"active": false});
    let store = svc.store();
    if token.len() <= MAX_REFRESH_LEN {
        match store.refresh_token_by_hash(TokenHash::of(token.as_bytes())).await {
            Ok((tok, family)) => {
                let live = tok.used_at.is_none()
                    && now < tok.expires_at
                    && family.is_live(now)
                    && holder_active(svc, &family.user_id, &family.client_id).await?;
                return Ok(if live {
                    json!({
                        "active": true, "token_type": "refresh_token", "client_id": family.client_id,
                        "scope": family.scope, "sub": family.user_id, "exp": tok.expires_at.0,
                        "iat": tok.issued_at.0, "iss": svc.config().issuer, "sid": family.id,
                    })
                } else {
                    inactive
                });
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Ok(claims) = svc.keys().own.verify(token).await else {
        return Ok(inactive);
    };
    if !access_token_live(svc, &claims).await? {
        return Ok(inactive);
    }
    let mut out = serde_json::to_value(&claims).map_err(|_| GrantError::Internal)?;
    out["active"] = json!(true);
    out["token_type"] = json!("Bearer");
    Ok(out)
}

/// The user is active and the client not revoked.
async fn holder_active(svc: &TokenService, user_id: &str, client_id: &str) -> Result<bool, GrantError> {
    let store = svc.store();
    let user = match store.user_by_id(user_id).await {
        Ok(u) => u.status == UserStatus::Active,
        Err(StoreError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    let client = match store.client_by_id(client_id).await {
        Ok(c) => c.status == ClientStatus::Active,
        Err(StoreError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(user && client)
}

/// A validly signed, unexpired access token is live unless its holder is
/// disabled or revoked, its family revoked, or it was revoked itself.
pub(crate) async fn access_token_live(svc: &TokenService, c: &AccessTokenClaims) -> Result<bool, GrantError> {
    if !holder_active(svc, &c.sub, &c.client_id).await? {
        return Ok(false);
    }
    let store = svc.store();
    if let Some(sid) = &c.sid {
        match store.family_by_id(sid).await {
            Ok(f) if f.revoked_at.is_none() => {}
            Ok(_) | Err(StoreError::NotFound) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    for (kind, id) in [
        (RevocationKind::Jti, &c.jti),
        (RevocationKind::User, &c.sub),
        (RevocationKind::Client, &c.client_id),
    ] {
        if store.revoked_at(kind, id).await?.is_some_and(|t| t.0 >= c.iat) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The feed page after `since` (RFC-less, documented in the API docs).
pub(crate) async fn feed(svc: &TokenService, since: i64, limit: u32) -> Result<Value, GrantError> {
    let entries = svc.store().revocations_since(since, limit).await?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({"cursor": e.cursor, "kind": e.kind.as_str(), "id": e.subject, "revoked_at": e.revoked_at.0}))
        .collect();
    Ok(json!({ "entries": entries }))
}
