//! Migrations: the same numbered list for both backends, safe to re-run,
//! and data that survives a restart.

use std::path::Path;

use portcullis_store::on_both_backends;
use portcullis_store::testing::{LegacyFamily, LegacyToken, TestDb, TestingStore as _};
use portcullis_store::*;

fn migration_names(backend: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_backends_have_the_same_numbered_migrations() {
    let sqlite = migration_names("sqlite");
    let postgres = migration_names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must list the same files"
    );
    for (i, name) in sqlite.iter().enumerate() {
        let number: usize = name.split('_').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| {
            panic!("{name}: a migration is named NNNN_description.sql");
        });
        assert_eq!(number, i + 1, "{name}: numbers run 1, 2, 3… without gaps");
        assert!(name.ends_with(".sql"), "{name}");
    }
}

async fn migrating_again_changes_nothing(s: &SqlStore) {
    let app = NewClient {
        id: portcullis_domain::ClientId::parse("app").expect("client id"),
        name: "App".into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password").expect("grant types"),
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
    s.create_client(&app, UnixTime(1)).await.expect("client");
    s.migrate().await.expect("second run");
    s.migrate().await.expect("third run");
    assert_eq!(s.list_clients().await.expect("list").len(), 1);
}

on_both_backends!(migrating_again_changes_nothing);

#[tokio::test]
async fn a_sqlite_database_keeps_spent_tokens_spent_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let now = UnixTime(1_800_000_000);
    let family_id = {
        let s = SqlStore::connect(&url).await.expect("open");
        s.migrate().await.expect("migrate");
        let user = s
            .create_user(
                &NewUser {
                    username: portcullis_domain::Username::parse("alice").expect("username"),
                    password_hash: Some("h".into()),
                    scope: portcullis_domain::Scopes::parse("read").expect("scope"),
                    email: None,
                    email_verified: false,
                },
                now,
            )
            .await
            .expect("user");
        let client = NewClient {
            id: portcullis_domain::ClientId::parse("app").expect("client id"),
            name: "App".into(),
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
        s.create_client(&client, now).await.expect("client");
        let fam = NewFamily {
            user_id: user.id,
            client_id: "app".into(),
            scope: "read".into(),
            device_label: None,
            expires_at: now.plus(1000),
            selector: TokenHash::of(b"selector"),
            first_token: TokenHash::of(b"old"),
            first_token_expires_at: now.plus(1000),
            sessions_epoch: 0,
            password_hash: None,
            sign_in: None,
            dpop_jkt: None,
            amr: None,
        };
        let fam = s.start_family(&fam, now).await.expect("family");
        let r = Rotate {
            family_id: &fam.id,
            presented: TokenHash::of(b"old"),
            client_id: "app",
            selector: TokenHash::of(b"selector"),
            child: TokenHash::of(b"new"),
            child_expires_at: now.plus(1000),
            successor: None,
            audit: None,
            now,
        };
        assert!(matches!(
            s.rotate_refresh(&r).await.expect("rotate"),
            Rotation::Rotated(_)
        ));
        s.close().await;
        fam.id
    };
    let s = SqlStore::connect(&url).await.expect("reopen");
    s.migrate().await.expect("migrate on restart");
    let replay = Rotate {
        family_id: &family_id,
        presented: TokenHash::of(b"old"),
        client_id: "app",
        selector: TokenHash::of(b"selector"),
        child: TokenHash::of(b"other"),
        child_expires_at: now.plus(1000),
        successor: None,
        audit: None,
        now: now.plus(1),
    };
    assert!(matches!(
        s.rotate_refresh(&replay).await.expect("replay"),
        Rotation::Spent(_)
    ));
    let fam = s
        .family_by_token(&TokenKey::Selector(TokenHash::of(b"selector")))
        .await
        .expect("family survived");
    assert_eq!(fam.current.hash, Some(TokenHash::of(b"new")), "the child survived");
    assert_eq!(fam.current.generation, 2);
    assert_eq!(fam.previous.map(|p| p.hash), Some(TokenHash::of(b"old")));
}

#[tokio::test]
async fn an_unknown_database_scheme_is_refused() {
    let err = SqlStore::connect("mysql://root@localhost/db").await.expect_err("mysql");
    assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    let opts = ConnectOptions {
        acquire_timeout: std::time::Duration::from_secs(1),
        ..ConnectOptions::default()
    };
    // Port 1 on loopback: nothing listens there.
    let err = SqlStore::connect_with("postgres://postgres@127.0.0.1:1/none", &opts)
        .await
        .expect_err("down");
    assert_eq!(err, StoreError::Unavailable);
}

#[tokio::test]
async fn an_in_memory_sqlite_store_works_and_reports_its_backend() {
    let s = SqlStore::connect("sqlite::memory:").await.expect("open");
    assert_eq!(s.backend(), Backend::Sqlite);
    s.migrate().await.expect("migrate");
    let u = s
        .create_user(
            &NewUser {
                username: portcullis_domain::Username::parse("a").expect("username"),
                password_hash: Some("h".into()),
                scope: portcullis_domain::Scopes::empty(),
                email: None,
                email_verified: false,
            },
            UnixTime(1),
        )
        .await
        .expect("user");
    assert_eq!(s.user_by_id(&u.id).await.expect("read back").username, "a");
}

// ---------------------------------------------------------------- constant state (migration 5)

const NOW: UnixTime = UnixTime(1_800_000_000);
const DAY: i64 = 86_400;

fn hash(label: &str) -> TokenHash {
    TokenHash::of(label.as_bytes())
}

/// A token chain as versions before constant state stored it (one row per
/// refresh: a spent grandparent, a spent parent keeping its child sealed,
/// the unspent current token), migrated: the family holds the current
/// token (generation 0) and the parent as its previous one; the rows stay
/// to find the family by, until they expire, and take no new ones.
async fn tokens_issued_before_constant_state_migrate(db: &TestDb) {
    let s: &SqlStore = db;
    s.migrate_to(4).await.expect("migrate to version 4");
    // A user as version 4 stored one (no username key).
    s.insert_unkeyed_user("alice-id", "alice", "h", NOW.plus(-2000))
        .await
        .expect("user");
    // A client as version 4 stored one.
    s.insert_v4_client("app", NOW.plus(-2000)).await.expect("client");
    s.insert_legacy_family(&LegacyFamily {
        id: "fam-1".into(),
        user_id: "alice-id".into(),
        client_id: "app".into(),
        scope: "read".into(),
        created_at: NOW.plus(-1000),
        expires_at: NOW.plus(90 * DAY),
    })
    .await
    .expect("family");
    let sealed = Sealed(b"sealed:current".to_vec());
    let chain = [
        // Spent, and past its idle expiry.
        LegacyToken {
            id: "t1".into(),
            family_id: "fam-1".into(),
            parent_id: None,
            hash: hash("grandparent"),
            issued_at: NOW.plus(-1000),
            expires_at: NOW.plus(-100),
            used_at: Some(NOW.plus(-500)),
            replaced_by: Some("t2".into()),
            successor: None,
        },
        LegacyToken {
            id: "t2".into(),
            family_id: "fam-1".into(),
            parent_id: Some("t1".into()),
            hash: hash("parent"),
            issued_at: NOW.plus(-500),
            expires_at: NOW.plus(20 * DAY),
            used_at: Some(NOW.plus(-10)),
            replaced_by: Some("t3".into()),
            successor: Some(sealed.clone()),
        },
        LegacyToken {
            id: "t3".into(),
            family_id: "fam-1".into(),
            parent_id: Some("t2".into()),
            hash: hash("current"),
            issued_at: NOW.plus(-10),
            expires_at: NOW.plus(30 * DAY),
            used_at: None,
            replaced_by: None,
            successor: None,
        },
    ];
    for t in &chain {
        s.insert_legacy_token(t).await.expect("legacy token");
    }

    s.migrate().await.expect("migrate to constant state");

    // Found by the whole token's hash, with its user and client.
    let (fam, u, c) = s
        .refresh_context(&TokenKey::Legacy(hash("current")))
        .await
        .expect("legacy context");
    let app = s.client_by_id("app").await.expect("the client, migrated");
    assert_eq!((u.id.as_str(), c), ("alice-id", app));
    assert_eq!(fam.id, "fam-1");
    assert_eq!(
        fam.current,
        CurrentToken {
            generation: 0,
            hash: Some(hash("current")),
            expires_at: NOW.plus(30 * DAY),
        }
    );
    assert_eq!(
        fam.previous,
        Some(PreviousToken {
            hash: hash("parent"),
            used_at: NOW.plus(-10),
            successor: Some(sealed),
        })
    );
    assert_eq!(fam.current_issued_at(), NOW.plus(-10));
    assert!(fam.current_is(&hash("current"), NOW));
    for old in ["grandparent", "parent"] {
        assert_eq!(
            s.family_by_token(&TokenKey::Legacy(hash(old))).await,
            Ok(fam.clone()),
            "{old}"
        );
    }
    let counts = s.refresh_row_counts().await.expect("counts");
    assert_eq!((counts.families, counts.tokens), (1, 3));

    // The current token refreshes once, into the new form: the family
    // takes the selector its child carries.
    let rotate = |presented: &str, selector: &str, child: &str, now: UnixTime| Rotate {
        family_id: "fam-1",
        presented: hash(presented),
        client_id: "app",
        selector: hash(selector),
        child: hash(child),
        child_expires_at: now.plus(30 * DAY),
        successor: Some(Sealed(format!("sealed:{child}").into_bytes())),
        now,
        audit: None,
    };
    let got = s
        .rotate_refresh(&rotate("current", "selector-1", "gen-1", NOW))
        .await
        .expect("rotate");
    let Rotation::Rotated(rotated) = got else {
        panic!("expected a rotation, got {got:?}")
    };
    assert_eq!(
        rotated,
        RefreshFamily {
            last_used_at: NOW,
            current: CurrentToken {
                generation: 1,
                hash: Some(hash("gen-1")),
                expires_at: NOW.plus(30 * DAY),
            },
            previous: Some(PreviousToken {
                hash: hash("current"),
                used_at: NOW,
                successor: Some(Sealed(b"sealed:gen-1".to_vec())),
            }),
            ..fam.clone()
        }
    );
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(hash("selector-1"))).await,
        Ok(rotated.clone()),
        "found by its selector"
    );
    // The legacy tokens are spent now: the grandparent (reuse), and the
    // current one again (a retry: it is the previous token).
    assert_eq!(
        s.family_by_token(&TokenKey::Legacy(hash("grandparent"))).await,
        Ok(rotated.clone())
    );
    for old in ["grandparent", "current"] {
        let got = s
            .rotate_refresh(&rotate(old, "selector-2", "other", NOW.plus(1)))
            .await
            .expect("replay");
        assert_eq!(got, Rotation::Spent(rotated.clone()), "{old}");
    }
    // A family's selector, once set, stays.
    let got = s
        .rotate_refresh(&rotate("gen-1", "selector-3", "gen-2", NOW.plus(2)))
        .await
        .expect("next");
    assert!(
        matches!(&got, Rotation::Rotated(f) if f.current.generation == 2),
        "{got:?}"
    );
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(hash("selector-1")))
            .await
            .expect("same selector")
            .id,
        "fam-1"
    );
    for taken in ["selector-2", "selector-3"] {
        assert_eq!(
            s.family_by_token(&TokenKey::Selector(hash(taken))).await,
            Err(StoreError::NotFound)
        );
    }

    // refresh_tokens takes no new rows.
    let late = LegacyToken {
        id: "t4".into(),
        parent_id: Some("t3".into()),
        hash: hash("late"),
        used_at: None,
        replaced_by: None,
        successor: None,
        ..chain[2].clone()
    };
    assert_eq!(
        s.insert_legacy_token(&late).await,
        Err(StoreError::Backend),
        "an insert into refresh_tokens is refused (by its trigger)"
    );
    assert_eq!(s.refresh_row_counts().await.expect("counts").tokens, 3);

    // The clean-up deletes the legacy rows past their idle expiry, and the
    // family only when it is over.
    assert_eq!(s.purge_families(NOW).await.expect("purge"), 0);
    assert_eq!(
        s.family_by_token(&TokenKey::Legacy(hash("grandparent"))).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.refresh_row_counts().await.expect("counts").tokens, 2);
    assert_eq!(s.purge_families(NOW.plus(30 * DAY + 1)).await.expect("purge"), 0);
    let counts = s.refresh_row_counts().await.expect("counts");
    assert_eq!((counts.families, counts.tokens), (1, 0));
    assert_eq!(
        s.family_by_token(&TokenKey::Legacy(hash("current"))).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(hash("selector-1")))
            .await
            .expect("the family stays")
            .current
            .generation,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tokens_issued_before_constant_state_migrate() {
    let db = TestDb::sqlite_unmigrated().await;
    tokens_issued_before_constant_state_migrate(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tokens_issued_before_constant_state_migrate() {
    let Some(db) = TestDb::postgres_unmigrated().await else {
        return;
    };
    tokens_issued_before_constant_state_migrate(&db).await;
    db.finish().await;
}
