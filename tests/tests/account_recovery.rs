//! Sign-up, password reset by mail and email verification, on both
//! backends, with mail going to an SMTP sink on loopback.

mod support;

use std::time::{Duration, Instant};

use portcullis_domain::{ClientId, Email, GrantTypes, Scopes, Username, WebOrigins};
use portcullis_store::testing::TestDb;
use portcullis_store::{
    AuditStore as _, ClientStore as _, NewClient, NewUser, RevocationStore as _, UnixTime, UserStore as _,
    on_both_backends,
};
use portcullis_token::password::{PasswordPolicy, Passwords};
use serde_json::{Value, json};
use support::smtp::SmtpSink;
use support::*;

const NEW_PASSWORD: &str = "a fresh and rather long passphrase";
const FROM: &str = "Portcullis <auth@example.test>";

/// A public client; `sign_up`: whether it allows sign-up (scope `read`).
async fn app_client(db: &TestDb, id: &str, sign_up: bool) {
    let new = NewClient {
        id: ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: None,
        grant_types: GrantTypes::parse("password refresh_token").expect("grants"),
        scope: Scopes::parse("read write").expect("scope"),
        default_scope: Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: WebOrigins::default(),
        allow_sign_up: sign_up,
        sign_up_scope: Scopes::parse("read").expect("scope"),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party: false,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
}

/// A user with [`PASSWORD`] and, if given, a verified address.
async fn user_with_email(db: &TestDb, name: &str, email: Option<&str>) -> String {
    let hash = Passwords::new(&PasswordPolicy {
        workers: 1,
        ..PasswordPolicy::default()
    })
    .expect("policy")
    .hash(PASSWORD)
    .await
    .expect("hash");
    let new = NewUser {
        username: Username::parse(name).expect("username"),
        password_hash: Some(hash),
        scope: Scopes::parse("read").expect("scope"),
        email: email.map(|e| Email::parse(e).expect("email")),
        email_verified: true,
    };
    db.create_user(&new, UnixTime::now()).await.expect("user").id
}

/// A server that mails through `sink`.
async fn spawn_mailing(db: &TestDb, sink: &SmtpSink, tweak: impl FnOnce(&mut portcullis::Settings)) -> App {
    spawn_settings(&db.url, |s| {
        s.mail = Some(portcullis::mail::MailSettings::new(&sink.url(), FROM).expect("mail settings"));
        tweak(s);
    })
    .await
}

async fn post_json(app: &App, http: &Http, path: &str, body: &Value, token: Option<&str>) -> HttpResponse {
    let mut req = http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

/// Asserts an account API error: status, `error`, `reason`, no-store.
async fn assert_api_error(res: HttpResponse, status: u16, error: &str, reason: Option<&str>) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], error, "{body}");
    if let Some(reason) = reason {
        assert_eq!(body["reason"], reason, "{body}");
        let d = body["error_description"].as_str().expect("description");
        assert!(d.is_ascii() && !d.is_empty(), "{d}");
    }
    body
}

fn sign_up_body(client: &str, username: &str, password: &str) -> Value {
    json!({"client_id": client, "username": username, "password": password})
}

async fn sign_up_creates_an_account_the_app_signs_in_with(db: &TestDb) {
    app_client(db, "mobile", true).await;
    let app = spawn(db).await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/sign-up",
        &sign_up_body("mobile", "Nora", PASSWORD),
        None,
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["username"], "Nora");
    assert_eq!(body["scope"], "read");
    assert_eq!(body["email_verified"], false);
    assert!(body["sub"].as_str().is_some_and(|s| !s.is_empty()));
    let token = app.sign_in("mobile", "nora").await;
    assert_eq!(token["scope"], "read");
    let events = db.audit_events(None, 10).await.expect("audit");
    assert!(events.iter().any(|e| e.action.as_str() == "user.sign_up"
        && e.subject.as_deref() == body["sub"].as_str()
        && e.client_id.as_deref() == Some("mobile")));

    // The same name in another case or width is taken: 409.
    for taken in ["nora", "ＮＯＲＡ"] {
        let res = post_json(
            &app,
            &app.http,
            "/account/v1/sign-up",
            &sign_up_body("mobile", taken, PASSWORD),
            None,
        )
        .await;
        assert_api_error(res, 409, "conflict", Some("username_taken")).await;
    }
}

async fn sign_up_is_off_by_default_and_needs_a_known_client(db: &TestDb) {
    app_client(db, "closed", false).await;
    let app = spawn(db).await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/sign-up",
        &sign_up_body("closed", "nora", PASSWORD),
        None,
    )
    .await;
    assert_api_error(res, 403, "access_denied", Some("sign_up_off")).await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/sign-up",
        &sign_up_body("nobody", "nora", PASSWORD),
        None,
    )
    .await;
    assert_api_error(res, 401, "invalid_client", None).await;
    let users = db.list_users(None, 10).await.expect("users");
    assert!(users.is_empty(), "{users:?}");
}

