//! The admin commands, working straight on the database.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use portcullis_domain::{AuditAction, ClientId, GrantType, GrantTypes, Scopes, Username, WebOrigin};
use portcullis_store::{
    AuditStore as _, Client, ClientStore as _, KeyStore as _, NewAuditEvent, NewClient, NewUser, RevocationStore as _,
    RevokeReason, SqlStore, StoreError, UnixTime, User, UserStatus, UserStore as _, UserUpdate,
};
use portcullis_token::password::Passwords;
use portcullis_token::secret::OpaqueSecret;
use serde_json::json;

use crate::cli::{ClientCreate, UserCreate, UserSetPassword};

/// The admin scope: holders may use the admin API.
pub const ADMIN_SCOPE: &str = "portcullis:admin";

fn scope(text: &str, what: &str) -> anyhow::Result<Scopes> {
    Scopes::parse(text.trim()).map_err(|_| anyhow::anyhow!("invalid {what} syntax: {text:?} (RFC 6749 §3.3)"))
}

/// `portcullis client create`: prints the client, with its secret shown once.
///
/// # Errors
/// Invalid input, a taken client_id, or a database failure.
pub async fn client_create(store: &SqlStore, args: ClientCreate) -> anyhow::Result<String> {
    let allowed = scope(&args.scope, "scope")?;
    let default = match &args.default_scope {
        Some(d) => scope(d, "default scope")?,
        None => allowed.clone(),
    };
    if !default.is_subset_of(&allowed) {
        bail!("--default-scope must be within --scope");
    }
    let origins = args
        .origins
        .iter()
        .map(|o| web_origin(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.web && args.introspect {
        bail!("--introspect needs a confidential client; a browser client (--web) is public");
    }
    let public = args.public || args.web;
    if args.public && args.introspect {
        bail!("--introspect needs a confidential client (it authenticates with a secret)");
    }
    let id = match args.client_id {
        Some(id) => ClientId::parse(&id)
            .map_err(|_| anyhow::anyhow!("--client-id must be 1 to 64 characters of A-Z a-z 0-9 - _ ."))?,
        None => ClientId::parse(&OpaqueSecret::generate().expose()[..22]).context("generated client id")?,
    };
    let grants: GrantTypes = if args.grants.is_empty() {
        GrantType::ALL.into_iter().collect()
    } else {
        GrantTypes::parse(&args.grants.join(" ")).context("--grant")?
    };
    let secret = (!public).then(OpaqueSecret::generate);
    let new = NewClient {
        id,
        name: args.name,
        secret_hash: secret.as_ref().map(OpaqueSecret::hash),
        grant_types: grants.clone(),
        scope: allowed,
        default_scope: default,
        introspect: args.introspect,
        web_origins: origins.iter().cloned().collect(),
    };
    let client = store.create_client(&new, UnixTime::now()).await.map_err(|e| match e {
        StoreError::Conflict => anyhow::anyhow!("a client with id {:?} exists already", new.id),
        other => anyhow::anyhow!("cannot create the client: {other}"),
    })?;
    let method = if secret.is_some() {
        "client_secret_basic"
    } else {
        "none"
    };
    let mut doc = json!({
        "client_id": client.id,
        "client_name": client.name,
        "grant_types": grants,
        "scope": client.scope,
        "token_endpoint_auth_method": method,
    });
    if !origins.is_empty() {
        doc["web_origins"] = json!(origins);
    }
    if let Some(s) = &secret {
        doc["client_secret"] = json!(s.expose());
    }
    if args.json {
        return Ok(doc.to_string());
    }
    let mut out = format!(
        "client_id: {}\nclient_name: {}\ngrant_types: {}\nscope: {}\ntoken_endpoint_auth_method: {method}\n",
        client.id, client.name, client.grant_types, client.scope
    );
    if !origins.is_empty() {
        out.push_str(&format!("web_origins: {}\n", new.web_origins));
    }
    if let Some(s) = &secret {
        out.push_str(&format!(
            "client_secret: {}\n(the secret is shown only now: store it safely)\n",
            s.expose()
        ));
    }
    Ok(out)
}

/// `portcullis user create`; `policy` is the server's password hashing
/// (from the configuration).
///
/// # Errors
/// Invalid input, a taken username, or a database failure.
pub async fn user_create(
    store: &SqlStore,
    args: UserCreate,
    policy: &portcullis_token::password::PasswordPolicy,
) -> anyhow::Result<String> {
    let username = Username::parse(&args.username)?;
    let mut tokens = scope(&args.scope, "scope")?.sorted().join(" ");
    if args.admin {
        tokens = format!("{tokens} {ADMIN_SCOPE}");
    }
    let user_scope = scope(tokens.trim(), "scope")?;
    let hash = new_password_hash(args.password_stdin, policy).await?;
    let new = NewUser {
        username: username.clone(),
        password_hash: hash,
        scope: user_scope,
    };
    let user = store.create_user(&new, UnixTime::now()).await.map_err(|e| match e {
        StoreError::Conflict => anyhow::anyhow!("a user named {:?} exists already", username.as_str()),
        other => anyhow::anyhow!("cannot create the user: {other}"),
    })?;
    let doc = json!({"id": user.id, "username": user.username, "scope": user.scope, "status": user.status.as_str()});
    if args.json {
        Ok(doc.to_string())
    } else {
        Ok(format!(
            "id: {}\nusername: {}\nscope: {}\n",
            user.id, user.username, user.scope
        ))
    }
}

/// Reads a new password (stdin or prompt), checks its length and hashes it
/// with the server's settings.
async fn new_password_hash(
    from_stdin: bool,
    policy: &portcullis_token::password::PasswordPolicy,
) -> anyhow::Result<String> {
    let password = read_password(from_stdin)?;
    if password.is_empty() || password.len() > policy.max_bytes {
        bail!("the password must be 1 to {} bytes", policy.max_bytes);
    }
    let hasher = Passwords::new(policy).context("password policy")?;
    hasher
        .hash(&password)
        .await
        .map_err(|_| anyhow::anyhow!("password hashing failed"))
}

/// The password from the first line of stdin, or from a prompt without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(line.strip_suffix('\r').unwrap_or(line).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for the password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Repeat: ").context("reading the password")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// Records an admin action done from the command line.
async fn audit(store: &SqlStore, action: AuditAction, client_id: Option<&str>, subject: Option<&str>) {
    let event = NewAuditEvent {
        actor: Some("cli".to_owned()),
        client_id: client_id.map(str::to_owned),
        subject: subject.map(str::to_owned),
        ..NewAuditEvent::new(action)
    };
    store.record_audit_or_warn(&event, UnixTime::now()).await;
}

/// A client as RFC 7591 names its fields (never its secret).
#[must_use]
pub fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id,
        "client_name": c.name,
        "grant_types": c.grant_types,
        "scope": c.scope,
        "default_scope": c.default_scope,
        "token_endpoint_auth_method": if c.is_public() { "none" } else { "client_secret_basic" },
        "introspect": c.introspect,
        "web_origins": c.web_origins,
        "status": c.status.as_str(),
        "created_at": c.created_at.0,
    })
}

