//! Resolving: the loaded configuration checked and turned into the
//! server's settings, secrets read from their files.

use std::path::PathBuf;
use std::time::Duration;

use super::load::Loaded;
use crate::Settings;
use crate::proxy::IpBlock;

impl Loaded {
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

    /// The key-encryption key, when `key_encryption_key_file` is set.
    ///
    /// # Errors
    /// When the file cannot be read or does not hold 32 bytes, raw or
    /// base64.
    pub fn key_encryption_key(&self) -> anyhow::Result<Option<portcullis_token::keys::Kek>> {
        let Some(path) = &self.config.key_encryption_key_file else {
            return Ok(None);
        };
        let kek =
            portcullis_token::keys::Kek::from_file(path).map_err(|e| self.invalid("key_encryption_key_file", e))?;
        // Group-readable is how Kubernetes hands a Secret to a pod's group.
        for (file, mode) in portcullis_store::exposed_files([path.clone()]) {
            if mode & 0o007 != 0 {
                tracing::warn!(file = %file.display(), mode = format!("{mode:o}"),
                    "the key-encryption key file is open to every local account");
            }
        }
        Ok(Some(kek))
    }

    /// The password-hashing policy.
    ///
    /// # Errors
    /// When a count is zero or the minimum length is out of range.
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
        let floor = portcullis_token::password::strength::MIN_LENGTH_FLOOR;
        if !(floor..=64).contains(&c.password_min_length) {
            return Err(self.invalid(
                "password_min_length",
                format!("must be {floor} to 64 (NIST SP 800-63B-4 asks 15 for a password-only account)"),
            ));
        }
        let mut p = portcullis_token::password::PasswordPolicy {
            m_cost_kib: c.argon2_memory_kib,
            t_cost: c.argon2_iterations,
            p_cost: c.argon2_parallelism,
            queue: c.hash_queue,
            per_address: c.hash_per_address,
            min_length: c.password_min_length,
            ..Default::default()
        };
        if let Some(w) = c.hash_workers {
            p.workers = w;
        }
        Ok(p)
    }

    /// How mail is sent: `None` when `smtp_url` is not set.
    ///
    /// # Errors
    /// When the URL or the sender is invalid, or one is set without the
    /// other.
    pub fn mail(&self) -> anyhow::Result<Option<crate::mail::MailSettings>> {
        let c = &self.config;
        let url = self.secret("smtp_url", c.smtp_url.as_ref(), c.smtp_url_file.as_ref())?;
        match (url, &c.mail_from) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.invalid("mail_from", "must be set with `smtp_url` (the sender of mail)")),
            (None, Some(_)) => Err(self.invalid("smtp_url", "must be set with `mail_from` (the SMTP server)")),
            (Some(url), Some(from)) => {
                let key = if c.smtp_url_file.is_some() {
                    "smtp_url_file"
                } else {
                    "smtp_url"
                };
                crate::mail::MailSettings::new(&url, from)
                    .map(Some)
                    .map_err(|why| self.invalid(key, why))
            }
        }
    }

    /// The server's settings.
    ///
    /// # Errors
    /// When a value makes no sense (the message names the key and where it
    /// came from), or a secret file cannot be read.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let c = &self.config;
        let issuer = self.issuer();
        if self.issuer_left_behind() {
            tracing::warn!(
                listen = %c.listen,
                issuer = %issuer,
                "the issuer is left at its default, which is not the listen address: set `issuer` \
                 (--issuer, PORTCULLIS_ISSUER) to the URL clients reach this server at"
            );
        }
        let mut s = Settings::new(c.listen, &self.database_url()?, &issuer);
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
        t.dpop_algorithms = c
            .dpop_algorithms
            .iter()
            .map(|a| dpop_algorithm(a).ok_or_else(|| self.invalid("dpop_algorithms", DPOP_ALGORITHMS)))
            .collect::<Result<_, _>>()?;
        if t.dpop_algorithms.is_empty() {
            return Err(self.invalid("dpop_algorithms", DPOP_ALGORITHMS));
        }
        if !(1..=600).contains(&c.dpop_max_age) {
            return Err(self.invalid("dpop_max_age", "must be 1 to 600 seconds"));
        }
        t.dpop_max_age = Duration::from_secs(c.dpop_max_age);
        t.password = self.password_policy()?;
        t.refusal_delay = Duration::from_millis(c.refusal_delay_ms);
        t.key_publish_delay = Duration::from_secs(c.key_publish_delay);
        t.key_rotation_period = (c.key_rotation_period > 0).then(|| Duration::from_secs(c.key_rotation_period));
        t.key_encryption_key = self.key_encryption_key()?;
        s.strict_permissions = c.strict_permissions;
        s.mail = self.mail()?;
        t.revocation_feed_secret = self
            .secret(
                "revocation_feed_secret",
                c.revocation_feed_secret.as_ref(),
                c.revocation_feed_secret_file.as_ref(),
            )?
            .filter(|x| !x.is_empty());
        if t.revocation_feed_secret.as_deref().is_some_and(|v| !bearer_token(v)) {
            // It could never be presented: refuse it now rather than
            // answer every resource server 400 (the value is not shown).
            let key = if c.revocation_feed_secret_file.is_some() {
                "revocation_feed_secret_file"
            } else {
                "revocation_feed_secret"
            };
            return Err(self.invalid(
                key,
                "must be usable as a bearer token: at most 4096 of A-Z a-z 0-9 - . _ ~ + /, then any `=` \
                 (e.g. `openssl rand -base64 32`)",
            ));
        }
        t.revocation_feed_public = c.revocation_feed_public;
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
}