async fn weak_passwords_are_refused_with_one_error_shape(db: &TestDb) {
    app_client(db, "mobile", true).await;
    let app = spawn(db).await;
    let cases = [
        (
            "short passwd!",
            "password_too_short",
            "The password must be at least 15 characters long.",
        ),
        (
            "ManchesterUnited",
            "password_too_common",
            "This password is too common: choose another.",
        ),
        (
            "1q2w3e4r5t6y7u8i",
            "password_too_common",
            "This password is too common: choose another.",
        ),
    ];
    for (password, reason, description) in cases {
        let res = post_json(
            &app,
            &app.http,
            "/account/v1/sign-up",
            &sign_up_body("mobile", "nora", password),
            None,
        )
        .await;
        let body = assert_api_error(res, 400, "invalid_request", Some(reason)).await;
        assert_eq!(body["error_description"], description, "{password}");
    }
    // A long passphrase with no digit or symbol is fine; 64+ characters too.
    let long = "lowercase words and nothing else ".repeat(3);
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/sign-up",
        &sign_up_body("mobile", "nora", &long),
        None,
    )
    .await;
    assert_eq!(res.status(), 201);
    // The command line says the same.
    let (ok, _, err) = cli(
        db,
        &["user", "create", "omar", "--password-stdin"],
        Some("short passwd!"),
    );
    assert!(!ok);
    assert!(
        err.contains("The password must be at least 15 characters long."),
        "{err}"
    );
    let (ok, _, err) = cli(
        db,
        &["user", "set-password", "nora", "--password-stdin"],
        Some("qazwsxedcrfvtgb"),
    );
    assert!(!ok);
    assert!(err.contains("This password is too common: choose another."), "{err}");
}

async fn a_sign_up_flood_from_one_address_is_throttled(db: &TestDb) {
    app_client(db, "mobile", true).await;
    let app = spawn_with(db, |c| c.throttle.sign_up_per_address.max = 3).await;
    for i in 0..3 {
        let res = post_json(
            &app,
            &app.http,
            "/account/v1/sign-up",
            &sign_up_body("mobile", &format!("bot{i}"), PASSWORD),
            None,
        )
        .await;
        assert_eq!(res.status(), 201);
    }
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/sign-up",
        &sign_up_body("mobile", "bot3", PASSWORD),
        None,
    )
    .await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_api_error(res, 429, "too_many_requests", Some("too_many_attempts")).await;
    assert!(
        db.user_by_username(&Username::parse("bot3").expect("name"))
            .await
            .is_err()
    );
    // Another address is not affected.
    let other = http_client(Some("127.0.0.2".parse().expect("ip")));
    let res = post_json(
        &app,
        &other,
        "/account/v1/sign-up",
        &sign_up_body("mobile", "human", PASSWORD),
        None,
    )
    .await;
    assert_eq!(res.status(), 201);
}

async fn reset_and_verification_need_mail(db: &TestDb) {
    app_client(db, "mobile", true).await;
    user_with_email(db, "alice", Some("alice@example.test")).await;
    let app = spawn(db).await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/password-reset",
        &json!({"client_id": "mobile", "username": "alice"}),
        None,
    )
    .await;
    assert_api_error(res, 501, "mail_not_configured", Some("mail_not_configured")).await;
    let token = app.sign_in("mobile", "alice").await;
    let at = token["access_token"].as_str().expect("at");
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email",
        &json!({"email": "new@example.test"}),
        Some(at),
    )
    .await;
    assert_api_error(res, 501, "mail_not_configured", Some("mail_not_configured")).await;
}

/// The median of `n` reset requests for `who`.
async fn median_reset(app: &App, who: &str, n: usize) -> (Duration, Vec<(u16, String)>) {
    let mut times = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let res = post_json(
            app,
            &app.http,
            "/account/v1/password-reset",
            &json!({"client_id": "mobile", "username": who}),
            None,
        )
        .await;
        times.push(started.elapsed());
        let status = res.status().as_u16();
        answers.push((status, res.text().await.expect("text")));
    }
    times.sort();
    (times[n / 2], answers)
}

