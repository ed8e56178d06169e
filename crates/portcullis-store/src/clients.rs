//! OAuth clients: the apps that call the token endpoint.

use async_trait::async_trait;

use crate::db::with_pool;
use crate::types::text_enum;
use crate::users::one_row;
use portcullis_domain::{ClientId, GrantTypes, Scopes, WebOrigins};

use crate::{SqlStore, StoreError, TokenHash, UnixTime};

text_enum! {
    /// Whether a client may obtain tokens.
    ClientStatus {
        /// May authenticate and obtain tokens.
        Active => "active",
        /// Cut off: authentication fails, its refresh tokens are refused.
        Revoked => "revoked",
    }
}

/// A registered client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The `client_id` (RFC 6749 §2.2).
    pub id: String,
    /// A human-readable name (RFC 7591 `client_name`).
    pub name: String,
    /// SHA-256 of the client secret; `None` for a public client, which
    /// authenticates with its `client_id` alone.
    pub secret_hash: Option<TokenHash>,
    /// The grant types the client may use.
    pub grant_types: GrantTypes,
    /// The scopes the client may request.
    pub scope: Scopes,
    /// The scopes granted when a request names none.
    pub default_scope: Scopes,
    /// Whether the client may call the introspection endpoint (RFC 7662).
    pub introspect: bool,
    /// For a browser client, the origins (`https://app.example`) whose
    /// pages may call the cookie endpoints; empty for every other client.
    pub web_origins: WebOrigins,
    /// Whether the client may obtain tokens.
    pub status: ClientStatus,
    /// Whether the account API may create users for this client (sign-up).
    pub allow_sign_up: bool,
    /// The scopes a user created by sign-up through this client holds.
    pub sign_up_scope: Scopes,
    /// The secret replaced by the last rotation, while its grace period
    /// runs.
    pub previous_secret: Option<PreviousSecret>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2
    /// `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    /// DPoP proofs must carry a current server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// A first-party client: may use the Authorization Challenge Endpoint.
    pub first_party: bool,
    /// Users without a second factor cannot sign in through this client.
    pub mfa_required: bool,
    /// When the client was registered.
    pub created_at: UnixTime,
    /// When the client was last changed.
    pub updated_at: UnixTime,
}

impl Client {
    /// Whether this client has no secret (RFC 6749 §2.1 public client).
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// The previous secret's hash if it is still accepted at `now`.
    #[must_use]
    pub fn previous_secret_at(&self, now: UnixTime) -> Option<TokenHash> {
        self.previous_secret.filter(|p| now < p.expires_at).map(|p| p.hash)
    }
}

/// A client secret replaced by a rotation that keeps working until
/// `expires_at`, so the client's deployments can move to the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSecret {
    /// SHA-256 of the replaced secret.
    pub hash: TokenHash,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
}

/// A change to a client; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    /// A new name.
    pub name: Option<String>,
    /// New grant types.
    pub grant_types: Option<GrantTypes>,
    /// New allowed scopes.
    pub scope: Option<Scopes>,
    /// New default scopes.
    pub default_scope: Option<Scopes>,
    /// Whether the client may introspect.
    pub introspect: Option<bool>,
    /// New browser origins.
    pub web_origins: Option<WebOrigins>,
    /// Whether sign-up is allowed.
    pub allow_sign_up: Option<bool>,
    /// New sign-up scopes.
    pub sign_up_scope: Option<Scopes>,
    /// Whether DPoP is required.
    pub dpop_bound_access_tokens: Option<bool>,
    /// Whether DPoP nonces are required.
    pub dpop_nonce_required: Option<bool>,
    /// Whether the client is first-party.
    pub first_party: Option<bool>,
    /// Whether a second factor is required.
    pub mfa_required: Option<bool>,
}

/// What is needed to register a client.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The `client_id` chosen by the caller (unique).
    pub id: ClientId,
    /// A human-readable name.
    pub name: String,
    /// SHA-256 of the secret, or `None` for a public client.
    pub secret_hash: Option<TokenHash>,
    /// The grant types.
    pub grant_types: GrantTypes,
    /// The allowed scopes.
    pub scope: Scopes,
    /// The default scopes.
    pub default_scope: Scopes,
    /// Whether the client may introspect tokens.
    pub introspect: bool,
    /// The browser origins (a browser client), or none.
    pub web_origins: WebOrigins,
    /// Whether sign-up through this client is allowed.
    pub allow_sign_up: bool,
    /// The scopes of users created by sign-up.
    pub sign_up_scope: Scopes,
    /// Whether every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// Whether DPoP proofs must carry a server nonce.
    pub dpop_nonce_required: bool,
    /// Whether the client is first-party (may use the Authorization
    /// Challenge Endpoint).
    pub first_party: bool,
    /// Whether users need a second factor to sign in through the client.
    pub mfa_required: bool,
}

/// Clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Registers an active client.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the `client_id` is taken.
    async fn create_client(&self, new: &NewClient, now: UnixTime) -> Result<Client, StoreError>;

    /// The client with this id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn client_by_id(&self, id: &str) -> Result<Client, StoreError>;

    /// Every client, ordered by id.
    ///
    /// # Errors
    /// Only database failures.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;

    /// Replaces the client's secret hash (secret rotation); the old secret
    /// stops working at once.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such client.
    async fn set_client_secret_hash(&self, id: &str, hash: TokenHash, now: UnixTime) -> Result<(), StoreError>;

    /// Replaces the secret of an active confidential client. With
    /// `grace_until`, the replaced secret keeps working until then (and a
    /// secret kept from an earlier rotation stops); without, it stops at
    /// once.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such client;
    /// [`StoreError::Conflict`] when it is revoked or public.
    async fn rotate_client_secret(
        &self,
        id: &str,
        hash: TokenHash,
        grace_until: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Client, StoreError>;

    /// Applies `changes` to an active client and returns it as changed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such client;
    /// [`StoreError::Conflict`] when it is revoked (revocation is final).
    async fn update_client(&self, id: &str, changes: &ClientChanges, now: UnixTime) -> Result<Client, StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<Vec<u8>>,
    grant_types: String,
    scope: String,
    default_scope: String,
    introspect: bool,
    web_origins: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    allow_sign_up: bool,
    sign_up_scope: String,
    prev_secret_hash: Option<Vec<u8>>,
    prev_secret_expires_at: Option<i64>,
    dpop_bound_access_tokens: bool,
    dpop_nonce_required: bool,
    first_party: bool,
    mfa_required: bool,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            secret_hash: r.secret_hash.as_deref().map(TokenHash::from_row).transpose()?,
            status: ClientStatus::from_row(&r.status)?,
            id: r.id,
            name: r.name,
            grant_types: GrantTypes::parse(&r.grant_types).map_err(|_| stored("grant_types"))?,
            scope: Scopes::parse(&r.scope).map_err(|_| stored("scope"))?,
            default_scope: Scopes::parse(&r.default_scope).map_err(|_| stored("default_scope"))?,
            introspect: r.introspect,
            web_origins: WebOrigins::parse(&r.web_origins).map_err(|_| stored("web_origins"))?,
            allow_sign_up: r.allow_sign_up,
            sign_up_scope: Scopes::parse(&r.sign_up_scope).map_err(|_| stored("sign_up_scope"))?,
            previous_secret: match (r.prev_secret_hash.as_deref(), r.prev_secret_expires_at) {
                (Some(h), Some(t)) => Some(PreviousSecret {
                    hash: TokenHash::from_row(h)?,
                    expires_at: UnixTime(t),
                }),
                _ => None,
            },
            dpop_bound_access_tokens: r.dpop_bound_access_tokens,
            dpop_nonce_required: r.dpop_nonce_required,
            first_party: r.first_party,
            mfa_required: r.mfa_required,
            created_at: UnixTime(r.created_at),
            updated_at: UnixTime(r.updated_at),
        })
    }
}

/// A stored value that does not parse: logged, and a backend error.
pub(crate) fn stored(column: &'static str) -> StoreError {
    tracing::error!(column, "malformed value in the database");
    StoreError::Backend
}

const COLUMNS: &str = "id, name, secret_hash, grant_types, scope, default_scope, introspect, status, created_at, \
                       updated_at, web_origins, allow_sign_up, sign_up_scope, prev_secret_hash, \
                       prev_secret_expires_at, dpop_bound_access_tokens, dpop_nonce_required, first_party, \
                       mfa_required";
/// [`COLUMNS`] qualified by the alias `c`, for joins.
pub(crate) const COLUMNS_C: &str = "c.id, c.name, c.secret_hash, c.grant_types, c.scope, c.default_scope, \
                                    c.introspect, c.status, c.created_at, c.updated_at, c.web_origins, \
                                    c.allow_sign_up, c.sign_up_scope, c.prev_secret_hash, c.prev_secret_expires_at, \
                                    c.dpop_bound_access_tokens, c.dpop_nonce_required, c.first_party, c.mfa_required";

