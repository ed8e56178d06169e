//! The refresh token's form: `<selector>.<generation>.<secret>`.
//!
//! - The *selector* (18 bytes, base64url: the sign-in's time in
//!   milliseconds, 6 bytes, then 96 random bits) is the same in every
//!   token of a family and appears nowhere else: not in access tokens
//!   (whose `sid` is the family id), not in the database (which keeps its
//!   time and a hash, see [`selector_key`]). It finds the family.
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
//! Families started before selectors carried their time have a selector of
//! 128 random bits (22 characters), keyed by its SHA-256; they keep it, and
//! keep working, until they end.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_store::{TokenHash, TokenKey};

use crate::secret::OpaqueSecret;

/// Bytes of a selector: the sign-in's time (milliseconds since the Unix
/// epoch, 6 bytes big-endian) and 12 random bytes.
const SELECTOR_BYTES: usize = 18;
/// Characters of a base64url selector.
const SELECTOR_LEN: usize = 24;
/// Characters of a selector of 16 random bytes (families started before
/// selectors carried their time).
const RANDOM_SELECTOR_LEN: usize = 22;
/// Bytes of time at the start of a selector and of its key.
const TIME_BYTES: usize = 6;
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
            key: parts
                .and_then(|(selector, _)| selector_key(selector))
                .map(TokenKey::Selector),
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

/// What the store finds the family of the refresh token `text` by
/// ([`portcullis_store::RefreshStore::family_by_token`]); `None` for text
/// of no form a token has.
#[must_use]
pub fn family_key(text: &str) -> Option<TokenKey> {
    Presented::parse(text).key
}

/// Whether a presented token's hash is `stored`, compared in constant time.
pub(crate) fn same_hash(presented: &TokenHash, stored: Option<&TokenHash>) -> bool {
    use subtle::ConstantTimeEq as _;
    stored.is_some_and(|s| bool::from(presented.0.ct_eq(&s.0)))
}

/// The first token of a new family, with its selector's key.
pub(crate) fn first() -> (OpaqueSecret, TokenHash) {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut selector = [0u8; SELECTOR_BYTES];
    // 48 bits of milliseconds last until the year 10889.
    selector[..TIME_BYTES].copy_from_slice(&u64::try_from(millis).unwrap_or(u64::MAX).to_be_bytes()[2..]);
    selector[TIME_BYTES..].copy_from_slice(&random::<{ SELECTOR_BYTES - TIME_BYTES }>());
    issue(&URL_SAFE_NO_PAD.encode(selector), 1)
}

fn issue(selector: &str, generation: i64) -> (OpaqueSecret, TokenHash) {
    let secret = URL_SAFE_NO_PAD.encode(random::<32>());
    #[allow(clippy::expect_used, reason = "a selector made here is always of a known form")]
    let key = selector_key(selector).expect("a selector of a known form");
    (
        OpaqueSecret::from_issued(format!("{selector}.{generation}.{secret}")),
        key,
    )
}

/// What the store finds a family by, for a selector (of a form `split`
/// accepted).
///
/// A selector with its time is keyed by that time (6 bytes) and the first
/// 26 bytes of the SHA-256 of the whole selector: keys of new sign-ins go
/// to the right edge of the unique index, and the families the clean-up
/// deletes (expired together, so started at about the same time) sit
/// together at its left instead of on random pages, which made deleting
/// them several times slower (docs/benchmarks.md). The hash still covers
/// the whole selector, so a key reveals no more of it than its time, which
/// the family's `created_at` says anyway. A random selector of the earlier
/// form is keyed by its SHA-256.
fn selector_key(selector: &str) -> Option<TokenHash> {
    match selector.len() {
        RANDOM_SELECTOR_LEN => Some(TokenHash::of(selector.as_bytes())),
        SELECTOR_LEN => {
            let bytes = URL_SAFE_NO_PAD.decode(selector).ok()?;
            let hash = TokenHash::of(selector.as_bytes());
            let mut key = [0u8; 32];
            key[..TIME_BYTES].copy_from_slice(bytes.get(..TIME_BYTES)?);
            key[TIME_BYTES..].copy_from_slice(&hash.0[..32 - TIME_BYTES]);
            Some(TokenHash(key))
        }
        _ => None,
    }
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
    let selector_ok = base64url(selector, SELECTOR_LEN) || base64url(selector, RANDOM_SELECTOR_LEN);
    if parts.next().is_some() || !selector_ok || !base64url(secret, SECRET_LEN) || !digits {
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
    fn a_selector_carries_its_time_and_keys_of_later_sign_ins_sort_after() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let (token, key) = first();
        let selector = token.expose().split('.').next().expect("selector");
        assert_eq!(selector.len(), SELECTOR_LEN);
        let bytes = URL_SAFE_NO_PAD.decode(selector).expect("base64url");
        assert_eq!(bytes.len(), SELECTOR_BYTES);
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&bytes[..TIME_BYTES]);
        let millis = u128::from(u64::from_be_bytes(millis));
        assert!(millis >= before && millis < before + 60_000, "{millis} {before}");
        // The key: the time, then the whole selector's hash.
        assert_eq!(key.0[..TIME_BYTES], bytes[..TIME_BYTES]);
        assert_eq!(
            key.0[TIME_BYTES..],
            TokenHash::of(selector.as_bytes()).0[..32 - TIME_BYTES]
        );
        // A selector differing only in its random part has another key.
        let mut other = bytes.clone();
        other[TIME_BYTES] ^= 1;
        let other = selector_key(&URL_SAFE_NO_PAD.encode(&other)).expect("key");
        assert_eq!(other.0[..TIME_BYTES], key.0[..TIME_BYTES]);
        assert_ne!(other, key);

        std::thread::sleep(std::time::Duration::from_millis(3));
        let (_, later) = first();
        assert!(later.0 > key.0, "a later sign-in's key sorts after");
    }

    #[test]
    fn a_family_with_a_random_selector_keeps_it_and_its_key() {
        // A selector of 16 random bytes, as families started before
        // selectors carried their time have.
        let selector = URL_SAFE_NO_PAD.encode([7u8; 16]);
        let (token, key) = issue(&selector, 5);
        assert_eq!(key, TokenHash::of(selector.as_bytes()));
        let presented = Presented::parse(token.expose());
        assert_eq!(presented.key, Some(TokenKey::Selector(key)));
        assert_eq!(presented.generation, Some(5));
        let (next, same) = presented.successor();
        assert_eq!(same, key);
        assert!(next.expose().starts_with(&format!("{selector}.6.")));
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
            format!("{}.1.{secret}", &selector[..23]),
            format!("{}.1.{secret}", &selector[..21]),
            format!("{selector}.1.{secret}="),
            format!("{}.1.{secret}", "0190a3c2-7e4b-7d2f-9c1a-3b5e6f708192"),
            ".".to_owned(),
        ] {
            assert_eq!(Presented::parse(&bad).key, None, "{bad}");
        }
    }
}
