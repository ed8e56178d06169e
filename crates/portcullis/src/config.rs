//! Configuration: defaults, then an optional TOML file (`--config`), then
//! `PORTCULLIS_*` environment variables (`__` nests: `PORTCULLIS_TLS__CERT`
//! is `tls.cert`), then command-line flags, each overriding the one before.
//!
//! Every key of the file is also a flag (`access_token_ttl` is
//! `--access-token-ttl`) and an environment variable
//! (`PORTCULLIS_ACCESS_TOKEN_TTL`). Secrets can be read from files
//! (`database_url_file`, `revocation_feed_secret_file`), as container
//! platforms mount them. An unknown key in the file, or a value that does
//! not parse, stops start-up with an error naming the key and where it came
//! from. The reference for every key is docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Settings;
use crate::proxy::IpBlock;

/// The environment variables' prefix.
pub const ENV_PREFIX: &str = "PORTCULLIS_";

/// Environment variables with the prefix that are not configuration keys
/// but are read by Portcullis itself.
const ENV_NOT_KEYS: &[&str] = &["CONFIG"];

/// Every setting, as the file spells it. No `Debug`: it holds secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database URL (`sqlite://FILE` or `postgres://…`) [default:
    /// `sqlite://portcullis.db`].
    #[serde(deserialize_with = "opt_text")]
    pub database_url: Option<String>,
    /// A file holding the database URL (instead of `database_url`).
    pub database_url_file: Option<PathBuf>,
    /// Issuer URL, the `iss` of every token.
    #[serde(deserialize_with = "text")]
    pub issuer: String,
    /// Default audience [default: the issuer].
    #[serde(deserialize_with = "opt_text")]
    pub audience: Option<String>,
    /// Further audiences clients may request (RFC 8707 `resource`); a list
    /// or a comma-separated string.
    #[serde(deserialize_with = "list_comma")]
    pub resources: Vec<String>,
    /// Scopes listed in the metadata document; a list or a space-separated
    /// string.
    #[serde(deserialize_with = "list_space")]
    pub scopes_supported: Vec<String>,
    /// Access-token lifetime, seconds.
    pub access_token_ttl: u64,
    /// Refresh-token idle lifetime, seconds.
    pub refresh_idle_ttl: u64,
    /// Refresh-family absolute lifetime, seconds.
    pub refresh_absolute_ttl: u64,
    /// Retry window of a refresh, seconds (0: strict mode).
    pub refresh_retry_window: u64,
    /// Strict mode's race grace, seconds.
    pub refresh_race_grace: u64,
    /// Record every refresh in the audit log.
    pub audit_refreshes: bool,
    /// Algorithm of signing keys this server creates.
    #[serde(deserialize_with = "text")]
    pub signing_alg: String,
    /// Argon2id memory cost, KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Hashes computed at once [default: the number of CPUs].
    pub hash_workers: Option<usize>,
    /// Hashes allowed to wait.
    pub hash_queue: usize,
    /// Sign-ins one address may have hashing or waiting.
    pub hash_per_address: usize,
    /// Delay before a sign-in 429/503, milliseconds.
    pub refusal_delay_ms: u64,
    /// Seconds a new signing key is published before it signs.
    pub key_publish_delay: u64,
    /// Automatic key rotation period, seconds (0: off).
    pub key_rotation_period: u64,
    /// Bearer credential required on the revocation feed.
    #[serde(deserialize_with = "opt_text")]
    pub revocation_feed_secret: Option<String>,
    /// A file holding the revocation feed's credential.
    pub revocation_feed_secret_file: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address, behind a TLS proxy.
    pub behind_tls_proxy: bool,
    /// Proxies whose `X-Forwarded-For` names the client; a list or a
    /// comma-separated string.
    #[serde(deserialize_with = "list_comma")]
    pub trusted_proxies: Vec<String>,
    /// Header read and keep-alive idle timeout, seconds.
    pub header_timeout: u64,
    /// Request body timeout, seconds.
    pub body_timeout: u64,
    /// How long shutdown waits for requests in flight, seconds.
    pub shutdown_grace: u64,
    /// Log format: `text` or `json`.
    #[serde(deserialize_with = "text")]
    pub log_format: String,
    /// Browser clients' refresh cookie without `Secure` (development over
    /// plain HTTP on loopback only).
    pub web_insecure_cookies: bool,
    /// Serve the sign-in demo page at `/demo/`.
    pub demo: bool,
    /// The browser client the demo page signs in with.
    #[serde(deserialize_with = "text")]
    pub demo_client_id: String,
    /// Serve the admin console at `/admin/`.
    pub admin_console: bool,
    /// The client the admin console signs in with.
    #[serde(deserialize_with = "text")]
    pub admin_console_client_id: String,
    /// Built-in TLS.
    pub tls: TlsConfig,
}

