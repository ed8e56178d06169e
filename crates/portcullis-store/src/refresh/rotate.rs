//! What both backends' rotations share: the rule for a token that may be
//! rotated and the conditional write built on it, written once as SQL; the
//! queued form of a rotation; and the classifier that says why a token was
//! not rotated.
//!
//! The rule lives in [`CURRENT`] and nowhere else: the SQLite group
//! statement (`sqlite.rs`) and the PostgreSQL statement (`postgres.rs`)
//! both run [`rotate_sql`]. [`refusal`] mirrors it to explain a refusal
//! after the fact; change the two together (`tests/rotation_rules.rs` runs
//! every rule through both backends).

use super::rows::FamilyRow;
use super::{RefreshFamily, Refusal, Rotate, Rotation};
use crate::{TokenHash, UnixTime};

/// When the family row `f` may be rotated by the request row `r`: the
/// presented token is the family's current one, within its idle lifetime,
/// presented by the family's own client, and the family neither revoked
/// nor past its absolute expiry.
///
/// A disabled user or a revoked client is not checked here: disabling or
/// revoking marks their families revoked in the same transaction, and the
/// token endpoint checks both before it rotates.
const CURRENT: &str = "f.token_hash = r.r_presented AND f.token_expires_at > r.r_now \
                       AND f.client_id = r.r_client AND f.revoked_at IS NULL AND f.expires_at > r.r_now";

/// The columns of the request relation `r` that [`rotate_sql`] reads, in
/// the order the backends bind them.
pub(super) const REQUEST_COLUMNS: &str =
    "r_family, r_presented, r_client, r_now, r_selector, r_child, r_child_expires, r_successor";

/// The conditional write that rotates every family whose current token a
/// request row of `r` presents (see [`CURRENT`]), for a relation `r` with
/// [`REQUEST_COLUMNS`] that the statement defines; `least` is the
/// backend's two-argument minimum. The new current token's idle expiry is
/// capped at the family's; the replaced token becomes the previous one,
/// with the sealed successor; the rotated families are returned (their
/// columns unqualified, in `FamilyRow` order).
///
/// Under any concurrency a token is rotated once: SQLite has one writer,
/// and PostgreSQL re-checks the condition against a row a concurrent
/// writer committed. Two request rows presenting the same token rotate the
/// family once, for one of them (the returned `token_hash` says which).
pub(super) fn rotate_sql(least: &str) -> String {
    format!(
        "UPDATE refresh_families AS f SET generation = f.generation + 1, \
         selector_hash = COALESCE(f.selector_hash, r.r_selector), token_hash = r.r_child, \
         token_expires_at = {least}(r.r_child_expires, f.expires_at), prev_hash = f.token_hash, \
         prev_used_at = r.r_now, successor = r.r_successor, last_used_at = r.r_now \
         FROM r WHERE f.id = r.r_family AND {CURRENT} \
         RETURNING {columns}",
        columns = super::rows::FAMILY_COLUMNS,
    )
}

/// A rotation as the writer needs it: owned, so that it can be queued for a
/// group commit.
pub(super) struct RotateJob {
    pub(super) family_id: String,
    pub(super) presented: Vec<u8>,
    pub(super) client_id: String,
    pub(super) selector: Vec<u8>,
    pub(super) child: Vec<u8>,
    pub(super) child_expires_at: i64,
    pub(super) successor: Option<Vec<u8>>,
    pub(super) now: i64,
    pub(super) audit: Option<crate::NewAuditEvent>,
}

impl RotateJob {
    pub(super) fn new(r: &Rotate<'_>) -> Self {
        Self {
            family_id: r.family_id.to_owned(),
            presented: r.presented.0.to_vec(),
            client_id: r.client_id.to_owned(),
            selector: r.selector.0.to_vec(),
            child: r.child.0.to_vec(),
            child_expires_at: r.child_expires_at.0,
            successor: r.successor.as_ref().map(|s| s.0.clone()),
            now: r.now.0,
            audit: r.audit.clone(),
        }
    }
}

/// Why a family that the conditional write did not rotate was not: the
/// negation of [`CURRENT`], one clause at a time, in the order the token
/// endpoint needs.
pub(super) fn refusal(family: RefreshFamily, presented: &TokenHash, client_id: &str, now: UnixTime) -> Rotation {
    if family.client_id != client_id {
        // Checked first: another client learns nothing about the token.
        Rotation::Refused(Refusal::WrongClient)
    } else if family.current.hash.as_ref() != Some(presented) {
        Rotation::Spent(family)
    } else if family.revoked_at.is_some() {
        Rotation::Refused(Refusal::FamilyRevoked)
    } else if now >= family.expires_at {
        Rotation::Refused(Refusal::FamilyExpired)
    } else {
        Rotation::Refused(Refusal::TokenExpired)
    }
}

/// The rotated family, as the write returned it.
pub(super) type Won = FamilyRow;
