//! `portcullis keys …` and `portcullis audit`.

use std::path::Path;

use portcullis_store::SqlStore;
use portcullis_token::keys::{Alg, Kek, kek};
use serde::Serialize;

use super::{failed, lines, render};
use crate::admin_api::audit::AuditEvent;
use crate::admin_api::keys::SigningKey;
use crate::ops::{self, Actor};

/// `portcullis keys list`.
///
/// # Errors
/// A database failure.
pub async fn keys_list(store: &SqlStore, json: bool) -> anyhow::Result<String> {
    let keys = ops::keys::list(store).await.map_err(failed("cannot list keys"))?;
    let doc: Vec<SigningKey> = keys.iter().map(SigningKey::from).collect();
    let text = lines(&keys, |k| {
        let stored = if kek::is_sealed(&k.private_key) {
            "encrypted"
        } else {
            "plaintext"
        };
        format!(
            "{}\t{}\t{}\tcreated {}\t{stored}",
            k.kid, k.alg, k.state, k.created_at.0
        )
    });
    render(&doc, json, text)
}

/// `portcullis keys rotate`: the running servers pick the key up within
/// their key reload.
///
/// # Errors
/// Key generation or a database failure.
pub async fn keys_rotate(store: &SqlStore, alg: Alg, kek: Option<&Kek>, json: bool) -> anyhow::Result<String> {
    let key = ops::keys::rotate(store, &Actor::Cli, alg, kek, None)
        .await
        .map_err(failed("cannot store the key"))?;
    let text = format!(
        "new {} key {}: published now, signing once the publication delay has passed",
        key.alg, key.kid
    );
    render(&SigningKey::from(&key), json, text)
}

/// The keys `keys encrypt` or `keys rewrap` changed.
#[derive(Serialize)]
struct Wrapped {
    /// Their ids.
    wrapped: Vec<String>,
}

/// `portcullis keys encrypt`: the plaintext keys under the configured KEK.
///
/// # Errors
/// No KEK configured, a key encrypted under another KEK, or a database
/// failure.
pub async fn keys_encrypt(store: &SqlStore, kek: Option<&Kek>, json: bool) -> anyhow::Result<String> {
    let Some(kek) = kek else {
        anyhow::bail!(
            "keys encrypt needs a key-encryption key: set `key_encryption_key_file` (PORTCULLIS_KEY_ENCRYPTION_KEY_FILE)"
        );
    };
    keys_wrap(store, Some(kek), kek, json).await
}

/// `portcullis keys rewrap --new-key-file FILE`: every key under the KEK in
/// `FILE`, from the configured one (if any).
///
/// # Errors
/// An unusable file, a key that opens under neither KEK, or a database
/// failure.
pub async fn keys_rewrap(store: &SqlStore, old: Option<&Kek>, file: &Path, json: bool) -> anyhow::Result<String> {
    let new = Kek::from_file(file).map_err(|e| anyhow::anyhow!("--new-key-file: {e}"))?;
    keys_wrap(store, old, &new, json).await
}

/// Leaves every key encrypted under `new`, from `old`.
async fn keys_wrap(store: &SqlStore, old: Option<&Kek>, new: &Kek, json: bool) -> anyhow::Result<String> {
    let wrapped = ops::keys::wrap(store, &Actor::Cli, old, new)
        .await
        .map_err(failed("cannot store the encrypted keys"))?;
    let text = format!(
        "{} signing key(s) now encrypted under the key-encryption key{}{}",
        wrapped.len(),
        if wrapped.is_empty() { "" } else { ": " },
        wrapped.join(" ")
    );
    render(&Wrapped { wrapped }, json, text)
}

/// `portcullis audit`.
///
/// # Errors
/// A database failure.
pub async fn audit_list(store: &SqlStore, limit: u32, before: Option<i64>, json: bool) -> anyhow::Result<String> {
    let events = ops::audit::list(store, before, limit.clamp(1, 10_000))
        .await
        .map_err(failed("cannot read the audit log"))?;
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let text = lines(&events, |e| {
        format!(
            "{}\t{}\t{}\tactor={}\tclient={}\tsubject={}\tip={}",
            e.id,
            e.at.0,
            e.action,
            or_dash(&e.actor),
            or_dash(&e.client_id),
            or_dash(&e.subject),
            or_dash(&e.ip)
        )
    });
    let doc: Vec<AuditEvent> = events.into_iter().map(AuditEvent::from).collect();
    render(&doc, json, text)
}
