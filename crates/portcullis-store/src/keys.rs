//! Signing keys for access tokens.

use std::fmt;

use async_trait::async_trait;

use crate::db::with_pool;
use crate::types::text_enum;
use crate::users::one_row;
use crate::{SqlStore, StoreError, UnixTime};

text_enum! {
    /// Where a key is in its life.
    KeyState {
        /// Signs new tokens (the newest active key does) and is published.
        Active => "active",
        /// Signs nothing; stays published until tokens it signed expire.
        Retired => "retired",
    }
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id (JWS `kid`).
    pub kid: String,
    /// JWS algorithm (`ES256`, `EdDSA`, `RS256`).
    pub alg: String,
    /// The public key as a JWK (JSON text), as published in the JWKS.
    pub public_jwk: String,
    /// The private key (PKCS#8 DER, encrypted when a key-encryption key is
    /// configured). Never printed.
    pub private_key: Vec<u8>,
    /// Active or retired.
    pub state: KeyState,
    /// When the key was created.
    pub created_at: UnixTime,
    /// When an active key is due to be retired by the schedule.
    pub retire_after: Option<UnixTime>,
    /// When the key was retired.
    pub retired_at: Option<UnixTime>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("public_jwk", &self.public_jwk)
            .field("private_key", &"[redacted]")
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("retire_after", &self.retire_after)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// What is needed to store a new, active key.
#[derive(Clone)]
pub struct NewSigningKey {
    /// Key id.
    pub kid: String,
    /// JWS algorithm.
    pub alg: String,
    /// Public JWK (JSON text).
    pub public_jwk: String,
    /// Private key bytes.
    pub private_key: Vec<u8>,
    /// When the schedule should retire it.
    pub retire_after: Option<UnixTime>,
}

impl fmt::Debug for NewSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new active key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the `kid` is taken.
    async fn insert_signing_key(&self, new: &NewSigningKey, now: UnixTime) -> Result<SigningKey, StoreError>;

    /// Every stored key, newest first.
    ///
    /// # Errors
    /// Only database failures.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError>;

    /// Retires an active key (it stops signing, stays published).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no active key has this `kid`.
    async fn retire_signing_key(&self, kid: &str, now: UnixTime) -> Result<(), StoreError>;

    /// Deletes a retired key (it leaves the JWKS).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no retired key has this `kid`.
    async fn delete_signing_key(&self, kid: &str) -> Result<(), StoreError>;

    /// Replaces the stored private part of several keys at once (wrapping
    /// them under a key-encryption key, or under a new one): all or none.
    /// Each change applies only if the key still holds `old`, so two
    /// operators rewrapping at once cannot lose a key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a key is gone or its private part
    /// changed meanwhile (nothing is written then).
    async fn replace_private_keys(&self, changes: &[PrivateKeyChange]) -> Result<(), StoreError>;

    /// The server secret named `name`, shared by every instance: the one
    /// stored, or else `candidate`, stored first. Two instances starting at
    /// once agree on whichever was stored first.
    ///
    /// # Errors
    /// Only database failures.
    async fn server_secret(&self, name: &str, candidate: &[u8], now: UnixTime) -> Result<Vec<u8>, StoreError>;
}

/// A new stored form of one key's private part.
#[derive(Clone)]
pub struct PrivateKeyChange {
    /// Key id.
    pub kid: String,
    /// The stored bytes expected now.
    pub old: Vec<u8>,
    /// The bytes to store instead.
    pub new: Vec<u8>,
}

impl fmt::Debug for PrivateKeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyChange")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    public_jwk: String,
    private_key: Vec<u8>,
    state: String,
    created_at: i64,
    retire_after: Option<i64>,
    retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for SigningKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(Self {
            state: KeyState::from_row(&r.state)?,
            kid: r.kid,
            alg: r.alg,
            public_jwk: r.public_jwk,
            private_key: r.private_key,
            created_at: UnixTime(r.created_at),
            retire_after: r.retire_after.map(UnixTime),
            retired_at: r.retired_at.map(UnixTime),
        })
    }
}

const COLUMNS: &str = "kid, alg, public_jwk, private_key, state, created_at, retire_after, retired_at";

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_signing_key(&self, new: &NewSigningKey, now: UnixTime) -> Result<SigningKey, StoreError> {
        let sql = format!(
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, state, created_at, retire_after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        );
        let row: KeyRow = with_pool!(&self.write, |c| {
            sqlx::query_as(&sql)
                .bind(&new.kid)
                .bind(&new.alg)
                .bind(&new.public_jwk)
                .bind(&new.private_key)
                .bind(KeyState::Active.as_str())
                .bind(now.0)
                .bind(new.retire_after.map(|t| t.0))
                .fetch_one(c)
                .await?
        });
        row.try_into()
    }

    async fn server_secret(&self, name: &str, candidate: &[u8], now: UnixTime) -> Result<Vec<u8>, StoreError> {
        with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(candidate)
            .bind(now.0)
            .execute(c)
            .await?;
        });
        let (secret,): (Vec<u8>,) = with_pool!(&self.write, |c| {
            sqlx::query_as("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(c)
                .await?
        });
        Ok(secret)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid DESC");
        let rows: Vec<KeyRow> = with_pool!(&self.read, |c| sqlx::query_as(&sql).fetch_all(c).await?);
        rows.into_iter().map(SigningKey::try_from).collect()
    }

    async fn retire_signing_key(&self, kid: &str, now: UnixTime) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("UPDATE signing_keys SET state = $1, retired_at = $2 WHERE kid = $3 AND state = $4")
                .bind(KeyState::Retired.as_str())
                .bind(now.0)
                .bind(kid)
                .bind(KeyState::Active.as_str())
                .execute(c)
                .await?
                .rows_affected()
        });
        one_row(done)
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND state = $2")
                .bind(kid)
                .bind(KeyState::Retired.as_str())
                .execute(c)
                .await?
                .rows_affected()
        });
        one_row(done)
    }

    async fn replace_private_keys(&self, changes: &[PrivateKeyChange]) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            for ch in changes {
                let n = sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3")
                    .bind(&ch.new)
                    .bind(&ch.kid)
                    .bind(&ch.old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    // Dropping the transaction rolls every change back.
                    return Err(StoreError::Conflict);
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
