//! The access-token claims: the contract between Portcullis and resource
//! servers.

use serde::{Deserialize, Serialize};

/// The claims of a Portcullis access token (RFC 9068 §2.2).
///
/// Times are JSON numbers of seconds since the epoch: a token that carries
/// them as strings does not deserialize, so it cannot slip past the time
/// checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the authorization server's issuer URL.
    pub iss: String,
    /// Subject: the user's stable id.
    pub sub: String,
    /// Audience: the resource server(s) the token is for.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-delimited granted scope (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The refresh family (sign-in / device) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Confirmation of a sender-constrained token (RFC 9449 `cnf.jkt`);
    /// absent for bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// How the user signed in (RFC 8176 values): `["pwd"]` for a password,
    /// `["pwd", "otp", "mfa"]` with a one-time code, `["pwd", "mfa"]` with
    /// a recovery code. Absent on tokens from before second factors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Authentication context class: `"1"` for a password alone, `"2"`
    /// with a second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl AccessTokenClaims {
    /// Whether the token grants `scope` (an exact scope-token match).
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// Whether the user signed in with a second factor (`amr` holds
    /// `mfa`): what an API demands before a sensitive call.
    #[must_use]
    pub fn is_multi_factor(&self) -> bool {
        self.has_amr("mfa")
    }

    /// Whether `amr` holds `method` (e.g. `otp`).
    #[must_use]
    pub fn has_amr(&self, method: &str) -> bool {
        self.amr.as_ref().is_some_and(|all| all.iter().any(|m| m == method))
    }

    /// The granted scope tokens.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names this audience.
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// Proof-of-possession confirmation (RFC 7800, RFC 9449 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// SHA-256 thumbprint of the client's DPoP key (RFC 7638).
    pub jkt: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = r#"{"iss":"https://auth.example","sub":"u1","aud":"api","client_id":"app",
        "scope":"read write","iat":1800000000,"nbf":1800000000,"exp":1800000900,"jti":"j1","sid":"f1"}"#;

    #[test]
    fn claims_read_the_rfc_9068_shape() {
        let c: AccessTokenClaims = serde_json::from_str(TOKEN).expect("claims");
        assert_eq!(c.sub, "u1");
        assert!(c.aud.contains("api"));
        assert!(!c.aud.contains("other"));
        assert!(c.has_scope("read") && c.has_scope("write"));
        assert!(!c.has_scope("rea") && !c.has_scope(""));
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read", "write"]);
        assert_eq!(c.sid.as_deref(), Some("f1"));
        assert_eq!(c.cnf, None);
    }

    #[test]
    fn an_audience_list_is_accepted() {
        let json = TOKEN.replace(r#""aud":"api""#, r#""aud":["other","api"]"#);
        let c: AccessTokenClaims = serde_json::from_str(&json).expect("claims");
        assert!(c.aud.contains("api") && c.aud.contains("other"));
    }

    #[test]
    fn times_given_as_strings_are_rejected() {
        for field in ["exp", "iat", "nbf"] {
            let json = TOKEN.replace(&format!(r#""{field}":1800000"#), &format!(r#""{field}":"1800000"#));
            assert_ne!(json, TOKEN);
            assert!(
                serde_json::from_str::<AccessTokenClaims>(&json).is_err(),
                "{field} as a string"
            );
        }
    }

    #[test]
    fn required_claims_must_be_present() {
        for field in ["iss", "sub", "aud", "client_id", "iat", "exp", "jti"] {
            let mut v: serde_json::Value = serde_json::from_str(TOKEN).expect("json");
            v.as_object_mut().expect("object").remove(field);
            assert!(
                serde_json::from_value::<AccessTokenClaims>(v).is_err(),
                "{field} missing"
            );
        }
    }
}
