//! The refresh cookie: its name, reading it, setting and clearing it.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::TokenService;

/// The refresh cookie's name over TLS.
pub const COOKIE: &str = "__Host-portcullis-refresh";
/// The refresh cookie's name when `web_insecure_cookies` is set
/// (development over plain HTTP on loopback): without `Secure` the
/// `__Host-` prefix is not allowed.
pub const COOKIE_INSECURE: &str = "portcullis-refresh";

/// The refresh cookie's value in the request, if it has a non-empty one.
pub(super) fn read(svc: &TokenService, headers: &HeaderMap) -> Option<String> {
    let name = name(svc);
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

fn name(svc: &TokenService) -> &'static str {
    if svc.config().web_insecure_cookies {
        COOKIE_INSECURE
    } else {
        COOKIE
    }
}

/// `Set-Cookie` for a refresh token (`None`: clear the cookie).
pub(super) fn set(svc: &TokenService, token: Option<&str>) -> HeaderValue {
    let (value, max_age) = match token {
        Some(t) => (t, svc.config().refresh_idle_ttl.as_secs()),
        None => ("", 0),
    };
    let cookie = if svc.config().web_insecure_cookies {
        // Development only (loopback, refused elsewhere): no `Secure`, so
        // no prefix; the path keeps it to these endpoints.
        format!("{COOKIE_INSECURE}={value}; Path=/web/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    } else {
        // `__Host-` requires `Secure`, `Path=/` and no `Domain`: only this
        // host can set or overwrite it, which blocks a sibling subdomain
        // from planting its own refresh token (cookie tossing). A narrower
        // path would not be a security boundary anyway (RFC 6265 §8.5).
        format!("{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    };
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}
