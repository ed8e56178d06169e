//! DPoP (RFC 9449) end to end, on both backends: a stolen refresh or
//! access token is useless without the device's key; bad proofs are
//! refused and change nothing; the nonce dance costs no failed sign-in; a
//! bound sign-in stays bound across rotation and the retry window.

mod support;

use portcullis_store::testing::TestDb;
use portcullis_store::{ClientStore as _, NewClient, UnixTime, on_both_backends};
use serde_json::{Value, json};
use support::dpop::{DpopKey, claims_of, now};
use support::*;

/// A public client with these DPoP settings.
async fn client(db: &TestDb, id: &str, required: bool, nonce: bool) {
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
        dpop_bound_access_tokens: required,
        dpop_nonce_required: nonce,
        first_party: false,
        mfa_required: false,
    };
    db.create_client(&new, UnixTime::now()).await.expect("client");
}

/// `POST /oauth/token` with `pairs` and these `DPoP` headers.
async fn token(app: &App, pairs: &[(&str, &str)], proofs: &[&str]) -> HttpResponse {
    post(app, "/oauth/token", pairs, proofs).await
}

async fn post(app: &App, path: &str, pairs: &[(&str, &str)], proofs: &[&str]) -> HttpResponse {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    for proof in proofs {
        req = req.header("dpop", proof);
    }
    req.send().await.expect("request")
}

/// The URL proofs name: the issuer's (the server may be behind a proxy;
/// here the issuer has no port, the listener a random one).
fn token_url(_app: &App) -> String {
    format!("{ISSUER}/oauth/token")
}

const SIGN_IN: [(&str, &str); 4] = [
    ("grant_type", "password"),
    ("client_id", "mobile"),
    ("username", "alice"),
    ("password", PASSWORD),
];

/// Signs alice in through `mobile` with a proof of `key`.
async fn bound_sign_in(app: &App, key: &DpopKey) -> Value {
    let res = token(app, &SIGN_IN, &[&key.proof("POST", &token_url(app), None, None)]).await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res);
    assert!(res.headers().contains_key("dpop-nonce"), "a nonce for the next proof");
    res.json().await.expect("json")
}

fn refresh_form(rt: &str) -> [(&str, &str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", "mobile"),
        ("refresh_token", rt),
    ]
}

fn text(v: &Value, name: &str) -> String {
    v[name].as_str().expect(name).to_owned()
}

