//! Finding the bearer token in a request (RFC 6750 §2.1).

use crate::VerifyError;

/// Longest accepted token (RFC 6750 §3.1: longer is a malformed request,
/// 400). Portcullis tokens are well under 2 KiB; the cap
/// bounds the work a hostile header can cause.
pub(crate) const MAX_TOKEN_LEN: usize = 4 * 1024;

/// How a request presents its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Bearer,
    /// `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449
    /// §7.1).
    Dpop,
}

/// The bearer token from the `Authorization` header values of a request.
///
/// `query` is the request's query string: a token there (`access_token=`)
/// is refused, since URLs end up in logs and caches (RFC 6750 §2.3 says
/// SHOULD NOT; this crate does not accept it at all).
///
/// # Errors
/// [`VerifyError::Missing`] without an `Authorization` header;
/// [`VerifyError::InvalidRequest`] for two `Authorization` headers, a token
/// in the query string, another scheme (`Basic …`: credentials this
/// resource does not take, RFC 6750 §3.1; `DPoP …` too), or a value that is
/// not `Bearer <b64token>`.
pub fn bearer_token<'a>(
    authorization: impl Iterator<Item = &'a [u8]>,
    query: Option<&str>,
) -> Result<&'a str, VerifyError> {
    match access_token(authorization, query)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(VerifyError::InvalidRequest("only Bearer authorization is accepted")),
    }
}

/// The access token and its scheme (`Bearer` or `DPoP`) from the
/// `Authorization` header values of a request; as [`bearer_token`]
/// otherwise.
///
/// # Errors
/// As [`bearer_token`], with `DPoP` accepted.
pub fn access_token<'a>(
    mut authorization: impl Iterator<Item = &'a [u8]>,
    query: Option<&str>,
) -> Result<(Scheme, &'a str), VerifyError> {
    if query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "access_token" || p.starts_with("access_token="))
    }) {
        return Err(VerifyError::InvalidRequest(
            "tokens in the query string are not accepted",
        ));
    }
    let Some(value) = authorization.next() else {
        return Err(VerifyError::Missing);
    };
    if authorization.next().is_some() {
        return Err(VerifyError::InvalidRequest("more than one Authorization header"));
    }
    let value =
        std::str::from_utf8(value).map_err(|_| VerifyError::InvalidRequest("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        // Another scheme (e.g. Basic): credentials of a kind this resource
        // does not take, a malformed request (RFC 6750 §3.1), not a
        // request that merely lacks them.
        return Err(VerifyError::InvalidRequest("only Bearer authorization is accepted"));
    };
    let token = token.trim_matches(' ');
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || !is_b64token(token) {
        return Err(VerifyError::InvalidRequest("malformed bearer token"));
    }
    Ok((scheme, token))
}

/// The one `DPoP` proof header of a request sent with the `DPoP` scheme
/// (RFC 9449 §4.3 (1): exactly one).
///
/// # Errors
/// [`VerifyError::InvalidDpopProof`] for none, several, or one that is not
/// visible ASCII.
pub fn dpop_proof<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Result<&'a str, VerifyError> {
    let (Some(proof), None) = (values.next(), values.next()) else {
        return Err(VerifyError::InvalidDpopProof("exactly one DPoP header is required"));
    };
    std::str::from_utf8(proof)
        .ok()
        .filter(|p| p.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(VerifyError::InvalidDpopProof("malformed"))
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> std::iter::Once<&[u8]> {
        std::iter::once(v.as_bytes())
    }

    #[test]
    fn a_bearer_token_is_found() {
        assert_eq!(bearer_token(one("Bearer abc.def.ghi"), None), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(one("bearer abc"), Some("x=1")), Ok("abc"));
    }

    #[test]
    fn an_absent_header_is_missing() {
        assert_eq!(bearer_token(std::iter::empty(), None), Err(VerifyError::Missing));
    }

    #[test]
    fn other_schemes_are_invalid_requests() {
        for other in ["Basic YTpi", "Digest username=\"a\"", "DPoP abc", "Bearerabc"] {
            assert_eq!(
                bearer_token(one(other), None),
                Err(VerifyError::InvalidRequest("only Bearer authorization is accepted")),
                "{other:?}"
            );
        }
    }

    #[test]
    fn malformed_requests_are_invalid_requests() {
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ===",
            "Bearer tok\u{e9}n",
        ] {
            assert!(
                matches!(bearer_token(one(bad), None), Err(VerifyError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            bearer_token(one("Bearer abc"), Some("access_token=abc")),
            Err(VerifyError::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer_token(std::iter::empty(), Some("a=1&access_token=x")),
            Err(VerifyError::InvalidRequest(_))
        ));
        let two = [&b"Bearer a"[..], b"Bearer b"];
        assert!(matches!(
            bearer_token(two.into_iter(), None),
            Err(VerifyError::InvalidRequest(_))
        ));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert!(matches!(
            bearer_token(one(&long), None),
            Err(VerifyError::InvalidRequest(_))
        ));
    }
}
