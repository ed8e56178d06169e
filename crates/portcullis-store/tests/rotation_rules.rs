//! Every rotation rule as one table: each row presents a token in the state
//! its rule is about, and all rows run at once, mixing good and bad ones
//! (on SQLite as one group of the group-commit writer, on PostgreSQL as
//! concurrent statements). Each row's outcome is checked exactly, with
//! what it wrote: a consumed token, its touched family, its child and its
//! audit event, or for every other outcome, nothing at all.

use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use portcullis_store::*;

/// When the world is set up.
const NOW: UnixTime = UnixTime(1_800_000_000);
/// When the rotations of the table run.
const T: UnixTime = UnixTime(1_800_001_000);
const DAY: i64 = 86_400;

fn hash(label: &str) -> TokenHash {
    TokenHash::of(label.as_bytes())
}

fn sealed(child: &str) -> Sealed {
    Sealed(format!("sealed:{child}").into_bytes())
}

/// What a row must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Consumed, with a child whose idle expiry is this.
    Rotated(UnixTime),
    /// Refused, nothing written.
    Refused(Refusal),
    /// Spent before the table ran: its sealed successor (the child it was
    /// rotated to) is still kept or not, its family live or not.
    Spent {
        successor: Option<&'static str>,
        live: bool,
    },
    /// Two rows present this token at once: one consumes it, the other
    /// finds it spent by the first.
    Race,
    /// No token has this hash.
    NotFound,
    /// The write fails (the child's hash is taken); nothing written.
    Conflict,
}

/// One rule: the token presented, by which client, asking for which child.
#[derive(Debug, Clone, Copy)]
struct Row {
    rule: &'static str,
    presented: &'static str,
    client: &'static str,
    child: &'static str,
    expect: Expect,
}

const fn row(rule: &'static str, presented: &'static str, client: &'static str, expect: Expect) -> Row {
    Row {
        rule,
        presented,
        client,
        child: rule,
        expect,
    }
}

const fn spent(successor: Option<&'static str>, live: bool) -> Expect {
    Expect::Spent { successor, live }
}

/// The rules. Every token is set up by [`world`].
#[rustfmt::skip] // A table: one row a line.
fn table() -> Vec<Row> {
    use Expect::*;
    use Refusal::*;
    vec![
        row("happy path",                            "ok-1",    "app",   Rotated(T.plus(30 * DAY))),
        row("child capped at the family's expiry",   "cap-0",   "app",   Rotated(T.plus(60))),
        row("token past its idle expiry",            "idle-0",  "app",   Refused(TokenExpired)),
        row("family past its absolute expiry",       "old-0",   "app",   Refused(FamilyExpired)),
        row("another client's token",                "wc-0",    "other", Refused(WrongClient)),
        row("revoked family",                        "rev-0",   "app",   Refused(FamilyRevoked)),
        row("disabled (revoked) user",               "bob-0",   "app",   Refused(FamilyRevoked)),
        row("revoked client",                        "gone-0",  "gone",  Refused(FamilyRevoked)),
        row("spent within the retry window",         "retry-0", "app",   spent(Some("retry-1"), true)),
        row("spent after the retry window",          "late-0",  "app",   spent(None, true)),
        row("spent, and its child spent too",        "gp-0",    "app",   spent(None, true)),
        row("spent, family revoked for reuse since", "reuse-0", "app",   spent(None, false)),
        row("another client's spent token",          "wcs-0",   "other", Refused(WrongClient)),
        row("race grace: first of two at once",      "race-0",  "app",   Race),
        row("race grace: second of two at once",     "race-0",  "app",   Race),
        row("unknown token",                         "nope",    "app",   NotFound),
    ]
}

/// A row whose write fails: its token may be consumed, but its child's
/// hash is taken (another family's token has it).
const FAILING: Row = Row {
    rule: "child hash taken",
    presented: "odd-0",
    client: "app",
    child: "taken",
    expect: Expect::Conflict,
};

async fn user(s: &SqlStore, name: &str) -> User {
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
    };
    s.create_user(&new, NOW).await.expect("create user")
}

async fn client(s: &SqlStore, id: &str) -> Client {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("password refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
    };
    s.create_client(&new, NOW).await.expect("create client")
}

