//! Clients: register, list, show, change, revoke, rotate the secret.
//!
//! Revocation is final: a revoked client cannot be changed, re-activated
//! or given a new secret; register a new one instead.

use portcullis_domain::{ADMIN_SCOPE, AuditAction, ClientId, GrantType, GrantTypes, Scopes, WebOrigins};
use portcullis_store::{Client, ClientChanges, NewClient, Store, StoreError, UnixTime};
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
    /// Whether users may sign up through it (`POST /account/v1/sign-up`).
    pub allow_sign_up: bool,
    /// The scopes of users who sign up through it (never the admin scope).
    pub sign_up_scope: Scopes,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// A first-party client: may use the Authorization Challenge Endpoint.
    pub first_party: bool,
    /// Users without a second factor cannot sign in through it.
    pub mfa_required: bool,
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
    check_sign_up_scope(&input.sign_up_scope)?;
    let id = match input.id {
        Some(id) => id,
        None => ClientId::parse(&OpaqueSecret::generate().expose()[..22])
            .unwrap_or_else(|_| unreachable!("base64url text is a valid client id")),
    };
    let grant_types = if input.grants.is_empty() {
        GrantType::DEFAULT.into_iter().collect()
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
        allow_sign_up: input.allow_sign_up,
        sign_up_scope: input.sign_up_scope,
        dpop_bound_access_tokens: input.dpop_bound_access_tokens,
        dpop_nonce_required: input.dpop_nonce_required,
        first_party: input.first_party,
        mfa_required: input.mfa_required,
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

/// The default grace period of a rotated secret: a day, for the
/// client's deployments to move to the new one.
pub const DEFAULT_SECRET_GRACE_SECS: u64 = 24 * 3600;
/// The longest grace period a rotation may give the old secret.
pub const MAX_SECRET_GRACE_SECS: u64 = 30 * 24 * 3600;

/// A rotated secret, shown this once.
#[derive(Debug)]
pub struct RotatedSecret {
    /// The new secret.
    pub secret: OpaqueSecret,
    /// Until when the previous secret keeps working; `None` when it
    /// stopped at once.
    pub previous_expires_at: Option<UnixTime>,
}

/// Replaces a confidential client's secret and returns the new one, shown
/// this once. The old secret keeps working for `grace_secs` seconds (0:
/// it stops at once, as after a leak); a secret kept from an earlier
/// rotation stops now. Audited as `client.rotate_secret`.
///
/// # Errors
/// [`OpsError::NoClient`], [`OpsError::PublicClient`],
/// [`OpsError::ClientRevoked`], [`OpsError::GraceTooLong`] or a store
/// failure.
pub async fn rotate_secret(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    grace_secs: u64,
) -> Result<RotatedSecret, OpsError> {
    if grace_secs > MAX_SECRET_GRACE_SECS {
        return Err(OpsError::GraceTooLong(MAX_SECRET_GRACE_SECS));
    }
    let client = show(store, id).await?;
    if client.is_public() {
        return Err(OpsError::PublicClient(id.to_owned()));
    }
    let secret = OpaqueSecret::generate();
    let now = UnixTime::now();
    let grace_until = (grace_secs > 0).then(|| now.plus(i64::try_from(grace_secs).unwrap_or(i64::MAX)));
    store
        .rotate_client_secret(id, secret.hash(), grace_until, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => OpsError::ClientRevoked(id.to_owned()),
            other => not_found(other, || OpsError::NoClient(id.to_owned())),
        })?;
    record(store, actor, AuditAction::ClientRotateSecret, id).await;
    Ok(RotatedSecret {
        secret,
        previous_expires_at: grace_until,
    })
}