/// Parses a `--origin` value (see [`WebOrigin::parse`]).
///
/// # Errors
/// When `raw` is not an acceptable origin, saying why.
pub fn web_origin(raw: &str) -> anyhow::Result<WebOrigin> {
    WebOrigin::parse(raw).map_err(|e| anyhow::anyhow!("--origin {raw:?}: {e}"))
}

/// A user as the admin tools show it (never its password hash).
#[must_use]
pub fn user_json(u: &User) -> serde_json::Value {
    json!({"id": u.id, "username": u.username, "scope": u.scope, "status": u.status.as_str(), "created_at": u.created_at.0})
}

fn render(doc: serde_json::Value, json: bool, text: String) -> String {
    if json { doc.to_string() } else { text }
}

async fn client(store: &SqlStore, id: &str) -> anyhow::Result<Client> {
    store.client_by_id(id).await.map_err(|e| match e {
        StoreError::NotFound => anyhow::anyhow!("no client with id {id:?}"),
        other => anyhow::anyhow!("cannot read the client: {other}"),
    })
}

async fn user(store: &SqlStore, username: &str) -> anyhow::Result<User> {
    store.user_by_username(username).await.map_err(|e| match e {
        StoreError::NotFound => anyhow::anyhow!("no user named {username:?}"),
        other => anyhow::anyhow!("cannot read the user: {other}"),
    })
}

