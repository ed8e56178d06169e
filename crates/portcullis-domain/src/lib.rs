//! Portcullis domain values, parsed once at the edge (HTTP, CLI,
//! configuration) and carried typed through the operations, the grants and
//! the store: [`Username`], [`ClientId`], [`GrantType`] / [`GrantTypes`],
//! [`Scopes`] (on oxide-auth's `Scope`), [`WebOrigin`] / [`WebOrigins`] and
//! [`AuditAction`].
//!
//! Each type's `parse` is the only place its rules are written; the store
//! reads stored text back with the same parsers.

/// The accessors every text value shares: `as_str`, `Display` (the text
/// itself) and a `Debug` that names the type.
macro_rules! text_value {
    ($name:ident) => {
        impl $name {
            /// The text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}
pub(crate) use text_value;

mod audit;
mod client_id;
mod email;
mod grant;
mod origin;
mod scope;
mod username;

pub use audit::{AuditAction, UnknownAuditAction};
pub use client_id::{ClientId, InvalidClientId};
pub use email::{Email, InvalidEmail};
pub use grant::{GrantType, GrantTypes, UnknownGrantType};
pub use origin::{InvalidOrigin, WebOrigin, WebOrigins};
pub use scope::{MalformedScope, Scopes};
pub use username::{InvalidUsername, Username};

/// The admin scope: users holding it may use the admin API.
pub const ADMIN_SCOPE: &str = "portcullis:admin";
