//! The store suite: every test body runs on SQLite and on PostgreSQL, each on
//! a fresh database.

use portcullis_domain::AuditAction;
use portcullis_store::on_both_backends;
use portcullis_store::testing::TestingStore as _;
use portcullis_store::*;

const NOW: UnixTime = UnixTime(1_800_000_000);
const DAY: i64 = 86_400;

fn hash(label: &str) -> TokenHash {
    TokenHash::of(label.as_bytes())
}

/// The hash of the selector of the family whose first token is `first`.
fn selector(first: &str) -> TokenHash {
    hash(&format!("selector:{first}"))
}

async fn user(s: &SqlStore, name: &str) -> User {
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        scope: portcullis_domain::Scopes::parse("read write").expect("scope"),
        email: None,
        email_verified: false,
    };
    s.create_user(&new, NOW).await.expect("create user")
}

async fn client(s: &SqlStore, id: &str) -> Client {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: format!("{id} app"),
        secret_hash: Some(hash(&format!("{id}-secret"))),
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read write").expect("scope"),
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

/// A family whose first token is `first`, its selector named after it.
async fn family(s: &SqlStore, user: &User, client: &Client, first: &str) -> RefreshFamily {
    let new = NewFamily {
        user_id: user.id.clone(),
        client_id: client.id.clone(),
        scope: "read".into(),
        device_label: Some("Pixel 9".into()),
        expires_at: NOW.plus(90 * DAY),
        selector: selector(first),
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

/// A refresh of the family `family_id` presenting `presented`. The child
/// carries a selector of its own: these families all have theirs, which a
/// rotation keeps (only a family from before constant state takes the one
/// given; see the tests of those).
fn rotate<'a>(family_id: &'a str, presented: &str, client_id: &'a str, child: &str, now: UnixTime) -> Rotate<'a> {
    Rotate {
        family_id,
        presented: hash(presented),
        client_id,
        selector: hash("selector:unused"),
        child: hash(child),
        child_expires_at: now.plus(30 * DAY),
        successor: Some(Sealed(format!("sealed:{child}").into_bytes())),
        audit: None,
        now,
    }
}

// ---------------------------------------------------------------- users

async fn users_are_created_and_found_by_id_and_username(s: &SqlStore) {
    let alice = user(s, "alice").await;
    assert_eq!(alice.status, UserStatus::Active);
    assert_eq!(alice.created_at, NOW);
    assert_eq!(s.user_by_id(&alice.id).await.expect("by id"), alice);
    assert_eq!(
        s.user_by_username(&portcullis_domain::Username::parse("ALICE").expect("username"))
            .await
            .expect("by name, in any case"),
        alice
    );
}

async fn duplicate_username_is_a_conflict(s: &SqlStore) {
    user(s, "alice").await;
    let again = NewUser {
        username: portcullis_domain::Username::parse("alice").expect("username"),
        password_hash: Some("x".into()),
        scope: portcullis_domain::Scopes::empty(),
        email: None,
        email_verified: false,
    };
    assert_eq!(
        s.create_user(&again, NOW).await.expect_err("duplicate"),
        StoreError::Conflict
    );
}

async fn unknown_user_is_not_found(s: &SqlStore) {
    assert_eq!(s.user_by_id("nope").await.expect_err("id"), StoreError::NotFound);
    assert_eq!(
        s.user_by_username(&portcullis_domain::Username::parse("nope").expect("username"))
            .await
            .expect_err("name"),
        StoreError::NotFound
    );
    assert_eq!(
        s.set_user_status("nope", UserStatus::Disabled, NOW).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.set_user_password_hash("nope", "h", NOW).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.set_user_scope("nope", "read", NOW).await, Err(StoreError::NotFound));
}

async fn users_are_listed_by_username_in_pages(s: &SqlStore) {
    for name in ["carol", "alice", "bob"] {
        user(s, name).await;
    }
    let names = |v: Vec<User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(names(s.list_users(None, 2).await.expect("page 1")), ["alice", "bob"]);
    assert_eq!(names(s.list_users(Some("bob"), 2).await.expect("page 2")), ["carol"]);
    assert!(s.list_users(Some("carol"), 2).await.expect("page 3").is_empty());
}

async fn user_status_password_and_scope_can_change(s: &SqlStore) {
    let alice = user(s, "alice").await;
    let later = NOW.plus(60);
    s.set_user_status(&alice.id, UserStatus::Disabled, later)
        .await
        .expect("disable");
    s.set_user_password_hash(&alice.id, "$argon2id$new", later)
        .await
        .expect("password");
    s.set_user_scope(&alice.id, "read portcullis:admin", later)
        .await
        .expect("scope");
    let got = s.user_by_id(&alice.id).await.expect("reload");
    assert_eq!(got.status, UserStatus::Disabled);
    assert_eq!(got.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(got.scope, "read portcullis:admin");
    assert_eq!(got.updated_at, later);
    assert_eq!(got.created_at, NOW);
}

async fn a_rehash_does_not_undo_a_password_change(s: &SqlStore) {
    let alice = user(s, "alice").await;
    let old = alice.password_hash.clone().expect("a password");
    assert!(
        s.rehash_user_password(&alice.id, &old, "$argon2id$rehashed", NOW)
            .await
            .expect("rehash")
    );
    s.set_user_password_hash(&alice.id, "$argon2id$changed", NOW)
        .await
        .expect("change");
    assert!(
        !s.rehash_user_password(&alice.id, "$argon2id$rehashed", "$argon2id$stale", NOW)
            .await
            .expect("stale")
    );
    assert_eq!(
        s.user_by_id(&alice.id).await.expect("user").password_hash.as_deref(),
        Some("$argon2id$changed")
    );
}

async fn debug_output_hides_password_hashes(s: &SqlStore) {
    let alice = user(s, "alice").await;
    let shown = format!("{alice:?}");
    assert!(!shown.contains("argon2id"), "{shown}");
    assert!(shown.contains("[redacted]"));
}

// ---------------------------------------------------------------- clients

async fn clients_are_created_and_read_back(s: &SqlStore) {
    let app = client(s, "app").await;
    assert_eq!(app.secret_hash, Some(hash("app-secret")));
    assert!(!app.is_public());
    assert_eq!(app.status, ClientStatus::Active);
    assert_eq!(s.client_by_id("app").await.expect("by id"), app);

    let public = NewClient {
        id: portcullis_domain::ClientId::parse("mobile").expect("client id"),
        secret_hash: None,
        introspect: true,
        web_origins: portcullis_domain::WebOrigins::default(),
        ..new_client_like(&app)
    };
    let mobile = s.create_client(&public, NOW).await.expect("public client");
    assert!(mobile.is_public());
    assert!(mobile.introspect);
    let ids: Vec<_> = s
        .list_clients()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["app", "mobile"]);
}

fn new_client_like(c: &Client) -> NewClient {
    NewClient {
        id: portcullis_domain::ClientId::parse(&c.id).expect("client id"),
        name: c.name.clone(),
        secret_hash: c.secret_hash,
        grant_types: c.grant_types.clone(),
        scope: c.scope.clone(),
        default_scope: c.default_scope.clone(),
        introspect: c.introspect,
        web_origins: c.web_origins.clone(),
        allow_sign_up: c.allow_sign_up,
        sign_up_scope: c.sign_up_scope.clone(),
        dpop_bound_access_tokens: c.dpop_bound_access_tokens,
        dpop_nonce_required: c.dpop_nonce_required,
        first_party: c.first_party,
        mfa_required: c.mfa_required,
    }
}

async fn duplicate_client_id_is_a_conflict(s: &SqlStore) {
    let app = client(s, "app").await;
    assert_eq!(
        s.create_client(&new_client_like(&app), NOW).await.expect_err("dup"),
        StoreError::Conflict
    );
}

async fn unknown_client_is_not_found(s: &SqlStore) {
    assert_eq!(s.client_by_id("nope").await.expect_err("get"), StoreError::NotFound);
    assert_eq!(
        s.set_client_secret_hash("nope", hash("x"), NOW).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.revoke_client("nope", NOW).await, Err(StoreError::NotFound));
}

async fn client_secret_rotation_replaces_the_hash(s: &SqlStore) {
    client(s, "app").await;
    s.set_client_secret_hash("app", hash("new-secret"), NOW.plus(5))
        .await
        .expect("rotate");
    let app = s.client_by_id("app").await.expect("reload");
    assert_eq!(app.secret_hash, Some(hash("new-secret")));
    assert_eq!(app.updated_at, NOW.plus(5));
}

// ---------------------------------------------------------------- refresh

async fn a_family_starts_with_one_live_token(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    assert_eq!(fam.user_id, alice.id);
    assert_eq!(fam.client_id, "app");
    assert_eq!(fam.device_label.as_deref(), Some("Pixel 9"));
    assert_eq!((fam.created_at, fam.last_used_at), (NOW, NOW));
    assert!(fam.is_live(NOW));
    assert_eq!(
        fam.current,
        CurrentToken {
            generation: 1,
            hash: Some(hash("rt-1")),
            expires_at: NOW.plus(30 * DAY),
        }
    );
    assert_eq!(fam.previous, None);
    assert_eq!(fam.current_issued_at(), NOW);
    assert!(fam.current_is(&hash("rt-1"), NOW));
    assert!(!fam.current_is(&hash("rt-1"), NOW.plus(30 * DAY)), "idle expiry");
    assert!(!fam.current_is(&hash("rt-2"), NOW));
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(selector("rt-1")))
            .await
            .expect("by selector"),
        fam
    );
    assert_eq!(s.family_by_id(&fam.id).await.expect("family"), fam);
    let counts = s.refresh_row_counts().await.expect("counts");
    assert_eq!((counts.families, counts.tokens), (1, 0), "one row, no token rows");
}

async fn a_taken_selector_is_a_conflict(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let first = family(s, &alice, &app, "rt-1").await;
    let again = NewFamily {
        user_id: alice.id.clone(),
        client_id: app.id.clone(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(DAY),
        selector: selector("rt-1"),
        first_token: hash("other"),
        first_token_expires_at: NOW.plus(DAY),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    };
    assert_eq!(
        s.start_family(&again, NOW).await.expect_err("taken"),
        StoreError::Conflict
    );
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(selector("rt-1")))
            .await
            .expect("first"),
        first
    );
    assert_eq!(s.refresh_row_counts().await.expect("counts").families, 1);
}

