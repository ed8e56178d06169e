//! Email addresses of users: where password-reset and verification codes
//! are sent.
//!
//! An address is kept as given and compared by its *key*: the address in
//! lower case. RFC 5321 lets a mail server treat the local part as case
//! sensitive, but no mainstream provider does, and two accounts that differ
//! only in the case of their address would receive each other's reset
//! mail; Keycloak compares addresses the same way. The syntax check is the
//! `email_address` crate's (RFC 5322 addr-spec), narrowed to what a mail
//! can be sent to: at most 254 bytes (RFC 5321 §4.5.3.1.3), no white space
//! or control characters, a domain part that is not an IP literal.

use std::fmt;

/// A user's email address: the form given and its comparison key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    given: String,
    key: String,
}

/// Why a text is not an acceptable email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    /// Nothing was given.
    #[error("the email address is empty")]
    Empty,
    /// Longer than [`Email::MAX_LEN`] bytes.
    #[error("the email address is longer than 254 bytes")]
    TooLong,
    /// Not an address mail can be sent to.
    #[error("the email address is not of the form name@example.com")]
    Malformed,
}

impl Email {
    /// Longest address, in bytes (RFC 5321 §4.5.3.1.3 path limit less the
    /// angle brackets).
    pub const MAX_LEN: usize = 254;

    /// Parses an address as given. Nothing is trimmed.
    ///
    /// # Errors
    /// [`InvalidEmail`] when it is empty, too long or not an address.
    pub fn parse(text: &str) -> Result<Self, InvalidEmail> {
        if text.is_empty() {
            return Err(InvalidEmail::Empty);
        }
        if text.len() > Self::MAX_LEN {
            return Err(InvalidEmail::TooLong);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail::Malformed);
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            text,
            email_address::Options::default()
                .with_required_tld()
                .without_domain_literal()
                .without_display_text(),
        )
        .map_err(|_| InvalidEmail::Malformed)?;
        if parsed.domain().is_empty() || !parsed.domain().contains('.') {
            return Err(InvalidEmail::Malformed);
        }
        Ok(Self {
            given: text.to_owned(),
            key: text.to_lowercase(),
        })
    }

    /// The address as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The comparison key (unique in the store).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An address is personal data: logs get its domain only.
        let domain = self.given.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(…@{domain})")
    }
}

impl serde::Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_by_their_lower_case_key() {
        let a = Email::parse("Alice@Example.COM").expect("valid");
        assert_eq!(a.as_str(), "Alice@Example.COM");
        assert_eq!(a.key(), "alice@example.com");
        assert_eq!(Email::parse("alice@example.com").expect("valid").key(), a.key());
    }

    #[test]
    fn what_mail_cannot_reach_is_refused() {
        assert_eq!(Email::parse(""), Err(InvalidEmail::Empty));
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice @example.com",
            " alice@example.com",
            "alice@example.com\n",
            "alice@[127.0.0.1]",
            "Alice <alice@example.com>",
        ] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail::Malformed), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(InvalidEmail::TooLong));
    }

    #[test]
    fn debug_shows_the_domain_only() {
        let a = Email::parse("alice@example.com").expect("valid");
        assert_eq!(format!("{a:?}"), "Email(…@example.com)");
    }
}