impl ClientRow {
    /// The client whose columns start at `base` (in [`COLUMNS`] order).
    pub(crate) fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get(base)?,
            name: row.try_get(base + 1)?,
            secret_hash: row.try_get(base + 2)?,
            grant_types: row.try_get(base + 3)?,
            scope: row.try_get(base + 4)?,
            default_scope: row.try_get(base + 5)?,
            introspect: row.try_get(base + 6)?,
            status: row.try_get(base + 7)?,
            created_at: row.try_get(base + 8)?,
            updated_at: row.try_get(base + 9)?,
            web_origins: row.try_get(base + 10)?,
            allow_sign_up: row.try_get(base + 11)?,
            sign_up_scope: row.try_get(base + 12)?,
            prev_secret_hash: row.try_get(base + 13)?,
            prev_secret_expires_at: row.try_get(base + 14)?,
            dpop_bound_access_tokens: row.try_get(base + 15)?,
            dpop_nonce_required: row.try_get(base + 16)?,
            first_party: row.try_get(base + 17)?,
            mfa_required: row.try_get(base + 18)?,
        })
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn create_client(&self, new: &NewClient, now: UnixTime) -> Result<Client, StoreError> {
        let sql = format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, NULL, NULL, $13, $14, $15, $16) \
             RETURNING {COLUMNS}"
        );
        let row: ClientRow = with_pool!(&self.write, |c| {
            sqlx::query_as(&sql)
                .bind(new.id.as_str())
                .bind(&new.name)
                .bind(new.secret_hash.map(|h| h.0.to_vec()))
                .bind(new.grant_types.to_string())
                .bind(new.scope.to_string())
                .bind(new.default_scope.to_string())
                .bind(new.introspect)
                .bind(ClientStatus::Active.as_str())
                .bind(now.0)
                .bind(new.web_origins.to_string())
                .bind(new.allow_sign_up)
                .bind(new.sign_up_scope.to_string())
                .bind(new.dpop_bound_access_tokens)
                .bind(new.dpop_nonce_required)
                .bind(new.first_party)
                .bind(new.mfa_required)
                .fetch_one(c)
                .await?
        });
        row.try_into()
    }

    async fn client_by_id(&self, id: &str) -> Result<Client, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
        let row: ClientRow = with_pool!(&self.read, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await?);
        row.try_into()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM clients ORDER BY id");
        let rows: Vec<ClientRow> = with_pool!(&self.read, |c| sqlx::query_as(&sql).fetch_all(c).await?);
        rows.into_iter().map(Client::try_from).collect()
    }

    async fn set_client_secret_hash(&self, id: &str, hash: TokenHash, now: UnixTime) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query(
                "UPDATE clients SET secret_hash = $1, prev_secret_hash = NULL, prev_secret_expires_at = NULL, \
                 updated_at = $2 WHERE id = $3",
            )
            .bind(hash.0.to_vec())
            .bind(now.0)
            .bind(id)
            .execute(c)
            .await?
            .rows_affected()
        });
        one_row(done)
    }

    async fn rotate_client_secret(
        &self,
        id: &str,
        hash: TokenHash,
        grace_until: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Client, StoreError> {
        let sql = format!(
            "UPDATE clients SET prev_secret_hash = CASE WHEN $2 IS NULL THEN NULL ELSE secret_hash END, \
             prev_secret_expires_at = $2, secret_hash = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'active' AND secret_hash IS NOT NULL RETURNING {COLUMNS}"
        );
        let row: Option<ClientRow> = with_pool!(&self.write, |c| {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(grace_until.map(|t| t.0))
                .bind(hash.0.to_vec())
                .bind(now.0)
                .fetch_optional(c)
                .await?
        });
        match row {
            Some(row) => row.try_into(),
            None => self.client_by_id(id).await.and(Err(StoreError::Conflict)),
        }
    }

    async fn update_client(&self, id: &str, changes: &ClientChanges, now: UnixTime) -> Result<Client, StoreError> {
        let sql = format!(
            "UPDATE clients SET name = COALESCE($2, name), grant_types = COALESCE($3, grant_types), \
             scope = COALESCE($4, scope), default_scope = COALESCE($5, default_scope), \
             introspect = COALESCE($6, introspect), web_origins = COALESCE($7, web_origins), \
             allow_sign_up = COALESCE($8, allow_sign_up), sign_up_scope = COALESCE($9, sign_up_scope), \
             dpop_bound_access_tokens = COALESCE($11, dpop_bound_access_tokens), \
             dpop_nonce_required = COALESCE($12, dpop_nonce_required), \
             first_party = COALESCE($13, first_party), mfa_required = COALESCE($14, mfa_required), \
             updated_at = $10 WHERE id = $1 AND status = 'active' RETURNING {COLUMNS}"
        );
        let row: Option<ClientRow> = with_pool!(&self.write, |c| {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(changes.name.as_deref())
                .bind(changes.grant_types.as_ref().map(ToString::to_string))
                .bind(changes.scope.as_ref().map(ToString::to_string))
                .bind(changes.default_scope.as_ref().map(ToString::to_string))
                .bind(changes.introspect)
                .bind(changes.web_origins.as_ref().map(ToString::to_string))
                .bind(changes.allow_sign_up)
                .bind(changes.sign_up_scope.as_ref().map(ToString::to_string))
                .bind(now.0)
                .bind(changes.dpop_bound_access_tokens)
                .bind(changes.dpop_nonce_required)
                .bind(changes.first_party)
                .bind(changes.mfa_required)
                .fetch_optional(c)
                .await?
        });
        match row {
            Some(row) => row.try_into(),
            None => self.client_by_id(id).await.and(Err(StoreError::Conflict)),
        }
    }
}
