//! Property-based fuzzing of the token endpoint's form parser
//! (`Form::parse`): it never panics, it reads back whatever a client
//! encodes, and it refuses bad escapes, invalid UTF-8 and too many
//! parameters. `PORTCULLIS_FUZZ_CASES` sets the cases per property.

mod fuzz_support;

use std::collections::HashMap;

use fuzz_support::{config, encode};
use portcullis_token::form::{Form, FormError};
use proptest::prelude::*;

/// The parser's limit on parameters.
const MAX_PARAMS: usize = 64;

/// The parsing rules written out plainly, as an oracle: skip empty
/// segments, at most 64 parameters, split at the first `=`, `+` is a space,
/// `%` takes exactly two hex digits, the result is UTF-8, no name twice.
fn reference(body: &[u8]) -> Result<HashMap<String, String>, FormError> {
    fn component(raw: &[u8]) -> Result<String, FormError> {
        let mut out = Vec::new();
        let mut rest = raw;
        while let Some((&b, tail)) = rest.split_first() {
            rest = tail;
            match b {
                b'+' => out.push(b' '),
                b'%' => match rest {
                    [h, l, tail @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                        let hex = [*h, *l];
                        let digits = std::str::from_utf8(&hex).map_err(|_| FormError::Malformed)?;
                        out.push(u8::from_str_radix(digits, 16).map_err(|_| FormError::Malformed)?);
                        rest = tail;
                    }
                    _ => return Err(FormError::Malformed),
                },
                b => out.push(b),
            }
        }
        // No parameter may hold a NUL (the parser's rule, RFC 6749
        // Appendix A).
        if out.contains(&0) {
            return Err(FormError::Malformed);
        }
        String::from_utf8(out).map_err(|_| FormError::Malformed)
    }
    let mut params = HashMap::new();
    for (i, segment) in body.split(|&b| b == b'&').filter(|s| !s.is_empty()).enumerate() {
        if i == MAX_PARAMS {
            return Err(FormError::TooMany);
        }
        let mut halves = segment.splitn(2, |&b| b == b'=');
        let name = component(halves.next().unwrap_or_default())?;
        let value = component(halves.next().unwrap_or_default())?;
        if params.insert(name, value).is_some() {
            return Err(FormError::Repeated);
        }
    }
    Ok(params)
}

/// Bytes that matter to the parser, with the odd invalid one.
fn formish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"a=&%+0F9fgZ \xc3\xa9\xff\x80";
    prop::collection::vec(prop::sample::select(alphabet), 0..200)
}

/// Names and values of any Unicode text, the empty one included.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(not_nul(), 0..max).prop_map(String::from_iter)
}

/// Distinct names with their values.
fn pairs(max: usize) -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(text(12), text(24), 0..=max)
}

/// A body for `pairs`, with each component spelled per `style` and empty
/// `&&` segments (which the parser skips) where `gaps` says.
fn body(pairs: &[(String, String)], style: u64, gaps: u64) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 || gaps & 1 == 1 {
            out.push('&');
        }
        if gaps >> (i % 63) & 2 == 2 {
            out.push('&');
        }
        let salt = style.wrapping_mul(i as u64 + 1);
        out.push_str(&encode(name.as_bytes(), salt));
        out.push('=');
        out.push_str(&encode(value.as_bytes(), salt ^ 0x9e37_79b9));
    }
    out
}

/// A malformed percent escape: `%` at the end, `%` with one hex digit at
/// the end, or `%` followed by a non-hex byte in either position.
fn bad_escape() -> impl Strategy<Value = Vec<u8>> {
    let non_hex = any::<u8>().prop_filter("not hex", |b| !b.is_ascii_hexdigit());
    let hex = prop::sample::select(&b"0123456789abcdefABCDEF"[..]);
    prop_oneof![
        Just(b"%".to_vec()),
        hex.clone().prop_map(|h| vec![b'%', h]),
        non_hex.clone().prop_map(|n| vec![b'%', n]),
        (hex, non_hex).prop_map(|(h, n)| vec![b'%', h, n]),
    ]
}

