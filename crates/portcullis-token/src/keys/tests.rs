//! Key creation, selection and the public set.

use super::*;

fn stored(new: NewSigningKey, created: i64) -> SigningKey {
    SigningKey {
        kid: new.kid,
        alg: new.alg,
        public_jwk: new.public_jwk,
        private_key: new.private_key,
        state: KeyState::Active,
        created_at: UnixTime(created),
        retire_after: None,
        retired_at: None,
    }
}

#[test]
fn every_algorithm_generates_signs_and_publishes_public_members_only() {
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        let key = stored(generate(alg, None).expect("generate"), 1);
        let set = KeySet::from_stored(std::slice::from_ref(&key), None, UnixTime(2), 60, 0).expect("set");
        assert_eq!(set.signer(UnixTime(2)).alg(), alg);
        let jwt = set
            .signer(UnixTime(2))
            .sign_jwt(&json!({"alg": alg.as_str()}), &json!({"a": 1}))
            .expect("sign");
        assert_eq!(jwt.split('.').count(), 3);
        let jwks: Value = serde_json::from_str(&set.jwks).expect("json");
        let k = &jwks["keys"][0];
        assert_eq!(k["kid"], key.kid.as_str());
        assert_eq!(k["alg"], alg.as_str());
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{alg}: {private} published");
        }
    }
}

#[test]
fn the_newest_active_key_signs_and_old_retired_keys_leave_the_jwks() {
    let old = stored(generate(Alg::Es256, None).expect("old"), 1);
    let mut retired = stored(generate(Alg::Es256, None).expect("retired"), 2);
    retired.state = KeyState::Retired;
    retired.retired_at = Some(UnixTime(100));
    let new = stored(generate(Alg::EdDsa, None).expect("new"), 3);
    let keys = [old.clone(), retired.clone(), new.clone()];
    let set = KeySet::from_stored(&keys, None, UnixTime(120), 60, 0).expect("set");
    assert_eq!(set.signer(UnixTime(120)).kid(), new.kid);
    assert!(set.jwks.contains(&retired.kid), "retired 20 s ago: still published");
    let later = KeySet::from_stored(&keys, None, UnixTime(161), 60, 0).expect("set");
    assert!(!later.jwks.contains(&retired.kid), "retired 61 s ago: gone");
    assert!(later.jwks.contains(&old.kid));
}

#[test]
fn a_new_key_signs_only_after_it_has_been_published_for_the_delay() {
    let old = stored(generate(Alg::Es256, None).expect("old"), 1_000);
    let new = stored(generate(Alg::Es256, None).expect("new"), 5_000);
    let keys = [old.clone(), new.clone()];
    let set = KeySet::from_stored(&keys, None, UnixTime(5_100), 960, 300).expect("set");
    assert_eq!(
        set.signer(UnixTime(5_100)).kid(),
        old.kid,
        "the new key is published but does not sign yet"
    );
    assert!(set.jwks.contains(&new.kid));
    assert_eq!(
        set.signer(UnixTime(5_300)).kid(),
        new.kid,
        "it takes over without a reload"
    );
    // A fresh database: the only key signs at once.
    let only = KeySet::from_stored(std::slice::from_ref(&new), None, UnixTime(5_000), 960, 300).expect("set");
    assert_eq!(only.signer(UnixTime(5_000)).kid(), new.kid);
}

#[test]
fn private_members_in_a_stored_jwk_are_dropped() {
    let v = public_only(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"SECRET","kid":"k"}"#).expect("jwk");
    assert!(v.get("d").is_none());
    assert_eq!(v["x"], "a");
}
