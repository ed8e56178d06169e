//! Usernames are unique and found by their key (RFC 8265
//! UsernameCaseMapped): `alice`, `Alice` and fullwidth `ａｌｉｃｅ` are one
//! account, and a row written without a key is keyed (or stops the
//! migration) at the next start. On SQLite and PostgreSQL.

use portcullis_domain::{Scopes, Username};
use portcullis_store::on_both_backends;
use portcullis_store::testing::TestingStore as _;
use portcullis_store::*;

const NOW: UnixTime = UnixTime(1_800_000_000);
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn name(raw: &str) -> Username {
    Username::parse(raw).expect("username")
}

async fn create(s: &SqlStore, raw: &str) -> Result<User, StoreError> {
    let new = NewUser {
        username: name(raw),
        password_hash: Some(HASH.into()),
        scope: Scopes::parse("read").expect("scope"),
        email: None,
        email_verified: false,
    };
    s.create_user(&new, NOW).await
}

async fn look_alike_usernames_cannot_coexist(s: &SqlStore) {
    let alice = create(s, "alice").await.expect("alice");
    for look_alike in ["Alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ"] {
        assert_eq!(
            create(s, look_alike).await.expect_err(look_alike),
            StoreError::Conflict,
            "{look_alike}"
        );
    }
    // The fourth look-alike is not even a username.
    assert!(Username::parse("ali\u{200b}ce").is_err());
    let all = s.list_users(None, 10).await.expect("list");
    assert_eq!(all, vec![alice]);
}

async fn a_user_is_found_in_any_case_or_width_and_shown_as_typed(s: &SqlStore) {
    let created = create(s, "Ａｌｉｃｅ").await.expect("created");
    assert_eq!(created.username, "Ａｌｉｃｅ");
    for typed in ["alice", "ALICE", "Ａｌｉｃｅ", "ａｌｉｃｅ"] {
        let found = s.user_by_username(&name(typed)).await.expect(typed);
        assert_eq!(found, created, "{typed}");
        assert_eq!(found.username, "Ａｌｉｃｅ");
    }
    assert_eq!(
        s.user_by_username(&name("alicia")).await.expect_err("other"),
        StoreError::NotFound
    );
}

async fn users_are_listed_in_key_order(s: &SqlStore) {
    for raw in ["carol", "Bob", "ａｌｉｃｅ"] {
        create(s, raw).await.expect(raw);
    }
    let names = |v: Vec<User>| v.into_iter().map(|u| u.username.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_users(None, 2).await.expect("page 1")),
        ["ａｌｉｃｅ", "Bob"]
    );
    assert_eq!(names(s.list_users(Some("bob"), 2).await.expect("page 2")), ["carol"]);
}

async fn a_user_written_without_a_key_is_keyed_at_the_next_migration(s: &SqlStore) {
    // As an instance of the previous version would during a rolling update.
    s.insert_unkeyed_user("u-dave", "Dave", HASH, NOW)
        .await
        .expect("insert");
    assert_eq!(
        s.user_by_username(&name("dave")).await.expect_err("no key yet"),
        StoreError::NotFound
    );
    s.migrate().await.expect("migrate");
    let dave = s.user_by_username(&name("DAVE")).await.expect("keyed");
    assert_eq!((dave.id.as_str(), dave.username.as_str()), ("u-dave", "Dave"));
    assert_eq!(create(s, "dave").await.expect_err("taken"), StoreError::Conflict);
}

async fn an_unkeyed_look_alike_stops_the_next_migration(s: &SqlStore) {
    let erin = create(s, "erin").await.expect("erin");
    s.insert_unkeyed_user("u-erin2", "ERIN", HASH, NOW)
        .await
        .expect("insert");
    let Err(MigrationError::Usernames(found)) = s.migrate().await else {
        panic!("the migration must stop on look-alikes")
    };
    assert_eq!(
        found.collisions,
        vec![(
            "erin".to_owned(),
            vec![
                (erin.id.clone(), "erin".to_owned()),
                ("u-erin2".to_owned(), "ERIN".to_owned())
            ]
        )]
    );
    assert!(found.refused.is_empty());
    // Nothing merged: the keyed account still signs in as before.
    assert_eq!(s.user_by_username(&name("Erin")).await.expect("erin"), erin);
}

on_both_backends!(
    look_alike_usernames_cannot_coexist,
    a_user_is_found_in_any_case_or_width_and_shown_as_typed,
    users_are_listed_in_key_order,
    a_user_written_without_a_key_is_keyed_at_the_next_migration,
    an_unkeyed_look_alike_stops_the_next_migration,
);