/// Bytes that are not UTF-8.
fn not_utf8() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..16).prop_filter("invalid UTF-8", |b| std::str::from_utf8(b).is_err())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..512), formish_bytes()],
    ) {
        // The parser agrees with a plain reading of the rules.
        match (Form::parse(&bytes), reference(&bytes)) {
            (Ok(form), Ok(params)) => {
                for (name, value) in &params {
                    prop_assert_eq!(form.get(name), (!value.is_empty()).then_some(value.as_str()));
                }
            }
            (Err(got), Err(expected)) => prop_assert_eq!(got, expected),
            (got, expected) => {
                return Err(TestCaseError::fail(format!("{:?} but expected {:?}", got.map(|_| ()), expected.map(|_| ()))));
            }
        }
    }

    #[test]
    fn encoded_pairs_parse_back_to_the_same_values(pairs in pairs(MAX_PARAMS), style: u64, gaps: u64) {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        let body = body(&pairs, style, gaps);
        let form = match Form::parse(body.as_bytes()) {
            Ok(f) => f,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?} for {body:?}"))),
        };
        for (name, value) in &pairs {
            // An empty value counts as absent (RFC 6749 §3.1).
            let expected = (!value.is_empty()).then_some(value.as_str());
            prop_assert_eq!(form.get(name), expected, "{:?} in {:?}", name, body);
        }
    }

    #[test]
    fn a_bad_percent_escape_is_malformed(
        pairs in pairs(MAX_PARAMS - 1),
        style: u64,
        at: prop::sample::Index,
        in_name: bool,
        (before, after) in (text(6), text(6)),
        bad in bad_escape(),
    ) {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        let at = at.index(pairs.len() + 1);
        pairs.insert(at, (String::new(), String::new()));
        let mut body = Vec::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            if i > 0 {
                body.push(b'&');
            }
            let (name, value) = if i == at {
                // The bad escape sits between two properly encoded pieces.
                let mut bad_part = encode(before.as_bytes(), style).into_bytes();
                bad_part.extend_from_slice(&bad);
                // A lone `%` or a `%` with one digit must end its
                // component: followed by hex digits it would be valid.
                if bad.len() >= 2 && !bad.last().is_some_and(u8::is_ascii_hexdigit) {
                    bad_part.extend_from_slice(encode(after.as_bytes(), style).as_bytes());
                }
                let good = encode(b"x", style).into_bytes();
                if in_name { (bad_part, good) } else { (good, bad_part) }
            } else {
                (encode(name.as_bytes(), style).into_bytes(), encode(value.as_bytes(), style).into_bytes())
            };
            body.extend_from_slice(&name);
            body.push(b'=');
            body.extend_from_slice(&value);
        }
        prop_assert_eq!(Form::parse(&body).err(), Some(FormError::Malformed), "{:?}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn invalid_utf8_is_malformed(
        pairs in pairs(MAX_PARAMS - 1),
        style: u64,
        at: prop::sample::Index,
        in_name: bool,
        escaped: bool,
        bad in not_utf8(),
    ) {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .into_iter()
            .map(|(n, v)| (encode(n.as_bytes(), style).into_bytes(), encode(v.as_bytes(), style).into_bytes()))
            .collect();
        // Sent escaped, or raw where the raw bytes cannot be mistaken for
        // separators or escapes.
        let bad = if escaped || bad.iter().any(|b| matches!(b, b'&' | b'=' | b'+' | b'%')) {
            encode(&bad, style).into_bytes()
        } else {
            bad
        };
        let pair = if in_name { (bad, b"x".to_vec()) } else { (b"x".to_vec(), bad) };
        let at = at.index(pairs.len() + 1);
        pairs.insert(at, pair);
        let body: Vec<u8> = pairs
            .iter()
            .map(|(n, v)| [n.as_slice(), b"=", v.as_slice()].concat())
            .collect::<Vec<_>>()
            .join(&b'&');
        prop_assert_eq!(Form::parse(&body).err(), Some(FormError::Malformed), "{:?}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn more_than_64_parameters_are_too_many(
        extra in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no &", |b| *b != b'&'), 1..12), 1..64),
        style: u64,
    ) {
        // 64 good, distinct parameters, then anything at all: the 65th is
        // refused before it is even decoded.
        let mut body: Vec<u8> = (0..MAX_PARAMS)
            .map(|i| format!("p{i}={}", encode(b"v a&l", style)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        for pair in &extra {
            body.push(b'&');
            body.extend_from_slice(pair);
        }
        prop_assert_eq!(Form::parse(&body).err(), Some(FormError::TooMany));
    }

    #[test]
    fn at_most_64_parameters_are_accepted(n in 0..=MAX_PARAMS, style: u64) {
        let body = (0..n).map(|i| format!("p{i}={}", encode(b"1", style))).collect::<Vec<_>>().join("&");
        let form = Form::parse(body.as_bytes());
        prop_assert!(form.is_ok(), "{} parameters", n);
    }
}

/// Any character but NUL, which no OAuth parameter holds: the form decoder
/// refuses it (a separate test checks that).
fn not_nul() -> impl Strategy<Value = char> {
    any::<char>().prop_map(|c| if c == '\0' { '\u{1}' } else { c })
}
