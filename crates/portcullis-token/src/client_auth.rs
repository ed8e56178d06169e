//! Client authentication at the token endpoint (RFC 6749 §2.3).
//!
//! Methods: `client_secret_basic` (HTTP Basic, whose user and password are
//! form-urlencoded per §2.3.1 and decoded here), `client_secret_post`
//! (`client_id` and `client_secret` in the body) and `none` for public
//! clients (`client_id` only). Using two methods at once is an
//! `invalid_request` (§2.3: "MUST NOT use more than one authentication
//! method in each request").

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_store::{Client, ClientStatus, Store, StoreError};

use crate::GrantError;
use crate::form::{Form, decode};
use crate::secret;

/// Longest accepted `client_id` or `client_secret`.
const MAX_CREDENTIAL: usize = 256;

/// Credentials as presented, not yet checked against the store. No
/// `Debug`: it holds the secret.
pub struct Presented {
    id: String,
    secret: Option<String>,
    basic: bool,
}

impl Presented {
    /// The `client_id`.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client secret; `None` for a public client.
    #[must_use]
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// Whether the credentials came from the `Authorization: Basic` header.
    #[must_use]
    pub fn is_basic(&self) -> bool {
        self.basic
    }
}

/// Reads the client credentials from the `Authorization` header and the
/// body. Public so that the parsing can be tested from outside the crate.
///
/// # Errors
/// [`GrantError::InvalidClient`] for a malformed `Authorization` header, no
/// `client_id`, or an overlong credential; [`GrantError::InvalidRequest`]
/// when the header and the body both carry credentials.
pub fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented, GrantError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(parse_basic(value.as_bytes()).ok_or(GrantError::InvalidClient { basic: true })?),
    };
    let (form_id, form_secret) = (form.get("client_id"), form.get("client_secret"));
    let p = match basic {
        Some((id, secret)) => {
            if form_secret.is_some() || form_id.is_some_and(|f| f != id) {
                return Err(GrantError::InvalidRequest("more than one client authentication method"));
            }
            Presented {
                id,
                secret,
                basic: true,
            }
        }
        None => {
            let id = form_id.ok_or(GrantError::InvalidClient { basic: false })?;
            Presented {
                id: id.to_owned(),
                secret: form_secret.map(str::to_owned),
                basic: false,
            }
        }
    };
    if p.id.len() > MAX_CREDENTIAL || p.secret.as_ref().is_some_and(|s| s.len() > MAX_CREDENTIAL) {
        return Err(GrantError::InvalidClient { basic: p.basic });
    }
    Ok(p)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`; an empty secret
/// counts as none (public clients).
fn parse_basic(value: &[u8]) -> Option<(String, Option<String>)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let id = decode(&raw[..colon]).ok()?;
    let secret = decode(&raw[colon + 1..]).ok()?;
    if id.is_empty() {
        return None;
    }
    Some((id, (!secret.is_empty()).then_some(secret)))
}

/// Checks the presented credentials against the registered client.
/// `known` is the client's row if the caller read it already (the refresh
/// grant reads it with the token); used only when its id is the one
/// presented, otherwise the client is read here.
pub(crate) async fn authenticate(store: &dyn Store, p: Presented, known: Option<Client>) -> Result<Client, GrantError> {
    let fail = GrantError::InvalidClient { basic: p.basic };
    let client = match known.filter(|c| c.id == p.id) {
        Some(c) => c,
        None => match store.client_by_id(&p.id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Err(fail),
            Err(e) => return Err(e.into()),
        },
    };
    if client.status != ClientStatus::Active {
        return Err(fail);
    }
    let ok = match (&client.secret_hash, &p.secret) {
        (None, None) => true,
        // A secret compared in constant time against the stored SHA-256,
        // and against the previous secret's while its grace period after a
        // rotation runs. Both comparisons always run (no short cut), so
        // the time taken does not say which one matched.
        (Some(hash), Some(secret)) => {
            let current = secret::matches(secret, hash);
            let previous = client
                .previous_secret_at(portcullis_store::UnixTime::now())
                .is_some_and(|prev| secret::matches(secret, &prev));
            current | previous
        }
        // A public client sending a secret, or a confidential one without.
        _ => false,
    };
    if ok { Ok(client) } else { Err(fail) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))).into_bytes()
    }

    #[test]
    fn basic_values_are_form_decoded() {
        assert_eq!(
            parse_basic(&basic("my%20app", "s%3Acret+x")),
            Some(("my app".to_owned(), Some("s:cret x".to_owned())))
        );
        assert_eq!(parse_basic(&basic("app", "")), Some(("app".to_owned(), None)));
        assert_eq!(
            parse_basic(b"basic YXBwOng="),
            Some(("app".to_owned(), Some("x".to_owned())))
        );
    }

    #[test]
    fn malformed_basic_is_refused() {
        for bad in [
            &b"Bearer abc"[..],
            b"Basic",
            b"Basic !!!",
            b"Basic YXBw",
            b"Basic OnNlY3JldA==",
        ] {
            assert_eq!(parse_basic(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_basic(&basic("a%zz", "x")), None);
    }
}
