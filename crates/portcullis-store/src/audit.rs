//! The audit log: who did what, when (sign-ins, refresh reuse, admin
//! actions). Append-only for callers.

use async_trait::async_trait;

use crate::db::{with_pool, with_relaxed_writer};
use portcullis_domain::AuditAction;

use crate::{SqlStore, StoreError, UnixTime};

/// One audit event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the log (increasing).
    pub id: i64,
    /// When it happened.
    pub at: UnixTime,
    /// What happened, e.g. `login.success`, `refresh.reuse`, `client.revoke`.
    pub action: String,
    /// Who did it (a user id, `cli`, …).
    pub actor: Option<String>,
    /// The client involved.
    pub client_id: Option<String>,
    /// What it was done to (a user, client, family or key id).
    pub subject: Option<String>,
    /// The remote address of the request.
    pub ip: Option<String>,
    /// Extra detail as JSON text. Never a secret.
    pub detail: Option<String>,
}

/// What is needed to record an event.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// What happened.
    pub action: AuditAction,
    /// Who did it.
    pub actor: Option<String>,
    /// The client involved.
    pub client_id: Option<String>,
    /// What it was done to.
    pub subject: Option<String>,
    /// The remote address.
    pub ip: Option<String>,
    /// Extra detail as JSON text.
    pub detail: Option<String>,
}

impl NewAuditEvent {
    /// An event of `action` with nothing else known yet.
    #[must_use]
    pub fn new(action: AuditAction) -> Self {
        Self {
            action,
            actor: None,
            client_id: None,
            subject: None,
            ip: None,
            detail: None,
        }
    }
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event.
    ///
    /// # Errors
    /// Only database failures.
    async fn record_audit(&self, event: &NewAuditEvent, now: UnixTime) -> Result<AuditEvent, StoreError>;

    /// Up to `limit` events with an id below `before` (all when `None`),
    /// newest first.
    ///
    /// # Errors
    /// Only database failures.
    async fn audit_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;

    /// Appends an event, logging (not returning) a failure: for callers
    /// whose own work must not fail because the audit log could not be
    /// written.
    async fn record_audit_or_warn(&self, event: &NewAuditEvent, now: UnixTime) {
        if let Err(e) = self.record_audit(event, now).await {
            tracing::warn!(error = %e, action = %event.action, "could not record an audit event");
        }
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    at: i64,
    action: String,
    actor: Option<String>,
    client_id: Option<String>,
    subject: Option<String>,
    ip: Option<String>,
    detail: Option<String>,
}

impl From<EventRow> for AuditEvent {
    fn from(r: EventRow) -> Self {
        Self {
            id: r.id,
            at: UnixTime(r.at),
            action: r.action,
            actor: r.actor,
            client_id: r.client_id,
            subject: r.subject,
            ip: r.ip,
            detail: r.detail,
        }
    }
}

const COLUMNS: &str = "id, at, action, actor, client_id, subject, ip, detail";

/// Binds an event's values to a query built on [`INSERT_SQL`].
macro_rules! bind_event {
    ($query:expr, $now:expr, $e:expr) => {
        $query
            .bind($now.0)
            .bind($e.action.as_str())
            .bind(&$e.actor)
            .bind(&$e.client_id)
            .bind(&$e.subject)
            .bind(&$e.ip)
            .bind(&$e.detail)
    };
}
pub(crate) use bind_event;

/// Inserts one event: `$1` time, then action, actor, client, subject, ip,
/// detail.
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";

#[async_trait]
impl AuditStore for SqlStore {
    async fn record_audit(&self, e: &NewAuditEvent, now: UnixTime) -> Result<AuditEvent, StoreError> {
        let sql = format!("{INSERT_SQL} RETURNING {COLUMNS}");
        // Failed sign-ins, a flood's worth of them, need not wait for the
        // disk (see `with_relaxed_writer!`); every other event does.
        let row: EventRow = if e.action == AuditAction::LoginFailure {
            with_relaxed_writer!(&self.write, |c| {
                bind_event!(sqlx::query_as(&sql), now, e).fetch_one(c).await?
            })
        } else {
            with_pool!(&self.write, |c| {
                bind_event!(sqlx::query_as(&sql), now, e).fetch_one(c).await?
            })
        };
        Ok(row.into())
    }

    async fn audit_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE id < $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<EventRow> = with_pool!(&self.read, |c| {
            sqlx::query_as(&sql)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?
        });
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}