async fn a_family_for_an_unknown_user_or_client_is_not_found(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let ghost = User {
        id: "ghost".into(),
        ..alice.clone()
    };
    let new = NewFamily {
        user_id: ghost.id.clone(),
        client_id: app.id.clone(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(DAY),
        selector: selector("x"),
        first_token: hash("x"),
        first_token_expires_at: NOW.plus(DAY),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    };
    assert_eq!(
        s.start_family(&new, NOW).await.expect_err("ghost user"),
        StoreError::NotFound
    );
    let new = NewFamily {
        user_id: alice.id.clone(),
        client_id: "ghost".into(),
        ..new
    };
    assert_eq!(
        s.start_family(&new, NOW).await.expect_err("ghost client"),
        StoreError::NotFound
    );
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(selector("x")))
            .await
            .expect_err("nothing stored"),
        StoreError::NotFound
    );
    assert_eq!(s.refresh_row_counts().await.expect("counts").families, 0);
}

async fn unknown_refresh_lookups_are_not_found(s: &SqlStore) {
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(hash("nope")))
            .await
            .expect_err("selector"),
        StoreError::NotFound
    );
    assert_eq!(
        s.family_by_token(&TokenKey::Legacy(hash("nope")))
            .await
            .expect_err("legacy"),
        StoreError::NotFound
    );
    assert_eq!(
        s.refresh_context(&TokenKey::Legacy(hash("nope")))
            .await
            .expect_err("legacy context"),
        StoreError::NotFound
    );
    assert_eq!(s.family_by_id("nope").await.expect_err("family"), StoreError::NotFound);
    assert_eq!(
        s.rotate_refresh(&rotate("nope", "nope", "app", "child", NOW))
            .await
            .expect("rotate"),
        Rotation::NotFound
    );
}

/// A token the family never held (a forged one with the family's
/// selector) is not its current token: spent, and nothing changes.
async fn a_token_the_family_never_held_is_spent(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    let got = s
        .rotate_refresh(&rotate(&fam.id, "forged", "app", "child", NOW))
        .await
        .expect("rotate");
    assert_eq!(got, Rotation::Spent(fam.clone()));
    assert_eq!(s.family_by_id(&fam.id).await.expect("family"), fam);
}

async fn rotation_replaces_the_current_token_with_its_child(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    let later = NOW.plus(600);
    let Rotation::Rotated(f) = s
        .rotate_refresh(&rotate(&fam.id, "rt-1", "app", "rt-2", later))
        .await
        .expect("rotate")
    else {
        panic!("expected a rotation")
    };
    assert_eq!(
        f,
        RefreshFamily {
            last_used_at: later,
            current: CurrentToken {
                generation: 2,
                hash: Some(hash("rt-2")),
                expires_at: later.plus(30 * DAY),
            },
            previous: Some(PreviousToken {
                hash: hash("rt-1"),
                used_at: later,
                successor: Some(Sealed(b"sealed:rt-2".to_vec())),
            }),
            ..fam.clone()
        }
    );
    assert_eq!(f.current_issued_at(), later);
    assert_eq!(s.family_by_id(&fam.id).await.expect("stored"), f);
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(selector("rt-1")))
            .await
            .expect("same selector"),
        f
    );
    // The child works, and is bound to the same family.
    let next = s
        .rotate_refresh(&rotate(&fam.id, "rt-2", "app", "rt-3", later.plus(1)))
        .await
        .expect("rotate child");
    assert!(
        matches!(next, Rotation::Rotated(ref family) if family.id == fam.id && family.current.generation == 3),
        "{next:?}"
    );
}

