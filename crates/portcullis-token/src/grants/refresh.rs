//! The refresh_token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).

use portcullis_store::{
    Client, NewAuditEvent, RefreshFamily, RefreshToken, RevokeReason, Rotate, Rotation, Sealed, StoreError, TokenHash,
    User, UserStatus,
};

use secrecy::ExposeSecret as _;

use super::{RefreshGrant, Request, TokenResponse};
use crate::config::secs;
use crate::secret::OpaqueSecret;
use crate::{GrantError, TokenService, successor};
use portcullis_domain::Scopes;

/// What a refresh reads before it rotates: the token, its family, the
/// family's user and client.
pub(crate) type Context = (RefreshToken, RefreshFamily, User, Client);

/// The token's context, read in one query with its client's row; the
/// token endpoint reads it before the client is authenticated.
///
/// # Errors
/// The store's.
pub(crate) async fn prefetch(svc: &TokenService, grant: &RefreshGrant) -> Result<Context, StoreError> {
    svc.store()
        .refresh_context(TokenHash::of(grant.refresh_token.expose_secret().as_bytes()))
        .await
}

/// Exchanges a refresh token for new tokens, rotating it. `context` is
/// the token's context if [`prefetch`] read it already.
pub(crate) async fn refresh(
    svc: &TokenService,
    grant: &RefreshGrant,
    req: &Request<'_>,
    context: Option<Result<Context, StoreError>>,
) -> Result<TokenResponse, GrantError> {
    let presented = grant.refresh_token.expose_secret();
    let store = svc.store();
    let hash = TokenHash::of(presented.as_bytes());

    // First what the token itself is: another client's token is left
    // alone; a spent one goes to retry-or-reuse whatever else the request
    // says (so a thief cannot probe a stolen token without setting off
    // reuse detection); a dead one is refused.
    let context = match context {
        Some(c) => c,
        None => store.refresh_context(hash).await,
    };
    let (token, family, user) = match context {
        Ok((token, family, user, _)) => (token, family, user),
        Err(StoreError::NotFound) => return Err(GrantError::InvalidGrant),
        Err(e) => return Err(e.into()),
    };
    if family.client_id != req.client.id {
        return Err(GrantError::InvalidGrant);
    }
    if token.used_at.is_some() {
        return spent(svc, grant, &family, &token, user, req).await;
    }
    if !family.is_live(req.now) || req.now >= token.expires_at {
        return Err(GrantError::InvalidGrant);
    }
    // Then checks that change nothing, so a refused request leaves the
    // token as it was: a widened scope, an unknown resource, a disabled user.
    let (user, scope, audience) = grant_for(svc, grant, &family, user, req)?;
    let cfg = svc.config();
    let next = OpaqueSecret::generate();
    let rotate = Rotate {
        presented: hash,
        client_id: &req.client.id,
        child: next.hash(),
        child_expires_at: req.now.plus(secs(cfg.refresh_idle_ttl)),
        successor: successor::seal(presented, next.expose()).map(Sealed),
        now: req.now,
        audit: cfg.audit_refreshes.then(|| NewAuditEvent {
            action: portcullis_domain::AuditAction::Refresh,
            actor: Some(user.id.clone()),
            client_id: Some(req.client.id.clone()),
            subject: Some(family.id.clone()),
            ip: req.ip.map(|ip| ip.to_string()),
            detail: None,
        }),
    };
    match store.rotate_refresh(&rotate).await? {
        Rotation::Rotated { family, .. } => {
            let access = svc.mint(&user.id, &req.client.id, &scope, audience, &family.id, req.now)?;
            Ok(svc.respond(access, Some(&next), &scope))
        }
        // A concurrent request consumed it between the read and the write.
        Rotation::Spent { family, token } => spent(svc, grant, &family, &token, user, req).await,
        Rotation::Refused(_) | Rotation::NotFound => Err(GrantError::InvalidGrant),
    }
}

