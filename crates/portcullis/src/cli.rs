//! The command line (the contract is in the design document; commands
//! appear here as they are built).

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::Settings;

/// Portcullis: an OAuth 2.0 authorization server for first-party apps.
// No `Debug`: the database URL may hold a password.
#[derive(Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Database URL: `sqlite://FILE` (created on first start) or
    /// `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long = "database", env = "PORTCULLIS_DATABASE_URL", global = true,
          default_value = Settings::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

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

/// Options of `portcullis serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = Settings::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Issuer URL, the `iss` of every token.
    #[arg(long, env = "PORTCULLIS_ISSUER", default_value = Settings::DEFAULT_ISSUER)]
    pub issuer: String,

    /// Default audience (`aud`) of access tokens [default: the issuer].
    #[arg(long, env = "PORTCULLIS_AUDIENCE")]
    pub audience: Option<String>,

    /// Further audiences clients may request with an RFC 8707 `resource`
    /// parameter (repeat, or comma-separated in the environment).
    #[arg(long = "resource", env = "PORTCULLIS_RESOURCES", value_delimiter = ',')]
    pub resources: Vec<String>,

    /// Scopes listed in the metadata document (`scopes_supported`).
    #[arg(
        long = "scopes-supported",
        env = "PORTCULLIS_SCOPES_SUPPORTED",
        value_delimiter = ' '
    )]
    pub scopes_supported: Vec<String>,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,

    /// Refresh-token idle lifetime in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_IDLE_TTL", default_value_t = 30 * 86_400)]
    pub refresh_idle_ttl: u64,

    /// Refresh-family absolute lifetime in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_ABSOLUTE_TTL", default_value_t = 90 * 86_400)]
    pub refresh_absolute_ttl: u64,

    /// Seconds during which a retried refresh gets the same answer (0 =
    /// strict: only one request per token succeeds).
    #[arg(long, env = "PORTCULLIS_REFRESH_RETRY_WINDOW", default_value_t = 10)]
    pub refresh_retry_window: u64,

    /// Strict mode only: seconds after a rotation in which another request
    /// with the same token is a lost race (refused, the family lives on)
    /// rather than reuse (the family is revoked). 0: every replay is reuse.
    #[arg(long, env = "PORTCULLIS_REFRESH_RACE_GRACE", default_value_t = 2)]
    pub refresh_race_grace: u64,

    /// Record every refresh in the audit log (sign-ins, revocations, reuse
    /// detections and admin actions are always recorded).
    #[arg(long, env = "PORTCULLIS_AUDIT_REFRESHES")]
    pub audit_refreshes: bool,

    /// Algorithm of signing keys this server creates: ES256, EdDSA or RS256.
    #[arg(long, env = "PORTCULLIS_SIGNING_ALG", default_value = "ES256")]
    pub signing_alg: portcullis_token::keys::Alg,

    /// Password hashing.
    #[command(flatten)]
    pub hashing: HashingArgs,

    /// Milliseconds the token endpoint waits before answering 429 or 503,
    /// which slows a flood that retries at once.
    #[arg(long, env = "PORTCULLIS_REFUSAL_DELAY_MS", default_value_t = 200)]
    pub refusal_delay_ms: u64,

    /// Seconds a new signing key is published before it signs.
    #[arg(long, env = "PORTCULLIS_KEY_PUBLISH_DELAY", default_value_t = 390)]
    pub key_publish_delay: u64,

    /// Create a new signing key every this many seconds (0: only by
    /// `portcullis keys rotate`).
    #[arg(long, env = "PORTCULLIS_KEY_ROTATION_PERIOD", default_value_t = 0)]
    pub key_rotation_period: u64,

    /// Require this bearer credential on the revocation feed (otherwise
    /// the feed is public). Prefer the environment variable.
    #[arg(long, env = "PORTCULLIS_REVOCATION_FEED_SECRET", hide_env_values = true)]
    pub revocation_feed_secret: Option<String>,

    /// Serve plain HTTP on a non-loopback address because a proxy in
    /// front terminates TLS.
    #[arg(long, env = "PORTCULLIS_BEHIND_TLS_PROXY")]
    pub behind_tls_proxy: bool,

    /// Addresses or CIDR blocks of reverse proxies whose `X-Forwarded-For`
    /// names the client (comma-separated), e.g. `10.0.0.0/8`.
    #[arg(long, env = "PORTCULLIS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<crate::proxy::IpBlock>,

    /// Seconds a connection may take to send a request's headers, or stay
    /// idle between requests, before it is closed.
    #[arg(long, env = "PORTCULLIS_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,

    /// Seconds a request may take to send its body (then 408): the whole
    /// body at the token endpoint, between chunks elsewhere.
    #[arg(long, env = "PORTCULLIS_BODY_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
}

/// Password-hashing settings, shared by `serve` and `user create` so that
/// both hash alike.
#[derive(Debug, Args)]
pub struct HashingArgs {
    /// Argon2id memory cost in KiB (at least 19456).
    #[arg(long, env = "PORTCULLIS_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations (at least 2).
    #[arg(long, env = "PORTCULLIS_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id lanes.
    #[arg(long, env = "PORTCULLIS_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,

    /// Password hashes computed at once [default: the number of CPUs].
    #[arg(long, env = "PORTCULLIS_HASH_WORKERS")]
    pub hash_workers: Option<usize>,

    /// Password hashes allowed to wait; beyond, sign-ins get 503.
    #[arg(long, env = "PORTCULLIS_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Sign-ins one client address (IPv6: one /64) may have hashing or
    /// waiting at once; beyond, its sign-ins get 429.
    #[arg(long, env = "PORTCULLIS_HASH_PER_ADDRESS", default_value_t = 8)]
    pub hash_per_address: usize,
}

impl HashingArgs {
    /// The policy these settings describe.
    #[must_use]
    pub fn policy(&self) -> portcullis_token::password::PasswordPolicy {
        let mut p = portcullis_token::password::PasswordPolicy {
            m_cost_kib: self.argon2_memory_kib,
            t_cost: self.argon2_iterations,
            p_cost: self.argon2_parallelism,
            queue: self.hash_queue,
            per_address: self.hash_per_address,
            ..Default::default()
        };
        if let Some(w) = self.hash_workers {
            p.workers = w;
        }
        p
    }
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
    /// Replace a confidential client's secret; the old one stops working
    /// at once. The new secret is shown only this once.
    RotateSecret(ClientId),
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

/// `portcullis keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys.
    List(JsonFlag),
    /// Create a new signing key. It is published at once and signs after
    /// the publication delay; the old key stays published until tokens it
    /// signed have expired.
    Rotate(KeysRotate),
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
    #[arg(long = "grant", value_parser = ["password", "refresh_token"])]
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
    /// Set a user's password (from stdin or a prompt); ends every sign-in.
    SetPassword(UserSetPassword),
    /// End every sign-in of a user (all devices).
    RevokeTokens(UserName),
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
    pub hashing: HashingArgs,
}

/// `portcullis user create`
#[derive(Debug, Args)]
pub struct UserCreate {
    /// The sign-in name.
    pub username: String,
    /// Read the password from standard input (first line) instead of
    /// prompting for it. Passwords are never taken from the command line.
    #[arg(long)]
    pub password_stdin: bool,
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
    pub hashing: HashingArgs,
}
