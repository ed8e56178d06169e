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
    // Refused before the password is checked, like a scope beyond the
    // client's.
    let audience = super::audience(svc, resource.as_deref());
    if requested.as_ref().is_some_and(|r| !r.is_subset_of(&req.client.scope)) {
        return Err(GrantError::InvalidScope);
    }
    let audience = audience?;
    let Checked {
        user,
        hash: checked_hash,
    } = check_password(svc, &username, &password, requested.as_ref(), req, slot).await?;
    let method = second_factor(svc, &user.id, otp.as_ref(), req, key).await?;
    let Some(granted) = granted_scope(req, requested, &user.scope) else {
        // The password was right: the attempt does not count.
        svc.config().throttle.succeeded(svc.store(), key, req.ip).await;
        return Err(GrantError::InvalidScope);
    };
    let start = FamilyStart {
        user_id: &user.id,
        scope: &granted,
        device_label: device_name,
        sessions_epoch: user.sessions_epoch,
        password_hash: Some(checked_hash),
        amr: method.amr(),
        throttle_key: Some(key),
    };
    start_family(svc, req, start, audience)
        .await
        .map(|(response, _)| response)
}

/// A user whose password was right, and the hash it was checked against.
pub(super) struct Checked {
    pub(super) user: portcullis_store::User,
    pub(super) hash: String,
}

/// Checks `username`'s password, as every sign-in does: what can be
/// refused without the user (a scope beyond the client's, a bad
/// `resource`, checked by the caller) is refused first; then the attempt is counted in the
/// per-account throttle, and the password checked on the hashing pool
/// (`slot`), against a dummy hash for an unknown user or one without a
/// password. A rehash is stored. A wrong password, an unknown or disabled
/// user get one answer, [`GrantError::InvalidGrant`], and an audit row.
/// A right password leaves the attempt counted: the caller takes it back
/// ([`ThrottlePolicy::succeeded`] or the family's [`SignInRecord`]).
pub(super) async fn check_password(
    svc: &TokenService,
    username: &portcullis_domain::Username,
    password: &SecretString,
    requested: Option<&portcullis_domain::Scopes>,
    req: &Request<'_>,
    slot: Slot,
) -> Result<Checked, GrantError> {
    let key = username.key();
    // What can be refused without the user is refused before the password
    // is checked; what depends on the user, only after (it would otherwise
    // tell whether the account exists).
    if requested.is_some_and(|r| !r.is_subset_of(&req.client.scope)) {
        return Err(GrantError::InvalidScope);
    }

    let store = svc.store();
    let throttle = &svc.config().throttle;
    throttle.admit(store, key, req.ip, req.now).await?;

    let user = match store.user_by_username(username).await {
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
    match (verdict, user) {
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
            Ok(Checked { user, hash: checked })
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
            Err(GrantError::InvalidGrant)
        }
    }
}

/// The scope a sign-in grants: the one requested if the user may have it
/// (`None` if not), else the client's default scope within what the
/// client and the user may have.
pub(super) fn granted_scope(
    req: &Request<'_>,
    requested: Option<portcullis_domain::Scopes>,
    user_scope: &portcullis_domain::Scopes,
) -> Option<portcullis_domain::Scopes> {
    match requested {
        Some(r) if r.is_subset_of(user_scope) => Some(r),
        Some(_) => None,
        None => Some(
            req.client
                .default_scope
                .clone()
                .intersection(&req.client.scope)
                .intersection(user_scope),
        ),
    }
}

/// What a new refresh family starts from: a password sign-in, or the
/// exchange of an authorization code.
pub(super) struct FamilyStart<'a> {
    pub(super) user_id: &'a str,
    pub(super) scope: &'a portcullis_domain::Scopes,
    pub(super) device_label: Option<String>,
    /// The user's `sessions_epoch` as read before the password check.
    pub(super) sessions_epoch: i64,
    /// The hash the password was checked against, for a password sign-in.
    pub(super) password_hash: Option<String>,
    pub(super) amr: &'a str,
    /// The account's throttle key, for a password sign-in: its counters
    /// are settled in the family's transaction.
    pub(super) throttle_key: Option<&'a str>,
}

