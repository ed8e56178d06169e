//! Building and running the server (binds first, so tests can use port 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use portcullis_store::{SqlStore, Store};
use portcullis_token::TokenService;
use tokio::net::TcpListener;

use crate::Settings;

/// Opens the database at `url` and applies pending migrations: what every
/// command does first.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn open_database(url: &str) -> anyhow::Result<SqlStore> {
    let store = SqlStore::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
    Ok(store)
}

/// Warns about (or with `strict`, refuses) SQLite database files that
/// group or others may read or write: they hold the signing keys and the
/// password hashes.
///
/// # Errors
/// With `strict`, when such a file exists.
pub fn check_database_files(url: &str, strict: bool) -> anyhow::Result<()> {
    for (file, mode) in portcullis_store::exposed_files(portcullis_store::database_files(url)) {
        let what = format!(
            "the database file {} is open to group or others (mode {mode:o}); `chmod 600` it",
            file.display()
        );
        if strict {
            anyhow::bail!("{what} (refusing to start: `strict_permissions` is set)");
        }
        tracing::warn!("{what}, or set `strict_permissions` to refuse to start");
    }
    Ok(())
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: SqlStore,
    tokens: Arc<TokenService>,
    header_timeout: Duration,
    shutdown_grace: Duration,
    trusted_proxies: Arc<[crate::proxy::IpBlock]>,
    tls: Option<crate::tls::Tls>,
}

impl Application {
    /// Opens the database, applies migrations, loads (or creates) the
    /// signing key, loads the TLS certificate if any and binds the listener.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, the token service
    /// cannot start, the TLS certificate or key cannot be loaded, or the
    /// address cannot be bound.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        if settings.tls.is_none() && !settings.listen.ip().is_loopback() && !settings.behind_tls_proxy {
            anyhow::bail!(
                "refusing to serve plain HTTP on {}: the token endpoint carries passwords and tokens. \
                 Listen on a loopback address, serve TLS (--tls-cert and --tls-key), or put a \
                 TLS-terminating proxy in front and set --behind-tls-proxy (PORTCULLIS_BEHIND_TLS_PROXY=true)",
                settings.listen
            );
        }
        let tls = settings.tls.as_ref().map(crate::tls::Tls::start).transpose()?;
        check_database_files(settings.database_url(), settings.strict_permissions)?;
        let store = open_database(settings.database_url()).await?;
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        let mut token = settings.token.clone();
        token.body_timeout = settings.body_timeout;
        let tokens = TokenService::start(shared, token)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the token service: {e}"))?;
        if settings.behind_tls_proxy && settings.trusted_proxies.is_empty() {
            tracing::warn!(
                "behind a proxy without --trusted-proxies: every client has the proxy's address, so sign-in \
                 throttling and the per-address sign-in limit count all clients as one"
            );
        }
        let mailer = match &settings.mail {
            Some(mail) => Some(Arc::new(
                crate::mail::Mailer::new(mail, &settings.token.issuer).map_err(|e| anyhow::anyhow!("mail: {e}"))?,
            )),
            None => {
                tracing::info!("mail is off (no smtp_url): password reset and email verification answer 501");
                None
            }
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let router = crate::health::router(Arc::new(store.clone()))
            .merge(tokens.router())
            .merge(crate::admin_api::router(store.clone(), tokens.clone(), mailer))
            .merge(crate::openapi::router())
            .merge(crate::ui::router(settings))
            .route(
                "/metrics",
                axum::routing::get(crate::metrics::render).with_state(crate::metrics::Scrape {
                    handle: crate::metrics::handle(),
                    store: store.clone(),
                    tokens: tokens.clone(),
                }),
            )
            .layer(axum::middleware::from_fn(crate::metrics::track))
            // A body that trickles in is cut off (408) rather than holding
            // a connection and a task for as long as the sender likes.
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(settings.body_timeout))
            // A span per request: method, matched route (never the query
            // string), status, and the client once authenticated; every
            // event of the request carries them. One `debug` event per
            // answer with its latency.
            .layer(
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(|req: &axum::extract::Request| {
                        let path = req
                            .extensions()
                            .get::<axum::extract::MatchedPath>()
                            .map_or("unmatched", axum::extract::MatchedPath::as_str);
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path,
                            status = tracing::field::Empty,
                            client_id = tracing::field::Empty,
                        )
                    })
                    .on_request(())
                    .on_response(
                        |res: &axum::response::Response, latency: Duration, span: &tracing::Span| {
                            span.record("status", res.status().as_u16());
                            tracing::debug!(latency_ms = latency.as_secs_f64() * 1000.0, "answered");
                        },
                    )
                    // 5xx are logged where they happen, with their cause.
                    .on_failure(()),
            )
            .layer(axum::middleware::from_fn(crate::http::one_host));
        Ok(Self {
            listener,
            router,
            store,
            tokens,
            header_timeout: settings.header_timeout,
            shutdown_grace: settings.shutdown_grace,
            trusted_proxies: settings.trusted_proxies.clone().into(),
            tls,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    ///
    /// # Errors
    /// When the socket has no local address (it always has once bound).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The port actually bound.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// The certificate being served, when TLS is on.
    #[must_use]
    pub fn tls_certificate(&self) -> Option<&Arc<crate::tls::ReloadableCert>> {
        self.tls.as_ref().map(crate::tls::Tls::certificate)
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and
    /// closes the database.
    ///
    /// # Errors
    /// When the server fails to accept connections.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.store.clone(), self.tokens.clone()));
        let (tls, reloader) = match self.tls {
            Some(tls) => {
                let (acceptor, reloader) = tls.into_parts();
                (Some(acceptor), Some(tokio::spawn(reloader)))
            }
            None => (None, None),
        };
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let http = {
            let mut b = hyper::server::conn::http1::Builder::new();
            // The header timeout runs from the moment the connection is
            // ready for a request: it also closes idle keep-alive
            // connections, and a slow-loris client that trickles its
            // headers is cut off when it runs out.
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(self.header_timeout)
                // Request heads over 32 KiB are refused (431).
                .max_header_size(32 * 1024)
                .max_buf_size(64 * 1024);
            b
        };
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin or stop serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            // The client's address (the peer, or whom a trusted proxy
            // forwards for) feeds sign-in throttling.
            let router = self.router.clone();
            let trusted = self.trusted_proxies.clone();
            let service = tower::ServiceExt::map_request(
                router,
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    let client = crate::proxy::client_address(peer, req.headers(), &trusted);
                    req.extensions_mut().insert(axum::extract::ConnectInfo(client));
                    req
                },
            );
            let service = hyper_util::service::TowerToHyperService::new(service);
            let ended = |result: hyper::Result<()>| {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            };
            match &tls {
                None => {
                    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move { ended(conn.await) });
                }
                // The handshake runs in the connection's task, bounded
                // like the request headers, so a slow or silent client
                // never holds up accepting.
                Some(acceptor) => {
                    let (acceptor, http, watcher) = (acceptor.clone(), http.clone(), graceful.watcher());
                    let handshake_timeout = self.header_timeout;
                    tokio::spawn(async move {
                        let Some(stream) = crate::tls::handshake(&acceptor, stream, handshake_timeout).await else {
                            return;
                        };
                        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        ended(watcher.watch(conn).await);
                    });
                }
            }
        }
        drop(self.listener);
        // Requests in flight finish (bounded); idle connections close now.
        if tokio::time::timeout(self.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: requests still in flight after the grace period were dropped");
        }
        housekeeping.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        self.store.close().await;
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// As [`Application::run_until`], or when the signal handlers cannot be
    /// installed.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = shutdown_signal()?;
        self.run_until(stop).await
    }
}

