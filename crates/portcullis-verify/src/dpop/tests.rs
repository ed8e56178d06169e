use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::json;

use super::*;

const URL: &str = "https://auth.example.com/oauth/token";
const NOW: i64 = 1_800_000_000;

/// A client's key, signing proofs.
enum Key {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Key {
    fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key"))
    }

    fn ed25519() -> Self {
        Self::Ed25519(Ed25519KeyPair::generate().expect("Ed25519 key"))
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
            }
            Self::Ed25519(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key().as_ref())}),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(k) => k
                .sign(&SystemRandom::new(), message)
                .expect("signature")
                .as_ref()
                .to_vec(),
            Self::Ed25519(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    /// A proof with this header and these claims, signed.
    fn proof_with(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let signature = B64.encode(self.sign(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    fn claims(&self, jti: &str) -> Value {
        json!({"jti": jti, "htm": "POST", "htu": URL, "iat": NOW})
    }

    fn proof(&self, jti: &str) -> String {
        self.proof_with(&self.header(), &self.claims(jti))
    }

    /// The thumbprint, by jsonwebtoken's own RFC 7638 code.
    fn jkt(&self) -> String {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk()).expect("jwk");
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
    }
}

fn target() -> Target<'static> {
    Target {
        method: "POST",
        url: URL,
        access_token: None,
    }
}

fn check(checker: &DpopChecker, proof: &str) -> Result<Proof, DpopError> {
    checker.check_at(proof, &target(), false, NOW)
}

fn refused(checker: &DpopChecker, proof: &str) -> &'static str {
    match check(checker, proof) {
        Err(DpopError::InvalidProof(why)) => why,
        other => panic!("expected invalid_dpop_proof, got {other:?}"),
    }
}

#[test]
fn a_valid_proof_proves_its_key() {
    let checker = DpopChecker::new();
    for key in [Key::es256(), Key::ed25519()] {
        let proof = check(&checker, &key.proof("a")).expect("valid");
        assert_eq!(proof.jkt, key.jkt());
        assert_eq!(proof.jkt.len(), 43);
    }
}

