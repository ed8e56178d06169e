//! The refresh cookies: one per web client, its name, reading it, setting
//! and clearing it.
//!
//! Each client has its own cookie, named after its id, so two apps served
//! by one Portcullis never overwrite each other's sign-in, and a page of
//! one app cannot make the server read (or clear) another app's cookie.

use axum::http::{HeaderMap, HeaderValue, header};
use portcullis_domain::ClientId;

use crate::TokenService;

/// The start of a refresh cookie's name over TLS; the client id follows.
pub const COOKIE_PREFIX: &str = "__Host-portcullis-refresh-";
/// The start of the name when `web_insecure_cookies` is set (development
/// over plain HTTP on loopback): without `Secure` the `__Host-` prefix is
/// not allowed.
pub const COOKIE_INSECURE_PREFIX: &str = "portcullis-refresh-";

/// The name of `client`'s refresh cookie over TLS:
/// `__Host-portcullis-refresh-<client_id>`. Client ids are made of
/// `A-Z a-z 0-9 - _ .`, all allowed in a cookie name, and the name is
/// the id itself, so no two clients share a cookie.
#[must_use]
pub fn cookie_name(client: &ClientId) -> String {
    format!("{COOKIE_PREFIX}{client}")
}

fn name(svc: &TokenService, client: &ClientId) -> String {
    if svc.config().web_insecure_cookies {
        format!("{COOKIE_INSECURE_PREFIX}{client}")
    } else {
        cookie_name(client)
    }
}

/// The value of `client`'s refresh cookie in the request, if it has a
/// non-empty one. Other clients' cookies are not looked at.
pub(super) fn read(svc: &TokenService, client: &ClientId, headers: &HeaderMap) -> Option<String> {
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
pub(super) fn set(svc: &TokenService, client: &ClientId, token: Option<&str>) -> HeaderValue {
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
        let id = |s| ClientId::parse(s).expect("client id");
        assert_eq!(cookie_name(&id("spa")), "__Host-portcullis-refresh-spa");
        assert_ne!(cookie_name(&id("spa")), cookie_name(&id("Spa")));
        assert_ne!(cookie_name(&id("a.b")), cookie_name(&id("a-b")));
    }
}
