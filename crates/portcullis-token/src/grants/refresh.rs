//! The refresh_token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2), on the family's constant state (see
//! [`crate::refresh_token`]).

use portcullis_store::{
    Client, NewAuditEvent, PreviousToken, RefreshFamily, RevokeReason, Rotate, Rotation, Sealed, StoreError, User,
    UserStatus,
};

use secrecy::ExposeSecret as _;

use super::{RefreshGrant, Request, TokenResponse};
use crate::config::secs;
use crate::refresh_token::{Presented, same_hash};
use crate::secret::OpaqueSecret;
use crate::{GrantError, TokenService, successor};
use portcullis_domain::Scopes;

/// What a refresh reads before it rotates: the token's family, the
/// family's user and client.
pub(crate) type Context = (RefreshFamily, User, Client);

/// The token's context, read in one query with its client's row; the
/// token endpoint reads it before the client is authenticated.
///
/// # Errors
/// The store's; [`StoreError::NotFound`] for text that is no token's.
pub(crate) async fn prefetch(svc: &TokenService, grant: &RefreshGrant) -> Result<Context, StoreError> {
    context(svc, &Presented::parse(grant.refresh_token.expose_secret())).await
}

async fn context(svc: &TokenService, presented: &Presented) -> Result<Context, StoreError> {
    match &presented.key {
        Some(key) => svc.store().refresh_context(key).await,
        None => Err(StoreError::NotFound),
    }
}

