//! Verifying an access token with a cached key, per algorithm, next to the
//! raw signature check of the same crypto backend (aws-lc-rs) on the same
//! token: the ratio is what parsing and claim checks cost. And a DPoP
//! request (an ES256 token and an ES256 proof) next to its two raw
//! signature checks: the ratio is what the proof's parsing, thumbprint,
//! `ath`, URL and replay checks cost.
//!
//!     cargo bench -p portcullis-verify --bench verify

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis_verify::Verifier;
use portcullis_verify::dpop::DpopChecker;
use serde_json::{Value, json};

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

struct Case {
    name: &'static str,
    jwk: Value,
    public: Vec<u8>,
    raw_alg: &'static dyn VerificationAlgorithm,
    sign: SignFn,
}

fn cases() -> Vec<Case> {
    let es = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
    let pt = es.public_key().as_ref().to_vec();
    let ed = Ed25519KeyPair::generate().expect("key");
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).expect("key");
    let parts = PublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let rsa_public = rsa.public_key().as_ref().to_vec();
    vec![
        Case {
            name: "ES256",
            jwk: json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..]), "kid": "k", "alg": "ES256"}),
            public: pt,
            raw_alg: &ECDSA_P256_SHA256_FIXED,
            sign: Box::new(move |m| es.sign(&SystemRandom::new(), m).expect("sign").as_ref().to_vec()),
        },
        Case {
            name: "EdDSA",
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(ed.public_key().as_ref()), "kid": "k", "alg": "EdDSA"}),
            public: ed.public_key().as_ref().to_vec(),
            raw_alg: &ED25519,
            sign: Box::new(move |m| ed.sign(m).as_ref().to_vec()),
        },
        Case {
            name: "RS256",
            jwk: json!({"kty": "RSA", "n": B64.encode(&parts.n), "e": B64.encode(&parts.e), "kid": "k", "alg": "RS256"}),
            public: rsa_public,
            raw_alg: &RSA_PKCS1_2048_8192_SHA256,
            sign: Box::new(move |m| {
                let mut sig = vec![0u8; rsa.public_modulus_len()];
                rsa.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), m, &mut sig)
                    .expect("sign");
                sig
            }),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    for case in cases() {
        let header = json!({"typ": "at+jwt", "alg": case.name, "kid": "k"});
        let claims = json!({"iss": "https://auth.example", "sub": "0192f0c1-7d9a-7c4e-9a55-3b0f5f2d1e11",
            "aud": "https://api.example", "client_id": "mobile", "scope": "read write", "iat": now, "nbf": now,
            "exp": now + 900, "jti": "9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "sid": "0192f0c1-7d9a-7c4e-9a55-3b0f5f2d1e12"});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = (case.sign)(input.as_bytes());
        let token = format!("{input}.{}", B64.encode(&sig));
        let verifier = Verifier::builder("https://auth.example")
            .audience("https://api.example")
            .jwks(json!({"keys": [case.jwk]}))
            .build()
            .expect("verifier");
        rt.block_on(verifier.verify(&token)).expect("valid");
        let mut group = c.benchmark_group(case.name);
        let key = UnparsedPublicKey::new(case.raw_alg, case.public.clone());
        group.bench_function("raw_signature", |b| {
            b.iter(|| key.verify(input.as_bytes(), &sig).expect("raw"))
        });
        group.bench_function("verify_token", |b| {
            b.iter(|| rt.block_on(verifier.verify(&token)).expect("verify"))
        });
        group.finish();
    }
}

/// One DPoP request: a bound ES256 token with an ES256 proof. Each
/// iteration needs a fresh proof (a `jti` is accepted once); proofs are
/// signed outside the measurement.
fn bench_dpop(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let signer = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
    let spt = signer.public_key().as_ref().to_vec();
    let client = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
    let cpt = client.public_key().as_ref().to_vec();
    let client_jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&cpt[1..33]), "y": B64.encode(&cpt[33..])});
    let jkt: jsonwebtoken::jwk::Jwk = serde_json::from_value(client_jwk.clone()).expect("jwk");
    let jkt = jkt.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256);
    let sign = |pair: &EcdsaKeyPair, header: &Value, claims: &Value| {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).expect("sign");
        (
            format!("{input}.{}", B64.encode(sig.as_ref())),
            input,
            sig.as_ref().to_vec(),
        )
    };
    let claims = json!({"iss": "https://auth.example", "sub": "0192f0c1-7d9a-7c4e-9a55-3b0f5f2d1e11",
        "aud": "https://api.example", "client_id": "mobile", "scope": "read write", "iat": now, "nbf": now,
        "exp": now + 900, "jti": "9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "sid": "0192f0c1-7d9a-7c4e-9a55-3b0f5f2d1e12",
        "cnf": {"jkt": jkt}});
    let (token, token_input, token_sig) = sign(&signer, &json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"}), &claims);
    let ath = B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()));
    let url = "https://api.example/v1/notes";
    let proof_header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client_jwk});
    let mut n = 0u64;
    let mut fresh_proof = || {
        n += 1;
        let claims = json!({"jti": format!("proof-{n}"), "htm": "GET", "htu": url, "iat": now, "ath": ath});
        sign(&client, &proof_header, &claims)
    };
    let verifier = Verifier::builder("https://auth.example")
        .audience("https://api.example")
        .jwks(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": B64.encode(&spt[1..33]), "y": B64.encode(&spt[33..]), "kid": "k", "alg": "ES256"}]}))
        .dpop(DpopChecker::new())
        .external_url("https://api.example")
        .build()
        .expect("verifier");
    let (proof, _, _) = fresh_proof();
    rt.block_on(verifier.verify_dpop(&token, &proof, "GET", url))
        .expect("valid");
    let (_, proof_input, proof_sig) = fresh_proof();
    let mut group = c.benchmark_group("DPoP ES256");
    let token_key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, spt);
    let proof_key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, cpt);
    group.bench_function("two_raw_signatures", |b| {
        b.iter(|| {
            token_key.verify(token_input.as_bytes(), &token_sig).expect("raw");
            proof_key.verify(proof_input.as_bytes(), &proof_sig).expect("raw");
        })
    });
    group.bench_function("verify_dpop", |b| {
        b.iter_batched(
            || fresh_proof().0,
            |proof| {
                rt.block_on(verifier.verify_dpop(&token, &proof, "GET", url))
                    .expect("verify")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench, bench_dpop);
criterion_main!(benches);
