//! The upgrade to username keys (migration 6) on a database written by the
//! previous release: it stops, naming them and changing nothing, on stored
//! names that would become one account or that the rules refuse; without
//! such names every account stays usable. On SQLite and PostgreSQL.

use portcullis_domain::{InvalidUsername, Scopes, Username};
use portcullis_store::on_both_backends;
use portcullis_store::testing::{TestDb, TestingStore as _};
use portcullis_store::*;

const NOW: UnixTime = UnixTime(1_800_000_000);
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
/// The last migration of the previous release.
const BEFORE: i64 = 4;

fn name(raw: &str) -> Username {
    Username::parse(raw).expect("username")
}

async fn legacy(db: &TestDb, users: &[(&str, &str)]) {
    for (id, username) in users {
        db.insert_unkeyed_user(id, username, HASH, NOW)
            .await
            .expect("legacy user");
    }
}

async fn the_upgrade_stops_on_look_alikes_and_names_them(db: &TestDb) {
    legacy(
        db,
        &[
            ("u1", "alice"),
            ("u2", "Alice"),
            ("u3", "ａｌｉｃｅ"),
            ("u4", "ali\u{200b}ce"),
            ("u5", "bob"),
        ],
    )
    .await;
    let Err(MigrationError::Usernames(found)) = db.migrate().await else {
        panic!("the upgrade must stop")
    };
    let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(i, n)| ((*i).to_owned(), (*n).to_owned())).collect()
    };
    assert_eq!(
        found.collisions,
        vec![(
            "alice".to_owned(),
            owned(&[("u1", "alice"), ("u2", "Alice"), ("u3", "ａｌｉｃｅ")])
        )]
    );
    assert_eq!(
        found.refused,
        vec![(
            "u4".to_owned(),
            "ali\u{200b}ce".to_owned(),
            InvalidUsername::CodePoint(0x200b)
        )]
    );
    let message = MigrationError::Usernames(found).to_string();
    for part in [
        r#"user u4 "ali\u{200b}ce""#,
        r#"sign in as "alice": u1 "alice", u2 "Alice", u3 "ａｌｉｃｅ""#,
        "nothing was changed",
        "portcullis migrate",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    // Nothing changed: the database is still at the previous release's
    // schema, which that release keeps running on.
    assert_eq!(db.applied_migrations().await.last(), Some(&BEFORE));
    assert!(db.migrate().await.is_err(), "stops again until resolved");

    // The operator renames the look-alikes and the refused name.
    for (id, new) in [("u2", "alice2"), ("u3", "alice3"), ("u4", "alicia")] {
        db.rename_user_unchecked(id, new).await.expect("rename");
    }
    db.migrate().await.expect("the upgrade goes through");
    let alice = db.user_by_username(&name("ALICE")).await.expect("alice");
    assert_eq!((alice.id.as_str(), alice.username.as_str()), ("u1", "alice"));
}

async fn without_look_alikes_every_account_stays_usable(db: &TestDb) {
    let users = [
        ("u1", "alice"),
        ("u2", "Bob"),
        ("u3", "ｃａｒｏｌ"),
        ("u4", "dave@example.com"),
        ("u5", "Zoë"),
    ];
    legacy(db, &users).await;
    db.migrate().await.expect("upgrade");
    assert!(db.applied_migrations().await.len() as i64 > BEFORE);
    for ((id, typed), other_form) in users.iter().zip(["ALICE", "bob", "Carol", "DAVE@EXAMPLE.COM", "ZOË"]) {
        let by_name = db.user_by_username(&name(other_form)).await.expect(other_form);
        assert_eq!((by_name.id.as_str(), by_name.username.as_str()), (*id, *typed));
        assert_eq!(db.user_by_id(id).await.expect("by id"), by_name);
    }
    let listed: Vec<String> = db
        .list_users(None, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    assert_eq!(listed, ["alice", "Bob", "ｃａｒｏｌ", "dave@example.com", "Zoë"]);
    // The keys now keep look-alikes out.
    let again = NewUser {
        username: name("ＢＯＢ"),
        password_hash: Some(HASH.into()),
        scope: Scopes::empty(),
        email: None,
        email_verified: false,
    };
    assert_eq!(
        db.create_user(&again, NOW).await.expect_err("taken"),
        StoreError::Conflict
    );
    db.migrate().await.expect("running again changes nothing");
}

async fn an_empty_database_upgrades(db: &TestDb) {
    db.migrate().await.expect("upgrade");
    assert!(db.list_users(None, 1).await.expect("list").is_empty());
}

on_both_backends!(
    migrated_to = BEFORE;
    the_upgrade_stops_on_look_alikes_and_names_them,
    without_look_alikes_every_account_stays_usable,
    an_empty_database_upgrades,
);
