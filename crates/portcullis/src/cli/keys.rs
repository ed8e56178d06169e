//! `portcullis keys …`

use clap::{Args, Subcommand};

use super::JsonFlag;

/// `portcullis keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys.
    List(JsonFlag),
    /// Create a new signing key. It is published at once and signs after
    /// the publication delay; the old key stays published until tokens it
    /// signed have expired. Stored encrypted when a key-encryption key is
    /// configured.
    Rotate(KeysRotate),
    /// Encrypt every signing key stored in plain under the key-encryption
    /// key (`key_encryption_key_file`).
    Encrypt(JsonFlag),
    /// Re-encrypt every signing key under a new key-encryption key, then
    /// point `key_encryption_key_file` at it and restart the servers.
    Rewrap(KeysRewrap),
}

/// `portcullis keys rotate`
#[derive(Debug, Args)]
pub struct KeysRotate {
    /// Algorithm of the new key: ES256, EdDSA or RS256.
    #[arg(long, default_value = "ES256")]
    pub alg: portcullis_token::keys::Alg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis keys rewrap`
#[derive(Debug, Args)]
pub struct KeysRewrap {
    /// The new key-encryption key: a file of 32 random bytes, raw or
    /// base64.
    #[arg(long)]
    pub new_key_file: std::path::PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
