//! Property-based fuzzing of token verification: arbitrary strings and
//! mutations of valid tokens (bit flips, truncation, a re-encoded header
//! with another `alg` or `typ`, a swapped `kid`, times given as strings —
//! the CVE-2026-25537 class —, random key material under a known `kid`)
//! never panic and never verify, while the unmodified token does.
//! `PORTCULLIS_FUZZ_CASES` sets the cases per property.

mod common;

use aws_lc_rs::hmac;
use common::*;
use portcullis_verify::{Verifier, VerifyError};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// Cases per property when `PORTCULLIS_FUZZ_CASES` is unset: a few seconds
/// for the file in the dev profile. Set it higher for a longer local run.
const DEFAULT_CASES: u32 = 1024;

/// The case count from `PORTCULLIS_FUZZ_CASES`; no failure-persistence
/// files (a failure prints its minimal input instead).
fn config() -> Config {
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

/// Two ES256 keys and an EdDSA key, all trusted by the verifier.
struct Fixture {
    keys: [TestKey; 3],
    verifier: Verifier,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let keys = [TestKey::es256("k1"), TestKey::es256("k2"), TestKey::eddsa("ed")];
        let verifier = Verifier::builder(ISSUER)
            .audience(AUDIENCE)
            .jwks(jwks(&keys.iter().collect::<Vec<_>>()))
            .build()
            .expect("verifier");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Self { keys, verifier, rt }
    }

    fn verify(&self, token: &str) -> Result<portcullis_verify::AccessTokenClaims, VerifyError> {
        self.rt.block_on(self.verifier.verify(token))
    }

    /// A valid token from key `signer` (0: ES256 `k1`, 2: EdDSA `ed`) with
    /// fuzzed claim contents; checks that it verifies.
    fn valid(&self, signer: usize, sub: &str, jti: &str) -> Result<String, TestCaseError> {
        let token = self.keys[signer].token(json!({"sub": sub, "jti": jti}));
        match self.verify(&token) {
            Ok(c) if c.sub == sub && c.jti == jti => Ok(token),
            Ok(_) => Err(TestCaseError::fail("claims changed on the way")),
            Err(e) => Err(TestCaseError::fail(format!("a valid token was refused: {e:?}"))),
        }
    }

    /// A forged or damaged token must be refused as `invalid_token`.
    fn refused(&self, token: &str, what: &str) -> Result<(), TestCaseError> {
        match self.verify(token) {
            Err(VerifyError::InvalidToken(_)) => Ok(()),
            Ok(_) => Err(TestCaseError::fail(format!("{what}: verified {token:?}"))),
            Err(e) => Err(TestCaseError::fail(format!("{what}: {e:?} for {token:?}"))),
        }
    }
}