/// Exchanges a refresh token for new tokens, rotating it. `context` is
/// the token's context if [`prefetch`] read it already.
pub(crate) async fn refresh(
    svc: &TokenService,
    grant: &RefreshGrant,
    req: &Request<'_>,
    context: Option<Result<Context, StoreError>>,
) -> Result<TokenResponse, GrantError> {
    let text = grant.refresh_token.expose_secret();
    let presented = Presented::parse(text);

    // First what the token itself is: another client's token is left
    // alone; one that is not the family's current token goes to
    // retry-or-reuse whatever else the request says (so a thief cannot
    // probe a stolen token without setting off reuse detection); a dead
    // one is refused.
    let context = match context {
        Some(c) => c,
        None => self::context(svc, &presented).await,
    };
    let (family, user) = match context {
        Ok((family, user, _)) => (family, user),
        Err(StoreError::NotFound) => return Err(GrantError::InvalidGrant),
        Err(e) => return Err(e.into()),
    };
    if family.client_id != req.client.id {
        return Err(GrantError::InvalidGrant);
    }
    // A bound family answers only a proof of its key (RFC 9449 §5), before
    // anything else: a copy of any of its tokens, current or spent, is
    // refused and changes nothing (it cannot even set off reuse detection
    // and end the owner's sign-in), and a retry within the window is
    // answered only to the same key.
    bound_key(&family, req)?;
    if !same_hash(&presented.hash, family.current.hash.as_ref()) {
        return spent(svc, grant, &presented, &family, user, req).await;
    }
    if !family.current_is(&presented.hash, req.now) {
        return Err(GrantError::InvalidGrant);
    }
    // Then checks that change nothing, so a refused request leaves the
    // token as it was: a widened scope, an unknown resource, a disabled user.
    let (user, scope, audience) = grant_for(svc, grant, &family, user, req)?;
    let cfg = svc.config();
    let (next, selector) = presented.successor();
    let rotate = Rotate {
        family_id: &family.id,
        presented: presented.hash,
        client_id: &req.client.id,
        selector,
        child: next.hash(),
        child_expires_at: req.now.plus(secs(cfg.refresh_idle_ttl)),
        successor: successor::seal(text, next.expose()).map(Sealed),
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
    match svc.store().rotate_refresh(&rotate).await? {
        Rotation::Rotated(family) => {
            let access = svc.mint(
                &user.id,
                &req.client.id,
                &scope,
                audience,
                &family.id,
                req.now,
                req.dpop,
                family.amr.as_deref(),
            )?;
            Ok(svc.respond(access, Some(&next), &scope))
        }
        // A concurrent request rotated it between the read and the write.
        Rotation::Spent(family) => spent(svc, grant, &presented, &family, user, req).await,
        Rotation::Refused(_) | Rotation::NotFound => Err(GrantError::InvalidGrant),
    }
}

/// Refuses a refresh of a family bound to a DPoP key without a proof of
/// that key.
fn bound_key(family: &RefreshFamily, req: &Request<'_>) -> Result<(), GrantError> {
    match (family.dpop_jkt.as_deref(), req.dpop) {
        (None, _) => Ok(()),
        (Some(bound), Some(proved)) if bound == proved => Ok(()),
        (Some(_), None) => Err(GrantError::InvalidDpopProof(
            "the refresh token is bound to a DPoP key: send a proof of it",
        )),
        (Some(_), Some(_)) => Err(GrantError::InvalidDpopProof(
            "the proof's key is not the one the refresh token is bound to",
        )),
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

/// A token of the family that is not its current one was presented: the
/// same answer again if it is the previous token and this is a retry
/// within the window; otherwise a lost race (strict mode, within the
/// grace) or reuse, which revokes the family.
async fn spent(
    svc: &TokenService,
    grant: &RefreshGrant,
    presented: &Presented,
    family: &RefreshFamily,
    user: User,
    req: &Request<'_>,
) -> Result<TokenResponse, GrantError> {
    let previous = family
        .previous
        .as_ref()
        .filter(|p| same_hash(&presented.hash, Some(&p.hash)));
    let Some(same) = previous.and_then(|p| retry(svc, grant.refresh_token.expose_secret(), family, p, req)) else {
        if lost_race(svc, family, req) {
            return Err(GrantError::InvalidGrant);
        }
        reuse_detected(svc, family, req).await?;
        return Err(GrantError::InvalidGrant);
    };
    let (user, scope, audience) = grant_for(svc, grant, family, user, req)?;
    let access = svc.mint(
        &user.id,
        &req.client.id,
        &scope,
        audience,
        &family.id,
        req.now,
        req.dpop,
        family.amr.as_deref(),
    )?;
    Ok(svc.respond(access, Some(&same), &scope))
}

/// A retry of the last refresh within the window: the token it issued
/// (still the family's current one, or `previous` would be another), if
/// the answer may be repeated. Not when the window is over or the family
/// is dead.
fn retry(
    svc: &TokenService,
    presented: &str,
    family: &RefreshFamily,
    previous: &PreviousToken,
    req: &Request<'_>,
) -> Option<OpaqueSecret> {
    let window = secs(svc.config().refresh_retry_window);
    let sealed = previous.successor.as_ref()?;
    if window == 0 || req.now >= previous.used_at.plus(window) || !family.is_live(req.now) {
        return None;
    }
    successor::open(presented, &sealed.0).map(OpaqueSecret::from_issued)
}

/// Strict mode (no retry window): a request presenting an earlier token of
/// the family within the race grace of its last refresh was sent while,
/// or just after, another request with the same token won: a client
/// refreshing from several threads at once, not yet a sign of a copy. It
/// is refused and the family lives on, so the winner's new token keeps
/// working. Later, a replay is reuse.
fn lost_race(svc: &TokenService, family: &RefreshFamily, req: &Request<'_>) -> bool {
    let cfg = svc.config();
    // Whole seconds on both sides: the grace runs to the end of the second
    // in which it ends.
    cfg.refresh_retry_window.is_zero()
        && !cfg.refresh_race_grace.is_zero()
        && family
            .previous
            .as_ref()
            .is_some_and(|p| req.now.0 <= p.used_at.0.saturating_add(secs(cfg.refresh_race_grace)))
}

/// An earlier token of the family came back outside the retry window:
/// someone holds a copy. The whole family is revoked, so the newest token
/// dies too.
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
