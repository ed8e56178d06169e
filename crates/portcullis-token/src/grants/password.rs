//! The resource owner password credentials grant (RFC 6749 §4.3).

use portcullis_store::{NewAuditEvent, NewFamily, SignInRecord, StoreError, UserStatus};

use portcullis_domain::AuditAction;
use secrecy::{ExposeSecret as _, SecretString};

use super::{PasswordGrant, Request, TokenResponse};
use crate::config::secs;
use crate::mfa::{self, CheckError, SignInMethod};
use crate::password::{Slot, Verdict};
use crate::throttle::ThrottlePolicy;
use crate::{GrantError, TokenService};
use portcullis_domain::GrantType;

/// Signs a user in: checks the password, starts a refresh family (one per
/// sign-in / device) and issues the first tokens.
///
/// `slot` is the request's place in the hashing pool, taken (see
/// [`reserve`](super::reserve)) before the client was authenticated.
pub(crate) async fn password(
    svc: &TokenService,
    grant: PasswordGrant,
    req: &Request<'_>,
    slot: Slot,
) -> Result<TokenResponse, GrantError> {
    let PasswordGrant {
        username,
        password,
        scope: requested,
        resource,
        device_name,
        otp,
    } = grant;
    // Attempts are counted per account, whatever case or width they use.
    let key = username.key();
    // What can be refused without the user is refused before the password
    // is checked; what depends on the user, only after (it would otherwise
    // tell whether the account exists).
    let client_scope = req.client.scope.clone();
    if requested.as_ref().is_some_and(|r| !r.is_subset_of(&client_scope)) {
        return Err(GrantError::InvalidScope);
    }
    let audience = super::audience(svc, resource.as_deref())?;

    let store = svc.store();
    let throttle = &svc.config().throttle;
    throttle.admit(store, key, req.ip, req.now).await?;

    let user = match store.user_by_username(&username).await {
        Ok(u) => Some(u),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let verdict = svc
        .passwords()
        .verify_reserved(
            slot,
            password.expose_secret(),
            // A user without a password is checked against the dummy hash,
            // like an unknown one.
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await;
    let verdict = verdict.map_err(|_| GrantError::Unavailable)?;
    let (user, checked_hash) = match (verdict, user) {
        (Verdict::Valid { rehash }, Some(user))
            if user.status == UserStatus::Active && user.password_hash.is_some() =>
        {
            let stored = user.password_hash.clone().unwrap_or_default();
            let mut checked = stored.clone();
            if let Some(hash) = rehash {
                match store.rehash_user_password(&user.id, &stored, &hash, req.now).await {
                    Ok(true) => checked = hash,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "could not store a rehashed password"),
                }
            }
            (user, checked)
        }
        (_, user) => {
            // Wrong password, unknown or disabled user: one answer for all.
            // The attempt was counted by `admit`.
            audit(
                svc,
                portcullis_domain::AuditAction::LoginFailure,
                user.as_ref().map(|u| u.id.clone()),
                req,
            )
            .await;
            return Err(GrantError::InvalidGrant);
        }
    };
    let method = second_factor(svc, &user.id, otp.as_ref(), req, key).await?;
    let user_scope = user.scope.clone();
    let granted = match requested {
        Some(r) if r.is_subset_of(&user_scope) => r,
        Some(_) => {
            // The password was right: the attempt does not count.
            throttle.succeeded(store, key, req.ip).await;
            return Err(GrantError::InvalidScope);
        }
        None => req
            .client
            .default_scope
            .clone()
            .intersection(&client_scope)
            .intersection(&user_scope),
    };

    let cfg = svc.config();
    let (refresh, selector) = crate::refresh_token::first();
    let new = NewFamily {
        user_id: user.id.clone(),
        client_id: req.client.id.clone(),
        scope: granted.to_string(),
        device_label: device_name,
        expires_at: req.now.plus(secs(cfg.refresh_absolute_ttl)),
        selector,
        first_token: refresh.hash(),
        first_token_expires_at: req.now.plus(secs(cfg.refresh_idle_ttl)),
        // Refused if the password changed or the user was signed out
        // everywhere after the user was read, before the password check.
        sessions_epoch: user.sessions_epoch,
        password_hash: Some(checked_hash),
        // The throttle bookkeeping and the audit event of the sign-in, in
        // the family's own transaction.
        // RFC 9449 §5: a public client's refresh token is bound to the
        // key of the sign-in's proof, for the family's whole life (a
        // confidential client's is bound to its own authentication).
        dpop_jkt: req.dpop.filter(|_| req.client.is_public()).map(str::to_owned),
        amr: Some(method.amr().to_owned()),
        sign_in: Some({
            let (clear_counter, forgive_counter) = ThrottlePolicy::success_counters(key, req.ip);
            SignInRecord {
                clear_counter,
                forgive_counter,
                audit: event(portcullis_domain::AuditAction::LoginSuccess, Some(user.id.clone()), req),
            }
        }),
    };
    // Stored (committed) before the answer is built: a refresh token handed
    // out is never unknown to the server.
    let family = match store.start_family(&new, req.now).await {
        Ok(family) => family,
        // The user or client was disabled since the checks above.
        Err(StoreError::NotFound) => {
            throttle.succeeded(store, key, req.ip).await;
            return Err(GrantError::InvalidGrant);
        }
        Err(e) => return Err(e.into()),
    };
    let access = svc.mint(
        &user.id,
        &req.client.id,
        &granted,
        audience,
        &family.id,
        req.now,
        req.dpop,
        Some(method.amr()),
    )?;
    let can_refresh = req.client.grant_types.allows(GrantType::RefreshToken);
    Ok(svc.respond(access, can_refresh.then_some(&refresh), &granted))
}

/// After a right password: the user's second factor, if they have one.
/// Without `otp` the answer asks for it (`mfa_required`), and the attempt
/// is taken back (the password was right); a wrong `otp` is a failed
/// sign-in, counted like a wrong password. A client that requires a second
/// factor refuses a user without one.
async fn second_factor(
    svc: &TokenService,
    user_id: &str,
    otp: Option<&SecretString>,
    req: &Request<'_>,
    key: &str,
) -> Result<SignInMethod, GrantError> {
    let store = svc.store();
    let throttle = &svc.config().throttle;
    let enrolled = store.second_factor(user_id).await?.is_enrolled();
    if !enrolled {
        if req.client.mfa_required {
            throttle.succeeded(store, key, req.ip).await;
            return Err(GrantError::MfaNotEnrolled);
        }
        return Ok(SignInMethod::Password);
    }
    let Some(otp) = otp else {
        throttle.succeeded(store, key, req.ip).await;
        return Err(GrantError::MfaRequired);
    };
    let kek = svc.config().key_encryption_key.as_ref();
    match mfa::check(store, kek, user_id, otp.expose_secret(), req.now).await {
        Ok(Some(factor)) => Ok(SignInMethod::second_factor(Some(factor))),
        Ok(None) => {
            audit(svc, AuditAction::LoginFailure, Some(user_id.to_owned()), req).await;
            Err(GrantError::InvalidOtp)
        }
        Err(CheckError::Store(e)) => Err(e.into()),
        Err(CheckError::Key(e)) => {
            tracing::error!(error = %e, "an authenticator secret cannot be opened");
            Err(GrantError::Internal)
        }
    }
}

fn event(action: portcullis_domain::AuditAction, user_id: Option<String>, req: &Request<'_>) -> NewAuditEvent {
    NewAuditEvent {
        action,
        actor: user_id.clone(),
        client_id: Some(req.client.id.clone()),
        subject: user_id,
        ip: req.ip.map(|ip| ip.to_string()),
        detail: None,
    }
}

async fn audit(svc: &TokenService, action: portcullis_domain::AuditAction, user_id: Option<String>, req: &Request<'_>) {
    svc.store()
        .record_audit_or_warn(&event(action, user_id, req), req.now)
        .await;
}
