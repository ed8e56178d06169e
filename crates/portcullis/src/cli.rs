//! The command line (the contract is in the design document; commands
//! appear here as they are built).

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::Settings;

/// Portcullis: an OAuth 2.0 authorization server for first-party apps.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Database URL: `sqlite://FILE` (created on first start) or
    /// `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long = "database", env = "PORTCULLIS_DATABASE_URL", global = true,
          default_value = Settings::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Options of `portcullis serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = Settings::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Issuer URL, the `iss` of every token.
    #[arg(long, env = "PORTCULLIS_ISSUER", default_value = Settings::DEFAULT_ISSUER)]
    pub issuer: String,
}
