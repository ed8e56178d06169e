//! The `portcullis` binary as a library: settings, start-up and the HTTP
//! surface, so that tests can run the real server in-process on port 0.
//!
//! It serves the token endpoint, JWKS, metadata, revocation, introspection
//! and the `/web/` endpoints for browser clients (from `portcullis-token`),
//! the admin API (`/admin/v1/…`, for tokens with `portcullis:admin`) and the
//! account API (`/account/v1/…`, the signed-in user's own account)
//! ([`admin_api`]), `GET /openapi.json` ([`openapi`]), `GET /healthz`
//! (liveness), `GET /readyz` (readiness: the database answers), `GET
//! /metrics`, and the admin console and demo pages ([`ui`]).
//!
//! The admin CLI ([`admin`]) and the admin and account APIs only parse and
//! render: every change they make (clients, users, devices, keys) is one
//! function of the operations layer ([`ops`]), which also ends the sign-ins
//! it implies and writes the audit row.

pub mod admin;
pub mod admin_api;
pub mod cli;
pub mod config;
pub mod health;
mod http;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod proxy;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod ui;

pub use settings::{Settings, TlsSettings};
pub use startup::Application;
