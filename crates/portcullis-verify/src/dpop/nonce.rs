//! Server-issued DPoP nonces (RFC 9449 §8) without shared state.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Server-issued nonces (RFC 9449 §8) that every instance holding the same
/// secret issues and checks alike, with no shared state: a nonce is a time
/// step and a MAC of it. One issued in step `n` is accepted in steps `n`
/// and `n + 1`, so it lives between one and two steps.
pub struct NonceKey {
    key: hmac::Key,
    step: i64,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// What the MAC of a nonce covers besides its step.
const NONCE_LABEL: &[u8] = b"portcullis dpop nonce v1";

impl NonceKey {
    /// Nonces from `secret` (at least 32 random bytes, the same on every
    /// instance), changing every `step` (at least a second).
    #[must_use]
    pub fn new(secret: &[u8], step: Duration) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            step: i64::try_from(step.as_secs().max(1)).unwrap_or(i64::MAX),
        }
    }

    /// The nonce of the step `now` (Unix seconds) is in.
    #[must_use]
    pub fn issue(&self, now: i64) -> String {
        let index = now.div_euclid(self.step).to_be_bytes();
        let tag = self.tag(&index);
        let mut raw = Vec::with_capacity(8 + tag.as_ref().len());
        raw.extend_from_slice(&index);
        raw.extend_from_slice(tag.as_ref());
        B64.encode(raw)
    }

    /// Whether `nonce` was issued in the step of `now` or the one before.
    #[must_use]
    pub fn is_current(&self, nonce: &str, now: i64) -> bool {
        if nonce.len() > 64 {
            return false;
        }
        let Ok(raw) = B64.decode(nonce) else {
            return false;
        };
        let Some((index, tag)) = raw.split_first_chunk::<8>() else {
            return false;
        };
        let step = i64::from_be_bytes(*index);
        let current = now.div_euclid(self.step);
        if step != current && step != current.saturating_sub(1) {
            return false;
        }
        // `verify` compares in constant time.
        let mut message = Vec::with_capacity(NONCE_LABEL.len() + 8);
        message.extend_from_slice(NONCE_LABEL);
        message.extend_from_slice(index);
        hmac::verify(&self.key, &message, tag).is_ok()
    }

    fn tag(&self, index: &[u8; 8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(NONCE_LABEL);
        ctx.update(index);
        ctx.sign()
    }
}
