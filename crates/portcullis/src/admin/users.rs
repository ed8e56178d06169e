//! `portcullis user …`

use portcullis_domain::{ADMIN_SCOPE, Email, Scopes, Username};
use portcullis_store::SqlStore;
use portcullis_token::password::{PasswordPolicy, Passwords};
use serde::Serialize;

use super::{failed, read_password, render, scope, table};
use crate::admin_api::mfa::MfaReset;
use crate::admin_api::users::{User, UserDisabled, UserStatus, UserTokensRevoked};
use crate::cli::{UserCreate, UserSetPassword};
use crate::ops::users::NewUserInput;
use crate::ops::{self, Actor};

/// What `user create --json` prints.
#[derive(Serialize)]
struct Created<'a> {
    id: &'a str,
    username: &'a Username,
    scope: &'a Scopes,
    status: UserStatus,
}

/// What `user set-password --json` prints.
#[derive(Serialize)]
struct PasswordSet<'a> {
    username: &'a Username,
    password_changed: bool,
    sign_ins_ended: u64,
}

/// `portcullis user create`; `policy` is the server's password hashing
/// (from the configuration), run on a pool of the command's own.
///
/// # Errors
/// Invalid input, a taken username, refused hashing settings, or a
/// database failure.
pub async fn user_create(store: &SqlStore, args: UserCreate, policy: &PasswordPolicy) -> anyhow::Result<String> {
    let username = Username::parse(&args.username)?;
    let mut tokens = scope(&args.scope, "scope")?.to_string();
    if args.admin {
        tokens = format!("{tokens} {ADMIN_SCOPE}");
    }
    let input = NewUserInput {
        username,
        scope: scope(tokens.trim(), "scope")?,
        password: if args.no_password {
            None
        } else {
            Some(read_password(args.password_stdin)?)
        },
        email: args
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--email: {e}"))?,
        email_verified: args.email_verified,
    };
    let passwords = Passwords::new(policy)?;
    let user = ops::users::create(store, &Actor::Cli, input, policy, &passwords)
        .await
        .map_err(failed("cannot create the user"))?;
    let doc = Created {
        id: &user.id,
        username: &user.username,
        scope: &user.scope,
        status: user.status.into(),
    };
    let text = format!("id: {}\nusername: {}\nscope: {}\n", user.id, user.username, user.scope);
    render(&doc, args.json, text)
}

/// `portcullis user list`.
///
/// # Errors
/// A database failure.
pub async fn user_list(store: &SqlStore, json: bool) -> anyhow::Result<String> {
    let all = ops::users::list_all(store).await.map_err(failed("cannot list users"))?;
    let doc: Vec<User> = all.iter().map(User::from).collect();
    let text = table(&["USERNAME", "STATUS", "SCOPE", "ID"], &all, |u| {
        vec![
            u.username.to_string(),
            u.status.to_string(),
            u.scope.to_string(),
            u.id.clone(),
        ]
    });
    render(&doc, json, text)
}

/// `portcullis user disable NAME`.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_disable(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let done = ops::users::disable(store, &Actor::Cli, username)
        .await
        .map_err(failed("cannot disable"))?;
    let text = format!("user {username} disabled; {} sign-ins ended", done.ended);
    render(&UserDisabled::from(done), json, text)
}

/// `portcullis user set-password NAME`: also ends every sign-in. The
/// password is hashed on a pool of the command's own.
///
/// # Errors
/// An unknown user, a bad password, refused hashing settings, or a
/// database failure.
pub async fn user_set_password(
    store: &SqlStore,
    args: UserSetPassword,
    policy: &PasswordPolicy,
) -> anyhow::Result<String> {
    // An unknown name fails before the password is asked for.
    ops::users::show(store, &args.username)
        .await
        .map_err(failed("cannot read the user"))?;
    let password = read_password(args.password_stdin)?;
    let passwords = Passwords::new(policy)?;
    let done = ops::users::set_password(store, &Actor::Cli, &args.username, &password, policy, &passwords)
        .await
        .map_err(failed("cannot set the password"))?;
    let doc = PasswordSet {
        username: &done.user.username,
        password_changed: true,
        sign_ins_ended: done.ended,
    };
    let text = format!(
        "password of {} changed; {} sign-ins ended",
        done.user.username, done.ended
    );
    render(&doc, args.json, text)
}

/// `portcullis user revoke-tokens NAME`.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_revoke_tokens(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let done = ops::users::revoke_tokens(store, &Actor::Cli, username)
        .await
        .map_err(failed("cannot revoke"))?;
    let text = format!("{} sign-ins of {username} ended", done.ended);
    render(&UserTokensRevoked::from(done), json, text)
}

/// `portcullis user enable NAME`.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_enable(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let user = ops::lifecycle::enable(store, &Actor::Cli, username)
        .await
        .map_err(failed("cannot enable"))?;
    let text = format!("user {} enabled", user.username);
    render(&User::from(&user), json, text)
}

/// What `user delete --json` prints.
#[derive(Serialize)]
struct Deleted<'a> {
    username: &'a Username,
    deleted: bool,
    sign_ins_ended: u64,
}

/// `portcullis user delete NAME`.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_delete(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let done = ops::lifecycle::delete(store, &Actor::Cli, username)
        .await
        .map_err(failed("cannot delete"))?;
    let doc = Deleted {
        username: &done.user.username,
        deleted: true,
        sign_ins_ended: done.ended,
    };
    let text = format!("user {} deleted; {} sign-ins ended", done.user.username, done.ended);
    render(&doc, json, text)
}

/// `portcullis user show NAME`: the user and their second factor.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_show(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let user = ops::users::show(store, username)
        .await
        .map_err(failed("cannot read the user"))?;
    let factor = ops::mfa::status(store, &user.id)
        .await
        .map_err(failed("cannot read the user's second factor"))?;
    let totp = match &factor.totp {
        None => "none",
        Some(t) if t.confirmed_at.is_some() => "enrolled",
        Some(_) => "pending (not confirmed)",
    };
    let email = user.email.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let text = format!(
        "id: {}\nusername: {}\nstatus: {}\nscope: {}\nemail: {}{}\npassword: {}\nsecond factor: {}\nauthenticator: {totp}\nrecovery codes left: {}",
        user.id,
        user.username,
        user.status,
        user.scope,
        email,
        if user.email_verified_at.is_some() {
            " (verified)"
        } else {
            ""
        },
        if user.password_hash.is_some() { "set" } else { "none" },
        if factor.is_enrolled() { "yes" } else { "no" },
        factor.recovery_codes_left,
    );
    render(&User::with_mfa(&user, &factor), json, text)
}

/// `portcullis user mfa-reset NAME`: removes the second factor and ends
/// every sign-in.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_mfa_reset(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let done = ops::mfa::reset(store, &Actor::Cli, username)
        .await
        .map_err(failed("cannot reset the second factor"))?;
    let text = if done.removed {
        format!(
            "second factor of {} removed; {} sign-ins ended",
            done.user.username, done.ended
        )
    } else {
        format!(
            "{} had no second factor; {} sign-ins ended",
            done.user.username, done.ended
        )
    };
    render(&MfaReset::from(done), json, text)
}
