//! The admin commands, working straight on the database.
//!
//! Each command parses its arguments into typed input, calls an operation
//! ([`crate::ops`]) as [`crate::ops::Actor::Cli`], and renders the result:
//! text, or with `--json` the admin API's response type where the shape is
//! the same.

mod clients;
mod keys;
mod users;

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use portcullis_domain::Scopes;
use secrecy::SecretString;
use serde::Serialize;

use crate::ops::OpsError;

pub use clients::{client_create, client_list, client_revoke, client_rotate_secret, client_show};
pub use keys::{KeyTimes, audit_list, keys_encrypt, keys_list, keys_rewrap, keys_rotate};
pub use users::{
    user_create, user_delete, user_disable, user_enable, user_list, user_mfa_reset, user_revoke_tokens,
    user_set_password, user_show,
};

/// An operation's failure as the command says it: a refusal speaks for
/// itself; a store failure says what could not be done.
fn failed(doing: &'static str) -> impl FnOnce(OpsError) -> anyhow::Error {
    move |e| match e {
        OpsError::Store(e) => anyhow::anyhow!("{doing}: {e}"),
        other => anyhow::anyhow!("{other}"),
    }
}

/// `doc` as JSON (keys sorted), or `text`.
fn render(doc: &impl Serialize, json: bool, text: String) -> anyhow::Result<String> {
    if json {
        Ok(serde_json::to_value(doc).context("rendering JSON")?.to_string())
    } else {
        Ok(text)
    }
}

/// A table: the header row, then one row per item, columns aligned with
/// two spaces between them (the last column is not padded).
fn table<T>(header: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(items.iter().map(row))
        .collect();
    let mut widths = vec![0; header.len()];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let last = r.len().saturating_sub(1);
            r.iter()
                .enumerate()
                .map(|(i, cell)| {
                    if i == last {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}", w = widths[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Unix time as RFC 3339 in UTC (`2026-12-07T03:04:05Z`).
fn utc(t: portcullis_store::UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.0.to_string())
}

/// Parses a `--scope` style argument.
fn scope(text: &str, what: &str) -> anyhow::Result<Scopes> {
    Scopes::parse(text.trim()).map_err(|_| anyhow::anyhow!("invalid {what} syntax: {text:?} (RFC 6749 §3.3)"))
}

/// The password from the first line of stdin, or from a prompt without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<SecretString> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(line.strip_suffix('\r').unwrap_or(line).into());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for the password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Repeat: ").context("reading the password")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(first.into())
}
