//! The built-in TLS listener: a PEM certificate chain and key served with
//! rustls (aws-lc-rs, TLS 1.2 and 1.3, ALPN `http/1.1`), reloaded on
//! SIGHUP or when either file changes, without dropping connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use x509_cert::der::Decode as _;

use crate::settings::TlsSettings;

/// The crypto provider for TLS: aws-lc-rs, named explicitly because other
/// dependencies may compile in a second provider.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a certificate chain and its private key from PEM files.
///
/// # Errors
/// When a file cannot be read, holds no certificate or no private key, the
/// key is of an unsupported kind, or the key does not match the
/// certificate. The message names the file.
pub fn load_certified_key(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| anyhow::anyhow!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("the TLS certificate {} is not valid PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "the TLS certificate {} holds no certificate (expected PEM \"BEGIN CERTIFICATE\")",
            cert.display()
        );
    }
    let key_pem =
        std::fs::read(key).map_err(|e| anyhow::anyhow!("cannot read the TLS private key {}: {e}", key.display()))?;
    let private = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => anyhow::bail!(
            "the TLS private key {} holds no private key (expected PEM PKCS#8, SEC1 or PKCS#1)",
            key.display()
        ),
        Err(e) => anyhow::bail!("the TLS private key {} is not valid PEM: {e}", key.display()),
    };
    let signing = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| anyhow::anyhow!("the TLS private key {} cannot be used: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // Unknown: the key cannot tell its public half; the handshake
        // would fail visibly rather than serve a wrong certificate.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => anyhow::bail!(
            "the TLS private key {} does not match the certificate {}",
            key.display(),
            cert.display()
        ),
        Err(e) => anyhow::bail!("the TLS certificate {} cannot be used: {e}", cert.display()),
    }
}

