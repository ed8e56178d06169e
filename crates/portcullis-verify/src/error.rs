//! Why a request was refused, and its RFC 6750 §3 answer.

/// A refused request. [`VerifyError::status`] and
/// [`VerifyError::www_authenticate`] give the RFC 6750 §3 answer; with the
/// `axum` feature it is also an `IntoResponse`.
///
/// The `&'static str` in some variants says why, for logs; it is not sent
/// to the client, which learns only the error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No access token in the request: 401 with a bare challenge.
    #[error("no access token")]
    Missing,
    /// The request carries a token the wrong way (query string, two
    /// `Authorization` headers, bad syntax): 400 `invalid_request`.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The token is malformed, forged, expired, for someone else or
    /// revoked: 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The token lacks a scope the resource requires: 403
    /// `insufficient_scope`.
    #[error("insufficient scope: {required}")]
    InsufficientScope {
        /// The scopes required, space-delimited.
        required: String,
    },
    /// The signing keys could not be fetched and none are cached: 503.
    #[error("signing keys unavailable")]
    KeysUnavailable,
    /// A DPoP-bound token came with a proof that is missing, malformed,
    /// forged, stale, replayed, for another request or by another key:
    /// 401 `invalid_dpop_proof` (RFC 9449 §7.1).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The proof lacks a current nonce of this server: 401
    /// `use_dpop_nonce`, with a fresh one in `DPoP-Nonce` (RFC 9449 §9).
    #[error("a current DPoP nonce is required")]
    UseDpopNonce,
    /// The user did not sign in with a second factor and the resource
    /// wants one: 401 `insufficient_user_authentication` with
    /// `acr_values="2"` (RFC 9470 §3), so the app signs the user in again
    /// with their code.
    #[error("a sign-in with a second factor is required")]
    InsufficientUserAuthentication,
}

impl From<crate::dpop::DpopError> for VerifyError {
    fn from(e: crate::dpop::DpopError) -> Self {
        match e {
            crate::dpop::DpopError::InvalidProof(why) => Self::InvalidDpopProof(why),
            crate::dpop::DpopError::UseNonce => Self::UseDpopNonce,
        }
    }
}

impl VerifyError {
    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing
            | Self::InvalidToken(_)
            | Self::InvalidDpopProof(_)
            | Self::UseDpopNonce
            | Self::InsufficientUserAuthentication => 401,
            Self::InvalidRequest(_) => 400,
            Self::InsufficientScope { .. } => 403,
            Self::KeysUnavailable => 503,
        }
    }

    /// The RFC 6750 error code, if the answer carries one.
    #[must_use]
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::KeysUnavailable => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
            Self::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3): `Bearer realm="…"`, with
    /// `error` (and `scope`) when there is one.
    #[must_use]
    pub fn www_authenticate(&self, realm: &str) -> String {
        let realm = quote(realm);
        match (self.code(), self) {
            (None, _) => format!("Bearer realm=\"{realm}\""),
            (Some(code), Self::InsufficientScope { required }) => {
                format!(
                    "Bearer realm=\"{realm}\", error=\"{code}\", scope=\"{}\"",
                    quote(required)
                )
            }
            (Some(code), Self::InsufficientUserAuthentication) => {
                format!("Bearer realm=\"{realm}\", error=\"{code}\", acr_values=\"2\"")
            }
            (Some(code), _) => format!("Bearer realm=\"{realm}\", error=\"{code}\""),
        }
    }

    /// The `WWW-Authenticate` value for the DPoP scheme (RFC 9449 §7.1):
    /// `DPoP realm="…", algs="…"`, with `error` (and `scope`) when there is
    /// one. `algs` are the proof algorithms accepted.
    #[must_use]
    pub fn www_authenticate_dpop(&self, realm: &str, algs: &[&str]) -> String {
        let mut value = format!("DPoP realm=\"{}\", algs=\"{}\"", quote(realm), quote(&algs.join(" ")));
        if let Some(code) = self.code() {
            value.push_str(&format!(", error=\"{code}\""));
        }
        if let Self::InsufficientScope { required } = self {
            value.push_str(&format!(", scope=\"{}\"", quote(required)));
        }
        if let Self::InsufficientUserAuthentication = self {
            value.push_str(", acr_values=\"2\"");
        }
        value
    }

    /// Whether the error is about the DPoP proof rather than the token.
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        matches!(self, Self::InvalidDpopProof(_) | Self::UseDpopNonce)
    }
}

/// Keeps a header parameter inside its quotes (RFC 6750 §3: quoted-string
/// without `"` or `\`).
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_follow_rfc_6750() {
        assert_eq!(VerifyError::Missing.status(), 401);
        assert_eq!(VerifyError::Missing.www_authenticate("api"), r#"Bearer realm="api""#);
        let bad = VerifyError::InvalidToken("expired");
        assert_eq!(
            (bad.status(), bad.www_authenticate("api").as_str()),
            (401, r#"Bearer realm="api", error="invalid_token""#)
        );
        let req = VerifyError::InvalidRequest("query");
        assert_eq!(
            (req.status(), req.www_authenticate("api").as_str()),
            (400, r#"Bearer realm="api", error="invalid_request""#)
        );
        let scope = VerifyError::InsufficientScope {
            required: "read write".into(),
        };
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.www_authenticate("a\"pi"),
            r#"Bearer realm="api", error="insufficient_scope", scope="read write""#
        );
        let step_up = VerifyError::InsufficientUserAuthentication;
        assert_eq!(
            (step_up.status(), step_up.www_authenticate("api").as_str()),
            (
                401,
                r#"Bearer realm="api", error="insufficient_user_authentication", acr_values="2""#
            )
        );
    }
}
