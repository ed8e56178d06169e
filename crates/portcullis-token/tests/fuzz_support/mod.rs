//! Shared by the property-based fuzz tests: the case budget and a
//! form-urlencoder that varies its (equally valid) spellings.

#![allow(dead_code, unreachable_pub)]

use proptest::test_runner::Config;

/// Cases per property when `PORTCULLIS_FUZZ_CASES` is unset: a few seconds
/// per file in the dev profile, so that CI stays quick. Set the variable
/// (e.g. `PORTCULLIS_FUZZ_CASES=100000`) for a longer local run.
const DEFAULT_CASES: u32 = 1024;

/// The proptest configuration: the case count from `PORTCULLIS_FUZZ_CASES`,
/// and no failure-persistence files (a failure prints its minimal input;
/// nothing is written into the repository).
pub fn config() -> Config {
    let cases = std::env::var("PORTCULLIS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// `application/x-www-form-urlencoded` for one component. `style` picks,
/// byte by byte, among the spellings a client may use: a space as `+` or
/// `%20`, a byte that needs no escape raw or escaped, hex digits in upper
/// or lower case. `&`, `=`, `+`, `%` and `:` (the Basic separator, §2.3.1)
/// are always escaped.
pub fn encode(raw: &[u8], style: u64) -> String {
    let mut bits = style | 1;
    let mut next = move || {
        // xorshift64: a cheap, deterministic stream of choices.
        bits ^= bits << 13;
        bits ^= bits >> 7;
        bits ^= bits << 17;
        bits
    };
    let mut out = String::with_capacity(raw.len() * 3);
    for &b in raw {
        let choice = next();
        let must_escape = matches!(b, b'&' | b'=' | b'+' | b'%' | b':') || !b.is_ascii() || b.is_ascii_control();
        if b == b' ' && choice & 1 == 0 {
            out.push('+');
        } else if must_escape || b == b' ' || choice & 2 == 0 {
            if choice & 4 == 0 {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        } else {
            out.push(char::from(b));
        }
    }
    out
}
