//! `/admin/v1/audit`: the audit log.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{AdminErrors, Api, ApiResult, Page, Query, Routes};
use crate::ops;

pub(super) fn router() -> Routes {
    Routes::new().route("/audit", get(audit_events))
}

/// An audit-log entry.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEvent {
    id: i64,
    at: i64,
    /// E.g. `login.success`, `refresh.reuse`, `client.revoke`.
    action: String,
    #[schema(required = true)]
    actor: Option<String>,
    #[schema(required = true)]
    client_id: Option<String>,
    #[schema(required = true)]
    subject: Option<String>,
    #[schema(required = true)]
    ip: Option<String>,
    /// Who acted, as a person reads it: the acting user's username,
    /// `command line` or `rotation schedule` (null when unknown).
    #[schema(required = true)]
    actor_name: Option<String>,
    /// The name of the client acted through.
    #[schema(required = true)]
    client_name: Option<String>,
    /// What `subject` is.
    #[schema(required = true)]
    subject_kind: Option<SubjectKind>,
    /// The subject's username (a user) or name (a client).
    #[schema(required = true)]
    subject_name: Option<String>,
}

/// What an audit event's subject is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubjectKind {
    User,
    Client,
    Device,
    Token,
    Key,
}

impl From<ops::audit::SubjectKind> for SubjectKind {
    fn from(k: ops::audit::SubjectKind) -> Self {
        use ops::audit::SubjectKind as K;
        match k {
            K::User => Self::User,
            K::Client => Self::Client,
            K::Device => Self::Device,
            K::Token => Self::Token,
            K::Key => Self::Key,
        }
    }
}

impl From<ops::audit::NamedEvent> for AuditEvent {
    fn from(n: ops::audit::NamedEvent) -> Self {
        let e = n.event;
        Self {
            id: e.id,
            at: e.at.0,
            action: e.action,
            actor: e.actor,
            client_id: e.client_id,
            subject: e.subject,
            ip: e.ip,
            actor_name: n.actor_name,
            client_name: n.client_name,
            subject_kind: n.subject_kind.map(SubjectKind::from),
            subject_name: n.subject_name,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEvents {
    /// Newest first.
    events: Vec<AuditEvent>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "admin",
    summary = "The audit log",
    params(
        ("before" = Option<i64>, Query, description = "Events before this id."),
        ("limit" = Option<u64>, Query, maximum = 4_294_967_295_u64, description = "At most this many (default 100; more than 500 counts as 500)."),
    ),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Newest first.", body = AuditEvents, headers(("Cache-Control" = String, description = "`no-store`"))),
        AdminErrors,
    ),
)]
pub(crate) async fn audit_events(State(api): State<Api>, Query(p): Query<Page>) -> ApiResult<AuditEvents> {
    let events = ops::audit::list_named(&api.store, p.before, p.limit()).await?;
    Ok(Json(AuditEvents {
        events: events.into_iter().map(AuditEvent::from).collect(),
    }))
}