async fn a_rotation_records_its_audit_event_with_it(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    let event = NewAuditEvent {
        actor: Some(alice.id.clone()),
        ..NewAuditEvent::new(AuditAction::Refresh)
    };
    let r = Rotate {
        audit: Some(event.clone()),
        ..rotate(&fam.id, "rt-1", "app", "rt-2", NOW)
    };
    assert!(matches!(
        s.rotate_refresh(&r).await.expect("rotate"),
        Rotation::Rotated(_)
    ));
    // A losing attempt records nothing.
    let again = Rotate {
        audit: Some(event),
        ..rotate(&fam.id, "rt-1", "app", "rt-3", NOW)
    };
    assert!(matches!(
        s.rotate_refresh(&again).await.expect("again"),
        Rotation::Spent(_)
    ));
    let events = s.audit_events(None, 10).await.expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].action.as_str(), events[0].at), ("refresh", NOW));
}

async fn a_spent_token_reports_the_family_with_its_successor(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    let Rotation::Rotated(rotated) = s
        .rotate_refresh(&rotate(&fam.id, "rt-1", "app", "rt-2", NOW))
        .await
        .expect("first")
    else {
        panic!("expected a rotation")
    };
    let again = s
        .rotate_refresh(&rotate(&fam.id, "rt-1", "app", "rt-2b", NOW.plus(1)))
        .await
        .expect("replay");
    let Rotation::Spent(family) = again else {
        panic!("expected Spent, got {again:?}")
    };
    assert_eq!(family, rotated, "the family as the rotation left it");
    assert_eq!(family.current.hash, Some(hash("rt-2")));
    let previous = family.previous.clone().expect("previous");
    assert_eq!((previous.hash, previous.used_at), (hash("rt-1"), NOW));
    assert_eq!(
        previous.successor,
        Some(Sealed(b"sealed:rt-2".to_vec())),
        "the winner's sealed successor"
    );
    assert!(!format!("{family:?}").contains("sealed:"), "Debug hides it");
    assert!(family.is_live(NOW));
    // Nothing was written for the replay.
    assert_eq!(s.family_by_id(&fam.id).await.expect("family"), rotated);
}

/// After 50 rotations the family is still one row with its current and
/// previous token: any token it held before is spent (reuse), and nothing
/// of the earlier tokens is kept.
async fn state_stays_constant_over_50_rotations(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "gen-1").await;
    let mut last = fam.clone();
    for g in 1..=50_i64 {
        let (presented, child) = (format!("gen-{g}"), format!("gen-{}", g + 1));
        let got = s
            .rotate_refresh(&rotate(&fam.id, &presented, "app", &child, NOW.plus(g)))
            .await
            .expect("rotate");
        let Rotation::Rotated(f) = got else {
            panic!("generation {g}: {got:?}")
        };
        assert_eq!(f.current.generation, g + 1);
        last = f;
        let counts = s.refresh_row_counts().await.expect("counts");
        assert_eq!((counts.families, counts.tokens), (1, 0), "after {g} rotations");
    }
    assert_eq!(last.current.hash, Some(hash("gen-51")));
    assert_eq!(last.previous.as_ref().map(|p| p.hash), Some(hash("gen-50")));
    // Generation 3's token, and every other one the family ever held.
    for g in [3, 1, 2, 25, 49] {
        let got = s
            .rotate_refresh(&rotate(&fam.id, &format!("gen-{g}"), "app", "stale", NOW.plus(100)))
            .await
            .expect("replay");
        assert_eq!(got, Rotation::Spent(last.clone()), "generation {g}");
    }
    assert_eq!(s.family_by_id(&fam.id).await.expect("family"), last, "unchanged");
    let counts = s.refresh_row_counts().await.expect("counts");
    assert_eq!((counts.families, counts.tokens), (1, 0));
}

async fn another_clients_token_is_refused_and_left_untouched(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    client(s, "other").await;
    let fam = family(s, &alice, &app, "rt-1").await;
    let got = s
        .rotate_refresh(&rotate(&fam.id, "rt-1", "other", "stolen", NOW))
        .await
        .expect("rotate");
    assert_eq!(got, Rotation::Refused(Refusal::WrongClient));
    assert_eq!(s.family_by_id(&fam.id).await.expect("still there"), fam);
    let ok = s
        .rotate_refresh(&rotate(&fam.id, "rt-1", "app", "rt-2", NOW))
        .await
        .expect("owner");
    assert!(matches!(ok, Rotation::Rotated(_)), "{ok:?}");
}

async fn expired_tokens_and_families_are_refused(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    // Idle expiry: 30 days.
    let idle = s
        .rotate_refresh(&rotate(&fam.id, "rt-1", "app", "c", NOW.plus(30 * DAY)))
        .await
        .expect("idle");
    assert_eq!(idle, Rotation::Refused(Refusal::TokenExpired));
    // Absolute expiry: 90 days, even for a token used every day.
    let mut current = "rt-1".to_owned();
    for day in 1..90 {
        let next = format!("rt-day-{day}");
        let r = s
            .rotate_refresh(&rotate(&fam.id, &current, "app", &next, NOW.plus(day * DAY)))
            .await
            .expect("daily");
        assert!(matches!(r, Rotation::Rotated(_)), "day {day}: {r:?}");
        current = next;
    }
    let last = s.family_by_id(&fam.id).await.expect("last");
    assert_eq!(last.current.hash, Some(hash(&current)));
    assert_eq!(
        last.current.expires_at,
        NOW.plus(90 * DAY),
        "child expiry is capped at the family's"
    );
    let end = s
        .rotate_refresh(&rotate(&fam.id, &current, "app", "too-late", NOW.plus(90 * DAY)))
        .await
        .expect("end");
    assert!(
        matches!(end, Rotation::Refused(Refusal::FamilyExpired | Refusal::TokenExpired)),
        "{end:?}"
    );
}

async fn live_families_list_a_users_devices(s: &SqlStore) {
    let (alice, bob, app) = (user(s, "alice").await, user(s, "bob").await, client(s, "app").await);
    let f1 = family(s, &alice, &app, "a1").await;
    let f2 = family(s, &alice, &app, "a2").await;
    let f3 = family(s, &alice, &app, "a3").await;
    family(s, &bob, &app, "b1").await;
    s.revoke_family(&f2.id, RevokeReason::SignOut, NOW)
        .await
        .expect("sign out");
    let live: Vec<_> = s
        .live_families_for_user(&alice.id, NOW)
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(live, [f3.id.clone(), f1.id.clone()]);
    assert!(
        s.live_families_for_user(&alice.id, NOW.plus(90 * DAY))
            .await
            .expect("later")
            .is_empty()
    );
}

