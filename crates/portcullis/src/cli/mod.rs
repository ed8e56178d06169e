//! The command line (the contract is in the design document; commands
//! appear here as they are built).

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::Settings;

mod keys;

pub use keys::{KeysCommand, KeysRewrap, KeysRotate};

/// Portcullis: an OAuth 2.0 authorization server for first-party apps.
///
/// Settings come from defaults, then the TOML file given by `--config`,
/// then `PORTCULLIS_*` environment variables, then flags. Every flag of
/// `serve` is also a file key and a variable: `--access-token-ttl` is
/// `access_token_ttl` and `PORTCULLIS_ACCESS_TOKEN_TTL`; `--tls-cert` is
/// `cert` under `[tls]` and `PORTCULLIS_TLS__CERT`. Reference:
/// docs/configuration.md.
// No `Debug`: the database URL may hold a password.
#[derive(Parser)]
#[command(name = "portcullis", version, about, long_about)]
pub struct Cli {
    /// Database URL: `sqlite://FILE` (created on first start) or
    /// `postgres://USER:PASSWORD@HOST/DB` [default: sqlite://portcullis.db].
    /// Prefer `PORTCULLIS_DATABASE_URL` or `database_url_file` for URLs
    /// that hold a password.
    #[arg(long = "database", global = true)]
    pub database_url: Option<String>,

    /// TOML configuration file.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the audit log, newest first.
    Audit(AuditArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `portcullis config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as `serve` would (defaults, file,
    /// environment, flags), check every value, and print the effective
    /// configuration as TOML with secrets masked and each value's source.
    /// Exits non-zero on any error.
    Check(Box<ServeArgs>),
}

/// `portcullis audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many events.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only events older than this event id (for paging).
    #[arg(long)]
    pub before: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `portcullis serve`; each is also a configuration key of the
/// same name (the flag's default is the key's default).
#[derive(Debug, Args, serde::Serialize)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = Settings::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Issuer URL, the `iss` of every token.
    #[arg(long, default_value = Settings::DEFAULT_ISSUER)]
    pub issuer: String,

    /// Default audience (`aud`) of access tokens [default: the issuer].
    #[arg(long)]
    pub audience: Option<String>,

    /// Further audiences clients may request with an RFC 8707 `resource`
    /// parameter (repeat, or comma-separated in the environment).
    #[arg(long = "resource", value_delimiter = ',')]
    pub resources: Vec<String>,

    /// Scopes listed in the metadata document (`scopes_supported`).
    #[arg(long = "scopes-supported", value_delimiter = ' ')]
    pub scopes_supported: Vec<String>,

    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 900)]
    pub access_token_ttl: u64,

    /// Refresh-token idle lifetime in seconds.
    #[arg(long, default_value_t = 30 * 86_400)]
    pub refresh_idle_ttl: u64,

    /// Refresh-family absolute lifetime in seconds.
    #[arg(long, default_value_t = 90 * 86_400)]
    pub refresh_absolute_ttl: u64,

    /// Seconds during which a retried refresh gets the same answer (0 =
    /// strict: only one request per token succeeds).
    #[arg(long, default_value_t = 10)]
    pub refresh_retry_window: u64,

    /// Strict mode only: seconds after a rotation in which another request
    /// with the same token is a lost race (refused, the family lives on)
    /// rather than reuse (the family is revoked). 0: every replay is reuse.
    #[arg(long, default_value_t = 2)]
    pub refresh_race_grace: u64,

    /// Record every refresh in the audit log (sign-ins, revocations, reuse
    /// detections and admin actions are always recorded).
    #[arg(long)]
    pub audit_refreshes: bool,

    /// Algorithm of signing keys this server creates: ES256, EdDSA or RS256.
    #[arg(long, default_value = "ES256")]
    pub signing_alg: String,

    /// Algorithms DPoP proofs (RFC 9449) may be signed with, comma-separated:
    /// ES256, ES384, EdDSA, RS256, PS256.
    #[arg(long, value_delimiter = ',', default_values = ["ES256", "EdDSA", "RS256", "PS256"])]
    pub dpop_algorithms: Vec<String>,

    /// How old a DPoP proof may be, in seconds (1 to 600); each proof's
    /// `jti` is remembered that long.
    #[arg(long, default_value_t = 60)]
    pub dpop_max_age: u64,

    /// Password hashing.
    #[command(flatten)]
    #[serde(flatten)]
    pub hashing: HashingArgs,

    /// Milliseconds the token endpoint waits before answering 429 or 503,
    /// which slows a flood that retries at once.
    #[arg(long, default_value_t = 200)]
    pub refusal_delay_ms: u64,

    /// Seconds a new signing key is published before it signs.
    #[arg(long, default_value_t = 390)]
    pub key_publish_delay: u64,

    /// Create a new signing key every this many seconds (0: only by
    /// `portcullis keys rotate`).
    #[arg(long, default_value_t = 0)]
    pub key_rotation_period: u64,

    /// A bearer credential that reads the revocation feed (besides access
    /// tokens with the scope `portcullis:feed`). Prefer the environment
    /// variable.
    #[arg(long)]
    pub revocation_feed_secret: Option<String>,

    /// Refuse to start when the SQLite database file (or its -wal/-shm) is
    /// readable or writable by group or others (default: a warning).
    #[arg(long)]
    pub strict_permissions: bool,
    /// Serve the revocation feed to anyone, without a credential (it lists
    /// user and client ids; off by default).
    #[arg(long)]
    pub revocation_feed_public: bool,

    /// Serve plain HTTP on a non-loopback address because a proxy in
    /// front terminates TLS.
    #[arg(long)]
    pub behind_tls_proxy: bool,

    /// Addresses or CIDR blocks of reverse proxies whose `X-Forwarded-For`
    /// names the client (comma-separated), e.g. `10.0.0.0/8`.
    #[arg(long, value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Seconds a connection may take to send a request's headers, or stay
    /// idle between requests, before it is closed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,

    /// Seconds a request may take to send its body (then 408): the whole
    /// body at the token endpoint, between chunks elsewhere.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,

    /// Seconds shutdown (SIGTERM, SIGINT) waits for requests in flight.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace: u64,

    /// Log format: `text` (default) or `json` (one object per line).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Browser clients' refresh cookie without `Secure`, for development
    /// over plain HTTP on a loopback address only (refused elsewhere).
    #[arg(long)]
    pub web_insecure_cookies: bool,

    /// Serve the sign-in demo page at /demo/ (off by default).
    #[arg(long)]
    pub demo: bool,

    /// The browser client (`client create --web`) the demo page uses.
    #[arg(long, default_value = "portcullis-demo")]
    pub demo_client_id: String,

    /// Serve the admin console at /admin/ (`--admin-console=false` turns
    /// it off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub admin_console: bool,

    /// The client the admin console signs in with (a public client with
    /// the password grant).
    #[arg(long, default_value = "portcullis-admin")]
    pub admin_console_client_id: String,

    /// SMTP server for password reset and email verification codes:
    /// `smtp://HOST:587` (STARTTLS), `smtps://HOST:465` (TLS),
    /// `smtp://HOST:25?tls=none` (a local relay); may hold
    /// `USER:PASSWORD@`. Prefer the environment variable or
    /// `smtp_url_file`.
    #[arg(long)]
    pub smtp_url: Option<String>,

    /// The sender of mail, e.g. `Example <no-reply@example.com>`.
    #[arg(long)]
    pub mail_from: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (leaf first); reloaded
    /// on SIGHUP and when the file changes. Needs --tls-key.
    #[arg(long)]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, SEC1 or PKCS#1).
    #[arg(long)]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Password-hashing settings of `serve`: the Argon2 parameters and the
