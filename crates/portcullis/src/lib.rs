//! The `portcullis` binary as a library: settings, start-up and the HTTP
//! surface, so that tests can run the real server in-process on port 0.
//!
//! It serves the token endpoint, JWKS and metadata (from
//! `portcullis-token`), `GET /healthz` (liveness) and `GET /readyz`
//! (readiness: the database answers). The admin CLI can create clients and
//! users; the admin API arrives with its own issue.

pub mod admin;
pub mod admin_api;
pub mod cli;
pub mod config;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod ui;

pub use settings::{Settings, TlsSettings};
pub use startup::Application;