/// How to damage a valid token.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit of one byte.
    FlipBit(Index, u8),
    /// Keep only a prefix.
    Truncate(Index),
    /// Insert a byte.
    Insert(Index, u8),
    /// Delete a byte.
    Delete(Index),
    /// Re-encode the header with another `alg`, keeping the claims, with
    /// the given signature.
    Alg(&'static str, Forged),
    /// Re-encode the header with another `typ` (or none), re-signed by
    /// the right key.
    Typ(Option<&'static str>),
    /// Name another `kid` (or none), optionally re-signing the new header
    /// with the original key.
    Kid(Kid, bool),
    /// A time claim in another JSON type (a string first of all), re-signed
    /// by the right key.
    TimeType(&'static str, TimeShape, i64),
}

/// A signature for a re-encoded header.
#[derive(Debug, Clone, Copy)]
enum Forged {
    /// The original token's signature.
    Original,
    /// None at all.
    Empty,
    /// HMAC keyed with the public key's bytes (the classic confusion).
    HmacPublicKey,
    /// HMAC keyed with the JWK's JSON text.
    HmacJwk,
    /// Signed by the EdDSA key.
    EdDsa,
}

#[derive(Debug, Clone)]
enum Kid {
    /// One of the other trusted keys.
    Other(usize),
    /// Not in the JWKS.
    Unknown(String),
    /// No `kid`.
    Missing,
    /// A number instead of a string.
    Number(i64),
}

#[derive(Debug, Clone, Copy)]
enum TimeShape {
    String,
    Bool,
    Array,
    Object,
    Missing,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let algs = prop::sample::select(
        &[
            "none", "None", "NONE", "HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "ES384", "EdDSA", "ES256K",
            "",
        ][..],
    );
    let forged = prop::sample::select(
        &[
            Forged::Original,
            Forged::Empty,
            Forged::HmacPublicKey,
            Forged::HmacJwk,
            Forged::EdDsa,
        ][..],
    );
    let kid = prop_oneof![
        (0..3usize).prop_map(Kid::Other),
        "[a-zA-Z0-9_-]{0,300}".prop_map(Kid::Unknown),
        Just(Kid::Missing),
        any::<i64>().prop_map(Kid::Number),
    ];
    let shape = prop::sample::select(
        &[
            TimeShape::String,
            TimeShape::Bool,
            TimeShape::Array,
            TimeShape::Object,
            TimeShape::Missing,
        ][..],
    );
    let time = prop_oneof![
        // Mostly valid-looking values: now, soon, long ago.
        (-1_000_000i64..1_000_000).prop_map(|d| now() + d),
        any::<i64>(),
    ];
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (algs, forged).prop_map(|(a, f)| Mutation::Alg(a, f)),
        prop::option::of(prop::sample::select(
            &["JWT", "jwt", "at+JWT ", "at+jw", "application/jwt", ""][..]
        ))
        .prop_map(Mutation::Typ),
        (kid, any::<bool>()).prop_map(|(k, r)| Mutation::Kid(k, r)),
        (prop::sample::select(&["exp", "nbf", "iat"][..]), shape, time)
            .prop_map(|(c, s, t)| Mutation::TimeType(c, s, t)),
    ]
}

/// The damaged token, or `None` where the mutation changed nothing or made
/// a string that is not UTF-8 (which no `&str` API can receive).
fn apply(f: &Fixture, signer: usize, token: &str, m: &Mutation) -> Option<String> {
    let key = &f.keys[signer];
    let mut parts = token.split('.');
    let (_, claims_b64, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let claims: Value = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims_b64)
            .ok()?;
        serde_json::from_slice(&raw).ok()?
    };
    let mut bytes = token.as_bytes().to_vec();
    let out = match m {
        Mutation::FlipBit(i, bit) => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
            String::from_utf8(bytes).ok()?
        }
        Mutation::Truncate(i) => token[..i.index(token.len())].to_owned(),
        Mutation::Insert(i, b) => {
            bytes.insert(i.index(bytes.len() + 1), *b);
            String::from_utf8(bytes).ok()?
        }
        Mutation::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
            String::from_utf8(bytes).ok()?
        }
        Mutation::Alg(alg, forged) => {
            if *alg == key.alg {
                return None;
            }
            let h = json!({"typ": "at+jwt", "alg": alg, "kid": key.kid});
            let input = signing_input(&h, &claims);
            let hmac = |secret: &[u8]| {
                let algorithm = match *alg {
                    "HS384" => hmac::HMAC_SHA384,
                    "HS512" => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                b64(hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes()).as_ref())
            };
            let sig = match forged {
                Forged::Original => signature.to_owned(),
                Forged::Empty => String::new(),
                Forged::HmacPublicKey => hmac(&key.public_bytes()),
                Forged::HmacJwk => hmac(key.jwk().to_string().as_bytes()),
                Forged::EdDsa => b64(&f.keys[2].sign_raw(input.as_bytes())),
            };
            format!("{input}.{sig}")
        }
        Mutation::Typ(typ) => {
            let mut h = key.header();
            match typ {
                Some(t) => h["typ"] = json!(t),
                None => drop(h.as_object_mut()?.remove("typ")),
            }
            key.token_with(&h, &claims)
        }
        Mutation::Kid(kid, resign) => {
            let mut h = key.header();
            match kid {
                Kid::Other(i) if f.keys[*i].kid == key.kid => return None,
                Kid::Other(i) => h["kid"] = json!(f.keys[*i].kid),
                Kid::Unknown(k) if f.keys.iter().any(|t| t.kid == *k) => return None,
                Kid::Unknown(k) => h["kid"] = json!(k),
                Kid::Missing => drop(h.as_object_mut()?.remove("kid")),
                Kid::Number(n) => h["kid"] = json!(n),
            }
            if *resign {
                key.token_with(&h, &claims)
            } else {
                format!("{}.{signature}", signing_input(&h, &claims))
            }
        }
        Mutation::TimeType(claim, shape, t) => {
            let mut c = claims;
            let text = t.to_string();
            match shape {
                TimeShape::String => c[*claim] = json!(text),
                TimeShape::Bool => c[*claim] = json!(true),
                TimeShape::Array => c[*claim] = json!([t]),
                TimeShape::Object => c[*claim] = json!({ "$numberLong": text }),
                // `nbf` is optional: a token without it is fine.
                TimeShape::Missing if *claim == "nbf" => return None,
                TimeShape::Missing => drop(c.as_object_mut()?.remove(*claim)),
            }
            key.token_with(&key.header(), &c)
        }
    };
    (out != token).then_some(out)
}

/// Printable and base64url-ish text, plus anything at all.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.=+/ -]{0,600}",
        // Three base64url parts of arbitrary bytes.
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 3).prop_map(|p| p
            .iter()
            .map(|b| b64(b))
            .collect::<Vec<_>>()
            .join(".")),
        // A plausible header, then arbitrary claims and signature bytes.
        (
            prop::sample::select(&["ES256", "EdDSA", "RS256", "none", "HS256"][..]),
            prop::sample::select(&["k1", "k2", "ed", "x"][..]),
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(any::<u8>(), 0..100),
        )
            .prop_map(|(alg, kid, claims, sig)| {
                let h = json!({"typ": "at+jwt", "alg": alg, "kid": kid}).to_string();
                format!("{}.{}.{}", b64(h.as_bytes()), b64(&claims), b64(&sig))
            }),
    ]
}

