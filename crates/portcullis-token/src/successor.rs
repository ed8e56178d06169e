//! Sealing a refresh token's successor for the retry window.
//!
//! When a refresh rotates token A into token B, B is stored on A's row
//! encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from A
//! itself. A client that lost the answer and retries with A within the
//! retry window gets B again; the database alone, which holds only SHA-256
//! of A, cannot reveal B.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

const SALT: &[u8] = b"portcullis refresh successor v1";

fn key(old_token: &str) -> Option<LessSafeKey> {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(old_token.as_bytes());
    let info: &[&[u8]] = &[b"aes-256-gcm key"];
    let okm = prk.expand(info, &AES_256_GCM).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Encrypts `successor` under a key derived from `old_token`:
/// `nonce || ciphertext || tag`.
pub(crate) fn seal(old_token: &str, successor: &str) -> Option<Vec<u8>> {
    let key = key(old_token)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).ok()?;
    let mut data = successor.as_bytes().to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Some(out)
}

/// Decrypts what [`seal`] produced, given the same `old_token`.
pub(crate) fn open(old_token: &str, sealed: &[u8]) -> Option<String> {
    let key = key(old_token)?;
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, data) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut data = data.to_vec();
    let plain = key.open_in_place(nonce, Aad::empty(), &mut data).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_old_token_opens_its_successor() {
        let sealed = seal("old-token", "new-token").expect("seal");
        assert!(
            !sealed.windows(9).any(|w| w == b"new-token"),
            "ciphertext, not plaintext"
        );
        assert_eq!(open("old-token", &sealed).as_deref(), Some("new-token"));
        assert_eq!(open("other-token", &sealed), None);
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(open("old-token", &tampered), None);
        assert_eq!(open("old-token", &sealed[..5]), None);
    }
}