/// `portcullis client list`.
///
/// # Errors
/// A database failure.
pub async fn client_list(store: &SqlStore, json: bool) -> anyhow::Result<String> {
    let clients = store
        .list_clients()
        .await
        .map_err(|e| anyhow::anyhow!("cannot list clients: {e}"))?;
    let doc = serde_json::Value::Array(clients.iter().map(client_json).collect());
    let text = clients
        .iter()
        .map(|c| format!("{}\t{}\t{}\t{}\t{}", c.id, c.status, c.grant_types, c.scope, c.name))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(render(doc, json, text))
}

/// `portcullis client show ID`.
///
/// # Errors
/// An unknown client or a database failure.
pub async fn client_show(store: &SqlStore, id: &str, json: bool) -> anyhow::Result<String> {
    let c = client(store, id).await?;
    let doc = client_json(&c);
    let text = doc.as_object().map_or_else(String::new, |o| {
        o.iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(render(doc, json, text))
}

/// `portcullis client revoke ID`.
///
/// # Errors
/// An unknown client or a database failure.
pub async fn client_revoke(store: &SqlStore, id: &str, json: bool) -> anyhow::Result<String> {
    client(store, id).await?;
    let ended = store
        .revoke_client(id, UnixTime::now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot revoke: {e}"))?;
    audit(store, AuditAction::ClientRevoke, Some(id), Some(id)).await;
    Ok(render(
        json!({"client_id": id, "status": "revoked", "sign_ins_ended": ended}),
        json,
        format!("client {id} revoked; {ended} sign-ins ended"),
    ))
}

/// `portcullis client rotate-secret ID`.
///
/// # Errors
/// An unknown or public client, or a database failure.
pub async fn client_rotate_secret(store: &SqlStore, id: &str, json: bool) -> anyhow::Result<String> {
    let c = client(store, id).await?;
    if c.is_public() {
        bail!("client {id:?} is public: it has no secret to rotate");
    }
    let secret = OpaqueSecret::generate();
    store
        .set_client_secret_hash(id, secret.hash(), UnixTime::now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot rotate: {e}"))?;
    audit(store, AuditAction::ClientRotateSecret, Some(id), Some(id)).await;
    Ok(render(
        json!({"client_id": id, "client_secret": secret.expose()}),
        json,
        format!(
            "client_id: {id}\nclient_secret: {}\n(the secret is shown only now: store it safely)",
            secret.expose()
        ),
    ))
}

/// `portcullis user list`.
///
/// # Errors
/// A database failure.
pub async fn user_list(store: &SqlStore, json: bool) -> anyhow::Result<String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_users(after.as_deref(), 500)
            .await
            .map_err(|e| anyhow::anyhow!("cannot list users: {e}"))?;
        let done = page.len() < 500;
        after = page.last().map(|u| u.username.to_string());
        all.extend(page);
        if done {
            break;
        }
    }
    let doc = serde_json::Value::Array(all.iter().map(user_json).collect());
    let text = all
        .iter()
        .map(|u| format!("{}\t{}\t{}\t{}", u.username, u.status, u.scope, u.id))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(render(doc, json, text))
}

/// `portcullis user disable NAME`.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_disable(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let u = user(store, username).await?;
    let update = UserUpdate {
        status: Some(UserStatus::Disabled),
        password_hash: None,
    };
    let ended = store
        .update_and_revoke_user(&u.id, &update, RevokeReason::UserRevoked, UnixTime::now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot disable: {e}"))?;
    audit(store, AuditAction::UserDisable, None, Some(&u.id)).await;
    Ok(render(
        json!({"username": username, "status": "disabled", "sign_ins_ended": ended}),
        json,
        format!("user {username} disabled; {ended} sign-ins ended"),
    ))
}

/// `portcullis user set-password NAME`: also ends every sign-in.
///
/// # Errors
/// An unknown user, a bad password, or a database failure.
pub async fn user_set_password(
    store: &SqlStore,
    args: UserSetPassword,
    policy: &portcullis_token::password::PasswordPolicy,
) -> anyhow::Result<String> {
    let u = user(store, &args.username).await?;
    let hash = new_password_hash(args.password_stdin, policy).await?;
    let update = UserUpdate {
        status: None,
        password_hash: Some(hash),
    };
    let ended = store
        .update_and_revoke_user(&u.id, &update, RevokeReason::PasswordChanged, UnixTime::now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot set the password: {e}"))?;
    audit(store, AuditAction::UserSetPassword, None, Some(&u.id)).await;
    Ok(render(
        json!({"username": u.username, "password_changed": true, "sign_ins_ended": ended}),
        args.json,
        format!("password of {} changed; {ended} sign-ins ended", u.username),
    ))
}

/// `portcullis user revoke-tokens NAME`.
///
/// # Errors
/// An unknown user or a database failure.
pub async fn user_revoke_tokens(store: &SqlStore, username: &str, json: bool) -> anyhow::Result<String> {
    let u = user(store, username).await?;
    let ended = store
        .revoke_user(&u.id, RevokeReason::UserRevoked, UnixTime::now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot revoke: {e}"))?;
    audit(store, AuditAction::UserRevokeTokens, None, Some(&u.id)).await;
    Ok(render(
        json!({"username": username, "sign_ins_ended": ended}),
        json,
        format!("{ended} sign-ins of {username} ended"),
    ))
}

/// A signing key as the admin tools show it (public parts only).
#[must_use]
pub fn key_json(k: &portcullis_store::SigningKey) -> serde_json::Value {
    json!({"kid": k.kid, "alg": k.alg, "state": k.state.as_str(), "created_at": k.created_at.0, "retired_at": k.retired_at.map(|t| t.0)})
}

/// `portcullis keys list`.
///
/// # Errors
/// A database failure.
pub async fn keys_list(store: &SqlStore, json: bool) -> anyhow::Result<String> {
    let keys = store
        .signing_keys()
        .await
        .map_err(|e| anyhow::anyhow!("cannot list keys: {e}"))?;
    let doc = serde_json::Value::Array(keys.iter().map(key_json).collect());
    let text = keys
        .iter()
        .map(|k| format!("{}\t{}\t{}\tcreated {}", k.kid, k.alg, k.state, k.created_at.0))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(render(doc, json, text))
}

/// `portcullis keys rotate`.
///
/// # Errors
/// Key generation or a database failure.
pub async fn keys_rotate(store: &SqlStore, alg: portcullis_token::keys::Alg, json: bool) -> anyhow::Result<String> {
    let new = portcullis_token::keys::generate(alg, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = store
        .insert_signing_key(&new, UnixTime::now())
        .await
        .map_err(|e| anyhow::anyhow!("cannot store the key: {e}"))?;
    audit(store, AuditAction::KeysRotate, None, Some(&key.kid)).await;
    Ok(render(
        key_json(&key),
        json,
        format!(
            "new {} key {}: published now, signing once the publication delay has passed",
            key.alg, key.kid
        ),
    ))
}

/// An audit event as the admin tools show it.
#[must_use]
pub fn event_json(e: &portcullis_store::AuditEvent) -> serde_json::Value {
    json!({"id": e.id, "at": e.at.0, "action": e.action, "actor": e.actor, "client_id": e.client_id,
           "subject": e.subject, "ip": e.ip})
}

/// `portcullis audit`.
///
/// # Errors
/// A database failure.
pub async fn audit_list(store: &SqlStore, limit: u32, before: Option<i64>, json: bool) -> anyhow::Result<String> {
    let events = store
        .audit_events(before, limit.clamp(1, 10_000))
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the audit log: {e}"))?;
    let doc = serde_json::Value::Array(events.iter().map(event_json).collect());
    let text = events
        .iter()
        .map(|e| {
            format!(
                "{}\t{}\t{}\tactor={}\tclient={}\tsubject={}\tip={}",
                e.id,
                e.at.0,
                e.action,
                e.actor.as_deref().unwrap_or("-"),
                e.client_id.as_deref().unwrap_or("-"),
                e.subject.as_deref().unwrap_or("-"),
                e.ip.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(render(doc, json, text))
}