async fn reset_answers_the_same_for_existing_and_unknown_accounts(db: &TestDb) {
    app_client(db, "mobile", true).await;
    user_with_email(db, "alice", Some("alice@example.test")).await;
    let sink = SmtpSink::start().await;
    let app = spawn_mailing(db, &sink, |s| {
        s.token.throttle.reset_per_account.max = 100;
        s.token.throttle.reset_per_address.max = 100;
    })
    .await;
    let (known, known_answers) = median_reset(&app, "alice", 15).await;
    let (unknown, unknown_answers) = median_reset(&app, "nobody-here", 15).await;
    let expected = (
        202,
        r#"{"status":"accepted","message":"If this account exists and has a verified email address, a code has been sent to it."}"#.to_owned(),
    );
    assert!(
        known_answers.iter().chain(&unknown_answers).all(|a| *a == expected),
        "{known_answers:?}"
    );
    // The lookup and the mail happen after the answer: no hashing noise
    // to hide in, so the medians are close (loosely: shared machines).
    let gap = known.abs_diff(unknown);
    assert!(gap < Duration::from_millis(25), "known {known:?}, unknown {unknown:?}");
    // Alice got her mails (one per request, each replacing the last code).
    sink.wait_for(15).await;
}

/// Asks for a reset of `username` and returns the code from the mail.
async fn reset_code(app: &App, sink: &SmtpSink, username: &str, mails_before: usize) -> String {
    let res = post_json(
        app,
        &app.http,
        "/account/v1/password-reset",
        &json!({"client_id": "mobile", "username": username}),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);
    let mails = sink.wait_for(mails_before + 1).await;
    mails[mails_before].code().expect("a code in the mail")
}

async fn confirm(app: &App, username: &str, code: &str, password: &str) -> HttpResponse {
    let body = json!({"client_id": "mobile", "username": username, "code": code, "password": password});
    post_json(app, &app.http, "/account/v1/password-reset/confirm", &body, None).await
}

async fn a_reset_code_sets_the_password_once_and_ends_every_sign_in(db: &TestDb) {
    app_client(db, "mobile", true).await;
    let alice = user_with_email(db, "alice", Some("Alice@Example.test")).await;
    let sink = SmtpSink::start().await;
    let app = spawn_mailing(db, &sink, |_| {}).await;
    let phone = app.sign_in_refresh_token("mobile", "alice").await;
    let laptop = app.sign_in_refresh_token("mobile", "alice").await;

    let code = reset_code(&app, &sink, "ALICE", 0).await;
    let mail = &sink.received()[0];
    assert_eq!(mail.rcpt_to, vec!["Alice@Example.test".to_owned()]);
    assert_eq!(mail.mail_from, "auth@example.test");
    assert_eq!(mail.header("From").as_deref(), Some("Portcullis <auth@example.test>"));
    assert_eq!(mail.header("To").as_deref(), Some("Alice@Example.test"));
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some(&*format!("Your password reset code for {ISSUER}"))
    );
    assert!(mail.header("Content-Type").is_some_and(|c| c.starts_with("text/plain")));
    assert!(
        mail.body().contains(&format!("\"alice\" on {ISSUER}")),
        "{}",
        mail.body()
    );
    assert!(mail.body().contains("15 minutes"));

    // The policy applies before the code is spent.
    let res = confirm(&app, "alice", &code, "too short").await;
    assert_api_error(res, 400, "invalid_request", Some("password_too_short")).await;

    let res = confirm(&app, "alice", &code.to_lowercase(), NEW_PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, json!({"password_changed": true, "signed_out": 2}));

    // Every device is signed out, with a feed entry for the user.
    for token in [&phone, &laptop] {
        assert_error(app.refresh("mobile", token).await, 400, "invalid_grant").await;
    }
    let feed = db.revocations_since(0, 100).await.expect("feed");
    assert!(feed.iter().any(|e| e.subject == alice), "{feed:?}");
    // The new password works at once, in the very second of the reset;
    // the code is spent.
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "mobile"),
                ("username", "alice"),
                ("password", NEW_PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = confirm(&app, "alice", &code, "yet another long passphrase").await;
    assert_api_error(res, 400, "invalid_grant", Some("invalid_code")).await;
    let actions: Vec<String> = db
        .audit_events(None, 50)
        .await
        .expect("audit")
        .iter()
        .map(|e| e.action.as_str().to_owned())
        .collect();
    assert!(actions.contains(&"user.reset_request".to_owned()), "{actions:?}");
    assert!(actions.contains(&"user.reset_password".to_owned()), "{actions:?}");
}

