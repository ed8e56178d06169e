//! Portcullis domain values, parsed once at the edge (HTTP, CLI,
//! configuration) and carried typed through the operations, the grants and
//! the store: [`Username`], [`ClientId`], [`GrantType`] / [`GrantTypes`],
//! [`Scopes`] (on oxide-auth's `Scope`), [`WebOrigin`] / [`WebOrigins`] and
//! [`AuditAction`].
//!
//! Each type's `parse` is the only place its rules are written; the store
//! reads stored text back with the same parsers.

mod audit;
mod client_id;
mod grant;
mod origin;
mod scope;
mod username;

pub use audit::{AuditAction, UnknownAuditAction};
pub use client_id::{ClientId, InvalidClientId};
pub use grant::{GrantType, GrantTypes, UnknownGrantType};
pub use origin::{InvalidOrigin, WebOrigin, WebOrigins};
pub use scope::{MalformedScope, Scopes};
pub use username::{InvalidUsername, Username};

/// The admin scope: users holding it may use the admin API.
pub const ADMIN_SCOPE: &str = "portcullis:admin";
