//! The JOSE header and the base64url JSON parts of a compact JWS.

use jsonwebtoken::Algorithm;

use crate::VerifyError;

/// The JOSE header fields the verifier reads.
#[derive(serde::Deserialize)]
pub(crate) struct Header {
    pub(crate) typ: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// Present at all: refused.
    #[serde(default, deserialize_with = "present")]
    pub(crate) crit: Option<serde::de::IgnoredAny>,
}

/// `Some` whenever the member is present, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde::de::IgnoredAny>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// A base64url (unpadded) JSON part of the token.
pub(crate) fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, VerifyError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::InvalidToken("malformed"))?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::InvalidToken("malformed"))
}