async fn a_reset_code_cannot_be_guessed_in_5_tries(db: &TestDb) {
    app_client(db, "mobile", true).await;
    user_with_email(db, "alice", Some("alice@example.test")).await;
    let sink = SmtpSink::start().await;
    let app = spawn_mailing(db, &sink, |_| {}).await;
    let code = reset_code(&app, &sink, "alice", 0).await;
    let wrong = if code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    let unknown = confirm(&app, "nobody-here", wrong, NEW_PASSWORD).await;
    let unknown = assert_api_error(unknown, 400, "invalid_grant", Some("invalid_code")).await;
    for _ in 0..5 {
        let res = confirm(&app, "alice", wrong, NEW_PASSWORD).await;
        // A wrong code and an unknown account answer alike.
        assert_eq!(
            assert_api_error(res, 400, "invalid_grant", Some("invalid_code")).await,
            unknown
        );
    }
    // After 5 wrong tries the right code is dead too.
    let res = confirm(&app, "alice", &code, NEW_PASSWORD).await;
    assert_api_error(res, 400, "invalid_grant", Some("invalid_code")).await;
    app.sign_in("mobile", "alice").await;
    // A new code works (and replaced nothing that was live).
    let code = reset_code(&app, &sink, "alice", 1).await;
    assert_eq!(confirm(&app, "alice", &code, NEW_PASSWORD).await.status(), 200);
}

async fn reset_requests_are_throttled_per_account(db: &TestDb) {
    app_client(db, "mobile", true).await;
    user_with_email(db, "alice", Some("alice@example.test")).await;
    let sink = SmtpSink::start().await;
    let app = spawn_mailing(db, &sink, |s| s.token.throttle.reset_per_account.max = 2).await;
    for who in ["alice", "nobody-here"] {
        for _ in 0..2 {
            let res = post_json(
                &app,
                &app.http,
                "/account/v1/password-reset",
                &json!({"client_id": "mobile", "username": who}),
                None,
            )
            .await;
            assert_eq!(res.status(), 202);
        }
        let res = post_json(
            &app,
            &app.http,
            "/account/v1/password-reset",
            &json!({"client_id": "mobile", "username": who}),
            None,
        )
        .await;
        assert!(res.headers().contains_key("retry-after"));
        assert_api_error(res, 429, "too_many_requests", Some("too_many_attempts")).await;
    }
    assert_eq!(sink.wait_for(2).await.len(), 2);
}

async fn an_email_is_set_verified_with_the_mailed_code_and_then_resets(db: &TestDb) {
    app_client(db, "mobile", true).await;
    user_with_email(db, "alice", None).await;
    let sink = SmtpSink::start().await;
    let app = spawn_mailing(db, &sink, |_| {}).await;
    let token = app.sign_in("mobile", "alice").await;
    let at = token["access_token"].as_str().expect("at");

    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email",
        &json!({"email": "not an address"}),
        Some(at),
    )
    .await;
    assert_api_error(res, 400, "invalid_request", Some("invalid_email")).await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email",
        &json!({"email": "alice@example.test"}),
        Some(at),
    )
    .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, json!({"email": "alice@example.test", "email_verified": false}));
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.rcpt_to, vec!["alice@example.test".to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some(&*format!("Your email verification code for {ISSUER}"))
    );
    let code = mail.code().expect("code");

    // An unverified address gets no reset mail.
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/password-reset",
        &json!({"client_id": "mobile", "email": "alice@example.test"}),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);

    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email/verify",
        &json!({"code": "2222-2222"}),
        Some(at),
    )
    .await;
    assert_api_error(res, 400, "invalid_grant", Some("invalid_code")).await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email/verify",
        &json!({"code": code}),
        Some(at),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, json!({"email": "alice@example.test", "email_verified": true}));
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email/verify",
        &json!({"code": code}),
        Some(at),
    )
    .await;
    assert_api_error(res, 400, "invalid_grant", Some("invalid_code")).await;

    // Now a reset by address mails a code (the second mail: the reset
    // asked for while unverified sent nothing).
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/password-reset",
        &json!({"client_id": "mobile", "email": "ALICE@example.test"}),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1]
            .header("Subject")
            .is_some_and(|s| s.starts_with("Your password reset code"))
    );
    // Another account cannot take the address.
    user_with_email(db, "bob", None).await;
    let bob = app.sign_in("mobile", "bob").await;
    let res = post_json(
        &app,
        &app.http,
        "/account/v1/email",
        &json!({"email": "Alice@example.test"}),
        bob["access_token"].as_str(),
    )
    .await;
    assert_api_error(res, 409, "conflict", Some("email_taken")).await;
}

on_both_backends!(
    sign_up_creates_an_account_the_app_signs_in_with,
    sign_up_is_off_by_default_and_needs_a_known_client,
    weak_passwords_are_refused_with_one_error_shape,
    a_sign_up_flood_from_one_address_is_throttled,
    reset_and_verification_need_mail,
    reset_answers_the_same_for_existing_and_unknown_accounts,
    a_reset_code_sets_the_password_once_and_ends_every_sign_in,
    a_reset_code_cannot_be_guessed_in_5_tries,
    reset_requests_are_throttled_per_account,
    an_email_is_set_verified_with_the_mailed_code_and_then_resets,
);
