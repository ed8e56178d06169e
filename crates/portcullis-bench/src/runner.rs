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
}

/// `Some(refresh_token)` for a usable token response, `None` without an access token.
fn parse_success(body: &[u8]) -> Option<Option<String>> {
    let r: TokenResponse = serde_json::from_slice(body).ok()?;
    r.access_token.map(|_| r.refresh_token)
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
    let shared = Arc::new(Shared { target, forms, limiter });

    let password_clients = config.password_client_count();
    let barrier = Arc::new(Barrier::new(config.clients + 1));
    let (start_tx, start_rx) = watch::channel(None);
    let tasks: Vec<_> = (0..config.clients)
        .map(|i| {
            let chain = i >= password_clients;
            let c = VirtualClient {
                index: i,
                chain,
                shared: Arc::clone(&shared),
            };
            tokio::spawn(c.run(Arc::clone(&barrier), start_rx.clone()))
        })
        .collect();

    // Refresh chains have all signed in (or given up): start the clock.
    barrier.wait().await;
    let t0 = Instant::now();
    let window = Window {
        warm_end: t0 + config.warmup,
        end: t0 + config.warmup + config.duration,
    };
    start_tx.send_replace(Some(window));

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
        duration_s: config.duration.as_secs_f64(),
        url: config.url.clone(),
        grants,
        setup_failures,
        first_setup_error: total.setup_error,
        first_transport_error: total.first_transport_error,
    })
}

struct VirtualClient {
    index: usize,
    /// Follows a refresh chain (otherwise signs in again and again).
    chain: bool,
    shared: Arc<Shared>,
}

impl VirtualClient {
    async fn run(self, barrier: Arc<Barrier>, mut start: watch::Receiver<Option<Window>>) -> ClientLog {
        let shared = &*self.shared;
        let mut conn = Connection::new(Arc::clone(&shared.target));
        let sign_in = shared.forms.password_body(self.index);
        let mut log = ClientLog::default();
        // The newest refresh token of this client's chain: the only one ever sent.
        let mut token = None;
        if self.chain {
            match initial_sign_in(&mut conn, &sign_in, &mut log).await {
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
            let result = conn.post(body).await;
            let counted = window.counts(Instant::now());
            let grant = if refreshing {
                &mut log.refresh
            } else {
                &mut log.password
            };
            match result {
                Ok(Reply {
                    status: StatusCode::OK,
                    body,
                    latency,
                    ..
                }) => match parse_success(&body) {
                    Some(new_token) => {
                        if counted {
                            grant.success(latency);
                        }
                        // A 200 without a refresh token leaves the current one valid (RFC 6749 §6).
                        if self.chain && new_token.is_some() {
                            token = new_token;
                        }
                    }
                    None => {
                        if counted {
                            grant.error("bad_body");
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
                Err(e) => {
                    if counted {
                        grant.error("io");
                    }
                    log.transport_error(&e);
                    // The server may have rotated the token before the
                    // connection broke; presenting it again would be a replay.
                    token = None;
                    sleep(TRANSPORT_ERROR_PAUSE).await;
                }
            }
        }
        log
    }
}

/// Signs in before the clock starts, retrying on 429, 503 and transport
/// errors with exponential backoff (or `Retry-After`), bounded.
async fn initial_sign_in(conn: &mut Connection, body: &Bytes, log: &mut ClientLog) -> Result<String, String> {
    let mut backoff = Duration::from_millis(100);
    let mut last = String::new();
    for attempt in 1..=SIGN_IN_ATTEMPTS {
        let wait = match conn.post(body.clone()).await {
            Ok(r) if r.status == StatusCode::OK => {
                return match parse_success(&r.body) {
                    Some(Some(token)) => Ok(token),
                    Some(None) => Err("sign-in returned no refresh_token".to_owned()),
                    None => Err("sign-in returned 200 without an access_token".to_owned()),
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
            Err(e) => {
                log.transport_error(&e);
                last = format!("sign-in: {e}");
                backoff
            }
        };
        if attempt < SIGN_IN_ATTEMPTS {
            sleep(wait.min(MAX_SIGN_IN_WAIT)).await;
            backoff *= 2;
        }
    }
    Err(format!("{last} (after {SIGN_IN_ATTEMPTS} attempts)"))
}