async fn purge_deletes_dead_families(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let dead = family(s, &alice, &app, "dead").await;
    let live = family(s, &alice, &app, "live").await;
    s.revoke_family(&dead.id, RevokeReason::SignOut, NOW)
        .await
        .expect("revoke");
    assert_eq!(s.purge_families(NOW.plus(1)).await.expect("purge"), 1);
    assert_eq!(s.family_by_id(&dead.id).await.expect_err("gone"), StoreError::NotFound);
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(selector("dead")))
            .await
            .expect_err("its token finds nothing"),
        StoreError::NotFound
    );
    assert!(s.family_by_id(&live.id).await.is_ok());
    assert_eq!(s.refresh_row_counts().await.expect("counts").families, 1);
    assert_eq!(s.purge_families(NOW.plus(91 * DAY)).await.expect("purge expired"), 1);
    assert_eq!(s.refresh_row_counts().await.expect("counts").families, 0);
}

/// The clean-ups change at most a chunk of rows a statement (1000): one
/// more than a chunk is still cleared or deleted whole.
async fn clean_ups_work_through_more_than_one_chunk(s: &SqlStore) {
    const N: usize = 1001;
    let (alice, bob, app) = (user(s, "alice").await, user(s, "bob").await, client(s, "app").await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (s, alice, app) = (s.clone(), alice.clone(), app.clone());
        tasks.spawn(async move {
            let f = family(&s, &alice, &app, &format!("c{i}")).await;
            let (from, to) = (format!("c{i}"), format!("d{i}"));
            let r = s.rotate_refresh(&rotate(&f.id, &from, "app", &to, NOW)).await;
            assert!(matches!(r.expect("rotate"), Rotation::Rotated(_)));
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.expect("task");
    }
    let kept = family(s, &bob, &app, "bob").await;
    s.rotate_refresh(&rotate(&kept.id, "bob", "app", "bob2", NOW.plus(50)))
        .await
        .expect("bob's, later");
    assert_eq!(s.clear_successors(NOW.plus(1)).await.expect("clear"), N as u64);
    let bob_now = s.family_by_id(&kept.id).await.expect("bob");
    assert!(
        bob_now.previous.and_then(|p| p.successor).is_some(),
        "a family rotated after the cutoff keeps its successor"
    );
    s.revoke_user(&alice.id, RevokeReason::UserRevoked, NOW.plus(2))
        .await
        .expect("revoke alice");
    assert_eq!(s.purge_families(NOW.plus(3)).await.expect("purge"), N as u64);
    assert_eq!(s.refresh_row_counts().await.expect("counts").families, 1, "bob's stays");
}

// ---------------------------------------------------------------- revocation

async fn revoking_a_family_kills_every_token_of_it_at_once(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "rt-1").await;
    let other = family(s, &alice, &app, "other-1").await;
    s.rotate_refresh(&rotate(&fam.id, "rt-1", "app", "rt-2", NOW))
        .await
        .expect("rotate");
    assert!(
        s.revoke_family(&fam.id, RevokeReason::Reuse, NOW.plus(1))
            .await
            .expect("revoke")
    );
    let got = s.family_by_id(&fam.id).await.expect("family");
    assert_eq!(got.revoked_at, Some(NOW.plus(1)));
    assert_eq!(got.revoke_reason, Some(RevokeReason::Reuse));
    assert!(!got.is_live(NOW.plus(1)));
    assert!(!got.current_is(&hash("rt-2"), NOW.plus(1)));
    assert_eq!(
        got.previous.as_ref().map(|p| &p.successor),
        Some(&None),
        "its sealed successor is forgotten"
    );
    // The newest token dies with its family; the spent one stays spent.
    let newest = s
        .rotate_refresh(&rotate(&fam.id, "rt-2", "app", "rt-3", NOW.plus(2)))
        .await
        .expect("newest");
    assert_eq!(newest, Rotation::Refused(Refusal::FamilyRevoked));
    assert_eq!(
        s.rotate_refresh(&rotate(&fam.id, "rt-1", "app", "x", NOW.plus(2)))
            .await,
        Ok(Rotation::Spent(got.clone()))
    );
    // Another family of the same user is untouched.
    assert!(s.family_by_id(&other.id).await.expect("other").is_live(NOW.plus(2)));
    // Revoking twice changes nothing; an unknown family is not found.
    assert!(
        !s.revoke_family(&fam.id, RevokeReason::SignOut, NOW.plus(3))
            .await
            .expect("again")
    );
    assert_eq!(
        s.family_by_id(&fam.id).await.expect("family").revoke_reason,
        Some(RevokeReason::Reuse)
    );
    assert_eq!(
        s.revoke_family("nope", RevokeReason::SignOut, NOW).await,
        Err(StoreError::NotFound)
    );
    let feed = s.revocations_since(0, 10).await.expect("feed");
    assert_eq!(feed.len(), 1, "one feed entry, not two: {feed:?}");
    assert_eq!(
        (feed[0].kind, feed[0].subject.as_str()),
        (RevocationKind::Family, fam.id.as_str())
    );
}

async fn revoking_a_user_ends_all_their_families_only(s: &SqlStore) {
    let (alice, bob, app) = (user(s, "alice").await, user(s, "bob").await, client(s, "app").await);
    family(s, &alice, &app, "a1").await;
    let a2 = family(s, &alice, &app, "a2").await;
    let bobs = family(s, &bob, &app, "b1").await;
    assert_eq!(
        s.revoke_user(&alice.id, RevokeReason::UserRevoked, NOW)
            .await
            .expect("revoke"),
        2
    );
    assert!(
        s.live_families_for_user(&alice.id, NOW)
            .await
            .expect("alice")
            .is_empty()
    );
    assert!(s.family_by_id(&bobs.id).await.expect("bob").is_live(NOW));
    assert_eq!(
        s.rotate_refresh(&rotate(&a2.id, "a2", "app", "x", NOW))
            .await
            .expect("dead"),
        Rotation::Refused(Refusal::FamilyRevoked)
    );
    let feed = s.revocations_since(0, 10).await.expect("feed");
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (feed[0].kind, feed[0].subject.as_str(), feed[0].revoked_at),
        (RevocationKind::User, alice.id.as_str(), NOW)
    );
    assert_eq!(
        s.revoke_user("nope", RevokeReason::UserRevoked, NOW).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.revocations_since(0, 10).await.expect("feed").len(),
        1,
        "a failed revoke adds no entry"
    );
}