impl Loaded {
    /// The issuer. When it is left at its default but `listen` is not, the
    /// default (`http://127.0.0.1:8080`) would name another address than
    /// the one served: on a loopback address with a fixed port the issuer
    /// follows the listen address (`https` with built-in TLS); elsewhere
    /// (port 0, a public address behind a proxy) `serve` warns to set it.
    #[must_use]
    pub fn issuer(&self) -> String {
        let c = &self.config;
        let default_listen = Settings::DEFAULT_LISTEN.parse().ok() == Some(c.listen);
        if self.source_of("issuer") != "default" || c.issuer != Settings::DEFAULT_ISSUER || default_listen {
            return c.issuer.clone();
        }
        if c.listen.ip().is_loopback() && c.listen.port() != 0 {
            let scheme = if c.tls.cert.is_some() { "https" } else { "http" };
            return format!("{scheme}://{}", c.listen);
        }
        c.issuer.clone()
    }

    /// Whether the issuer is the default but the listen address is not
    /// one it can follow (port 0, or not loopback).
    fn issuer_left_behind(&self) -> bool {
        let c = &self.config;
        self.source_of("issuer") == "default"
            && Settings::DEFAULT_LISTEN.parse().ok() != Some(c.listen)
            && self.issuer() == Settings::DEFAULT_ISSUER
    }
}

/// What `dpop_algorithms` may list.
const DPOP_ALGORITHMS: &str = "must list some of ES256, ES384, EdDSA, RS256, PS256";

/// A DPoP proof algorithm by its JWA name: asymmetric ones only.
fn dpop_algorithm(name: &str) -> Option<portcullis_verify::Algorithm> {
    use portcullis_verify::Algorithm as A;
    match name {
        "ES256" => Some(A::ES256),
        "ES384" => Some(A::ES384),
        "EdDSA" => Some(A::EdDSA),
        "RS256" => Some(A::RS256),
        "PS256" => Some(A::PS256),
        _ => None,
    }
}

/// RFC 6750 §2.1 `b64token`, as `portcullis_verify::bearer_token` accepts it.
fn bearer_token(v: &str) -> bool {
    let body = v.trim_end_matches('=');
    v.len() <= 4096
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}
