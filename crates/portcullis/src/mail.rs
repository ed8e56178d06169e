//! Mail: the one-time codes of email verification and password reset,
//! sent over SMTP with `lettre`.
//!
//! `smtp_url` chooses the transport:
//! - `smtps://HOST[:465]`: TLS from the first byte (implicit TLS);
//! - `smtp://HOST[:587]`: STARTTLS, required (a server that does not offer
//!   it is not sent to);
//! - `smtp://HOST:PORT?tls=none`: no TLS at all, for a relay on the same
//!   host or network (a local Postfix, a test sink).
//!
//! A user name and password in the URL (`smtp://USER:PASSWORD@HOST`,
//! percent-encoded) authenticate to the server; they are a secret, masked
//! by `config check` and never logged. The server's certificate is checked
//! against the Mozilla roots (webpki-roots).

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};

/// How long one SMTP conversation may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// How mail is sent: the SMTP server and the sender.
#[derive(Clone)]
pub struct MailSettings {
    url: SecretString,
    from: Mailbox,
    security: Security,
}

/// The transport's security, from the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte.
    Tls,
    /// `smtp://`: STARTTLS, required.
    StartTls,
    /// `smtp://…?tls=none`: plain text.
    None,
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls => "TLS",
            Self::StartTls => "STARTTLS",
            Self::None => "no TLS",
        })
    }
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("url", &crate::settings::redact_url(self.url.expose_secret()))
            .field("from", &self.from.to_string())
            .field("security", &self.security)
            .finish()
    }
}

impl MailSettings {
    /// Checks `smtp_url` and `mail_from`.
    ///
    /// # Errors
    /// A sentence naming what is wrong (never the URL's password).
    pub fn new(smtp_url: &str, mail_from: &str) -> Result<Self, String> {
        let from: Mailbox = mail_from
            .parse()
            .map_err(|e| format!("`mail_from` is not an address (`Name <user@example.com>`): {e}"))?;
        let url = url::Url::parse(smtp_url).map_err(|e| format!("`smtp_url` is not a URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("`smtp_url` names no host".to_owned());
        }
        let mut tls = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), tls) {
                ("tls", None) => tls = Some(v.into_owned()),
                _ => {
                    return Err(format!(
                        "`smtp_url`: unknown or repeated parameter `{k}` (only `tls=none`)"
                    ));
                }
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => Security::Tls,
            ("smtp", None) => Security::StartTls,
            ("smtp", Some("none")) => Security::None,
            ("smtp" | "smtps", Some(other)) => {
                return Err(format!(
                    "`smtp_url`: `tls={other}` is not known (only `smtp://…?tls=none`)"
                ));
            }
            (other, _) => return Err(format!("`smtp_url` must be smtp:// or smtps://, not {other}://")),
        };
        Ok(Self {
            url: smtp_url.into(),
            from,
            security,
        })
    }

    /// The URL with its password masked.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        crate::settings::redact_url(self.url.expose_secret())
    }

    /// The transport's security.
    #[must_use]
    pub fn security(&self) -> Security {
        self.security
    }

    /// The sender.
    #[must_use]
    pub fn from(&self) -> String {
        self.from.to_string()
    }
}

/// A mail could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("mail not sent: {0}")]
pub struct MailError(String);

/// What is mailed.
#[derive(Clone, Copy)]
pub enum Mail<'a> {
    /// A code that confirms the address it is sent to.
    VerifyEmail {
        /// The code.
        code: &'a str,
        /// The account's username.
        username: &'a str,
    },
    /// A code that lets the user set a new password.
    PasswordReset {
        /// The code.
        code: &'a str,
        /// The account's username.
        username: &'a str,
    },
}

