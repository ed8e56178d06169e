//! The Authorization Challenge Endpoint (draft-ietf-oauth-first-party-apps):
//! a first-party app signs a user in with a password and, for a user with
//! a second factor, that factor's code, and gets an authorization code to
//! exchange at the token endpoint with its PKCE verifier ([`super::code`]).
//!
//! The first request checks the password exactly as the password grant
//! does (hashing pool, throttle, dummy hash, refusal delay). A user without
//! a second factor gets a code at once; a user with one gets an
//! `auth_session` to send back with the code of the factor. Each such try
//! is counted in the per-account throttle like a password, and on the auth
//! session, which dies after [`MAX_TRIES`] wrong codes.

use portcullis_store::{AuthSession, AuthorizationCode, ChallengeGrant, TokenHash};
use secrecy::{ExposeSecret as _, SecretString};

use super::password::{self, Checked};
use super::{ChallengeRequest, Request};
use crate::config::secs;
use crate::mfa::SignInMethod;
use crate::password::Slot;
use crate::secret::OpaqueSecret;
use crate::{GrantError, TokenService};

/// Codes tried on one auth session before it dies.
pub(crate) const MAX_TRIES: i64 = 5;

/// What the endpoint answers when it does not refuse.
pub(crate) enum Outcome {
    /// 200: the authorization code.
    Code(OpaqueSecret),
    /// 400 `insufficient_authorization`: the password was right; send the
    /// second factor's code with this `auth_session`.
    NeedsOtp(OpaqueSecret),
    /// 400 `insufficient_authorization`: the code was wrong; the same
    /// `auth_session` may try again.
    WrongOtp(SecretString),
}

/// Runs a challenge request for `client` (authenticated, first-party).
/// `slot` is the place in the hashing pool of a first request.
///
/// # Errors
/// The sign-in's [`GrantError`]: as the password grant for a first request;
/// [`GrantError::InvalidSession`] for an auth session that is unknown,
/// expired, of another client or out of tries;
/// [`GrantError::InvalidDpopProof`] when the auth session is bound to
/// another DPoP key; [`GrantError::Throttled`].
pub(crate) async fn run(
    svc: &TokenService,
    request: ChallengeRequest,
    req: &Request<'_>,
    slot: Option<Slot>,
) -> Result<Outcome, GrantError> {
    let outcome = match (request, slot) {
        (
            ChallengeRequest::Start {
                sign_in,
                code_challenge,
            },
            Some(slot),
        ) => start(svc, sign_in, code_challenge, req, slot).await,
        (ChallengeRequest::Continue { auth_session, otp }, _) => next(svc, auth_session, &otp, req).await,
        (ChallengeRequest::Start { .. }, None) => Err(GrantError::Internal),
    };
    if let Err(e) = &outcome {
        super::refused(svc, e).await;
    }
    outcome
}

async fn start(
    svc: &TokenService,
    sign_in: super::PasswordGrant,
    code_challenge: String,
    req: &Request<'_>,
    slot: Slot,
) -> Result<Outcome, GrantError> {
    let key = sign_in.username.key();
    let Checked { user, .. } = password::check_password(
        svc,
        &sign_in.username,
        &sign_in.password,
        sign_in.scope.as_ref(),
        req,
        slot,
    )
    .await?;
    let store = svc.store();
    let throttle = &svc.config().throttle;
    // The password was right: the attempt does not count, whatever follows.
    throttle.succeeded(store, key, req.ip).await;
    let enrolled = store.second_factor(&user.id).await?.is_enrolled();
    if !enrolled && req.client.mfa_required {
        return Err(GrantError::MfaNotEnrolled);
    }
    let granted = password::granted_scope(req, sign_in.scope, &user.scope).ok_or(GrantError::InvalidScope)?;
    let grant = ChallengeGrant {
        client_id: req.client.id.to_string(),
        user_id: user.id.clone(),
        code_challenge,
        scope: granted.to_string(),
        amr: SignInMethod::Password.amr().to_owned(),
        sessions_epoch: user.sessions_epoch,
        dpop_jkt: req.dpop.map(str::to_owned),
    };
    if !enrolled {
        let code = OpaqueSecret::generate();
        let stored = AuthorizationCode {
            hash: code.hash(),
            grant,
        };
        let expires_at = req.now.plus(secs(svc.config().authorization_code_ttl));
        store.put_authorization_code(&stored, expires_at, req.now).await?;
        return Ok(Outcome::Code(code));
    }
    let session = OpaqueSecret::generate();
    let stored = AuthSession {
        hash: session.hash(),
        grant,
        account_key: key.to_owned(),
        attempts: 0,
        expires_at: req.now.plus(secs(svc.config().auth_session_ttl)),
    };
    store.put_auth_session(&stored, req.now).await?;
    Ok(Outcome::NeedsOtp(session))
}

async fn next(
    svc: &TokenService,
    auth_session: SecretString,
    otp: &SecretString,
    req: &Request<'_>,
) -> Result<Outcome, GrantError> {
    let store = svc.store();
    let throttle = &svc.config().throttle;
    let hash = TokenHash::of(auth_session.expose_secret().as_bytes());
    let session = store
        .auth_session(&hash, req.now)
        .await?
        .ok_or(GrantError::InvalidSession)?;
    if session.grant.client_id != req.client.id.as_str() {
        return Err(GrantError::InvalidSession);
    }
    // The draft's §5.3.1: every request of a challenge begun with a DPoP
    // proof proves possession of the same key.
    if let Some(bound) = &session.grant.dpop_jkt {
        if req.dpop != Some(bound.as_str()) {
            return Err(GrantError::InvalidDpopProof(
                "the auth_session is bound to the key of another DPoP proof",
            ));
        }
    }
    // A try of a code is a sign-in attempt, counted like a password.
    throttle.admit(store, &session.account_key, req.ip, req.now).await?;
    let tries = store
        .try_auth_session(&hash, MAX_TRIES, req.now)
        .await?
        .ok_or(GrantError::InvalidSession)?;
    match password::verify_otp(svc, &session.grant.user_id, otp, req).await {
        Ok(method) => {
            let code = OpaqueSecret::generate();
            let stored = AuthorizationCode {
                hash: code.hash(),
                grant: ChallengeGrant {
                    amr: method.amr().to_owned(),
                    ..session.grant
                },
            };
            let expires_at = req.now.plus(secs(svc.config().authorization_code_ttl));
            if !store.exchange_auth_session(&hash, &stored, expires_at, req.now).await? {
                // Used by a concurrent request, or expired meanwhile.
                return Err(GrantError::InvalidSession);
            }
            throttle.succeeded(store, &session.account_key, req.ip).await;
            Ok(Outcome::Code(code))
        }
        Err(GrantError::InvalidOtp) if tries >= MAX_TRIES => {
            store.delete_auth_session(&hash).await?;
            Err(GrantError::InvalidSession)
        }
        Err(GrantError::InvalidOtp) => Ok(Outcome::WrongOtp(auth_session)),
        Err(e) => Err(e),
    }
}
