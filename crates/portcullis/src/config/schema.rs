//! The configuration as the file spells it, and its defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::de::{list_comma, list_space, opt_text, text};
use crate::Settings;

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
    /// Algorithms DPoP proofs may be signed with; a list or a
    /// comma-separated string.
    #[serde(deserialize_with = "list_comma")]
    pub dpop_algorithms: Vec<String>,
    /// How old a DPoP proof may be, seconds.
    pub dpop_max_age: u64,
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
    /// Shortest new password of a password-only account, characters.
    pub password_min_length: usize,
    /// Delay before a sign-in 429/503, milliseconds.
    pub refusal_delay_ms: u64,
    /// Seconds a new signing key is published before it signs.
    pub key_publish_delay: u64,
    /// Automatic key rotation period, seconds (0: off).
    pub key_rotation_period: u64,
    /// A file holding the key-encryption key (32 random bytes, raw or
    /// base64) that signing keys are stored encrypted under.
    pub key_encryption_key_file: Option<PathBuf>,
    /// Refuse to start when the SQLite database files are readable or
    /// writable by group or others (otherwise: a warning).
    pub strict_permissions: bool,
    /// Bearer credential required on the revocation feed.
    #[serde(deserialize_with = "opt_text")]
    pub revocation_feed_secret: Option<String>,
    /// A file holding the revocation feed's credential.
    pub revocation_feed_secret_file: Option<PathBuf>,
    /// Serve the revocation feed to anyone, with no credential.
    pub revocation_feed_public: bool,
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
    /// SMTP server for mail (`smtp://` STARTTLS, `smtps://` TLS); may hold
    /// a password.
    #[serde(deserialize_with = "opt_text")]
    pub smtp_url: Option<String>,
    /// A file holding the SMTP URL (instead of `smtp_url`).
    pub smtp_url_file: Option<PathBuf>,
    /// The sender of mail (`Name <address>`).
    #[serde(deserialize_with = "opt_text")]
    pub mail_from: Option<String>,
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
            dpop_algorithms: ["ES256", "EdDSA", "RS256", "PS256"].map(str::to_owned).to_vec(),
            dpop_max_age: 60,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_workers: None,
            hash_queue: 64,
            hash_per_address: 8,
            password_min_length: 15,
            refusal_delay_ms: 200,
            key_publish_delay: 390,
            key_rotation_period: 0,
            key_encryption_key_file: None,
            strict_permissions: false,
            revocation_feed_secret: None,
            revocation_feed_secret_file: None,
            revocation_feed_public: false,
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
            smtp_url: None,
            smtp_url_file: None,
            mail_from: None,
            tls: TlsConfig::default(),
        }
    }
}
