//! Logging to stderr: plain text (coloured only on a terminal), or one JSON
//! object per line (`log_format = "json"`, `PORTCULLIS_LOG_FORMAT=json`).

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`, with the
/// database driver's per-statement logs at `warn`).
/// `json`: one JSON object per line.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Ignore the error raised when a subscriber is already set (tests).
    if json {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .try_init();
    }
}
