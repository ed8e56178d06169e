//! The refresh token's form: `<selector>.<generation>.<secret>`.
//!
//! - The *selector* (128 random bits, base64url) is the same in every
//!   token of a family and appears nowhere else: not in access tokens
//!   (whose `sid` is the family id), not in the database (which keeps its
//!   SHA-256 only). It finds the family.
//! - The *generation* counts the family's refreshes (1 at sign-in). It is
//!   informational (audit detail on reuse); nothing trusts it.
//! - The *secret* (256 random bits, base64url) makes each token unique.
//!
//! The family stores the SHA-256 of its current and previous tokens (the
//! whole text). A token that carries the family's selector but is neither
//! was issued to the family earlier: presenting it is reuse (RFC 9700
//! §4.14.2), however many refreshes ago, with no row kept per refresh. See
//! docs/security.md for what a database reader, an access-token holder and
//! a refresh-token thief can each do.
//!
//! Tokens issued before this form (43 base64url characters, no dots) are
//! looked up by their hash in the rows kept for them until they expire.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_store::{TokenHash, TokenKey};

use crate::secret::OpaqueSecret;

/// Characters of a base64url selector (16 bytes).
const SELECTOR_LEN: usize = 22;
/// Characters of a base64url secret (32 bytes).
const SECRET_LEN: usize = 43;
/// Digits of a generation at most (below `i64::MAX`).
const MAX_GENERATION_DIGITS: usize = 18;

/// A presented refresh token, parsed (nothing is checked against the
/// store yet).
#[derive(Debug)]
pub(crate) struct Presented {
    /// How the token finds its family; `None` for text that is neither
    /// form (answered like an unknown token, with no lookup).
    pub(crate) key: Option<TokenKey>,
    /// SHA-256 of the whole text, as the family stores its tokens.
    pub(crate) hash: TokenHash,
    /// The selector, for the token that replaces this one.
    selector: Option<String>,
    /// The generation the token says it is.
    pub(crate) generation: Option<i64>,
}

impl Presented {
    /// Parses `text`.
    pub(crate) fn parse(text: &str) -> Self {
        let hash = TokenHash::of(text.as_bytes());
        if !text.contains('.') {
            return Self {
                key: Some(TokenKey::Legacy(hash)),
                hash,
                selector: None,
                generation: None,
            };
        }
        let parts = split(text);
        Self {
            key: parts.map(|(selector, _)| TokenKey::Selector(selector_hash(selector))),
            hash,
            selector: parts.map(|(selector, _)| selector.to_owned()),
            generation: parts.map(|(_, generation)| generation),
        }
    }

    /// The token that replaces this one: the same selector (a new one for
    /// a token of the earlier form) and the next generation, with the
    /// selector's hash for the store.
    pub(crate) fn successor(&self) -> (OpaqueSecret, TokenHash) {
        match (&self.selector, self.generation) {
            (Some(selector), Some(generation)) => issue(selector, generation.saturating_add(1)),
            _ => first(),
        }
    }
}

/// The family that the refresh token `text` names, with the token parsed;
/// `None` for text that names none.
///
/// # Errors
/// The store's.
pub(crate) async fn family_of(
    store: &dyn portcullis_store::Store,
    text: &str,
) -> Result<Option<(Presented, portcullis_store::RefreshFamily)>, portcullis_store::StoreError> {
    let presented = Presented::parse(text);
    let Some(key) = &presented.key else { return Ok(None) };
    match store.family_by_token(key).await {
        Ok(family) => Ok(Some((presented, family))),
        Err(portcullis_store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a presented token's hash is `stored`, compared in constant time.
pub(crate) fn same_hash(presented: &TokenHash, stored: Option<&TokenHash>) -> bool {
    use subtle::ConstantTimeEq as _;
    stored.is_some_and(|s| bool::from(presented.0.ct_eq(&s.0)))
}

/// The first token of a new family, with its selector's hash.
pub(crate) fn first() -> (OpaqueSecret, TokenHash) {
    issue(&URL_SAFE_NO_PAD.encode(random::<16>()), 1)
}

fn issue(selector: &str, generation: i64) -> (OpaqueSecret, TokenHash) {
    let secret = URL_SAFE_NO_PAD.encode(random::<32>());
    (
        OpaqueSecret::from_issued(format!("{selector}.{generation}.{secret}")),
        selector_hash(selector),
    )
}

fn selector_hash(selector: &str) -> TokenHash {
    TokenHash::of(selector.as_bytes())
}

/// The selector and generation of a token of this form, if `text` is one.
fn split(text: &str) -> Option<(&str, i64)> {
    let mut parts = text.split('.');
    let (selector, generation, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let base64url =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    let digits = !generation.is_empty()
        && generation.len() <= MAX_GENERATION_DIGITS
        && generation.bytes().all(|c| c.is_ascii_digit());
    if parts.next().is_some() || !base64url(selector, SELECTOR_LEN) || !base64url(secret, SECRET_LEN) || !digits {
        return None;
    }
    Some((selector, generation.parse().ok()?))
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_keeps_its_selector_and_counts_generations() {
        let (first, selector) = first();
        let presented = Presented::parse(first.expose());
        assert_eq!(presented.key, Some(TokenKey::Selector(selector)));
        assert_eq!(presented.generation, Some(1));
        assert_eq!(presented.hash, first.hash());
        let (second, same) = presented.successor();
        assert_eq!(same, selector);
        let second = Presented::parse(second.expose());
        assert_eq!(second.key, Some(TokenKey::Selector(selector)));
        assert_eq!(second.generation, Some(2));
        assert_ne!(second.hash, presented.hash);
    }

    #[test]
    fn a_token_of_the_earlier_form_is_looked_up_whole_and_gets_a_new_selector() {
        let old = OpaqueSecret::generate();
        let presented = Presented::parse(old.expose());
        assert_eq!(presented.key, Some(TokenKey::Legacy(old.hash())));
        let (next, selector) = presented.successor();
        let next = Presented::parse(next.expose());
        assert_eq!(next.key, Some(TokenKey::Selector(selector)));
        assert_eq!(next.generation, Some(1));
    }

    #[test]
    fn malformed_tokens_have_no_key() {
        let (good, _) = first();
        let good = good.expose();
        let (selector, rest) = good.split_once('.').expect("selector");
        let (_, secret) = rest.split_once('.').expect("generation");
        for bad in [
            format!("{selector}.{secret}"),
            format!("{selector}.-1.{secret}"),
            format!("{selector}.1.{secret}.x"),
            format!("{selector}..{secret}"),
            format!("{selector}.1234567890123456789.{secret}"),
            format!("{selector}x.1.{secret}"),
            format!("{selector}.1.{secret}="),
            format!("{}.1.{secret}", "0190a3c2-7e4b-7d2f-9c1a-3b5e6f708192"),
            ".".to_owned(),
        ] {
            assert_eq!(Presented::parse(&bad).key, None, "{bad}");
        }
    }
}
