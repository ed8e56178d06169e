//! What a new password must be (NIST SP 800-63B-4 §3.1.1.2).
//!
//! - No composition rules (no "a digit and a symbol"): they make passwords
//!   harder to remember and not harder to guess.
//! - A minimum length: 15 characters for an account the password alone
//!   protects (the revision's rule for single-factor passwords), 8 when the
//!   account has a second factor. The single-factor minimum can be lowered
//!   to 8 by configuration (`password_min_length`).
//! - At least 64 characters allowed: the only maximum is the byte cap that
//!   keeps hashing bounded (1024 bytes by default), and nothing is
//!   truncated.
//! - Refused when found in a list of common passwords: the 20,000 most
//!   common passwords seen in breaches (Royce Williams' list, as Django
//!   ships it), of which the ones at least 8 characters long are kept, in
//!   the binary (no network call). Passwords made of one short unit
//!   repeated (`aaaaaaaaaaaaaaaa`, `abcabcabcabcabc`) are refused the same
//!   way.
//! - Length is counted in Unicode code points after NFKC normalization
//!   (so a fullwidth `ａ` counts as one); the list is compared in that
//!   form, lowercased, so `PASSWORD1234` is as common as `password1234`.
//!   The password itself is hashed as given: normalizing it now would make
//!   the hashes stored before this policy unreachable.

use unicode_normalization::UnicodeNormalization as _;

/// The sorted list (one a line, lowercase, 8 characters or more).
const COMMON: &str = include_str!("common-passwords.txt");

/// The shortest minimum length configuration may set.
pub const MIN_LENGTH_FLOOR: usize = 8;

/// The minimum length of an account with a second factor.
pub const MIN_LENGTH_WITH_SECOND_FACTOR: usize = 8;

/// Why a new password is refused. Each has a machine-readable
/// [`reason`](Self::reason) and a [`description`](Self::description) an
/// app can show as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Shorter than the minimum (in characters).
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    /// Longer than the byte cap.
    #[error("the password must be at most {0} bytes long")]
    TooLong(usize),
    /// In the list of common passwords, or one unit repeated.
    #[error("this password is too common: choose another")]
    TooCommon,
}

impl Refused {
    /// The machine-readable reason: `password_too_short`,
    /// `password_too_long` or `password_too_common`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort(_) => "password_too_short",
            Self::TooLong(_) => "password_too_long",
            Self::TooCommon => "password_too_common",
        }
    }

    /// A sentence an app can show (short ASCII).
    #[must_use]
    pub fn description(&self) -> String {
        let mut s = self.to_string();
        if let Some(first) = s.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        s.push('.');
        s
    }
}

/// Checks a new password against the rules above. `min_length` is the
/// single-factor minimum; `second_factor` says whether the account has a
/// second factor (then the minimum is 8).
///
/// # Errors
/// The first rule the password breaks.
pub fn check(password: &str, min_length: usize, max_bytes: usize, second_factor: bool) -> Result<(), Refused> {
    if password.len() > max_bytes {
        return Err(Refused::TooLong(max_bytes));
    }
    let min = if second_factor {
        MIN_LENGTH_WITH_SECOND_FACTOR
    } else {
        min_length.max(MIN_LENGTH_FLOOR)
    };
    let normalized: String = password.nfkc().flat_map(char::to_lowercase).collect();
    if normalized.chars().count() < min {
        return Err(Refused::TooShort(min));
    }
    if is_common(&normalized) || is_repeated(&normalized) {
        return Err(Refused::TooCommon);
    }
    Ok(())
}

/// Whether the (normalized, lowercase) password is in the list.
fn is_common(normalized: &str) -> bool {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    // The list is sorted bytewise: a binary search over its lines.
    LIST.get_or_init(|| COMMON.lines().collect())
        .binary_search(&normalized)
        .is_ok()
}

