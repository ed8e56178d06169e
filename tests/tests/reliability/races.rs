//! Scenarios 1 and 4: one refresh token sent 1000 times, 200 at once, in
//! strict mode and with a retry window, 20 times over; and a refresh whose
//! answer the client never sees.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_store::testing::TestDb;
use portcullis_store::{TokenHash, on_both_backends};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::support::*;

const REQUESTS: usize = 1000;
const CONCURRENCY: usize = 200;

/// Races per test (`PORTCULLIS_RACE_ROUNDS`, default 20).
fn rounds() -> u64 {
    crate::env_number("PORTCULLIS_RACE_ROUNDS", 20)
}

/// Sends `rt` [`REQUESTS`] times from [`CONCURRENCY`] tasks released at
/// once; returns every answer's status and body. Every answer must carry
/// the token endpoint's cache headers.
async fn race(http: &Http, base: &str, rt: &str) -> Vec<(u16, Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(CONCURRENCY));
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", "mobile"),
        ("refresh_token", rt),
    ]);
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, url, body, barrier) = (
                http.clone(),
                format!("{base}/oauth/token"),
                body.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                let mut answers = Vec::new();
                for _ in 0..REQUESTS / CONCURRENCY {
                    let res = http
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    assert_no_store(&res);
                    let status = res.status().as_u16();
                    answers.push((status, res.json::<Value>().await.expect("json")));
                }
                answers
            })
        })
        .collect();
    let mut all = Vec::with_capacity(REQUESTS);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all
}

fn racing_client() -> Http {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client")
        .into()
}

fn refresh_token_of(body: &Value) -> String {
    body["refresh_token"].as_str().expect("refresh_token").to_owned()
}

/// Strict mode: exactly one 200 per race, every other answer 400
/// `invalid_grant`, never a 5xx; the losers do not end the family, so the
/// winner's token works. A replay after the race grace is reuse.
async fn strict_mode_has_exactly_one_winner_in_every_race(db: &TestDb) {
    let _suite = crate::shared().await;
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| c.refresh_retry_window = Duration::ZERO).await;
    let http = racing_client();
    let mut first = None;
    let mut slowest = Duration::ZERO;
    for round in 0..rounds() {
        let rt = app.sign_in_refresh_token("mobile", "alice").await;
        let raced = Instant::now();
        let answers = race(&http, &app.base, &rt).await;
        let took = raced.elapsed();
        assert_eq!(answers.len(), REQUESTS);
        let mut winners = Vec::new();
        for (status, body) in &answers {
            match status {
                200 => winners.push(body),
                400 => assert_eq!(body["error"], "invalid_grant", "round {round}: {body}"),
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner ({took:?})");
        slowest = slowest.max(took);
        let res = app.refresh("mobile", &refresh_token_of(winners[0])).await;
        assert_eq!(res.status(), 200, "round {round}: the winner's new token works");
        let newest = refresh_token_of(&res.json().await.expect("json"));
        first.get_or_insert((rt, newest, Instant::now()));
    }
    eprintln!(
        "strict races: {} of {REQUESTS} requests each, slowest {slowest:?}",
        rounds()
    );
    // Past the race grace (2 s, counted in whole seconds) the first race's
    // token is a replay: reuse, and the family ends.
    let (rt, newest, at) = first.expect("a round");
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(at.elapsed())).await;
    assert_error(app.refresh("mobile", &rt).await, 400, "invalid_grant").await;
    assert_error(app.refresh("mobile", &newest).await, 400, "invalid_grant").await;
}

/// With a retry window every request of the race gets 200 and the same
/// new token, the family has one child, and a replay after the window
/// ends the family.
async fn with_a_retry_window_every_racer_gets_the_same_token(db: &TestDb) {
    const WINDOW: Duration = Duration::from_secs(10);
    let _suite = crate::shared().await;
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let app = spawn_with(db, |c| c.refresh_retry_window = WINDOW).await;
    let http = racing_client();
    let mut raced = Vec::new();
    for round in 0..rounds() {
        let rt = app.sign_in_refresh_token("mobile", "alice").await;
        let answers = race(&http, &app.base, &rt).await;
        let tokens: HashSet<String> = answers
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, 200, "round {round}: {body}");
                refresh_token_of(body)
            })
            .collect();
        assert_eq!(tokens.len(), 1, "round {round}: one new refresh token for all");
        let next = tokens.into_iter().next().expect("token");
        let family = family_of(db, &next).await;
        assert_eq!(family.user_id, alice);
        assert_eq!(family.current.generation, 2, "round {round}: one refresh");
        assert_eq!(family.current.hash, Some(TokenHash::of(next.as_bytes())));
        assert_eq!(
            family.previous.map(|p| p.hash),
            Some(TokenHash::of(rt.as_bytes())),
            "round {round}: one child"
        );
        // Every other round, the new token is used (it works); in the
        // others it is left, and its parent's replay must still end it.
        let newest = if round % 2 == 0 {
            let res = app.refresh("mobile", &next).await;
            assert_eq!(res.status(), 200, "round {round}: the new token works");
            refresh_token_of(&res.json().await.expect("json"))
        } else {
            next
        };
        raced.push((rt, newest));
    }
    // After the window (counted in whole seconds), every original token
    // is a replay: each family ends, its newest token with it.
    tokio::time::sleep(WINDOW + Duration::from_secs(2)).await;
    for (round, (rt, newest)) in raced.iter().enumerate() {
        let err = assert_error(app.refresh("mobile", rt).await, 400, "invalid_grant").await;
        assert_eq!(err["error"], "invalid_grant", "round {round}");
        assert_error(app.refresh("mobile", newest).await, 400, "invalid_grant").await;
    }
}

/// The client sends a refresh and never reads the answer (the connection
/// drops after the server committed). Its retry inside the window gets
/// the token that answer carried, which works; a retry after the window
/// ends the family.
async fn a_lost_answer_is_recovered_inside_the_window_and_is_reuse_after_it(db: &TestDb) {
    let _suite = crate::shared().await;
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| c.refresh_retry_window = Duration::from_secs(3)).await;
    let rt = app.sign_in_refresh_token("mobile", "alice").await;

    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", "mobile"),
        ("refresh_token", &rt),
    ]);
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    // The server commits the rotation; the answer is never read.
    let hash = TokenHash::of(rt.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(10);
    let child = loop {
        let family = family_of(db, &rt).await;
        if family.previous.as_ref().is_some_and(|p| p.hash == hash) {
            break family.current.hash.expect("the child");
        }
        assert!(Instant::now() < deadline, "the refresh was not processed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(conn);

    let retry = app.refresh("mobile", &rt).await;
    assert_eq!(retry.status(), 200);
    assert_no_store(&retry);
    let got = refresh_token_of(&retry.json().await.expect("json"));
    assert_eq!(TokenHash::of(got.as_bytes()), child, "the token of the lost answer");

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_error(app.refresh("mobile", &rt).await, 400, "invalid_grant").await;
    assert_error(app.refresh("mobile", &got).await, 400, "invalid_grant").await;
}

on_both_backends!(
    strict_mode_has_exactly_one_winner_in_every_race,
    with_a_retry_window_every_racer_gets_the_same_token,
    a_lost_answer_is_recovered_inside_the_window_and_is_reuse_after_it,
);
