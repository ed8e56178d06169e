//! Clients: register, list, show, revoke, rotate the secret.

use portcullis_domain::{AuditAction, ClientId, GrantType, GrantTypes, Scopes, WebOrigins};
use portcullis_store::{Client, NewClient, Store, StoreError, UnixTime};
use portcullis_token::secret::OpaqueSecret;

use super::{Actor, OpsError, not_found, record};

/// A client to register.
#[derive(Debug)]
pub struct NewClientInput {
    /// The client id; a random one when `None`.
    pub id: Option<ClientId>,
    /// A human-readable name.
    pub name: String,
    /// A public client (mobile or browser app): no secret.
    pub public: bool,
    /// The origins of a browser client (which is public); empty otherwise.
    pub web: WebOrigins,
    /// The grant types it may use; empty means every one.
    pub grants: GrantTypes,
    /// The scopes it may request.
    pub scope: Scopes,
    /// Granted when a request names none; `None` means all of `scope`.
    pub default_scope: Option<Scopes>,
    /// Whether it may call the introspection endpoint (confidential
    /// clients only).
    pub introspect: bool,
}

/// A registered client, with its secret (confidential clients only),
/// which is shown this once and stored only hashed.
#[derive(Debug)]
pub struct CreatedClient {
    /// The stored client.
    pub client: Client,
    /// The secret, for a confidential client.
    pub secret: Option<OpaqueSecret>,
}

/// Registers a client; audited as `client.create`.
///
/// # Errors
/// [`OpsError::DefaultScopeTooWide`], [`OpsError::IntrospectNeedsSecret`]
/// for a public client, [`OpsError::ClientExists`], or a store failure.
pub async fn create(store: &dyn Store, actor: &Actor, input: NewClientInput) -> Result<CreatedClient, OpsError> {
    let public = input.public || !input.web.is_empty();
    let default_scope = input.default_scope.unwrap_or_else(|| input.scope.clone());
    if !default_scope.is_subset_of(&input.scope) {
        return Err(OpsError::DefaultScopeTooWide);
    }
    if public && input.introspect {
        return Err(OpsError::IntrospectNeedsSecret);
    }
    let id = match input.id {
        Some(id) => id,
        None => ClientId::parse(&OpaqueSecret::generate().expose()[..22])
            .unwrap_or_else(|_| unreachable!("base64url text is a valid client id")),
    };
    let grant_types = if input.grants.is_empty() {
        GrantType::ALL.into_iter().collect()
    } else {
        input.grants
    };
    let secret = (!public).then(OpaqueSecret::generate);
    let new = NewClient {
        id,
        name: input.name,
        secret_hash: secret.as_ref().map(OpaqueSecret::hash),
        grant_types,
        scope: input.scope,
        default_scope,
        introspect: input.introspect,
        web_origins: input.web,
    };
    let client = store.create_client(&new, UnixTime::now()).await.map_err(|e| match e {
        StoreError::Conflict => OpsError::ClientExists(new.id.to_string()),
        other => OpsError::Store(other),
    })?;
    record(store, actor, AuditAction::ClientCreate, &client.id).await;
    Ok(CreatedClient { client, secret })
}

/// Every client.
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store) -> Result<Vec<Client>, OpsError> {
    Ok(store.list_clients().await?)
}

/// One client.
///
/// # Errors
/// [`OpsError::NoClient`] or a store failure.
pub async fn show(store: &dyn Store, id: &str) -> Result<Client, OpsError> {
    store
        .client_by_id(id)
        .await
        .map_err(|e| not_found(e, || OpsError::NoClient(id.to_owned())))
}

/// Revokes a client: no new tokens, its sign-ins end, the revocation feed
/// gets an entry. Audited as `client.revoke`. Returns the number of
/// sign-ins ended (0 when it was revoked already).
///
/// # Errors
/// [`OpsError::NoClient`] or a store failure.
pub async fn revoke(store: &dyn Store, actor: &Actor, id: &str) -> Result<u64, OpsError> {
    let ended = store
        .revoke_client(id, UnixTime::now())
        .await
        .map_err(|e| not_found(e, || OpsError::NoClient(id.to_owned())))?;
    record(store, actor, AuditAction::ClientRevoke, id).await;
    Ok(ended)
}

/// Replaces a confidential client's secret (the old one stops working at
/// once) and returns the new one, shown this once. Audited as
/// `client.rotate_secret`.
///
/// # Errors
/// [`OpsError::NoClient`], [`OpsError::PublicClient`] or a store failure.
pub async fn rotate_secret(store: &dyn Store, actor: &Actor, id: &str) -> Result<OpaqueSecret, OpsError> {
    if show(store, id).await?.is_public() {
        return Err(OpsError::PublicClient(id.to_owned()));
    }
    let secret = OpaqueSecret::generate();
    store
        .set_client_secret_hash(id, secret.hash(), UnixTime::now())
        .await
        .map_err(|e| not_found(e, || OpsError::NoClient(id.to_owned())))?;
    record(store, actor, AuditAction::ClientRotateSecret, id).await;
    Ok(secret)
}