async fn revoking_a_client_marks_it_and_ends_its_families(s: &SqlStore) {
    let (alice, app, other) = (user(s, "alice").await, client(s, "app").await, client(s, "other").await);
    let a1 = family(s, &alice, &app, "a1").await;
    let kept = family(s, &alice, &other, "o1").await;
    assert_eq!(s.revoke_client("app", NOW).await.expect("revoke"), 1);
    assert_eq!(s.client_by_id("app").await.expect("app").status, ClientStatus::Revoked);
    assert_eq!(
        s.client_by_id("other").await.expect("other").status,
        ClientStatus::Active
    );
    assert_eq!(
        s.rotate_refresh(&rotate(&a1.id, "a1", "app", "x", NOW))
            .await
            .expect("dead"),
        Rotation::Refused(Refusal::FamilyRevoked)
    );
    assert!(s.family_by_id(&kept.id).await.expect("kept").is_live(NOW));
    let feed = s.revocations_since(0, 10).await.expect("feed");
    assert_eq!(
        (feed[0].kind, feed[0].subject.as_str()),
        (RevocationKind::Client, "app")
    );
}

async fn the_feed_pages_by_increasing_cursor(s: &SqlStore) {
    let mut cursors = Vec::new();
    for i in 0..5 {
        let e = s
            .append_revocation(RevocationKind::Jti, &format!("jti-{i}"), NOW.plus(i))
            .await
            .expect("append");
        assert_eq!(e.kind, RevocationKind::Jti);
        cursors.push(e.cursor);
    }
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    let first = s.revocations_since(0, 2).await.expect("page 1");
    assert_eq!(
        first.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
        ["jti-0", "jti-1"]
    );
    let rest = s.revocations_since(first[1].cursor, 10).await.expect("page 2");
    assert_eq!(
        rest.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
        ["jti-2", "jti-3", "jti-4"]
    );
    assert_eq!(rest[2].revoked_at, NOW.plus(4));
    assert!(s.revocations_since(rest[2].cursor, 10).await.expect("end").is_empty());
    assert_eq!(
        s.revoked_at(RevocationKind::Jti, "jti-3").await.expect("revoked"),
        Some(NOW.plus(3))
    );
    assert_eq!(s.revoked_at(RevocationKind::Jti, "jti-9").await.expect("never"), None);
    assert_eq!(
        s.revoked_at(RevocationKind::User, "jti-3").await.expect("other kind"),
        None
    );
}

// ---------------------------------------------------------------- keys

fn new_key(kid: &str) -> NewSigningKey {
    NewSigningKey {
        kid: kid.into(),
        alg: "ES256".into(),
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        private_key: vec![0x30, 0x81, 0x87, 0x02, 0x01],
        retire_after: Some(NOW.plus(30 * DAY)),
    }
}

async fn signing_keys_are_stored_listed_retired_and_deleted(s: &SqlStore) {
    let k1 = s.insert_signing_key(&new_key("k1"), NOW).await.expect("k1");
    assert_eq!(k1.state, KeyState::Active);
    assert_eq!(k1.private_key, [0x30, 0x81, 0x87, 0x02, 0x01]);
    assert_eq!(k1.retire_after, Some(NOW.plus(30 * DAY)));
    s.insert_signing_key(&new_key("k2"), NOW.plus(10)).await.expect("k2");
    let kids: Vec<_> = s
        .signing_keys()
        .await
        .expect("list")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["k2", "k1"]);
    assert_eq!(
        s.delete_signing_key("k1").await,
        Err(StoreError::NotFound),
        "an active key is not deleted"
    );
    s.retire_signing_key("k1", NOW.plus(20)).await.expect("retire");
    let k1 = s
        .signing_keys()
        .await
        .expect("list")
        .into_iter()
        .find(|k| k.kid == "k1")
        .expect("k1");
    assert_eq!((k1.state, k1.retired_at), (KeyState::Retired, Some(NOW.plus(20))));
    assert_eq!(
        s.retire_signing_key("k1", NOW).await,
        Err(StoreError::NotFound),
        "already retired"
    );
    s.delete_signing_key("k1").await.expect("delete");
    assert_eq!(s.signing_keys().await.expect("list").len(), 1);
    assert!(!format!("{k1:?}").contains("48, 129"), "Debug hides the private key");
}

async fn duplicate_kid_is_a_conflict_and_unknown_kid_not_found(s: &SqlStore) {
    s.insert_signing_key(&new_key("k1"), NOW).await.expect("k1");
    assert_eq!(
        s.insert_signing_key(&new_key("k1"), NOW).await.expect_err("dup"),
        StoreError::Conflict
    );
    assert_eq!(s.retire_signing_key("nope", NOW).await, Err(StoreError::NotFound));
    assert_eq!(s.delete_signing_key("nope").await, Err(StoreError::NotFound));
}

// ---------------------------------------------------------------- audit

async fn audit_events_are_appended_and_read_newest_first(s: &SqlStore) {
    for i in 0..3 {
        let e = NewAuditEvent {
            action: [
                AuditAction::LoginSuccess,
                AuditAction::LoginFailure,
                AuditAction::Refresh,
            ][i as usize],
            actor: Some("alice".into()),
            client_id: Some("app".into()),
            subject: None,
            ip: Some("127.0.0.1".into()),
            detail: Some(r#"{"ok":true}"#.into()),
        };
        let got = s.record_audit(&e, NOW.plus(i)).await.expect("record");
        assert_eq!((got.action.as_str(), got.at), (e.action.as_str(), NOW.plus(i)));
    }
    let all = s.audit_events(None, 10).await.expect("all");
    assert_eq!(
        all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["refresh", "login.failure", "login.success"]
    );
    assert_eq!(all[0].detail.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(all[0].ip.as_deref(), Some("127.0.0.1"));
    let older = s.audit_events(Some(all[0].id), 1).await.expect("page");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].action, "login.failure");
}

// ---------------------------------------------------------------- throttle

