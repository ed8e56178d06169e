//! Request bodies and the client's Authorization header, built once per run
//! (or once per virtual client) so the hot loop only appends a token.

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use hyper::header::HeaderValue;
use secrecy::ExposeSecret;

use crate::{ClientAuth, Config, LoadError, expand_username};

/// Appends `s` to `out`, `application/x-www-form-urlencoded` (WHATWG): space
/// as `+`, everything but `*-._` and alphanumerics percent-encoded.
pub(crate) fn urlencode_into(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

fn param(out: &mut Vec<u8>, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(b'&');
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    urlencode_into(value, out);
}

/// The pre-built parts of every request.
pub(crate) struct Forms {
    /// `Basic …` when the client authenticates with HTTP Basic.
    pub(crate) authorization: Option<HeaderValue>,
    /// Scope and client parameters, shared by both grants (may be empty).
    common: Vec<u8>,
    /// `grant_type=refresh_token&<common>&refresh_token=`.
    refresh_prefix: Vec<u8>,
    username: String,
    users: usize,
    password: String,
}

impl Forms {
    pub(crate) fn new(config: &Config) -> Result<Self, LoadError> {
        let mut common = Vec::new();
        if let Some(scope) = &config.scope {
            param(&mut common, "scope", scope);
        }
        let mut authorization = None;
        if let Some(id) = &config.client_id {
            match (&config.client_secret, config.client_auth) {
                (Some(secret), ClientAuth::Basic) => {
                    // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
                    let mut pair = Vec::new();
                    urlencode_into(id, &mut pair);
                    pair.push(b':');
                    urlencode_into(secret.expose_secret(), &mut pair);
                    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                        .map_err(|_| LoadError::Credentials)?;
                    value.set_sensitive(true);
                    authorization = Some(value);
                }
                (Some(secret), ClientAuth::Post) => {
                    param(&mut common, "client_id", id);
                    param(&mut common, "client_secret", secret.expose_secret());
                }
                // A public client identifies itself in the body.
                (None, _) => param(&mut common, "client_id", id),
            }
        }
        let mut refresh_prefix = b"grant_type=refresh_token".to_vec();
        if !common.is_empty() {
            refresh_prefix.push(b'&');
            refresh_prefix.extend_from_slice(&common);
        }
        refresh_prefix.extend_from_slice(b"&refresh_token=");
        Ok(Self {
            authorization,
            common,
            refresh_prefix,
            username: config.username.clone(),
            users: config.users,
            password: config.password.expose_secret().to_owned(),
        })
    }

    /// The password-grant body of virtual client `index`, built once per client.
    pub(crate) fn password_body(&self, index: usize) -> Bytes {
        let mut out = b"grant_type=password".to_vec();
        param(
            &mut out,
            "username",
            &expand_username(&self.username, index, self.users),
        );
        param(&mut out, "password", &self.password);
        if !self.common.is_empty() {
            out.push(b'&');
            out.extend_from_slice(&self.common);
        }
        Bytes::from(out)
    }

    /// The refresh-grant body presenting `token`.
    pub(crate) fn refresh_body(&self, token: &str) -> Bytes {
        let mut out = Vec::with_capacity(self.refresh_prefix.len() + token.len() + 16);
        out.extend_from_slice(&self.refresh_prefix);
        urlencode_into(token, &mut out);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Mode;

    fn config(secret: Option<&str>, auth: ClientAuth) -> Config {
        Config {
            url: "http://127.0.0.1:3000/token".into(),
            client_id: Some("my app".into()),
            client_secret: secret.map(Into::into),
            client_auth: auth,
            scope: Some("openid profile".into()),
            username: "u{i}".into(),
            users: 2,
            password: "correct horse&battery=staple".into(),
            mode: Mode::Refresh,
            clients: 4,
            password_clients: None,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            max_rps: None,
            timeout: Duration::from_secs(1),
            threads: 1,
            dpop: false,
            server_pid: None,
        }
    }

    fn text(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn basic_client_credentials_are_form_encoded_then_base64() {
        let forms = Forms::new(&config(Some("s3:cret"), ClientAuth::Basic)).unwrap();
        let expected = format!("Basic {}", STANDARD.encode("my+app:s3%3Acret"));
        assert_eq!(forms.authorization.as_ref().unwrap(), expected.as_str());
        assert_eq!(
            text(&forms.password_body(3)),
            "grant_type=password&username=u1&password=correct+horse%26battery%3Dstaple&scope=openid+profile"
        );
        assert_eq!(
            text(&forms.refresh_body("a/b+c")),
            "grant_type=refresh_token&scope=openid+profile&refresh_token=a%2Fb%2Bc"
        );
    }

    #[test]
    fn post_and_public_clients_put_their_id_in_the_body() {
        let post = Forms::new(&config(Some("x"), ClientAuth::Post)).unwrap();
        assert!(post.authorization.is_none());
        assert_eq!(
            text(&post.refresh_body("t")),
            "grant_type=refresh_token&scope=openid+profile&client_id=my+app&client_secret=x&refresh_token=t"
        );
        let public = Forms::new(&config(None, ClientAuth::Basic)).unwrap();
        assert!(public.authorization.is_none());
        assert!(text(&public.password_body(0)).ends_with("&scope=openid+profile&client_id=my+app"));
    }
}
