//! One-time codes (migration 8), on SQLite and PostgreSQL: one live code
//! per user and purpose, tries counted before they are answered, expiry,
//! single use, and a code needs its user.

use portcullis_store::on_both_backends;
use portcullis_store::*;

const NOW: UnixTime = UnixTime(1_800_000_000);

async fn user(s: &SqlStore, name: &str) -> User {
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        scope: portcullis_domain::Scopes::empty(),
        email: None,
        email_verified: false,
    };
    s.create_user(&new, NOW).await.expect("create user")
}

fn code(user_id: &str, purpose: CodePurpose, tag: u8) -> NewCode {
    NewCode {
        user_id: user_id.to_owned(),
        purpose,
        salt: vec![tag; 16],
        code_hash: [tag; 32],
        email: (purpose == CodePurpose::VerifyEmail).then(|| "a@example.test".to_owned()),
        expires_at: NOW.plus(900),
    }
}

async fn a_try_is_counted_before_it_is_answered_and_the_fifth_is_the_last(db: &testing::TestDb) {
    let alice = user(db, "alice").await;
    db.put_code(&code(&alice.id, CodePurpose::PasswordReset, 1), NOW)
        .await
        .expect("put");
    for n in 1..=5 {
        let live = db
            .try_code(&alice.id, CodePurpose::PasswordReset, 5, NOW)
            .await
            .expect("try")
            .expect("live");
        assert_eq!(live.attempts, n);
        assert_eq!(live.salt, vec![1; 16]);
        assert_eq!(live.code_hash, vec![1; 32]);
        assert_eq!(live.email, None);
    }
    let none = db
        .try_code(&alice.id, CodePurpose::PasswordReset, 5, NOW)
        .await
        .expect("try");
    assert!(none.is_none(), "a sixth try");
}

async fn a_new_code_replaces_the_old_and_purposes_are_apart(db: &testing::TestDb) {
    let alice = user(db, "alice").await;
    db.put_code(&code(&alice.id, CodePurpose::PasswordReset, 1), NOW)
        .await
        .expect("put");
    db.try_code(&alice.id, CodePurpose::PasswordReset, 5, NOW)
        .await
        .expect("try");
    db.put_code(&code(&alice.id, CodePurpose::PasswordReset, 2), NOW)
        .await
        .expect("put again");
    db.put_code(&code(&alice.id, CodePurpose::VerifyEmail, 3), NOW)
        .await
        .expect("put verify");
    let reset = db
        .try_code(&alice.id, CodePurpose::PasswordReset, 5, NOW)
        .await
        .expect("try")
        .expect("live");
    assert_eq!((reset.salt[0], reset.attempts), (2, 1), "replaced, tries reset");
    let verify = db
        .try_code(&alice.id, CodePurpose::VerifyEmail, 5, NOW)
        .await
        .expect("try")
        .expect("live");
    assert_eq!(verify.salt[0], 3);
    assert_eq!(verify.email.as_deref(), Some("a@example.test"));
}

async fn a_code_is_used_once_and_expires(db: &testing::TestDb) {
    let alice = user(db, "alice").await;
    db.put_code(&code(&alice.id, CodePurpose::PasswordReset, 1), NOW)
        .await
        .expect("put");
    let live = db
        .try_code(&alice.id, CodePurpose::PasswordReset, 5, NOW)
        .await
        .expect("try")
        .expect("live");
    assert!(db.delete_code(&live.id).await.expect("use"));
    assert!(!db.delete_code(&live.id).await.expect("use again"), "used once");
    assert!(
        db.try_code(&alice.id, CodePurpose::PasswordReset, 5, NOW)
            .await
            .expect("try")
            .is_none()
    );

    db.put_code(&code(&alice.id, CodePurpose::PasswordReset, 1), NOW)
        .await
        .expect("put");
    let later = NOW.plus(900);
    assert!(
        db.try_code(&alice.id, CodePurpose::PasswordReset, 5, later)
            .await
            .expect("try")
            .is_none()
    );
    assert_eq!(db.purge_codes(later).await.expect("purge"), 1);
}

async fn codes_need_a_user(db: &testing::TestDb) {
    let err = db
        .put_code(&code("no-such-user", CodePurpose::PasswordReset, 1), NOW)
        .await;
    assert_eq!(err, Err(StoreError::NotFound));
    assert!(
        db.try_code("", CodePurpose::PasswordReset, 5, NOW)
            .await
            .expect("try")
            .is_none()
    );
}

on_both_backends!(
    a_try_is_counted_before_it_is_answered_and_the_fifth_is_the_last,
    a_new_code_replaces_the_old_and_purposes_are_apart,
    a_code_is_used_once_and_expires,
    codes_need_a_user,
);
