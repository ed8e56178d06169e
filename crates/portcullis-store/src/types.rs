//! Small value types shared by the records.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as every table stores it: whole seconds since the Unix
/// epoch (UTC). Second precision is what JWT `iat`/`exp` use too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The current time from the system clock.
    #[must_use]
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Self(secs)
    }

    /// This time moved by `secs` seconds (saturating).
    #[must_use]
    pub fn plus(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }
}

/// The SHA-256 of an opaque token or client secret: the only form in which
/// refresh tokens and client secrets are stored (RFC 6749 §10.3, §10.4).
///
/// SHA-256 without salt or stretching is enough here because what is hashed
/// is 256 bits from a CSPRNG, not a human-chosen password.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token or secret as presented by a client.
    #[must_use]
    pub fn of(secret: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(secret).into())
    }

    /// The stored form read back from a row.
    pub(crate) fn from_row(bytes: &[u8]) -> Result<Self, crate::StoreError> {
        bytes.try_into().map(Self).map_err(|_| {
            tracing::error!(len = bytes.len(), "stored token hash has the wrong length");
            crate::StoreError::Backend
        })
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not a secret, but a prefix is all anyone needs to match logs.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A new random record id: a UUIDv7, so ids sort by creation time and keep
/// B-tree inserts local.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Declares a status-like enum stored as lower-case TEXT.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The stored (and displayed) form.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Reads the stored form back.
            pub(crate) fn from_row(text: &str) -> Result<Self, $crate::StoreError> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => {
                        tracing::error!(value = other, kind = stringify!($name), "unknown value in the database");
                        Err($crate::StoreError::Backend)
                    }
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;
