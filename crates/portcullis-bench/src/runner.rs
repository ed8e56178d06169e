//! The virtual clients and the run that starts, times and merges them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use tokio::{
    sync::{Barrier, watch},
    time::sleep,
};

use crate::{
    Config, LoadError, Mode,
    conn::{BoxError, Connection, Reply, Target},
    dpop::{self, DpopKey},
    form::Forms,
    report::{GrantLog, Report},
};

/// Attempts of the initial (uncounted) sign-in of a refresh chain. Every
/// chain signs in at once from one address, so a server's per-address
/// sign-in throttle answers some of them 429 with `Retry-After`: they wait
/// and try again, so that every client runs its chain.
const SIGN_IN_ATTEMPTS: u32 = 30;
/// The longest wait between those attempts, whatever `Retry-After` says.
const MAX_SIGN_IN_WAIT: Duration = Duration::from_secs(5);
/// Pause after a transport error, so a refused connection does not spin a core
/// the server under test needs.
const TRANSPORT_ERROR_PAUSE: Duration = Duration::from_millis(10);
/// How often one request is sent again with the nonce of a `use_dpop_nonce`
/// answer: once is what a server asks for; a second covers a nonce that
/// rotated in between. More would hide a server that never accepts one.
const NONCE_RETRIES: u32 = 2;

/// The measured window, fixed once every virtual client is ready.
#[derive(Clone, Copy)]
struct Window {
    warm_end: Instant,
    end: Instant,
}

impl Window {
    fn counts(&self, done: Instant) -> bool {
        done >= self.warm_end && done < self.end
    }
}

/// A global rate cap: every request reserves the next free time slot.
struct Limiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Limiter {
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        // Idle time is not banked: no burst after a pause.
        let slot = (*next).max(now);
        *next = slot + self.interval;
        slot
    }
}

struct Shared {
    target: Arc<Target>,
    forms: Forms,
    limiter: Option<Limiter>,
    /// A 200 counts only with `token_type: DPoP`.
    dpop: bool,
}

#[derive(Default)]
struct ClientLog {
    password: GrantLog,
    refresh: GrantLog,
    setup_error: Option<String>,
    first_transport_error: Option<String>,
}

impl ClientLog {
    fn transport_error(&mut self, e: &BoxError) {
        self.first_transport_error.get_or_insert_with(|| e.to_string());
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<serde::de::IgnoredAny>,
    refresh_token: Option<String>,
    token_type: Option<String>,
}

/// Why a 200 does not count as a success.
#[derive(Debug, PartialEq, Eq)]
enum BadSuccess {
    /// Not JSON, or no `access_token`.
    Body,
    /// In DPoP mode, a `token_type` other than `DPoP` (the server ignored the proof).
    NotDpop(Option<String>),
}

impl BadSuccess {
    /// The error kind in the report.
    fn kind(&self) -> &'static str {
        match self {
            Self::Body => "bad_body",
            Self::NotDpop(_) => "not_dpop",
        }
    }
}

/// The refresh token (if any) of a usable token response. With `dpop`, the
/// token type must be `DPoP` (RFC 9449 §5; token types compare without case,
/// RFC 6749 §5.1).
fn parse_success(body: &[u8], dpop: bool) -> Result<Option<String>, BadSuccess> {
    let r: TokenResponse = serde_json::from_slice(body).map_err(|_| BadSuccess::Body)?;
    r.access_token.ok_or(BadSuccess::Body)?;
    if dpop && !r.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("DPoP")) {
        return Err(BadSuccess::NotDpop(r.token_type));
    }
    Ok(r.refresh_token)
}

#[derive(Deserialize)]
struct ErrorResponse<'a> {
    #[serde(borrow)]
    error: Option<&'a str>,
}

/// Whether `reply` asks for the request again with the nonce it carries
/// (RFC 9449 §8: 400, `"error": "use_dpop_nonce"` and a `DPoP-Nonce` header).
fn asks_for_nonce(reply: &Reply) -> bool {
    reply.status == StatusCode::BAD_REQUEST
        && reply.dpop_nonce.is_some()
        && serde_json::from_slice::<ErrorResponse<'_>>(&reply.body).is_ok_and(|e| e.error == Some("use_dpop_nonce"))
}

