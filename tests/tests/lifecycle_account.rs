//! What signed-in users do to their own account, on both backends: change
//! their password (their other devices are signed out at once, this one
//! stays) and delete the account (its tokens are refused, the feed carries
//! the deletion).

mod support;

use portcullis_store::on_both_backends;
use portcullis_store::testing::TestDb;
use serde_json::{Value, json};
use support::lifecycle::*;
use support::*;

/// Signs alice in on a named device: the whole token answer.
async fn device(app: &App, name: &str) -> Value {
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
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().expect(name).to_owned()
}

async fn a_password_change_ends_the_other_devices_and_keeps_this_one(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    let app = spawn(db).await;
    let phone = device(&app, "iPhone").await;
    let tablet = device(&app, "iPad").await;
    let (phone_at, phone_rt) = (field(&phone, "access_token"), field(&phone, "refresh_token"));
    let (tablet_at, tablet_rt) = (field(&tablet, "access_token"), field(&tablet, "refresh_token"));
    let tablet_family = family_of(db, &tablet_rt).await.id;
    let phone_family = family_of(db, &phone_rt).await.id;

    // A wrong current password, or a malformed body, changes nothing.
    let wrong = json!({"current_password": "not-my-password-at-all-really", "new_password": NEW_PASSWORD});
    api_error(
        call(&app, "POST", "/account/v1/password", &phone_at, Some(wrong)).await,
        400,
        "invalid_grant",
    )
    .await;
    for bad in [
        json!({"current_password": PASSWORD}),
        json!({"current_password": PASSWORD, "new_password": ""}),
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "sid": "x"}),
    ] {
        api_error(
            call(&app, "POST", "/account/v1/password", &phone_at, Some(bad)).await,
            400,
            "invalid_request",
        )
        .await;
    }
    assert_eq!(
        app.refresh("mobile", &tablet_rt).await.status(),
        200,
        "nothing changed yet"
    );
    let tablet_rt = {
        // That refresh rotated the tablet's token; sign the tablet in anew
        // to hold a current one.
        let again = device(&app, "iPad").await;
        field(&again, "refresh_token")
    };
    let tablet_family_2 = family_of(db, &tablet_rt).await.id;

    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let done = json(
        call(&app, "POST", "/account/v1/password", &phone_at, Some(body)).await,
        200,
    )
    .await;
    assert_eq!(done["sign_ins_ended"], 2);
    // The other devices: refresh refused and access token refused at once.
    assert_error(app.refresh("mobile", &tablet_rt).await, 400, "invalid_grant").await;
    assert_eq!(
        call(&app, "GET", "/account/v1/me", &tablet_at, None).await.status(),
        401
    );
    // This device stays signed in.
    let me = json(call(&app, "GET", "/account/v1/me", &phone_at, None).await, 200).await;
    assert_eq!(me["sub"], alice.as_str());
    let res = app.refresh("mobile", &phone_rt).await;
    assert_eq!(
        res.status(),
        200,
        "the device that changed the password stays signed in"
    );
    // The feed names the other families, not this one, nor the user.
    let entries = feed(db).await;
    assert!(
        entries.contains(&("family".to_owned(), tablet_family.clone())),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("family".to_owned(), tablet_family_2.clone())),
        "{entries:?}"
    );
    assert!(
        !entries.contains(&("family".to_owned(), phone_family.clone())),
        "{entries:?}"
    );
    assert!(!entries.contains(&("user".to_owned(), alice.clone())), "{entries:?}");
    // The new password signs in; the old one does not.
    assert_eq!(sign_in_with(&app, "mobile", "alice", PASSWORD).await.status(), 400);
    assert_eq!(sign_in_with(&app, "mobile", "alice", NEW_PASSWORD).await.status(), 200);
    assert!(audit(db).await.iter().any(|(a, actor, s)| a == "user.change_password"
        && actor.as_deref() == Some(&alice)
        && s.as_deref() == Some(&alice)));
}

async fn wrong_current_passwords_are_throttled_like_sign_ins(db: &TestDb) {
    public(db, "mobile", "read").await;
    user(db, "alice", "read").await;
    let app = spawn_with(db, |c| {
        c.throttle.per_user_and_address.max = 3;
    })
    .await;
    let at = field(&device(&app, "iPhone").await, "access_token");
    let wrong = json!({"password": "definitely-not-the-password-here"});
    for _ in 0..3 {
        api_error(
            call(&app, "DELETE", "/account/v1", &at, Some(wrong.clone())).await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let res = call(&app, "DELETE", "/account/v1", &at, Some(json!({"password": PASSWORD}))).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    api_error(res, 429, "too_many_requests").await;
    // The account is still there.
    json(call(&app, "GET", "/account/v1/me", &at, None).await, 200).await;
}

async fn a_deleted_account_is_gone_with_its_tokens(db: &TestDb) {
    public(db, "mobile", "read").await;
    let alice = user(db, "alice", "read").await;
    user(db, "bob", "read").await;
    let app = spawn(db).await;
    let phone = device(&app, "iPhone").await;
    let tablet = device(&app, "iPad").await;
    let at = field(&phone, "access_token");
    let bob = app.sign_in("mobile", "bob").await;

    let wrong = json!({"password": "not-my-password-at-all-really"});
    api_error(
        call(&app, "DELETE", "/account/v1", &at, Some(wrong)).await,
        400,
        "invalid_grant",
    )
    .await;
    api_error(
        call(&app, "DELETE", "/account/v1", &at, None).await,
        400,
        "invalid_request",
    )
    .await;
    json(call(&app, "GET", "/account/v1/me", &at, None).await, 200).await;

    let done = json(
        call(&app, "DELETE", "/account/v1", &at, Some(json!({"password": PASSWORD}))).await,
        200,
    )
    .await;
    assert_eq!(done["username"], "alice");
    assert_eq!(done["sign_ins_ended"], 2);
    // Every token of the account is refused by the account API.
    for token in [&at, &field(&tablet, "access_token")] {
        let res = call(&app, "GET", "/account/v1/me", token, None).await;
        assert_eq!(res.status(), 401);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .expect("ascii")
                .starts_with("Bearer")
        );
    }
    for rt in [field(&phone, "refresh_token"), field(&tablet, "refresh_token")] {
        assert_error(app.refresh("mobile", &rt).await, 400, "invalid_grant").await;
    }
    assert_eq!(sign_in_with(&app, "mobile", "alice", PASSWORD).await.status(), 400);
    // The feed carries the deletion; the audit log a pseudonym only.
    assert!(feed(db).await.contains(&("user".to_owned(), alice.clone())));
    let events = audit(db).await;
    let deletion = events.iter().find(|(a, _, _)| a == "user.delete").expect("user.delete");
    let pseudonym = deletion.2.clone().expect("subject");
    assert!(pseudonym.starts_with("deleted:") && pseudonym != alice);
    assert_eq!(
        deletion.1.as_deref(),
        Some(pseudonym.as_str()),
        "the actor is the pseudonym too"
    );
    // Another user is untouched.
    json(
        call(&app, "GET", "/account/v1/me", &field(&bob, "access_token"), None).await,
        200,
    )
    .await;
    // A new account may take the name.
    user(db, "alice", "read").await;
    assert_eq!(sign_in_with(&app, "mobile", "alice", PASSWORD).await.status(), 200);
}

on_both_backends!(
    a_password_change_ends_the_other_devices_and_keeps_this_one,
    wrong_current_passwords_are_throttled_like_sign_ins,
    a_deleted_account_is_gone_with_its_tokens,
);
