//! The Authorization Challenge Endpoint (draft-ietf-oauth-first-party-apps)
//! and the authorization_code grant with PKCE, end to end on both
//! backends: the flow with and without a second factor, PKCE, single use
//! and replay, client binding, expiry, first-party only, recovery codes,
//! throttling of the otp step, and DPoP binding of the code.

mod support;

use std::time::Duration;

use portcullis_store::testing::TestDb;
use portcullis_store::{ClientStore as _, NewClient, SecondFactorStore as _, UnixTime, on_both_backends};
use portcullis_token::mfa::{TotpSecret, new_recovery_codes, step_of};
use portcullis_token::pkce::s256;
use serde_json::{Value, json};
use support::dpop::{DpopKey, claims_of};
use support::*;

const CHALLENGE: &str = "/oauth/authorize-challenge";
const VERIFIER: &str = "a-code-verifier-of-the-app-that-is-long-enough-0123456789";

/// A public first-party client allowed the code and refresh grants.
async fn first_party(db: &TestDb, id: &str, first_party: bool) {
    let new = NewClient {
        id: portcullis_domain::ClientId::parse(id).expect("client id"),
        name: id.into(),
        secret_hash: None,
        grant_types: portcullis_domain::GrantTypes::parse("authorization_code refresh_token").expect("grant types"),
        scope: portcullis_domain::Scopes::parse("read write").expect("scope"),
        default_scope: portcullis_domain::Scopes::parse("read").expect("scope"),
        introspect: false,
        web_origins: portcullis_domain::WebOrigins::default(),
        allow_sign_up: false,
        sign_up_scope: portcullis_domain::Scopes::empty(),
        dpop_bound_access_tokens: false,
        dpop_nonce_required: false,
        first_party,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
}

/// Enrols `user_id` in TOTP through the store; the secret and the
/// recovery codes.
async fn enrol(db: &TestDb, user_id: &str) -> (TotpSecret, Vec<String>) {
    let secret = TotpSecret::generate();
    let sealed = secret.seal(None, user_id).expect("seal");
    let now = UnixTime::now();
    db.start_totp(user_id, &sealed, now).await.expect("start");
    let (codes, hashes) = new_recovery_codes();
    assert!(db.confirm_totp(user_id, 0, &hashes, now).await.expect("confirm"));
    (secret, codes)
}

fn totp(secret: &TotpSecret) -> String {
    secret.code_at_step(step_of(UnixTime::now()))
}

async fn post(app: &App, path: &str, pairs: &[(&str, &str)], proof: Option<&str>) -> HttpResponse {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(proof) = proof {
        req = req.header("dpop", proof);
    }
    req.send().await.expect("request")
}

/// The first request of `client` for alice.
async fn start(app: &App, client: &str, proof: Option<&str>) -> HttpResponse {
    let challenge = s256(VERIFIER);
    let pairs = [
        ("client_id", client),
        ("response_type", "code"),
        ("username", "alice"),
        ("password", PASSWORD),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    post(app, CHALLENGE, &pairs, proof).await
}

async fn otp(app: &App, client: &str, session: &str, code: &str) -> HttpResponse {
    let pairs = [("client_id", client), ("auth_session", session), ("otp", code)];
    post(app, CHALLENGE, &pairs, None).await
}

/// A 200 with the code.
async fn code_of(res: HttpResponse) -> String {
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    body["authorization_code"].as_str().expect("code").to_owned()
}

/// A 400 `insufficient_authorization`; its auth_session.
async fn session_of(res: HttpResponse) -> String {
    let body = assert_error(res, 400, "insufficient_authorization").await;
    assert_eq!(body["mfa_required"], "otp");
    let session = body["auth_session"].as_str().expect("auth_session").to_owned();
    assert!(session.len() >= 43, "256 bits");
    session
}

async fn exchange(app: &App, client: &str, code: &str, verifier: &str, proof: Option<&str>) -> HttpResponse {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("code_verifier", verifier),
    ];
    post(app, "/oauth/token", &pairs, proof).await
}

async fn a_user_without_a_second_factor_gets_a_code_and_then_tokens(db: &TestDb) {
    first_party(db, "mobile", true).await;
    user(db, "alice", "read write").await;
    let app = spawn(db).await;

    let meta: Value = app
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", app.base))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(
        meta["authorization_challenge_endpoint"],
        format!("{ISSUER}/oauth/authorize-challenge")
    );
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "password", "refresh_token"])
    );
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));

    let code = code_of(start(&app, "mobile", None).await).await;
    let res = exchange(&app, "mobile", &code, VERIFIER, None).await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    let tokens: Value = res.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "read");
    let claims = claims_of(tokens["access_token"].as_str().expect("at"));
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["client_id"], "mobile");
    let rt = tokens["refresh_token"].as_str().expect("refresh token");
    assert_eq!(app.refresh("mobile", rt).await.status(), 200, "the family refreshes");
}

