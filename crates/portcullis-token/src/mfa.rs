//! The second factor: TOTP (RFC 6238) and recovery codes.
//!
//! - Authenticators use what every authenticator app expects: HMAC-SHA-1,
//!   6 digits, 30-second steps, a 20-byte random secret (RFC 4226 §4
//!   asks for at least 128 bits, recommends 160). The secret is stored
//!   sealed under the key-encryption key when one is configured, as signing
//!   keys are.
//! - A code is accepted for the current step or one step either side (a
//!   phone clock off by up to 30 s, RFC 6238 §5.2), and only for a step
//!   later than the last accepted one: each code works once, and a code
//!   older than one already used never works.
//! - Recovery codes carry 80 random bits each (16 characters of a 32-letter
//!   alphabet, shown as `xxxx-xxxx-xxxx-xxxx`), so a SHA-256 of each is
//!   enough to store; each works once.

use std::fmt;

use portcullis_store::{SecondFactorStore, StoreError, StoredTotpSecret, TokenHash, TotpSecretChange, UnixTime};
use subtle::ConstantTimeEq as _;

use crate::keys::kek::is_sealed;
use crate::keys::{Kek, KeyError};

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of an authenticator secret.
pub const SECRET_LEN: usize = 20;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// Steps either side of the current one whose codes are accepted.
const DRIFT_STEPS: i64 = 1;
/// The alphabet of recovery codes: lowercase letters and digits without
/// `0 1 l o` (easy to misread on paper).
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Characters of a recovery code, without its dashes.
const RECOVERY_LEN: usize = 16;

/// How a user signed in, as access tokens record it (RFC 8176 `amr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// A password alone.
    Password,
    /// A password and an authenticator code.
    PasswordAndTotp,
    /// A password and a recovery code.
    PasswordAndRecoveryCode,
}

impl SignInMethod {
    /// The `amr` values, space-separated, as a family stores them.
    #[must_use]
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndTotp => "pwd otp mfa",
            Self::PasswordAndRecoveryCode => "pwd mfa",
        }
    }

    /// The second factor used, if any.
    #[must_use]
    pub fn second_factor(factor: Option<Factor>) -> Self {
        match factor {
            None => Self::Password,
            Some(Factor::Totp) => Self::PasswordAndTotp,
            Some(Factor::RecoveryCode) => Self::PasswordAndRecoveryCode,
        }
    }
}

/// The `amr` claim and the `acr` claim of a family's stored `amr` (`None`:
/// a family started before it was recorded, a password sign-in).
#[must_use]
pub fn claims_of(amr: Option<&str>) -> (Vec<String>, String) {
    let amr: Vec<String> = amr.unwrap_or("pwd").split(' ').map(str::to_owned).collect();
    let acr = if amr.iter().any(|m| m == "mfa") { "2" } else { "1" };
    (amr, acr.to_owned())
}

/// A second factor a code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// A code of the user's authenticator.
    Totp,
    /// One of the user's recovery codes (now used).
    RecoveryCode,
}

/// A new authenticator secret. `Debug` shows nothing of it.
pub struct TotpSecret([u8; SECRET_LEN]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// 20 bytes from the system's random source.
    ///
    /// # Panics
    /// When the system's random source fails (nothing secure can be done
    /// without it).
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        getrandom::fill(&mut bytes).expect("the system's random source failed");
        Self(bytes)
    }

    /// The secret in base32 without padding, as authenticator apps take it.
    #[must_use]
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The `otpauth://` URI of the key-uri format authenticator apps scan:
    /// labelled `issuer:account`, with the issuer also as a parameter.
    #[must_use]
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let issuer_enc = utf8_percent_encode(issuer, NON_ALPHANUMERIC);
        let account_enc = utf8_percent_encode(account, NON_ALPHANUMERIC);
        format!(
            "otpauth://totp/{issuer_enc}:{account_enc}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            self.base32()
        )
    }

    /// The stored form: sealed under `kek` (bound to `user_id`), or plain.
    ///
    /// # Errors
    /// When the system's random source fails.
    pub fn seal(&self, kek: Option<&Kek>, user_id: &str) -> Result<Vec<u8>, KeyError> {
        match kek {
            Some(kek) => kek.seal(&aad(user_id), &self.0),
            None => Ok(self.0.to_vec()),
        }
    }

    /// The secret of a stored form.
    ///
    /// # Errors
    /// When it is sealed and `kek` is missing or not the one it was sealed
    /// under, or it is not a secret at all.
    pub fn open(kek: Option<&Kek>, user_id: &str, stored: &[u8]) -> Result<Self, KeyError> {
        let plain = if is_sealed(stored) {
            kek.ok_or(KeyError::internal(
                "an authenticator secret is encrypted and no key-encryption key is configured",
            ))?
            .open(&aad(user_id), stored)?
        } else {
            stored.to_vec()
        };
        let bytes: [u8; SECRET_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::internal("malformed authenticator secret"))?;
        Ok(Self(bytes))
    }

    /// The code of `step` (RFC 6238 §4 with RFC 4226 §5.3 truncation).
    #[must_use]
    pub fn code_at_step(&self, step: i64) -> String {
        use aws_lc_rs::hmac;
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let counter = u64::try_from(step).unwrap_or(0).to_be_bytes();
        let mac = hmac::sign(&key, &counter);
        let mac = mac.as_ref();
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
        format!("{:0width$}", binary % 1_000_000, width = DIGITS)
    }

    /// The step of `code` among the steps around `now` (the latest if
    /// several match), compared in constant time.
    #[must_use]
    pub fn matching_step(&self, code: &str, now: UnixTime) -> Option<i64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_of(now);
        let mut found = None;
        for step in (current - DRIFT_STEPS)..=(current + DRIFT_STEPS) {
            if bool::from(self.code_at_step(step).as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }
}

