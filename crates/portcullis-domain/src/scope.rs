//! Scope sets (RFC 6749 §3.3), on oxide-auth's `Scope`.

use std::fmt;

use oxide_auth::primitives::scope::Scope;

/// A set of scope tokens. Parsing checks the RFC 6749 §3.3 character set;
/// the text form is the tokens sorted and joined by single spaces, so the
/// same set always reads the same (in tokens, responses and the store).
#[derive(Clone, PartialEq, Eq)]
pub struct Scopes(Scope);

/// The scope text is not RFC 6749 §3.3 syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope")]
pub struct MalformedScope;

impl Scopes {
    /// Parses space-delimited scope tokens.
    ///
    /// # Errors
    /// [`MalformedScope`] on a character outside `%x21 / %x23-5B / %x5D-7E`
    /// or a token separator other than a single space.
    pub fn parse(text: &str) -> Result<Self, MalformedScope> {
        // oxide-auth accepts runs of spaces; RFC 6749 §3.3 says one.
        if text.starts_with(' ') || text.ends_with(' ') || text.contains("  ") {
            return Err(MalformedScope);
        }
        text.parse::<Scope>().map(Self).map_err(|_| MalformedScope)
    }

    /// Parses a scope that came from the store or configuration, where it
    /// was validated on the way in; malformed text counts as empty.
    #[must_use]
    pub fn trusted(text: &str) -> Self {
        Self::parse(text.trim()).unwrap_or_else(|_| Self::empty())
    }

    /// The empty set.
    #[must_use]
    pub fn empty() -> Self {
        Self::from_tokens(std::iter::empty())
    }

    /// Whether every token of `self` is in `other`.
    #[must_use]
    pub fn is_subset_of(&self, other: &Self) -> bool {
        self.0 <= other.0
    }

    /// The tokens in both sets.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        Self::from_tokens(other.0.iter().filter(|t| self.contains(t)))
    }

    /// Builds a set from tokens that are already valid (they come from
    /// another `Scopes`).
    fn from_tokens<'a>(tokens: impl Iterator<Item = &'a str>) -> Self {
        let text = tokens.collect::<Vec<_>>().join(" ");
        Self(
            text.parse::<Scope>()
                .unwrap_or_else(|_| unreachable!("tokens of a parsed scope are valid")),
        )
    }

    /// Whether the set holds `token`.
    #[must_use]
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.iter().next().is_none()
    }

    /// The tokens, sorted.
    #[must_use]
    pub fn sorted(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.0.iter().collect();
        v.sort_unstable();
        v
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sorted().join(" "))
    }
}

impl serde::Serialize for Scopes {
    /// The RFC 6749 §3.3 text form: sorted, space-delimited.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

impl PartialEq<&str> for Scopes {
    /// Compares with a scope's text form (sorted, space-delimited).
    fn eq(&self, other: &&str) -> bool {
        Self::parse(other).is_ok_and(|o| o == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_print_sorted_and_compare_as_sets() {
        let a = Scopes::parse("write read api.read:all").expect("parse");
        assert_eq!(a.to_string(), "api.read:all read write");
        let b = Scopes::parse("read").expect("parse");
        assert!(b.is_subset_of(&a));
        assert!(!a.is_subset_of(&b));
        assert!(Scopes::empty().is_subset_of(&b));
        assert_eq!(
            a.intersection(&Scopes::parse("read other").expect("parse")).to_string(),
            "read"
        );
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in ["read\"", "a\\b", "read  write", " read", "read ", "caf\u{e9}", "a\tb"] {
            assert_eq!(Scopes::parse(bad), Err(MalformedScope), "{bad:?}");
        }
        assert!(Scopes::parse("").expect("empty").is_empty());
    }
}