/// `[tls]`: the certificate and key of the built-in TLS listener.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: Settings::DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            database_url: None,
            database_url_file: None,
            issuer: Settings::DEFAULT_ISSUER.to_owned(),
            audience: None,
            resources: Vec::new(),
            scopes_supported: Vec::new(),
            access_token_ttl: 900,
            refresh_idle_ttl: 30 * 86_400,
            refresh_absolute_ttl: 90 * 86_400,
            refresh_retry_window: 10,
            refresh_race_grace: 2,
            audit_refreshes: false,
            signing_alg: "ES256".to_owned(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_workers: None,
            hash_queue: 64,
            hash_per_address: 8,
            refusal_delay_ms: 200,
            key_publish_delay: 390,
            key_rotation_period: 0,
            revocation_feed_secret: None,
            revocation_feed_secret_file: None,
            behind_tls_proxy: false,
            trusted_proxies: Vec::new(),
            header_timeout: 10,
            body_timeout: 10,
            shutdown_grace: 10,
            log_format: "text".to_owned(),
            web_insecure_cookies: false,
            demo: false,
            demo_client_id: "portcullis-demo".to_owned(),
            admin_console: true,
            admin_console_client_id: "portcullis-admin".to_owned(),
            tls: TlsConfig::default(),
        }
    }
}

/// A list given as a list, or as one string split on `sep` (environment
/// variables and flags are strings).
fn list<'de, D: Deserializer<'de>>(d: D, sep: char) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(sep).map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A string; a number or boolean counts as its text (an environment value
/// such as `PORTCULLIS_AUDIENCE=12345` arrives as a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    S(String),
    I(i64),
    U(u64),
    F(f64),
    B(bool),
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        match t {
            Text::S(s) => s,
            Text::I(n) => n.to_string(),
            Text::U(n) => n.to_string(),
            Text::F(n) => n.to_string(),
            Text::B(b) => b.to_string(),
        }
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(String::from)
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(d).map(|t| t.map(String::from))
}

fn list_comma<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list(d, ',')
}

fn list_space<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list(d, ' ')
}

/// The configuration's keys, as the file spells them (`tls.cert`).
#[must_use]
pub fn keys() -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    walk(&key, v, out);
                } else {
                    out.push(key);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(Config::default()).unwrap_or_default(),
        &mut out,
    );
    out
}

/// The environment variable of a key: `tls.cert` → `PORTCULLIS_TLS__CERT`.
#[must_use]
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_ascii_uppercase())
}

/// The flag of a key: `tls.cert` → `--tls-cert`.
#[must_use]
pub fn flag_name(key: &str) -> String {
    match key {
        "database_url" => "--database".to_owned(),
        "resources" => "--resource".to_owned(),
        _ => format!("--{}", key.replace(['.', '_'], "-")),
    }
}

/// The configuration with where it came from.
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    figment: Figment,
    /// `PORTCULLIS_*` variables that name no key (warned about at start:
    /// the environment is shared, e.g. Kubernetes adds `PORTCULLIS_PORT`
    /// for a Service named `portcullis`).
    pub unknown_env: Vec<String>,
}

/// Command-line values for configuration keys, taken only where the user
/// typed them (a flag's default must not override the file or the
/// environment).
#[derive(Default)]
pub struct Overrides(Vec<(String, serde_json::Value)>);

impl Overrides {
    /// Sets `key` (`tls.cert`) as if typed on the command line.
    pub fn set(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.0.push((key.to_owned(), value.into()));
    }

    /// Adds the keys of `args` (a clap `Args` struct whose field names are
    /// configuration keys, `tls_cert` for `tls.cert`) that `matches` says
    /// came from the command line.
    pub fn add(&mut self, matches: &ArgMatches, args: &impl Serialize) {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(args) else {
            return;
        };
        let known = keys();
        for (field, value) in fields {
            let key = field
                .strip_prefix("tls_")
                .map_or_else(|| field.clone(), |k| format!("tls.{k}"));
            if !known.contains(&key) || value.is_null() {
                continue;
            }
            if matches.value_source(&field) == Some(ValueSource::CommandLine) {
                self.0.push((key, value));
            }
        }
    }
}

