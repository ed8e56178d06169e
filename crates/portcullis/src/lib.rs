//! The `portcullis` binary as a library: settings, start-up and the HTTP
//! surface, so that tests can run the real server in-process on port 0.
//!
//! What it serves today: `GET /healthz` (liveness) and `GET /readyz`
//! (readiness: the database answers). The token endpoint, JWKS, metadata,
//! the admin API and the admin CLI arrive with their own issues; until then
//! those paths answer 404.

pub mod cli;
pub mod health;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use settings::Settings;
pub use startup::Application;
