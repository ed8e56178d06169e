//! The Portcullis token endpoint.
//!
//! This crate will hold the token endpoint as an axum `Router`: the password
//! and refresh_token grants, client authentication, JWT minting, JWKS,
//! metadata, revocation, introspection and throttling. Today it holds the
//! opaque-secret primitives those grants stand on ([`secret`]); it serves no
//! endpoint yet.

pub mod secret;
