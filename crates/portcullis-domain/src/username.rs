//! Usernames.

/// A username as accounts are created with: 1 to [`Username::MAX_LEN`]
/// bytes, no control characters, no surrounding white space.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// The text is not an acceptable username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the username must be 1 to 256 bytes without control characters")]
pub struct InvalidUsername;

impl Username {
    /// Longest username, in bytes. Sign-in refuses longer ones before any
    /// lookup.
    pub const MAX_LEN: usize = 256;

    /// Parses a username typed by a person: surrounding white space is
    /// dropped.
    ///
    /// # Errors
    /// [`InvalidUsername`] when it is empty, too long or holds a control
    /// character.
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        let name = raw.trim();
        if name.is_empty() || name.len() > Self::MAX_LEN || name.chars().any(char::is_control) {
            return Err(InvalidUsername);
        }
        Ok(Self(name.to_owned()))
    }
}

crate::text_value!(Username);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_bounded() {
        assert_eq!(Username::parse("  alice ").expect("valid").as_str(), "alice");
        assert!(Username::parse(&"a".repeat(256)).is_ok());
        for bad in ["", "   ", "al\u{7}ice", "a\nb"] {
            assert_eq!(Username::parse(bad), Err(InvalidUsername), "{bad:?}");
        }
        assert_eq!(Username::parse(&"a".repeat(257)), Err(InvalidUsername));
    }
}
