//! The Authorization Challenge Endpoint's state (draft-ietf-oauth-first-party-apps):
//! auth sessions waiting for a second factor, and authorization codes
//! waiting to be exchanged at the token endpoint (RFC 6749 §4.1, RFC 7636).
//!
//! Both are stored only as SHA-256 of their 256-bit random values
//! ([`TokenHash`]). Every state change is one conditional write, so under
//! any concurrency a try is counted before it is answered, an auth session
//! turns into one code, and a code is used once.

use std::fmt;

use async_trait::async_trait;

use crate::db::with_pool;
use crate::{SqlStore, StoreError, TokenHash, UnixTime};

/// What an auth session or a code is bound to, from the sign-in that
/// started it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeGrant {
    /// The client that started the sign-in.
    pub client_id: String,
    /// The user whose password was right.
    pub user_id: String,
    /// The PKCE `code_challenge` (S256, base64url).
    pub code_challenge: String,
    /// The scope granted, space-delimited.
    pub scope: String,
    /// How the user signed in (RFC 8176 values, space-separated).
    pub amr: String,
    /// The user's `sessions_epoch` as read before the password check.
    pub sessions_epoch: i64,
    /// The thumbprint of the DPoP key of the first request, if it had a
    /// proof.
    pub dpop_jkt: Option<String>,
}

impl fmt::Debug for ChallengeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeGrant")
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .field("amr", &self.amr)
            .finish_non_exhaustive()
    }
}

/// A live auth session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    /// SHA-256 of the `auth_session` value.
    pub hash: TokenHash,
    /// What it is bound to.
    pub grant: ChallengeGrant,
    /// The username key its failed tries are throttled under.
    pub account_key: String,
    /// Tries of a code so far.
    pub attempts: i64,
    /// When it stops working.
    pub expires_at: UnixTime,
}

/// A live authorization code, as its one use read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 of the code.
    pub hash: TokenHash,
    /// What it is bound to.
    pub grant: ChallengeGrant,
}

/// What presenting a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// The code was live and unused: this call used it.
    Used(AuthorizationCode),
    /// The code was used already. The use is recorded; `family_id` is the
    /// family the first use started, if it has recorded one yet.
    Replayed {
        /// The first use's family.
        family_id: Option<String>,
    },
    /// No such code, or it expired unused.
    Unknown,
}

