//! Opaque secrets: refresh tokens and client secrets.
//!
//! Both are 256 bits from the operating system's CSPRNG, written as
//! unpadded base64url (43 characters), and stored only as their SHA-256
//! ([`TokenHash`]); RFC 6749 §10.10 asks for at least 128 bits.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_store::TokenHash;
use subtle::ConstantTimeEq as _;

/// A freshly generated secret, to be handed to its owner once.
///
/// `Debug` does not show it; [`OpaqueSecret::expose`] does, on purpose.
pub struct OpaqueSecret(String);

impl OpaqueSecret {
    /// 256 random bits from the OS.
    ///
    /// # Panics
    /// When the OS has no entropy to give, which no server can recover from.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A secret issued earlier and recovered (a refresh token's successor
    /// answered again within the retry window).
    pub(crate) fn from_issued(text: String) -> Self {
        Self(text)
    }

    /// The secret's text, to send to its owner.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.as_bytes())
    }
}

impl fmt::Debug for OpaqueSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueSecret([redacted])")
    }
}

/// Whether `presented` hashes to `stored`, compared in constant time so the
/// time taken does not tell how many leading bytes matched.
#[must_use]
pub fn matches(presented: &str, stored: &TokenHash) -> bool {
    TokenHash::of(presented.as_bytes()).0.ct_eq(&stored.0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_base64url_and_distinct() {
        let a = OpaqueSecret::generate();
        let b = OpaqueSecret::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).expect("base64url").len(), 32);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let a = OpaqueSecret::generate();
        let b = OpaqueSecret::generate();
        assert!(matches(a.expose(), &a.hash()));
        assert!(!matches(b.expose(), &a.hash()));
        assert!(!matches("", &a.hash()));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let a = OpaqueSecret::generate();
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.expose()));
    }
}
