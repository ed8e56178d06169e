//! The user lifecycle in the store, on SQLite and PostgreSQL: email
//! addresses unique by key, users without a password, profile changes,
//! a password change that keeps one sign-in, deletion with the feed entry,
//! client changes and secret rotation with a grace period.

use portcullis_domain::{Email, Scopes, Username};
use portcullis_store::on_both_backends;
use portcullis_store::*;

const NOW: UnixTime = UnixTime(1_800_000_000);
const DAY: i64 = 86_400;

fn hash(label: &str) -> TokenHash {
    TokenHash::of(label.as_bytes())
}

fn email(text: &str) -> Email {
    Email::parse(text).expect("email")
}

async fn user(s: &SqlStore, name: &str, password: Option<&str>, address: Option<&str>) -> Result<User, StoreError> {
    let new = NewUser {
        username: Username::parse(name).expect("username"),
        password_hash: password.map(str::to_owned),
        scope: Scopes::parse("read").expect("scope"),
        email: address.map(email),
        email_verified: false,
    };
    s.create_user(&new, NOW).await
}

async fn client(s: &SqlStore, id: &str) -> Client {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: format!("{id} app"),
        secret_hash: Some(hash(&format!("{id}-secret"))),
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: Scopes::parse("read write").expect("scope"),
        default_scope: Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: true,
        sign_up_scope: Scopes::parse("read").expect("scope"),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    s.create_client(&new, NOW).await.expect("create client")
}