/// The changes that leave every authenticator secret in `secrets` sealed
/// under `new`, as [`crate::keys::kek::rewrap`] does for signing keys: a
/// plain secret is sealed, one sealed under `old` re-sealed, one `new`
/// opens already left alone (an interrupted rewrap can run again).
///
/// # Errors
/// When a sealed secret opens under neither key, or a secret is malformed:
/// nothing should then be written.
pub fn rewrap_secrets(
    secrets: &[StoredTotpSecret],
    old: Option<&Kek>,
    new: &Kek,
) -> Result<Vec<TotpSecretChange>, KeyError> {
    let mut changes = Vec::new();
    for stored in secrets {
        if is_sealed(&stored.secret) && new.open(&aad(&stored.user_id), &stored.secret).is_ok() {
            continue;
        }
        let secret = TotpSecret::open(old, &stored.user_id, &stored.secret)?;
        changes.push(TotpSecretChange {
            user_id: stored.user_id.clone(),
            old: stored.secret.clone(),
            new: secret.seal(Some(new), &stored.user_id)?,
        });
    }
    Ok(changes)
}

/// The TOTP step of `now`.
#[must_use]
pub fn step_of(now: UnixTime) -> i64 {
    now.0.div_euclid(STEP_SECS)
}

/// The additional data a sealed secret is bound to: its user.
fn aad(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// RFC 4648 base32, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A new set of recovery codes: the codes to show (once) and the hashes to
/// store.
///
/// # Panics
/// When the system's random source fails.
#[must_use]
pub fn new_recovery_codes() -> (Vec<String>, Vec<[u8; 32]>) {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; RECOVERY_LEN];
        getrandom::fill(&mut raw).expect("the system's random source failed");
        let plain: String = raw
            .iter()
            .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
            .collect();
        hashes.push(TokenHash::of(plain.as_bytes()).0);
        let shown = plain
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("-");
        codes.push(shown);
    }
    (codes, hashes)
}

