//! `portcullis-load`: a load generator for any RFC 6749 token endpoint.
//!
//! It measures Portcullis and other authorization servers with the same
//! tool: virtual clients, each on its own HTTP/1.1 keep-alive connection,
//! sign in with the password grant and/or follow refresh-token chains, always
//! presenting the newest refresh token (so servers that detect replay are
//! measured on their happy path). The generator shares the machine with the
//! server under test, so it keeps its own cost low: raw hyper connections,
//! request bodies and headers built once, latencies kept as plain `u32`
//! microseconds and sorted once at the end.
//!
//! With [`Config::dpop`] every virtual client also proves possession of a
//! key of its own (RFC 9449): a fresh DPoP proof on every token request, the
//! server's nonce remembered, and only `token_type: DPoP` counted a success.
//!
//! [`run`] takes a [`Config`] and returns a [`Report`]; the binary only parses
//! the command line ([`cli::Cli`]) and prints.

pub mod cli;
mod conn;
mod dpop;
mod form;
mod report;
mod runner;

use std::{fmt, time::Duration};

use secrecy::SecretString;
use serde::Serialize;

pub use report::{GrantReport, Report, percentile};
pub use runner::run;

/// What the virtual clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every virtual client signs in with the password grant, again and again.
    Password,
    /// Every virtual client signs in once (not counted), then follows its
    /// refresh-token chain.
    Refresh,
    /// Some virtual clients sign in repeatedly, the others follow refresh chains.
    Mixed,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Password => "password",
            Self::Refresh => "refresh",
            Self::Mixed => "mixed",
        })
    }
}

/// How a confidential client authenticates (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Post,
}

/// Everything one run needs.
#[derive(Clone)]
pub struct Config {
    /// The token endpoint, `http://host:port/path` (no TLS).
    pub url: String,
    /// The OAuth client id; `None` sends no client identification at all.
    pub client_id: Option<String>,
    /// The client secret; `None` makes a public client (`client_id` in the body).
    pub client_secret: Option<SecretString>,
    /// Where a confidential client's credentials go.
    pub client_auth: ClientAuth,
    /// The `scope` parameter, if any.
    pub scope: Option<String>,
    /// The resource owner's name; `{i}` becomes `index % users`, see [`expand_username`].
    pub username: String,
    /// How many distinct users `{i}` cycles through (at least 1).
    pub users: usize,
    /// The resource owner's password.
    pub password: SecretString,
    /// What the virtual clients do.
    pub mode: Mode,
    /// Number of virtual clients, each with its own connection.
    pub clients: usize,
    /// In [`Mode::Mixed`], how many virtual clients do sign-ins (clamped to `1..clients`).
    pub password_clients: Option<usize>,
    /// The measured window.
    pub duration: Duration,
    /// Run before the measured window, not counted.
    pub warmup: Duration,
    /// A global cap on requests per second, across all virtual clients.
    pub max_rps: Option<f64>,
    /// Give up on a request after this long (counted as a transport error).
    pub timeout: Duration,
    /// Worker threads of the runtime the caller built; only reported.
    pub threads: usize,
    /// Send a DPoP proof (RFC 9449) with every token request, each virtual
    /// client with a P-256 key of its own; a 200 whose `token_type` is not
    /// `DPoP` counts as an error.
    pub dpop: bool,
    /// A process on this machine (the server under test) whose CPU time
    /// over the measured window is reported, per request (Linux
    /// `/proc/PID/stat`).
    pub server_pid: Option<u32>,
}

// Hand-written so that neither secret ever reaches a log or a panic message.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("client_auth", &self.client_auth)
            .field("scope", &self.scope)
            .field("username", &self.username)
            .field("users", &self.users)
            .field("password", &"[redacted]")
            .field("mode", &self.mode)
            .field("clients", &self.clients)
            .field("password_clients", &self.password_clients)
            .field("duration", &self.duration)
            .field("warmup", &self.warmup)
            .field("max_rps", &self.max_rps)
            .field("timeout", &self.timeout)
            .field("threads", &self.threads)
            .field("dpop", &self.dpop)
            .field("server_pid", &self.server_pid)
            .finish()
    }
}

impl Config {
    /// How many virtual clients do sign-ins in this mode (the rest follow
    /// refresh chains): all in `password`, none in `refresh`, and in `mixed`
    /// `--password-clients` or `clients / 8`, at least 1 and leaving at
    /// least one refresh client when there are two or more clients.
    pub fn password_client_count(&self) -> usize {
        match self.mode {
            Mode::Password => self.clients,
            Mode::Refresh => 0,
            Mode::Mixed => {
                let k = self.password_clients.unwrap_or(self.clients / 8).max(1);
                k.min(self.clients.saturating_sub(1).max(1))
            }
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL does not parse or is not `http://` with a host.
    #[error("invalid token endpoint URL {0:?}: {1}")]
    Url(String, &'static str),
    /// A header value (client id or secret) cannot be sent.
    #[error("client credentials cannot be sent in an Authorization header")]
    Credentials,
    /// A numeric option is out of range.
    #[error("invalid option: {0}")]
    Option(&'static str),
    /// A virtual client's DPoP key could not be generated.
    #[error("cannot generate a DPoP key")]
    Dpop,
}

/// The user name of virtual client `index`: every `{i}` in `pattern` becomes
/// `index % users` (`users` of 0 counts as 1), so `u{i}` with 4 users gives
/// `u0`, `u1`, `u2`, `u3`, `u0`, …
pub fn expand_username(pattern: &str, index: usize, users: usize) -> String {
    pattern.replace("{i}", &(index % users.max(1)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_placeholder_cycles_through_the_users() {
        let names: Vec<_> = (0..6).map(|i| expand_username("u{i}", i, 4)).collect();
        assert_eq!(names, ["u0", "u1", "u2", "u3", "u0", "u1"]);
    }

    #[test]
    fn username_without_placeholder_is_unchanged() {
        assert_eq!(expand_username("alice", 7, 3), "alice");
    }

    #[test]
    fn every_placeholder_is_replaced_and_zero_users_counts_as_one() {
        assert_eq!(expand_username("{i}-user-{i}", 5, 2), "1-user-1");
        assert_eq!(expand_username("u{i}", 5, 0), "u0");
    }
}
