//! The audit log.

use portcullis_store::{AuditEvent, Store};

/// Up to `limit` events with an id below `before` (all when `None`),
/// newest first.
///
/// # Errors
/// A store failure.
pub async fn list(store: &dyn Store, before: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>, super::OpsError> {
    Ok(store.audit_events(before, limit).await?)
}
