//! Token verification on arbitrary input: no panic, and nothing verifies
//! (the input cannot carry a signature by the trusted key).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_verify::Verifier;

static VERIFIER: LazyLock<(Verifier, tokio::runtime::Runtime)> = LazyLock::new(|| {
    let jwks = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
    ]});
    let verifier = Verifier::builder("https://auth.example")
        .audience("https://api.example")
        .jwks(jwks)
        .build()
        .expect("verifier");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    (verifier, rt)
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let (verifier, rt) = &*VERIFIER;
    assert!(rt.block_on(verifier.verify(token)).is_err());
});
