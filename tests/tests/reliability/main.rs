//! The reliability suite: races, crashes, database outages, hostile input
//! and floods, on SQLite and on PostgreSQL (docs/reliability.md).
//!
//! Scenarios that measure latency or memory take the suite's lock
//! exclusively ([`alone`]), the others share it ([`shared`]), so that a
//! measurement never runs beside another load.

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod crash;
mod outage;
mod races;
mod stuffing;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static SUITE: RwLock<()> = RwLock::const_new(());

/// For a scenario that measures: nothing else of this suite runs meanwhile.
async fn alone() -> RwLockWriteGuard<'static, ()> {
    SUITE.write().await
}

/// For a scenario that only loads the machine.
async fn shared() -> RwLockReadGuard<'static, ()> {
    SUITE.read().await
}

/// The real binary, built by this package.
const BIN: &str = env!("CARGO_BIN_EXE_portcullis-e2e");

/// A running `portcullis serve` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `portcullis serve` on `url` with `extra` flags and waits for
    /// the address it logs.
    fn start(url: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--issuer", support::ISSUER])
            .args(extra)
            .env("PORTCULLIS_DATABASE_URL", url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("address=").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address");
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Resident memory, from `/proc`.
    fn rss_bytes(&self) -> u64 {
        rss_of(self.pid())
    }
}

/// A process's resident memory, from `/proc`.
fn rss_of(pid: u32) -> u64 {
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /readyz` until it answers 200; returns how long that took.
async fn wait_ready(http: &support::Http, base: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(res) = http.get(format!("{base}/readyz")).send().await {
            if res.status() == 200 {
                return start.elapsed();
            }
        }
        assert!(start.elapsed() < within, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP answer read off a raw connection.
struct RawAnswer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Writes `request` on a fresh connection to `base` and reads one answer
/// (up to 10 s).
async fn raw_exchange(base: &str, request: &[u8]) -> RawAnswer {
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(request).await.expect("write");
    let answer = read_answer(&mut conn).await;
    check_raw(request, &answer);
    answer
}

/// Checks a raw answer against `docs/openapi.json` like every answer read
/// through [`support::Http`]; `request` starts with its request line.
fn check_raw(request: &[u8], answer: &RawAnswer) {
    let line = String::from_utf8_lossy(request);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let content_type = answer.headers.get("content-type").map(String::as_str);
    support::openapi::check_answer(method, target, answer.status, content_type, &answer.body);
}

/// Reads one HTTP/1.1 answer with a `content-length` (up to 10 s).
async fn read_answer(conn: &mut tokio::net::TcpStream) -> RawAnswer {
    try_read_answer(conn).await.expect("an answer within 10 s")
}

/// [`read_answer`], or `None` when the connection ends first or 10 s pass.
async fn try_read_answer(conn: &mut tokio::net::TcpStream) -> Option<RawAnswer> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())?;
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(RawAnswer { status, headers, body })
    })
    .await
    .ok()
    .flatten()
}

/// The `q`-quantile of `samples` (sorted in place).
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[i]
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A pseudo-random number below `n`, from the clock (the scenarios need
/// variety between runs, not quality).
fn jitter(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos.wrapping_mul(2_654_435_761)) % n.max(1)
}
