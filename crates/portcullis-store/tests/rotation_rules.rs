//! Every rotation rule as one table: each row presents a token in the state
//! its rule is about, and all rows run at once, mixing good and bad ones
//! (on SQLite as one group of the group-commit writer, on PostgreSQL as
//! concurrent statements). Each row's outcome is checked exactly, with
//! what it wrote: the family's new state (current and previous token) and
//! its audit event, or for every other outcome, nothing at all.

use std::collections::HashMap;
use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::{TestDb, TestingStore as _};
use portcullis_store::*;

/// When the world is set up.
const NOW: UnixTime = UnixTime(1_800_000_000);
/// When the rotations of the table run.
const T: UnixTime = UnixTime(1_800_001_000);
const DAY: i64 = 86_400;
/// The id rows present for a token that has no family.
const NO_FAMILY: &str = "no-such-family";

fn hash(label: &str) -> TokenHash {
    TokenHash::of(label.as_bytes())
}

/// The hash of a family's selector: a family's tokens are named
/// `<family>-<n>`, and share the selector `<family>`.
fn selector(family: &str) -> TokenHash {
    hash(&format!("selector:{family}"))
}

/// The family a token label belongs to.
fn family_of(token: &str) -> &str {
    token.split('-').next().unwrap_or(token)
}

fn sealed(child: &str) -> Sealed {
    Sealed(format!("sealed:{child}").into_bytes())
}

/// Family ids by family name.
type Ids = HashMap<String, String>;

/// What a row must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The family rotated, its new current token with this idle expiry.
    Rotated(UnixTime),
    /// Refused, nothing written.
    Refused(Refusal),
    /// Not the family's current token, since before the table ran: the
    /// family's previous token (the presented one for a retry, another for
    /// a reuse), its sealed successor kept or not, the family live or not.
    Spent {
        previous: &'static str,
        successor: Option<&'static str>,
        live: bool,
    },
    /// Two rows present this token at once: one rotates the family, the
    /// other finds the token spent by the first (it is the previous one).
    Race,
    /// No family has this id.
    NotFound,
    /// The write fails (the selector is another family's); nothing written.
    Conflict,
}

/// One rule: the token presented, by which client, asking for which child
/// (carrying which family's selector).
#[derive(Debug, Clone, Copy)]
struct Row {
    rule: &'static str,
    presented: &'static str,
    client: &'static str,
    child: &'static str,
    selector: &'static str,
    expect: Expect,
}

const fn row(rule: &'static str, presented: &'static str, client: &'static str, expect: Expect) -> Row {
    Row {
        rule,
        presented,
        client,
        child: rule,
        selector: "",
        expect,
    }
}

const fn spent(previous: &'static str, successor: Option<&'static str>, live: bool) -> Expect {
    Expect::Spent {
        previous,
        successor,
        live,
    }
}

impl Row {
    /// The selector the child carries: the family's own unless the row
    /// says otherwise.
    fn selector(&self) -> TokenHash {
        selector(if self.selector.is_empty() {
            family_of(self.presented)
        } else {
            self.selector
        })
    }
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
        row("spent within the retry window",         "retry-0", "app",   spent("retry-0", Some("retry-1"), true)),
        row("spent after the retry window",          "late-0",  "app",   spent("late-0", None, true)),
        row("spent, and its child spent too",        "gp-0",    "app",   spent("gp-1", Some("gp-2"), true)),
        row("spent long ago (generation 3 of 5)",    "deep-2",  "app",   spent("deep-4", Some("deep-5"), true)),
        row("spent, family revoked for reuse since", "reuse-0", "app",   spent("reuse-0", None, false)),
        row("another client's spent token",          "wcs-0",   "other", Refused(WrongClient)),
        row("race grace: first of two at once",      "race-0",  "app",   Race),
        row("race grace: second of two at once",     "race-0",  "app",   Race),
        row("a token of before constant state",      "legacy-0", "app",  Rotated(T.plus(30 * DAY))),
        row("unknown family",                        "nope",    "app",   NotFound),
    ]
}

/// A row whose write fails: its token is the current one of a family from
/// before constant state (no selector yet), but the selector its child
/// carries is another family's.
const FAILING: Row = Row {
    rule: "selector taken",
    presented: "odd-0",
    client: "app",
    child: "odd-1",
    selector: "taken",
    expect: Expect::Conflict,
};