async fn a_bound_sign_in_stays_bound_across_rotation_and_retries(db: &TestDb) {
    client(db, "mobile", false, false).await;
    user(db, "alice", "read").await;
    let secret = introspector(db, "rs").await;
    let app = spawn(db).await;
    let key = DpopKey::new();
    let signed_in = bound_sign_in(&app, &key).await;
    assert_eq!(signed_in["token_type"], "DPoP");
    let at = text(&signed_in, "access_token");
    assert_eq!(claims_of(&at)["cnf"], json!({"jkt": key.jkt}));
    let rt = text(&signed_in, "refresh_token");
    let family = family_of(db, &rt).await;
    assert_eq!(family.dpop_jkt.as_deref(), Some(key.jkt.as_str()));

    // Without a proof, or with another key's: refused, nothing changes.
    let thief = DpopKey::new();
    for proofs in [vec![], vec![thief.proof("POST", &token_url(&app), None, None)]] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        assert_error(
            token(&app, &refresh_form(&rt), &proofs).await,
            400,
            "invalid_dpop_proof",
        )
        .await;
    }
    assert_eq!(family_of(db, &rt).await, family, "the family is untouched");

    // The key's proof rotates; the new tokens are bound too.
    let res = token(
        &app,
        &refresh_form(&rt),
        &[&key.proof("POST", &token_url(&app), None, None)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.expect("json");
    assert_eq!(rotated["token_type"], "DPoP");
    assert_eq!(claims_of(&text(&rotated, "access_token"))["cnf"]["jkt"], key.jkt);
    let rt2 = text(&rotated, "refresh_token");
    assert_ne!(rt2, rt);
    assert_eq!(family_of(db, &rt2).await.dpop_jkt.as_deref(), Some(key.jkt.as_str()));

    // A retry within the window answers the same token, to the same key
    // only; a copy of the spent token without the key changes nothing (it
    // does not even set off reuse detection).
    assert_error(token(&app, &refresh_form(&rt), &[]).await, 400, "invalid_dpop_proof").await;
    let thief_proof = thief.proof("POST", &token_url(&app), None, None);
    assert_error(
        token(&app, &refresh_form(&rt), &[&thief_proof]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let res = token(
        &app,
        &refresh_form(&rt),
        &[&key.proof("POST", &token_url(&app), None, None)],
    )
    .await;
    assert_eq!(res.status(), 200, "the retry");
    let retried: Value = res.json().await.expect("json");
    assert_eq!(text(&retried, "refresh_token"), rt2);
    assert!(family_of(db, &rt2).await.revoked_at.is_none());

    // Introspection tells the binding.
    let res = app
        .post_form(
            "/oauth/introspect",
            &[("token", &text(&rotated, "access_token"))],
            Some(("rs", &secret)),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["cnf"]["jkt"], key.jkt);
    let res = app
        .post_form("/oauth/introspect", &[("token", &rt2)], Some(("rs", &secret)))
        .await;
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        (body["token_type"].as_str(), body["cnf"]["jkt"].as_str()),
        (Some("refresh_token"), Some(key.jkt.as_str()))
    );
}

async fn a_bound_access_token_is_useless_without_its_key(db: &TestDb) {
    client(db, "mobile", false, false).await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let key = DpopKey::new();
    let at = text(&bound_sign_in(&app, &key).await, "access_token");
    let me = format!("{ISSUER}/account/v1/me");
    let get = |auth: String, proofs: Vec<String>| {
        let mut req = app
            .http
            .get(format!("{}/account/v1/me", app.base))
            .header("authorization", auth);
        for p in proofs {
            req = req.header("dpop", p);
        }
        req.send()
    };

    // As a bearer token: refused (RFC 9449 §7.2).
    let res = get(format!("Bearer {at}"), vec![]).await.expect("request");
    assert_eq!(res.status(), 401);
    let challenges: Vec<_> = res.headers().get_all("www-authenticate").iter().collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.to_str().expect("ascii").starts_with("Bearer ")),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.to_str().expect("ascii").contains("algs=\"ES256")),
        "{challenges:?}"
    );

    // With its proof: accepted, once.
    let proof = key.proof("GET", &me, Some(&at), None);
    let res = get(format!("DPoP {at}"), vec![proof.clone()]).await.expect("request");
    assert_eq!(res.status(), 200, "{:?}", res.headers().get("www-authenticate"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["username"], "alice");
    let res = get(format!("DPoP {at}"), vec![proof]).await.expect("request");
    assert_eq!(res.status(), 401, "a replayed proof");
    let challenge = res.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );

    // A thief's own key, no proof, a proof for another URL or method, or
    // without the token's hash: refused.
    let thief = DpopKey::new();
    for (why, proofs) in [
        ("no proof", vec![]),
        ("another key", vec![thief.proof("GET", &me, Some(&at), None)]),
        (
            "another URL",
            vec![key.proof("GET", &format!("{ISSUER}/account/v1/devices"), Some(&at), None)],
        ),
        ("another method", vec![key.proof("POST", &me, Some(&at), None)]),
        ("no ath", vec![key.proof("GET", &me, None, None)]),
        (
            "two proofs",
            vec![
                key.proof("GET", &me, Some(&at), None),
                key.proof("GET", &me, Some(&at), None),
            ],
        ),
    ] {
        let res = get(format!("DPoP {at}"), proofs).await.expect("request");
        assert_eq!(res.status(), 401, "{why}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let challenge = res.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        assert!(challenge.contains("error=\"invalid_dpop_proof\""), "{why}: {challenge}");
    }
}

