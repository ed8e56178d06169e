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
pub use keys::{audit_list, keys_encrypt, keys_list, keys_rewrap, keys_rotate};
pub use users::{
    user_create, user_delete, user_disable, user_enable, user_list, user_revoke_tokens, user_set_password,
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

/// One line per item.
fn lines<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    items.iter().map(line).collect::<Vec<_>>().join("\n")
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
