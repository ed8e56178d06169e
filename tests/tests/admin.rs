//! The admin API and the account API, on both backends: authorization,
//! devices, revocation taking effect at once (also across two instances on
//! one database), audit, keys.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::Value;
use support::*;

/// An admin's access token (scope `portcullis:admin`) from the console client.
async fn admin_token(db: &TestDb, app: &App) -> String {
    public(db, "console", "portcullis:admin").await;
    user(db, "root", "portcullis:admin").await;
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "console"),
                ("username", "root"),
                ("password", PASSWORD),
                ("scope", "portcullis:admin"),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("at")
        .to_owned()
}

async fn get(app: &App, path: &str, token: Option<&str>) -> support::HttpResponse {
    let mut req = app.http.get(format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

async fn send(app: &App, method: reqwest::Method, path: &str, token: &str) -> support::HttpResponse {
    app.http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn the_admin_api_needs_an_admin_token(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    let res = get(&app, "/admin/v1/clients", None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="portcullis""#);
    let alice = app.sign_in("mobile", "alice").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let res = get(&app, "/admin/v1/clients", Some(&alice)).await;
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains(r#"error="insufficient_scope", scope="portcullis:admin""#)
    );
    let res = get(&app, "/admin/v1/clients", Some("not.a.token")).await;
    assert_eq!(res.status(), 401);
    let res = get(&app, "/admin/v1/clients", Some(&admin)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json");
    let ids: Vec<&str> = body["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .collect();
    assert_eq!(ids, ["console", "mobile"]);
    let res = get(&app, "/admin/v1/users/alice", Some(&admin)).await;
    assert_eq!(res.json::<Value>().await.expect("json")["username"], "alice");
    assert_eq!(get(&app, "/admin/v1/users/nobody", Some(&admin)).await.status(), 404);
    // Revoking the admin's own sign-ins ends their access at once.
    let res = send(
        &app,
        reqwest::Method::POST,
        "/admin/v1/users/root/revoke-tokens",
        &admin,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(get(&app, "/admin/v1/clients", Some(&admin)).await.status(), 401);
}

async fn a_user_signs_out_one_device_and_keeps_the_others(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    user(db, "bob", "read").await;
    let app = spawn(db).await;
    let mut devices = Vec::new();
    for name in ["iPhone", "Pixel"] {
        let res = app
            .token(
                &[
                    ("grant_type", "password"),
                    ("client_id", "mobile"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("device_name", name),
                ],
                None,
            )
            .await;
        devices.push(res.json::<Value>().await.expect("json"));
    }
    let token = devices[0]["access_token"].as_str().expect("at").to_owned();
    let listed: Value = get(&app, "/account/v1/devices", Some(&token))
        .await
        .json()
        .await
        .expect("json");
    let listed = listed["devices"].as_array().expect("devices").clone();
    assert_eq!(listed.len(), 2);
    let names: Vec<&str> = listed.iter().filter_map(|d| d["device_name"].as_str()).collect();
    assert!(names.contains(&"iPhone") && names.contains(&"Pixel"), "{names:?}");
    let pixel = listed.iter().find(|d| d["device_name"] == "Pixel").expect("pixel")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/account/v1/devices/{pixel}"),
        &token,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_error(
        app.refresh("mobile", devices[1]["refresh_token"].as_str().expect("rt"))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.refresh("mobile", devices[0]["refresh_token"].as_str().expect("rt"))
            .await
            .status(),
        200,
        "the iPhone stays signed in"
    );
    // Another user's device is not found, not signed out.
    let bob = app.sign_in("mobile", "bob").await;
    let bob_token = bob["access_token"].as_str().expect("at");
    let bobs: Value = get(&app, "/account/v1/devices", Some(bob_token))
        .await
        .json()
        .await
        .expect("json");
    let bob_device = bobs["devices"][0]["id"].as_str().expect("id").to_owned();
    let res = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/account/v1/devices/{bob_device}"),
        &token,
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.refresh("mobile", bob["refresh_token"].as_str().expect("rt"))
            .await
            .status(),
        200
    );
}

async fn an_admin_sees_devices_and_the_audit_log_and_rotates_keys(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    app.sign_in("mobile", "alice").await;
    let devices: Value = get(&app, "/admin/v1/users/alice/devices", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    let id = devices["devices"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(devices["devices"][0]["client_id"], "mobile");
    let res = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin/v1/users/alice/devices/{id}"),
        &admin,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = send(&app, reqwest::Method::POST, "/admin/v1/users/alice/disable", &admin).await;
    assert_eq!(res.status(), 200);
    let res = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "mobile"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    assert_error(res, 400, "invalid_grant").await;
    let audit: Value = get(&app, "/admin/v1/audit?limit=50", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in ["login.success", "device.sign_out", "user.disable", "login.failure"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    let res = send(&app, reqwest::Method::POST, "/admin/v1/keys/rotate?alg=EdDSA", &admin).await;
    assert_eq!(res.status(), 200);
    let jwks: Value = get(&app, "/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        jwks["keys"].as_array().expect("keys").len(),
        2,
        "the new key is published at once"
    );
    let keys: Value = get(&app, "/admin/v1/keys", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 2);
    assert!(keys.to_string().find("private").is_none());
}

/// 20 workers refresh for a client while an admin revokes it: once the
/// revoke call has returned, no refresh succeeds.
async fn revoking_a_client_stops_its_refreshes_at_once(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = Arc::new(spawn(db).await);
    let admin = admin_token(db, &app).await;
    let mut chains = Vec::new();
    for _ in 0..20 {
        chains.push(app.sign_in_refresh_token("mobile", "alice").await);
    }
    let revoked_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let workers: Vec<_> = chains
        .into_iter()
        .map(|mut rt| {
            let (app, revoked_at) = (app.clone(), revoked_at.clone());
            tokio::spawn(async move {
                let mut late_successes = 0;
                for _ in 0..200 {
                    let sent = Instant::now();
                    let res = app.refresh("mobile", &rt).await;
                    let after_revoke = revoked_at.lock().expect("lock").is_some_and(|t| sent > t);
                    if res.status() == 200 {
                        if after_revoke {
                            late_successes += 1;
                        }
                        rt = res.json::<Value>().await.expect("json")["refresh_token"]
                            .as_str()
                            .expect("rt")
                            .to_owned();
                    } else {
                        // 401 invalid_client once revoked; a request in flight
                        // during the revoke may find its family ended (400).
                        let status = res.status().as_u16();
                        let body: Value = res.json().await.expect("json");
                        assert!(
                            (status, body["error"].as_str()) == (401, Some("invalid_client"))
                                || (status, body["error"].as_str()) == (400, Some("invalid_grant")),
                            "{status} {body}"
                        );
                        return late_successes;
                    }
                }
                panic!("the refreshes never stopped");
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = send(&app, reqwest::Method::POST, "/admin/v1/clients/mobile/revoke", &admin).await;
    assert_eq!(res.status(), 200);
    *revoked_at.lock().expect("lock") = Some(Instant::now());
    for w in workers {
        assert_eq!(
            w.await.expect("worker"),
            0,
            "a refresh sent after the revoke returned succeeded"
        );
    }
    // The revoke is in the audit log exactly once, with who did it.
    let revokes: Vec<_> = portcullis_store::AuditStore::audit_events(&**db, None, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "client.revoke")
        .collect();
    assert_eq!(revokes.len(), 1, "{revokes:?}");
    assert_eq!(revokes[0].subject.as_deref(), Some("mobile"));
    assert!(revokes[0].actor.is_some(), "the admin is named");
}

/// Two instances on one database: sign in via A, refresh via B, revoke via
/// A's admin API, and B refuses at once; signing in again works at once.
async fn a_revoke_on_one_instance_takes_effect_on_another_at_once(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let a = spawn(db).await;
    let b = spawn(db).await;
    let admin = admin_token(db, &a).await;
    let rt = a.sign_in_refresh_token("mobile", "alice").await;
    let res = b.refresh("mobile", &rt).await;
    assert_eq!(res.status(), 200);
    let rt = res.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    let res = send(&a, reqwest::Method::POST, "/admin/v1/users/alice/revoke-tokens", &admin).await;
    assert_eq!(res.status(), 200);
    assert_error(b.refresh("mobile", &rt).await, 400, "invalid_grant").await;
    // Signing in again works at once, within the second of the revoke, on
    // either instance, and the new sign-in refreshes.
    let again = b.sign_in_refresh_token("mobile", "alice").await;
    assert_eq!(a.refresh("mobile", &again).await.status(), 200);
}

/// Keys rotate while a resource server verifies every new token: no valid
/// token is ever rejected, and the new key does take over.
async fn key_rotation_under_verification_load_rejects_no_valid_token(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.key_publish_delay = Duration::from_secs(2);
        c.jwks_max_age = Duration::from_secs(1);
    })
    .await;
    let admin = admin_token(db, &app).await;
    let verifier = portcullis_verify::Verifier::builder(ISSUER)
        .audience(ISSUER)
        .jwks_url(format!("{}/.well-known/jwks.json", app.base))
        .refetch_cooldown(Duration::from_millis(100))
        .build()
        .expect("verifier");
    let mut rt = app.sign_in_refresh_token("mobile", "alice").await;
    let mut kids = std::collections::HashSet::new();
    let started = Instant::now();
    let mut rotated = false;
    let mut verified = 0;
    while started.elapsed() < Duration::from_millis(4500) {
        if !rotated && started.elapsed() > Duration::from_millis(500) {
            let res = send(&app, reqwest::Method::POST, "/admin/v1/keys/rotate", &admin).await;
            assert_eq!(res.status(), 200);
            rotated = true;
        }
        let body: Value = app.refresh("mobile", &rt).await.json().await.expect("json");
        rt = body["refresh_token"].as_str().expect("rt").to_owned();
        let at = body["access_token"].as_str().expect("at");
        kids.insert(jsonwebtoken::decode_header(at).expect("header").kid.expect("kid"));
        verifier
            .verify(at)
            .await
            .unwrap_or_else(|e| panic!("a valid token was rejected during rotation: {e}"));
        verified += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(verified > 50, "{verified}");
    assert_eq!(kids.len(), 2, "the new key took over: {kids:?}");
}

/// A malformed query, path or `Authorization` header is a 400 with the
/// API's JSON error, whoever refuses it (the token check or a handler), so
/// that each status has one documented shape.
async fn malformed_requests_get_the_api_json_error(db: &TestDb) {
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    for (path, token) in [
        ("/admin/v1/users?limit=-1", admin.as_str()),
        ("/admin/v1/audit?before=soon", admin.as_str()),
        ("/admin/v1/users?limit=1&limit=2", admin.as_str()),
        ("/admin/v1/users/%FF", admin.as_str()),
        ("/admin/v1/users/a%00b", admin.as_str()),
        ("/admin/v1/users?after=a%00b", admin.as_str()),
        ("/admin/v1/clients", "not a b64token!"),
    ] {
        let res = get(&app, path, Some(token)).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body, serde_json::json!({"error": "invalid_request"}), "{path}");
    }
    let res = send(&app, reqwest::Method::POST, "/admin/v1/keys/rotate?alg=HS256", &admin).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"error": "unsupported_algorithm"}));
}

on_both_backends!(
    key_rotation_under_verification_load_rejects_no_valid_token,
    the_admin_api_needs_an_admin_token,
    malformed_requests_get_the_api_json_error,
    a_user_signs_out_one_device_and_keeps_the_others,
    an_admin_sees_devices_and_the_audit_log_and_rotates_keys,
    revoking_a_client_stops_its_refreshes_at_once,
    a_revoke_on_one_instance_takes_effect_on_another_at_once,
);
