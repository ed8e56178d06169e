//! Client identifiers (RFC 6749 §2.2).

/// A `client_id` as registered: 1 to 64 characters of `A-Z a-z 0-9 - _ .`,
/// so it is safe in URLs, logs and cookie names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

/// The text is not an acceptable client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a client id is 1 to 64 characters of A-Z a-z 0-9 - _ .")]
pub struct InvalidClientId;

impl ClientId {
    /// Longest client id, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Parses a client id chosen by an admin.
    ///
    /// # Errors
    /// [`InvalidClientId`] on an empty or long id or another character.
    pub fn parse(raw: &str) -> Result<Self, InvalidClientId> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidClientId)
        }
    }
}

crate::text_value!(ClientId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_use_a_safe_alphabet() {
        assert!(ClientId::parse("portcullis-admin_1.x").is_ok());
        assert!(ClientId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "é", &"a".repeat(65)] {
            assert_eq!(ClientId::parse(bad), Err(InvalidClientId), "{bad:?}");
        }
    }
}
