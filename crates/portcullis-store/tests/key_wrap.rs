//! Replacing signing keys' stored private parts (encrypting them under a
//! key-encryption key): all or nothing, on both backends.

use portcullis_store::on_both_backends;
use portcullis_store::{KeyStore as _, NewSigningKey, PrivateKeyChange, SqlStore, StoreError, UnixTime};

const NOW: UnixTime = UnixTime(1_800_000_000);

async fn key(s: &SqlStore, kid: &str) -> Vec<u8> {
    let new = NewSigningKey {
        kid: kid.into(),
        alg: "ES256".into(),
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        private_key: format!("plain {kid}").into_bytes(),
        retire_after: None,
    };
    s.insert_signing_key(&new, NOW).await.expect("insert").private_key
}

async fn stored(s: &SqlStore) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<_> = s
        .signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| (k.kid, k.private_key))
        .collect();
    keys.sort();
    keys
}

fn change(kid: &str, old: &[u8], new: &str) -> PrivateKeyChange {
    PrivateKeyChange {
        kid: kid.into(),
        old: old.to_vec(),
        new: new.as_bytes().to_vec(),
    }
}

async fn private_keys_are_replaced_together_or_not_at_all(s: &SqlStore) {
    let (a, b) = (key(s, "a").await, key(s, "b").await);
    // The second change expects bytes that are not stored: nothing changes.
    let stale = [change("a", &a, "sealed a"), change("b", b"something else", "sealed b")];
    assert!(matches!(
        s.replace_private_keys(&stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(stored(s).await, [("a".into(), a.clone()), ("b".into(), b.clone())]);
    let gone = [change("a", &a, "sealed a"), change("nope", b"x", "y")];
    assert!(matches!(s.replace_private_keys(&gone).await, Err(StoreError::Conflict)));
    assert_eq!(stored(s).await[0].1, a, "rolled back");
    let both = [change("a", &a, "sealed a"), change("b", &b, "sealed b")];
    s.replace_private_keys(&both).await.expect("replace");
    assert_eq!(
        stored(s).await,
        [("a".into(), b"sealed a".to_vec()), ("b".into(), b"sealed b".to_vec())]
    );
    s.replace_private_keys(&[]).await.expect("nothing to do");
}

on_both_backends!(private_keys_are_replaced_together_or_not_at_all);
