//! The second factor end to end, on both backends: a user enrols an
//! authenticator through the account API (codes computed by an independent
//! TOTP implementation from the URI the server gave), the password grant
//! then asks for a code, codes and recovery codes work once, wrong codes
//! count in the sign-in throttle, removal needs the password and a code,
//! and an admin's reset ends every sign-in.

mod support;

use portcullis_store::testing::TestDb;
use portcullis_store::{ClientStore as _, NewClient, SecondFactorStore as _, UnixTime, on_both_backends};
use serde_json::{Value, json};
use support::lifecycle::*;
use support::*;
use totp_rs::TOTP;

/// Seconds since the epoch.
fn now() -> u64 {
    u64::try_from(UnixTime::now().0).expect("after 1970")
}

/// The payload of a JWT, unchecked.
fn claims(access_token: &str) -> Value {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

fn amr(access_token: &str) -> Vec<String> {
    claims(access_token)["amr"]
        .as_array()
        .expect("amr")
        .iter()
        .map(|v| v.as_str().expect("text").to_owned())
        .collect()
}

fn text(v: &Value, name: &str) -> String {
    v[name].as_str().expect(name).to_owned()
}

/// Signs `username` in through `client_id` with the test password and
/// `otp` if given.
async fn sign_in_otp(app: &App, client_id: &str, username: &str, otp: Option<&str>) -> HttpResponse {
    let mut pairs = vec![
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", username),
        ("password", PASSWORD),
    ];
    if let Some(otp) = otp {
        pairs.push(("otp", otp));
    }
    app.token(&pairs, None).await
}

/// Asserts the password grant's answer asking for a (right) second factor.
async fn assert_mfa_required(res: HttpResponse) {
    let body = assert_error(res, 400, "invalid_grant").await;
    assert_eq!(body["mfa_required"], true, "{body}");
}

/// Enrols an authenticator for the token's user: the TOTP built from the
/// URI the server returned, and the recovery codes.
async fn enrol(app: &App, at: &str) -> (TOTP, Vec<String>) {
    let started = json(call(app, "POST", "/account/v1/mfa/totp", at, None).await, 200).await;
    let totp = TOTP::from_url(text(&started, "otpauth_uri")).expect("an otpauth URI authenticator apps take");
    let code = totp.generate(now());
    let done = json(
        call(
            app,
            "POST",
            "/account/v1/mfa/totp/confirm",
            at,
            Some(json!({"code": code})),
        )
        .await,
        200,
    )
    .await;
    let codes = done["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    (totp, codes)
}

/// A code the server has not seen yet: the next step's (one step of drift
/// is accepted, and only steps after the last one used).
fn next_code(totp: &TOTP) -> String {
    totp.generate(now() + 30)
}

async fn access_token(res: HttpResponse) -> (String, String) {
    assert_eq!(res.status(), 200, "sign-in");
    let body: Value = res.json().await.expect("json");
    (text(&body, "access_token"), text(&body, "refresh_token"))
}

async fn enrolment_makes_sign_in_ask_for_a_code_that_works_once(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    assert_eq!(amr(&at), ["pwd"]);
    assert_eq!(claims(&at)["acr"], "1");

    let status = json(call(&app, "GET", "/account/v1/mfa", &at, None).await, 200).await;
    assert_eq!(status, json!({"totp": "none", "recovery_codes_left": 0}));

    // Start: the secret, its URI and an SVG QR code.
    let started = json(call(&app, "POST", "/account/v1/mfa/totp", &at, None).await, 200).await;
    let uri = text(&started, "otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/127%2E0%2E0%2E1:alice?"), "{uri}");
    let totp = TOTP::from_url(&uri).expect("otpauth URI");
    assert_eq!(totp.get_secret_base32(), text(&started, "secret"));
    assert_eq!((totp.digits, totp.step), (6, 30));
    let svg = text(&started, "qr_svg");
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    let status = json(call(&app, "GET", "/account/v1/mfa", &at, None).await, 200).await;
    assert_eq!(status["totp"], "pending");
    // A pending authenticator is not asked for.
    access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;

    // Confirm: a wrong code is refused, a right one gives 10 codes.
    let body = api_error(
        call(
            &app,
            "POST",
            "/account/v1/mfa/totp/confirm",
            &at,
            Some(json!({"code": totp.generate(now() - 3600)})),
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["reason"], "invalid_code");
    api_error(
        call(
            &app,
            "POST",
            "/account/v1/mfa/totp/confirm",
            &at,
            Some(json!({"code": 123456})),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    let res = call(
        &app,
        "POST",
        "/account/v1/mfa/totp/confirm",
        &at,
        Some(json!({"code": totp.generate(now())})),
    )
    .await;
    let done = json(res, 200).await;
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(
        codes.iter().all(|c| c.len() == 19 && c.matches('-').count() == 3),
        "{codes:?}"
    );
    let status = json(call(&app, "GET", "/account/v1/mfa", &at, None).await, 200).await;
    assert_eq!(status, json!({"totp": "enrolled", "recovery_codes_left": 10}));
    let body = api_error(
        call(&app, "POST", "/account/v1/mfa/totp", &at, None).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(body["reason"], "mfa_enrolled");

    // The password alone is no longer enough.
    assert_mfa_required(sign_in_otp(&app, "mobile", "alice", None).await).await;
    // A code: tokens that say so.
    let code = next_code(&totp);
    let (at2, rt2) = access_token(sign_in_otp(&app, "mobile", "alice", Some(&code)).await).await;
    assert!(amr(&at2).contains(&"otp".to_owned()), "{:?}", amr(&at2));
    assert_eq!(claims(&at2)["acr"], "2");
    // The same code again: a replay.
    assert_mfa_required(sign_in_otp(&app, "mobile", "alice", Some(&code)).await).await;
    // A recovery code works once, typed loosely.
    let typed = codes[0].to_uppercase();
    let (at3, _) = access_token(sign_in_otp(&app, "mobile", "alice", Some(&typed)).await).await;
    assert!(amr(&at3).contains(&"mfa".to_owned()) && !amr(&at3).contains(&"otp".to_owned()));
    assert_eq!(claims(&at3)["acr"], "2");
    assert_mfa_required(sign_in_otp(&app, "mobile", "alice", Some(&codes[0])).await).await;
    let status = json(call(&app, "GET", "/account/v1/mfa", &at, None).await, 200).await;
    assert_eq!(status["recovery_codes_left"], 9);

    // A refresh keeps how the user signed in.
    let res = app.refresh("mobile", &rt2).await;
    let (at4, _) = access_token(res).await;
    assert_eq!(amr(&at4), amr(&at2));
    assert_eq!(claims(&at4)["acr"], "2");

    // New recovery codes need a code; the old ones stop working.
    api_error(
        call(
            &app,
            "POST",
            "/account/v1/mfa/recovery-codes",
            &at,
            Some(json!({"code": "000000"})),
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    let fresh = json(
        call(
            &app,
            "POST",
            "/account/v1/mfa/recovery-codes",
            &at,
            Some(json!({"code": codes[1]})),
        )
        .await,
        200,
    )
    .await;
    let fresh: Vec<String> = fresh["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    assert_mfa_required(sign_in_otp(&app, "mobile", "alice", Some(&codes[2])).await).await;
    access_token(sign_in_otp(&app, "mobile", "alice", Some(&fresh[0])).await).await;

    let actions: Vec<String> = audit(db).await.into_iter().map(|(a, _, _)| a).collect();
    for action in [
        "user.mfa_start",
        "user.mfa_enrol",
        "user.mfa_failure",
        "user.recovery_codes",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

async fn wrong_codes_count_like_wrong_passwords(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    user(db, "bob", "read").await;
    let app = spawn_with(db, |c| c.throttle.per_user_and_address.max = 3).await;
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    let (totp, _) = enrol(&app, &at).await;
    let wrong = totp.generate(now() - 3600);
    for _ in 0..3 {
        assert_mfa_required(sign_in_otp(&app, "mobile", "alice", Some(&wrong)).await).await;
    }
    // Over the limit: even the right code waits.
    let res = sign_in_otp(&app, "mobile", "alice", Some(&next_code(&totp))).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "temporarily_unavailable").await;

    // Wrong codes at enrolment count in the same counters.
    let (bob_at, _) = access_token(sign_in_otp(&app, "mobile", "bob", None).await).await;
    let started = json(call(&app, "POST", "/account/v1/mfa/totp", &bob_at, None).await, 200).await;
    let bob_totp = TOTP::from_url(text(&started, "otpauth_uri")).expect("uri");
    let wrong = json!({"code": bob_totp.generate(now() - 3600)});
    for _ in 0..3 {
        api_error(
            call(
                &app,
                "POST",
                "/account/v1/mfa/totp/confirm",
                &bob_at,
                Some(wrong.clone()),
            )
            .await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let right = json!({"code": bob_totp.generate(now())});
    let res = call(&app, "POST", "/account/v1/mfa/totp/confirm", &bob_at, Some(right)).await;
    assert!(res.headers().contains_key("retry-after"));
    api_error(res, 429, "too_many_requests").await;
    let status = json(call(&app, "GET", "/account/v1/mfa", &bob_at, None).await, 200).await;
    assert_eq!(status["totp"], "pending");
}

async fn removal_needs_the_password_and_a_code(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    let body = api_error(
        call(
            &app,
            "DELETE",
            "/account/v1/mfa/totp",
            &at,
            Some(json!({"password": PASSWORD, "code": "123456"})),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(body["reason"], "mfa_not_enrolled");
    let (_, codes) = enrol(&app, &at).await;

    // With a second factor, a shorter password is allowed (NIST 800-63B-4).
    let short = "vq7Kd2mx9pZw";
    json(
        call(
            &app,
            "POST",
            "/account/v1/password",
            &at,
            Some(json!({"current_password": PASSWORD, "new_password": short})),
        )
        .await,
        200,
    )
    .await;
    let wrong_password = json!({"password": "not-the-password-at-all-really", "code": codes[0]});
    api_error(
        call(&app, "DELETE", "/account/v1/mfa/totp", &at, Some(wrong_password)).await,
        400,
        "invalid_grant",
    )
    .await;
    let wrong_code = json!({"password": short, "code": "000000"});
    // The short password would be alone: refused before the code is tried.
    let body = api_error(
        call(&app, "DELETE", "/account/v1/mfa/totp", &at, Some(wrong_code)).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(body["reason"], "password_too_short");
    json(
        call(
            &app,
            "POST",
            "/account/v1/password",
            &at,
            Some(json!({"current_password": short, "new_password": NEW_PASSWORD})),
        )
        .await,
        200,
    )
    .await;
    let body = api_error(
        call(
            &app,
            "DELETE",
            "/account/v1/mfa/totp",
            &at,
            Some(json!({"password": NEW_PASSWORD, "code": "000000"})),
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["reason"], "invalid_code");
    let status = json(call(&app, "GET", "/account/v1/mfa", &at, None).await, 200).await;
    assert_eq!(status["totp"], "enrolled");

    let removed = json(
        call(
            &app,
            "DELETE",
            "/account/v1/mfa/totp",
            &at,
            Some(json!({"password": NEW_PASSWORD, "code": codes[0]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(removed, json!({"totp": "none", "recovery_codes_left": 0}));
    let status = json(call(&app, "GET", "/account/v1/mfa", &at, None).await, 200).await;
    assert_eq!(status, json!({"totp": "none", "recovery_codes_left": 0}));
    let res = sign_in_with(&app, "mobile", "alice", NEW_PASSWORD).await;
    let (at2, _) = access_token(res).await;
    assert_eq!(amr(&at2), ["pwd"]);
    assert!(audit(db).await.iter().any(|(a, _, _)| a == "user.mfa_remove"));
}

async fn an_admin_reset_ends_every_sign_in(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    let (totp, _) = enrol(&app, &at).await;
    let (_, rt) = access_token(sign_in_otp(&app, "mobile", "alice", Some(&next_code(&totp))).await).await;

    let shown = json(call(&app, "GET", "/admin/v1/users/alice", &admin, None).await, 200).await;
    assert_eq!(shown["mfa"], json!({"totp": "enrolled", "recovery_codes_left": 10}));
    let (ok, out, err) = cli(db, &["user", "show", "alice"], None);
    assert!(ok, "{err}");
    assert!(out.contains("second factor: yes"), "{out}");

    api_error(
        call(&app, "DELETE", "/admin/v1/users/nobody/mfa", &admin, None).await,
        404,
        "not_found",
    )
    .await;
    let done = json(
        call(&app, "DELETE", "/admin/v1/users/alice/mfa", &admin, None).await,
        200,
    )
    .await;
    assert_eq!(done["username"], "alice");
    assert_eq!(done["removed"], true);
    assert!(done["sign_ins_ended"].as_u64().expect("count") >= 2, "{done}");
    // Every sign-in ended: the refresh token is refused, the access token
    // no longer reaches the account API.
    assert_error(app.refresh("mobile", &rt).await, 400, "invalid_grant").await;
    let res = call(&app, "GET", "/account/v1/mfa", &at, None).await;
    assert_eq!(res.status(), 401);
    // The password alone signs in again (a second later: the feed's
    // `user` entry refuses access tokens issued up to its second).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (at2, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    assert_eq!(amr(&at2), ["pwd"]);
    let shown = json(call(&app, "GET", "/admin/v1/users/alice", &admin, None).await, 200).await;
    assert_eq!(shown["mfa"], json!({"totp": "none", "recovery_codes_left": 0}));
    let events = audit(db).await;
    assert!(
        events
            .iter()
            .any(|(a, _, s)| a == "user.mfa_reset" && s.as_deref() == Some(alice.as_str())),
        "{events:?}"
    );

    // The command line does the same.
    let (totp, _) = enrol(&app, &at2).await;
    let (_, rt3) = access_token(sign_in_otp(&app, "mobile", "alice", Some(&next_code(&totp))).await).await;
    let (ok, out, err) = cli(db, &["user", "mfa-reset", "alice", "--json"], None);
    assert!(ok, "{err}");
    let out: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(out["removed"], true);
    assert_error(app.refresh("mobile", &rt3).await, 400, "invalid_grant").await;
    let (ok, out, _) = cli(db, &["user", "show", "alice"], None);
    assert!(ok && out.contains("second factor: no"), "{out}");
    let (ok, _, err) = cli(db, &["user", "mfa-reset", "nobody"], None);
    assert!(!ok && err.contains("nobody"), "{err}");
}

async fn a_client_that_requires_a_second_factor_refuses_users_without_one(db: &TestDb) {
    public(db, "mobile", "read").await;
    let new = NewClient {
        id: portcullis_domain::ClientId::parse("bank").expect("client id"),
        name: "bank".into(),
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
        first_party: true,
        mfa_required: true,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let body = assert_error(sign_in_otp(&app, "bank", "alice", None).await, 400, "invalid_grant").await;
    assert_ne!(body["mfa_required"], true, "{body}");
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    let (totp, _) = enrol(&app, &at).await;
    assert_mfa_required(sign_in_otp(&app, "bank", "alice", None).await).await;
    let (bank_at, _) = access_token(sign_in_otp(&app, "bank", "alice", Some(&next_code(&totp))).await).await;
    assert_eq!(claims(&bank_at)["acr"], "2");
}

async fn secrets_are_stored_sealed_under_the_kek(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let kek = portcullis_token::keys::Kek::from_bytes(&[9u8; 32]).expect("kek");
    let app = spawn_with(db, |c| c.key_encryption_key = Some(kek)).await;
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
    let (totp, _) = enrol(&app, &at).await;
    let stored = db.second_factor(&alice).await.expect("factor").totp.expect("totp");
    assert!(portcullis_token::keys::kek::is_sealed(&stored.secret));
    assert!(
        !stored
            .secret
            .windows(totp.secret.len())
            .any(|w| w == totp.secret.as_slice())
    );
    access_token(sign_in_otp(&app, "mobile", "alice", Some(&next_code(&totp))).await).await;
}

/// A new random KEK in base64, written to `dir/name`.
fn kek_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let secret = portcullis_token::secret::OpaqueSecret::generate();
    std::fs::write(&path, format!("{}\n", secret.expose())).expect("write kek");
    path
}

async fn a_kek_rewrap_moves_authenticator_secrets_too(db: &TestDb) {
    use portcullis_token::keys::Kek;
    use portcullis_token::mfa::TotpSecret;
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (kek_file(dir.path(), "kek1"), kek_file(dir.path(), "kek2"));
    let (kek1, kek2) = (
        Kek::from_file(&first).expect("kek"),
        Kek::from_file(&second).expect("kek"),
    );
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let totp = {
        let app = spawn_with(db, |c| c.key_encryption_key = Some(kek1)).await;
        let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", None).await).await;
        enrol(&app, &at).await.0
    };
    let out = std::process::Command::new(BIN)
        .args([
            "keys",
            "rewrap",
            "--new-key-file",
            second.to_str().expect("path"),
            "--json",
        ])
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_KEY_ENCRYPTION_KEY_FILE", &first)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["totp_secrets"], 1, "{doc}");
    let stored = db
        .second_factor(&alice)
        .await
        .expect("factor")
        .totp
        .expect("totp")
        .secret;
    let kek1 = Kek::from_file(&first).expect("kek");
    assert!(TotpSecret::open(Some(&kek1), &alice, &stored).is_err());
    assert!(TotpSecret::open(Some(&Kek::from_file(&second).expect("kek")), &alice, &stored).is_ok());

    // A server with the new KEK checks codes as before.
    let app = spawn_with(db, |c| c.key_encryption_key = Some(kek2)).await;
    let (at, _) = access_token(sign_in_otp(&app, "mobile", "alice", Some(&next_code(&totp))).await).await;
    assert_eq!(claims(&at)["acr"], "2");
}

on_both_backends!(
    a_kek_rewrap_moves_authenticator_secrets_too,
    enrolment_makes_sign_in_ask_for_a_code_that_works_once,
    wrong_codes_count_like_wrong_passwords,
    removal_needs_the_password_and_a_code,
    an_admin_reset_ends_every_sign_in,
    a_client_that_requires_a_second_factor_refuses_users_without_one,
    secrets_are_stored_sealed_under_the_kek,
);
