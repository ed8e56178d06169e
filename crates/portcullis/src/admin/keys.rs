//! `portcullis keys …` and `portcullis audit`.

use std::path::Path;

use portcullis_store::{SqlStore, UnixTime};
use portcullis_token::keys::{Alg, Kek, kek};
use serde::Serialize;

use super::{failed, render, table, utc};
use crate::admin_api::audit::AuditEvent;
use crate::admin_api::keys::SigningKey;
use crate::ops::keys::Phase;
use crate::ops::{self, Actor};

/// The servers' key timing, from the configuration: seconds a new key is
/// published before it signs, and the access-token lifetime.
#[derive(Debug, Clone, Copy)]
pub struct KeyTimes {
    /// `key_publish_delay`.
    pub publish_delay: i64,
    /// `access_token_ttl`.
    pub access_token_ttl: i64,
}

/// `portcullis keys list`: each key's phase (`published`, `signing`,
/// `retiring`, `retired`) as the servers configured like this one see it.
///
/// # Errors
/// A database failure.
pub async fn keys_list(store: &SqlStore, times: KeyTimes, json: bool) -> anyhow::Result<String> {
    let keys = ops::keys::list(store).await.map_err(failed("cannot list keys"))?;
    let now = UnixTime::now();
    let phases = ops::keys::phases(&keys, now, times.publish_delay, times.access_token_ttl);
    let doc = SigningKey::all(&keys, now, times.publish_delay, times.access_token_ttl);
    let rows: Vec<_> = keys.iter().zip(phases).collect();
    let text = table(&["KID", "ALG", "PHASE", "CREATED", "STORED"], &rows, |(k, phase)| {
        let stored = if kek::is_sealed(&k.private_key) {
            "encrypted"
        } else {
            "plaintext"
        };
        let phase = match *phase {
            Phase::Published { signs_from } => format!("published, signs from {}", utc(signs_from)),
            Phase::Retiring { until } => format!("retiring until {}", utc(until)),
            Phase::Signing => "signing".to_owned(),
            Phase::Retired => match k.retired_at {
                Some(t) => format!("retired {}", utc(t)),
                None => "retired".to_owned(),
            },
        };
        vec![
            k.kid.clone(),
            k.alg.clone(),
            phase,
            utc(k.created_at),
            stored.to_owned(),
        ]
    });
    render(&doc, json, text)
}

/// `portcullis keys rotate`: the running servers pick the key up within
/// their key reload.
///
/// # Errors
/// Key generation or a database failure.
pub async fn keys_rotate(
    store: &SqlStore,
    alg: Alg,
    kek: Option<&Kek>,
    times: KeyTimes,
    json: bool,
) -> anyhow::Result<String> {
    let key = ops::keys::rotate(store, &Actor::Cli, alg, kek, None)
        .await
        .map_err(failed("cannot store the key"))?;
    let signs_from = key.created_at.plus(times.publish_delay);
    let text = format!(
        "new {} key {}: published now, signs from {}",
        key.alg,
        key.kid,
        utc(signs_from)
    );
    let phase = Phase::Published { signs_from };
    render(&SigningKey::new(&key, phase, times.publish_delay), json, text)
}

/// The keys `keys encrypt` or `keys rewrap` changed.
#[derive(Serialize)]
struct Wrapped {
    /// Their ids.
    wrapped: Vec<String>,
    /// How many authenticator (TOTP) secrets changed.
    totp_secrets: usize,
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
        "{} signing key(s) now encrypted under the key-encryption key{}{}\n{} authenticator secret(s) now encrypted under it",
        wrapped.keys.len(),
        if wrapped.keys.is_empty() { "" } else { ": " },
        wrapped.keys.join(" "),
        wrapped.totp_secrets,
    );
    let doc = Wrapped {
        wrapped: wrapped.keys,
        totp_secrets: wrapped.totp_secrets,
    };
    render(&doc, json, text)
}

/// `portcullis audit`.
///
/// # Errors
/// A database failure.
pub async fn audit_list(store: &SqlStore, limit: u32, before: Option<i64>, json: bool) -> anyhow::Result<String> {
    let events = ops::audit::list_named(store, before, limit.clamp(1, 10_000))
        .await
        .map_err(failed("cannot read the audit log"))?;
    // A name where there is one, else the id.
    let or_id = |name: &Option<String>, id: &Option<String>| {
        name.clone().or_else(|| id.clone()).unwrap_or_else(|| "-".to_owned())
    };
    let text = table(
        &["ID", "TIME (UTC)", "ACTION", "ACTOR", "CLIENT", "SUBJECT", "IP"],
        &events,
        |n| {
            let e = &n.event;
            let subject = match (n.subject_kind, &e.subject) {
                (Some(kind), Some(_)) => format!("{} {}", kind.name(), or_id(&n.subject_name, &e.subject)),
                _ => or_id(&n.subject_name, &e.subject),
            };
            vec![
                e.id.to_string(),
                utc(e.at),
                e.action.clone(),
                or_id(&n.actor_name, &e.actor),
                or_id(&None, &e.client_id),
                subject,
                or_id(&None, &e.ip),
            ]
        },
    );
    let doc: Vec<AuditEvent> = events.into_iter().map(AuditEvent::from).collect();
    render(&doc, json, text)
}
