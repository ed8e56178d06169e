//! Strict `application/x-www-form-urlencoded` parsing for the token
//! endpoint (RFC 6749 §3.2, Appendix B).
//!
//! Stricter than general-purpose parsers on purpose: a malformed percent
//! escape or invalid UTF-8 is an error rather than a replacement character,
//! a repeated parameter is an error (§3.2: "Request and response parameters
//! MUST NOT be included more than once"), and a parameter sent without a
//! value is treated as omitted (§3.1).

use std::collections::HashMap;

/// The most parameters a token request may carry. A real one has fewer than
/// ten; the cap bounds the work a hostile body can cause.
pub(crate) const MAX_PARAMS: usize = 64;

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Bad percent-encoding, invalid UTF-8 or a NUL byte.
    #[error("the request body is not valid form encoding")]
    Malformed,
    /// A parameter appears more than once.
    #[error("a parameter is repeated")]
    Repeated,
    /// More parameters than any token request needs.
    #[error("too many parameters")]
    TooMany,
}

/// The parameters of a form body.
#[derive(Default)]
pub struct Form {
    params: HashMap<String, String>,
}

impl std::fmt::Debug for Form {
    // Values include passwords, secrets and refresh tokens: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.params.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Form").field("names", &names).finish_non_exhaustive()
    }
}

impl Form {
    /// Parses a form body.
    ///
    /// # Errors
    /// See [`FormError`].
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let mut params = HashMap::new();
        let mut seen = 0usize;
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            seen += 1;
            if seen > MAX_PARAMS {
                return Err(FormError::TooMany);
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if params.contains_key(&name) {
                return Err(FormError::Repeated);
            }
            params.insert(name, value);
        }
        Ok(Self { params })
    }

    /// Takes a parameter's value out of the form, without copying it; an
    /// empty value counts as absent.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.params.remove(name).filter(|v| !v.is_empty())
    }

    /// A parameter's value; an empty value counts as absent.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte, and the result
/// must be UTF-8 without NUL (no OAuth parameter has one, RFC 6749
/// Appendix A, and PostgreSQL cannot compare text with one: a lookup would
/// fail as a database error).
pub(crate) fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|b| hex(*b)).ok_or(FormError::Malformed)?;
                let lo = raw.get(i + 2).and_then(|b| hex(*b)).ok_or(FormError::Malformed)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    if out.contains(&0) {
        return Err(FormError::Malformed);
    }
    String::from_utf8(out).map_err(|_| FormError::Malformed)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded() {
        let f = Form::parse(b"grant_type=password&username=al%20ice&password=p%2Bw+d%26&scope=").expect("form");
        assert_eq!(f.get("grant_type"), Some("password"));
        assert_eq!(f.get("username"), Some("al ice"));
        assert_eq!(f.get("password"), Some("p+w d&"));
        assert_eq!(f.get("scope"), None, "empty means omitted");
        assert_eq!(f.get("missing"), None);
        assert_eq!(Form::parse("x=%C3%A9".as_bytes()).expect("utf8").get("x"), Some("é"));
    }

    #[test]
    fn debug_shows_names_only() {
        let f = Form::parse(b"password=hunter2&client_secret=s3cret").expect("form");
        let shown = format!("{f:?}");
        assert!(
            shown.contains("password") && !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(Form::parse(b"a=1&a=2").expect_err("repeat"), FormError::Repeated);
        assert_eq!(Form::parse(b"a=1&a=").expect_err("repeat empty"), FormError::Repeated);
    }

    #[test]
    fn bad_encoding_is_refused() {
        for bad in [
            &b"a=%"[..],
            b"a=%4",
            b"a=%zz",
            b"a=%FF",
            b"a=\xff",
            b"%C3=1",
            b"a=b%00c",
            b"a%00=1",
        ] {
            assert_eq!(Form::parse(bad).expect_err("bad"), FormError::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let body = (0..65).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&");
        assert_eq!(Form::parse(body.as_bytes()).expect_err("many"), FormError::TooMany);
    }
}
