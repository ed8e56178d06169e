//! Property-based fuzzing of client authentication parsing at the token
//! endpoint (RFC 6749 §2.3): the `Authorization: Basic` header and the body
//! credentials. `PORTCULLIS_FUZZ_CASES` sets the cases per property.

mod fuzz_support;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fuzz_support::{config, encode};
use portcullis_token::GrantError;
use portcullis_token::client_auth::{Presented, presented};
use portcullis_token::form::Form;
use proptest::prelude::*;

/// The longest `client_id` or `client_secret` the endpoint accepts.
const MAX_CREDENTIAL: usize = 256;

/// What `presented` found, in a form that can be compared and printed
/// (`Presented` has no `Debug`, as it holds a secret).
type Outcome = Result<(String, Option<String>, bool), GrantError>;

fn outcome(r: Result<Presented, GrantError>) -> Outcome {
    r.map(|p| (p.id().to_owned(), p.secret().map(str::to_owned), p.is_basic()))
}

fn headers(authorization: Option<&[u8]>) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    if let Some(value) = authorization {
        // Bytes no HTTP parser would hand over are out of scope.
        h.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
    }
    Some(h)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (§2.3.1), with the
/// scheme's case and the spaces around the credentials varied.
fn basic(id: &str, secret: &str, style: u64, scheme: &str, spaces: (usize, usize)) -> Vec<u8> {
    let creds = format!("{}:{}", encode(id.as_bytes(), style), encode(secret.as_bytes(), !style));
    format!(
        "{scheme}{}{}{}",
        " ".repeat(spaces.0),
        STANDARD.encode(creds),
        " ".repeat(spaces.1)
    )
    .into_bytes()
}

fn text(range: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(not_nul(), range).prop_map(String::from_iter)
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["Basic", "basic", "BASIC", "bAsIc"][..])
}

/// Authorization values: arbitrary bytes, `Basic` with arbitrary base64
/// content, and `Basic` over arbitrary `id:secret` bytes.
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        prop::collection::vec(any::<u8>(), 0..96).prop_map(|b| format!("Basic {}", STANDARD.encode(b)).into_bytes()),
        (
            prop::collection::vec(any::<u8>(), 0..48),
            prop::collection::vec(any::<u8>(), 0..48)
        )
            .prop_map(|(a, b)| {
                let mut raw = a;
                raw.push(b':');
                raw.extend(b);
                format!("Basic {}", STANDARD.encode(raw)).into_bytes()
            }),
    ]
}

/// Optional body credentials: absent, empty, or any text.
fn body_field() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text(0..40))
}

fn form(client_id: Option<&str>, client_secret: Option<&str>, style: u64) -> Form {
    let mut parts = vec!["grant_type=password".to_owned()];
    if let Some(id) = client_id {
        parts.push(format!("client_id={}", encode(id.as_bytes(), style)));
    }
    if let Some(secret) = client_secret {
        parts.push(format!("client_secret={}", encode(secret.as_bytes(), style)));
    }
    Form::parse(parts.join("&").as_bytes()).expect("an encoded form parses")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_headers_and_bodies_never_panic(
        auth in prop::option::of(authorization()),
        client_id in body_field(),
        client_secret in body_field(),
        style: u64,
    ) {
        let Some(h) = headers(auth.as_deref()) else { return Ok(()) };
        let got = outcome(presented(&h, &form(client_id.as_deref(), client_secret.as_deref(), style)));
        match got {
            Ok((id, secret, basic)) => {
                prop_assert!(!id.is_empty() && id.len() <= MAX_CREDENTIAL, "{:?}", id);
                prop_assert!(secret.as_ref().is_none_or(|s| !s.is_empty() && s.len() <= MAX_CREDENTIAL));
                prop_assert_eq!(basic, auth.is_some(), "credentials from where they were sent");
                if !basic {
                    prop_assert_eq!(Some(id.as_str()), client_id.as_deref());
                }
            }
            Err(GrantError::InvalidClient { basic }) => prop_assert_eq!(basic, auth.is_some()),
            Err(GrantError::InvalidRequest(_)) => {
                prop_assert!(auth.is_some(), "two methods need a header");
                let secret_in_body = client_secret.as_ref().is_some_and(|s| !s.is_empty());
                let id_in_body = client_id.as_ref().is_some_and(|s| !s.is_empty());
                prop_assert!(secret_in_body || id_in_body, "two methods need body credentials");
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }

    #[test]
    fn basic_credentials_round_trip(
        id in text(1..80),
        secret in text(0..80),
        style: u64,
        scheme in scheme(),
        spaces in (1..3usize, 0..3usize),
        same_id_in_body: bool,
    ) {
        let h = headers(Some(&basic(&id, &secret, style, scheme, spaces))).expect("a valid header");
        // A `client_id` in the body that repeats the header's is allowed.
        let f = form(same_id_in_body.then_some(id.as_str()), None, style);
        let expected = if id.len() > MAX_CREDENTIAL || secret.len() > MAX_CREDENTIAL {
            Err(GrantError::InvalidClient { basic: true })
        } else {
            Ok((id.clone(), (!secret.is_empty()).then_some(secret.clone()), true))
        };
        prop_assert_eq!(outcome(presented(&h, &f)), expected);
    }

    #[test]
    fn body_credentials_round_trip(id in text(1..80), secret in text(0..80), style: u64) {
        let f = form(Some(&id), Some(&secret), style);
        let expected = if id.len() > MAX_CREDENTIAL || secret.len() > MAX_CREDENTIAL {
            Err(GrantError::InvalidClient { basic: false })
        } else {
            Ok((id.clone(), (!secret.is_empty()).then_some(secret.clone()), false))
        };
        prop_assert_eq!(outcome(presented(&HeaderMap::new(), &f)), expected);
    }

    #[test]
    fn basic_and_body_credentials_together_are_an_invalid_request(
        id in text(1..60),
        secret in text(0..60),
        (body_id, body_secret) in (text(1..60), text(1..60)),
        which in 0..3u8,
        style: u64,
        scheme in scheme(),
    ) {
        // A body secret, a body `client_id` other than the header's, or both.
        let other_id = if body_id == id { format!("{body_id}x") } else { body_id };
        let other_id = (which != 0).then_some(other_id);
        let body_secret = (which != 1).then_some(body_secret);
        let h = headers(Some(&basic(&id, &secret, style, scheme, (1, 0)))).expect("a valid header");
        let f = form(other_id.as_deref(), body_secret.as_deref(), style);
        prop_assert_eq!(
            outcome(presented(&h, &f)),
            Err(GrantError::InvalidRequest("more than one client authentication method"))
        );
    }
}

/// Any character but NUL, which no OAuth parameter holds: the form decoder
/// refuses it (a separate test checks that).
fn not_nul() -> impl Strategy<Value = char> {
    any::<char>().prop_map(|c| if c == '\0' { '\u{1}' } else { c })
}
