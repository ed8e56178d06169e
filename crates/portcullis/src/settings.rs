//! Server settings.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use portcullis_token::TokenConfig;
use secrecy::{ExposeSecret as _, SecretString};

/// Everything `portcullis serve` needs to start.
#[derive(Clone)]
pub struct Settings {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Database URL; may hold a password, so it is kept secret.
    pub database_url: SecretString,
    /// The token endpoint's settings (issuer, lifetimes, keys, policies).
    pub token: TokenConfig,
    /// Serve plain HTTP on a non-loopback address, because a proxy in front
    /// terminates TLS. Without it such an address is refused (RFC 6749
    /// §3.2: the token endpoint requires TLS).
    pub behind_tls_proxy: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for
    /// throttling and the per-address sign-in limit); empty: the TCP peer
    /// is the client.
    pub trusted_proxies: Vec<crate::proxy::IpBlock>,
    /// How long a connection may take to send a request's headers, and
    /// how long it may stay idle between requests (default 10 s). Cuts
    /// slow-loris connections that trickle their headers.
    pub header_timeout: Duration,
    /// How long a request may take to send its body (default 10 s); past
    /// it the answer is 408.
    pub body_timeout: Duration,
    /// How long shutdown waits for requests in flight (default 10 s).
    pub shutdown_grace: Duration,
    /// Serve the sign-in demo page at `/demo/`, signing in with this
    /// browser client (default: off).
    pub demo_client_id: Option<String>,
    /// Serve the admin console at `/admin/`, signing in with this client
    /// (default: on, client `portcullis-admin`).
    pub admin_console_client_id: Option<String>,
    /// Serve HTTPS with this certificate instead of plain HTTP (default
    /// none). With it any listen address is allowed.
    pub tls: Option<TlsSettings>,
    /// Refuse to start when the SQLite database files are readable or
    /// writable by group or others (default: warn and start).
    pub strict_permissions: bool,
    /// How mail (password reset and email verification codes) is sent;
    /// `None`: those answer 501 `mail_not_configured`.
    pub mail: Option<crate::mail::MailSettings>,
}

/// The built-in TLS listener's certificate and key, reloaded on SIGHUP and
/// when either file changes.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key: PKCS#8, SEC1 (EC) or PKCS#1 (RSA).
    pub key: PathBuf,
    /// How often both files are checked for changes (default 5 s).
    pub reload_interval: Duration,
}

impl TlsSettings {
    /// The default interval between checks of the certificate files.
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

    /// The certificate at `cert` with its key at `key`, checked for
    /// changes every [`Self::DEFAULT_RELOAD_INTERVAL`].
    #[must_use]
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            reload_interval: Self::DEFAULT_RELOAD_INTERVAL,
        }
    }
}

impl Settings {
    /// The default listen address.
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8080";
    /// The default database: a SQLite file in the working directory.
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://portcullis.db";
    /// The default issuer.
    pub const DEFAULT_ISSUER: &'static str = "http://127.0.0.1:8080";

    /// Settings with the token defaults for `issuer`.
    #[must_use]
    pub fn new(listen: SocketAddr, database_url: &str, issuer: &str) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            token: TokenConfig::new(issuer),
            behind_tls_proxy: false,
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            demo_client_id: None,
            admin_console_client_id: Some("portcullis-admin".to_owned()),
            tls: None,
            strict_permissions: false,
            mail: None,
        }
    }

    /// The database URL, for opening the store.
    #[must_use]
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(self.database_url()))
            .field("issuer", &self.token.issuer)
            .field("audience", &self.token.audience)
            .field("signing_alg", &self.token.signing_alg)
            .field("tls", &self.tls)
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

/// The URL with any password replaced, fit for logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (url, query) = url.split_once('?').map_or((url, None), |(u, q)| (u, Some(q)));
    let base = redact_userinfo(url);
    match query {
        None => base,
        Some(q) => {
            let q: Vec<String> = q
                .split('&')
                .map(|p| {
                    if p.to_ascii_lowercase().starts_with("password=") {
                        "password=***".to_owned()
                    } else {
                        p.to_owned()
                    }
                })
                .collect();
            format!("{base}?{}", q.join("&"))
        }
    }
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    match authority.rsplit_once('@') {
        // A user without a password (`postgres://postgres@db/…`) hides
        // nothing: shown as written, not as if a password were there.
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            match path {
                Some(p) => format!("{scheme}://{user}:***@{host}/{p}"),
                None => format!("{scheme}://{user}:***@{host}"),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/auth"),
            "postgres://app:***@db:5432/auth"
        );
        assert_eq!(redact_url("postgres://app@db/auth"), "postgres://app@db/auth");
        assert_eq!(redact_url("postgres://app:@db/auth"), "postgres://app:***@db/auth");
        assert_eq!(redact_url("postgres://app:pw@db"), "postgres://app:***@db");
        assert_eq!(redact_url("sqlite://portcullis.db"), "sqlite://portcullis.db");
        assert_eq!(
            redact_url("postgres://db/auth?user=app&password=hunter2&sslmode=require"),
            "postgres://db/auth?user=app&password=***&sslmode=require"
        );
        let s = Settings::new(
            "127.0.0.1:0".parse().expect("addr"),
            "postgres://app:hunter2@db/auth",
            "http://x",
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
