//! A second factor at sign-in, on both backends: the password grant asks
//! for `otp`, accepts each authenticator code once (computed here by an
//! independent TOTP implementation, `totp-rs`) and each recovery code
//! once, counts wrong codes like wrong passwords, and records how the user
//! signed in (`amr`, `acr`) in every access token of the sign-in; the admin
//! API wants a sign-in that used the admin's second factor; a client can
//! require one.

mod support;

use portcullis_store::testing::TestDb;
use portcullis_store::{ClientChanges, ClientStore as _, SecondFactorStore as _, UnixTime, on_both_backends};
use serde_json::{Value, json};
use support::dpop::claims_of;
use support::*;
use totp_rs::{Algorithm, TOTP};

/// The authenticator secret the tests enrol (20 bytes, as the server makes).
const SECRET: &[u8; 20] = b"twenty-byte-secret!!";

/// The app on the user's phone: RFC 6238 with the parameters the server
/// announces (SHA-1, 6 digits, 30 s).
fn authenticator() -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, SECRET.to_vec(), None, String::new())
}

fn code_at(secs: u64) -> String {
    authenticator().generate(secs)
}

fn now_secs() -> u64 {
    u64::try_from(UnixTime::now().0).expect("time")
}

/// Enrols `user_id`'s authenticator straight in the store (the account
/// API's enrolment is tested with it) and gives them `recovery` codes.
async fn enrol(db: &TestDb, user_id: &str) -> Vec<String> {
    let now = UnixTime::now();
    db.start_totp(user_id, SECRET, now).await.expect("start");
    let (codes, hashes) = portcullis_token::mfa::new_recovery_codes();
    // Confirmed with a code of an old step: every current code is unused.
    assert!(db.confirm_totp(user_id, 1, &hashes, now).await.expect("confirm"));
    codes
}

fn sign_in_form<'a>(client: &'a str, username: &'a str, otp: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("grant_type", "password"),
        ("client_id", client),
        ("username", username),
        ("password", PASSWORD),
    ];
    if let Some(otp) = otp {
        pairs.push(("otp", otp));
    }
    pairs
}

async fn mfa_refusal(res: HttpResponse) -> Value {
    let body = assert_error(res, 400, "invalid_grant").await;
    assert_eq!(body["mfa_required"], json!(true), "{body}");
    body
}

async fn a_user_with_an_authenticator_signs_in_with_each_code_once(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let recovery = enrol(db, &alice).await;
    let app = spawn(db).await;

    // The password alone: asked for the code.
    let body = mfa_refusal(app.token(&sign_in_form("mobile", "alice", None), None).await).await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("second factor")),
        "{body}"
    );
    // A wrong code.
    let now = now_secs();
    let wrong = if code_at(now) == "000000" { "111111" } else { "000000" };
    mfa_refusal(app.token(&sign_in_form("mobile", "alice", Some(wrong)), None).await).await;

    // The right one, from the phone's clock.
    let code = code_at(now);
    let res = app.token(&sign_in_form("mobile", "alice", Some(&code)), None).await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    let tokens: Value = res.json().await.expect("json");
    let claims = claims_of(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], json!("2"));

    // The same code again: refused (each code works once), as is the
    // code of the step before it (older than one already used).
    mfa_refusal(app.token(&sign_in_form("mobile", "alice", Some(&code)), None).await).await;
    let earlier = code_at(now - 30);
    if earlier != code {
        mfa_refusal(app.token(&sign_in_form("mobile", "alice", Some(&earlier)), None).await).await;
    }

    // A refresh keeps how the sign-in started.
    let res = app
        .refresh("mobile", tokens["refresh_token"].as_str().expect("refresh token"))
        .await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.expect("json");
    let claims = claims_of(refreshed["access_token"].as_str().expect("access token"));
    assert_eq!(
        (claims["amr"].clone(), claims["acr"].clone()),
        (json!(["pwd", "otp", "mfa"]), json!("2"))
    );

    // A recovery code works once, typed loosely.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    let res = app.token(&sign_in_form("mobile", "alice", Some(&typed)), None).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");
    let claims = claims_of(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(
        (claims["amr"].clone(), claims["acr"].clone()),
        (json!(["pwd", "mfa"]), json!("2"))
    );
    mfa_refusal(
        app.token(&sign_in_form("mobile", "alice", Some(&recovery[0])), None)
            .await,
    )
    .await;
    let left = db.second_factor(&alice).await.expect("factor").recovery_codes_left;
    assert_eq!(left, 9);

    // The wrong password with the right code is still the wrong password
    // (no word about the second factor).
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "mobile"),
                ("username", "alice"),
                ("password", "not the password of alice at all"),
                ("otp", &recovery[1]),
            ],
            None,
        )
        .await;
    let body = assert_error(res, 400, "invalid_grant").await;
    assert!(body.get("mfa_required").is_none(), "{body}");
}