async fn bad_proofs_are_refused_and_change_nothing(db: &TestDb) {
    client(db, "mobile", false, false).await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let key = DpopKey::new();
    let url = token_url(&app);
    let claims = || key.claims("POST", &url, None, None);
    let replayed = key.proof("POST", &url, None, None);
    assert_eq!(token(&app, &SIGN_IN, &[&replayed]).await.status(), 200);
    let mut cases: Vec<(&str, String)> = vec![("replayed", replayed)];
    let mut c = claims();
    c["htm"] = json!("GET");
    cases.push(("another method", key.sign(&key.header(), &c)));
    let mut c = claims();
    c["htu"] = json!(format!("{ISSUER}/oauth/revoke"));
    cases.push(("another URL", key.sign(&key.header(), &c)));
    let mut c = claims();
    c["iat"] = json!(now() - 3600);
    cases.push(("stale", key.sign(&key.header(), &c)));
    let mut c = claims();
    c["iat"] = json!(now() + 3600);
    cases.push(("future", key.sign(&key.header(), &c)));
    for alg in ["none", "HS256"] {
        let mut h = key.header();
        h["alg"] = json!(alg);
        cases.push((alg, key.sign(&h, &claims())));
    }
    let mut h = key.header();
    h["jwk"]["d"] = json!("AAAA");
    cases.push(("private key", key.sign(&h, &claims())));
    let mut h = key.header();
    h["typ"] = json!("jwt");
    cases.push(("typ", key.sign(&h, &claims())));
    let mut h = key.header();
    h["jwk"] = DpopKey::new().jwk;
    cases.push(("another key's signature", key.sign(&h, &claims())));
    cases.push(("garbage", "not.a.proof".to_owned()));
    for (why, proof) in &cases {
        let body = assert_error(token(&app, &SIGN_IN, &[proof]).await, 400, "invalid_dpop_proof").await;
        assert!(body["error_description"].as_str().is_some(), "{why}");
    }
    let two = [key.proof("POST", &url, None, None), key.proof("POST", &url, None, None)];
    assert_error(
        token(&app, &SIGN_IN, &[&two[0], &two[1]]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // Each refusal came before the password check: more of them than the
    // throttle allows failures, and the account still signs in.
    assert!(cases.len() > 10);
    let fine = bound_sign_in(&app, &key).await;
    assert_eq!(fine["token_type"], "DPoP");
}

async fn the_nonce_dance_costs_no_failed_sign_in(db: &TestDb) {
    client(db, "strict", false, true).await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |t| t.throttle.per_user_and_address.max = 3).await;
    let key = DpopKey::new();
    let url = token_url(&app);
    let sign_in = [
        ("grant_type", "password"),
        ("client_id", "strict"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let mut nonce = String::new();
    for _ in 0..5 {
        let res = token(&app, &sign_in, &[&key.proof("POST", &url, None, None)]).await;
        nonce = res.headers()["dpop-nonce"].to_str().expect("ascii").to_owned();
        assert_error(res, 400, "use_dpop_nonce").await;
    }
    // A nonce from elsewhere is not one.
    let res = token(
        &app,
        &sign_in,
        &[&key.proof(
            "POST",
            &url,
            None,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )],
    )
    .await;
    assert_error(res, 400, "use_dpop_nonce").await;
    let res = token(&app, &sign_in, &[&key.proof("POST", &url, None, Some(&nonce))]).await;
    assert_eq!(res.status(), 200, "the throttle counted no attempt");
    assert!(res.headers().contains_key("dpop-nonce"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    // The refresh needs the nonce too.
    let rt = text(&body, "refresh_token");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", "strict"),
        ("refresh_token", rt.as_str()),
    ];
    assert_error(
        token(&app, &refresh, &[&key.proof("POST", &url, None, None)]).await,
        400,
        "use_dpop_nonce",
    )
    .await;
    let res = token(&app, &refresh, &[&key.proof("POST", &url, None, Some(&nonce))]).await;
    assert_eq!(res.status(), 200);
}

async fn a_dpop_required_client_refuses_bearer_requests(db: &TestDb) {
    client(db, "bound", true, false).await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let sign_in = [
        ("grant_type", "password"),
        ("client_id", "bound"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let body = assert_error(token(&app, &sign_in, &[]).await, 400, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("must send a DPoP proof")
    );
    let key = DpopKey::new();
    let res = token(&app, &sign_in, &[&key.proof("POST", &token_url(&app), None, None)]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    let metadata: Value = app
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", app.base))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "Ed25519", "RS256", "PS256"])
    );
}

async fn revoking_a_bound_token_needs_its_key(db: &TestDb) {
    client(db, "mobile", false, false).await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let key = DpopKey::new();
    let rt = text(&bound_sign_in(&app, &key).await, "refresh_token");
    let revoke = [("client_id", "mobile"), ("token", rt.as_str())];
    let url = format!("{ISSUER}/oauth/revoke");
    assert_error(
        post(&app, "/oauth/revoke", &revoke, &[]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let thief = DpopKey::new().proof("POST", &url, None, None);
    assert_error(
        post(&app, "/oauth/revoke", &revoke, &[&thief]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(
        family_of(db, &rt).await.revoked_at.is_none(),
        "a copy cannot sign the owner out"
    );
    let res = post(&app, "/oauth/revoke", &revoke, &[&key.proof("POST", &url, None, None)]).await;
    assert_eq!(res.status(), 200);
    assert!(family_of(db, &rt).await.revoked_at.is_some());
}

async fn a_bearer_sign_in_is_unchanged(db: &TestDb) {
    client(db, "mobile", false, false).await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let res = token(&app, &SIGN_IN, &[]).await;
    assert_eq!(res.status(), 200);
    assert!(!res.headers().contains_key("dpop-nonce"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(claims_of(&text(&body, "access_token")).get("cnf").is_none());
    let rt = text(&body, "refresh_token");
    assert_eq!(family_of(db, &rt).await.dpop_jkt, None);
    // A proof at refresh binds the new access token, not the sign-in.
    let key = DpopKey::new();
    let res = token(
        &app,
        &refresh_form(&rt),
        &[&key.proof("POST", &token_url(&app), None, None)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(family_of(db, &text(&body, "refresh_token")).await.dpop_jkt, None);
}

/// A browser page's sign-in bound to its key: the cookie alone refreshes
/// nothing; the page's proof does, and errors reach the page (CORS).
async fn a_browser_sign_in_is_bound_to_the_page_key(db: &TestDb) {
    support::web::web_client(db, "spa", support::web::ORIGIN).await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let key = DpopKey::new();
    let web = |path: &'static str,
               pairs: Vec<(&'static str, &'static str)>,
               cookie: Option<String>,
               proof: Option<String>| {
        let mut req = app
            .http
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", support::web::ORIGIN)
            .header("x-portcullis-csrf", "1")
            .body(form(&pairs));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{}={c}", support::web::cookie_name("spa")));
        }
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req.send()
    };
    let url = |path: &str| format!("{ISSUER}{path}");
    let res = web(
        "/web/sign-in",
        vec![("client_id", "spa"), ("username", "alice"), ("password", PASSWORD)],
        None,
        Some(key.proof("POST", &url("/web/sign-in"), None, None)),
    )
    .await
    .expect("sign-in");
    assert_eq!(res.status(), 200);
    support::web::assert_cors(res.headers());
    assert!(res.headers().contains_key("dpop-nonce"));
    let (cookie, _) = support::web::set_cookie(res.headers(), "spa");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(family_of(db, &cookie).await.dpop_jkt.as_deref(), Some(key.jkt.as_str()));

    // The cookie without the key: refused, readable by the page, nothing
    // changed.
    let res = web("/web/refresh", vec![("client_id", "spa")], Some(cookie.clone()), None)
        .await
        .expect("refresh");
    support::web::assert_cors(res.headers());
    assert_error(res, 400, "invalid_dpop_proof").await;
    let res = web(
        "/web/refresh",
        vec![("client_id", "spa")],
        Some(cookie.clone()),
        Some(key.proof("POST", &url("/web/refresh"), None, None)),
    )
    .await
    .expect("refresh");
    assert_eq!(res.status(), 200);
    let (rotated, _) = support::web::set_cookie(res.headers(), "spa");
    assert_ne!(rotated, cookie);
    // Signing out needs no proof: a page that lost its key can still end
    // its sign-in.
    let res = web("/web/sign-out", vec![("client_id", "spa")], Some(rotated.clone()), None)
        .await
        .expect("sign-out");
    assert_eq!(res.status(), 200);
    assert!(family_of(db, &rotated).await.revoked_at.is_some());
}

on_both_backends!(
    a_browser_sign_in_is_bound_to_the_page_key,
    a_bound_sign_in_stays_bound_across_rotation_and_retries,
    a_bound_access_token_is_useless_without_its_key,
    bad_proofs_are_refused_and_change_nothing,
    the_nonce_dance_costs_no_failed_sign_in,
    a_dpop_required_client_refuses_bearer_requests,
    revoking_a_bound_token_needs_its_key,
    a_bearer_sign_in_is_unchanged,
);