/// Auth sessions and authorization codes.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores a new auth session.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user or client does not exist;
    /// database failures.
    async fn put_auth_session(&self, session: &AuthSession, now: UnixTime) -> Result<(), StoreError>;

    /// The live (unexpired) auth session of `hash`, without counting a try.
    ///
    /// # Errors
    /// Only database failures.
    async fn auth_session(&self, hash: &TokenHash, now: UnixTime) -> Result<Option<AuthSession>, StoreError>;

    /// Counts a try of a code on a live auth session that has had fewer
    /// than `max_tries`; the tries so far (this one included), or `None`
    /// when it is gone, expired or out of tries.
    ///
    /// # Errors
    /// Only database failures.
    async fn try_auth_session(
        &self,
        hash: &TokenHash,
        max_tries: i64,
        now: UnixTime,
    ) -> Result<Option<i64>, StoreError>;

    /// Ends an auth session (e.g. out of tries); `true` if it was there.
    ///
    /// # Errors
    /// Only database failures.
    async fn delete_auth_session(&self, hash: &TokenHash) -> Result<bool, StoreError>;

    /// Turns a live auth session into a code, in one transaction: the
    /// session is deleted and `code` stored. `false` (and no code) when the
    /// session was gone or expired, e.g. used by a concurrent request.
    ///
    /// # Errors
    /// Database failures.
    async fn exchange_auth_session(
        &self,
        session: &TokenHash,
        code: &AuthorizationCode,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Stores a new authorization code, live until `expires_at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user or client does not exist;
    /// database failures.
    async fn put_authorization_code(
        &self,
        code: &AuthorizationCode,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError>;

    /// Uses the code of `hash`: exactly one call uses a live code; later
    /// ones are recorded as replays.
    ///
    /// # Errors
    /// Only database failures.
    async fn use_authorization_code(&self, hash: &TokenHash, now: UnixTime) -> Result<CodeUse, StoreError>;

    /// Records the family a code's use started; `true` if the code was
    /// replayed meanwhile (the family is then to be revoked).
    ///
    /// # Errors
    /// Only database failures.
    async fn set_code_family(&self, hash: &TokenHash, family_id: &str) -> Result<bool, StoreError>;

    /// Deletes auth sessions that expired before `now` and codes that
    /// expired before `codes_before` (kept longer so a late replay still
    /// revokes); returns how many rows.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_challenges(&self, now: UnixTime, codes_before: UnixTime) -> Result<u64, StoreError>;
}

type GrantRow = (String, String, String, String, String, i64, Option<String>);

fn grant_of(row: GrantRow) -> ChallengeGrant {
    let (client_id, user_id, code_challenge, scope, amr, sessions_epoch, dpop_jkt) = row;
    ChallengeGrant {
        client_id,
        user_id,
        code_challenge,
        scope,
        amr,
        sessions_epoch,
        dpop_jkt,
    }
}

const CODE_INSERT: &str = "INSERT INTO authorization_codes \
       (code_hash, client_id, user_id, code_challenge, scope, amr, sessions_epoch, dpop_jkt, created_at, expires_at) \
     SELECT $1, c.id, u.id, $4, $5, $6, $7, $8, $9, $10 FROM clients c, users u WHERE c.id = $2 AND u.id = $3";

#[async_trait]
impl ChallengeStore for SqlStore {
    async fn put_auth_session(&self, s: &AuthSession, now: UnixTime) -> Result<(), StoreError> {
        let g = &s.grant;
        let done = with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO auth_sessions (session_hash, client_id, user_id, account_key, code_challenge, \
                   scope, amr, sessions_epoch, dpop_jkt, attempts, created_at, expires_at) \
                 SELECT $1, c.id, u.id, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
                 FROM clients c, users u WHERE c.id = $2 AND u.id = $3",
            )
            .bind(&s.hash.0[..])
            .bind(&g.client_id)
            .bind(&g.user_id)
            .bind(&s.account_key)
            .bind(&g.code_challenge)
            .bind(&g.scope)
            .bind(&g.amr)
            .bind(g.sessions_epoch)
            .bind(g.dpop_jkt.as_deref())
            .bind(s.attempts)
            .bind(now.0)
            .bind(s.expires_at.0)
            .execute(c)
            .await?
            .rows_affected()
        });
        crate::users::one_row(done)
    }

    async fn auth_session(&self, hash: &TokenHash, now: UnixTime) -> Result<Option<AuthSession>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            String,
            i64,
            i64,
        );
        let row: Option<Row> = with_pool!(&self.write, |c| {
            sqlx::query_as(
                "SELECT client_id, user_id, code_challenge, scope, amr, sessions_epoch, dpop_jkt, \
                   account_key, attempts, expires_at \
                 FROM auth_sessions WHERE session_hash = $1 AND expires_at > $2",
            )
            .bind(&hash.0[..])
            .bind(now.0)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(
            |(ci, ui, cc, sc, amr, ep, jkt, account_key, attempts, expires_at)| AuthSession {
                hash: *hash,
                grant: grant_of((ci, ui, cc, sc, amr, ep, jkt)),
                account_key,
                attempts,
                expires_at: UnixTime(expires_at),
            },
        ))
    }

    async fn try_auth_session(
        &self,
        hash: &TokenHash,
        max_tries: i64,
        now: UnixTime,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = with_pool!(&self.write, |c| {
            sqlx::query_as(
                "UPDATE auth_sessions SET attempts = attempts + 1 \
                 WHERE session_hash = $1 AND expires_at > $2 AND attempts < $3 RETURNING attempts",
            )
            .bind(&hash.0[..])
            .bind(now.0)
            .bind(max_tries)
            .fetch_optional(c)
            .await?
        });
        Ok(row.map(|(n,)| n))
    }

    async fn delete_auth_session(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("DELETE FROM auth_sessions WHERE session_hash = $1")
                .bind(&hash.0[..])
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    async fn exchange_auth_session(
        &self,
        session: &TokenHash,
        code: &AuthorizationCode,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let g = &code.grant;
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            let gone = sqlx::query("DELETE FROM auth_sessions WHERE session_hash = $1 AND expires_at > $2")
                .bind(&session.0[..])
                .bind(now.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            let done = sqlx::query(CODE_INSERT)
                .bind(&code.hash.0[..])
                .bind(&g.client_id)
                .bind(&g.user_id)
                .bind(&g.code_challenge)
                .bind(&g.scope)
                .bind(&g.amr)
                .bind(g.sessions_epoch)
                .bind(g.dpop_jkt.as_deref())
                .bind(now.0)
                .bind(expires_at.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn put_authorization_code(
        &self,
        code: &AuthorizationCode,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let g = &code.grant;
        let done = with_pool!(&self.write, |c| {
            sqlx::query(CODE_INSERT)
                .bind(&code.hash.0[..])
                .bind(&g.client_id)
                .bind(&g.user_id)
                .bind(&g.code_challenge)
                .bind(&g.scope)
                .bind(&g.amr)
                .bind(g.sessions_epoch)
                .bind(g.dpop_jkt.as_deref())
                .bind(now.0)
                .bind(expires_at.0)
                .execute(c)
                .await?
                .rows_affected()
        });
        crate::users::one_row(done)
    }

    async fn use_authorization_code(&self, hash: &TokenHash, now: UnixTime) -> Result<CodeUse, StoreError> {
        let used: Option<GrantRow> = with_pool!(&self.write, |c| {
            sqlx::query_as(
                "UPDATE authorization_codes SET used_at = $2 \
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING client_id, user_id, code_challenge, scope, amr, sessions_epoch, dpop_jkt",
            )
            .bind(&hash.0[..])
            .bind(now.0)
            .fetch_optional(c)
            .await?
        });
        if let Some(row) = used {
            return Ok(CodeUse::Used(AuthorizationCode {
                hash: *hash,
                grant: grant_of(row),
            }));
        }
        let replayed: Option<(Option<String>,)> = with_pool!(&self.write, |c| {
            sqlx::query_as(
                "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $2) \
                 WHERE code_hash = $1 AND used_at IS NOT NULL RETURNING family_id",
            )
            .bind(&hash.0[..])
            .bind(now.0)
            .fetch_optional(c)
            .await?
        });
        Ok(match replayed {
            Some((family_id,)) => CodeUse::Replayed { family_id },
            None => CodeUse::Unknown,
        })
    }

    async fn set_code_family(&self, hash: &TokenHash, family_id: &str) -> Result<bool, StoreError> {
        let row: Option<(Option<i64>,)> = with_pool!(&self.write, |c| {
            sqlx::query_as("UPDATE authorization_codes SET family_id = $2 WHERE code_hash = $1 RETURNING replayed_at")
                .bind(&hash.0[..])
                .bind(family_id)
                .fetch_optional(c)
                .await?
        });
        Ok(row.is_some_and(|(at,)| at.is_some()))
    }

    async fn purge_challenges(&self, now: UnixTime, codes_before: UnixTime) -> Result<u64, StoreError> {
        with_pool!(&self.write, |c| {
            let sessions = sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1")
                .bind(now.0)
                .execute(c)
                .await?
                .rows_affected();
            let codes = sqlx::query("DELETE FROM authorization_codes WHERE expires_at <= $1")
                .bind(codes_before.0)
                .execute(c)
                .await?
                .rows_affected();
            Ok(sessions + codes)
        })
    }
}
