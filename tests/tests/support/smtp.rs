//! An SMTP sink on loopback: a small server that speaks the protocol
//! (RFC 5321: greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing,
//! RSET, NOOP, QUIT) and keeps every message it accepts, for tests to
//! read. The server under test sends to it with its real mail client over
//! `smtp://127.0.0.1:PORT?tls=none`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM` (the envelope sender, without brackets).
    pub mail_from: String,
    /// `RCPT TO`, each without brackets.
    pub rcpt_to: Vec<String>,
    /// The message (headers and body), dot-stuffing undone, CRLF kept.
    pub data: String,
}

impl Received {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_owned());
                }
            }
        }
        value
    }

    /// The body (after the first blank line), quoted-printable decoded
    /// when so encoded, with CRLF as LF.
    pub fn body(&self) -> String {
        let raw = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        let text = if qp { quoted_printable(&raw) } else { raw };
        text.replace("\r\n", "\n")
    }

    /// The first word of the body that looks like a code `XXXX-XXXX`.
    pub fn code(&self) -> Option<String> {
        self.body()
            .split_whitespace()
            .find(|w| {
                w.len() == 9 && w.as_bytes()[4] == b'-' && w.chars().all(|c| c == '-' || c.is_ascii_alphanumeric())
            })
            .map(str::to_owned)
    }
}

/// The sink: its address and what it received.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let sink = Self {
            port: listener.local_addr().expect("addr").port(),
            received: Arc::default(),
            arrived: Arc::default(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let s = serving.clone();
                tokio::spawn(async move {
                    // A broken conversation is the client's problem; the
                    // test sees no mail.
                    let _ = tokio::time::timeout(Duration::from_secs(30), s.converse(conn)).await;
                });
            }
        });
        sink
    }

    /// The URL the server under test sends to.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits (at most 10 s) until `count` messages have arrived, and
    /// returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            let now = self.received();
            if now.len() >= count {
                return now;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{count} mails expected, {} arrived", self.received().len());
            }
        }
    }

    async fn converse(&self, conn: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = conn.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP test sink\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        // Bounded: a conversation of more than 1000 commands is a bug.
        for _ in 0..1000 {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let verb = command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                "HELO" | "NOOP" => b"250 OK\r\n",
                "RSET" => {
                    (from, to) = (String::new(), Vec::new());
                    b"250 OK\r\n"
                }
                "MAIL" => {
                    from = bracketed(&command);
                    b"250 OK\r\n"
                }
                "RCPT" => {
                    to.push(bracketed(&command));
                    b"250 OK\r\n"
                }
                "DATA" => {
                    write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                    let data = read_data(&mut lines).await?;
                    self.received.lock().expect("lock").push(Received {
                        mail_from: std::mem::take(&mut from),
                        rcpt_to: std::mem::take(&mut to),
                        data,
                    });
                    self.arrived.notify_waiters();
                    b"250 OK queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 command not implemented\r\n",
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }
}

/// RFC 2045 §6.7: soft line breaks removed, `=XX` decoded.
fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The address between `<` and `>` of a MAIL or RCPT command.
fn bracketed(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_default()
}

/// The message after DATA, up to the line with a single dot.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    // At most 10,000 lines: the mails under test are a few dozen.
    for _ in 0..10_000 {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            break;
        }
        if line == ".\r\n" || line == ".\n" {
            break;
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
    Ok(data)
}
