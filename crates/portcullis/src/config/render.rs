//! Rendering: the effective configuration for `config check`, secrets
//! masked, each value with its source.

use super::keys::keys;
use super::load::Loaded;
use crate::Settings;

impl Loaded {
    /// The effective configuration as TOML, secrets masked, each key with
    /// where its value came from.
    #[must_use]
    pub fn render(&self) -> String {
        let mut c = self.config.clone();
        let issuer = self.issuer();
        let derived = issuer != c.issuer;
        c.issuer = issuer;
        if c.database_url_file.is_none() {
            let url = c.database_url.as_deref().unwrap_or(Settings::DEFAULT_DATABASE_URL);
            c.database_url = Some(crate::settings::redact_url(url));
        }
        if let Some(url) = &c.smtp_url {
            c.smtp_url = Some(crate::settings::redact_url(url));
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
                let source = if derived && key == "issuer" {
                    format!("the listen address ({})", self.source_of("listen"))
                } else {
                    self.source_of(&key)
                };
                out.push_str(&format!("{line}  # {source}"));
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
        // One blank line before the list (an empty `[tls]` left one).
        while out.ends_with("\n\n") {
            out.pop();
        }
        out.push_str(&format!("\n# {}\n", self.mail_status()));
        if !unset.is_empty() {
            out.push_str("\n# not set:\n");
            for k in unset {
                out.push_str(&format!("# {k}\n"));
            }
        }
        out
    }

    /// One line on mail: on (how) or off (why, and what it means).
    fn mail_status(&self) -> String {
        match self.mail() {
            Ok(Some(m)) => format!(
                "mail: on, via {} ({}), from {}",
                m.redacted_url(),
                m.security(),
                m.from()
            ),
            Ok(None) => "mail: off (`smtp_url` and `mail_from` are not set): password reset and email \
                         verification answer 501 mail_not_configured"
                .to_owned(),
            Err(e) => format!("mail: off ({e})"),
        }
    }
}
