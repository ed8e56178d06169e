//! The hashing pool's tests: hashes, parameters, priority, caps.

use std::net::IpAddr;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, SaltString};

use super::*;

fn policy() -> PasswordPolicy {
    PasswordPolicy {
        workers: 2,
        queue: 4,
        ..PasswordPolicy::default()
    }
}

#[tokio::test]
async fn a_hash_verifies_its_password_only() {
    let p = Passwords::new(&policy()).expect("policy");
    let long = "correct horse battery staple ".repeat(5); // 145 characters, never truncated
    let h = p.hash(&long).await.expect("hash");
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    assert_eq!(p.verify(&long, Some(&h)).await, Ok(Verdict::Valid { rehash: None }));
    assert_eq!(p.verify(&long[..long.len() - 1], Some(&h)).await, Ok(Verdict::Invalid));
    assert_eq!(p.verify(&long, None).await, Ok(Verdict::Invalid));
}

/// Hashes written here verify with the reference implementation, and
/// the reverse, so stored hashes move freely between the two.
#[tokio::test]
async fn hashes_interoperate_with_the_argon2_crate() {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
    let p = Passwords::new(&policy()).expect("policy");
    let ours = p.hash("correct horse").await.expect("hash");
    let reference = argon2::Argon2::default();
    let parsed = PasswordHash::new(&ours).expect("PHC string");
    assert!(reference.verify_password(b"correct horse", &parsed).is_ok(), "{ours}");
    assert!(reference.verify_password(b"correct hors", &parsed).is_err());
    let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
    let theirs = reference
        .hash_password(b"battery staple", &salt)
        .expect("reference hash")
        .to_string();
    assert_eq!(
        p.verify("battery staple", Some(&theirs)).await,
        Ok(Verdict::Valid { rehash: None })
    );
    assert_eq!(p.verify("battery stapl", Some(&theirs)).await, Ok(Verdict::Invalid));
    // A truncated hash output is refused, not compared on a prefix.
    let short = &theirs[..theirs.len() - 8];
    assert_eq!(p.verify("battery staple", Some(short)).await, Ok(Verdict::Invalid));
}

#[tokio::test]
async fn a_hash_with_other_parameters_is_rehashed_on_success() {
    let stronger = PasswordPolicy { t_cost: 3, ..policy() };
    let old = Passwords::new(&policy())
        .expect("policy")
        .hash("pw")
        .await
        .expect("hash");
    let p = Passwords::new(&stronger).expect("policy");
    let Ok(Verdict::Valid { rehash: Some(new) }) = p.verify("pw", Some(&old)).await else {
        panic!("expected a rehash")
    };
    assert!(new.contains("m=19456,t=3,p=1"), "{new}");
    assert_eq!(
        p.verify("wrong", Some(&old)).await,
        Ok(Verdict::Invalid),
        "no rehash on failure"
    );
}

#[tokio::test]
async fn absurd_stored_parameters_are_refused_not_computed() {
    let p = Passwords::new(&policy()).expect("policy");
    let h = p.hash("pw").await.expect("hash");
    let absurd = h.replace("m=19456", "m=4194304");
    let started = std::time::Instant::now();
    assert_eq!(p.verify("pw", Some(&absurd)).await, Ok(Verdict::Invalid));
    // 4 GiB would take seconds and might not even allocate.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    for other in [
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        "plain",
        "$2b$12$abc",
    ] {
        assert_eq!(p.verify("pw", Some(other)).await, Ok(Verdict::Invalid), "{other}");
    }
}

/// Hashing threads yield the CPU to request threads (nice +5).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn hashing_runs_at_a_lower_priority_than_requests() {
    fn nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        after.split_whitespace().nth(16).expect("nice").parse().expect("number")
    }
    let p = Passwords::new(&policy()).expect("policy");
    let here = nice();
    let there = p.run(nice).await.expect("run");
    assert!(
        there >= (here + 5).min(19),
        "request thread {here}, hashing thread {there}"
    );
}

#[test]
fn weak_policies_are_refused() {
    assert!(
        Passwords::new(&PasswordPolicy {
            m_cost_kib: 4096,
            ..policy()
        })
        .is_err()
    );
    assert!(Passwords::new(&PasswordPolicy { t_cost: 1, ..policy() }).is_err());
    assert!(
        Passwords::new(&PasswordPolicy {
            m_cost_kib: 8 * 1024 * 1024,
            ..policy()
        })
        .is_err()
    );
}

