//! What both backends' rotations share: the rule for a token that may be
//! consumed, written once as SQL; the conditional write built on it; the
//! queued form of a rotation; and the classifier that says why a token was
//! not consumed.
//!
//! The rule lives in [`CONSUMABLE`] and nowhere else: the SQLite group
//! statements (`sqlite.rs`) and the PostgreSQL statement (`postgres.rs`)
//! both run [`consume_sql`]. [`refusal`] mirrors it
//! to explain a refusal after the fact; change the two together
//! (`tests/rotation_rules.rs` runs every rule through both backends).

use super::rows::{FamilyRow, TokenRow};
use super::{RefreshFamily, RefreshToken, Refusal, Rotate, Rotation};
use crate::UnixTime;
use crate::types::new_id;

/// When the token row `t` of the family row `f` may be consumed by the
/// request row `r` (columns `token_hash`, `client_id`, `now`, `child_id`,
/// `successor`): unused, within its idle lifetime, presented by its own
/// client, and its family neither revoked nor past its absolute expiry.
///
/// A disabled user or a revoked client is not checked here: disabling or
/// revoking marks their families revoked in the same transaction, and the
/// token endpoint checks both before it rotates.
const CONSUMABLE: &str = "t.used_at IS NULL AND t.expires_at > r.now \
                          AND f.client_id = r.client_id AND f.revoked_at IS NULL AND f.expires_at > r.now";

/// The conditional write that consumes every token that [`CONSUMABLE`]
/// allows, for the request rows of a relation `r` that the statement
/// defines, with the family rows read from `families` (the table, or on
/// PostgreSQL the family row already locked) and the consumed tokens
/// returned as `returning`.
///
/// Under any concurrency a token is consumed once: SQLite has one writer,
/// and PostgreSQL re-checks `used_at IS NULL` against the committed row
/// when a concurrent writer got there first. Two request rows presenting
/// the same token consume it once, for one of them (`replaced_by` says
/// which).
pub(super) fn consume_sql(families: &str, returning: &str) -> String {
    format!(
        "UPDATE refresh_tokens AS t SET used_at = r.now, replaced_by = r.child_id, successor = r.successor \
         FROM r, {families} AS f \
         WHERE t.token_hash = r.token_hash AND f.id = t.family_id AND {CONSUMABLE} \
         RETURNING {returning}"
    )
}

/// A rotation as the writer needs it: owned, so that it can be queued for a
/// group commit, with the child's id chosen up front.
pub(super) struct RotateJob {
    pub(super) presented: Vec<u8>,
    pub(super) client_id: String,
    pub(super) child_id: String,
    pub(super) child: Vec<u8>,
    pub(super) child_expires_at: i64,
    pub(super) successor: Option<Vec<u8>>,
    pub(super) now: i64,
    pub(super) audit: Option<crate::NewAuditEvent>,
}

impl RotateJob {
    pub(super) fn new(r: &Rotate<'_>) -> Self {
        Self {
            presented: r.presented.0.to_vec(),
            client_id: r.client_id.to_owned(),
            child_id: new_id(),
            child: r.child.0.to_vec(),
            child_expires_at: r.child_expires_at.0,
            successor: r.successor.as_ref().map(|s| s.0.clone()),
            now: r.now.0,
            audit: r.audit.clone(),
        }
    }
}

/// The rows of a rotation that consumed its token.
pub(super) struct Won {
    pub(super) parent: TokenRow,
    pub(super) family: FamilyRow,
    pub(super) child: TokenRow,
}

/// Why a token that the conditional write did not consume was not: the
/// negation of [`CONSUMABLE`], one clause at a time, in the order the
/// token endpoint needs.
pub(super) fn refusal(token: &RefreshToken, family: &RefreshFamily, client_id: &str, now: UnixTime) -> Rotation {
    if family.client_id != client_id {
        // Checked first: another client learns nothing about the token.
        Rotation::Refused(Refusal::WrongClient)
    } else if token.used_at.is_some() {
        Rotation::Spent {
            family: family.clone(),
            token: token.clone(),
        }
    } else if family.revoked_at.is_some() {
        Rotation::Refused(Refusal::FamilyRevoked)
    } else if now >= family.expires_at {
        Rotation::Refused(Refusal::FamilyExpired)
    } else {
        Rotation::Refused(Refusal::TokenExpired)
    }
}