#[test]
fn rfc_7638_thumbprint_of_the_rfc_example() {
    // RFC 7638 §3.1: the thumbprint of the example RSA key.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let jwk = serde_json::from_value::<Map<String, Value>>(
        json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}),
    )
    .expect("jwk");
    let (_, jkt) = public_key(&jwk, Algorithm::RS256).expect("key");
    assert_eq!(jkt, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn a_replayed_proof_is_refused_and_forgotten_after_two_windows() {
    let checker = DpopChecker::new();
    let key = Key::es256();
    let proof = key.proof("once");
    check(&checker, &proof).expect("first use");
    assert_eq!(refused(&checker, &proof), "jti was used before");
    // The same jti from another key is another proof.
    check(&checker, &Key::es256().proof("once")).expect("another key");
    // Within the window it is remembered; afterwards the iat is too old
    // anyway, and the cache lets go of it.
    let window = checker.max_age + checker.leeway;
    let mut later = key.claims("once");
    later["iat"] = json!(NOW + window);
    let replayed = key.proof_with(&key.header(), &later);
    assert_eq!(
        checker.check_at(&replayed, &target(), false, NOW + window).unwrap_err(),
        DpopError::InvalidProof("jti was used before"),
        "one window on: still remembered"
    );
}

#[test]
fn the_replay_cache_keeps_a_key_one_to_two_windows() {
    // Keys 16 and 32 share a shard.
    let replay = Replay::new(10);
    assert!(replay.first_use(16, 100));
    assert!(!replay.first_use(16, 105));
    assert!(!replay.first_use(16, 110), "previous generation");
    assert!(replay.first_use(32, 110));
    assert!(replay.first_use(16, 120), "two windows on: forgotten");
    assert!(!replay.first_use(32, 120), "one window on: remembered");
    assert_eq!(replay.len(), 2);
    assert!(replay.first_use(48, 150));
    assert_eq!(replay.len(), 1, "a long pause drops both generations");
}

#[test]
fn a_proof_for_another_request_is_refused() {
    let checker = DpopChecker::new();
    let key = Key::es256();
    let mut get = key.claims("m");
    get["htm"] = json!("GET");
    assert_eq!(
        refused(&checker, &key.proof_with(&key.header(), &get)),
        "htm does not match the request"
    );
    for other in [
        "https://auth.example.com/oauth/revoke",
        "https://evil.example.com/oauth/token",
        "http://auth.example.com/oauth/token",
        "https://auth.example.com:8443/oauth/token",
        "/oauth/token",
    ] {
        let mut claims = key.claims(other);
        claims["htu"] = json!(other);
        assert_eq!(
            refused(&checker, &key.proof_with(&key.header(), &claims)),
            "htu does not match the request",
            "{other}"
        );
    }
    // Query and fragment are ignored; scheme and host case and the
    // default port are normalized.
    for same in [
        "https://auth.example.com/oauth/token?x=1",
        "https://auth.example.com/oauth/token#f",
        "HTTPS://Auth.Example.COM:443/oauth/token",
    ] {
        let mut claims = key.claims(same);
        claims["htu"] = json!(same);
        check(&checker, &key.proof_with(&key.header(), &claims)).expect(same);
    }
}

#[test]
fn a_stale_or_future_proof_is_refused() {
    let checker = DpopChecker::new();
    let key = Key::es256();
    for (iat, ok) in [(NOW - 61, false), (NOW - 60, true), (NOW + 5, true), (NOW + 6, false)] {
        let mut claims = key.claims(&format!("iat{iat}"));
        claims["iat"] = json!(iat);
        let result = check(&checker, &key.proof_with(&key.header(), &claims));
        assert_eq!(result.is_ok(), ok, "iat {iat}: {result:?}");
    }
    let mut text = key.claims("s");
    text["iat"] = json!(NOW.to_string());
    assert_eq!(refused(&checker, &key.proof_with(&key.header(), &text)), "malformed");
}

#[test]
fn ath_must_hash_the_access_token() {
    let checker = DpopChecker::new();
    let key = Key::es256();
    let token = "eyJ.access.token";
    let with_token = Target {
        access_token: Some(token),
        ..target()
    };
    let mut claims = key.claims("ath");
    let ath = B64.encode(digest::digest(&digest::SHA256, token.as_bytes()));
    claims["ath"] = json!(ath);
    checker
        .check_at(&key.proof_with(&key.header(), &claims), &with_token, false, NOW)
        .expect("right ath");
    for (jti, wrong) in [("w1", json!(B64.encode([0u8; 32]))), ("w2", Value::Null)] {
        let mut claims = key.claims(jti);
        claims["ath"] = wrong;
        assert_eq!(
            checker.check_at(&key.proof_with(&key.header(), &claims), &with_token, false, NOW),
            Err(DpopError::InvalidProof("ath does not match the access token"))
        );
    }
}

#[test]
fn symmetric_none_and_unlisted_algorithms_are_refused() {
    let checker = DpopChecker::new().algorithms(&[Algorithm::ES256]);
    let key = Key::es256();
    for alg in ["none", "HS256", "EdDSA", "ES512", ""] {
        let mut header = key.header();
        header["alg"] = json!(alg);
        assert_eq!(
            refused(&checker, &key.proof_with(&header, &key.claims(alg))),
            "algorithm not allowed"
        );
    }
    // An HMAC "proof" with an oct key.
    let mut header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
    assert_eq!(
        refused(&checker, &key.proof_with(&header, &key.claims("h"))),
        "algorithm not allowed"
    );
    header["alg"] = json!("ES256");
    assert_eq!(
        refused(&checker, &key.proof_with(&header, &key.claims("h2"))),
        "jwk holds a private key"
    );
    // HS* cannot be configured either.
    assert!(
        DpopChecker::new()
            .algorithms(&[Algorithm::HS256])
            .algorithm_names()
            .is_empty()
    );
    assert_eq!(
        DpopChecker::new().algorithm_names(),
        ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"]
    );
}

#[test]
fn ed25519_is_accepted_under_its_rfc_9864_name() {
    let checker = DpopChecker::new();
    let key = Key::ed25519();
    let mut header = key.header();
    header["alg"] = json!("Ed25519");
    let proof = check(&checker, &key.proof_with(&header, &key.claims("fully-specified"))).expect("Ed25519");
    assert_eq!(proof.jkt, key.jkt());
    let only_es = DpopChecker::new().algorithms(&[Algorithm::ES256]);
    assert_eq!(
        refused(&only_es, &key.proof_with(&header, &key.claims("no"))),
        "algorithm not allowed"
    );
}

#[test]
fn a_private_key_or_a_mismatched_key_in_the_header_is_refused() {
    let checker = DpopChecker::new();
    let key = Key::es256();
    let mut header = key.header();
    header["jwk"]["d"] = json!(B64.encode([7u8; 32]));
    assert_eq!(
        refused(&checker, &key.proof_with(&header, &key.claims("d"))),
        "jwk holds a private key"
    );
    // An Ed25519 key named as ES256.
    let ed = Key::ed25519();
    let mut header = ed.header();
    header["alg"] = json!("ES256");
    assert_eq!(
        refused(&checker, &ed.proof_with(&header, &ed.claims("x"))),
        "jwk does not match the algorithm"
    );
    // Another key than the one that signed.
    let mut header = key.header();
    header["jwk"] = Key::es256().jwk();
    assert_eq!(
        refused(&checker, &key.proof_with(&header, &key.claims("o"))),
        "bad signature"
    );
    // A short coordinate.
    let mut header = key.header();
    header["jwk"]["x"] = json!(B64.encode([1u8; 31]));
    assert_eq!(
        refused(&checker, &key.proof_with(&header, &key.claims("s"))),
        "jwk has a bad coordinate"
    );
    let mut header = key.header();
    header.as_object_mut().expect("object").remove("jwk");
    assert_eq!(refused(&checker, &key.proof_with(&header, &key.claims("n"))), "no jwk");
}

#[test]
fn typ_crit_and_tampering_are_refused() {
    let checker = DpopChecker::new();
    let key = Key::es256();
    for typ in [json!("jwt"), json!("at+jwt"), json!("DPOP+JWT"), Value::Null] {
        let mut header = key.header();
        header["typ"] = typ.clone();
        assert_eq!(
            refused(&checker, &key.proof_with(&header, &key.claims("t"))),
            "typ is not dpop+jwt",
            "{typ}"
        );
    }
    let mut header = key.header();
    header["crit"] = json!(["exp"]);
    assert_eq!(
        refused(&checker, &key.proof_with(&header, &key.claims("c"))),
        "crit extension not understood"
    );
    let proof = key.proof("tamper");
    let mut parts: Vec<&str> = proof.split('.').collect();
    let other = B64.encode(json!({"jti": "tamper", "htm": "POST", "htu": URL, "iat": NOW + 1}).to_string());
    parts[1] = &other;
    assert_eq!(refused(&checker, &parts.join(".")), "bad signature");
    assert_eq!(refused(&checker, "a.b"), "malformed");
    assert_eq!(refused(&checker, &"a".repeat(MAX_PROOF_LEN + 1)), "too long");
}

#[test]
fn nonces_are_asked_for_and_checked() {
    let checker = DpopChecker::new().nonces(NonceKey::new(&[9u8; 32], Duration::from_secs(60)));
    let key = Key::es256();
    let with_nonce = |jti: &str, nonce: &str| {
        let mut claims = key.claims(jti);
        claims["nonce"] = json!(nonce);
        key.proof_with(&key.header(), &claims)
    };
    // Required and absent: ask for one.
    assert_eq!(
        checker.check_at(&key.proof("n0"), &target(), true, NOW),
        Err(DpopError::UseNonce)
    );
    // Not required: fine without.
    checker
        .check_at(&key.proof("n1"), &target(), false, NOW)
        .expect("optional");
    let nonce = checker.nonce_at(NOW).expect("nonces on");
    checker
        .check_at(&with_nonce("n2", &nonce), &target(), true, NOW)
        .expect("current nonce");
    // Still good in the next step, not in the one after.
    checker
        .check_at(&with_nonce("n3", &nonce), &target(), true, NOW + 60)
        .expect("next step");
    let mut late = key.claims("n4");
    late["nonce"] = json!(nonce);
    late["iat"] = json!(NOW + 120);
    assert_eq!(
        checker.check_at(&key.proof_with(&key.header(), &late), &target(), true, NOW + 120),
        Err(DpopError::UseNonce)
    );
    // A nonce made with another key, or garbage, even when not required.
    let foreign = NonceKey::new(&[8u8; 32], Duration::from_secs(60)).issue(NOW);
    for bad in [foreign.as_str(), "x", ""] {
        assert_eq!(
            checker.check_at(&with_nonce(&format!("n-{bad}"), bad), &target(), false, NOW),
            Err(DpopError::UseNonce),
            "{bad}"
        );
    }
    // A nonce of the same step from another instance with the same secret.
    let twin = NonceKey::new(&[9u8; 32], Duration::from_secs(60));
    assert_eq!(twin.issue(NOW), nonce);
    assert!(twin.is_current(&nonce, NOW + 1));
}

#[test]
fn a_refused_proof_is_not_remembered() {
    let checker = DpopChecker::new().nonces(NonceKey::new(&[1u8; 32], Duration::from_secs(60)));
    let key = Key::es256();
    let proof = key.proof("retry");
    assert_eq!(checker.check_at(&proof, &target(), true, NOW), Err(DpopError::UseNonce));
    assert_eq!(checker.replay.len(), 0);
    checker
        .check_at(&proof, &target(), false, NOW)
        .expect("same jti, accepted once");
}

#[test]
fn normalize_url_keeps_scheme_host_port_path() {
    assert_eq!(
        normalize_url("HTTPS://A.example:443/p?q#f").as_deref(),
        Some("https://a.example/p")
    );
    assert_eq!(normalize_url("http://a.example").as_deref(), Some("http://a.example/"));
    assert_eq!(normalize_url("ftp://a.example/"), None);
    assert_eq!(normalize_url("/relative"), None);
}
