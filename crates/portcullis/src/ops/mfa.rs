//! A user's second factor: enrol an authenticator (TOTP, RFC 6238) and
//! confirm it with a first code, remove it, replace the recovery codes;
//! an admin's reset.
//!
//! Every code tried here (to confirm, to remove, to replace recovery codes)
//! is counted in the account's sign-in throttle before it is checked, so
//! guesses here and at the token endpoint share one budget; a right code
//! takes its attempt back, as a right password does.

use std::fmt;
use std::net::IpAddr;

use portcullis_domain::AuditAction;
use portcullis_store::{RevokeReason, SecondFactor, Store, StoreError, UnixTime, User, UserUpdate};
use portcullis_token::mfa::{self, CheckError, TotpSecret};
use portcullis_token::{GrantError, TokenService};

use super::lifecycle::{Reauthenticated, reauthenticate};
use super::users::{by_id, show};
use super::{Actor, OpsError, not_found, record};

/// A started enrolment: what the user's authenticator app needs. Shown
/// once; `Debug` shows none of it.
pub struct Enrolment {
    /// The secret in base32 (no padding), to type in by hand.
    pub secret: String,
    /// The `otpauth://totp/…` URI apps scan.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// New recovery codes, shown once. `Debug` shows only how many.
pub struct RecoveryCodes(pub Vec<String>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} [redacted])", self.0.len())
    }
}

/// An admin's reset of a user's second factor.
#[derive(Debug)]
pub struct Reset {
    /// The user (as looked up, before the reset).
    pub user: User,
    /// Whether there was anything to remove.
    pub removed: bool,
    /// Sign-ins (refresh families) ended.
    pub ended: u64,
}

/// The user's second factor.
///
/// # Errors
/// A store failure.
pub async fn status(store: &dyn Store, user_id: &str) -> Result<SecondFactor, OpsError> {
    Ok(store.second_factor(user_id).await?)
}

/// Whether the user has a confirmed authenticator (the password policy's
/// shorter minimum then applies).
///
/// # Errors
/// A store failure.
pub async fn has_second_factor(store: &dyn Store, user_id: &str) -> Result<bool, OpsError> {
    Ok(store.second_factor(user_id).await?.is_enrolled())
}