async fn user(s: &SqlStore, name: &str) -> User {
    let new = NewUser {
        username: portcullis_domain::Username::parse(name).expect("username"),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        email: None,
        email_verified: false,
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
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    s.create_client(&new, NOW).await.expect("create client")
}

/// A family whose first token is `first` (its selector named after it),
/// with an absolute expiry and the first token's idle expiry.
async fn family(
    s: &SqlStore,
    ids: &mut Ids,
    user: &User,
    client: &str,
    first: &str,
    expires: UnixTime,
    idle: UnixTime,
) -> String {
    let new = NewFamily {
        user_id: user.id.clone(),
        client_id: client.into(),
        scope: "read".into(),
        device_label: None,
        expires_at: expires,
        selector: selector(family_of(first)),
        first_token: hash(first),
        first_token_expires_at: idle,
        sessions_epoch: 0,
        password_hash: None,
        sign_in: None,
        dpop_jkt: None,
        amr: None,
    };
    let id = s.start_family(&new, NOW).await.expect("start family").id;
    ids.insert(family_of(first).to_owned(), id.clone());
    id
}

/// A live family of `user`'s on `client`.
async fn live(s: &SqlStore, ids: &mut Ids, user: &User, client: &str, first: &str) -> String {
    family(s, ids, user, client, first, NOW.plus(90 * DAY), NOW.plus(30 * DAY)).await
}

/// The rotation a row asks for, of the family its token names.
fn rotate<'a>(ids: &'a Ids, row: &Row, now: UnixTime) -> Rotate<'a> {
    Rotate {
        family_id: ids.get(family_of(row.presented)).map_or(NO_FAMILY, String::as_str),
        presented: hash(row.presented),
        client_id: row.client,
        selector: row.selector(),
        child: hash(row.child),
        child_expires_at: now.plus(30 * DAY),
        successor: Some(sealed(row.child)),
        now,
        audit: Some(NewAuditEvent {
            detail: Some(row.rule.into()),
            ..NewAuditEvent::new(portcullis_domain::AuditAction::Refresh)
        }),
    }
}

/// A rotation done while setting up (no audit event).
async fn rotated(s: &SqlStore, ids: &Ids, presented: &'static str, child: &'static str, now: UnixTime) {
    let setup = row("", presented, "app", Expect::NotFound);
    let r = Rotate {
        audit: None,
        ..rotate(ids, &Row { child, ..setup }, now)
    };
    let got = s.rotate_refresh(&r).await.expect("rotate");
    assert!(matches!(got, Rotation::Rotated(_)), "set-up {presented}: {got:?}");
}

/// Puts every token of [`table`] (and [`FAILING`]) in the state its rule
/// is about; returns the family ids by name.
async fn world(s: &SqlStore) -> Ids {
    let mut ids = Ids::new();
    let ids_ = &mut ids;
    let (alice, bob) = (user(s, "alice").await, user(s, "bob").await);
    for id in ["app", "other", "gone"] {
        client(s, id).await;
    }
    // First, as the periodic clean-up forgets every sealed successor of a
    // token spent before its cutoff.
    live(s, ids_, &alice, "app", "late-0").await;
    rotated(s, ids_, "late-0", "late-1", T.plus(-100)).await;
    s.clear_successors(T.plus(-10)).await.expect("clear successors");
    // Second generation, so that the rotation also replaces the previous
    // token and its sealed successor.
    let ok = live(s, ids_, &alice, "app", "ok-0").await;
    rotated(s, ids_, "ok-0", "ok-1", T.plus(-20)).await;
    let ok = s.family_by_id(&ok).await.expect("ok");
    assert_eq!(ok.previous.expect("ok-0").successor, Some(sealed("ok-1")));
    family(s, ids_, &alice, "app", "cap-0", T.plus(60), T.plus(60)).await;
    family(s, ids_, &alice, "app", "idle-0", NOW.plus(90 * DAY), T).await;
    family(s, ids_, &alice, "app", "old-0", T, NOW.plus(30 * DAY)).await;
    live(s, ids_, &alice, "app", "wc-0").await;
    let revoked = live(s, ids_, &alice, "app", "rev-0").await;
    s.revoke_family(&revoked, RevokeReason::SignOut, NOW)
        .await
        .expect("revoke family");
    live(s, ids_, &bob, "app", "bob-0").await;
    let disable = UserUpdate {
        status: Some(UserStatus::Disabled),
        password_hash: None,
    };
    s.update_and_revoke_user(&bob.id, &disable, RevokeReason::UserRevoked, NOW)
        .await
        .expect("disable bob");
    live(s, ids_, &alice, "gone", "gone-0").await;
    s.revoke_client("gone", NOW).await.expect("revoke client");
    live(s, ids_, &alice, "app", "retry-0").await;
    rotated(s, ids_, "retry-0", "retry-1", T.plus(-5)).await;
    live(s, ids_, &alice, "app", "gp-0").await;
    rotated(s, ids_, "gp-0", "gp-1", T.plus(-50)).await;
    rotated(s, ids_, "gp-1", "gp-2", T.plus(-40)).await;
    live(s, ids_, &alice, "app", "deep-0").await;
    for (presented, child) in [("deep-0", "deep-1"), ("deep-1", "deep-2"), ("deep-2", "deep-3")] {
        rotated(s, ids_, presented, child, T.plus(-60)).await;
    }
    rotated(s, ids_, "deep-3", "deep-4", T.plus(-30)).await;
    rotated(s, ids_, "deep-4", "deep-5", T.plus(-30)).await;
    let reused = live(s, ids_, &alice, "app", "reuse-0").await;
    rotated(s, ids_, "reuse-0", "reuse-1", T.plus(-500)).await;
    s.revoke_family(&reused, RevokeReason::Reuse, T.plus(-400))
        .await
        .expect("revoke for reuse");
    live(s, ids_, &alice, "app", "wcs-0").await;
    rotated(s, ids_, "wcs-0", "wcs-1", T.plus(-5)).await;
    live(s, ids_, &alice, "app", "race-0").await;
    // Families from before constant state: no selector yet.
    let legacy = live(s, ids_, &alice, "app", "legacy-0").await;
    s.forget_family_selector(&legacy).await.expect("legacy");
    let odd = live(s, ids_, &alice, "app", "odd-0").await;
    s.forget_family_selector(&odd).await.expect("odd");
    live(s, ids_, &alice, "app", "taken-0").await;
    live(s, ids_, &alice, "app", "plug-0").await;
    ids
}

