//! `portcullis client …`

use anyhow::Context as _;
use portcullis_domain::{ClientId, GrantTypes, Scopes, WebOrigin, WebOrigins};
use portcullis_store::SqlStore;
use serde::Serialize;

use super::{failed, render, scope, table};
use crate::admin_api::clients::{AuthMethod, Client, ClientRevoked};
use crate::cli::{ClientCreate, ClientRotateSecret};
use crate::ops::clients::NewClientInput;
use crate::ops::{self, Actor, OpsError};

/// What `client create --json` prints: RFC 7591 names, with the secret
/// (shown only now) for a confidential client.
#[derive(Serialize)]
struct Created<'a> {
    client_id: &'a str,
    client_name: &'a str,
    grant_types: &'a GrantTypes,
    scope: &'a Scopes,
    token_endpoint_auth_method: AuthMethod,
    #[serde(skip_serializing_if = "WebOrigins::is_empty")]
    web_origins: &'a WebOrigins,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

/// What `client rotate-secret --json` prints.
#[derive(Serialize)]
struct Rotated<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<i64>,
}

const SHOWN_ONCE: &str = "(the secret is shown only now: store it safely)";

/// `portcullis client create`: prints the client, with its secret shown once.
///
/// # Errors
/// Invalid input, a taken client_id, or a database failure.
pub async fn client_create(store: &SqlStore, args: ClientCreate) -> anyhow::Result<String> {
    let allowed = scope(&args.scope, "scope")?;
    let default_scope = args
        .default_scope
        .as_deref()
        .map(|d| scope(d, "default scope"))
        .transpose()?;
    let web = args
        .origins
        .iter()
        .map(|o| WebOrigin::parse(o).map_err(|e| anyhow::anyhow!("--origin {o:?}: {e}")))
        .collect::<anyhow::Result<WebOrigins>>()?;
    let id = args
        .client_id
        .as_deref()
        .map(ClientId::parse)
        .transpose()
        .map_err(|_| anyhow::anyhow!("--client-id must be 1 to 64 characters of A-Z a-z 0-9 - _ ."))?;
    let input = NewClientInput {
        id,
        name: args.name,
        public: args.public || args.web,
        web,
        grants: GrantTypes::parse(&args.grants.join(" ")).context("--grant")?,
        scope: allowed,
        default_scope,
        introspect: args.introspect,
        allow_sign_up: args.allow_sign_up,
        sign_up_scope: scope(&args.sign_up_scope, "sign-up scope")?,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        dpop_nonce_required: args.dpop_nonce_required,
        first_party: args.first_party,
        mfa_required: args.mfa_required,
    };
    let created = ops::clients::create(store, &Actor::Cli, input)
        .await
        .map_err(|e| match e {
            OpsError::DefaultScopeTooWide => anyhow::anyhow!("--default-scope must be within --scope"),
            OpsError::IntrospectNeedsSecret if args.web => {
                anyhow::anyhow!("--introspect needs a confidential client; a browser client (--web) is public")
            }
            OpsError::IntrospectNeedsSecret => {
                anyhow::anyhow!("--introspect needs a confidential client (it authenticates with a secret)")
            }
            other => failed("cannot create the client")(other),
        })?;
    let (c, secret) = (&created.client, created.secret.as_ref().map(|s| s.expose()));
    let method = AuthMethod::of(c);
    let doc = Created {
        client_id: &c.id,
        client_name: &c.name,
        grant_types: &c.grant_types,
        scope: &c.scope,
        token_endpoint_auth_method: method,
        web_origins: &c.web_origins,
        client_secret: secret,
    };
    let method = serde_json::to_value(method)?;
    let mut out = format!(
        "client_id: {}\nclient_name: {}\ngrant_types: {}\nscope: {}\ntoken_endpoint_auth_method: {}\n",
        c.id,
        c.name,
        c.grant_types,
        c.scope,
        method.as_str().unwrap_or_default()
    );
    if !c.web_origins.is_empty() {
        out.push_str(&format!("web_origins: {}\n", c.web_origins));
    }
    if let Some(s) = secret {
        out.push_str(&format!("client_secret: {s}\n{SHOWN_ONCE}\n"));
    }
    render(&doc, args.json, out)
}

/// `portcullis client list`.
///
/// # Errors
/// A database failure.
pub async fn client_list(store: &SqlStore, json: bool) -> anyhow::Result<String> {
    let clients = ops::clients::list(store).await.map_err(failed("cannot list clients"))?;
    let doc: Vec<Client> = clients.iter().map(Client::from).collect();
    let text = table(
        &["CLIENT_ID", "TYPE", "STATUS", "GRANTS", "SCOPE", "NAME"],
        &clients,
        |c| {
            vec![
                c.id.to_string(),
                client_type(c).to_owned(),
                c.status.to_string(),
                c.grant_types.to_string(),
                c.scope.to_string(),
                c.name.clone(),
            ]
        },
    );
    render(&doc, json, text)
}

/// `portcullis client show ID`: one `key: value` line per field.
///
/// # Errors
/// An unknown client or a database failure.
pub async fn client_show(store: &SqlStore, id: &str, json: bool) -> anyhow::Result<String> {
    let c = ops::clients::show(store, id)
        .await
        .map_err(failed("cannot read the client"))?;
    let doc = serde_json::to_value(Client::from(&c))?;
    let text = doc.as_object().map_or_else(String::new, |o| {
        o.iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect::<Vec<_>>()
            .join("\n")
    });
    render(&doc, json, text)
}

/// `portcullis client revoke ID`.
///
/// # Errors
/// An unknown client or a database failure.
pub async fn client_revoke(store: &SqlStore, id: &str, json: bool) -> anyhow::Result<String> {
    let ended = ops::clients::revoke(store, &Actor::Cli, id)
        .await
        .map_err(failed("cannot revoke"))?;
    render(
        &ClientRevoked::new(id, ended),
        json,
        format!("client {id} revoked; {ended} sign-ins ended"),
    )
}

/// `portcullis client rotate-secret ID [--grace-period SECONDS]`.
///
/// # Errors
/// An unknown, public or revoked client, a grace period over the maximum,
/// or a database failure.
pub async fn client_rotate_secret(store: &SqlStore, args: ClientRotateSecret) -> anyhow::Result<String> {
    let id = args.id.as_str();
    let rotated = ops::clients::rotate_secret(store, &Actor::Cli, id, args.grace_period)
        .await
        .map_err(failed("cannot rotate"))?;
    let client_secret = rotated.secret.expose();
    let previous = match rotated.previous_expires_at {
        Some(t) => format!("the previous secret works until {} (Unix seconds)", t.0),
        None => "the previous secret no longer works".to_owned(),
    };
    render(
        &Rotated {
            client_id: id,
            client_secret,
            previous_secret_expires_at: rotated.previous_expires_at.map(|t| t.0),
        },
        args.json,
        format!("client_id: {id}\nclient_secret: {client_secret}\n{SHOWN_ONCE}\n{previous}"),
    )
}

/// `public` (a mobile or desktop app), `web` (a browser app, its refresh
/// token in a cookie) or `confidential` (a server-side app with a secret).
pub(crate) fn client_type(c: &portcullis_store::Client) -> &'static str {
    if !c.web_origins.is_empty() {
        "web"
    } else if c.is_public() {
        "public"
    } else {
        "confidential"
    }
}