#[tokio::test]
async fn a_full_queue_answers_busy_instead_of_waiting() {
    let p = Arc::new(
        Passwords::new(&PasswordPolicy {
            workers: 1,
            queue: 1,
            ..policy()
        })
        .expect("policy"),
    );
    let h = p.hash("pw").await.expect("hash");
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (p, h) = (p.clone(), h.clone());
            tokio::spawn(async move { p.verify("pw", Some(&h)).await })
        })
        .collect();
    let mut busy = 0;
    for c in calls {
        if c.await.expect("task") == Err(Busy) {
            busy += 1;
        }
    }
    assert!(
        busy >= 1,
        "with 1 worker and 1 queue slot, 8 at once cannot all be admitted"
    );
}

#[tokio::test]
async fn an_address_holds_its_places_until_its_hashes_are_done_even_if_it_hangs_up() {
    let p = Arc::new(
        Passwords::new(&PasswordPolicy {
            workers: 1,
            queue: 8,
            per_address: 2,
            ..policy()
        })
        .expect("policy"),
    );
    let ip: IpAddr = "192.0.2.1".parse().expect("ip");
    let other: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
    let same_64: IpAddr = "2001:db8:1:2::2".parse().expect("ip");
    let a = p.reserve(Some(ip)).expect("first place");
    let b = p.reserve(Some(ip)).expect("second place");
    assert_eq!(p.reserve(Some(ip)).expect_err("third"), SlotError::Address);
    let _v6 = p.reserve(Some(other)).expect("another address");
    let _v6b = p.reserve(Some(same_64)).expect("same /64, second place");
    assert_eq!(
        p.reserve(Some(same_64)).expect_err("same /64, third"),
        SlotError::Address
    );
    // Both hashes are queued, then their requests hang up.
    let jobs: Vec<_> = [a, b]
        .into_iter()
        .map(|slot| {
            let p = p.clone();
            tokio::spawn(async move { p.verify_reserved(slot, "pw", None).await })
        })
        .collect();
    tokio::task::yield_now().await;
    for j in &jobs {
        j.abort();
    }
    assert_eq!(
        p.reserve(Some(ip)).expect_err("still held by the queued jobs"),
        SlotError::Address
    );
    // Once the worker has been through them, the places are free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if p.reserve(Some(ip)).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "places never freed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Whether two jobs run at once: each waits (bounded) for the other.
async fn two_run_at_once(p: &Arc<Passwords>) -> bool {
    let (a_tx, a_rx) = std::sync::mpsc::channel::<()>();
    let (b_tx, b_rx) = std::sync::mpsc::channel::<()>();
    let wait = std::time::Duration::from_secs(5);
    let a = p.run(move || {
        let _ = a_tx.send(());
        b_rx.recv_timeout(wait).is_ok()
    });
    let b = p.run(move || {
        let _ = b_tx.send(());
        a_rx.recv_timeout(wait).is_ok()
    });
    let (a, b) = tokio::join!(a, b);
    a.expect("a") && b.expect("b")
}

#[tokio::test]
async fn refreshes_in_flight_and_queued_hashes_set_what_hashing_may_use() {
    let p = Arc::new(
        Passwords::new(&PasswordPolicy {
            workers: 2,
            queue: 16,
            ..policy()
        })
        .expect("policy"),
    );
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as f64;
    let near = |budget: Option<f64>, share: f64| {
        budget.is_some_and(|b| (b - (share * cores).max(pace::MIN_CORES)).abs() < 1e-9)
    };
    assert_eq!(p.workers.budget(), None, "no refresh in flight: no limit");
    let refreshes: Vec<_> = (0..3).map(|_| p.refreshing()).collect();
    assert!(near(p.workers.budget(), 1.0 / 4.0), "{:?}", p.workers.budget());

    // Two jobs held on the threads count as two hashes in flight.
    let (release, held) = tokio::sync::watch::channel(false);
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let jobs: Vec<_> = (0..2)
        .map(|_| {
            let (p, mut held, started_tx) = (p.clone(), held.clone(), started_tx.clone());
            tokio::spawn(async move {
                p.run(move || {
                    let _ = started_tx.send(());
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    while !*held.borrow_and_update() && std::time::Instant::now() < deadline {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                })
                .await
            })
        })
        .collect();
    for _ in 0..2 {
        started.recv().await.expect("a job started");
    }
    assert!(near(p.workers.budget(), 2.0 / 5.0), "{:?}", p.workers.budget());
    release.send(true).expect("jobs listen");
    for j in jobs {
        j.await.expect("task").expect("ran");
    }
    assert!(near(p.workers.budget(), 1.0 / 4.0), "finished jobs no longer count");
    drop(refreshes);
    assert_eq!(p.workers.budget(), None, "finished refreshes no longer count");
    assert!(two_run_at_once(&p).await, "both threads hash");
}
