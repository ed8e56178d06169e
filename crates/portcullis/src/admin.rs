//! The admin commands, working straight on the database.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use portcullis_store::{ClientStore as _, NewClient, NewUser, SqlStore, StoreError, UnixTime, UserStore as _};
use portcullis_token::password::Passwords;
use portcullis_token::scope::Scopes;
use portcullis_token::secret::OpaqueSecret;
use serde_json::json;

use crate::cli::{ClientCreate, UserCreate};

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
    if args.public && args.introspect {
        bail!("--introspect needs a confidential client (it authenticates with a secret)");
    }
    let id = match args.client_id {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                bail!("--client-id must be 1 to 64 characters of A-Z a-z 0-9 - _ .");
            }
            id
        }
        None => OpaqueSecret::generate().expose()[..22].to_owned(),
    };
    let mut grants = if args.grants.is_empty() {
        vec!["password".to_owned(), "refresh_token".to_owned()]
    } else {
        args.grants
    };
    grants.sort();
    grants.dedup();
    let secret = (!args.public).then(OpaqueSecret::generate);
    let new = NewClient {
        id,
        name: args.name,
        secret_hash: secret.as_ref().map(OpaqueSecret::hash),
        grant_types: grants.join(" "),
        scope: allowed.to_string(),
        default_scope: default.to_string(),
        introspect: args.introspect,
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
    if let Some(s) = &secret {
        out.push_str(&format!(
            "client_secret: {}\n(the secret is shown only now: store it safely)\n",
            s.expose()
        ));
    }
    Ok(out)
}

/// `portcullis user create`.
///
/// # Errors
/// Invalid input, a taken username, or a database failure.
pub async fn user_create(store: &SqlStore, args: UserCreate) -> anyhow::Result<String> {
    let username = args.username.trim();
    if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
        bail!("the username must be 1 to 256 bytes without control characters");
    }
    let mut tokens = scope(&args.scope, "scope")?.sorted().join(" ");
    if args.admin {
        tokens = format!("{tokens} {ADMIN_SCOPE}");
    }
    let user_scope = scope(tokens.trim(), "scope")?;
    let password = read_password(args.password_stdin)?;
    let policy = args.hashing.policy();
    if password.is_empty() || password.len() > policy.max_bytes {
        bail!("the password must be 1 to {} bytes", policy.max_bytes);
    }
    let hasher = Passwords::new(&policy).context("password policy")?;
    let hash = hasher
        .hash(&password)
        .await
        .map_err(|_| anyhow::anyhow!("password hashing failed"))?;
    let new = NewUser {
        username: username.to_owned(),
        password_hash: hash,
        scope: user_scope.to_string(),
    };
    let user = store.create_user(&new, UnixTime::now()).await.map_err(|e| match e {
        StoreError::Conflict => anyhow::anyhow!("a user named {username:?} exists already"),
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
