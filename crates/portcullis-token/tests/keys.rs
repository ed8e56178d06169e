//! Signing-key maintenance on both backends: scheduled rotation, retiring
//! superseded keys, deleting keys that have left the JWKS.

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::testing::TestDb;
use portcullis_store::{KeyState, KeyStore as _, Store, UnixTime, on_both_backends};
use portcullis_token::keys::{Alg, generate};
use portcullis_token::{TokenConfig, TokenService};

async fn maintenance_rotates_retires_and_deletes_keys(db: &TestDb) {
    let now = UnixTime::now();
    let day = 86_400;
    // An old key, a newer one that has long been signing, and a key retired
    // long ago.
    let old = generate(Alg::Es256, None).expect("key");
    let current = generate(Alg::Es256, None).expect("key");
    let gone = generate(Alg::Es256, None).expect("key");
    db.insert_signing_key(&old, now.plus(-3 * day)).await.expect("old");
    db.insert_signing_key(&current, now.plus(-2 * day))
        .await
        .expect("current");
    db.insert_signing_key(&gone, now.plus(-4 * day)).await.expect("gone");
    db.retire_signing_key(&gone.kid, now.plus(-day)).await.expect("retire");

    let mut config = TokenConfig::new("https://auth.example");
    config.key_rotation_period = Some(Duration::from_secs(86_400));
    let store: Arc<dyn Store> = Arc::new(db.store.clone());
    let svc = TokenService::start(store, config).await.expect("start");
    svc.maintain_keys().await.expect("maintain");

    let keys = db.signing_keys().await.expect("keys");
    let state = |kid: &str| keys.iter().find(|k| k.kid == kid).map(|k| k.state);
    assert_eq!(state(&old.kid), Some(KeyState::Retired), "superseded long enough ago");
    assert_eq!(state(&current.kid), Some(KeyState::Active));
    assert_eq!(state(&gone.kid), None, "deleted once out of the JWKS");
    let fresh: Vec<_> = keys.iter().filter(|k| k.created_at >= now).collect();
    assert_eq!(fresh.len(), 1, "the rotation period passed: a new key");
    assert_eq!(fresh[0].state, KeyState::Active);
}

on_both_backends!(maintenance_rotates_retires_and_deletes_keys);
