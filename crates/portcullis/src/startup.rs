//! Building and running the server (binds first, so tests can use port 0).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use portcullis_store::SqlStore;
use tokio::net::TcpListener;

use crate::Settings;

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: SqlStore,
}

impl Application {
    /// Opens the database, applies migrations and binds the listener.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, or the address
    /// cannot be bound.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let store = SqlStore::connect(settings.database_url())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let router = crate::health::router(Arc::new(store.clone()));
        Ok(Self {
            listener,
            router,
            store,
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
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
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
