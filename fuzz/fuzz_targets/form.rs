//! The token endpoint's form parser on arbitrary bodies: no panic, and a
//! parsed form answers lookups.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_token::form::Form;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = Form::parse(data) {
        for name in [
            "grant_type",
            "client_id",
            "client_secret",
            "username",
            "password",
            "scope",
            "",
        ] {
            if let Some(value) = form.get(name) {
                assert!(!value.is_empty(), "an empty value counts as absent");
            }
        }
    }
});
