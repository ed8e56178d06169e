//! Verify Portcullis access tokens in a resource server.
//!
//! Portcullis issues short-lived JWT access tokens (RFC 9068); resource
//! servers check them locally against the server's published keys, with no
//! call back to the server on the hot path. This crate is all a Rust
//! resource server needs:
//!
//! ```no_run
//! use std::time::Duration;
//! use portcullis_verify::{Verifier, VerifyError};
//!
//! # async fn demo(authorization_header: Option<&str>) -> Result<(), VerifyError> {
//! // Once, at start-up:
//! let verifier = Verifier::builder("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .jwks_url("https://auth.example.com/.well-known/jwks.json")
//!     // Optional: reject revoked tokens within seconds.
//!     .revocation_feed("https://auth.example.com/oauth/revocations", Duration::from_secs(5))
//!     // The feed is not public: the server's feed secret (or see
//!     // `revocation_feed_credential_source` for an access token).
//!     .revocation_feed_credential(std::env::var("FEED_SECRET").expect("the feed secret"))
//!     .build()
//!     .expect("valid configuration");
//!
//! // Per request:
//! let token = portcullis_verify::bearer_token(
//!     authorization_header.map(str::as_bytes).into_iter(),
//!     None, // the query string, if any: tokens there are refused
//! )?;
//! let claims = verifier.verify_with_scopes(token, &["read"]).await?;
//! println!("user {} via client {}", claims.sub, claims.client_id);
//! # Ok(()) }
//! ```
//!
//! On error, answer with [`VerifyError::status`] and a `WWW-Authenticate`
//! header of [`VerifyError::www_authenticate`] (RFC 6750 §3). With the
//! `axum` feature, [`axum::Authenticated`] and [`axum::VerifyLayer`] do
//! all of it.
//!
//! What is checked (RFC 9068 §4, RFC 8725): the header's `typ` is
//! `at+jwt`; its `alg` is one of the allowed asymmetric algorithms (ES256,
//! EdDSA, RS256 by default; never `none`, never HMAC) and the algorithm of
//! the key named by `kid`; key material in the header (`jwk`, `jku`, `x5u`,
//! `x5c`) is ignored; a header with `crit` is refused (RFC 7515
//! §4.1.11: no extension is understood); the signature; `iss` exactly;
//! `aud` contains one of ours; `exp`, `nbf`, `iat` are numbers and within
//! the leeway (60 s by default); with
//! [`VerifierBuilder::max_lifetime`], `exp - iat` is at most that
//! lifetime (plus the leeway); `sub`, `client_id` and `jti` are present; with the revocation
//! feed, no revocation of the token's client, user, sign-in (`sid`) or
//! `jti` at or after its `iat`.
//!
//! DPoP-bound tokens (RFC 9449, a `cnf` claim) are refused as bearer
//! tokens. With [`VerifierBuilder::dpop`] and
//! [`VerifierBuilder::external_url`] they are accepted with the `DPoP`
//! scheme and a proof of their key ([`Verifier::verify_dpop`], the axum
//! layer); see [`dpop`].
//!
//! Keys come from the JWKS URL, cached as its `Cache-Control` says; an
//! unknown `kid` (after a key rotation) triggers a refetch, at most once per
//! cooldown (30 s by default), so made-up `kid`s cannot flood the server.

mod bearer;
mod claims;
mod credential;
pub mod dpop;
mod error;
mod feed;
mod jose;
mod jwks;
mod verifier;

#[cfg(feature = "axum")]
pub mod axum;

pub use bearer::{Scheme, access_token, bearer_token, dpop_proof};
pub use claims::{AccessTokenClaims, Audience, Confirmation};
pub use error::VerifyError;
pub use jsonwebtoken::Algorithm;
pub use verifier::{BuildError, Verifier, VerifierBuilder, require_multi_factor, require_scopes};