/// Runs the rows' rotations at once. With group commit, as one group: a
/// first rotation holds the writer (it waits on the write lock taken here)
/// while the rows queue behind it; once all are queued, the lock is
/// released and the writer takes them together.
async fn rotate_at_once(
    s: &SqlStore,
    db: Option<&TestDb>,
    ids: &Ids,
    rows: &[Row],
) -> Vec<Result<Rotation, StoreError>> {
    let ids = std::sync::Arc::new(ids.clone());
    let grouped = db.is_some_and(|db| db.queued_rotations().is_some());
    let lock = match db {
        Some(db) if grouped => Some(db.hold_rotations().await),
        _ => None,
    };
    let plug = lock.is_some().then(|| {
        let (s, ids) = (s.clone(), ids.clone());
        let plug = Row {
            child: "plug-1",
            ..row("", "plug-0", "app", Expect::NotFound)
        };
        tokio::spawn(async move {
            let r = Rotate {
                audit: None,
                ..rotate(&ids, &plug, T)
            };
            s.rotate_refresh(&r).await
        })
    });
    if plug.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(rows.len()));
    let tasks: Vec<_> = rows
        .iter()
        .map(|row| {
            let (s, barrier, ids, row) = (s.clone(), barrier.clone(), ids.clone(), *row);
            tokio::spawn(async move {
                barrier.wait().await;
                s.rotate_refresh(&rotate(&ids, &row, T)).await
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
        assert!(matches!(got, Rotation::Rotated(_)), "plug: {got:?}");
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    outcomes
}

/// The id of the family a token names.
fn r_family(ids: &Ids, token: &str) -> String {
    ids.get(family_of(token))
        .cloned()
        .unwrap_or_else(|| NO_FAMILY.to_owned())
}

/// Sets up the world, reads each presented token's family, runs the rows
/// at once and checks every outcome and every write.
async fn check(s: &SqlStore, db: Option<&TestDb>, rows: &[Row]) {
    let ids = world(s).await;
    let counts = s.refresh_row_counts().await.expect("counts");
    assert_eq!(counts.tokens, 0, "no row per token");
    let mut before = Vec::new();
    for row in rows {
        before.push(s.family_by_id(&r_family(&ids, row.presented)).await.ok());
    }
    let outcomes = rotate_at_once(s, db, &ids, rows).await;

    let mut audited = Vec::new();
    let mut race = (0, 0);
    for ((row, before), outcome) in rows.iter().zip(&before).zip(outcomes) {
        let rule = row.rule;
        let after = s.family_by_id(&r_family(&ids, row.presented)).await.ok();
        match (row.expect, outcome) {
            (expect @ (Expect::Rotated(_) | Expect::Race), Ok(Rotation::Rotated(family))) => {
                let idle = match expect {
                    Expect::Rotated(idle) => idle,
                    _ => {
                        race.0 += 1;
                        T.plus(30 * DAY)
                    }
                };
                let before = before.clone().expect("set up");
                assert_rotated(s, row, &before, &family, idle).await;
                assert_eq!(after, Some(family), "{rule}: stored as returned");
                audited.push(rule);
            }
            (Expect::Race, Ok(Rotation::Spent(family))) => {
                let f = after.clone().expect("the winner's family");
                assert_eq!(family, f, "{rule}: as the winner left it");
                let previous = family.previous.clone().expect("previous");
                assert_eq!(
                    (previous.hash, previous.used_at),
                    (hash(row.presented), T),
                    "{rule}: within the race grace"
                );
                assert!(family.is_live(T), "{rule}");
                assert_ne!(
                    family.current.hash,
                    Some(hash(row.child)),
                    "{rule}: the loser's child is not written"
                );
                race.1 += 1;
            }
            (
                Expect::Spent {
                    previous,
                    successor,
                    live,
                },
                Ok(Rotation::Spent(family)),
            ) => {
                assert_eq!(Some(&family), before.as_ref(), "{rule}: reported as it was");
                assert_ne!(family.current.hash, Some(hash(row.presented)), "{rule}");
                let p = family.previous.clone().expect("previous");
                assert_eq!(p.hash, hash(previous), "{rule}: previous token");
                assert!(p.used_at < T, "{rule}");
                assert_eq!(p.successor, successor.map(sealed), "{rule}: sealed successor");
                assert_eq!(family.is_live(T), live, "{rule}");
                assert_eq!(&after, before, "{rule}: unchanged");
            }
            (Expect::Refused(why), Ok(got)) => {
                assert_eq!(got, Rotation::Refused(why), "{rule}");
                assert_eq!(&after, before, "{rule}: unchanged");
            }
            (Expect::NotFound, Ok(got)) => {
                assert_eq!(got, Rotation::NotFound, "{rule}");
                assert_eq!((&after, before), (&None, &None), "{rule}");
            }
            (Expect::Conflict, Err(e)) => {
                assert_eq!(e, StoreError::Conflict, "{rule}");
                assert_eq!(&after, before, "{rule}: its family is as it was");
                let f = after.expect("set up");
                assert_eq!(
                    (f.current.generation, f.current.hash),
                    (0, Some(hash(row.presented))),
                    "{rule}"
                );
                let owner = s.family_by_token(&TokenKey::Selector(row.selector())).await;
                assert_ne!(
                    owner.expect("the selector's family").id,
                    f.id,
                    "{rule}: selector not taken over"
                );
            }
            (expect, got) => panic!("{rule}: expected {expect:?}, got {got:?}"),
        }
    }
    let racers = rows.iter().filter(|r| matches!(r.expect, Expect::Race)).count();
    if racers > 0 {
        assert_eq!(race, (1, racers - 1), "exactly one racer wins");
    }
    // Constant state: no row was added by any rotation.
    assert_eq!(s.refresh_row_counts().await.expect("counts"), counts, "state size");

    // One audit event per rotation, none for any other row.
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

/// A rotated family: touched, one generation on, the presented token its
/// previous one (with the sealed child), the child its current one (the
/// token before the presented one, and its sealed successor, forgotten),
/// found by its selector, which is set.
async fn assert_rotated(s: &SqlStore, row: &Row, before: &RefreshFamily, family: &RefreshFamily, idle: UnixTime) {
    let rule = row.rule;
    assert_eq!(
        *family,
        RefreshFamily {
            last_used_at: T,
            current: CurrentToken {
                generation: before.current.generation + 1,
                hash: Some(hash(row.child)),
                expires_at: idle,
            },
            previous: Some(PreviousToken {
                hash: hash(row.presented),
                used_at: T,
                successor: Some(sealed(row.child)),
            }),
            ..before.clone()
        },
        "{rule}: family"
    );
    assert_eq!(family.current_issued_at(), T, "{rule}");
    assert!(family.current_is(&hash(row.child), T), "{rule}");
    assert_eq!(
        s.family_by_token(&TokenKey::Selector(row.selector())).await,
        Ok(family.clone()),
        "{rule}: found by its selector"
    );
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