/// A family whose first token is `first`, with an absolute expiry and the
/// first token's idle expiry.
async fn family(s: &SqlStore, user: &User, client: &str, first: &str, expires: UnixTime, idle: UnixTime) -> String {
    let new = NewFamily {
        user_id: user.id.clone(),
        client_id: client.into(),
        scope: "read".into(),
        device_label: None,
        expires_at: expires,
        first_token: hash(first),
        first_token_expires_at: idle,
        not_revoked_since: UnixTime(0),
        password_hash: None,
        sign_in: None,
    };
    s.start_family(&new, NOW).await.expect("start family").0.id
}

/// A live family of alice's on `app`.
async fn live(s: &SqlStore, alice: &User, client: &str, first: &str) -> String {
    family(s, alice, client, first, NOW.plus(90 * DAY), NOW.plus(30 * DAY)).await
}

fn rotate(presented: &str, client_id: &'static str, child: &str, rule: &str, now: UnixTime) -> Rotate<'static> {
    Rotate {
        presented: hash(presented),
        client_id,
        child: hash(child),
        child_expires_at: now.plus(30 * DAY),
        successor: Some(sealed(child)),
        now,
        audit: Some(NewAuditEvent {
            detail: Some(rule.into()),
            ..NewAuditEvent::new(portcullis_domain::AuditAction::Refresh)
        }),
    }
}

/// A rotation done while setting up (no audit event).
async fn rotated(s: &SqlStore, presented: &str, child: &str, now: UnixTime) {
    let r = Rotate {
        audit: None,
        ..rotate(presented, "app", child, "", now)
    };
    let got = s.rotate_refresh(&r).await.expect("rotate");
    assert!(matches!(got, Rotation::Rotated { .. }), "set-up {presented}: {got:?}");
}

/// Puts every token of [`table`] (and [`FAILING`]) in the state its rule
/// is about.
async fn world(s: &SqlStore) {
    let (alice, bob) = (user(s, "alice").await, user(s, "bob").await);
    for id in ["app", "other", "gone"] {
        client(s, id).await;
    }
    // First, as the periodic clean-up forgets every sealed successor of a
    // token spent before its cutoff.
    live(s, &alice, "app", "late-0").await;
    rotated(s, "late-0", "late-1", T.plus(-100)).await;
    s.clear_successors(T.plus(-10)).await.expect("clear successors");
    // Second generation, so that the rotation also clears the sealed
    // successor its parent keeps.
    live(s, &alice, "app", "ok-0").await;
    rotated(s, "ok-0", "ok-1", T.plus(-20)).await;
    let ok0 = s.refresh_token_by_hash(hash("ok-0")).await.expect("ok-0").0;
    assert_eq!(ok0.successor, Some(sealed("ok-1")));
    family(s, &alice, "app", "cap-0", T.plus(60), T.plus(60)).await;
    family(s, &alice, "app", "idle-0", NOW.plus(90 * DAY), T).await;
    family(s, &alice, "app", "old-0", T, NOW.plus(30 * DAY)).await;
    live(s, &alice, "app", "wc-0").await;
    let revoked = live(s, &alice, "app", "rev-0").await;
    s.revoke_family(&revoked, RevokeReason::SignOut, NOW)
        .await
        .expect("revoke family");
    live(s, &bob, "app", "bob-0").await;
    let disable = UserUpdate {
        status: Some(UserStatus::Disabled),
        password_hash: None,
    };
    s.update_and_revoke_user(&bob.id, &disable, RevokeReason::UserRevoked, NOW)
        .await
        .expect("disable bob");
    live(s, &alice, "gone", "gone-0").await;
    s.revoke_client("gone", NOW).await.expect("revoke client");
    live(s, &alice, "app", "retry-0").await;
    rotated(s, "retry-0", "retry-1", T.plus(-5)).await;
    live(s, &alice, "app", "gp-0").await;
    rotated(s, "gp-0", "gp-1", T.plus(-50)).await;
    rotated(s, "gp-1", "gp-2", T.plus(-40)).await;
    let reused = live(s, &alice, "app", "reuse-0").await;
    rotated(s, "reuse-0", "reuse-1", T.plus(-500)).await;
    s.revoke_family(&reused, RevokeReason::Reuse, T.plus(-400))
        .await
        .expect("revoke for reuse");
    live(s, &alice, "app", "wcs-0").await;
    rotated(s, "wcs-0", "wcs-1", T.plus(-5)).await;
    live(s, &alice, "app", "race-0").await;
    live(s, &alice, "app", "odd-0").await;
    live(s, &alice, "app", "taken").await;
    live(s, &alice, "app", "plug-0").await;
}

/// Runs the rows' rotations at once. With SQLite's group commit, as one
/// group: a first rotation holds the writer (it waits on the file's write
/// lock, taken here) while the rows queue behind it; once all are queued,
/// the lock is released and the writer takes them together.
async fn rotate_at_once(s: &SqlStore, db: Option<&TestDb>, rows: &[Row]) -> Vec<Result<Rotation, StoreError>> {
    let grouped = db.is_some_and(|db| db.queued_rotations().is_some());
    let lock = match db {
        Some(db) if grouped => db.sqlite_write_lock().await,
        _ => None,
    };
    let plug = lock.is_some().then(|| {
        let s = s.clone();
        let r = Rotate {
            audit: None,
            ..rotate("plug-0", "app", "plug-1", "", T)
        };
        tokio::spawn(async move { s.rotate_refresh(&r).await })
    });
    if plug.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(rows.len()));
    let tasks: Vec<_> = rows
        .iter()
        .map(|row| {
            let (s, barrier, row) = (s.clone(), barrier.clone(), *row);
            tokio::spawn(async move {
                barrier.wait().await;
                s.rotate_refresh(&rotate(row.presented, row.client, row.child, row.rule, T))
                    .await
            })
        })
        .collect();
    if let (Some(lock), Some(db)) = (lock, db) {
        // Every row queued (none taken yet): they go in the next group.
        let mut waited = 0;
        while db.queued_rotations().unwrap_or(0) < rows.len() {
            assert!(waited < 2_000, "the rows did not queue behind the writer as one group");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        lock.release().await;
    }
    if let Some(plug) = plug {
        let got = plug.await.expect("task").expect("plug");
        assert!(matches!(got, Rotation::Rotated { .. }), "plug: {got:?}");
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    outcomes
}

/// Sets up the world, reads each presented token, runs the rows at once and
/// checks every outcome and every write.
async fn check(s: &SqlStore, db: Option<&TestDb>, rows: &[Row]) {
    world(s).await;
    let mut before = Vec::new();
    for row in rows {
        before.push(s.refresh_token_by_hash(hash(row.presented)).await.ok());
    }
    let outcomes = rotate_at_once(s, db, rows).await;

    let mut audited = Vec::new();
    let mut race = (0, 0);
    for ((row, before), outcome) in rows.iter().zip(&before).zip(outcomes) {
        let rule = row.rule;
        let after = s.refresh_token_by_hash(hash(row.presented)).await.ok();
        let child = s.refresh_token_by_hash(hash(row.child)).await.ok();
        match (row.expect, outcome) {
            (
                expect @ (Expect::Rotated(_) | Expect::Race),
                Ok(Rotation::Rotated {
                    family,
                    parent,
                    child: c,
                }),
            ) => {
                let idle = match expect {
                    Expect::Rotated(idle) => idle,
                    _ => {
                        race.0 += 1;
                        T.plus(30 * DAY)
                    }
                };
                let (token, fam) = before.clone().expect("set up");
                assert_rotated(s, row, (&token, &fam), (&family, &parent, &c), idle).await;
                audited.push(rule);
            }
            (Expect::Race, Ok(Rotation::Spent { family, token })) => {
                let (t, f) = after.clone().expect("winner's parent");
                assert_eq!((&token, &family), (&t, &f), "{rule}: spent by the winner");
                assert_eq!(token.used_at, Some(T), "{rule}: within the race grace");
                assert!(family.is_live(T), "{rule}");
                assert_eq!(child, None, "{rule}: the loser's child is not written");
                race.1 += 1;
            }
            (Expect::Spent { successor, live }, Ok(Rotation::Spent { family, token })) => {
                let (t, f) = before.clone().expect("set up");
                assert_eq!((&token, &family), (&t, &f), "{rule}: reported as it was");
                assert!(token.used_at.is_some_and(|u| u < T), "{rule}");
                assert_eq!(token.successor, successor.map(sealed), "{rule}: sealed successor");
                assert_eq!(family.is_live(T), live, "{rule}");
                let replaced = s
                    .refresh_token_by_id(token.replaced_by.as_deref().expect("child"))
                    .await;
                assert_eq!(replaced.expect("child").parent_id, Some(token.id.clone()), "{rule}");
                assert_unchanged(rule, before, &after, &child);
            }
            (Expect::Refused(why), Ok(got)) => {
                assert_eq!(got, Rotation::Refused(why), "{rule}");
                assert_unchanged(rule, before, &after, &child);
            }
            (Expect::NotFound, Ok(got)) => {
                assert_eq!(got, Rotation::NotFound, "{rule}");
                assert_eq!((&after, before), (&None, &None), "{rule}");
            }
            (Expect::Conflict, Err(e)) => {
                assert_eq!(e, StoreError::Conflict, "{rule}");
                assert_eq!(after, before.clone(), "{rule}: its token is as it was");
                assert_eq!(after.expect("set up").0.used_at, None, "{rule}");
            }
            (expect, got) => panic!("{rule}: expected {expect:?}, got {got:?}"),
        }
    }
    let racers = rows.iter().filter(|r| matches!(r.expect, Expect::Race)).count();
    if racers > 0 {
        assert_eq!(race, (1, racers - 1), "exactly one racer wins");
    }

    // One audit event per consumed token, none for any other row.
    let mut events: Vec<String> = s
        .audit_events(None, 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "refresh")
        .filter_map(|e| e.detail)
        .collect();
    events.sort();
    audited.sort_unstable();
    assert_eq!(events, audited);
}

/// A consumed token: the parent marked and stored so, the family touched,
/// the child stored as returned, and the parent's own parent no longer
/// keeping a sealed successor.
async fn assert_rotated(
    s: &SqlStore,
    row: &Row,
    (token, fam): (&RefreshToken, &RefreshFamily),
    (family, parent, child): (&RefreshFamily, &RefreshToken, &RefreshToken),
    idle: UnixTime,
) {
    let rule = row.rule;
    assert_eq!(
        *family,
        RefreshFamily {
            last_used_at: T,
            ..fam.clone()
        },
        "{rule}: family"
    );
    assert_eq!(
        *parent,
        RefreshToken {
            used_at: Some(T),
            replaced_by: Some(child.id.clone()),
            successor: Some(sealed(row.child)),
            ..token.clone()
        },
        "{rule}: parent"
    );
    assert_eq!(
        *child,
        RefreshToken {
            id: child.id.clone(),
            family_id: fam.id.clone(),
            parent_id: Some(token.id.clone()),
            hash: hash(row.child),
            issued_at: T,
            expires_at: idle,
            used_at: None,
            replaced_by: None,
            successor: None,
        },
        "{rule}: child"
    );
    assert_eq!(
        s.refresh_token_by_hash(token.hash).await.expect("parent stored"),
        (parent.clone(), family.clone()),
        "{rule}: parent stored"
    );
    assert_eq!(
        s.refresh_token_by_hash(child.hash).await.expect("child stored"),
        (child.clone(), family.clone()),
        "{rule}: child stored"
    );
    if let Some(grandparent) = &token.parent_id {
        let g = s.refresh_token_by_id(grandparent).await.expect("grandparent");
        assert_eq!(
            g.successor, None,
            "{rule}: the grandparent's sealed successor is cleared"
        );
    }
}

/// A row that consumed nothing wrote nothing: its token and family are as
/// they were, and its child does not exist.
fn assert_unchanged(
    rule: &str,
    before: &Option<(RefreshToken, RefreshFamily)>,
    after: &Option<(RefreshToken, RefreshFamily)>,
    child: &Option<(RefreshToken, RefreshFamily)>,
) {
    assert_eq!(after, before, "{rule}: unchanged");
    assert_eq!(*child, None, "{rule}: no child");
}

async fn every_rule_holds_in_one_batch(db: &TestDb) {
    check(db, Some(db), &table()).await;
}

async fn a_failing_row_leaves_every_other_outcome_as_it_was(db: &TestDb) {
    let mut rows = table();
    rows.insert(3, FAILING);
    check(db, Some(db), &rows).await;
}

on_both_backends!(
    every_rule_holds_in_one_batch,
    a_failing_row_leaves_every_other_outcome_as_it_was
);

/// SQLite with group commit off: every rotation is a group of one, on the
/// same path, with the same outcomes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_holds_for_rotations_committed_one_by_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("one.db").display());
    let opts = ConnectOptions {
        group_commit: false,
        acquire_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    };
    let s = SqlStore::connect_with(&url, &opts).await.expect("open");
    s.migrate().await.expect("migrate");
    let mut rows = table();
    rows.push(FAILING);
    check(&s, None, &rows).await;
}
