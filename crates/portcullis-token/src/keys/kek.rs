//! The key-encryption key (KEK): signing keys' private parts encrypted at
//! rest, so that a copy of the database (a backup, a snapshot, a file
//! readable by the wrong account) does not hand out the power to sign
//! tokens.
//!
//! Stored form: [`SEALED_V1`], a 12-byte random nonce, then the PKCS#8
//! key encrypted with AES-256-GCM (ciphertext and 16-byte tag), with the
//! key id as associated data: a blob copied onto another key's row does
//! not decrypt. A plaintext PKCS#8 key starts with `0x30` (a DER
//! SEQUENCE), never with the prefix, so both forms can sit side by side
//! while `portcullis keys encrypt` runs.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use portcullis_store::{NewSigningKey, PrivateKeyChange, SigningKey};

use super::KeyError;

/// The version prefix of an encrypted private key.
pub const SEALED_V1: &[u8] = b"portcullis-kek-v1:";

const NONCE_LEN: usize = 12;

/// The message naming the setting when an encrypted key meets no KEK.
pub(super) const NO_KEK: &str = "the signing keys are encrypted at rest and no key-encryption key is configured: \
                      set `key_encryption_key_file` (PORTCULLIS_KEY_ENCRYPTION_KEY_FILE)";
const WRONG_KEK: &str = "a signing key does not decrypt with the key-encryption key of \
                         `key_encryption_key_file`: a different key, or the stored key was altered";

/// A key-encryption key: 32 random bytes. Never printed.
#[derive(Clone)]
pub struct Kek {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

/// A key-encryption key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// The file cannot be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// Not 32 bytes, raw or base64.
    #[error("must hold 32 random bytes, raw or base64 (e.g. from `openssl rand -base64 32`)")]
    Format,
}

impl Kek {
    /// The KEK in `bytes`: exactly 32 raw bytes, or their base64 (standard
    /// or URL-safe, padded or not) with surrounding white space.
    ///
    /// # Errors
    /// [`KekError::Format`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KekError> {
        if bytes.len() == 32 {
            return Self::raw(bytes);
        }
        let text = bytes.trim_ascii();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let decoded = engines
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or(KekError::Format)?;
        Self::raw(&decoded)
    }

    /// The KEK in the file at `path` (see [`Kek::from_bytes`]).
    ///
    /// # Errors
    /// When the file cannot be read or holds no KEK.
    pub fn from_file(path: &Path) -> Result<Self, KekError> {
        let bytes = std::fs::read(path).map_err(|e| KekError::Read(path.display().to_string(), e))?;
        Self::from_bytes(&bytes)
    }

    fn raw(key: &[u8]) -> Result<Self, KekError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| KekError::Format)?;
        Ok(Self { cipher })
    }

    /// Encrypts the private key `plain` of key `kid` into its stored form.
    ///
    /// # Errors
    /// When the system's random source fails.
    pub fn seal(&self, kid: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| KeyError("random source"))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError("encrypt"))?;
        Ok([SEALED_V1, &nonce, &sealed].concat())
    }

    /// Decrypts the stored form `blob` of key `kid`.
    ///
    /// # Errors
    /// When `blob` is not an encrypted key, or does not decrypt with this
    /// KEK for this key id.
    pub fn open(&self, kid: &str, blob: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rest = blob.strip_prefix(SEALED_V1).ok_or(KeyError("not an encrypted key"))?;
        if rest.len() < NONCE_LEN {
            return Err(KeyError(WRONG_KEK));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError(WRONG_KEK))
    }
}

/// Whether a stored private key is encrypted under a KEK.
#[must_use]
pub fn is_sealed(blob: &[u8]) -> bool {
    blob.starts_with(SEALED_V1)
}

/// The PKCS#8 of a stored key: decrypted when it is encrypted.
pub(super) fn plaintext<'a>(key: &'a SigningKey, kek: Option<&Kek>) -> Result<Cow<'a, [u8]>, KeyError> {
    if !is_sealed(&key.private_key) {
        return Ok(Cow::Borrowed(&key.private_key));
    }
    let kek = kek.ok_or(KeyError(NO_KEK))?;
    kek.open(&key.kid, &key.private_key).map(Cow::Owned)
}

/// A new key as it is stored: encrypted when a KEK is configured.
pub(crate) fn seal_new(mut new: NewSigningKey, kek: Option<&Kek>) -> Result<NewSigningKey, KeyError> {
    if let Some(kek) = kek {
        new.private_key = kek.seal(&new.kid, &new.private_key)?;
    }
    Ok(new)
}

/// The changes that leave every key in `keys` encrypted under `new`: a
/// plaintext key is encrypted, a key encrypted under `old` re-encrypted,
/// and a key that `new` opens already is left alone (so an interrupted
/// rewrap can be run again). With `old` = `new` this encrypts the
/// plaintext keys (`portcullis keys encrypt`).
///
/// # Errors
/// When an encrypted key opens under neither KEK: nothing should then be
/// written.
pub fn rewrap(keys: &[SigningKey], old: Option<&Kek>, new: &Kek) -> Result<Vec<PrivateKeyChange>, KeyError> {
    let mut changes = Vec::new();
    for key in keys {
        if is_sealed(&key.private_key) && new.open(&key.kid, &key.private_key).is_ok() {
            continue;
        }
        let plain = plaintext(key, old)?;
        // The key must still parse once decrypted: never wrap garbage.
        super::Signer::from_der(key, &plain)?;
        changes.push(PrivateKeyChange {
            kid: key.kid.clone(),
            old: key.private_key.clone(),
            new: new.seal(&key.kid, &plain)?,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kek_reads_raw_or_base64_and_nothing_else() {
        let raw = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(Kek::from_bytes(&raw).is_ok());
        assert!(Kek::from_bytes(format!("{b64}\n").as_bytes()).is_ok());
        assert!(Kek::from_bytes(b64.trim_end_matches('=').as_bytes()).is_ok());
        for bad in [
            &b"short"[..],
            &[7u8; 31],
            &[7u8; 33],
            b"not base64 at all, not at all!!",
        ] {
            assert!(matches!(Kek::from_bytes(bad), Err(KekError::Format)));
        }
        assert_eq!(format!("{:?}", Kek::from_bytes(&raw).expect("kek")), "Kek([redacted])");
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_kek_and_its_kid() {
        let kek = Kek::from_bytes(&[1u8; 32]).expect("kek");
        let other = Kek::from_bytes(&[2u8; 32]).expect("kek");
        let blob = kek.seal("kid-a", b"\x30secret pkcs8").expect("seal");
        assert!(blob.starts_with(SEALED_V1));
        assert!(!blob.windows(6).any(|w| w == b"secret"), "no plaintext in the blob");
        assert_eq!(kek.open("kid-a", &blob).expect("open"), b"\x30secret pkcs8");
        assert!(kek.open("kid-b", &blob).is_err(), "the kid is associated data");
        assert!(other.open("kid-a", &blob).is_err());
        let mut flipped = blob.clone();
        *flipped.last_mut().expect("byte") ^= 1;
        assert!(kek.open("kid-a", &flipped).is_err());
        assert_ne!(
            kek.seal("kid-a", b"x").expect("seal"),
            kek.seal("kid-a", b"x").expect("seal")
        );
    }
}