/// The hash of a recovery code as typed (dashes and spaces ignored, any
/// case), or `None` when it cannot be one.
#[must_use]
pub fn recovery_code_hash(typed: &str) -> Option<[u8; 32]> {
    if typed.len() > 64 {
        return None;
    }
    let plain: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (plain.len() == RECOVERY_LEN && plain.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then(|| TokenHash::of(plain.as_bytes()).0)
}

/// Whether `otp` is shaped like a code at all (6 digits or a recovery
/// code); anything else is refused before any lookup.
#[must_use]
pub fn is_code_shaped(otp: &str) -> bool {
    (otp.len() == DIGITS && otp.bytes().all(|b| b.is_ascii_digit())) || recovery_code_hash(otp).is_some()
}

/// A second-factor code could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored secret could not be opened (wrong or missing
    /// key-encryption key).
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Checks `otp` (an authenticator code or a recovery code) for the user and
/// uses it: `Some` with the factor it proved, `None` for a wrong, replayed
/// or used code, or a user without a confirmed authenticator.
///
/// # Errors
/// See [`CheckError`].
pub async fn check(
    store: &dyn SecondFactorStore,
    kek: Option<&Kek>,
    user_id: &str,
    otp: &str,
    now: UnixTime,
) -> Result<Option<Factor>, CheckError> {
    if let Some(hash) = recovery_code_hash(otp) {
        let used = store.use_recovery_code(user_id, &hash, now).await?;
        return Ok(used.then_some(Factor::RecoveryCode));
    }
    let factor = store.second_factor(user_id).await?;
    let Some(totp) = factor.totp.filter(|t| t.confirmed_at.is_some()) else {
        return Ok(None);
    };
    let secret = TotpSecret::open(kek, user_id, &totp.secret)?;
    let Some(step) = secret.matching_step(otp, now) else {
        return Ok(None);
    };
    if step <= totp.last_step {
        return Ok(None);
    }
    Ok(store.use_totp_step(user_id, step).await?.then_some(Factor::Totp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (the 8-digit values' last 6 digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = TotpSecret(*b"12345678901234567890");
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(secret.code_at_step(step_of(UnixTime(time))), code, "T = {time}");
        }
    }

    #[test]
    fn codes_of_the_next_and_previous_steps_match_and_no_others() {
        let secret = TotpSecret::generate();
        let now = UnixTime(1_700_000_015);
        let step = step_of(now);
        for d in -1..=1 {
            assert_eq!(
                secret.matching_step(&secret.code_at_step(step + d), now),
                Some(step + d)
            );
        }
        for d in [-3, -2, 2, 3] {
            let code = secret.code_at_step(step + d);
            let hit = secret.matching_step(&code, now);
            // A far step's code may collide with a near one's by chance.
            assert!(hit.is_none() || secret.code_at_step(hit.unwrap_or_default()) == code);
        }
        assert_eq!(secret.matching_step("12345", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(
            TotpSecret(*b"12345678901234567890").base32(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn the_uri_is_labelled_and_escaped() {
        let secret = TotpSecret(*b"12345678901234567890");
        assert_eq!(
            secret.otpauth_uri("Example Co", "alice@example.com"),
            "otpauth://totp/Example%20Co:alice%40example%2Ecom?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_typed_loosely() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for (code, hash) in codes.iter().zip(&hashes) {
            assert_eq!(code.len(), 19);
            assert_eq!(recovery_code_hash(code), Some(*hash));
            assert_eq!(recovery_code_hash(&code.to_uppercase().replace('-', " ")), Some(*hash));
        }
        assert_eq!(recovery_code_hash("123456"), None);
        assert_eq!(recovery_code_hash("0000-0000-0000-0000"), None);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user() {
        let kek = Kek::from_bytes(&[7u8; 32]).expect("kek");
        let secret = TotpSecret::generate();
        let stored = secret.seal(Some(&kek), "u1").expect("seal");
        assert!(is_sealed(&stored));
        assert_eq!(TotpSecret::open(Some(&kek), "u1", &stored).expect("open").0, secret.0);
        assert!(TotpSecret::open(Some(&kek), "u2", &stored).is_err());
        assert!(TotpSecret::open(None, "u1", &stored).is_err());
        let plain = secret.seal(None, "u1").expect("plain");
        assert_eq!(TotpSecret::open(None, "u1", &plain).expect("open").0, secret.0);
    }

    #[test]
    fn rewrap_moves_secrets_to_the_new_kek_and_skips_those_there() {
        let old = Kek::from_bytes(&[1u8; 32]).expect("kek");
        let new = Kek::from_bytes(&[2u8; 32]).expect("kek");
        let (a, b, c) = (TotpSecret::generate(), TotpSecret::generate(), TotpSecret::generate());
        let stored = vec![
            StoredTotpSecret {
                user_id: "a".into(),
                secret: a.seal(None, "a").expect("plain"),
            },
            StoredTotpSecret {
                user_id: "b".into(),
                secret: b.seal(Some(&old), "b").expect("seal"),
            },
            StoredTotpSecret {
                user_id: "c".into(),
                secret: c.seal(Some(&new), "c").expect("seal"),
            },
        ];
        let changes = rewrap_secrets(&stored, Some(&old), &new).expect("rewrap");
        assert_eq!(
            changes.iter().map(|c| c.user_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        for (change, secret) in changes.iter().zip([&a, &b]) {
            assert_eq!(
                TotpSecret::open(Some(&new), &change.user_id, &change.new)
                    .expect("open")
                    .0,
                secret.0
            );
        }
        // A secret under a third key: refused, nothing to write.
        let third = Kek::from_bytes(&[3u8; 32]).expect("kek");
        let lost = [StoredTotpSecret {
            user_id: "d".into(),
            secret: a.seal(Some(&third), "d").expect("seal"),
        }];
        assert!(rewrap_secrets(&lost, Some(&old), &new).is_err());
        assert!(rewrap_secrets(&lost, None, &new).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let secret = TotpSecret(*b"12345678901234567890");
        assert_eq!(format!("{secret:?}"), "TotpSecret([redacted])");
    }
}