/// The certificate being served, swapped by [`ReloadableCert::reload`]:
/// new handshakes get the new one, open connections keep going.
#[derive(Debug)]
pub struct ReloadableCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads the certificate and key named in `settings`.
    ///
    /// # Errors
    /// As [`load_certified_key`].
    pub fn load(settings: &TlsSettings) -> anyhow::Result<Self> {
        let loaded = load_certified_key(&settings.cert, &settings.key)?;
        log_loaded("TLS: serving certificate", &settings.cert, &loaded);
        Ok(Self {
            cert: settings.cert.clone(),
            key: settings.key.clone(),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Reads both files again and serves them from the next handshake on.
    /// On failure (say, a file caught half-written) the previous
    /// certificate stays and a warning is logged.
    ///
    /// # Errors
    /// As [`load_certified_key`]; the previous certificate is still served.
    pub fn reload(&self) -> anyhow::Result<()> {
        match load_certified_key(&self.cert, &self.key) {
            Ok(loaded) => {
                log_loaded("TLS: certificate reloaded", &self.cert, &loaded);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS: certificate reload failed; still serving the previous certificate");
                Err(e)
            }
        }
    }

    /// The certificate and key served to new handshakes.
    #[must_use]
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Logs which certificate is served: its serial number and expiry, `?`
/// where they cannot be read (rustls has accepted the certificate already;
/// this is only for the operator).
fn log_loaded(message: &str, path: &Path, loaded: &CertifiedKey) {
    let fields = loaded.cert.first().and_then(|leaf| leaf_fields(leaf));
    tracing::info!(
        certificate = %path.display(),
        serial = fields.as_ref().map_or("?", |f| f.serial.as_str()),
        not_after = fields.as_ref().map_or("?", |f| f.not_after.as_str()),
        "{message}"
    );
}

/// What the log says about a certificate.
struct LeafFields {
    /// Serial number, lowercase hex.
    serial: String,
    /// `notAfter`, as `YYYY-MM-DDTHH:MM:SSZ`.
    not_after: String,
}

/// Serial number and expiry of a DER certificate; `None` if it does not
/// decode as an RFC 5280 certificate.
fn leaf_fields(der: &[u8]) -> Option<LeafFields> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate();
    // A leading zero only keeps a high-bit serial positive.
    let serial = match tbs.serial_number().as_bytes() {
        [0, rest @ ..] if !rest.is_empty() => rest,
        s => s,
    };
    Some(LeafFields {
        serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
        not_after: tbs.validity().not_after.to_date_time().to_string(),
    })
}

/// Size, modification time and (on Unix) inode of the certificate and key
/// files: a change in any means a file was rewritten or replaced.
type Stamp = [Option<(u64, Option<SystemTime>, u64)>; 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    fn one(path: &Path) -> Option<(u64, Option<SystemTime>, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some((meta.len(), meta.modified().ok(), inode))
    }
    [one(cert), one(key)]
}

/// The TLS side of a server: the acceptor for new connections and what
/// reloads its certificate.
pub struct Tls {
    cert: Arc<ReloadableCert>,
    /// The files as they were just before the first load.
    loaded: Stamp,
    acceptor: TlsAcceptor,
    reload_interval: Duration,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Tls {
    /// Loads the certificate and installs the SIGHUP handler (now, so that
    /// a SIGHUP right after start-up reloads rather than kills).
    ///
    /// # Errors
    /// As [`load_certified_key`], or when the signal handler cannot be
    /// installed.
    pub fn start(settings: &TlsSettings) -> anyhow::Result<Self> {
        let loaded = stamp(&settings.cert, &settings.key);
        let cert = Arc::new(ReloadableCert::load(settings)?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("cannot configure TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        // The server speaks HTTP/1.1 only; a client that offers ALPN
        // without it is refused in the handshake, not misunderstood later.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        #[cfg(unix)]
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| anyhow::anyhow!("cannot install the SIGHUP handler: {e}"))?;
        Ok(Self {
            cert,
            loaded,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            reload_interval: settings.reload_interval,
            #[cfg(unix)]
            hangup,
        })
    }

    /// The certificate being served.
    #[must_use]
    pub fn certificate(&self) -> &Arc<ReloadableCert> {
        &self.cert
    }

    /// The acceptor for new connections, and the reloader to run beside
    /// the accept loop: it reloads on SIGHUP and, every reload interval,
    /// when either file has changed and then stayed the same for one more
    /// interval (so a file being written is not read half-way).
    pub fn into_parts(self) -> (TlsAcceptor, impl Future<Output = ()> + Send + 'static) {
        let Self {
            cert,
            mut loaded,
            acceptor,
            reload_interval,
            #[cfg(unix)]
            mut hangup,
        } = self;
        let reloader = async move {
            let mut previous = loaded;
            let mut tick = tokio::time::interval(reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hup = hangup.recv();
                #[cfg(not(unix))]
                let hup = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = tick.tick() => {
                        let c = cert.clone();
                        let now = tokio::task::spawn_blocking(move || stamp(&c.cert, &c.key))
                            .await
                            .unwrap_or_default();
                        let settled = now == previous;
                        previous = now;
                        if now == loaded || !settled {
                            continue;
                        }
                    }
                    Some(()) = hup => tracing::info!("TLS: SIGHUP, reloading the certificate"),
                }
                // A failure is logged and keeps the old certificate; the
                // next change to either file tries again.
                let c = cert.clone();
                let reloaded = tokio::task::spawn_blocking(move || {
                    let now = stamp(&c.cert, &c.key);
                    let _ = c.reload();
                    now
                });
                loaded = reloaded.await.unwrap_or_default();
            }
        };
        (acceptor, reloader)
    }
}

/// Runs the TLS handshake on `stream`, for at most `timeout`; `None` (and
/// a debug line) when it fails or takes too long.
pub async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream, timeout: Duration) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair, SerialNumber, date_time_ymd};

    use super::*;

    fn cert(serial: &[u8], not_after: (i32, u8, u8)) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("certificate").der().to_vec()
    }

    #[test]
    fn serial_and_expiry_are_read_from_a_certificate() {
        // A high-bit serial (encoded with a leading zero); until 2049 the
        // expiry is a UTCTime, from 2050 on a GeneralizedTime.
        let f = leaf_fields(&cert(&[0xbe, 0xef], (2049, 12, 31))).expect("fields");
        assert_eq!(f.serial, "beef");
        assert_eq!(f.not_after, "2049-12-31T00:00:00Z");
        let f = leaf_fields(&cert(&[7], (2106, 2, 7))).expect("fields");
        assert_eq!(f.serial, "07");
        assert_eq!(f.not_after, "2106-02-07T00:00:00Z");
    }

    #[test]
    fn anything_unexpected_gives_nothing() {
        assert!(leaf_fields(b"").is_none());
        assert!(leaf_fields(b"not der at all").is_none());
        let whole = cert(&[1], (2049, 12, 31));
        assert!(leaf_fields(&whole[..whole.len() / 2]).is_none());
    }
}