async fn throttle_counts_hits_per_window_and_key(s: &SqlStore) {
    for expected in 1..=3 {
        let c = s
            .throttle_hit("user:alice", 3600, NOW.plus(expected))
            .await
            .expect("hit");
        assert_eq!(
            c,
            ThrottleCount {
                count: expected,
                window_start: NOW.plus(1)
            }
        );
    }
    assert_eq!(
        s.throttle_count("user:alice", 3600, NOW.plus(10))
            .await
            .expect("count")
            .count,
        3
    );
    assert_eq!(
        s.throttle_count("user:alice", 3600, NOW.plus(10))
            .await
            .expect("count")
            .window_start,
        NOW.plus(1)
    );
    assert_eq!(
        s.throttle_count("user:bob", 3600, NOW).await.expect("other key").count,
        0
    );
    // A new window starts from one.
    let fresh = s
        .throttle_hit("user:alice", 3600, NOW.plus(3602))
        .await
        .expect("new window");
    assert_eq!(
        fresh,
        ThrottleCount {
            count: 1,
            window_start: NOW.plus(3602)
        }
    );
    assert_eq!(
        s.throttle_count("user:alice", 3600, NOW.plus(7203))
            .await
            .expect("over")
            .count,
        0
    );
    s.throttle_hit("user:alice", 3600, NOW.plus(3603)).await.expect("hit");
    s.throttle_forgive("user:alice").await.expect("forgive");
    assert_eq!(
        s.throttle_count("user:alice", 3600, NOW.plus(3603))
            .await
            .expect("forgiven")
            .count,
        1
    );
    s.throttle_clear("user:alice").await.expect("clear");
    assert_eq!(
        s.throttle_count("user:alice", 3600, NOW.plus(3603))
            .await
            .expect("cleared")
            .count,
        0
    );
    s.throttle_hit("ip:10.0.0.1", 60, NOW).await.expect("hit");
    s.throttle_hit("ip:10.0.0.2", 60, NOW.plus(100)).await.expect("hit");
    assert_eq!(s.purge_throttle(NOW.plus(50)).await.expect("purge"), 1);
    assert_eq!(
        s.throttle_count("ip:10.0.0.2", 60, NOW.plus(101))
            .await
            .expect("kept")
            .count,
        1
    );
}

async fn concurrent_throttle_hits_are_all_counted(s: &SqlStore) {
    let hits = (0..32).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.throttle_hit("user:alice", 3600, NOW).await.expect("hit").count })
    });
    let mut counts: Vec<i64> = futures_util::future::join_all(hits)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=32).collect::<Vec<i64>>());
}

// ---------------------------------------------------------------- health, errors

async fn ping_answers(s: &SqlStore) {
    s.ping().await.expect("ping");
}

async fn errors_carry_no_sql(s: &SqlStore) {
    user(s, "alice").await;
    let again = NewUser {
        username: portcullis_domain::Username::parse("alice").expect("username"),
        password_hash: Some("x".into()),
        scope: portcullis_domain::Scopes::empty(),
        email: None,
        email_verified: false,
    };
    let err = s.create_user(&again, NOW).await.expect_err("dup");
    for text in [err.to_string(), format!("{err:?}")] {
        let lower = text.to_lowercase();
        for word in ["insert", "unique", "users", "constraint", "sqlite", "postgres", "alice"] {
            assert!(!lower.contains(word), "{text:?} mentions {word}");
        }
    }
}

// ---------------------------------------------------------------- concurrency

/// 64 tasks present the same refresh token at once: exactly one rotates
/// the family; the other 63 learn it is spent, with the family as the
/// winner left it. 20 rounds.
async fn exactly_one_of_64_concurrent_refreshes_wins(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    for round in 0..20 {
        let first = format!("round-{round}");
        let fam = family(s, &alice, &app, &first).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
        let tasks = (0..64).map(|i| {
            let (s, first, barrier, id) = (s.clone(), first.clone(), barrier.clone(), fam.id.clone());
            tokio::spawn(async move {
                let child = format!("{first}-child-{i}");
                barrier.wait().await;
                s.rotate_refresh(&rotate(&id, &first, "app", &child, NOW))
                    .await
                    .expect("no error under contention")
            })
        });
        let results: Vec<Rotation> = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.expect("task"))
            .collect();
        let winners: Vec<&RefreshFamily> = results
            .iter()
            .filter_map(|r| if let Rotation::Rotated(f) = r { Some(f) } else { None })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        let winner = winners[0];
        assert_eq!(winner.current.generation, 2);
        assert_eq!(winner.previous.as_ref().map(|p| p.hash), Some(hash(&first)));
        let spent = results
            .iter()
            .filter(|r| matches!(r, Rotation::Spent(f) if f == winner))
            .count();
        assert_eq!(spent, 63, "round {round}: every loser sees the winner's family");
        // The family holds the winner's child, and nothing else was written.
        assert_eq!(s.family_by_id(&fam.id).await.expect("family"), *winner);
    }
    let counts = s.refresh_row_counts().await.expect("counts");
    assert_eq!((counts.families, counts.tokens), (20, 0));
}

async fn a_sign_in_needs_an_active_user_and_client(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let new = |first: &str| NewFamily {
        user_id: alice.id.clone(),
        client_id: app.id.clone(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(DAY),
        selector: selector(first),
        first_token: hash(first),
        first_token_expires_at: NOW.plus(DAY),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    };
    s.set_user_status(&alice.id, UserStatus::Disabled, NOW)
        .await
        .expect("disable");
    assert_eq!(
        s.start_family(&new("x"), NOW).await.expect_err("disabled user"),
        StoreError::NotFound
    );
    s.set_user_status(&alice.id, UserStatus::Active, NOW)
        .await
        .expect("enable");
    s.revoke_client("app", NOW).await.expect("revoke client");
    assert_eq!(
        s.start_family(&new("y"), NOW).await.expect_err("revoked client"),
        StoreError::NotFound
    );
    assert!(s.live_families_for_user(&alice.id, NOW).await.expect("list").is_empty());
}

async fn revoking_a_revoked_client_again_writes_nothing(s: &SqlStore) {
    client(s, "app").await;
    s.revoke_client("app", NOW).await.expect("first");
    assert_eq!(s.revoke_client("app", NOW.plus(5)).await.expect("second"), 0);
    assert_eq!(s.revocations_since(0, 10).await.expect("feed").len(), 1);
    assert_eq!(s.client_by_id("app").await.expect("app").updated_at, NOW);
}

async fn sealed_successors_are_kept_only_while_needed(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "a").await;
    let successor = |f: &RefreshFamily| f.previous.as_ref().and_then(|p| p.successor.clone());
    let previous = |f: &RefreshFamily| f.previous.as_ref().map(|p| p.hash);
    s.rotate_refresh(&rotate(&fam.id, "a", "app", "b", NOW))
        .await
        .expect("a to b");
    let f = s.family_by_id(&fam.id).await.expect("family");
    assert_eq!(previous(&f), Some(hash("a")));
    assert_eq!(successor(&f), Some(Sealed(b"sealed:b".to_vec())));
    s.rotate_refresh(&rotate(&fam.id, "b", "app", "c", NOW.plus(100)))
        .await
        .expect("b to c");
    let f = s.family_by_id(&fam.id).await.expect("family");
    assert_eq!(
        previous(&f),
        Some(hash("b")),
        "a, with its sealed successor, is gone once b was rotated"
    );
    assert_eq!(successor(&f), Some(Sealed(b"sealed:c".to_vec())));
    // After the retry window, the periodic clean-up forgets it.
    assert_eq!(s.clear_successors(NOW.plus(100)).await.expect("not yet"), 0);
    assert_eq!(s.clear_successors(NOW.plus(111)).await.expect("clear"), 1);
    let f = s.family_by_id(&fam.id).await.expect("family");
    assert_eq!((previous(&f), successor(&f)), (Some(hash("b")), None));
    assert_eq!(s.clear_successors(NOW.plus(111)).await.expect("again"), 0);
    // A revoke forgets them at once: of the family, of a user's families,
    // of a client's families.
    s.rotate_refresh(&rotate(&fam.id, "c", "app", "d", NOW.plus(200)))
        .await
        .expect("c to d");
    s.revoke_family(&fam.id, RevokeReason::SignOut, NOW.plus(201))
        .await
        .expect("revoke");
    let f = s.family_by_id(&fam.id).await.expect("family");
    assert_eq!((previous(&f), successor(&f)), (Some(hash("c")), None));
    let bob = user(s, "bob").await;
    let other = client(s, "other").await;
    let by_user = family(s, &bob, &app, "u").await;
    let by_client = family(s, &alice, &other, "k").await;
    for (f, first) in [(&by_user, "u"), (&by_client, "k")] {
        let got = s
            .rotate_refresh(&rotate(&f.id, first, &f.client_id, "next", NOW.plus(300)))
            .await
            .expect("rotate");
        assert!(
            matches!(&got, Rotation::Rotated(f) if successor(f).is_some()),
            "{got:?}"
        );
    }
    s.revoke_user(&bob.id, RevokeReason::UserRevoked, NOW.plus(301))
        .await
        .expect("revoke user");
    s.revoke_client("other", NOW.plus(301)).await.expect("revoke client");
    for f in [&by_user, &by_client] {
        let f = s.family_by_id(&f.id).await.expect("family");
        assert!(f.revoked_at.is_some());
        assert_eq!(successor(&f), None, "{:?}", f.revoke_reason);
    }
}

