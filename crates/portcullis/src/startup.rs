//! Building and running the server (binds first, so tests can use port 0).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use portcullis_store::{SqlStore, Store};
use portcullis_token::TokenService;
use tokio::net::TcpListener;

use crate::Settings;

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: SqlStore,
    retry_window: std::time::Duration,
}

impl Application {
    /// Opens the database, applies migrations, loads (or creates) the
    /// signing key and binds the listener.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, the token service
    /// cannot start, or the address cannot be bound.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let store = SqlStore::connect(settings.database_url())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        let tokens = TokenService::start(shared, settings.token.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the token service: {e}"))?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let router = crate::health::router(Arc::new(store.clone())).merge(tokens.router());
        Ok(Self {
            listener,
            router,
            store,
            retry_window: settings.token.refresh_retry_window,
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

    /// Serves until `shutdown` completes, then drains in-flight requests and
    /// closes the database.
    ///
    /// # Errors
    /// When the server fails to accept connections.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        // The peer address feeds sign-in throttling.
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let housekeeping = tokio::spawn(housekeeping(self.store.clone(), self.retry_window));
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        housekeeping.abort();
        served?;
        self.store.close().await;
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// As [`Application::run_until`].
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Periodic clean-up: sealed refresh successors are forgotten once their
/// retry window is over, so a copy of the database plus an old refresh
/// token cannot reveal a live one.
async fn housekeeping(store: SqlStore, retry_window: std::time::Duration) {
    use portcullis_store::{RefreshStore as _, UnixTime};
    let window = i64::try_from(retry_window.as_secs()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tick.tick().await;
        let cutoff = UnixTime::now().plus(-window - 1);
        match store.clear_successors(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(cleared = n, "forgot expired refresh successors"),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
