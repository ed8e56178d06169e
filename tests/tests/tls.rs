//! The built-in TLS listener: HTTPS with a PEM certificate, certificate
//! reload on file change and on SIGHUP without dropping connections, and
//! clear start-up errors. TLS does not touch storage, so SQLite only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis::tls::ReloadableCert;
use portcullis::{Application, Settings, TlsSettings};
use portcullis_store::testing::TestDb;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, pki_types};

const TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// A test certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: pki_types::CertificateDer<'static>,
}

/// A server certificate for `localhost`, signed by a [`Ca`].
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Portcullis test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, name: &str, serial: u64) -> Leaf {
        self.leaf_with_key(name, serial, KeyPair::generate().expect("key"))
    }

    fn leaf_with_key(&self, name: &str, serial: u64, key: KeyPair) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client that trusts only this CA and offers `alpn`.
    fn connector(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("root");
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocols")
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// The certificate and key files of a server.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let files = Self {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        files.write(leaf);
        files
    }

    fn write(&self, leaf: &Leaf) {
        std::fs::write(&self.cert, &leaf.cert_pem).expect("write certificate");
        std::fs::write(&self.key, &leaf.key_pem).expect("write key");
    }

    fn settings(&self, reload_interval: Duration) -> TlsSettings {
        TlsSettings {
            reload_interval,
            ..TlsSettings::new(&self.cert, &self.key)
        }
    }
}

/// A running HTTPS server.
struct Server {
    port: u16,
    cert: Arc<ReloadableCert>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn(db: &TestDb, listen: &str, tls: TlsSettings) -> Server {
    spawn_with(db, listen, tls, |_| {}).await
}

async fn spawn_with(db: &TestDb, listen: &str, tls: TlsSettings, tweak: impl FnOnce(&mut Settings)) -> Server {
    let mut settings = Settings::new(listen.parse().expect("addr"), &db.url, "https://127.0.0.1");
    settings.tls = Some(tls);
    tweak(&mut settings);
    let app = Application::build(&settings).await.expect("build app");
    let cert = app.tls_certificate().expect("TLS is on").clone();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Server {
        port,
        cert,
        _stop: stop,
    }
}

async fn connect(port: u16, connector: &tokio_rustls::TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = pki_types::ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

fn peer_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().expect("peer certificates")[0].to_vec()
}

/// Sends `GET /healthz` and reads one answer: status line, headers, body.
async fn healthz<S>(stream: &mut S, close: bool) -> (String, String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let connection = if close { "close" } else { "keep-alive" };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec()).expect("utf-8 head");
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .expect("content-length")
                    .parse()
                    .expect("length");
                if buf.len() >= end + 4 + length {
                    let body = String::from_utf8(buf[end + 4..end + 4 + length].to_vec()).expect("utf-8 body");
                    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
                    return (status.to_owned(), headers.to_ascii_lowercase(), body);
                }
            }
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "connection closed before a full answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(TIMEOUT, read).await.expect("answer in time")
}

fn assert_healthy((status, headers, body): &(String, String, String)) {
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("content-type: application/json"), "{headers}");
    assert!(headers.contains("cache-control: no-store"), "{headers}");
    assert_eq!(body, r#"{"status":"ok"}"#);
}

