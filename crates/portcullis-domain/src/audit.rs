//! What the audit log records.

use std::fmt;
use std::str::FromStr;

/// Declares the actions with their stored names, once.
macro_rules! actions {
    ($($(#[$meta:meta])* $variant:ident => $text:literal),+ $(,)?) => {
        /// What an audit event records: every action the server, an admin
        /// or a user can take that the log keeps. The stored (and shown)
        /// name is `resource.verb`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$meta])* $variant),+
        }

        impl AuditAction {
            /// Every action.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored name.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }
    };
}

actions! {
    /// A password sign-in succeeded.
    LoginSuccess => "login.success",
    /// A password sign-in failed.
    LoginFailure => "login.failure",
    /// A refresh token was rotated (only when sign-in auditing is on).
    Refresh => "refresh",
    /// A spent refresh token came back: its family was revoked.
    RefreshReuse => "refresh.reuse",
    /// A client revoked one of its tokens (RFC 7009).
    TokenRevoke => "token.revoke",
    /// A client was registered.
    ClientCreate => "client.create",
    /// A client was revoked.
    ClientRevoke => "client.revoke",
    /// A client's secret was replaced.
    ClientRotateSecret => "client.rotate_secret",
    /// A client's settings were changed.
    ClientUpdate => "client.update",
    /// A user was created.
    UserCreate => "user.create",
    /// A user was disabled.
    UserDisable => "user.disable",
    /// A user's password was set by an admin.
    UserSetPassword => "user.set_password",
    /// Every sign-in of a user was ended.
    UserRevokeTokens => "user.revoke_tokens",
    /// A user's scope, admin right or email address was changed.
    UserUpdate => "user.update",
    /// A disabled user was enabled again.
    UserEnable => "user.enable",
    /// A user was deleted, by an admin or by themselves; the subject is a
    /// pseudonym of their id, not the id.
    UserDelete => "user.delete",
    /// A user changed their own password (their other sign-ins ended).
    UserChangePassword => "user.change_password",
    /// A user signed up through a client that allows it.
    UserSignUp => "user.sign_up",
    /// A password reset was asked for (the account exists; a code was
    /// sent when it has a verified address).
    UserResetRequest => "user.reset_request",
    /// A user set a new password with a reset code; every sign-in ended.
    UserResetPassword => "user.reset_password",
    /// A wrong or dead reset or verification code was tried.
    UserCodeFailure => "user.code_failure",
    /// A user set or changed their email address (unverified).
    UserSetEmail => "user.set_email",
    /// A user confirmed their email address with a code.
    UserVerifyEmail => "user.verify_email",
    /// A user started enrolling an authenticator (TOTP); it is not asked
    /// for until confirmed.
    UserMfaStart => "user.mfa_start",
    /// A user confirmed an authenticator with a first code: sign-in now
    /// asks for a second factor; recovery codes were issued.
    UserMfaEnrol => "user.mfa_enrol",
    /// A user removed their authenticator and recovery codes.
    UserMfaRemove => "user.mfa_remove",
    /// An admin removed a user's second factor and ended their sign-ins.
    UserMfaReset => "user.mfa_reset",
    /// A user replaced their recovery codes.
    UserRecoveryCodes => "user.recovery_codes",
    /// A wrong second-factor code was tried outside sign-in (enrolment,
    /// removal, new recovery codes).
    UserMfaFailure => "user.mfa_failure",
    /// One sign-in (device) was ended.
    DeviceSignOut => "device.sign_out",
    /// A new signing key became current.
    KeysRotate => "keys.rotate",
    /// A signing key stored in plain was encrypted under the
    /// key-encryption key, or re-encrypted under a new one.
    KeysWrap => "keys.wrap",
}

/// The stored name is not an action this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit action")]
pub struct UnknownAuditAction;

impl FromStr for AuditAction {
    type Err = UnknownAuditAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownAuditAction)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_unique_and_read_back() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(*a));
        }
        assert_eq!("nope".parse::<AuditAction>(), Err(UnknownAuditAction));
    }
}
