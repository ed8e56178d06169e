//! Replacing signing keys' stored private parts and authenticator
//! secrets (encrypting them under a key-encryption key): all or nothing,
//! on both backends.

use portcullis_store::on_both_backends;
use portcullis_store::{
    KeyStore as _, NewSigningKey, NewUser, PrivateKeyChange, SecondFactorStore as _, SqlStore, StoreError,
    TotpSecretChange, UnixTime, UserStore as _,
};

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

async fn user_with_secret(s: &SqlStore, name: &str) -> String {
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: None,
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        email: None,
        email_verified: false,
    };
    let id = s.create_user(&new, NOW).await.expect("user").id;
    s.start_totp(&id, format!("plain {name}").as_bytes(), NOW)
        .await
        .expect("totp");
    id
}

fn secret_change(user_id: &str, old: &str, new: &str) -> TotpSecretChange {
    TotpSecretChange {
        user_id: user_id.into(),
        old: old.as_bytes().to_vec(),
        new: new.as_bytes().to_vec(),
    }
}

async fn secrets(s: &SqlStore) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = s
        .totp_secrets()
        .await
        .expect("secrets")
        .into_iter()
        .map(|t| (t.user_id, t.secret))
        .collect();
    all.sort();
    all
}

async fn authenticator_secrets_are_replaced_together_or_not_at_all(s: &SqlStore) {
    assert!(s.totp_secrets().await.expect("none").is_empty());
    let (a, b) = (user_with_secret(s, "alice").await, user_with_secret(s, "bob").await);
    let before = secrets(s).await;
    assert_eq!(before.len(), 2);
    let stale = [
        secret_change(&a, "plain alice", "sealed alice"),
        secret_change(&b, "something else", "sealed bob"),
    ];
    assert!(matches!(
        s.replace_totp_secrets(&stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(secrets(s).await, before, "rolled back");
    let both = [
        secret_change(&a, "plain alice", "sealed alice"),
        secret_change(&b, "plain bob", "sealed bob"),
    ];
    s.replace_totp_secrets(&both).await.expect("replace");
    let after = secrets(s).await;
    assert!(after.contains(&(a.clone(), b"sealed alice".to_vec())));
    assert!(after.contains(&(b.clone(), b"sealed bob".to_vec())));
    s.replace_totp_secrets(&[]).await.expect("nothing to do");
}

on_both_backends!(
    private_keys_are_replaced_together_or_not_at_all,
    authenticator_secrets_are_replaced_together_or_not_at_all,
);