async fn a_user_with_totp_is_asked_for_it_and_then_gets_a_code(db: &TestDb) {
    first_party(db, "mobile", true).await;
    let alice = user(db, "alice", "read write").await;
    let (secret, _) = enrol(db, &alice).await;
    let app = spawn(db).await;

    let session = session_of(start(&app, "mobile", None).await).await;
    let code = code_of(otp(&app, "mobile", &session, &totp(&secret)).await).await;
    // The auth session became the code: it is spent.
    assert_error(
        otp(&app, "mobile", &session, &totp(&secret)).await,
        400,
        "invalid_session",
    )
    .await;

    let res = exchange(&app, "mobile", &code, VERIFIER, None).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");
    let claims = claims_of(tokens["access_token"].as_str().expect("at"));
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    let family = family_of(db, tokens["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(family.amr.as_deref(), Some("pwd otp mfa"));

    // A wrong password is refused as at the token endpoint.
    let challenge = s256(VERIFIER);
    let wrong = [
        ("client_id", "mobile"),
        ("username", "alice"),
        ("password", "not the password of alice at all"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    assert_error(post(&app, CHALLENGE, &wrong, None).await, 400, "invalid_grant").await;
}

async fn a_wrong_verifier_or_a_second_use_of_a_code_is_refused_and_a_replay_revokes_the_family(db: &TestDb) {
    first_party(db, "mobile", true).await;
    user(db, "alice", "read write").await;
    let app = spawn(db).await;

    let code = code_of(start(&app, "mobile", None).await).await;
    let other = "another-code-verifier-of-the-app-that-is-long-enough-012345";
    assert_error(exchange(&app, "mobile", &code, other, None).await, 400, "invalid_grant").await;
    // A wrong try spends the code.
    assert_error(
        exchange(&app, "mobile", &code, VERIFIER, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        exchange(&app, "mobile", "no-such-code", VERIFIER, None).await,
        400,
        "invalid_grant",
    )
    .await;

    let code = code_of(start(&app, "mobile", None).await).await;
    let res = exchange(&app, "mobile", &code, VERIFIER, None).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");
    let rt = tokens["refresh_token"].as_str().expect("rt");
    assert_error(
        exchange(&app, "mobile", &code, VERIFIER, None).await,
        400,
        "invalid_grant",
    )
    .await;
    // RFC 6749 §4.1.2: the replay revokes what the first use started.
    let family = family_of(db, rt).await;
    assert!(family.revoked_at.is_some(), "the family is revoked");
    assert_error(app.refresh("mobile", rt).await, 400, "invalid_grant").await;
}

async fn a_code_or_auth_session_of_another_client_is_refused(db: &TestDb) {
    first_party(db, "mobile", true).await;
    first_party(db, "tablet", true).await;
    let alice = user(db, "alice", "read write").await;
    let app = spawn(db).await;

    let code = code_of(start(&app, "mobile", None).await).await;
    assert_error(
        exchange(&app, "tablet", &code, VERIFIER, None).await,
        400,
        "invalid_grant",
    )
    .await;

    let (secret, _) = enrol(db, &alice).await;
    let session = session_of(start(&app, "mobile", None).await).await;
    assert_error(
        otp(&app, "tablet", &session, &totp(&secret)).await,
        400,
        "invalid_session",
    )
    .await;
    // Refused before any try was counted: the owner goes on.
    code_of(otp(&app, "mobile", &session, &totp(&secret)).await).await;
}

async fn an_expired_auth_session_or_code_is_refused(db: &TestDb) {
    first_party(db, "mobile", true).await;
    let alice = user(db, "alice", "read write").await;
    let app = spawn_with(db, |c| {
        c.auth_session_ttl = Duration::from_secs(1);
        c.authorization_code_ttl = Duration::from_secs(1);
    })
    .await;
    let code = code_of(start(&app, "mobile", None).await).await;
    let (secret, _) = enrol(db, &alice).await;
    let session = session_of(start(&app, "mobile", None).await).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_error(
        exchange(&app, "mobile", &code, VERIFIER, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        otp(&app, "mobile", &session, &totp(&secret)).await,
        400,
        "invalid_session",
    )
    .await;
}

async fn only_first_party_clients_with_s256_pkce_may_use_the_endpoint(db: &TestDb) {
    first_party(db, "mobile", true).await;
    first_party(db, "thirdparty", false).await;
    user(db, "alice", "read write").await;
    let app = spawn(db).await;
    assert_error(start(&app, "thirdparty", None).await, 400, "unauthorized_client").await;
    assert_error(start(&app, "nobody", None).await, 401, "invalid_client").await;

    let base = [("client_id", "mobile"), ("username", "alice"), ("password", PASSWORD)];
    let plain = [
        &base[..],
        &[("code_challenge", VERIFIER), ("code_challenge_method", "plain")],
    ]
    .concat();
    assert_error(post(&app, CHALLENGE, &plain, None).await, 400, "invalid_request").await;
    assert_error(post(&app, CHALLENGE, &base, None).await, 400, "invalid_request").await;
    let challenge = s256(VERIFIER);
    let no_method = [&base[..], &[("code_challenge", challenge.as_str())]].concat();
    assert_error(post(&app, CHALLENGE, &no_method, None).await, 400, "invalid_request").await;
}

async fn a_recovery_code_works_once(db: &TestDb) {
    first_party(db, "mobile", true).await;
    let alice = user(db, "alice", "read write").await;
    let (_, codes) = enrol(db, &alice).await;
    let app = spawn(db).await;

    let session = session_of(start(&app, "mobile", None).await).await;
    let code = code_of(otp(&app, "mobile", &session, &codes[0]).await).await;
    let res = exchange(&app, "mobile", &code, VERIFIER, None).await;
    let tokens: Value = res.json().await.expect("json");
    assert_eq!(
        claims_of(tokens["access_token"].as_str().expect("at"))["amr"],
        json!(["pwd", "mfa"])
    );

    let session = session_of(start(&app, "mobile", None).await).await;
    let again = session_of(otp(&app, "mobile", &session, &codes[0]).await).await;
    assert_eq!(again, session, "the same auth_session may try again");
    code_of(otp(&app, "mobile", &session, &codes[1]).await).await;
}

async fn an_auth_session_dies_after_five_wrong_codes(db: &TestDb) {
    first_party(db, "mobile", true).await;
    let alice = user(db, "alice", "read write").await;
    let (secret, _) = enrol(db, &alice).await;
    let app = spawn(db).await;
    let session = session_of(start(&app, "mobile", None).await).await;
    for _ in 0..4 {
        session_of(otp(&app, "mobile", &session, "000000").await).await;
    }
    assert_error(otp(&app, "mobile", &session, "000000").await, 400, "invalid_session").await;
    assert_error(
        otp(&app, "mobile", &session, &totp(&secret)).await,
        400,
        "invalid_session",
    )
    .await;
}

async fn guessing_the_otp_is_throttled_like_passwords(db: &TestDb) {
    first_party(db, "mobile", true).await;
    let alice = user(db, "alice", "read write").await;
    let (secret, _) = enrol(db, &alice).await;
    let app = spawn_with(db, |c| {
        c.throttle.per_user_and_address.max = 3;
    })
    .await;
    let session = session_of(start(&app, "mobile", None).await).await;
    for _ in 0..3 {
        session_of(otp(&app, "mobile", &session, "000000").await).await;
    }
    let res = otp(&app, "mobile", &session, &totp(&secret)).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "temporarily_unavailable").await;
    // And the password step of the same account from this address too.
    assert_error(start(&app, "mobile", None).await, 429, "temporarily_unavailable").await;
}

async fn a_dpop_bound_code_needs_a_proof_of_the_same_key(db: &TestDb) {
    first_party(db, "mobile", true).await;
    user(db, "alice", "read write").await;
    let app = spawn(db).await;
    let key = DpopKey::new();
    let challenge_url = format!("{ISSUER}{CHALLENGE}");
    let token_url = format!("{ISSUER}/oauth/token");

    let bound = |_: &App| key.proof("POST", &challenge_url, None, None);
    let code = code_of(start(&app, "mobile", Some(&bound(&app))).await).await;
    assert_error(
        exchange(&app, "mobile", &code, VERIFIER, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;

    let code = code_of(start(&app, "mobile", Some(&bound(&app))).await).await;
    let thief = DpopKey::new().proof("POST", &token_url, None, None);
    assert_error(
        exchange(&app, "mobile", &code, VERIFIER, Some(&thief)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;

    let code = code_of(start(&app, "mobile", Some(&bound(&app))).await).await;
    let proof = key.proof("POST", &token_url, None, None);
    let res = exchange(&app, "mobile", &code, VERIFIER, Some(&proof)).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.expect("json");
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(
        claims_of(tokens["access_token"].as_str().expect("at"))["cnf"],
        json!({"jkt": key.jkt})
    );
}

on_both_backends!(
    a_user_without_a_second_factor_gets_a_code_and_then_tokens,
    a_user_with_totp_is_asked_for_it_and_then_gets_a_code,
    a_wrong_verifier_or_a_second_use_of_a_code_is_refused_and_a_replay_revokes_the_family,
    a_code_or_auth_session_of_another_client_is_refused,
    an_expired_auth_session_or_code_is_refused,
    only_first_party_clients_with_s256_pkce_may_use_the_endpoint,
    a_recovery_code_works_once,
    an_auth_session_dies_after_five_wrong_codes,
    guessing_the_otp_is_throttled_like_passwords,
    a_dpop_bound_code_needs_a_proof_of_the_same_key,
);
