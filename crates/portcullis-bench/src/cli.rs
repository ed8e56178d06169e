//! The command line of `portcullis-load`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use crate::{ClientAuth, Config, Mode};

/// Load generator for an RFC 6749 token endpoint: virtual clients sign in
/// with the password grant and/or follow refresh-token chains, one HTTP/1.1
/// keep-alive connection each.
#[derive(Parser)]
#[command(name = "portcullis-load", version)]
pub struct Cli {
    /// Token endpoint, e.g. http://127.0.0.1:8080/oauth/token (http only).
    #[arg(long)]
    pub url: String,
    /// OAuth client id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Client secret; without one the client is public (client_id in the body).
    #[arg(long, env = "PORTCULLIS_LOAD_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Where a confidential client's credentials go.
    #[arg(long, value_enum, default_value_t = ClientAuth::Basic)]
    pub client_auth: ClientAuth,
    /// Scope parameter sent with every request.
    #[arg(long)]
    pub scope: Option<String>,
    /// User name; `{i}` becomes (virtual client index % --users).
    #[arg(long)]
    pub username: String,
    /// Number of distinct users `{i}` cycles through.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// The users' password.
    #[arg(long, env = "PORTCULLIS_LOAD_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// password: sign-in loop; refresh: follow refresh chains; mixed: both.
    #[arg(long, value_enum, default_value_t = Mode::Refresh)]
    pub mode: Mode,
    /// Virtual clients (one connection each).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// In mixed mode, how many virtual clients sign in [default: clients/8, at least 1].
    #[arg(long)]
    pub password_clients: Option<u32>,
    /// Measured seconds.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub duration: Duration,
    /// Seconds run before measuring, not counted.
    #[arg(long, default_value = "2", value_parser = seconds)]
    pub warmup: Duration,
    /// Global cap on requests per second [default: unlimited].
    #[arg(long)]
    pub max_rps: Option<f64>,
    /// Seconds before a request counts as a transport error.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub timeout: Duration,
    /// Runtime worker threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
    /// Send a DPoP proof (RFC 9449) with every token request, one P-256 key
    /// per virtual client; only `token_type: DPoP` counts as a success.
    #[arg(long)]
    pub dpop: bool,
    /// Report the CPU time this process (the server under test, on this
    /// machine) used in the measured window, per request.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

impl Cli {
    /// The run configuration these arguments describe.
    pub fn config(&self) -> Config {
        Config {
            url: self.url.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone().map(Into::into),
            client_auth: self.client_auth,
            scope: self.scope.clone(),
            username: self.username.clone(),
            users: self.users as usize,
            password: self.password.clone().into(),
            mode: self.mode,
            clients: self.clients as usize,
            password_clients: self.password_clients.map(|k| k as usize),
            duration: self.duration,
            warmup: self.warmup,
            max_rps: self.max_rps,
            timeout: self.timeout,
            threads: self.threads as usize,
            dpop: self.dpop,
            server_pid: self.server_pid,
        }
    }
}