/// Starts enrolling an authenticator for the user: a new secret, stored
/// sealed under the key-encryption key, replacing one never confirmed.
/// Sign-in does not ask for it until [`confirm_totp`]. The URI's label is
/// the issuer's host and the username. Audited as `user.mfa_start`.
///
/// # Errors
/// [`OpsError::MfaEnrolled`] (remove the confirmed one first),
/// [`OpsError::NoUser`], [`OpsError::Wrap`], a store failure.
pub async fn start_totp(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    user_id: &str,
) -> Result<Enrolment, OpsError> {
    let user = by_id(store, user_id).await?;
    let secret = TotpSecret::generate();
    let sealed = secret
        .seal(tokens.config().key_encryption_key.as_ref(), &user.id)
        .map_err(OpsError::Wrap)?;
    store
        .start_totp(&user.id, &sealed, UnixTime::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict => OpsError::MfaEnrolled,
            other => not_found(other, || OpsError::NoUser(user.id.clone())),
        })?;
    let otpauth_uri = secret.otpauth_uri(&issuer_label(&tokens.config().issuer), user.username.as_str());
    let qr_svg = qr_svg(&otpauth_uri)?;
    record(store, actor, AuditAction::UserMfaStart, &user.id).await;
    Ok(Enrolment {
        secret: secret.base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// Confirms the pending authenticator with a code it shows now (one step
/// of drift either side): sign-in asks for it from now on, and the user
/// gets a new set of recovery codes, to be shown once. A wrong code is
/// counted like a wrong password and audited as `user.mfa_failure`.
/// Audited as `user.mfa_enrol`.
///
/// # Errors
/// [`OpsError::BadCode`], [`OpsError::Throttled`],
/// [`OpsError::NoPendingTotp`], [`OpsError::MfaEnrolled`],
/// [`OpsError::NoUser`], [`OpsError::Wrap`] (the stored secret does not
/// open under this server's key-encryption key), a store failure.
pub async fn confirm_totp(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    user_id: &str,
    code: &str,
    ip: Option<IpAddr>,
) -> Result<RecoveryCodes, OpsError> {
    let user = by_id(store, user_id).await?;
    let totp = match store.second_factor(&user.id).await?.totp {
        None => return Err(OpsError::NoPendingTotp),
        Some(t) if t.confirmed_at.is_some() => return Err(OpsError::MfaEnrolled),
        Some(t) => t,
    };
    admit(store, tokens, &user, ip).await?;
    let now = UnixTime::now();
    let secret = TotpSecret::open(tokens.config().key_encryption_key.as_ref(), &user.id, &totp.secret)
        .map_err(OpsError::Wrap)?;
    let Some(step) = secret.matching_step(code.trim(), now) else {
        record(store, actor, AuditAction::UserMfaFailure, &user.id).await;
        return Err(OpsError::BadCode);
    };
    let (codes, hashes) = mfa::new_recovery_codes();
    if !store.confirm_totp(&user.id, step, &hashes, now).await? {
        // Removed or confirmed by a concurrent request.
        return Err(OpsError::NoPendingTotp);
    }
    succeeded(store, tokens, &user, ip).await;
    record(store, actor, AuditAction::UserMfaEnrol, &user.id).await;
    Ok(RecoveryCodes(codes))
}

/// Removes the user's authenticator and recovery codes after checking
/// their password and a current code (or a recovery code), each counted
/// like a sign-in attempt. The password must then meet the policy for an
/// account without a second factor (a shorter one allowed with a second
/// factor is refused: change it first). An authenticator never confirmed
/// needs the password only. Audited as `user.mfa_remove`.
///
/// # Errors
/// [`OpsError::WrongPassword`], [`OpsError::BadCode`],
/// [`OpsError::Throttled`], [`OpsError::Password`] (the password is too
/// short or common for an account without a second factor),
/// [`OpsError::NoSecondFactor`], [`OpsError::NoUser`], a hashing or store
/// failure.
pub async fn remove(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    me: Reauthenticated<'_>,
    code: &str,
) -> Result<(), OpsError> {
    use secrecy::ExposeSecret as _;
    let user = reauthenticate(store, tokens, &me).await?;
    let factor = store.second_factor(&user.id).await?;
    if factor.totp.is_none() && factor.recovery_codes_left == 0 {
        return Err(OpsError::NoSecondFactor);
    }
    // Before the code is used up.
    tokens.config().password.check_new(me.password.expose_secret(), false)?;
    if factor.is_enrolled() {
        check_code(store, tokens, actor, &user, code, me.ip).await?;
    }
    store.delete_second_factor(&user.id).await?;
    record(store, actor, AuditAction::UserMfaRemove, &user.id).await;
    Ok(())
}

/// Replaces the user's recovery codes after checking a current code of
/// their authenticator (or a recovery code, which is then used): the old
/// ones stop working, the new ones are to be shown once. Audited as
/// `user.recovery_codes`.
///
/// # Errors
/// [`OpsError::BadCode`], [`OpsError::Throttled`],
/// [`OpsError::NoSecondFactor`], [`OpsError::NoUser`], a store failure.
pub async fn new_recovery_codes(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    user_id: &str,
    code: &str,
    ip: Option<IpAddr>,
) -> Result<RecoveryCodes, OpsError> {
    let user = by_id(store, user_id).await?;
    if !store.second_factor(&user.id).await?.is_enrolled() {
        return Err(OpsError::NoSecondFactor);
    }
    check_code(store, tokens, actor, &user, code, ip).await?;
    let (codes, hashes) = mfa::new_recovery_codes();
    store.replace_recovery_codes(&user.id, &hashes, UnixTime::now()).await?;
    record(store, actor, AuditAction::UserRecoveryCodes, &user.id).await;
    Ok(RecoveryCodes(codes))
}

/// An admin removes the second factor of the user named `username` (who
/// lost their authenticator and their recovery codes) and ends every
/// sign-in of theirs, as `revoke-tokens` does: whoever signed in with it
/// signs in again, with the password alone until the user enrols again.
/// Audited as `user.mfa_reset`.
///
/// # Errors
/// [`OpsError::NoUser`] or a store failure.
pub async fn reset(store: &dyn Store, actor: &Actor, username: &str) -> Result<Reset, OpsError> {
    let user = show(store, username).await?;
    let removed = store.delete_second_factor(&user.id).await?;
    let ended = store
        .update_and_revoke_user(
            &user.id,
            &UserUpdate::default(),
            RevokeReason::UserRevoked,
            UnixTime::now(),
        )
        .await
        .map_err(|e| not_found(e, || OpsError::NoUser(username.to_owned())))?;
    record(store, actor, AuditAction::UserMfaReset, &user.id).await;
    Ok(Reset { user, removed, ended })
}

/// Counts the attempt, checks (and uses) `code`, takes the attempt back
/// when it is right.
async fn check_code(
    store: &dyn Store,
    tokens: &TokenService,
    actor: &Actor,
    user: &User,
    code: &str,
    ip: Option<IpAddr>,
) -> Result<(), OpsError> {
    admit(store, tokens, user, ip).await?;
    let kek = tokens.config().key_encryption_key.as_ref();
    match mfa::check(store, kek, &user.id, code.trim(), UnixTime::now()).await {
        Ok(Some(_)) => {
            succeeded(store, tokens, user, ip).await;
            Ok(())
        }
        Ok(None) => {
            record(store, actor, AuditAction::UserMfaFailure, &user.id).await;
            Err(OpsError::BadCode)
        }
        Err(CheckError::Store(e)) => Err(e.into()),
        Err(CheckError::Key(e)) => Err(OpsError::Wrap(e)),
    }
}

/// Counts a code attempt on the account's sign-in counters.
async fn admit(store: &dyn Store, tokens: &TokenService, user: &User, ip: Option<IpAddr>) -> Result<(), OpsError> {
    tokens
        .config()
        .throttle
        .admit(store, user.username.key(), ip, UnixTime::now())
        .await
        .map_err(|e| match e {
            GrantError::Throttled { retry_after } => OpsError::Throttled(retry_after),
            GrantError::Unavailable => OpsError::Store(StoreError::Unavailable),
            _ => OpsError::Store(StoreError::Backend),
        })
}

async fn succeeded(store: &dyn Store, tokens: &TokenService, user: &User, ip: Option<IpAddr>) {
    tokens.config().throttle.succeeded(store, user.username.key(), ip).await;
}

/// The issuer part of an authenticator's label: the issuer URL's host
/// (without port: the key-uri format keeps `:` for its own separator).
fn issuer_label(issuer: &str) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "portcullis".to_owned())
}

/// `uri` as a QR code: an SVG document.
fn qr_svg(uri: &str) -> Result<String, OpsError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| OpsError::Invalid("the QR code cannot be drawn"))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_is_the_issuer_host_without_port() {
        assert_eq!(issuer_label("https://auth.example.com:8443/x"), "auth.example.com");
        assert_eq!(issuer_label("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(issuer_label("not a url"), "portcullis");
    }

    #[test]
    fn the_qr_code_is_an_svg_document() {
        let svg = qr_svg("otpauth://totp/a:b?secret=GEZDGNBVGY3TQOJQ").expect("svg");
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("</svg>"));
    }
}
