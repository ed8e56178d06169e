//! Client authentication parsing on an arbitrary `Authorization` header and
//! form body: no panic, and accepted credentials are within bounds.

#![no_main]

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis_token::client_auth::presented;
use portcullis_token::form::Form;

fuzz_target!(|data: &[u8]| {
    // The first byte says how long the header is; the rest is the body.
    let Some((&len, rest)) = data.split_first() else { return };
    let (auth, body) = rest.split_at(usize::from(len).min(rest.len()));
    let mut headers = HeaderMap::new();
    if !auth.is_empty() {
        let Ok(value) = HeaderValue::from_bytes(auth) else {
            return;
        };
        headers.insert(header::AUTHORIZATION, value);
    }
    let Ok(form) = Form::parse(body) else { return };
    if let Ok(p) = presented(&headers, &form) {
        assert!(!p.id().is_empty() && p.id().len() <= 256);
        assert!(p.secret().is_none_or(|s| !s.is_empty() && s.len() <= 256));
        assert_eq!(p.is_basic(), !auth.is_empty());
    }
});