async fn disabling_a_user_revokes_in_the_same_transaction(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    family(s, &alice, &app, "a").await;
    let update = UserUpdate {
        status: Some(UserStatus::Disabled),
        password_hash: None,
    };
    assert_eq!(
        s.update_and_revoke_user(&alice.id, &update, RevokeReason::UserRevoked, NOW)
            .await,
        Ok(1)
    );
    let got = s.user_by_id(&alice.id).await.expect("user");
    assert_eq!((got.status, got.updated_at), (UserStatus::Disabled, NOW));
    assert!(s.live_families_for_user(&alice.id, NOW).await.expect("list").is_empty());
    assert_eq!(
        s.revocations_since(0, 10).await.expect("feed")[0].kind,
        RevocationKind::User
    );
    assert_eq!(
        s.update_and_revoke_user("nope", &update, RevokeReason::UserRevoked, NOW)
            .await,
        Err(StoreError::NotFound)
    );
}

/// 32 devices refresh at once, five times each, while one request in the
/// crowd fails on its own (it rotates a family from before constant state,
/// whose first selector is already another family's): every other
/// rotation commits (SQLite commits them in groups), and the failing one
/// changes nothing.
async fn concurrent_rotations_of_many_families_all_commit_and_one_failure_stays_alone(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let mut ids = Vec::new();
    for d in 0..32 {
        ids.push(family(s, &alice, &app, &format!("dev{d}-0")).await.id);
    }
    let odd = family(s, &alice, &app, "odd-0").await;
    s.forget_family_selector(&odd.id)
        .await
        .expect("from before constant state");
    let odd = s.family_by_id(&odd.id).await.expect("odd");
    let ids = std::sync::Arc::new(ids);
    for step in 0..5 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(33));
        let mut tasks: Vec<_> = (0..32)
            .map(|d| {
                let (s, barrier, ids) = (s.clone(), barrier.clone(), ids.clone());
                tokio::spawn(async move {
                    let (old, new) = (format!("dev{d}-{step}"), format!("dev{d}-{}", step + 1));
                    barrier.wait().await;
                    s.rotate_refresh(&rotate(&ids[d], &old, "app", &new, NOW.plus(step)))
                        .await
                })
            })
            .collect();
        // The odd one out: its child would carry dev0's selector, so its
        // write fails. It must not disturb the others.
        let (s2, barrier2, odd_id) = (s.clone(), barrier.clone(), odd.id.clone());
        tasks.push(tokio::spawn(async move {
            barrier2.wait().await;
            let r = Rotate {
                selector: selector("dev0-0"),
                ..rotate(&odd_id, "odd-0", "app", &format!("odd-{}", step + 1), NOW.plus(step))
            };
            s2.rotate_refresh(&r).await
        }));
        let mut results = futures_util::future::join_all(tasks).await;
        let odd_got = results.pop().expect("odd").expect("task");
        assert_eq!(odd_got, Err(StoreError::Conflict), "step {step}: the odd one");
        for (d, r) in results.into_iter().enumerate() {
            match r.expect("task") {
                Ok(Rotation::Rotated(f)) => {
                    assert_eq!(f.id, ids[d]);
                    assert_eq!(f.current.hash, Some(hash(&format!("dev{d}-{}", step + 1))));
                }
                other => panic!("device {d} step {step}: {other:?}"),
            }
        }
        for (d, id) in ids.iter().enumerate() {
            let f = s.family_by_id(id).await.expect("committed");
            assert_eq!(f.current.hash, Some(hash(&format!("dev{d}-{}", step + 1))));
            assert_eq!(f.current.generation, step + 2);
            assert!(f.revoked_at.is_none());
        }
        assert_eq!(
            s.family_by_id(&odd.id).await.expect("odd"),
            odd,
            "the odd one wrote nothing"
        );
    }
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(selector("dev0-0")))
            .await
            .expect("dev0")
            .id,
        ids[0]
    );
}

async fn a_token_is_read_with_its_family_user_and_client_in_one_call(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "t1").await;
    let (family, u, c) = s
        .refresh_context(&TokenKey::Selector(selector("t1")))
        .await
        .expect("found");
    assert_eq!((family, u.clone(), c.clone()), (fam, alice, app));
    assert_eq!((u.username.as_str(), c.id.as_str()), ("alice", "app"));
    assert_eq!(
        s.refresh_context(&TokenKey::Selector(selector("nope")))
            .await
            .expect_err("unknown"),
        StoreError::NotFound
    );
    assert_eq!(
        s.refresh_context(&TokenKey::Legacy(hash("t1")))
            .await
            .expect_err("a token of constant state has no legacy row"),
        StoreError::NotFound
    );
}

