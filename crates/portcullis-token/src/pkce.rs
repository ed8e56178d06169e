//! PKCE (RFC 7636) with the `S256` method only: `plain` would hand the
//! verifier to anyone who sees the challenge.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// Whether `text` is a code verifier (§4.1): 43 to 128 characters of
/// `[A-Za-z0-9-._~]`.
#[must_use]
pub fn is_verifier(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `text` is an S256 code challenge: base64url without padding of
/// 32 bytes (43 characters).
#[must_use]
pub fn is_s256_challenge(text: &str) -> bool {
    text.len() == 43 && URL_SAFE_NO_PAD.decode(text).is_ok_and(|b| b.len() == 32)
}

/// The S256 challenge of `verifier`: `BASE64URL(SHA256(verifier))` (§4.2).
#[must_use]
pub fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether `verifier` matches `challenge` (§4.6), compared in constant
/// time.
#[must_use]
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    is_verifier(verifier) && s256(verifier).as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(is_s256_challenge(challenge));
        assert!(verifies(verifier, challenge));
        assert!(!verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl", challenge));
        assert!(!verifies(challenge, challenge), "the challenge is not its own verifier");
    }

    #[test]
    fn verifiers_and_challenges_have_their_shape() {
        assert!(!is_verifier(&"a".repeat(42)));
        assert!(is_verifier(&"a".repeat(128)));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!is_s256_challenge("plain-challenge"));
        assert!(!is_s256_challenge(&"*".repeat(43)));
    }
}
