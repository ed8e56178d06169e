//! Usernames: the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3).
//!
//! A name is kept in two forms: the one its owner typed, shown back to
//! people, and its *key*, the form names are compared in (unique in the
//! store, looked up at sign-in). The key is the typed name after width
//! mapping (fullwidth `ａｌｉｃｅ` is `alice`), case mapping (Unicode
//! toLowerCase, as RFC 8265 §3.3.2 asks) and NFC. A name is refused when it
//! holds a code point the PRECIS IdentifierClass (RFC 8264 §4.2) does not
//! allow (spaces, control and format characters such as zero-width and
//! bidi controls, unassigned code points, …) or when it breaks the bidi
//! rule (RFC 5893). The rules come from the `precis-profiles` crate and the
//! Unicode tables it ships, not from tables of our own.

use std::fmt;

use precis_profiles::UsernameCaseMapped;
use precis_profiles::precis_core::profile::PrecisFastInvocation as _;
use precis_profiles::precis_core::{Error as PrecisError, UnexpectedError};

/// A username: the form typed (1 to [`Username::MAX_LEN`] bytes) and its
/// comparison key. Two usernames name the same account when their
/// [`key`](Username::key)s are equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username {
    typed: String,
    key: String,
}

/// Why a text is not an acceptable username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUsername {
    /// Nothing was given.
    #[error("the username is empty")]
    Empty,
    /// Longer than [`Username::MAX_LEN`] bytes.
    #[error("the username is longer than 256 bytes")]
    TooLong,
    /// A code point the profile refuses.
    #[error(
        "the username may not hold U+{0:04X}: letters, digits, symbols and punctuation only; \
         no spaces, control, format (zero-width, bidi) or unassigned characters (RFC 8265)"
    )]
    CodePoint(u32),
    /// Refused as a whole: it breaks the bidi rule, or its comparison form
    /// is not stable.
    #[error("the username mixes writing directions in a way RFC 8265 refuses")]
    Refused,
}

impl Username {
    /// Longest username, in bytes (as typed). Sign-in refuses longer ones
    /// before any lookup.
    pub const MAX_LEN: usize = 256;

    /// Parses a username as typed. Nothing is trimmed: surrounding white
    /// space is refused like any other space.
    ///
    /// # Errors
    /// [`InvalidUsername`] when it is empty, too long or refused by the
    /// UsernameCaseMapped profile.
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        if raw.is_empty() {
            return Err(InvalidUsername::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidUsername::TooLong);
        }
        let key = UsernameCaseMapped::enforce(raw).map_err(refusal)?.into_owned();
        // RFC 8264 §7: enforcement must be idempotent; a name whose key
        // would change again is refused rather than stored unstable.
        if UsernameCaseMapped::enforce(key.as_str()).map_err(refusal)? != key.as_str() {
            return Err(InvalidUsername::Refused);
        }
        Ok(Self {
            typed: raw.to_owned(),
            key,
        })
    }

    /// The name as typed: what people are shown.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.typed
    }

    /// The comparison form (RFC 8265 enforcement output): what uniqueness
    /// and sign-in use.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `self` and `other` name the same account.
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

/// The refusal a PRECIS error stands for.
fn refusal(e: PrecisError) -> InvalidUsername {
    match e {
        PrecisError::BadCodepoint(info)
        | PrecisError::Unexpected(
            UnexpectedError::ContextRuleNotApplicable(info) | UnexpectedError::MissingContextRule(info),
        ) => InvalidUsername::CodePoint(info.cp),
        _ => InvalidUsername::Refused,
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.typed)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.typed)
    }
}

impl PartialEq<&str> for Username {
    fn eq(&self, other: &&str) -> bool {
        self.typed == *other
    }
}

impl serde::Serialize for Username {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.typed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        Username::parse(raw).expect("valid").key().to_owned()
    }

    #[test]
    fn look_alikes_share_one_key_and_keep_their_typed_form() {
        for raw in ["alice", "Alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ"] {
            let name = Username::parse(raw).expect("valid");
            assert_eq!(name.key(), "alice", "{raw:?}");
            assert_eq!(name.as_str(), raw);
            assert_eq!(name.to_string(), raw);
        }
        // NFC: a decomposed é is the precomposed one.
        assert_eq!(key("Jose\u{301}"), key("José"));
        assert_eq!(key("ΑΛΙΚΗ"), "αλικη");
        assert!(
            Username::parse("Alice")
                .expect("valid")
                .same_as(&Username::parse("alice").expect("valid"))
        );
        assert_eq!(key("alice@example.com"), "alice@example.com");
    }

    #[test]
    fn spaces_controls_format_and_unassigned_characters_are_refused() {
        for (bad, cp) in [
            (" alice", 0x20),
            ("alice ", 0x20),
            ("ali ce", 0x20),
            ("ali\u{200b}ce", 0x200b),
            ("ali\u{200d}ce", 0x200d),
            ("ali\u{200c}ce", 0x200c),
            ("ali\u{feff}ce", 0xfeff),
            ("\u{202e}ecila", 0x202e),
            ("ali\u{200e}ce", 0x200e),
            ("al\u{7}ice", 0x7),
            ("a\nb", 0xa),
            ("ali\u{a0}ce", 0xa0),
            // The ideographic space is width-mapped to a space first.
            ("ali\u{3000}ce", 0x20),
            ("ali\u{e000}ce", 0xe000),
            ("ali\u{378}ce", 0x378),
        ] {
            assert_eq!(Username::parse(bad), Err(InvalidUsername::CodePoint(cp)), "{bad:?}");
        }
        assert_eq!(Username::parse(""), Err(InvalidUsername::Empty));
        assert_eq!(Username::parse(&"a".repeat(257)), Err(InvalidUsername::TooLong));
        assert!(Username::parse(&"a".repeat(256)).is_ok());
        // Right-to-left text followed by a left-to-right letter breaks the
        // bidi rule (RFC 5893 §2.1).
        assert_eq!(Username::parse("\u{5d0}a"), Err(InvalidUsername::Refused));
        assert!(Username::parse("\u{5d0}\u{5d1}").is_ok());
    }

    #[test]
    fn the_key_is_its_own_key() {
        for raw in ["Alice", "ＢＯＢ", "Straße", "İstanbul", "Jose\u{301}"] {
            let k = key(raw);
            assert_eq!(key(&k), k, "{raw:?}");
        }
    }

    #[test]
    fn usernames_serialize_as_typed() {
        let name = Username::parse("Ａｌｉｃｅ").expect("valid");
        assert_eq!(serde_json::to_string(&name).expect("json"), "\"Ａｌｉｃｅ\"");
        assert_eq!(format!("{name:?}"), "Username(\"Ａｌｉｃｅ\")");
    }
}