/// hashing pool's limits.
#[derive(Debug, Args, serde::Serialize)]
pub struct HashingArgs {
    /// The Argon2id parameters.
    #[command(flatten)]
    #[serde(flatten)]
    pub argon2: Argon2Args,

    /// Password hashes computed at once [default: the number of CPUs].
    #[arg(long)]
    pub hash_workers: Option<usize>,

    /// Password hashes allowed to wait; beyond, sign-ins get 503.
    #[arg(long, default_value_t = 64)]
    pub hash_queue: usize,

    /// Sign-ins one client address (IPv6: one /64) may have hashing or
    /// waiting at once; beyond, its sign-ins get 429.
    #[arg(long, default_value_t = 8)]
    pub hash_per_address: usize,

    /// Shortest new password, in characters, for an account the password
    /// alone protects (15, as NIST SP 800-63B-4 asks; at least 8).
    #[arg(long, default_value_t = 15)]
    pub password_min_length: usize,
}

/// The Argon2id parameters, shared by `serve`, `user create` and `user
/// set-password` so that hashes made at the command line match the
/// server's. (The pool's limits, `--hash-queue` and the like, tune only a
/// running server: they are flags of `serve` alone.)
#[derive(Debug, Args, serde::Serialize)]
#[command(next_help_heading = "Password hashing (use the server's settings)")]
pub struct Argon2Args {
    /// Argon2id memory cost in KiB (at least 19456).
    #[arg(long, default_value_t = 19_456)]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations (at least 2).
    #[arg(long, default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id lanes.
    #[arg(long, default_value_t = 1)]
    pub argon2_parallelism: u32,
}

/// `portcullis client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and (for confidential clients) its
    /// secret, which is shown only this once.
    Create(ClientCreate),
    /// List clients.
    List(JsonFlag),
    /// Show one client.
    Show(ClientId),
    /// Cut a client off: no new tokens, its sign-ins end, resource servers
    /// following the revocation feed refuse its access tokens.
    Revoke(ClientId),
    /// Replace a confidential client's secret; the old one keeps working
    /// for the grace period. The new secret is shown only this once.
    RotateSecret(ClientRotateSecret),
}

