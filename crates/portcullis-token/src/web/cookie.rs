//! The refresh cookies: one per web client, its name, reading it, setting
//! and clearing it.
//!
//! Each client has its own cookie, named after its id, so two apps served
//! by one Portcullis never overwrite each other's sign-in, and a page of
//! one app cannot make the server read (or clear) another app's cookie.

use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::TokenService;

/// The start of a refresh cookie's name over TLS; the client id follows.
pub const COOKIE_PREFIX: &str = "__Host-portcullis-refresh-";
/// The start of the name when `web_insecure_cookies` is set (development
/// over plain HTTP on loopback): without `Secure` the `__Host-` prefix is
/// not allowed.
pub const COOKIE_INSECURE_PREFIX: &str = "portcullis-refresh-";

/// The name of the refresh cookie of the client `client_id` over TLS:
/// `__Host-portcullis-refresh-<client_id>`. Client ids are made of
/// `A-Z a-z 0-9 - _ .` (all allowed in a cookie name) and appear as they
/// are; any other byte (in an id registered before that rule) is written
/// `~XX` in hex. `~` is in no id, so no two clients share a name.
#[must_use]
pub fn cookie_name(client_id: &str) -> String {
    with_prefix(COOKIE_PREFIX, client_id)
}

fn with_prefix(prefix: &str, client_id: &str) -> String {
    let mut name = String::from(prefix);
    for b in client_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "~{b:02X}");
        }
    }
    name
}

fn name(svc: &TokenService, client_id: &str) -> String {
    if svc.config().web_insecure_cookies {
        with_prefix(COOKIE_INSECURE_PREFIX, client_id)
    } else {
        cookie_name(client_id)
    }
}

/// The value of `client`'s refresh cookie in the request, if it has a
/// non-empty one. Other clients' cookies are not looked at.
pub(super) fn read(svc: &TokenService, client: &str, headers: &HeaderMap) -> Option<String> {
    let name = name(svc, client);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` of `client`'s refresh token (`None`: clear the cookie).
pub(super) fn set(svc: &TokenService, client: &str, token: Option<&str>) -> HeaderValue {
    let (value, max_age) = match token {
        Some(t) => (t, svc.config().refresh_idle_ttl.as_secs()),
        None => ("", 0),
    };
    let name = name(svc, client);
    let cookie = if svc.config().web_insecure_cookies {
        // Development only (loopback, refused elsewhere): no `Secure`, so
        // no prefix; the path keeps it to these endpoints.
        format!("{name}={value}; Path=/web/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    } else {
        // `__Host-` requires `Secure`, `Path=/` and no `Domain`: only this
        // host can set or overwrite it, which blocks a sibling subdomain
        // from planting its own refresh token (cookie tossing). A narrower
        // path would not be a security boundary anyway (RFC 6265 §8.5).
        format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    };
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_has_a_cookie_of_its_own() {
        assert_eq!(cookie_name("spa"), "__Host-portcullis-refresh-spa");
        assert_eq!(cookie_name("my-app_1.x"), "__Host-portcullis-refresh-my-app_1.x");
        assert_ne!(cookie_name("spa"), cookie_name("Spa"));
        assert_ne!(cookie_name("a.b"), cookie_name("a-b"));
        // Ids from before the alphabet rule still give a valid, distinct name.
        assert_eq!(cookie_name("a b;c"), "__Host-portcullis-refresh-a~20b~3Bc");
        assert_ne!(cookie_name("a~20b"), cookie_name("a b"));
    }
}
