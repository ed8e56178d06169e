//! One-time codes mailed to users (email verification, password reset):
//! made, stored hashed, checked.
//!
//! A code is 8 characters from an alphabet without look-alikes (no `0 O`,
//! `1 I L`, `U V`... : `23456789ABCDEFGHJKMNPQRSTWXYZ`, 29 characters, about
//! 39 bits), shown as `ABCD-EFGH` and read back in any case, with or
//! without the dash or spaces. It lives 15 minutes, works once, and dies
//! after 5 tries: a guesser has 5 chances in 29^8 (about one in 100
//! billion) per code, and the reset request limit caps how many codes an
//! account gets. Only SHA-256(salt ‖ code) is stored, with a random salt
//! per code: a copy of the database shows no live code.

use portcullis_store::{CodePurpose, CodeTry, NewCode, Store, StoreError, UnixTime};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::OpsError;

/// The alphabet of codes: digits and capitals without look-alikes.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";
/// Characters in a code.
const LEN: usize = 8;
/// How long a code works, in seconds.
pub const CODE_TTL_SECS: i64 = 15 * 60;
/// Tries (right or wrong) a code allows.
pub const CODE_TRIES: i64 = 5;

/// A fresh code, as shown to the user (`ABCD-EFGH`).
fn generate() -> Result<String, OpsError> {
    let mut out = String::with_capacity(LEN + 1);
    while out.len() < LEN + 1 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_err(|_| OpsError::Random)?;
        // Rejection sampling keeps every character equally likely.
        let limit = u8::try_from(256 / ALPHABET.len() * ALPHABET.len()).unwrap_or(u8::MAX);
        if byte[0] >= limit {
            continue;
        }
        if out.len() == LEN / 2 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
    }
    Ok(out)
}

/// The code as typed, in its compared form: upper case, without dashes
/// and spaces; `None` when it cannot be a code.
fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn digest(salt: &[u8], code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(code.as_bytes());
    h.finalize().into()
}

/// Makes and stores a code for `user_id` (replacing their live code of
/// the same purpose); returns it as shown to the user.
///
/// # Errors
/// [`OpsError::NoUser`] when the user is gone; a store failure.
pub async fn issue(
    store: &dyn Store,
    user_id: &str,
    purpose: CodePurpose,
    email: Option<&str>,
    now: UnixTime,
) -> Result<String, OpsError> {
    let shown = generate()?;
    let code = normalize(&shown).ok_or(OpsError::Random)?;
    let mut salt = vec![0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| OpsError::Random)?;
    let new = NewCode {
        user_id: user_id.to_owned(),
        purpose,
        code_hash: digest(&salt, &code),
        salt,
        email: email.map(str::to_owned),
        expires_at: now.plus(CODE_TTL_SECS),
    };
    store.put_code(&new, now).await.map_err(|e| match e {
        StoreError::NotFound => OpsError::NoUser(user_id.to_owned()),
        other => OpsError::Store(other),
    })?;
    Ok(shown)
}

/// Tries `typed` against the user's live code of `purpose` and uses it
/// up when it is right. `user_id` may name no user (an unknown account):
/// the same statements run, and the answer is the same as for a wrong
/// code.
///
/// # Errors
/// [`OpsError::BadCode`] when there is no live code or this one is wrong
/// (the fifth wrong try deletes the code); a store failure.
pub async fn redeem(
    store: &dyn Store,
    user_id: &str,
    purpose: CodePurpose,
    typed: &str,
    now: UnixTime,
) -> Result<CodeTry, OpsError> {
    // A malformed code still counts as a try.
    let code = normalize(typed);
    let Some(live) = store.try_code(user_id, purpose, CODE_TRIES, now).await? else {
        return Err(OpsError::BadCode);
    };
    let right = code.is_some_and(|c| bool::from(digest(&live.salt, &c)[..].ct_eq(&live.code_hash)));
    if !right {
        if live.attempts >= CODE_TRIES {
            store.delete_code(&live.id).await?;
        }
        return Err(OpsError::BadCode);
    }
    // Used once: of concurrent right tries, one deletes it.
    if store.delete_code(&live.id).await? {
        Ok(live)
    } else {
        Err(OpsError::BadCode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_8_unambiguous_characters_shown_in_two_halves() {
        for _ in 0..200 {
            let shown = generate().expect("code");
            assert_eq!(shown.len(), 9, "{shown}");
            assert_eq!(&shown[4..5], "-");
            let code = normalize(&shown).expect("valid");
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
            for bad in ['0', 'O', '1', 'I', 'L', 'U', 'V'] {
                assert!(!code.contains(bad), "{code}");
            }
        }
        assert_ne!(generate().expect("code"), generate().expect("code"));
    }

    #[test]
    fn a_code_reads_back_in_any_case_with_or_without_the_dash() {
        assert_eq!(normalize("abcd-efgh").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize(" AB CD EF GH ").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize("ABCDEFG"), None);
        assert_eq!(normalize("ABCDEFG0"), None);
        assert_eq!(normalize("ÄBCDEFGH"), None);
    }

    #[test]
    fn the_digest_depends_on_the_salt() {
        assert_ne!(digest(b"a", "ABCDEFGH"), digest(b"b", "ABCDEFGH"));
        assert_eq!(digest(b"a", "ABCDEFGH"), digest(b"a", "ABCDEFGH"));
    }
}