async fn wrong_codes_are_failed_sign_ins_in_the_throttle(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    enrol(db, &alice).await;
    let app = spawn_with(db, |t| t.throttle.per_user_and_address.max = 3).await;
    let wrong = if code_at(now_secs()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    // Asking for the code is no failure: the password was right.
    for _ in 0..5 {
        mfa_refusal(app.token(&sign_in_form("mobile", "alice", None), None).await).await;
    }
    for _ in 0..3 {
        mfa_refusal(app.token(&sign_in_form("mobile", "alice", Some(wrong)), None).await).await;
    }
    let res = app.token(&sign_in_form("mobile", "alice", Some(wrong)), None).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "temporarily_unavailable").await;
    // Throttled: even the right code waits for the window.
    let res = app
        .token(&sign_in_form("mobile", "alice", Some(&code_at(now_secs()))), None)
        .await;
    assert_error(res, 429, "temporarily_unavailable").await;
}

async fn an_admin_with_a_second_factor_acts_only_from_a_sign_in_that_used_it(db: &TestDb) {
    public(db, "console", "portcullis:admin").await;
    let root = user(db, "root", "portcullis:admin").await;
    let app = spawn(db).await;
    let before = app.sign_in("console", "root").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let users = |token: String| {
        let req = app
            .http
            .get(format!("{}/admin/v1/users", app.base))
            .header("authorization", format!("Bearer {token}"));
        async move { req.send().await.expect("request") }
    };
    assert_eq!(users(before.clone()).await.status(), 200);

    enrol(db, &root).await;
    // The sign-in from before the enrolment: the RFC 9470 step-up answer.
    let res = users(before).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="portcullis", error="insufficient_user_authentication", acr_values="2""#
    );
    let code = code_at(now_secs());
    let res = app.token(&sign_in_form("console", "root", Some(&code)), None).await;
    assert_eq!(res.status(), 200);
    let after: Value = res.json().await.expect("json");
    let res = users(after["access_token"].as_str().expect("token").to_owned()).await;
    assert_eq!(res.status(), 200);
}

async fn a_client_can_require_a_second_factor(db: &TestDb) {
    public(db, "bank", "read").await;
    let changes = ClientChanges {
        mfa_required: Some(true),
        ..ClientChanges::default()
    };
    db.update_client("bank", &changes, UnixTime::now())
        .await
        .expect("update");
    user(db, "bob", "read").await;
    let alice = user(db, "alice", "read").await;
    enrol(db, &alice).await;
    let app = spawn(db).await;

    let res = app.token(&sign_in_form("bank", "bob", None), None).await;
    let body = assert_error(res, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("requires a second factor")),
        "{body}"
    );
    let res = app
        .token(&sign_in_form("bank", "alice", Some(&code_at(now_secs()))), None)
        .await;
    assert_eq!(res.status(), 200);
}

on_both_backends!(
    a_user_with_an_authenticator_signs_in_with_each_code_once,
    wrong_codes_are_failed_sign_ins_in_the_throttle,
    an_admin_with_a_second_factor_acts_only_from_a_sign_in_that_used_it,
    a_client_can_require_a_second_factor,
);