#[test]
fn arbitrary_strings_never_panic_and_never_verify() {
    let f = Fixture::new();
    TestRunner::new(config())
        .run(&junk(), |s| f.refused(&s, "junk"))
        .expect("property");
}

#[test]
fn mutated_tokens_never_verify_while_the_original_does() {
    let f = Fixture::new();
    let strategy = (
        prop::sample::select(&[0usize, 2][..]),
        "\\PC{1,20}",
        "[ -~]{1,20}",
        mutation(),
    );
    TestRunner::new(config())
        .run(&strategy, |(signer, sub, jti, m)| {
            let token = f.valid(signer, &sub, &jti)?;
            match apply(&f, signer, &token, &m) {
                Some(bad) => f.refused(&bad, &format!("{m:?}")),
                None => Ok(()),
            }
        })
        .expect("property");
}

#[test]
fn times_given_as_strings_are_refused_even_when_expired_long_ago() {
    // The CVE-2026-25537 class: a verifier that skips an `exp` it cannot
    // read as a number accepts expired tokens forever.
    let f = Fixture::new();
    let key = &f.keys[0];
    for exp in [
        "0",
        "1",
        &(now() - 86_400).to_string(),
        &(now() + 900).to_string(),
        "1e99",
        "",
    ] {
        f.refused(&key.token(json!({ "exp": exp })), "exp as a string")
            .expect("refused");
    }
    f.refused(&key.token(json!({ "exp": null })), "no exp")
        .expect("refused");
    f.refused(
        &key.token(json!({ "nbf": (now() + 86_400).to_string() })),
        "nbf as a string",
    )
    .expect("refused");
    f.refused(&key.token(json!({ "exp": now() - 86_400 })), "expired")
        .expect("refused");
}

#[test]
fn any_time_claims_are_judged_by_the_clock_and_never_panic() {
    let f = Fixture::new();
    let around_now = || prop_oneof![(-100_000i64..100_000).prop_map(|d| now() + d), any::<i64>()];
    let strategy = (around_now(), prop::option::of(around_now()), around_now());
    TestRunner::new(config())
        .run(&strategy, |(exp, nbf, iat)| {
            let t = i128::from(now());
            let leeway = 60;
            let near = |x: i64, edge: i128| (i128::from(x) - edge).abs() <= 5;
            // Values within seconds of an edge depend on when the clock is
            // read: not judged.
            if near(exp, t - leeway) || nbf.is_some_and(|n| near(n, t + leeway)) || near(iat, t + leeway) {
                return Ok(());
            }
            let valid = i128::from(exp) + leeway > t
                && nbf.is_none_or(|n| i128::from(n) <= t + leeway)
                && i128::from(iat) <= t + leeway;
            let nbf = nbf.map_or(Value::Null, |n| json!(n));
            let token = f.keys[0].token(json!({"exp": exp, "nbf": nbf, "iat": iat}));
            match (f.verify(&token), valid) {
                (Ok(_), true) | (Err(VerifyError::InvalidToken(_)), false) => Ok(()),
                (got, _) => Err(TestCaseError::fail(format!("expected valid = {valid}, got {got:?}"))),
            }
        })
        .expect("property");
}

/// A JWK under `kid` `k1` with random key material of every key type.
fn random_jwk() -> impl Strategy<Value = Value> {
    let bytes = |n: std::ops::Range<usize>| prop::collection::vec(any::<u8>(), n).prop_map(|b| b64(&b));
    let alg = prop::option::of(prop::sample::select(
        &["ES256", "EdDSA", "RS256", "PS256", "HS256", "ES384"][..],
    ));
    prop_oneof![
        (bytes(0..40), bytes(0..40), alg.clone())
            .prop_map(|(x, y, alg)| json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "k1", "alg": alg})),
        (bytes(0..40), alg.clone())
            .prop_map(|(x, alg)| json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": alg})),
        (bytes(1..300), bytes(0..5), alg.clone())
            .prop_map(|(n, e, alg)| json!({"kty": "RSA", "n": n, "e": e, "kid": "k1", "alg": alg})),
        (bytes(0..64), alg).prop_map(|(k, alg)| json!({"kty": "oct", "k": k, "kid": "k1", "alg": alg})),
    ]
}

#[test]
fn random_key_material_under_a_known_kid_never_panics_and_never_verifies() {
    let f = Fixture::new();
    let strategy = (random_jwk(), "\\PC{1,20}");
    TestRunner::new(config())
        .run(&strategy, |(jwk, sub)| {
            let token = f.valid(0, &sub, "j")?;
            let Ok(v) = Verifier::builder(ISSUER)
                .audience(AUDIENCE)
                .jwks(json!({ "keys": [jwk] }))
                .build()
            else {
                return Err(TestCaseError::fail("a verifier with odd keys still builds"));
            };
            match f.rt.block_on(v.verify(&token)) {
                Err(VerifyError::InvalidToken(_)) => Ok(()),
                other => Err(TestCaseError::fail(format!("{other:?}"))),
            }
        })
        .expect("property");
}
