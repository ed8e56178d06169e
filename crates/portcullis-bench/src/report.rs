//! Latency logs, percentiles and the final report (table and JSON).

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::Serialize;

use crate::Mode;

/// The `p`-th percentile (0–100) of an ascending slice, nearest-rank method:
/// the smallest value such that at least `p` % of the values are ≤ it.
/// 0 for an empty slice.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // The float product is exact enough for any realistic sample count; the
    // clamp keeps p outside 0..=100 (or NaN) from indexing out of bounds.
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// What one virtual client saw for one grant type in the measured window.
#[derive(Debug, Default)]
pub(crate) struct GrantLog {
    latencies_us: Vec<u32>,
    count: u64,
    errors: BTreeMap<String, u64>,
    nonce_retries: u64,
}

impl GrantLog {
    pub(crate) fn success(&mut self, latency: Duration) {
        self.count += 1;
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    /// `kind` is the HTTP status, `io`, `bad_body`, `not_dpop` or `dpop_proof`.
    pub(crate) fn error(&mut self, kind: &str) {
        self.count += 1;
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Requests sent again with the nonce of a `use_dpop_nonce` answer; part
    /// of the request they belong to, not requests of their own.
    pub(crate) fn nonce_retries(&mut self, n: u32) {
        self.nonce_retries += u64::from(n);
    }

    pub(crate) fn merge(&mut self, other: Self) {
        self.latencies_us.extend(other.latencies_us);
        self.count += other.count;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.nonce_retries += other.nonce_retries;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn finish(mut self, window: Duration) -> GrantReport {
        self.latencies_us.sort_unstable();
        let l = &self.latencies_us;
        let ms = |us: u32| f64::from(us) / 1000.0;
        let secs = window.as_secs_f64();
        GrantReport {
            count: self.count,
            ok: l.len() as u64,
            rps: if secs > 0.0 { self.count as f64 / secs } else { 0.0 },
            ok_rps: if secs > 0.0 { l.len() as f64 / secs } else { 0.0 },
            p50_ms: ms(percentile(l, 50.0)),
            p90_ms: ms(percentile(l, 90.0)),
            p99_ms: ms(percentile(l, 99.0)),
            max_ms: ms(l.last().copied().unwrap_or(0)),
            errors: self.errors,
            nonce_retries: self.nonce_retries,
        }
    }
}

/// One grant type's figures over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct GrantReport {
    /// Requests completed in the window, successful or not.
    pub count: u64,
    /// Of which successful (200 with an `access_token`).
    pub ok: u64,
    /// `count` per second of the window: every answer, refusals (429,
    /// 503) included.
    pub rps: f64,
    /// `ok` per second of the window: the grant's throughput. A server
    /// that throttles answers many requests quickly with 429, so `rps`
    /// alone would count its refusals as work done.
    pub ok_rps: f64,
    /// Median latency of the successful requests, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency of the successful requests, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency of the successful requests, in milliseconds.
    pub p99_ms: f64,
    /// Slowest successful request, in milliseconds.
    pub max_ms: f64,
    /// Failures by HTTP status (`"400"`), `"io"` (transport error or timeout),
    /// `"bad_body"` (a 200 without `access_token`), and in DPoP mode
    /// `"not_dpop"` (a 200 whose `token_type` is not `DPoP`) or `"dpop_proof"`
    /// (no proof could be signed).
    pub errors: BTreeMap<String, u64>,
    /// DPoP only: how often a request was sent again because the server
    /// answered `use_dpop_nonce` (RFC 9449 §8). Not in `count`: a request's
    /// latency runs from its first attempt to its last answer.
    pub nonce_retries: u64,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What the virtual clients did.
    pub mode: Mode,
    /// Number of virtual clients.
    pub clients: usize,
    /// Of which doing sign-ins (the rest followed refresh chains).
    pub password_clients: usize,
    /// Runtime worker threads of the generator.
    pub threads: usize,
    /// Whether every request carried a DPoP proof (RFC 9449).
    pub dpop: bool,
    /// The measured window, warm-up excluded, in seconds.
    pub duration_s: f64,
    /// The token endpoint.
    pub url: String,
    /// Per grant type (`password`, `refresh_token`). In `refresh` mode
    /// `password` appears only when a broken chain forced a new sign-in.
    pub grants: BTreeMap<String, GrantReport>,
    /// Initial sign-ins (before the clock, not counted) that failed after retries.
    pub setup_failures: u64,
    /// With `--server-pid`: the CPU seconds that process used in the
    /// measured window.
    pub server_cpu_s: Option<f64>,
    /// Why the first of those failed (status and start of the body, or the transport error).
    pub first_setup_error: Option<String>,
    /// The first transport error, to tell "connection refused" from a timeout.
    pub first_transport_error: Option<String>,
}

impl Report {
    /// The server's CPU per successful request in the window, in µs (with
    /// `--server-pid`).
    pub fn server_cpu_us_per_request(&self) -> Option<f64> {
        // Per success: refusals cost CPU too, but are not the work measured.
        let requests: u64 = self.grants.values().map(|g| g.ok).sum();
        #[allow(clippy::cast_precision_loss, reason = "a request count")]
        self.server_cpu_s
            .filter(|_| requests > 0)
            .map(|s| s * 1e6 / requests as f64)
    }

    /// Whether at least one request in the window succeeded.
    pub fn succeeded(&self) -> bool {
        self.grants.values().any(|g| g.ok > 0)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serializes")
    }
}

/// The human-readable table.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} mode{}, {} clients ({} signing in), {} thread(s), {:.1} s measured, {}",
            self.mode,
            if self.dpop { " with DPoP" } else { "" },
            self.clients,
            self.password_clients,
            self.threads,
            self.duration_s,
            self.url
        )?;
        writeln!(
            f,
            "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
            "grant", "requests", "req/s", "ok/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        )?;
        for (name, g) in &self.grants {
            let errors = if g.errors.is_empty() {
                "-".to_owned()
            } else {
                g.errors
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            writeln!(
                f,
                "{name:<14} {:>9} {:>9.1} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {errors}",
                g.count, g.rps, g.ok_rps, g.p50_ms, g.p90_ms, g.p99_ms, g.max_ms
            )?;
        }
        if self.dpop {
            let retries: Vec<_> = self
                .grants
                .iter()
                .map(|(name, g)| format!("{name} {}", g.nonce_retries))
                .collect();
            writeln!(
                f,
                "use_dpop_nonce retries (not counted as requests): {}",
                retries.join(", ")
            )?;
        }
        if let Some(us) = self.server_cpu_us_per_request() {
            writeln!(f, "server CPU: {us:.0} µs per successful request")?;
        }
        if self.setup_failures > 0 {
            writeln!(f, "initial sign-ins that failed: {}", self.setup_failures)?;
            if let Some(e) = &self.first_setup_error {
                writeln!(f, "first failure: {e}")?;
            }
        }
        if let Some(e) = &self.first_transport_error {
            writeln!(f, "first transport error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.5), 100);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
    }

    #[test]
    fn percentile_of_small_and_empty_samples() {
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 51.0), 3);
        assert_eq!(percentile(&[1, 2, 3], 150.0), 3);
        assert_eq!(percentile(&[1, 2, 3], f64::NAN), 1);
    }

    #[test]
    fn merged_logs_report_sorted_percentiles_and_errors() {
        let mut a = GrantLog::default();
        for us in [5000, 1000, 3000] {
            a.success(Duration::from_micros(us));
        }
        a.error("400");
        let mut b = GrantLog::default();
        b.success(Duration::from_micros(2000));
        b.error("io");
        b.error("400");
        b.nonce_retries(2);
        a.nonce_retries(1);
        a.merge(b);
        let r = a.finish(Duration::from_secs(2));
        assert_eq!((r.count, r.ok), (7, 4));
        assert_eq!(r.nonce_retries, 3);
        assert_eq!((r.rps, r.ok_rps), (3.5, 2.0));
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (2.0, 5.0, 5.0));
        assert_eq!(r.errors, BTreeMap::from([("400".to_owned(), 2), ("io".to_owned(), 1)]));
    }
}