/// Loads the configuration: defaults, the file at `path` (if any), the
/// environment, then `overrides`.
///
/// # Errors
/// When the file cannot be read or parsed, a key is unknown, or a value
/// does not fit its key; the message names the key and its source.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Loaded> {
    let known = keys();
    let known_top: Vec<String> = known
        .iter()
        .map(|k| k.split('.').next().unwrap_or(k).to_owned())
        .collect();
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = path {
        if !path.is_file() {
            anyhow::bail!("configuration file {}: not found", path.display());
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // Before or after `split` maps `TLS__KEY` to `tls.key`.
    let top_of = |var: &str| {
        var.split("__")
            .next()
            .and_then(|v| v.split('.').next())
            .unwrap_or(var)
            .to_ascii_lowercase()
    };
    let env = Env::prefixed(ENV_PREFIX).split("__").filter({
        let known_top = known_top.clone();
        move |k| known_top.contains(&top_of(k.as_str()))
    });
    figment = figment.merge(env);
    for (key, value) in &overrides.0 {
        figment = figment.merge(Serialized::default(key, value));
    }
    let config: Config = figment.extract().map_err(|e| anyhow::anyhow!(describe(e)))?;
    let mut unknown_env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter_map(|k| k.strip_prefix(ENV_PREFIX).map(str::to_owned))
        .filter(|k| !known_top.contains(&top_of(k)) && !ENV_NOT_KEYS.contains(&k.as_str()))
        .map(|k| format!("{ENV_PREFIX}{k}"))
        .collect();
    unknown_env.sort();
    Ok(Loaded {
        config,
        figment,
        unknown_env,
    })
}

/// Figment's errors, one per line, each naming the key and its source.
fn describe(e: figment::Error) -> String {
    let lines: Vec<String> = e
        .into_iter()
        .map(|e| {
            let mut line = String::from("configuration: ");
            if !e.path.is_empty() {
                let key = e.path.join(".");
                line.push_str(&format!("`{key}`: "));
            }
            line.push_str(&e.kind.to_string());
            if let Some(md) = &e.metadata {
                if md.name.contains("environment") {
                    line.push_str(&format!(" (from {})", env_name(&e.path.join("."))));
                } else if md.name.contains("TOML") {
                    let src = md.source.as_ref().map(ToString::to_string).unwrap_or_default();
                    line.push_str(&format!(" (from file {src})"));
                } else if md.name.contains("Value") {
                    line.push_str(&format!(" (from {})", flag_name(&e.path.join("."))));
                }
            }
            line
        })
        .collect();
    lines.join("\n")
}

impl Loaded {
    /// Where `key`'s value came from: "default", the file, the environment
    /// variable or the flag.
    #[must_use]
    pub fn source_of(&self, key: &str) -> String {
        match self.figment.find_metadata(key) {
            None => "default".to_owned(),
            Some(md) if md.name.contains("Config") => "default".to_owned(),
            Some(md) if md.name.contains("environment") => env_name(key),
            Some(md) if md.name.contains("TOML") => match &md.source {
                Some(src) => format!("file {src}"),
                None => "file".to_owned(),
            },
            Some(_) => flag_name(key),
        }
    }

    /// Fails when a key holds a value that parses but makes no sense.
    fn invalid(&self, key: &str, why: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("configuration: `{key}` (from {}): {why}", self.source_of(key))
    }

    /// A secret given inline or in a file (not both).
    fn secret(&self, key: &str, inline: Option<&String>, file: Option<&PathBuf>) -> anyhow::Result<Option<String>> {
        let file_key = format!("{key}_file");
        match (inline, file) {
            (Some(_), Some(_)) => Err(anyhow::anyhow!(
                "configuration: set `{key}` (from {}) or `{file_key}` (from {}), not both",
                self.source_of(key),
                self.source_of(&file_key)
            )),
            (Some(v), None) => Ok(Some(v.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| self.invalid(&file_key, format!("cannot read {}: {e}", path.display())))?;
                // Files written by editors and `echo` end with a newline.
                let v = text.trim_end_matches(['\n', '\r']).to_owned();
                if v.is_empty() {
                    return Err(self.invalid(&file_key, format!("{} is empty", path.display())));
                }
                Ok(Some(v))
            }
            (None, None) => Ok(None),
        }
    }

    /// The database URL (inline, from its file, or the default).
    ///
    /// # Errors
    /// When both forms are set or the file cannot be read.
    pub fn database_url(&self) -> anyhow::Result<String> {
        let c = &self.config;
        Ok(self
            .secret("database_url", c.database_url.as_ref(), c.database_url_file.as_ref())?
            .unwrap_or_else(|| Settings::DEFAULT_DATABASE_URL.to_owned()))
    }

    /// The password-hashing policy.
    ///
    /// # Errors
    /// When a count is zero.
    pub fn password_policy(&self) -> anyhow::Result<portcullis_token::password::PasswordPolicy> {
        let c = &self.config;
        for (key, v) in [
            ("hash_queue", c.hash_queue),
            ("hash_per_address", c.hash_per_address),
            ("hash_workers", c.hash_workers.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(self.invalid(key, "must be at least 1"));
            }
        }
        let mut p = portcullis_token::password::PasswordPolicy {
            m_cost_kib: c.argon2_memory_kib,
            t_cost: c.argon2_iterations,
            p_cost: c.argon2_parallelism,
            queue: c.hash_queue,
            per_address: c.hash_per_address,
            ..Default::default()
        };
        if let Some(w) = c.hash_workers {
            p.workers = w;
        }
        Ok(p)
    }

    /// The server's settings.
    ///
    /// # Errors
    /// When a value makes no sense (the message names the key and where it
    /// came from), or a secret file cannot be read.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let c = &self.config;
        let mut s = Settings::new(c.listen, &self.database_url()?, &c.issuer);
        if !c.issuer.starts_with("https://") && !c.issuer.starts_with("http://") {
            return Err(self.invalid("issuer", "must be an http(s) URL"));
        }
        for (key, v) in [("header_timeout", c.header_timeout), ("body_timeout", c.body_timeout)] {
            if v == 0 {
                return Err(self.invalid(key, "must be at least 1 second"));
            }
        }
        if !matches!(c.log_format.as_str(), "text" | "json") {
            return Err(self.invalid("log_format", "must be `text` or `json`"));
        }
        let t = &mut s.token;
        if let Some(aud) = &c.audience {
            t.audience.clone_from(aud);
        }
        t.resources.clone_from(&c.resources);
        t.scopes_supported.clone_from(&c.scopes_supported);
        t.access_token_ttl = Duration::from_secs(c.access_token_ttl);
        t.refresh_idle_ttl = Duration::from_secs(c.refresh_idle_ttl);
        t.refresh_absolute_ttl = Duration::from_secs(c.refresh_absolute_ttl);
        t.refresh_retry_window = Duration::from_secs(c.refresh_retry_window);
        t.refresh_race_grace = Duration::from_secs(c.refresh_race_grace);
        t.audit_refreshes = c.audit_refreshes;
        t.signing_alg = c.signing_alg.parse().map_err(|e| self.invalid("signing_alg", e))?;
        t.password = self.password_policy()?;
        t.refusal_delay = Duration::from_millis(c.refusal_delay_ms);
        t.key_publish_delay = Duration::from_secs(c.key_publish_delay);
        t.key_rotation_period = (c.key_rotation_period > 0).then(|| Duration::from_secs(c.key_rotation_period));
        t.revocation_feed_secret = self
            .secret(
                "revocation_feed_secret",
                c.revocation_feed_secret.as_ref(),
                c.revocation_feed_secret_file.as_ref(),
            )?
            .filter(|x| !x.is_empty());
        s.behind_tls_proxy = c.behind_tls_proxy;
        s.trusted_proxies = c
            .trusted_proxies
            .iter()
            .map(|p| p.parse::<IpBlock>())
            .collect::<Result<_, _>>()
            .map_err(|e| self.invalid("trusted_proxies", e))?;
        if c.web_insecure_cookies && !c.listen.ip().is_loopback() {
            return Err(self.invalid(
                "web_insecure_cookies",
                "only for development on a loopback address: a refresh cookie without `Secure` would travel \
                 over plain HTTP",
            ));
        }
        s.token.web_insecure_cookies = c.web_insecure_cookies;
        s.demo_client_id = c.demo.then(|| c.demo_client_id.clone());
        s.admin_console_client_id = c.admin_console.then(|| c.admin_console_client_id.clone());
        s.header_timeout = Duration::from_secs(c.header_timeout);
        s.body_timeout = Duration::from_secs(c.body_timeout);
        s.shutdown_grace = Duration::from_secs(c.shutdown_grace);
        match (&c.tls.cert, &c.tls.key) {
            (None, None) => {}
            (Some(_), None) => return Err(self.invalid("tls.cert", "`tls.key` must be set too")),
            (None, Some(_)) => return Err(self.invalid("tls.key", "`tls.cert` must be set too")),
            (Some(cert), Some(key)) => s.tls = Some(crate::TlsSettings::new(cert.clone(), key.clone())),
        }
        Ok(s)
    }

    /// The effective configuration as TOML, secrets masked, each key with
    /// where its value came from.
    #[must_use]
    pub fn render(&self) -> String {
        let mut c = self.config.clone();
        if c.database_url_file.is_none() {
            let url = c.database_url.as_deref().unwrap_or(Settings::DEFAULT_DATABASE_URL);
            c.database_url = Some(crate::settings::redact_url(url));
        }
        if c.revocation_feed_secret.is_some() {
            c.revocation_feed_secret = Some("***".to_owned());
        }
        let mut text = toml::to_string(&c).unwrap_or_default();
        if c.tls.cert.is_none() && c.tls.key.is_none() {
            text = text.replace("\n[tls]\n", "\n");
        }
        // Comment each `key = value` line with its source.
        let mut section = String::new();
        let mut out = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = format!("{name}.");
                out.push_str(line);
            } else if let Some((k, _)) = line.split_once(" = ") {
                let key = format!("{section}{}", k.trim());
                out.push_str(&format!("{line}  # {}", self.source_of(&key)));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        let json = serde_json::to_value(&c).unwrap_or_default();
        let unset: Vec<String> = keys()
            .into_iter()
            .filter(|k| {
                k.split('.')
                    .try_fold(&json, |v, part| v.get(part))
                    .is_none_or(serde_json::Value::is_null)
            })
            .collect();
        if !unset.is_empty() {
            out.push_str("\n# not set:\n");
            for k in unset {
                out.push_str(&format!("# {k}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_key() {
        assert_eq!(env_name("tls.cert"), "PORTCULLIS_TLS__CERT");
        assert_eq!(env_name("access_token_ttl"), "PORTCULLIS_ACCESS_TOKEN_TTL");
        assert_eq!(flag_name("tls.cert"), "--tls-cert");
        assert_eq!(flag_name("refresh_idle_ttl"), "--refresh-idle-ttl");
        let keys = keys();
        assert!(keys.contains(&"tls.cert".to_owned()), "{keys:?}");
        assert!(keys.contains(&"database_url_file".to_owned()));
    }
}

#[cfg(test)]
mod cli_tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `serve --help` shows the flags' defaults; they must be the
    /// configuration's defaults, or the help would lie.
    #[test]
    fn flag_defaults_are_the_configuration_defaults() {
        let cli = Cli::try_parse_from(["portcullis", "serve"]).expect("parse");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let flags = serde_json::to_value(&args).expect("flags");
        let defaults = serde_json::to_value(Config::default()).expect("defaults");
        let mut compared = 0;
        for (field, value) in flags.as_object().expect("object") {
            let key = field.strip_prefix("tls_").map_or(field.as_str(), |_| "tls");
            let Some(default) = defaults.get(key) else {
                panic!("the flag field `{field}` is not a configuration key")
            };
            if key == "tls" {
                assert!(value.is_null());
                continue;
            }
            assert_eq!(value, default, "default of --{}", field.replace('_', "-"));
            compared += 1;
        }
        assert!(compared >= 25, "{compared} flags compared");
    }

    /// Every configuration key but the secret files is a flag of `serve`.
    #[test]
    fn every_key_is_a_flag() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve");
        let flags: Vec<String> = serve
            .get_arguments()
            .chain(cmd.get_arguments())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        for key in keys() {
            if key.ends_with("_file") {
                continue;
            }
            assert!(
                flags.contains(&flag_name(&key)),
                "`{key}` has no flag {}",
                flag_name(&key)
            );
        }
    }
}