/// Why a request got no answer.
enum Failure {
    /// The connection failed or timed out.
    Io(BoxError),
    /// No DPoP proof could be signed.
    Proof,
}

/// One token request as a virtual client sees it: the POST of `body`, and
/// in DPoP mode a fresh proof per attempt, the server's nonce remembered and
/// up to [`NONCE_RETRIES`] attempts again on `use_dpop_nonce`. Returns the
/// last answer (its latency summed over the attempts) and the retries made.
async fn exchange(conn: &mut Connection, key: Option<&mut DpopKey>, body: &Bytes) -> (Result<Reply, Failure>, u32) {
    let Some(key) = key else {
        return (conn.post(body.clone(), None).await.map_err(Failure::Io), 0);
    };
    let mut retries = 0;
    let mut latency = Duration::ZERO;
    loop {
        let Ok(proof) = key.proof() else {
            return (Err(Failure::Proof), retries);
        };
        let mut reply = match conn.post(body.clone(), Some(proof)).await {
            Ok(reply) => reply,
            Err(e) => return (Err(Failure::Io(e)), retries),
        };
        latency += reply.latency;
        reply.latency = latency;
        if let Some(nonce) = &reply.dpop_nonce {
            key.set_nonce(nonce);
        }
        if retries < NONCE_RETRIES && asks_for_nonce(&reply) {
            retries += 1;
            continue;
        }
        return (Ok(reply), retries);
    }
}

/// Runs the load described by `config` on the current tokio runtime and
/// returns what was measured.
///
/// # Errors
///
/// When the URL, the client credentials or a numeric option are unusable;
/// failures of the server under test are counted in the [`Report`] instead.
pub async fn run(config: &Config) -> Result<Report, LoadError> {
    if config.clients == 0 {
        return Err(LoadError::Option("--clients must be at least 1"));
    }
    if config.duration.is_zero() {
        return Err(LoadError::Option("--duration must be positive"));
    }
    let limiter = match config.max_rps {
        Some(r) if !(r.is_finite() && r > 0.0) => return Err(LoadError::Option("--max-rps must be positive")),
        Some(r) => Some(Limiter {
            interval: Duration::from_secs_f64(1.0 / r),
            next: Mutex::new(Instant::now()),
        }),
        None => None,
    };
    let forms = Forms::new(config)?;
    let target = Arc::new(Target::new(&config.url, forms.authorization.clone(), config.timeout)?);
    let shared = Arc::new(Shared {
        target,
        forms,
        limiter,
        dpop: config.dpop,
    });

    let password_clients = config.password_client_count();
    let barrier = Arc::new(Barrier::new(config.clients + 1));
    let (start_tx, start_rx) = watch::channel(None);
    let mut tasks = Vec::with_capacity(config.clients);
    for i in 0..config.clients {
        // A key per virtual client, as distinct clients of a server would have.
        let dpop = config
            .dpop
            .then(|| DpopKey::generate(dpop::htu(&config.url)))
            .transpose()?;
        let c = VirtualClient {
            index: i,
            chain: i >= password_clients,
            dpop,
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(c.run(Arc::clone(&barrier), start_rx.clone())));
    }

    // Refresh chains have all signed in (or given up): start the clock.
    barrier.wait().await;
    let t0 = Instant::now();
    let window = Window {
        warm_end: t0 + config.warmup,
        end: t0 + config.warmup + config.duration,
    };
    start_tx.send_replace(Some(window));
    // The server's CPU over the measured window only: read at its ends.
    let server_cpu = config.server_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(window.warm_end.into()).await;
            let start = cpu_seconds(pid)?;
            tokio::time::sleep_until(window.end.into()).await;
            Some(cpu_seconds(pid)? - start)
        })
    });

    let mut total = ClientLog::default();
    let mut setup_failures = 0;
    for task in tasks {
        let log = task.await.expect("a virtual client panicked");
        total.password.merge(log.password);
        total.refresh.merge(log.refresh);
        if let Some(e) = log.setup_error {
            setup_failures += 1;
            total.setup_error.get_or_insert(e);
        }
        if let Some(e) = log.first_transport_error {
            total.first_transport_error.get_or_insert(e);
        }
    }

    let server_cpu_s = match server_cpu {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let mut grants = BTreeMap::new();
    if config.mode != Mode::Refresh || !total.password.is_empty() {
        grants.insert("password".to_owned(), total.password.finish(config.duration));
    }
    if config.mode != Mode::Password {
        grants.insert("refresh_token".to_owned(), total.refresh.finish(config.duration));
    }
    Ok(Report {
        mode: config.mode,
        clients: config.clients,
        password_clients,
        threads: config.threads,
        dpop: config.dpop,
        duration_s: config.duration.as_secs_f64(),
        url: config.url.clone(),
        grants,
        setup_failures,
        server_cpu_s,
        first_setup_error: total.setup_error,
        first_transport_error: total.first_transport_error,
    })
}

