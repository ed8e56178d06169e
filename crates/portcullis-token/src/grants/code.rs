//! The authorization_code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636),
//! for codes of the Authorization Challenge Endpoint ([`super::challenge`]).
//!
//! A code is used once: the one conditional write that uses it decides.
//! A code presented again is refused and revokes the family its first use
//! started (RFC 6749 §4.1.2), also when the two uses race. A code is bound
//! to its client, its PKCE challenge and, when the challenge carried a
//! DPoP proof, to that proof's key; a wrong one of these spends the code.

use portcullis_domain::{AuditAction, Scopes};
use portcullis_store::{CodeUse, RevokeReason, TokenHash};
use secrecy::ExposeSecret as _;

use super::password::{self, FamilyStart};
use super::{CodeGrant, Request, TokenResponse};
use crate::{GrantError, TokenService};

/// Exchanges a code for tokens.
///
/// # Errors
/// [`GrantError::InvalidGrant`] for an unknown, expired or used code, one
/// of another client, a wrong verifier, or a user signed out or changed
/// since; [`GrantError::InvalidDpopProof`] for a code bound to a DPoP key
/// the request does not prove; [`GrantError::InvalidTarget`].
pub(crate) async fn authorization_code(
    svc: &TokenService,
    grant: CodeGrant,
    req: &Request<'_>,
) -> Result<TokenResponse, GrantError> {
    let store = svc.store();
    let audience = super::audience(svc, grant.resource.as_deref())?;
    let hash = TokenHash::of(grant.code.expose_secret().as_bytes());
    let code = match store.use_authorization_code(&hash, req.now).await? {
        CodeUse::Used(code) => code,
        CodeUse::Unknown => return Err(GrantError::InvalidGrant),
        CodeUse::Replayed { family_id } => {
            if let Some(family) = family_id {
                revoke(svc, &family, req).await?;
            }
            return Err(GrantError::InvalidGrant);
        }
    };
    let bound = code.grant;
    if bound.client_id != req.client.id.as_str()
        || !crate::pkce::verifies(grant.code_verifier.expose_secret(), &bound.code_challenge)
    {
        return Err(GrantError::InvalidGrant);
    }
    if let Some(jkt) = &bound.dpop_jkt {
        if req.dpop != Some(jkt.as_str()) {
            return Err(GrantError::InvalidDpopProof(
                "the code is bound to the key of another DPoP proof",
            ));
        }
    }
    let scope = Scopes::parse(&bound.scope).map_err(|_| GrantError::Internal)?;
    let start = FamilyStart {
        user_id: &bound.user_id,
        scope: &scope,
        device_label: grant.device_name,
        sessions_epoch: bound.sessions_epoch,
        password_hash: None,
        amr: &bound.amr,
        throttle_key: None,
    };
    let (response, family) = password::start_family(svc, req, start, audience).await?;
    if store.set_code_family(&hash, &family).await? {
        // Presented again while this use was under way.
        revoke(svc, &family, req).await?;
        return Err(GrantError::InvalidGrant);
    }
    Ok(response)
}

/// Revokes the family of a replayed code, with an audit row.
async fn revoke(svc: &TokenService, family: &str, req: &Request<'_>) -> Result<(), GrantError> {
    if svc.store().revoke_family(family, RevokeReason::Reuse, req.now).await? {
        tracing::warn!(
            family_id = family,
            "an authorization code was used twice: its family is revoked"
        );
        let mut event = password::event(AuditAction::LoginFailure, None, req);
        event.detail = Some(format!("authorization code replayed; family {family} revoked"));
        svc.store().record_audit_or_warn(&event, req.now).await;
    }
    Ok(())
}