/// `portcullis client rotate-secret`
#[derive(Debug, Args)]
pub struct ClientRotateSecret {
    /// The client_id.
    pub id: String,
    /// Seconds the old secret keeps working (at most 2592000, 30 days);
    /// 0 ends it at once, as after a leak.
    #[arg(long, default_value_t = 86_400)]
    pub grace_period: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--json`
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A client named on the command line.
#[derive(Debug, Args)]
pub struct ClientId {
    /// The client_id.
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A user named on the command line.
#[derive(Debug, Args)]
pub struct UserName {
    /// The username.
    pub username: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis client create`
#[derive(Debug, Args)]
pub struct ClientCreate {
    /// Human-readable name.
    #[arg(long)]
    pub name: String,
    /// The client_id to register [default: random].
    #[arg(long)]
    pub client_id: Option<String>,
    /// A public client (mobile or browser app): no secret, authenticates
    /// with its client_id alone.
    #[arg(long)]
    pub public: bool,
    /// Grant types the client may use (repeat) [default: password and
    /// refresh_token].
    #[arg(long = "grant", value_parser = ["authorization_code", "password", "refresh_token"])]
    pub grants: Vec<String>,
    /// Space-delimited scopes the client may request.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Scopes granted when a request names none [default: all of --scope].
    #[arg(long)]
    pub default_scope: Option<String>,
    /// Allow this (confidential) client to call the introspection endpoint.
    #[arg(long)]
    pub introspect: bool,
    /// A browser app: a public client whose refresh token is kept in an
    /// HttpOnly cookie by the /web/ endpoints (needs --origin).
    #[arg(long, requires = "origins")]
    pub web: bool,
    /// An origin (`https://app.example`, or `http://` on loopback) whose
    /// pages may call the /web/ endpoints for this client (repeat).
    #[arg(long = "origin", requires = "web")]
    pub origins: Vec<String>,
    /// Let users sign up through this client (POST /account/v1/sign-up).
    #[arg(long)]
    pub allow_sign_up: bool,
    /// Space-delimited scopes of users who sign up through this client.
    #[arg(long, default_value = "", requires = "allow_sign_up")]
    pub sign_up_scope: String,
    /// Require a DPoP proof (RFC 9449) with every token request: tokens
    /// bound to the app's key, bearer requests refused.
    #[arg(long)]
    pub dpop_bound_access_tokens: bool,
    /// Require DPoP proofs to carry a current server nonce.
    #[arg(long)]
    pub dpop_nonce_required: bool,
    /// A first-party app: may sign users in through the Authorization
    /// Challenge Endpoint (POST /oauth/authorize-challenge).
    #[arg(long)]
    pub first_party: bool,
    /// Users without a second factor cannot sign in through this client.
    #[arg(long)]
    pub mfa_required: bool,
    /// Print JSON (RFC 7591 field names).
    #[arg(long)]
    pub json: bool,
}

/// `portcullis user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create(UserCreate),
    /// List users.
    List(JsonFlag),
    /// Disable a user: sign-in refused, every sign-in ended.
    Disable(UserName),
    /// Enable a disabled user: they may sign in again.
    Enable(UserName),
    /// Delete a user and every sign-in of theirs (the audit log keeps a
    /// pseudonym).
    Delete(UserName),
    /// Set a user's password (from stdin or a prompt); ends every sign-in.
    SetPassword(UserSetPassword),
    /// End every sign-in of a user (all devices).
    RevokeTokens(UserName),
    /// Show one user, with their second factor.
    Show(UserName),
    /// Remove a user's second factor (authenticator and recovery codes)
    /// and end every sign-in of theirs: they sign in with the password
    /// alone until they enrol again.
    MfaReset(UserName),
}

/// `portcullis user set-password`
#[derive(Debug, Args)]
pub struct UserSetPassword {
    /// The username.
    pub username: String,
    /// Read the password from standard input (first line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Password hashing (use the server's settings).
    #[command(flatten)]
    pub hashing: Argon2Args,
}

/// `portcullis user create`
#[derive(Debug, Args)]
pub struct UserCreate {
    /// The sign-in name.
    pub username: String,
    /// Read the password from standard input (first line) instead of
    /// prompting for it. Passwords are never taken from the command line.
    #[arg(long, conflicts_with = "no_password")]
    pub password_stdin: bool,
    /// Create the user without a password: they cannot sign in until one
    /// is set (`user set-password`, or a reset through a verified email).
    #[arg(long)]
    pub no_password: bool,
    /// The user's email address.
    #[arg(long)]
    pub email: Option<String>,
    /// Count the email address as verified at once.
    #[arg(long, requires = "email")]
    pub email_verified: bool,
    /// Space-delimited scopes the user may be granted.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Also grant `portcullis:admin` (access to the admin API).
    #[arg(long)]
    pub admin: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Password hashing (use the server's settings).
    #[command(flatten)]
    pub hashing: Argon2Args,
}
