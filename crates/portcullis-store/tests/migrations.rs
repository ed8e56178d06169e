//! Migrations: the same numbered list for both backends, safe to re-run,
//! and data that survives a restart.

use std::path::Path;

use portcullis_store::on_both_backends;
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
    {
        let s = SqlStore::connect(&url).await.expect("open");
        s.migrate().await.expect("migrate");
        let user = s
            .create_user(
                &NewUser {
                    username: portcullis_domain::Username::parse("alice").expect("username"),
                    password_hash: "h".into(),
                    scope: portcullis_domain::Scopes::parse("read").expect("scope"),
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
        };
        s.create_client(&client, now).await.expect("client");
        let fam = NewFamily {
            user_id: user.id,
            client_id: "app".into(),
            scope: "read".into(),
            device_label: None,
            expires_at: now.plus(1000),
            first_token: TokenHash::of(b"old"),
            first_token_expires_at: now.plus(1000),
            not_revoked_since: UnixTime(0),
            password_hash: None,
            sign_in: None,
        };
        s.start_family(&fam, now).await.expect("family");
        let r = Rotate {
            presented: TokenHash::of(b"old"),
            client_id: "app",
            child: TokenHash::of(b"new"),
            child_expires_at: now.plus(1000),
            successor: None,
            audit: None,
            now,
        };
        assert!(matches!(
            s.rotate_refresh(&r).await.expect("rotate"),
            Rotation::Rotated { .. }
        ));
        s.close().await;
    }
    let s = SqlStore::connect(&url).await.expect("reopen");
    s.migrate().await.expect("migrate on restart");
    let replay = Rotate {
        presented: TokenHash::of(b"old"),
        client_id: "app",
        child: TokenHash::of(b"other"),
        child_expires_at: now.plus(1000),
        successor: None,
        audit: None,
        now: now.plus(1),
    };
    assert!(matches!(
        s.rotate_refresh(&replay).await.expect("replay"),
        Rotation::Spent { .. }
    ));
    let (new, _) = s
        .refresh_token_by_hash(TokenHash::of(b"new"))
        .await
        .expect("child survived");
    assert_eq!(new.used_at, None);
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
                password_hash: "h".into(),
                scope: portcullis_domain::Scopes::empty(),
            },
            UnixTime(1),
        )
        .await
        .expect("user");
    assert_eq!(s.user_by_id(&u.id).await.expect("read back").username, "a");
}