/// A change to a client; `None` fields stay as they are.
#[derive(Debug, Default)]
pub struct ClientEdit {
    /// A new name.
    pub name: Option<String>,
    /// New grant types (not empty).
    pub grants: Option<GrantTypes>,
    /// New allowed scopes.
    pub scope: Option<Scopes>,
    /// New default scopes (within the allowed ones).
    pub default_scope: Option<Scopes>,
    /// Whether it may introspect (confidential clients only).
    pub introspect: Option<bool>,
    /// New browser origins (public clients only).
    pub web: Option<WebOrigins>,
    /// Whether users may sign up through it.
    pub allow_sign_up: Option<bool>,
    /// The scopes of users who sign up through it.
    pub sign_up_scope: Option<Scopes>,
    /// Whether every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: Option<bool>,
    /// Whether DPoP proofs must carry a server nonce.
    pub dpop_nonce_required: Option<bool>,
    /// Whether it is a first-party client.
    pub first_party: Option<bool>,
    /// Whether users need a second factor to sign in through it.
    pub mfa_required: Option<bool>,
}

/// Changes a client's settings. A confidential client stays confidential
/// and a public one public (a secret cannot be added or taken away).
/// Sign-ins stay; narrower scopes apply to new sign-ins (refreshes keep
/// what was granted, within the client's scope when it is checked).
/// Audited as `client.update`.
///
/// # Errors
/// [`OpsError::NoClient`], [`OpsError::ClientRevoked`],
/// [`OpsError::DefaultScopeTooWide`], [`OpsError::IntrospectNeedsSecret`],
/// [`OpsError::Invalid`] or a store failure.
pub async fn update(store: &dyn Store, actor: &Actor, id: &str, edit: ClientEdit) -> Result<Client, OpsError> {
    let client = show(store, id).await?;
    if client.status == portcullis_store::ClientStatus::Revoked {
        return Err(OpsError::ClientRevoked(id.to_owned()));
    }
    let scope = edit.scope.as_ref().unwrap_or(&client.scope);
    let default_scope = match (&edit.default_scope, &edit.scope) {
        (Some(d), _) => d.clone(),
        // A narrower scope narrows the default with it.
        (None, Some(s)) => client.default_scope.intersection(s),
        (None, None) => client.default_scope.clone(),
    };
    if !default_scope.is_subset_of(scope) {
        return Err(OpsError::DefaultScopeTooWide);
    }
    if edit.introspect == Some(true) && client.is_public() {
        return Err(OpsError::IntrospectNeedsSecret);
    }
    if edit.web.as_ref().is_some_and(|w| !w.is_empty()) && !client.is_public() {
        return Err(OpsError::Invalid("web origins need a public client"));
    }
    if edit.grants.as_ref().is_some_and(GrantTypes::is_empty) {
        return Err(OpsError::Invalid("a client needs at least one grant type"));
    }
    if let Some(sign_up) = &edit.sign_up_scope {
        check_sign_up_scope(sign_up)?;
    }
    if edit
        .name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > MAX_NAME_LEN)
    {
        return Err(OpsError::Invalid("client_name must be 1 to 200 characters"));
    }
    let changes = ClientChanges {
        name: edit.name,
        grant_types: edit.grants,
        scope: edit.scope,
        default_scope: Some(default_scope),
        introspect: edit.introspect,
        web_origins: edit.web,
        allow_sign_up: edit.allow_sign_up,
        sign_up_scope: edit.sign_up_scope,
        dpop_bound_access_tokens: edit.dpop_bound_access_tokens,
        dpop_nonce_required: edit.dpop_nonce_required,
        first_party: edit.first_party,
        mfa_required: edit.mfa_required,
    };
    let updated = store
        .update_client(id, &changes, UnixTime::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict => OpsError::ClientRevoked(id.to_owned()),
            other => not_found(other, || OpsError::NoClient(id.to_owned())),
        })?;
    record(store, actor, AuditAction::ClientUpdate, id).await;
    Ok(updated)
}

/// Longest client name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Sign-up must never hand out the admin right.
fn check_sign_up_scope(scope: &Scopes) -> Result<(), OpsError> {
    if scope.contains(ADMIN_SCOPE) {
        return Err(OpsError::Invalid("the sign-up scope may not hold portcullis:admin"));
    }
    Ok(())
}