/// The scope, user and audience of a refresh of `family`, or why not.
fn grant_for(
    svc: &TokenService,
    grant: &RefreshGrant,
    family: &RefreshFamily,
    user: User,
    req: &Request<'_>,
) -> Result<(User, Scopes, String), GrantError> {
    let original = Scopes::trusted(&family.scope);
    let scope = match &grant.scope {
        // §6: the scope may narrow, never widen.
        Ok(Some(r)) if r.is_subset_of(&original) => r.clone(),
        Ok(Some(_)) | Err(_) => return Err(GrantError::InvalidScope),
        Ok(None) => original,
    };
    let audience = super::audience(svc, grant.resource.as_deref())?;
    if user.status != UserStatus::Active || user.id != family.user_id {
        return Err(GrantError::InvalidGrant);
    }
    // What the user and client may hold now (an admin may have narrowed it).
    let scope = scope
        .intersection(&user.scope.clone())
        .intersection(&req.client.scope.clone());
    Ok((user, scope, audience))
}

/// A spent token was presented: the same answer again if this is a retry
/// within the window, otherwise reuse, which revokes the family.
async fn spent(
    svc: &TokenService,
    grant: &RefreshGrant,
    family: &RefreshFamily,
    token: &RefreshToken,
    user: User,
    req: &Request<'_>,
) -> Result<TokenResponse, GrantError> {
    let Some(same) = retry(svc, grant.refresh_token.expose_secret(), family, token, req).await? else {
        if lost_race(svc, token, req) {
            return Err(GrantError::InvalidGrant);
        }
        reuse_detected(svc, family, req).await?;
        return Err(GrantError::InvalidGrant);
    };
    let (user, scope, audience) = grant_for(svc, grant, family, user, req)?;
    // The family may have been revoked while the successor was looked up.
    if !svc.store().family_by_id(&family.id).await?.is_live(req.now) {
        return Err(GrantError::InvalidGrant);
    }
    let access = svc.mint(&user.id, &req.client.id, &scope, audience, &family.id, req.now)?;
    Ok(svc.respond(access, Some(&same), &scope))
}

/// A retry of the same refresh within the window: the successor the first
/// request got, if the answer may be repeated. Not when the window is over,
/// the family is dead, or the successor was used already (then the client
/// did receive it, and presenting its parent again is reuse).
async fn retry(
    svc: &TokenService,
    presented: &str,
    family: &RefreshFamily,
    token: &RefreshToken,
    req: &Request<'_>,
) -> Result<Option<OpaqueSecret>, GrantError> {
    let window = secs(svc.config().refresh_retry_window);
    let (Some(used_at), Some(child_id), Some(sealed)) = (token.used_at, &token.replaced_by, &token.successor) else {
        return Ok(None);
    };
    if window == 0 || req.now >= used_at.plus(window) || !family.is_live(req.now) {
        return Ok(None);
    }
    let child = match svc.store().refresh_token_by_id(child_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if child.used_at.is_some() {
        return Ok(None);
    }
    Ok(successor::open(presented, &sealed.0).map(OpaqueSecret::from_issued))
}

/// Strict mode (no retry window): a request presenting a token rotated
/// within the race grace was sent while, or just after, another request
/// with the same token won: a client refreshing from several threads at
/// once, not yet a sign of a copy. It is refused and the family lives on,
/// so the winner's new token keeps working. Later, a replay is reuse. With
/// a retry window such requests get the retry answer instead.
fn lost_race(svc: &TokenService, token: &RefreshToken, req: &Request<'_>) -> bool {
    let cfg = svc.config();
    // Whole seconds on both sides: the grace runs to the end of the second
    // in which it ends.
    cfg.refresh_retry_window.is_zero()
        && !cfg.refresh_race_grace.is_zero()
        && token
            .used_at
            .is_some_and(|used| req.now.0 <= used.0.saturating_add(secs(cfg.refresh_race_grace)))
}

/// A spent token came back outside the retry window: someone holds a copy.
/// The whole family is revoked, so the newest token dies too.
async fn reuse_detected(svc: &TokenService, family: &RefreshFamily, req: &Request<'_>) -> Result<(), GrantError> {
    let store = svc.store();
    let revoked = store.revoke_family(&family.id, RevokeReason::Reuse, req.now).await?;
    if revoked {
        metrics::counter!("portcullis_refresh_reuse_total").increment(1);
        tracing::warn!(family = %family.id, client_id = %req.client.id, "refresh token reuse: family revoked");
        let event = NewAuditEvent {
            action: portcullis_domain::AuditAction::RefreshReuse,
            actor: Some(family.user_id.clone()),
            client_id: Some(req.client.id.clone()),
            subject: Some(family.id.clone()),
            ip: req.ip.map(|ip| ip.to_string()),
            detail: None,
        };
        store.record_audit_or_warn(&event, req.now).await;
    }
    Ok(())
}