/// Whether the password is one unit of 1 to 4 characters repeated.
fn is_repeated(normalized: &str) -> bool {
    let chars: Vec<char> = normalized.chars().collect();
    (1..=4).any(|unit| {
        chars.len() >= unit * 2 && chars.len() % unit == 0 && chars.chunks(unit).all(|c| c == &chars[..unit])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    #[test]
    fn the_list_is_sorted_lowercase_and_long_enough_to_matter() {
        let lines: Vec<&str> = COMMON.lines().collect();
        assert!(lines.len() > 8000, "{} entries", lines.len());
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        assert!(lines.iter().all(|l| l.len() >= 8 && *l == l.to_lowercase()));
    }

    #[test]
    fn a_long_passphrase_is_accepted_with_no_composition_rule() {
        assert_eq!(check("correct horse battery staple", 15, MAX, false), Ok(()));
        assert_eq!(check("plain lowercase words only", 15, MAX, false), Ok(()));
        // 64 characters and far more are fine; nothing is truncated.
        assert_eq!(check(&"tolerable umbrella ".repeat(30), 15, MAX, false), Ok(()));
    }

    #[test]
    fn the_minimum_is_15_characters_for_a_password_only_account() {
        assert_eq!(check("fourteen chars", 15, MAX, false), Err(Refused::TooShort(15)));
        assert_eq!(check("fifteen chars!!", 15, MAX, false), Ok(()));
    }

    #[test]
    fn a_second_factor_lowers_the_minimum_to_8() {
        assert_eq!(check("qz7 vb2x", 15, MAX, true), Ok(()));
        assert_eq!(check("qz7 vb2", 15, MAX, true), Err(Refused::TooShort(8)));
    }

    #[test]
    fn configuration_cannot_go_below_8() {
        assert_eq!(check("qz7 vb2", 4, MAX, false), Err(Refused::TooShort(8)));
        assert_eq!(check("qz7 vb2x", 8, MAX, false), Ok(()));
    }

    #[test]
    fn length_counts_code_points_after_nfkc() {
        // 14 characters in 17 bytes, then 15.
        assert_eq!(check("crème brûlée à", 15, MAX, false), Err(Refused::TooShort(15)));
        assert_eq!(check("crème brûlée à1", 15, MAX, false), Ok(()));
        // `ﬁ` is `fi` after NFKC: two characters.
        assert_eq!(check("ﬁxed ﬁsh tank", 15, MAX, false), Ok(()));
    }

    #[test]
    fn over_the_byte_cap_is_too_long() {
        assert_eq!(check(&"x".repeat(1025), 15, MAX, false), Err(Refused::TooLong(1024)));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case_or_width() {
        assert_eq!(check("password", 8, MAX, false), Err(Refused::TooCommon));
        assert_eq!(check("PassWord1234", 8, MAX, false), Err(Refused::TooCommon));
        // Fullwidth letters are their ASCII letters after NFKC.
        assert_eq!(check("ｐａｓｓｗｏｒｄ", 8, MAX, false), Err(Refused::TooCommon));
        assert_eq!(check("qwertyuiop", 8, MAX, false), Err(Refused::TooCommon));
    }

    #[test]
    fn one_unit_repeated_is_too_common() {
        assert_eq!(check(&"a".repeat(20), 15, MAX, false), Err(Refused::TooCommon));
        assert_eq!(check(&"abc".repeat(6), 15, MAX, false), Err(Refused::TooCommon));
        assert_eq!(check(&"1234".repeat(4), 15, MAX, false), Err(Refused::TooCommon));
        assert_eq!(check("abcdeabcdeabcde", 15, MAX, false), Ok(()));
    }

    #[test]
    fn each_refusal_has_a_reason_and_a_sentence() {
        assert_eq!(Refused::TooShort(15).reason(), "password_too_short");
        assert_eq!(
            Refused::TooShort(15).description(),
            "The password must be at least 15 characters long."
        );
        assert_eq!(Refused::TooCommon.reason(), "password_too_common");
        assert_eq!(
            Refused::TooCommon.description(),
            "This password is too common: choose another."
        );
        assert_eq!(Refused::TooLong(1024).reason(), "password_too_long");
    }
}
