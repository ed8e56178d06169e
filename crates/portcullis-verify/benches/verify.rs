//! Verifying an access token with a cached key, per algorithm, next to the
//! raw signature check of the same crypto backend (aws-lc-rs) on the same
//! token: the ratio is what parsing and claim checks cost.
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
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_verify::Verifier;
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

criterion_group!(benches, bench);
criterion_main!(benches);