/// A sign-in's throttle bookkeeping and audit event are written with its
/// family, or not at all.
async fn a_sign_in_records_its_bookkeeping_with_the_family(s: &SqlStore) {
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    for _ in 0..3 {
        s.throttle_hit("pair", 900, NOW).await.expect("hit");
        s.throttle_hit("account", 3600, NOW).await.expect("hit");
    }
    let record = SignInRecord {
        clear_counter: "pair".into(),
        forgive_counter: "account".into(),
        audit: NewAuditEvent {
            action: AuditAction::LoginSuccess,
            actor: Some(alice.id.clone()),
            client_id: Some("app".into()),
            subject: Some(alice.id.clone()),
            ip: None,
            detail: None,
        },
    };
    let new = |first: &str| NewFamily {
        user_id: alice.id.clone(),
        client_id: app.id.clone(),
        scope: "read".into(),
        device_label: None,
        expires_at: NOW.plus(DAY),
        selector: selector(first),
        first_token: hash(first),
        first_token_expires_at: NOW.plus(DAY),
        sessions_epoch: 0,
        password_hash: None,
        sign_in: Some(record.clone()),
        dpop_jkt: None,
        amr: None,
    };
    // Refused (the client is revoked): nothing of it is written.
    s.revoke_client("app", NOW).await.expect("revoke");
    assert_eq!(
        s.start_family(&new("t0"), NOW).await.expect_err("refused"),
        StoreError::NotFound
    );
    assert_eq!(s.throttle_count("pair", 900, NOW).await.expect("count").count, 3);
    assert_eq!(s.throttle_count("account", 3600, NOW).await.expect("count").count, 3);
    let logins = |events: Vec<AuditEvent>| events.iter().filter(|e| e.action == "login.success").count();
    assert_eq!(logins(s.audit_events(None, 50).await.expect("audit")), 0);
    // Accepted: the pair counter is gone, the account one is down by one,
    // and the event is there.
    let bob_app = client(s, "app2").await;
    let mut ok = new("t1");
    ok.client_id = bob_app.id.clone();
    s.start_family(&ok, NOW).await.expect("signed in");
    assert_eq!(s.throttle_count("pair", 900, NOW).await.expect("count").count, 0);
    assert_eq!(s.throttle_count("account", 3600, NOW).await.expect("count").count, 2);
    assert_eq!(logins(s.audit_events(None, 50).await.expect("audit")), 1);
}

on_both_backends!(
    clean_ups_work_through_more_than_one_chunk,
    a_sign_in_records_its_bookkeeping_with_the_family,
    a_token_is_read_with_its_family_user_and_client_in_one_call,
    concurrent_rotations_of_many_families_all_commit_and_one_failure_stays_alone,
    disabling_a_user_revokes_in_the_same_transaction,
    a_rotation_records_its_audit_event_with_it,
    a_rehash_does_not_undo_a_password_change,
    a_sign_in_needs_an_active_user_and_client,
    revoking_a_revoked_client_again_writes_nothing,
    sealed_successors_are_kept_only_while_needed,
    users_are_created_and_found_by_id_and_username,
    duplicate_username_is_a_conflict,
    unknown_user_is_not_found,
    users_are_listed_by_username_in_pages,
    user_status_password_and_scope_can_change,
    debug_output_hides_password_hashes,
    clients_are_created_and_read_back,
    duplicate_client_id_is_a_conflict,
    unknown_client_is_not_found,
    client_secret_rotation_replaces_the_hash,
    a_family_starts_with_one_live_token,
    a_family_for_an_unknown_user_or_client_is_not_found,
    unknown_refresh_lookups_are_not_found,
    rotation_replaces_the_current_token_with_its_child,
    a_spent_token_reports_the_family_with_its_successor,
    a_token_the_family_never_held_is_spent,
    state_stays_constant_over_50_rotations,
    a_taken_selector_is_a_conflict,
    another_clients_token_is_refused_and_left_untouched,
    expired_tokens_and_families_are_refused,
    live_families_list_a_users_devices,
    purge_deletes_dead_families,
    revoking_a_family_kills_every_token_of_it_at_once,
    revoking_a_user_ends_all_their_families_only,
    revoking_a_client_marks_it_and_ends_its_families,
    the_feed_pages_by_increasing_cursor,
    signing_keys_are_stored_listed_retired_and_deleted,
    duplicate_kid_is_a_conflict_and_unknown_kid_not_found,
    audit_events_are_appended_and_read_newest_first,
    throttle_counts_hits_per_window_and_key,
    concurrent_throttle_hits_are_all_counted,
    ping_answers,
    errors_carry_no_sql,
    exactly_one_of_64_concurrent_refreshes_wins,
);

/// PostgreSQL only (SQLite has one writer, so the two cannot interleave): a
/// family revoked while a rotation is in flight gets no child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_racing_a_family_revoke_gives_no_child() {
    use sqlx::Connection as _;
    let Some(db) = portcullis_store::testing::TestDb::postgres().await else {
        return;
    };
    let s: &SqlStore = &db;
    let (alice, app) = (user(s, "alice").await, client(s, "app").await);
    let fam = family(s, &alice, &app, "t1").await;
    // A revoke in flight: its transaction holds the family row.
    let mut other = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query("UPDATE refresh_families SET revoked_at = $1, revoke_reason = 'admin' WHERE id = $2")
        .bind(NOW.0)
        .bind(&fam.id)
        .execute(&mut *tx)
        .await
        .expect("revoke");
    let (store, id) = (s.clone(), fam.id.clone());
    let rotation =
        tokio::spawn(async move { store.rotate_refresh(&rotate(&id, "t1", "app", "t2", NOW.plus(1))).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.commit().await.expect("commit revoke");
    let got = rotation.await.expect("task").expect("rotate");
    assert_eq!(got, Rotation::Refused(Refusal::FamilyRevoked));
    let after = s.family_by_id(&fam.id).await.expect("family");
    assert_eq!(
        (after.current, after.previous),
        (fam.current, None),
        "no child: the token is still the current one"
    );
    assert_eq!(after.revoked_at, Some(NOW));
    drop(other);
    db.finish().await;
}

/// SQLite with group commit turned off: each rotation commits alone, with
/// the same exactly-once outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_without_group_commit_rotates_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ConnectOptions {
        group_commit: false,
        acquire_timeout: std::time::Duration::from_secs(30),
        ..ConnectOptions::default()
    };
    for (file, body) in [("a.db", 0), ("b.db", 1)] {
        let url = format!("sqlite://{}", dir.path().join(file).display());
        let s = SqlStore::connect_with(&url, &opts).await.expect("open");
        s.migrate().await.expect("migrate");
        match body {
            0 => exactly_one_of_64_concurrent_refreshes_wins(&s).await,
            _ => concurrent_rotations_of_many_families_all_commit_and_one_failure_stays_alone(&s).await,
        }
    }
}