/// Sends mail over SMTP.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    issuer: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The transport for `settings`; mails name the server by `issuer`.
    ///
    /// # Errors
    /// When the URL cannot make a transport (no TLS configuration).
    pub fn new(settings: &MailSettings, issuer: &str) -> Result<Self, MailError> {
        let url =
            url::Url::parse(settings.url.expose_secret()).map_err(|_| MailError("`smtp_url` is not a URL".into()))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
        let mut builder = match settings.security {
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
            Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
            Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)),
        }
        .map_err(|e| MailError(format!("cannot set up TLS: {e}")))?;
        if let Some(port) = url.port() {
            builder = builder.port(port);
        } else if settings.security == Security::None {
            builder = builder.port(25);
        }
        if !url.username().is_empty() {
            let decode = |s: &str| percent_decode(s);
            builder = builder.credentials(Credentials::new(
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            ));
        }
        // EHLO names this server by its issuer's host.
        let hello = url::Url::parse(issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned());
        let transport = builder
            .hello_name(ClientId::Domain(hello))
            .timeout(Some(TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from: settings.from.clone(),
            issuer: issuer.to_owned(),
        })
    }

    /// Sends `mail` to `to`.
    ///
    /// # Errors
    /// When the address is refused or the SMTP server cannot be reached or
    /// refuses the mail.
    pub async fn send(&self, to: &str, mail: Mail<'_>) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|_| MailError("the address is not valid".into()))?;
        let (subject, body) = render(&self.issuer, mail);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| MailError(e.to_string()))
    }
}

/// `%XX` sequences decoded (user names and passwords in the URL).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The subject and plain-text body of `mail`, naming the server.
#[must_use]
pub fn render(issuer: &str, mail: Mail<'_>) -> (String, String) {
    match mail {
        // Short lines: plain ASCII text under 78 characters a line goes
        // out as it is (7bit), readable in any client.
        Mail::VerifyEmail { code, username } => (
            format!("Your email verification code for {issuer}"),
            format!(
                "Hello {username},\n\n\
                 Use this code to confirm your email address on\n{issuer}:\n\n    {code}\n\n\
                 It works once, for 15 minutes.\n\
                 If you did not ask for it, ignore this message: nothing changes.\n"
            ),
        ),
        Mail::PasswordReset { code, username } => (
            format!("Your password reset code for {issuer}"),
            format!(
                "Hello {username},\n\n\
                 Someone (we hope you) asked to reset the password of the account\n\
                 {username:?} on {issuer}.\n\
                 Use this code to choose a new password:\n\n    {code}\n\n\
                 It works once, for 15 minutes. Setting a new password signs the\n\
                 account out everywhere. If you did not ask for it, ignore this\n\
                 message: your password has not changed.\n"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_the_security() {
        let from = "Portcullis <auth@example.com>";
        assert_eq!(
            MailSettings::new("smtps://mail.example.com", from)
                .expect("ok")
                .security(),
            Security::Tls
        );
        assert_eq!(
            MailSettings::new("smtp://mail.example.com:587", from)
                .expect("ok")
                .security(),
            Security::StartTls
        );
        assert_eq!(
            MailSettings::new("smtp://127.0.0.1:2525?tls=none", from)
                .expect("ok")
                .security(),
            Security::None
        );
        for bad in [
            "http://mail.example.com",
            "smtp://mail.example.com?tls=maybe",
            "smtp://mail.example.com?x=1",
            "smtp://",
            "not a url",
        ] {
            assert!(MailSettings::new(bad, from).is_err(), "{bad}");
        }
        assert!(MailSettings::new("smtp://mail.example.com", "not an address").is_err());
    }

    #[test]
    fn the_password_is_masked() {
        let s = MailSettings::new("smtps://apikey:s3cr%40t@mail.example.com", "a@example.com").expect("ok");
        assert_eq!(s.redacted_url(), "smtps://apikey:***@mail.example.com");
        assert!(!format!("{s:?}").contains("s3cr"));
        assert_eq!(percent_decode("s3cr%40t"), "s3cr@t");
    }

    #[test]
    fn mails_name_the_server_and_carry_the_code() {
        let (subject, body) = render(
            "https://auth.example.com",
            Mail::PasswordReset {
                code: "ABCD-EFGH",
                username: "alice",
            },
        );
        assert_eq!(subject, "Your password reset code for https://auth.example.com");
        assert!(body.contains("    ABCD-EFGH\n"));
        assert!(body.contains("\"alice\" on https://auth.example.com"));
        assert!(body.lines().all(|l| l.len() < 78), "{body}");
    }
}