/// A fresh connection's certificate, polled until it is `want` or 5 s
/// have passed.
async fn wait_for_certificate(port: u16, connector: &tokio_rustls::TlsConnector, want: &[u8]) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = peer_certificate(&connect(port, connector).await.expect("handshake"));
        if seen == want || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_configured_certificate_and_plain_http_gets_no_answer() {
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let leaf = ca.leaf("first", 1);
    let files = Files::new(&leaf);
    let server = spawn(&db, "127.0.0.1:0", files.settings(POLL)).await;

    let mut tls = connect(server.port, &ca.connector(&[b"http/1.1"]))
        .await
        .expect("handshake");
    assert_eq!(peer_certificate(&tls), leaf.der);
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let answer = healthz(&mut tls, true).await;
    assert_healthy(&answer);
    assert!(answer.1.contains("connection: close"), "{}", answer.1);

    // Plain HTTP to the TLS port: no HTTP answer, whatever the socket does.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, plain.read_to_end(&mut got))
        .await
        .expect("closed in time");
    assert!(!got.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&got));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_does_not_hold_up_other_handshakes_and_is_cut_off() {
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let files = Files::new(&ca.leaf("first", 1));
    let server = spawn_with(&db, "127.0.0.1:0", files.settings(POLL), |s| {
        s.header_timeout = Duration::from_secs(1);
    })
    .await;

    // Connects and never says hello.
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).await.expect("connect");
    let started = tokio::time::Instant::now();
    let mut tls = connect(server.port, &ca.connector(&[b"http/1.1"]))
        .await
        .expect("handshake");
    assert_healthy(&healthz(&mut tls, true).await);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The handshake timeout (the header timeout) closes the silent one.
    let mut buf = [0; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("closed within the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_offers_http_1_1_only() {
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let files = Files::new(&ca.leaf("first", 1));
    let server = spawn(&db, "127.0.0.1:0", files.settings(POLL)).await;

    let mut both = connect(server.port, &ca.connector(&[b"h2", b"http/1.1"]))
        .await
        .expect("handshake");
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_healthy(&healthz(&mut both, true).await);
    // No ALPN at all is fine too.
    let mut none = connect(server.port, &ca.connector(&[])).await.expect("handshake");
    assert_healthy(&healthz(&mut none, true).await);
    // A client that insists on HTTP/2 is refused in the handshake.
    assert!(connect(server.port, &ca.connector(&[b"h2"])).await.is_err());
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_certificate_is_served_to_new_connections_while_open_ones_keep_working() {
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let first = ca.leaf("first", 1);
    let files = Files::new(&first);
    let server = spawn(&db, "127.0.0.1:0", files.settings(POLL)).await;
    let connector = ca.connector(&[b"http/1.1"]);

    let mut open = connect(server.port, &connector).await.expect("handshake");
    assert_healthy(&healthz(&mut open, false).await);

    let second = ca.leaf("second", 2);
    assert_ne!(first.der, second.der);
    files.write(&second);
    assert_eq!(
        wait_for_certificate(server.port, &connector, &second.der).await,
        second.der
    );
    assert_eq!(server.cert.current().cert[0].as_ref(), &second.der[..]);
    let mut fresh = connect(server.port, &connector).await.expect("handshake");
    assert_healthy(&healthz(&mut fresh, true).await);

    // The keep-alive connection from before the reload still answers, on
    // the certificate it started with.
    assert_healthy(&healthz(&mut open, true).await);
    assert_eq!(peer_certificate(&open), first.der);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_certificate_file_keeps_the_previous_certificate_serving() {
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let first = ca.leaf("first", 1);
    let files = Files::new(&first);
    let server = spawn(&db, "127.0.0.1:0", files.settings(POLL)).await;
    let connector = ca.connector(&[b"http/1.1"]);

    // Half a PEM, as if caught mid-write; the watcher has ten intervals
    // to (fail to) load it.
    std::fs::write(&files.cert, &first.cert_pem[..first.cert_pem.len() / 2]).expect("write");
    tokio::time::sleep(POLL * 10).await;
    let mut tls = connect(server.port, &connector).await.expect("handshake");
    assert_eq!(peer_certificate(&tls), first.der);
    assert_healthy(&healthz(&mut tls, true).await);

    // The same through a direct reload, which says what is wrong.
    let err = server.cert.reload().expect_err("broken file");
    assert!(err.to_string().contains(&files.cert.display().to_string()), "{err}");
    assert_eq!(server.cert.current().cert[0].as_ref(), &first.der[..]);

    // A certificate without its new key: refused too, old one kept.
    let second = ca.leaf("second", 2);
    std::fs::write(&files.cert, &second.cert_pem).expect("write");
    let err = server.cert.reload().expect_err("mismatched key");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(
        peer_certificate(&connect(server.port, &connector).await.expect("handshake")),
        first.der
    );

    // Once both files are good again the watcher picks them up.
    files.write(&second);
    assert_eq!(
        wait_for_certificate(server.port, &connector, &second.der).await,
        second.der
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_reload_serves_the_new_certificate() {
    // The path SIGHUP takes; the watcher polls only once an hour here.
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let files = Files::new(&ca.leaf("first", 1));
    let server = spawn(&db, "127.0.0.1:0", files.settings(Duration::from_secs(3600))).await;
    let connector = ca.connector(&[b"http/1.1"]);

    let second = ca.leaf("second", 2);
    files.write(&second);
    server.cert.reload().expect("reload");
    let mut tls = connect(server.port, &connector).await.expect("handshake");
    assert_eq!(peer_certificate(&tls), second.der);
    assert_healthy(&healthz(&mut tls, true).await);
    db.finish().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate() {
    // Safe to signal this test process: `Application::build` with TLS has
    // installed the SIGHUP handler, and tokio never uninstalls it. Other
    // TLS servers in this process reload too, which changes nothing for
    // them.
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let files = Files::new(&ca.leaf("first", 1));
    let server = spawn(&db, "127.0.0.1:0", files.settings(Duration::from_secs(3600))).await;
    let connector = ca.connector(&[b"http/1.1"]);

    let second = ca.leaf("second", 2);
    files.write(&second);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(
        wait_for_certificate(server.port, &connector, &second.der).await,
        second.der
    );
    db.finish().await;
}

/// The key inside a PKCS#8 PEM key, as PEM with `label`: for RSA that is
/// PKCS#1 (`RSA PRIVATE KEY`), for EC it is SEC1 (`EC PRIVATE KEY`).
fn unwrap_pkcs8(pkcs8_pem: &str, label: &str) -> String {
    use base64::Engine as _;
    use pki_types::pem::PemObject as _;
    // One DER element: (tag, contents, rest); short or long-form length.
    fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, start) = match d[1] {
            n if n < 0x80 => (usize::from(n), 2),
            n => {
                let k = usize::from(n & 0x7f);
                (d[2..2 + k].iter().fold(0, |a, &b| a << 8 | usize::from(b)), 2 + k)
            }
        };
        (d[0], &d[start..start + len], &d[start + len..])
    }
    let der = pki_types::PrivatePkcs8KeyDer::from_pem_slice(pkcs8_pem.as_bytes()).expect("PKCS#8");
    // PrivateKeyInfo ::= SEQUENCE { version, algorithm, OCTET STRING key }
    let (_, info, _) = tlv(der.secret_pkcs8_der());
    let (_, _, rest) = tlv(info);
    let (_, _, rest) = tlv(rest);
    let (tag, inner, _) = tlv(rest);
    assert_eq!(tag, 0x04, "OCTET STRING");
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64"))
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_rsa_and_ed25519_keys_in_pkcs8_sec1_and_pkcs1_form_are_accepted() {
    let ca = Ca::new();
    let ec = ca.leaf("ec", 1);
    let sec1 = unwrap_pkcs8(&ec.key_pem, "EC PRIVATE KEY");
    let rsa = ca.leaf_with_key(
        "rsa",
        2,
        KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key"),
    );
    let pkcs1 = unwrap_pkcs8(&rsa.key_pem, "RSA PRIVATE KEY");
    let ed = ca.leaf_with_key(
        "ed25519",
        3,
        KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
    );
    for (leaf, key_pem) in [
        (&ec, &ec.key_pem),
        (&ec, &sec1),
        (&rsa, &rsa.key_pem),
        (&rsa, &pkcs1),
        (&ed, &ed.key_pem),
    ] {
        let files = Files::new(leaf);
        std::fs::write(&files.key, key_pem).expect("write");
        let loaded = portcullis::tls::load_certified_key(&files.cert, &files.key)
            .unwrap_or_else(|e| panic!("{}: {e}", key_pem.lines().next().unwrap_or_default()));
        assert_eq!(loaded.cert[0].as_ref(), &leaf.der[..]);
    }

    // And an RSA certificate with a PKCS#1 key serves HTTPS.
    let db = TestDb::sqlite().await;
    let files = Files::new(&rsa);
    std::fs::write(&files.key, &pkcs1).expect("write");
    let server = spawn(&db, "127.0.0.1:0", files.settings(POLL)).await;
    let mut tls = connect(server.port, &ca.connector(&[b"http/1.1"]))
        .await
        .expect("handshake");
    assert_eq!(peer_certificate(&tls), rsa.der);
    assert_healthy(&healthz(&mut tls, true).await);
    db.finish().await;
}

/// The start-up error for `files`, which must name `path`.
async fn start_up_error(files: &Files, path: &Path) -> String {
    let mut settings = Settings::new("127.0.0.1:0".parse().expect("addr"), "sqlite::memory:", "https://x");
    settings.tls = Some(files.settings(POLL));
    let err = Application::build(&settings).await.err().expect("refused").to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    err
}

#[tokio::test]
async fn start_up_fails_with_the_file_named_when_the_certificate_or_key_is_unusable() {
    let ca = Ca::new();
    let files = Files::new(&ca.leaf("first", 1));

    let other = ca.leaf("other", 2);
    std::fs::write(&files.key, &other.key_pem).expect("write");
    let err = start_up_error(&files, &files.key).await;
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(err.contains(&files.cert.display().to_string()), "{err}");

    std::fs::write(&files.key, "").expect("write");
    let err = start_up_error(&files, &files.key).await;
    assert!(err.contains("holds no private key"), "{err}");

    std::fs::write(&files.cert, &other.key_pem).expect("write");
    let err = start_up_error(&files, &files.cert).await;
    assert!(err.contains("holds no certificate"), "{err}");

    std::fs::remove_file(&files.cert).expect("remove");
    let err = start_up_error(&files, &files.cert).await;
    assert!(err.contains("cannot read the TLS certificate"), "{err}");

    std::fs::write(&files.cert, &other.cert_pem).expect("write");
    std::fs::remove_file(&files.key).expect("remove");
    let err = start_up_error(&files, &files.key).await;
    assert!(err.contains("cannot read the TLS private key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_a_public_listen_address_is_accepted() {
    // Without TLS (and without --behind-tls-proxy) the same address is
    // refused: see health.rs.
    let db = TestDb::sqlite().await;
    let ca = Ca::new();
    let leaf = ca.leaf("first", 1);
    let files = Files::new(&leaf);
    let server = spawn(&db, "0.0.0.0:0", files.settings(POLL)).await;
    let mut tls = connect(server.port, &ca.connector(&[b"http/1.1"]))
        .await
        .expect("handshake");
    assert_eq!(peer_certificate(&tls), leaf.der);
    assert_healthy(&healthz(&mut tls, true).await);
    db.finish().await;
}
