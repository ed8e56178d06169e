//! The admin side of the user lifecycle, on both backends: users created
//! (with or without a password and email), changed, enabled, given a
//! password and deleted; clients registered with RFC 7591 names, changed,
//! their secrets rotated with a grace period; revoked clients stay revoked.

mod support;

use std::time::Duration;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::{Value, json};
use support::lifecycle::*;
use support::*;

async fn an_admin_creates_changes_enables_and_deletes_a_user(db: &TestDb) {
    public(db, "mobile", "read write").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    let admin_id = sub_of(&admin);

    let body = json!({"username": "Bob", "password": NEW_PASSWORD, "email": "Bob@Example.com", "scope": "read"});
    let bob = json(call(&app, "POST", "/admin/v1/users", &admin, Some(body)).await, 201).await;
    assert_eq!(bob["username"], "Bob");
    assert_eq!(bob["email"], "Bob@Example.com");
    assert_eq!(bob["email_verified"], false);
    assert_eq!(bob["has_password"], true);
    assert_eq!(bob["scope"], "read");
    assert_eq!(bob["status"], "active");
    let bob_id = bob["id"].as_str().expect("id").to_owned();
    assert_eq!(sign_in_with(&app, "mobile", "bob", NEW_PASSWORD).await.status(), 200);

    // Taken names and addresses are 409; bad input is 400; nothing is created.
    let taken = json!({"username": "BOB", "password": NEW_PASSWORD});
    api_error(
        call(&app, "POST", "/admin/v1/users", &admin, Some(taken)).await,
        409,
        "conflict",
    )
    .await;
    let same_address = json!({"username": "carol", "email": "bob@example.COM"});
    let body = api_error(
        call(&app, "POST", "/admin/v1/users", &admin, Some(same_address)).await,
        409,
        "conflict",
    )
    .await;
    assert!(
        body["error_description"].as_str().expect("d").contains("email"),
        "{body}"
    );
    for bad in [
        json!({"username": "carol", "email": "not-an-address"}),
        json!({"username": "car ol"}),
        json!({"username": "carol", "scope": "a\"b"}),
        json!({"username": "carol", "passwd": NEW_PASSWORD}),
        json!({"password": NEW_PASSWORD}),
    ] {
        api_error(
            call(&app, "POST", "/admin/v1/users", &admin, Some(bad)).await,
            400,
            "invalid_request",
        )
        .await;
    }
    let res = app
        .http
        .post(format!("{}/admin/v1/users", app.base))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("username=carol")
        .send()
        .await
        .expect("request");
    api_error(res, 400, "invalid_request").await;
    json(call(&app, "GET", "/admin/v1/users/carol", &admin, None).await, 404).await;

    // A user without a password cannot sign in, whatever is tried.
    let nopass = json(
        call(
            &app,
            "POST",
            "/admin/v1/users",
            &admin,
            Some(json!({"username": "dora", "scope": "read"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(nopass["has_password"], false);
    for attempt in ["", NEW_PASSWORD, PASSWORD] {
        let res = sign_in_with(&app, "mobile", "dora", attempt).await;
        assert_eq!(res.status(), 400, "{attempt:?}");
    }

    // Changes: the admin right, the scope, the address (removed).
    let changed = json(
        call(
            &app,
            "PATCH",
            "/admin/v1/users/bob",
            &admin,
            Some(json!({"admin": true, "email": null})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["scope"], "portcullis:admin read");
    assert!(changed.get("email").is_none(), "{changed}");
    let changed = json(
        call(
            &app,
            "PATCH",
            "/admin/v1/users/bob",
            &admin,
            Some(json!({"scope": "write", "admin": false, "email": "b@example.org", "email_verified": true})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["scope"], "write");
    assert_eq!(changed["email"], "b@example.org");
    assert_eq!(changed["email_verified"], true);
    json(
        call(
            &app,
            "PATCH",
            "/admin/v1/users/nobody",
            &admin,
            Some(json!({"scope": "x"})),
        )
        .await,
        404,
    )
    .await;
    api_error(
        call(
            &app,
            "PATCH",
            "/admin/v1/users/bob",
            &admin,
            Some(json!({"status": "active"})),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;

    // Disabled, then enabled: signs in again.
    json(
        call(&app, "POST", "/admin/v1/users/bob/disable", &admin, None).await,
        200,
    )
    .await;
    assert_eq!(sign_in_with(&app, "mobile", "bob", NEW_PASSWORD).await.status(), 400);
    let enabled = json(
        call(&app, "POST", "/admin/v1/users/BOB/enable", &admin, None).await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    // At once, in the second of the disable and the enable.
    let res = sign_in_with(&app, "mobile", "bob", NEW_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let refresh = res.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    let family = family_of(db, &refresh).await.id;
    json(
        call(&app, "POST", "/admin/v1/users/nobody/enable", &admin, None).await,
        404,
    )
    .await;

    // Deleted: with the sign-in; the feed names the user, the audit log a
    // pseudonym only.
    let deleted = json(call(&app, "DELETE", "/admin/v1/users/bob", &admin, None).await, 200).await;
    assert_eq!(deleted["username"], "Bob");
    assert_eq!(deleted["sign_ins_ended"], 1);
    json(call(&app, "GET", "/admin/v1/users/bob", &admin, None).await, 404).await;
    json(call(&app, "DELETE", "/admin/v1/users/bob", &admin, None).await, 404).await;
    assert_error(app.refresh("mobile", &refresh).await, 400, "invalid_grant").await;
    assert_eq!(sign_in_with(&app, "mobile", "bob", NEW_PASSWORD).await.status(), 400);
    assert!(
        portcullis_store::RefreshStore::family_by_id(&**db, &family)
            .await
            .is_err()
    );
    assert!(feed(db).await.contains(&("user".to_owned(), bob_id.clone())));

    let events = audit(db).await;
    let by_admin = |action: &str| {
        events.iter().any(|(a, actor, subject)| {
            a == action && actor.as_deref() == Some(&admin_id) && subject.as_deref() == Some(&bob_id)
        })
    };
    for action in ["user.create", "user.update", "user.enable"] {
        assert!(by_admin(action), "{action} by the admin missing: {events:?}");
    }
    let deletion = events.iter().find(|(a, _, _)| a == "user.delete").expect("user.delete");
    assert_eq!(deletion.1.as_deref(), Some(admin_id.as_str()));
    let pseudonym = deletion.2.as_deref().expect("subject");
    assert!(
        pseudonym.starts_with("deleted:") && !pseudonym.contains(&bob_id),
        "{pseudonym}"
    );
    assert!(
        !events.iter().any(|e| format!("{e:?}").contains("Bob")),
        "no username in the log"
    );
}

async fn setting_a_password_ends_every_sign_in(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    let refresh = app.sign_in_refresh_token("mobile", "alice").await;
    let body = json!({"password": NEW_PASSWORD});
    let done = json(
        call(&app, "POST", "/admin/v1/users/alice/password", &admin, Some(body)).await,
        200,
    )
    .await;
    assert_eq!(done["username"], "alice");
    assert_eq!(done["sign_ins_ended"], 1);
    assert_error(app.refresh("mobile", &refresh).await, 400, "invalid_grant").await;
    assert!(feed(db).await.contains(&("user".to_owned(), alice.clone())));
    // The new password works at once, in the second it was set.
    assert_eq!(sign_in_with(&app, "mobile", "alice", PASSWORD).await.status(), 400);
    assert_eq!(sign_in_with(&app, "mobile", "alice", NEW_PASSWORD).await.status(), 200);
    // Bad bodies change nothing.
    for bad in [
        json!({}),
        json!({"password": ""}),
        json!({"password": NEW_PASSWORD, "x": 1}),
    ] {
        api_error(
            call(&app, "POST", "/admin/v1/users/alice/password", &admin, Some(bad)).await,
            400,
            "invalid_request",
        )
        .await;
    }
    json(
        call(
            &app,
            "POST",
            "/admin/v1/users/nobody/password",
            &admin,
            Some(json!({"password": NEW_PASSWORD})),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(sign_in_with(&app, "mobile", "alice", NEW_PASSWORD).await.status(), 200);
    assert!(
        audit(db)
            .await
            .iter()
            .any(|(a, _, s)| a == "user.set_password" && s.as_deref() == Some(&alice))
    );
}

/// Signs in with Basic client credentials.
async fn confidential_sign_in(app: &App, id: &str, secret: &str) -> u16 {
    let pairs = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    app.token(&pairs, Some((id, secret))).await.status().as_u16()
}

async fn an_admin_registers_changes_and_rotates_a_client(db: &TestDb) {
    user(db, "alice", "read write").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    let body = json!({
        "client_name": "Billing service",
        "client_id": "billing",
        "grant_types": ["password", "refresh_token"],
        "scope": "read write",
        "default_scope": "read",
        "token_endpoint_auth_method": "client_secret_basic",
        "software_id": "ignored per RFC 7591",
    });
    let created = json(call(&app, "POST", "/admin/v1/clients", &admin, Some(body)).await, 201).await;
    assert_eq!(created["client_id"], "billing");
    assert_eq!(created["client_name"], "Billing service");
    assert_eq!(created["grant_types"], json!(["password", "refresh_token"]));
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["client_secret_expires_at"], 0);
    assert_eq!(created["allow_sign_up"], false);
    assert!(created["client_id_issued_at"].as_i64().expect("issued") > 0);
    let first = created["client_secret"].as_str().expect("secret").to_owned();
    assert!(first.len() >= 43);
    assert_eq!(confidential_sign_in(&app, "billing", &first).await, 200);
    // The secret is never shown again.
    let shown = json(call(&app, "GET", "/admin/v1/clients/billing", &admin, None).await, 200).await;
    assert!(shown.get("client_secret").is_none() && !shown.to_string().contains(&first));

    // A taken id is 409; a public client has no secret; bad metadata is 400.
    let again = json!({"client_name": "x", "client_id": "billing"});
    api_error(
        call(&app, "POST", "/admin/v1/clients", &admin, Some(again)).await,
        409,
        "conflict",
    )
    .await;
    let mobile = json!({"client_name": "App", "token_endpoint_auth_method": "none", "scope": "read",
                        "allow_sign_up": true, "sign_up_scope": "read"});
    let mobile = json(call(&app, "POST", "/admin/v1/clients", &admin, Some(mobile)).await, 201).await;
    assert!(mobile.get("client_secret").is_none());
    assert_eq!(mobile["token_endpoint_auth_method"], "none");
    assert_eq!(mobile["allow_sign_up"], true);
    assert_eq!(mobile["sign_up_scope"], "read");
    for bad in [
        json!({"client_name": ""}),
        json!({"client_name": "x", "grant_types": ["implicit"]}),
        json!({"client_name": "x", "scope": "read", "default_scope": "write"}),
        json!({"client_name": "x", "sign_up_scope": "portcullis:admin"}),
        json!({"client_name": "x", "token_endpoint_auth_method": "none", "introspect": true}),
        json!({"client_name": "x", "web_origins": ["ftp://x"]}),
        json!({"client_name": "x", "token_endpoint_auth_method": "private_key_jwt"}),
    ] {
        api_error(
            call(&app, "POST", "/admin/v1/clients", &admin, Some(bad)).await,
            400,
            "invalid_request",
        )
        .await;
    }

    // Changes.
    let body = json!({"client_name": "Billing", "scope": "read", "allow_sign_up": true, "sign_up_scope": "read",
                      "introspect": true, "grant_types": ["password"]});
    let changed = json(
        call(&app, "PATCH", "/admin/v1/clients/billing", &admin, Some(body)).await,
        200,
    )
    .await;
    assert_eq!(changed["client_name"], "Billing");
    assert_eq!(changed["scope"], "read");
    assert_eq!(changed["default_scope"], "read");
    assert_eq!(changed["grant_types"], json!(["password"]));
    assert_eq!(changed["introspect"], true);
    assert_eq!(changed["allow_sign_up"], true);
    for bad in [
        json!({"sign_up_scope": "portcullis:admin"}),
        json!({"default_scope": "write"}),
        json!({"grant_types": []}),
        json!({"web_origins": ["https://app.example"]}),
        json!({"client_secret": "mine"}),
    ] {
        api_error(
            call(&app, "PATCH", "/admin/v1/clients/billing", &admin, Some(bad)).await,
            400,
            "invalid_request",
        )
        .await;
    }
    let unchanged = json(call(&app, "GET", "/admin/v1/clients/billing", &admin, None).await, 200).await;
    assert_eq!(unchanged, changed);
    json(
        call(
            &app,
            "PATCH",
            "/admin/v1/clients/nope",
            &admin,
            Some(json!({"client_name": "x"})),
        )
        .await,
        404,
    )
    .await;

    // Rotation with the default grace: both secrets work.
    let rotated = json(
        call(&app, "POST", "/admin/v1/clients/billing/secret", &admin, None).await,
        200,
    )
    .await;
    let second = rotated["client_secret"].as_str().expect("secret").to_owned();
    let until = rotated["previous_secret_expires_at"].as_i64().expect("grace");
    let now = portcullis_store::UnixTime::now().0;
    assert!((now + 86_390..=now + 86_410).contains(&until), "{until}");
    assert_eq!(confidential_sign_in(&app, "billing", &first).await, 200);
    assert_eq!(confidential_sign_in(&app, "billing", &second).await, 200);
    assert_eq!(confidential_sign_in(&app, "billing", "not-the-secret").await, 401);

    // A short grace: the old secret works before it ends, not after; the
    // secret kept from the rotation before ends at once.
    let body = json!({"grace_period": 2});
    let rotated = json(
        call(&app, "POST", "/admin/v1/clients/billing/secret", &admin, Some(body)).await,
        200,
    )
    .await;
    let third = rotated["client_secret"].as_str().expect("secret").to_owned();
    assert_eq!(confidential_sign_in(&app, "billing", &first).await, 401);
    assert_eq!(confidential_sign_in(&app, "billing", &second).await, 200);
    assert_eq!(confidential_sign_in(&app, "billing", &third).await, 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(confidential_sign_in(&app, "billing", &second).await, 401);
    assert_eq!(confidential_sign_in(&app, "billing", &third).await, 200);

    // No grace: the old secret stops at once.
    let body = json!({"grace_period": 0});
    let rotated = json(
        call(&app, "POST", "/admin/v1/clients/billing/secret", &admin, Some(body)).await,
        200,
    )
    .await;
    assert!(rotated.get("previous_secret_expires_at").is_none());
    assert_eq!(confidential_sign_in(&app, "billing", &third).await, 401);
    let fourth = rotated["client_secret"].as_str().expect("secret");
    assert_eq!(confidential_sign_in(&app, "billing", fourth).await, 200);

    let too_long = json!({"grace_period": 2_592_001});
    api_error(
        call(&app, "POST", "/admin/v1/clients/billing/secret", &admin, Some(too_long)).await,
        400,
        "invalid_request",
    )
    .await;
    let public_id = mobile["client_id"].as_str().expect("id");
    api_error(
        call(
            &app,
            "POST",
            &format!("/admin/v1/clients/{public_id}/secret"),
            &admin,
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    let events = audit(db).await;
    let admin_id = sub_of(&admin);
    for action in ["client.create", "client.update", "client.rotate_secret"] {
        assert!(
            events.iter().any(|(a, actor, s)| a == action
                && actor.as_deref() == Some(&admin_id)
                && s.as_deref() == Some("billing")),
            "{action}: {events:?}"
        );
    }
}

async fn a_revoked_client_stays_revoked(db: &TestDb) {
    user(db, "alice", "read").await;
    let app = spawn(db).await;
    let admin = admin_token(db, &app).await;
    let body = json!({"client_name": "Old", "client_id": "old", "scope": "read"});
    let created = json(call(&app, "POST", "/admin/v1/clients", &admin, Some(body)).await, 201).await;
    let secret = created["client_secret"].as_str().expect("secret").to_owned();
    json(
        call(&app, "POST", "/admin/v1/clients/old/revoke", &admin, None).await,
        200,
    )
    .await;
    for (method, path, body) in [
        ("PATCH", "/admin/v1/clients/old", Some(json!({"client_name": "New"}))),
        (
            "PATCH",
            "/admin/v1/clients/old",
            Some(json!({"grant_types": ["password"]})),
        ),
        ("POST", "/admin/v1/clients/old/secret", None),
    ] {
        let body = api_error(call(&app, method, path, &admin, body).await, 409, "conflict").await;
        assert!(
            body["error_description"].as_str().expect("d").contains("final"),
            "{body}"
        );
    }
    let shown = json(call(&app, "GET", "/admin/v1/clients/old", &admin, None).await, 200).await;
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["client_name"], "Old");
    assert_eq!(confidential_sign_in(&app, "old", &secret).await, 401);
}

async fn the_cli_creates_enables_and_deletes(db: &TestDb) {
    let (ok, out, err) = cli(
        db,
        &[
            "user",
            "create",
            "erin",
            "--no-password",
            "--email",
            "erin@example.com",
            "--email-verified",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(created["username"], "erin");
    let (ok, _, err) = cli(
        db,
        &[
            "user",
            "create",
            "frank",
            "--password-stdin",
            "--email",
            "ERIN@example.com",
        ],
        Some(NEW_PASSWORD),
    );
    assert!(!ok && err.contains("email"), "{err}");
    let (ok, _, _) = cli(db, &["user", "disable", "erin"], None);
    assert!(ok);
    let (ok, out, err) = cli(db, &["user", "enable", "erin", "--json"], None);
    assert!(ok, "{err}");
    let enabled: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(enabled["status"], "active");
    assert_eq!(enabled["email"], "erin@example.com");
    assert_eq!(enabled["email_verified"], true);
    assert_eq!(enabled["has_password"], false);
    let (ok, out, err) = cli(db, &["user", "delete", "erin", "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json")["deleted"], true);
    let (ok, _, err) = cli(db, &["user", "delete", "erin"], None);
    assert!(!ok && err.contains("erin"), "{err}");

    let (ok, out, err) = cli(
        db,
        &[
            "client",
            "create",
            "--name",
            "App",
            "--client-id",
            "app",
            "--public",
            "--allow-sign-up",
            "--sign-up-scope",
            "read",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(serde_json::from_str::<Value>(&out).is_ok());
    let (ok, out, _) = cli(db, &["client", "show", "app", "--json"], None);
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(shown["allow_sign_up"], true);
    assert_eq!(shown["sign_up_scope"], "read");
    let (ok, _, err) = cli(
        db,
        &[
            "client",
            "create",
            "--name",
            "Bad",
            "--allow-sign-up",
            "--sign-up-scope",
            "portcullis:admin",
        ],
        None,
    );
    assert!(!ok && err.contains("portcullis:admin"), "{err}");
    let (ok, out, err) = cli(
        db,
        &["client", "create", "--name", "Svc", "--client-id", "svc", "--json"],
        None,
    );
    assert!(ok, "{err}");
    assert!(serde_json::from_str::<Value>(&out).expect("json")["client_secret"].is_string());
    let (ok, out, err) = cli(
        db,
        &["client", "rotate-secret", "svc", "--grace-period", "600", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let rotated: Value = serde_json::from_str(&out).expect("json");
    assert!(rotated["previous_secret_expires_at"].as_i64().expect("grace") > portcullis_store::UnixTime::now().0);
    let (ok, _, err) = cli(
        db,
        &["client", "rotate-secret", "svc", "--grace-period", "99999999"],
        None,
    );
    assert!(!ok && err.contains("2592000"), "{err}");
}

on_both_backends!(
    an_admin_creates_changes_enables_and_deletes_a_user,
    setting_a_password_ends_every_sign_in,
    an_admin_registers_changes_and_rotates_a_client,
    a_revoked_client_stays_revoked,
    the_cli_creates_enables_and_deletes,
);
