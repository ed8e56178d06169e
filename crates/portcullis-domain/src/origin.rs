//! Browser origins (RFC 6454) registered for web clients.

use std::fmt;

/// A browser origin as the `Origin` header carries it: `scheme://host[:port]`
/// in lower case, without the scheme's default port. `http` only for
/// loopback hosts (development); anything else needs TLS, for the cookie's
/// sake (`Secure`) and the password's.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct WebOrigin(String);

/// Why a text is not an acceptable web origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrigin {
    /// No `://`.
    #[error("expected scheme://host[:port]")]
    Shape,
    /// A path, query, fragment, user or space.
    #[error("an origin is scheme://host[:port], with no path, query or user")]
    Extra,
    /// The port is not a number up to 65535.
    #[error("bad port")]
    Port,
    /// `http` for a host that is not loopback.
    #[error("plain http is only for loopback (development); use https")]
    PlainHttp,
    /// Neither `https` nor loopback `http`.
    #[error("the scheme must be https")]
    Scheme,
}

impl WebOrigin {
    /// Parses an origin typed by an admin (a trailing `/` and upper case
    /// are forgiven).
    ///
    /// # Errors
    /// [`InvalidOrigin`] says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, InvalidOrigin> {
        let o = raw.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, authority) = o.split_once("://").ok_or(InvalidOrigin::Shape)?;
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(InvalidOrigin::Extra);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None),
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| InvalidOrigin::Port)?)),
            None => (authority, None),
        };
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let default_port = match scheme {
            "https" => 443,
            "http" if loopback => 80,
            "http" => return Err(InvalidOrigin::PlainHttp),
            _ => return Err(InvalidOrigin::Scheme),
        };
        Ok(Self(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }
}

crate::text_value!(WebOrigin);

/// The origins of a browser client, in registration order without repeats;
/// empty for every other client. Stored space-delimited, shown as a JSON
/// array.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct WebOrigins(Vec<WebOrigin>);

impl WebOrigins {
    /// Parses a space-delimited list (the stored form).
    ///
    /// # Errors
    /// [`InvalidOrigin`] for the first bad origin.
    pub fn parse(text: &str) -> Result<Self, InvalidOrigin> {
        text.split(' ')
            .filter(|o| !o.is_empty())
            .map(WebOrigin::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from_iter)
    }

    /// Whether `origin` (an `Origin` header's value) is one of these.
    #[must_use]
    pub fn contains(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o.as_str() == origin)
    }

    /// Whether there are none (the client is not a browser client).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The origins.
    pub fn iter(&self) -> impl Iterator<Item = &WebOrigin> {
        self.0.iter()
    }
}

impl FromIterator<WebOrigin> for WebOrigins {
    fn from_iter<I: IntoIterator<Item = WebOrigin>>(iter: I) -> Self {
        let mut v: Vec<WebOrigin> = Vec::new();
        for o in iter {
            if !v.contains(&o) {
                v.push(o);
            }
        }
        Self(v)
    }
}

impl fmt::Display for WebOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(WebOrigin::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for WebOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebOrigins({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        let ok = [
            ("https://App.Example/", "https://app.example"),
            ("https://app.example:443", "https://app.example"),
            ("https://app.example:8443", "https://app.example:8443"),
            ("http://localhost:5173", "http://localhost:5173"),
            ("http://127.0.0.1", "http://127.0.0.1"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("http://localhost:80", "http://localhost"),
            ("http://app.localhost:5173", "http://app.localhost:5173"),
        ];
        for (raw, want) in ok {
            assert_eq!(WebOrigin::parse(raw).expect(raw).as_str(), want);
        }
    }

    #[test]
    fn bad_origins_say_why() {
        let bad = [
            ("app.example", InvalidOrigin::Shape),
            ("https://app.example/path", InvalidOrigin::Extra),
            ("https://u@app.example", InvalidOrigin::Extra),
            ("https://app.example:99999", InvalidOrigin::Port),
            ("http://app.example", InvalidOrigin::PlainHttp),
            ("ftp://app.example", InvalidOrigin::Scheme),
            ("http://10.0.0.1", InvalidOrigin::PlainHttp),
            ("https://app.example?x=1", InvalidOrigin::Extra),
            ("https://", InvalidOrigin::Shape),
            ("null", InvalidOrigin::Shape),
        ];
        for (raw, want) in bad {
            assert_eq!(WebOrigin::parse(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn origin_lists_drop_repeats_and_read_back() {
        let o = WebOrigins::parse("https://a.example https://b.example https://a.example").expect("valid");
        assert_eq!(o.to_string(), "https://a.example https://b.example");
        assert!(o.contains("https://b.example"));
        assert!(!o.contains(""));
        assert_eq!(
            serde_json::to_string(&o).expect("json"),
            r#"["https://a.example","https://b.example"]"#
        );
    }
}