async fn family(s: &SqlStore, user: &User, client: &Client, first: &str) -> RefreshFamily {
    let new = NewFamily {
        user_id: user.id.clone(),
        client_id: client.id.clone(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(90 * DAY),
        selector: hash(&format!("selector:{first}")),
        first_token: hash(first),
        first_token_expires_at: NOW.plus(30 * DAY),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    };
    s.start_family(&new, NOW).await.expect("start family")
}

async fn emails_are_unique_ignoring_case_and_passwords_may_be_absent(s: &SqlStore) {
    let bob = user(s, "bob", None, Some("Bob@Example.com")).await.expect("bob");
    assert_eq!(bob.password_hash, None);
    assert_eq!(bob.email.as_ref().map(Email::as_str), Some("Bob@Example.com"));
    assert_eq!(bob.email_verified_at, None);
    let read = s.user_by_id(&bob.id).await.expect("read back");
    assert_eq!(read, bob);
    assert_eq!(
        s.user_by_email(&email("bob@example.COM")).await.expect("by email").id,
        bob.id
    );
    assert_eq!(
        user(s, "carol", Some("h"), Some("BOB@example.com")).await,
        Err(StoreError::Conflict)
    );
    // Users without an address do not collide.
    user(s, "dora", Some("h"), None).await.expect("dora");
    user(s, "erin", Some("h"), None).await.expect("erin");
    assert_eq!(
        s.user_by_email(&email("nobody@example.com")).await,
        Err(StoreError::NotFound)
    );
}

async fn profile_changes_apply_and_a_changed_address_is_unverified(s: &SqlStore) {
    let bob = user(s, "bob", Some("h"), Some("bob@example.com")).await.expect("bob");
    user(s, "carol", Some("h"), Some("carol@example.com"))
        .await
        .expect("carol");
    let later = NOW.plus(60);
    let verified = s
        .update_user(
            &bob.id,
            &UserChanges {
                email_verified: Some(true),
                scope: Some(Scopes::parse("read write").expect("scope")),
                ..UserChanges::default()
            },
            later,
        )
        .await
        .expect("verify");
    assert_eq!(verified.email_verified_at, Some(later));
    assert_eq!(verified.scope, "read write");
    assert_eq!(verified.updated_at, later);
    let moved = s
        .update_user(
            &bob.id,
            &UserChanges {
                email: Some(Some(email("robert@example.com"))),
                ..UserChanges::default()
            },
            later,
        )
        .await
        .expect("new address");
    assert_eq!(moved.email.as_ref().map(Email::as_str), Some("robert@example.com"));
    assert_eq!(moved.email_verified_at, None, "a new address is not verified");
    assert_eq!(moved.scope, "read write", "the rest stays");
    let taken = UserChanges {
        email: Some(Some(email("CAROL@example.com"))),
        ..UserChanges::default()
    };
    assert_eq!(s.update_user(&bob.id, &taken, later).await, Err(StoreError::Conflict));
    let removed = s
        .update_user(
            &bob.id,
            &UserChanges {
                email: Some(None),
                status: Some(UserStatus::Disabled),
                ..UserChanges::default()
            },
            later,
        )
        .await
        .expect("remove");
    assert_eq!(removed.email, None);
    assert_eq!(removed.status, UserStatus::Disabled);
    // The old address is free again.
    user(s, "dora", Some("h"), Some("bob@example.com")).await.expect("dora");
    assert_eq!(
        s.update_user("nope", &UserChanges::default(), later).await,
        Err(StoreError::NotFound)
    );
}

async fn a_password_change_keeps_one_family_and_feeds_the_others(s: &SqlStore) {
    let alice = user(s, "alice", Some("h"), None).await.expect("alice");
    let bob = user(s, "bob", Some("h"), None).await.expect("bob");
    let app = client(s, "app").await;
    let keep = family(s, &alice, &app, "a").await;
    let other = family(s, &alice, &app, "b").await;
    let bobs = family(s, &bob, &app, "c").await;
    let update = UserUpdate {
        status: None,
        password_hash: Some("$argon2id$new".into()),
    };
    let ended = s
        .update_and_revoke_other_families(&alice.id, &update, &keep.id, RevokeReason::PasswordChanged, NOW)
        .await
        .expect("change");
    assert_eq!(ended, 1);
    assert!(s.family_by_id(&keep.id).await.expect("kept").revoked_at.is_none());
    let revoked = s.family_by_id(&other.id).await.expect("other");
    assert_eq!(revoked.revoke_reason, Some(RevokeReason::PasswordChanged));
    assert!(s.family_by_id(&bobs.id).await.expect("bob's").revoked_at.is_none());
    assert_eq!(
        s.user_by_id(&alice.id).await.expect("alice").password_hash.as_deref(),
        Some("$argon2id$new")
    );
    let feed: Vec<(RevocationKind, String)> = s
        .revocations_since(0, 100)
        .await
        .expect("feed")
        .into_iter()
        .map(|e| (e.kind, e.subject))
        .collect();
    assert_eq!(feed, vec![(RevocationKind::Family, other.id.clone())]);
    assert_eq!(
        s.update_and_revoke_other_families("nope", &update, &keep.id, RevokeReason::PasswordChanged, NOW)
            .await,
        Err(StoreError::NotFound)
    );
}

async fn deleting_a_user_deletes_their_families_and_feeds_the_user(s: &SqlStore) {
    let alice = user(s, "alice", Some("h"), Some("alice@example.com"))
        .await
        .expect("alice");
    let bob = user(s, "bob", Some("h"), None).await.expect("bob");
    let app = client(s, "app").await;
    let a = family(s, &alice, &app, "a").await;
    family(s, &alice, &app, "b").await;
    let b = family(s, &bob, &app, "c").await;
    // A sign-in ended before is deleted too, but not counted as ended now.
    let ended = family(s, &alice, &app, "d").await;
    assert_eq!(s.revoke_family(&ended.id, RevokeReason::SignOut, NOW).await, Ok(true));
    assert_eq!(s.delete_user(&alice.id, NOW).await, Ok(2));
    assert_eq!(s.family_by_id(&ended.id).await, Err(StoreError::NotFound));
    assert_eq!(s.user_by_id(&alice.id).await, Err(StoreError::NotFound));
    assert_eq!(s.family_by_id(&a.id).await, Err(StoreError::NotFound));
    assert!(s.family_by_id(&b.id).await.is_ok());
    assert_eq!(
        s.revoked_at(RevocationKind::User, &alice.id).await.expect("feed"),
        Some(NOW)
    );
    assert_eq!(s.delete_user(&alice.id, NOW).await, Err(StoreError::NotFound));
    // Name and address are free again.
    user(s, "alice", Some("h"), Some("alice@example.com"))
        .await
        .expect("again");
}

async fn clients_change_rotate_with_grace_and_stay_revoked(s: &SqlStore) {
    let app = client(s, "app").await;
    assert!(app.allow_sign_up);
    assert_eq!(app.sign_up_scope, "read");
    assert_eq!(app.previous_secret, None);
    let later = NOW.plus(10);
    let changed = s
        .update_client(
            "app",
            &ClientChanges {
                name: Some("App".into()),
                allow_sign_up: Some(false),
                sign_up_scope: Some(Scopes::empty()),
                introspect: Some(true),
                ..ClientChanges::default()
            },
            later,
        )
        .await
        .expect("change");
    assert_eq!(changed.name, "App");
    assert!(!changed.allow_sign_up && changed.introspect);
    assert_eq!(changed.scope, "read write", "the rest stays");
    assert_eq!(changed.updated_at, later);

    let rotated = s
        .rotate_client_secret("app", hash("second"), Some(NOW.plus(DAY)), later)
        .await
        .expect("rotate");
    assert_eq!(rotated.secret_hash, Some(hash("second")));
    let previous = PreviousSecret {
        hash: hash("app-secret"),
        expires_at: NOW.plus(DAY),
    };
    assert_eq!(rotated.previous_secret, Some(previous));
    assert_eq!(rotated.previous_secret_at(NOW), Some(hash("app-secret")));
    assert_eq!(
        rotated.previous_secret_at(NOW.plus(DAY)),
        None,
        "not at or after its end"
    );
    // The next rotation replaces the kept secret; without grace none is kept.
    let again = s
        .rotate_client_secret("app", hash("third"), None, later)
        .await
        .expect("rotate");
    assert_eq!(again.previous_secret, None);
    assert_eq!(
        s.client_by_id("app").await.expect("read").secret_hash,
        Some(hash("third"))
    );

    s.revoke_client("app", later).await.expect("revoke");
    assert_eq!(
        s.update_client("app", &ClientChanges::default(), later).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        s.rotate_client_secret("app", hash("fourth"), None, later).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        s.update_client("nope", &ClientChanges::default(), later).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.rotate_client_secret("nope", hash("x"), None, later).await,
        Err(StoreError::NotFound)
    );
}

/// A sign-in bound to a DPoP key keeps the binding across rotations (it is
/// the family's, never rewritten); clients keep their DPoP settings; the
/// server secret is made once and then the same for every caller.
async fn dpop_bindings_and_settings_persist(s: &SqlStore) {
    let alice = user(s, "alice", Some("h"), None).await.expect("alice");
    let app = client(s, "app").await;
    assert!(!app.dpop_bound_access_tokens && !app.dpop_nonce_required);
    let new = NewFamily {
        user_id: alice.id.clone(),
        client_id: app.id.clone(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(90 * DAY),
        selector: hash("selector:bound"),
        first_token: hash("bound-1"),
        first_token_expires_at: NOW.plus(30 * DAY),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: Some("jkt-of-the-phone".into()),
        amr: None,
    };
    let bound = s.start_family(&new, NOW).await.expect("start family");
    assert_eq!(bound.dpop_jkt.as_deref(), Some("jkt-of-the-phone"));
    let rotate = Rotate {
        family_id: &bound.id,
        presented: hash("bound-1"),
        client_id: &app.id,
        selector: hash("selector:bound"),
        child: hash("bound-2"),
        child_expires_at: NOW.plus(30 * DAY),
        successor: None,
        now: NOW.plus(1),
        audit: None,
    };
    match s.rotate_refresh(&rotate).await.expect("rotate") {
        Rotation::Rotated(f) => assert_eq!(f.dpop_jkt.as_deref(), Some("jkt-of-the-phone")),
        other => panic!("not rotated: {other:?}"),
    }
    let key = TokenKey::Selector(hash("selector:bound"));
    let (read, _, _) = s.refresh_context(&key).await.expect("context");
    assert_eq!(
        (read.current.generation, read.dpop_jkt.as_deref()),
        (2, Some("jkt-of-the-phone"))
    );
    assert_eq!(family(s, &alice, &app, "unbound").await.dpop_jkt, None);

    let changes = ClientChanges {
        dpop_bound_access_tokens: Some(true),
        dpop_nonce_required: Some(true),
        first_party: None,
        mfa_required: None,
        ..ClientChanges::default()
    };
    let changed = s.update_client("app", &changes, NOW).await.expect("update");
    assert!(changed.dpop_bound_access_tokens && changed.dpop_nonce_required);
    let read = s.client_by_id("app").await.expect("client");
    assert!(read.dpop_bound_access_tokens && read.dpop_nonce_required);
    let name_only = ClientChanges {
        name: Some("renamed".into()),
        ..ClientChanges::default()
    };
    let renamed = s.update_client("app", &name_only, NOW).await.expect("update");
    assert!(renamed.dpop_bound_access_tokens, "absent fields stay");

    let first = s.server_secret("dpop_nonce", &[1; 32], NOW).await.expect("secret");
    assert_eq!(first, [1; 32]);
    let again = s.server_secret("dpop_nonce", &[2; 32], NOW).await.expect("secret");
    assert_eq!(again, first, "the stored secret wins");
    assert_eq!(s.server_secret("other", &[3; 32], NOW).await.expect("secret"), [3; 32]);
}

on_both_backends!(
    dpop_bindings_and_settings_persist,
    emails_are_unique_ignoring_case_and_passwords_may_be_absent,
    profile_changes_apply_and_a_changed_address_is_unverified,
    a_password_change_keeps_one_family_and_feeds_the_others,
    deleting_a_user_deletes_their_families_and_feeds_the_user,
    clients_change_rotate_with_grace_and_stay_revoked,
);