/// CPU seconds (user and system) process `pid` has used: fields 14 and 15
/// of `/proc/PID/stat`, counted after the command name (which may hold
/// spaces), in clock ticks of 100 Hz (`USER_HZ`, fixed on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    #[allow(clippy::cast_precision_loss, reason = "ticks of a benchmark run")]
    Some((utime + stime) as f64 / 100.0)
}

struct VirtualClient {
    index: usize,
    /// Follows a refresh chain (otherwise signs in again and again).
    chain: bool,
    /// This client's DPoP key and nonce, in DPoP mode.
    dpop: Option<DpopKey>,
    shared: Arc<Shared>,
}

impl VirtualClient {
    async fn run(mut self, barrier: Arc<Barrier>, mut start: watch::Receiver<Option<Window>>) -> ClientLog {
        let shared = &*self.shared;
        let mut conn = Connection::new(Arc::clone(&shared.target));
        let sign_in = shared.forms.password_body(self.index);
        let mut log = ClientLog::default();
        // The newest refresh token of this client's chain: the only one ever sent.
        let mut token = None;
        if self.chain {
            match initial_sign_in(&mut conn, self.dpop.as_mut(), shared.dpop, &sign_in, &mut log).await {
                Ok(t) => token = Some(t),
                Err(e) => log.setup_error = Some(e),
            }
        }
        barrier.wait().await;
        let window = match start.wait_for(Option::is_some).await {
            Ok(w) => w.expect("waited for Some"),
            Err(_) => return log,
        };

        loop {
            let now = Instant::now();
            if now >= window.end {
                break;
            }
            if let Some(limiter) = &shared.limiter {
                let slot = limiter.reserve(now);
                if slot >= window.end {
                    break;
                }
                tokio::time::sleep_until(slot.into()).await;
            }
            let refreshing = self.chain && token.is_some();
            let body = match &token {
                Some(t) if self.chain => shared.forms.refresh_body(t),
                _ => sign_in.clone(),
            };
            let (result, retries) = exchange(&mut conn, self.dpop.as_mut(), &body).await;
            let counted = window.counts(Instant::now());
            let grant = if refreshing {
                &mut log.refresh
            } else {
                &mut log.password
            };
            if counted {
                grant.nonce_retries(retries);
            }
            match result {
                Ok(Reply {
                    status: StatusCode::OK,
                    body,
                    latency,
                    ..
                }) => match parse_success(&body, shared.dpop) {
                    Ok(new_token) => {
                        if counted {
                            grant.success(latency);
                        }
                        // A 200 without a refresh token leaves the current one valid (RFC 6749 §6).
                        if self.chain && new_token.is_some() {
                            token = new_token;
                        }
                    }
                    Err(bad) => {
                        if counted {
                            grant.error(bad.kind());
                        }
                        token = None;
                    }
                },
                Ok(reply) => {
                    if counted {
                        grant.error(reply.status.as_str());
                    }
                    // Start a fresh chain: the old one may be revoked now.
                    token = None;
                }
                Err(Failure::Io(e)) => {
                    if counted {
                        grant.error("io");
                    }
                    log.transport_error(&e);
                    // The server may have rotated the token before the
                    // connection broke; presenting it again would be a replay.
                    token = None;
                    sleep(TRANSPORT_ERROR_PAUSE).await;
                }
                Err(Failure::Proof) => {
                    if counted {
                        grant.error("dpop_proof");
                    }
                    // Nothing was sent: the token is still the newest.
                    sleep(TRANSPORT_ERROR_PAUSE).await;
                }
            }
        }
        log
    }
}