/// Starts a refresh family (one per sign-in / device) and mints its first
/// tokens; the answer and the family's id.
pub(super) async fn start_family(
    svc: &TokenService,
    req: &Request<'_>,
    start: FamilyStart<'_>,
    audience: String,
) -> Result<(TokenResponse, String), GrantError> {
    let store = svc.store();
    let cfg = svc.config();
    let (refresh, selector) = crate::refresh_token::first();
    let new = NewFamily {
        user_id: start.user_id.to_owned(),
        client_id: req.client.id.clone(),
        scope: start.scope.to_string(),
        device_label: start.device_label,
        expires_at: req.now.plus(secs(cfg.refresh_absolute_ttl)),
        selector,
        first_token: refresh.hash(),
        first_token_expires_at: req.now.plus(secs(cfg.refresh_idle_ttl)),
        // Refused if the password changed or the user was signed out
        // everywhere after the user was read, before the password check.
        sessions_epoch: start.sessions_epoch,
        password_hash: start.password_hash,
        // RFC 9449 §5: a public client's refresh token is bound to the
        // key of the sign-in's proof, for the family's whole life (a
        // confidential client's is bound to its own authentication).
        dpop_jkt: req.dpop.filter(|_| req.client.is_public()).map(str::to_owned),
        amr: Some(start.amr.to_owned()),
        // The throttle bookkeeping and the audit event of the sign-in, in
        // the family's own transaction.
        sign_in: Some({
            let (clear_counter, forgive_counter) = match start.throttle_key {
                Some(key) => ThrottlePolicy::success_counters(key, req.ip),
                // Settled when the code was issued.
                None => (String::new(), String::new()),
            };
            SignInRecord {
                clear_counter,
                forgive_counter,
                audit: event(AuditAction::LoginSuccess, Some(start.user_id.to_owned()), req),
            }
        }),
    };
    // Stored (committed) before the answer is built: a refresh token handed
    // out is never unknown to the server.
    let family = match store.start_family(&new, req.now).await {
        Ok(family) => family,
        // The user or client was disabled since the checks above.
        Err(StoreError::NotFound) => {
            if let Some(key) = start.throttle_key {
                cfg.throttle.succeeded(store, key, req.ip).await;
            }
            return Err(GrantError::InvalidGrant);
        }
        Err(e) => return Err(e.into()),
    };
    let access = svc.mint(
        start.user_id,
        &req.client.id,
        start.scope,
        audience,
        &family.id,
        req.now,
        req.dpop,
        Some(start.amr),
    )?;
    let can_refresh = req.client.grant_types.allows(GrantType::RefreshToken);
    Ok((
        svc.respond(access, can_refresh.then_some(&refresh), start.scope),
        family.id,
    ))
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
    verify_otp(svc, user_id, otp, req).await
}

/// Checks the code of `user_id`'s second factor (an authenticator code or
/// a recovery code, each used once). A wrong one is audited as a failed
/// sign-in and answered [`GrantError::InvalidOtp`].
pub(super) async fn verify_otp(
    svc: &TokenService,
    user_id: &str,
    otp: &SecretString,
    req: &Request<'_>,
) -> Result<SignInMethod, GrantError> {
    let kek = svc.config().key_encryption_key.as_ref();
    match mfa::check(svc.store(), kek, user_id, otp.expose_secret(), req.now).await {
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

pub(super) fn event(
    action: portcullis_domain::AuditAction,
    user_id: Option<String>,
    req: &Request<'_>,
) -> NewAuditEvent {
    NewAuditEvent {
        action,
        actor: user_id.clone(),
        client_id: Some(req.client.id.clone()),
        subject: user_id,
        ip: req.ip.map(|ip| ip.to_string()),
        detail: None,
    }
}

pub(super) async fn audit(
    svc: &TokenService,
    action: portcullis_domain::AuditAction,
    user_id: Option<String>,
    req: &Request<'_>,
) {
    svc.store()
        .record_audit_or_warn(&event(action, user_id, req), req.now)
        .await;
}
