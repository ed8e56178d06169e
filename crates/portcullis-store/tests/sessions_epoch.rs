//! A sign-in against "sign out everywhere": the user's sessions epoch, read
//! before the password check, refuses a sign-in that began before every
//! sign-in of the user was ended, and lets through one that began after,
//! even within the same second. On SQLite and PostgreSQL.

use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use portcullis_store::*;
use sqlx::Connection as _;

const NOW: UnixTime = UnixTime(1_800_000_000);
const DAY: i64 = 86_400;
const OLD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$bmV3";

async fn user(s: &SqlStore, name: &str) -> User {
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: Some(OLD_HASH.into()),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        email: None,
        email_verified: false,
    };
    s.create_user(&new, NOW).await.expect("create user")
}

async fn client(s: &SqlStore, id: &str) -> Client {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: format!("{id} app"),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    s.create_client(&new, NOW).await.expect("create client")
}

/// A sign-in of `user` as read before its password check: the hash the
/// password was checked against and the sessions epoch read with it.
fn sign_in(user: &User, first: &str) -> NewFamily {
    NewFamily {
        user_id: user.id.clone(),
        client_id: "app".into(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(DAY),
        selector: TokenHash::of(format!("selector:{first}").as_bytes()),
        first_token: TokenHash::of(first.as_bytes()),
        first_token_expires_at: NOW.plus(DAY),
        sessions_epoch: user.sessions_epoch,
        password_hash: user.password_hash.clone(),
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    }
}

async fn reread(s: &SqlStore, user: &User) -> User {
    s.user_by_id(&user.id).await.expect("user")
}

async fn a_sign_in_right_after_a_sign_out_everywhere_succeeds_in_the_same_second(s: &SqlStore) {
    let alice = user(s, "alice").await;
    client(s, "app").await;
    s.start_family(&sign_in(&alice, "a"), NOW).await.expect("signed in");
    assert_eq!(s.revoke_user(&alice.id, RevokeReason::UserRevoked, NOW).await, Ok(1));
    let after = reread(s, &alice).await;
    assert_eq!(after.sessions_epoch, alice.sessions_epoch + 1);
    // Same second as the sign-out: read after it, accepted.
    let fam = s
        .start_family(&sign_in(&after, "b"), NOW)
        .await
        .expect("signed in again");
    assert!(fam.is_live(NOW));
    // Read before it: refused, in that second and later.
    for at in [NOW, NOW.plus(5)] {
        assert_eq!(
            s.start_family(&sign_in(&alice, "c"), at)
                .await
                .expect_err("began before"),
            StoreError::NotFound
        );
    }
    assert_eq!(s.live_families_for_user(&alice.id, NOW).await.expect("list").len(), 1);
}

async fn a_sign_in_right_after_a_password_is_set_succeeds_with_the_new_one(s: &SqlStore) {
    let alice = user(s, "alice").await;
    client(s, "app").await;
    let update = UserUpdate {
        status: None,
        password_hash: Some(NEW_HASH.into()),
    };
    assert_eq!(
        s.update_and_revoke_user(&alice.id, &update, RevokeReason::PasswordChanged, NOW)
            .await,
        Ok(0)
    );
    let after = reread(s, &alice).await;
    assert_eq!(
        (after.password_hash.as_deref(), after.sessions_epoch),
        (Some(NEW_HASH), alice.sessions_epoch + 1)
    );
    s.start_family(&sign_in(&after, "new"), NOW)
        .await
        .expect("new password, same second");
    // Checked against the old hash: refused, whatever the epoch says.
    let old = User {
        sessions_epoch: after.sessions_epoch,
        ..alice.clone()
    };
    assert_eq!(
        s.start_family(&sign_in(&old, "old"), NOW).await.expect_err("old hash"),
        StoreError::NotFound
    );
    // The new hash with the epoch of before (a check that began before the
    // change yet matched the new hash): refused too.
    let stale = User {
        password_hash: Some(NEW_HASH.into()),
        ..alice.clone()
    };
    assert_eq!(
        s.start_family(&sign_in(&stale, "stale"), NOW)
            .await
            .expect_err("old epoch"),
        StoreError::NotFound
    );
}

async fn a_disable_ends_a_sign_in_begun_before_it_even_once_re_enabled(s: &SqlStore) {
    let alice = user(s, "alice").await;
    client(s, "app").await;
    let disable = UserUpdate {
        status: Some(UserStatus::Disabled),
        password_hash: None,
    };
    s.update_and_revoke_user(&alice.id, &disable, RevokeReason::UserRevoked, NOW)
        .await
        .expect("disable");
    let enable = UserChanges {
        status: Some(UserStatus::Active),
        ..UserChanges::default()
    };
    let enabled = s.update_user(&alice.id, &enable, NOW).await.expect("enable");
    assert_eq!(
        enabled.sessions_epoch,
        alice.sessions_epoch + 1,
        "enabling ends nothing"
    );
    assert_eq!(
        s.start_family(&sign_in(&alice, "before"), NOW)
            .await
            .expect_err("began before the disable"),
        StoreError::NotFound
    );
    s.start_family(&sign_in(&enabled, "after"), NOW)
        .await
        .expect("began after the enable");
}

async fn changes_that_end_no_sign_in_keep_the_epoch(s: &SqlStore) {
    let alice = user(s, "alice").await;
    client(s, "app").await;
    let kept = s.start_family(&sign_in(&alice, "kept"), NOW).await.expect("signed in");
    s.start_family(&sign_in(&alice, "other"), NOW).await.expect("signed in");
    s.revoke_family(&kept.id, RevokeReason::SignOut, NOW)
        .await
        .expect("one device");
    s.rehash_user_password(&alice.id, OLD_HASH, NEW_HASH, NOW)
        .await
        .expect("rehash");
    let changes = UserChanges {
        scope: Some(portcullis_domain::Scopes::parse("read").expect("scope")),
        ..UserChanges::default()
    };
    let after = s.update_user(&alice.id, &changes, NOW).await.expect("update");
    assert_eq!(after.sessions_epoch, alice.sessions_epoch);
}

/// Waits until `waiting` of the test database's statements wait for a lock
/// (PostgreSQL), or until the single writer is taken (SQLite, where a
/// second writer then waits for the connection).
async fn until_blocked(db: &TestDb, waiting: i64) {
    for _ in 0..1000 {
        let blocked = if db.url.starts_with("sqlite:") {
            db.pool_stats()
                .iter()
                .any(|&(pool, _, used)| pool == "write" && used == 1)
        } else {
            let mut c = sqlx::PgConnection::connect(&db.url).await.expect("open PostgreSQL");
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut c)
            .await
            .expect("activity");
            c.close().await.ok();
            n >= waiting
        };
        if blocked {
            // Let a SQLite writer queued behind the first reach the pool.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing waited for a lock");
}

/// The sign-out everywhere holds the user's row when the sign-in, its
/// password checked against the epoch of before, reaches the database: the
/// sign-in waits for it, then is refused.
async fn a_sign_in_begun_before_a_sign_out_everywhere_that_waits_for_it_is_refused(db: &TestDb) {
    let alice = user(db, "alice").await;
    client(db, "app").await;
    db.start_family(&sign_in(&alice, "a"), NOW).await.expect("signed in");
    // Writes wait (SQLite's write lock; PostgreSQL's families' lock, which
    // the sign-out takes after the user's row).
    let hold = db.hold_rotations().await;
    let sign_out = db.revoke_user(&alice.id, RevokeReason::UserRevoked, NOW);
    let stale = sign_in(&alice, "b");
    let racing = async {
        until_blocked(db, 1).await;
        db.start_family(&stale, NOW).await
    };
    let release = async {
        until_blocked(db, 2).await;
        hold.release().await;
    };
    let (ended, racing, ()) = tokio::join!(sign_out, racing, release);
    assert_eq!(ended, Ok(1));
    assert_eq!(racing.expect_err("began before"), StoreError::NotFound);
    let after = reread(db, &alice).await;
    db.start_family(&sign_in(&after, "c"), NOW).await.expect("began after");
}

/// The other order: the sign-in holds the user's row first, so the sign-out
/// everywhere waits for it and then ends it too.
async fn a_sign_out_everywhere_that_waits_for_a_sign_in_ends_it(db: &TestDb) {
    let alice = user(db, "alice").await;
    client(db, "app").await;
    db.start_family(&sign_in(&alice, "a"), NOW).await.expect("signed in");
    let hold = db.hold_rotations().await;
    let first = sign_in(&alice, "b");
    let signing_in = db.start_family(&first, NOW);
    let sign_out = async {
        until_blocked(db, 1).await;
        db.revoke_user(&alice.id, RevokeReason::UserRevoked, NOW).await
    };
    let release = async {
        until_blocked(db, 2).await;
        hold.release().await;
    };
    let (signed_in, ended, ()) = tokio::join!(signing_in, sign_out, release);
    let fam = signed_in.expect("signed in before the sign-out");
    assert_eq!(ended, Ok(2));
    assert!(!db.family_by_id(&fam.id).await.expect("family").is_live(NOW));
}

on_both_backends!(
    a_sign_in_right_after_a_sign_out_everywhere_succeeds_in_the_same_second,
    a_sign_in_right_after_a_password_is_set_succeeds_with_the_new_one,
    a_disable_ends_a_sign_in_begun_before_it_even_once_re_enabled,
    changes_that_end_no_sign_in_keep_the_epoch,
    a_sign_in_begun_before_a_sign_out_everywhere_that_waits_for_it_is_refused,
    a_sign_out_everywhere_that_waits_for_a_sign_in_ends_it,
);