/// Signs in before the clock starts, retrying on 429, 503 and transport
/// errors with exponential backoff (or `Retry-After`), bounded; in DPoP
/// mode also on `use_dpop_nonce` (those retries are not counted either).
async fn initial_sign_in(
    conn: &mut Connection,
    mut key: Option<&mut DpopKey>,
    dpop: bool,
    body: &Bytes,
    log: &mut ClientLog,
) -> Result<String, String> {
    let mut backoff = Duration::from_millis(100);
    let mut last = String::new();
    for attempt in 1..=SIGN_IN_ATTEMPTS {
        let wait = match exchange(conn, key.as_deref_mut(), body).await.0 {
            Ok(r) if r.status == StatusCode::OK => {
                return match parse_success(&r.body, dpop) {
                    Ok(Some(token)) => Ok(token),
                    Ok(None) => Err("sign-in returned no refresh_token".to_owned()),
                    Err(BadSuccess::Body) => Err("sign-in returned 200 without an access_token".to_owned()),
                    Err(BadSuccess::NotDpop(Some(t))) => Err(format!("sign-in returned token_type {t:?}, not DPoP")),
                    Err(BadSuccess::NotDpop(None)) => Err("sign-in returned no token_type, not DPoP".to_owned()),
                };
            }
            Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS || r.status == StatusCode::SERVICE_UNAVAILABLE => {
                last = format!("sign-in: HTTP {}", r.status);
                r.retry_after.unwrap_or(backoff)
            }
            Ok(r) => {
                let body = String::from_utf8_lossy(&r.body);
                let body: String = body.chars().take(200).collect();
                return Err(format!("sign-in: HTTP {}: {body}", r.status));
            }
            Err(Failure::Io(e)) => {
                log.transport_error(&e);
                last = format!("sign-in: {e}");
                backoff
            }
            Err(Failure::Proof) => return Err("sign-in: cannot make a DPoP proof".to_owned()),
        };
        if attempt < SIGN_IN_ATTEMPTS {
            sleep(wait.min(MAX_SIGN_IN_WAIT)).await;
            backoff *= 2;
        }
    }
    Err(format!("{last} (after {SIGN_IN_ATTEMPTS} attempts)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpop_mode_counts_only_dpop_tokens() {
        let dpop = br#"{"access_token":"a","token_type":"DPoP","refresh_token":"r"}"#;
        let bearer = br#"{"access_token":"a","token_type":"Bearer","refresh_token":"r"}"#;
        let untyped = br#"{"access_token":"a"}"#;
        assert_eq!(parse_success(dpop, true), Ok(Some("r".to_owned())));
        assert_eq!(
            parse_success(br#"{"access_token":"a","token_type":"dpop"}"#, true),
            Ok(None)
        );
        assert_eq!(
            parse_success(bearer, true),
            Err(BadSuccess::NotDpop(Some("Bearer".to_owned())))
        );
        assert_eq!(parse_success(untyped, true), Err(BadSuccess::NotDpop(None)));
        assert_eq!(parse_success(bearer, false), Ok(Some("r".to_owned())));
        assert_eq!(parse_success(untyped, false), Ok(None));
        assert_eq!(parse_success(b"{}", false), Err(BadSuccess::Body));
        assert_eq!(parse_success(b"<html>", true), Err(BadSuccess::Body));
    }

    #[test]
    fn only_a_400_use_dpop_nonce_with_a_nonce_asks_for_a_retry() {
        let reply = |status: StatusCode, body: &'static str, nonce: bool| Reply {
            status,
            body: Bytes::from_static(body.as_bytes()),
            retry_after: None,
            dpop_nonce: nonce.then(|| hyper::header::HeaderValue::from_static("n")),
            latency: Duration::ZERO,
        };
        let ask = r#"{"error":"use_dpop_nonce","error_description":"x"}"#;
        assert!(asks_for_nonce(&reply(StatusCode::BAD_REQUEST, ask, true)));
        assert!(!asks_for_nonce(&reply(StatusCode::BAD_REQUEST, ask, false)));
        assert!(!asks_for_nonce(&reply(StatusCode::UNAUTHORIZED, ask, true)));
        let other = r#"{"error":"invalid_dpop_proof"}"#;
        assert!(!asks_for_nonce(&reply(StatusCode::BAD_REQUEST, other, true)));
        assert!(!asks_for_nonce(&reply(StatusCode::BAD_REQUEST, "not json", true)));
    }
}