/// Periodic work, every 30 s on each instance:
/// - forget sealed refresh successors whose retry window is over (with a
///   minute's margin for clock skew between instances), so a copy of the
///   database plus an old refresh token cannot reveal a live one;
/// - fold the latency samples recorded since the last round into the
///   Prometheus histograms: the recorder keeps every sample until then
///   (or until a scrape), so without this the memory of an unscraped
///   server would grow with every request;
/// - maintain the signing keys (rotation period, retiring superseded keys)
///   and reload them, so that a key created by another instance or the
///   CLI is published, and used once its publication delay has passed;
/// - every 10 minutes, delete throttle counters, refresh families and
///   revocation-feed entries that can no longer matter.
async fn housekeeping(store: SqlStore, tokens: Arc<TokenService>) {
    use portcullis_store::{
        ChallengeStore as _, CodeStore as _, RefreshStore as _, RevocationStore as _, ThrottleStore as _, UnixTime,
    };
    let window = i64::try_from(tokens.config().refresh_retry_window.as_secs()).unwrap_or(i64::MAX);
    let feed_keep = i64::try_from(tokens.config().access_token_ttl.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_add(86_400);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    for round in 0u64.. {
        tick.tick().await;
        let now = UnixTime::now();
        crate::metrics::handle().run_upkeep();
        let started = std::time::Instant::now();
        match store.clear_successors(now.plus(-window.saturating_add(60))).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(
                successors = n,
                ms = started.elapsed().as_millis(),
                "housekeeping: cleared"
            ),
            Err(e) => tracing::warn!(error = %e, "housekeeping: clearing refresh successors failed"),
        }
        if round > 0 {
            if let Err(e) = tokens.maintain_keys().await {
                tracing::warn!(error = %e, "housekeeping: signing-key maintenance failed");
            }
        }
        if round % 20 == 0 {
            // Throttle windows are at most an hour; a revoked or expired
            // family answers like an unknown one after a day.
            let started = std::time::Instant::now();
            let purged = async {
                let t = store.purge_throttle(now.plus(-2 * 3600)).await?;
                let f = store.purge_families(now.plus(-86_400)).await?;
                store.purge_codes(now).await?;
                // Used authorization codes are kept an hour past expiry,
                // so a late replay still revokes what the first use started.
                store.purge_challenges(now, now.plus(-3600)).await?;
                // Feed entries matter while tokens they cover can be live.
                store.purge_revocations(now.plus(-feed_keep)).await?;
                Ok::<_, portcullis_store::StoreError>((t, f))
            };
            match purged.await {
                Ok((0, 0)) => {}
                Ok((t, f)) => tracing::info!(
                    throttle_counters = t,
                    families = f,
                    ms = started.elapsed().as_millis(),
                    "housekeeping: purged"
                ),
                Err(e) => tracing::warn!(error = %e, "housekeeping: purge failed"),
            }
        }
    }
}

/// A future that completes on SIGINT or SIGTERM. The handlers are
/// installed when this is called, not when the future is first polled, so
/// a signal that arrives right after start-up is not lost (and does not
/// kill the process outright).
///
/// # Errors
/// When the handlers cannot be installed.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}
