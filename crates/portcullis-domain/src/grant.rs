//! Grant types (RFC 6749 §4, §6) and the set a client may use.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A grant type this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636),
    /// for codes from the Authorization Challenge Endpoint
    /// (draft-ietf-oauth-first-party-apps).
    AuthorizationCode,
    /// The resource owner password credentials grant (RFC 6749 §4.3).
    Password,
    /// Refreshing an access token (RFC 6749 §6).
    RefreshToken,
}

/// The text names no grant type this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported grant type")]
pub struct UnknownGrantType;

impl GrantType {
    /// Every grant type, in their text order.
    pub const ALL: [Self; 3] = [Self::AuthorizationCode, Self::Password, Self::RefreshToken];

    /// The grant types of a client created without a list: the password
    /// and refresh grants (`authorization_code` is asked for by name).
    pub const DEFAULT: [Self; 2] = [Self::Password, Self::RefreshToken];

    /// The `grant_type` parameter value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl FromStr for GrantType {
    type Err = UnknownGrantType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.as_str() == s).ok_or(UnknownGrantType)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for GrantType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The grant types a client may use: a set, shown sorted and
/// space-delimited (the stored form) or as a JSON array (RFC 7591
/// `grant_types`).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct GrantTypes(BTreeSet<GrantType>);

impl GrantTypes {
    /// Parses a space-delimited list; repeats collapse.
    ///
    /// # Errors
    /// [`UnknownGrantType`] on a name this server does not implement.
    pub fn parse(text: &str) -> Result<Self, UnknownGrantType> {
        text.split(' ')
            .filter(|t| !t.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether the set allows `grant`.
    #[must_use]
    pub fn allows(&self, grant: GrantType) -> bool {
        self.0.contains(&grant)
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The grant types in order.
    pub fn iter(&self) -> impl Iterator<Item = GrantType> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<GrantType> for GrantTypes {
    fn from_iter<I: IntoIterator<Item = GrantType>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for GrantTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(GrantType::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for GrantTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantTypes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_parse_as_a_sorted_set() {
        let g = GrantTypes::parse("refresh_token password refresh_token").expect("valid");
        assert_eq!(g.to_string(), "password refresh_token");
        assert!(g.allows(GrantType::Password));
        assert_eq!(
            serde_json::to_string(&g).expect("json"),
            r#"["password","refresh_token"]"#
        );
        assert!(GrantTypes::parse("").expect("empty").is_empty());
        assert_eq!(GrantTypes::parse("password implicit"), Err(UnknownGrantType));
    }
}
