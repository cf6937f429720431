//! Building and running the service.
//!
//! [`App::build`] connects the store (migrating when configured), loads the key
//! ring and assembles the router; [`App::serve`] serves on a given listener until the
//! shutdown token is cancelled, then drains requests and background tasks within the
//! configured grace period. Tests bind `127.0.0.1:0` and call [`run`] or
//! `App::build(..).serve(..)`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jira_bridge_store::{Store, StoreOptions};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::crypto::{self, KeyRing, KeySource};
use crate::http::{self, AppState, Metrics};

/// The assembled service.
pub struct App {
    state: AppState,
    tasks: TaskTracker,
    failures: Arc<parking_lot::Mutex<Vec<String>>>,
}

/// Connect to the configured database, creating the SQLite data directory if needed.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    let sqlite_file = crypto::sqlite_path(url.expose_secret());
    if let Some(path) = &sqlite_file {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the data directory {}", dir.display())
                })?;
                restrict(dir, 0o700);
            }
        }
    }
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        ..StoreOptions::default()
    };
    let store = Store::connect(url.expose_secret(), &options)
        .await
        .context("cannot connect to the database (database.url / JIRA_BRIDGE_DATABASE_URL)")?;
    if let Some(path) = &sqlite_file {
        // Only the service's user reads the database (SQLite gives its -wal and -shm
        // files the same mode).
        restrict(path, 0o600);
    }
    Ok(store)
}

#[cfg(unix)]
fn restrict(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "could not restrict file permissions");
    }
}

#[cfg(not(unix))]
fn restrict(_path: &std::path::Path, _mode: u32) {}

/// Load the key ring, logging where it came from.
pub fn load_keys(config: &Config) -> anyhow::Result<KeyRing> {
    let (ring, source) = crypto::load_key_ring(config).context("master key")?;
    match &source {
        KeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            key_id = ring.current_key_id(),
            "no master key configured: generated one in a file beside the database; back it up, or set JIRA_BRIDGE_MASTER_KEY"
        ),
        KeySource::File(path) => {
            tracing::info!(path = %path.display(), key_id = ring.current_key_id(), "master key loaded from file")
        }
        KeySource::Configured => {
            tracing::info!(key_id = ring.current_key_id(), "master key configured")
        }
    }
    Ok(ring)
}

impl App {
    /// Connect, migrate (if `database.migrate_on_start`), load keys, build the router.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = connect_store(&config).await?;
        if config.database.migrate_on_start {
            store
                .migrate()
                .await
                .context("applying database migrations")?;
        } else {
            let pending = store.pending_migrations().await?;
            if !pending.is_empty() {
                anyhow::bail!(
                    "the database has {} pending migration(s); run `jira-bridge migrate` or set JIRA_BRIDGE_MIGRATE_ON_START=true",
                    pending.len()
                );
            }
        }
        let keys = load_keys(&config)?;
        let connections =
            Arc::new(crate::connections::Runtime::new(&config).context("Jira connections")?);
        let state = AppState {
            jobs: crate::jobs::Jobs::new(store.clone()),
            inbound: Arc::new(crate::webhooks_in::intake::Intake::new(
                store.clone(),
                &config.webhooks,
            )),
            store,
            keys: Arc::new(keys),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            connections,
        };
        Ok(Self {
            state,
            tasks: TaskTracker::new(),
            failures: Arc::default(),
        })
    }

    /// Shared state (store, keys, config).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Run a background task until shutdown; it gets the shutdown token and must
    /// return soon after it is cancelled. Shutdown waits for it (within the grace
    /// period). A task that fails cancels the token, stopping the whole service, and
    /// [`App::serve`] then answers an error naming it.
    pub fn spawn_background<F, Fut>(
        &self,
        name: &'static str,
        shutdown: &CancellationToken,
        task: F,
    ) where
        F: FnOnce(AppState, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let fut = task(self.state.clone(), shutdown.clone());
        let token = shutdown.clone();
        let failures = self.failures.clone();
        self.tasks.spawn(async move {
            match fut.await {
                Ok(()) => tracing::info!(task = name, "background task finished"),
                Err(e) => {
                    tracing::error!(task = name, error = ?e, "background task failed; shutting down");
                    failures.lock().push(format!("background task {name} failed: {e:#}"));
                    token.cancel();
                }
            }
        });
    }

    /// Serve on `listener` until `shutdown` is cancelled.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_seconds);
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        self.spawn_background("idempotency-purge", &shutdown, |state, token| async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tick.tick() => {
                        match state.store.purge_expired_idempotency(jira_bridge_store::Timestamp::now()).await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(purged = n, "expired idempotency keys removed"),
                            Err(e) => tracing::warn!(error = ?e, "could not purge idempotency keys"),
                        }
                    }
                }
            }
        });
        let router = http::router(self.state.clone());
        tracing::info!(address = %addr, backend = ?self.state.store.backend(), "serving");
        let server = axum::serve(listener, router.into_make_service())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { server.await });
        let ended_early = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            ended = &mut server => Some(ended),
        };
        let unexpected = ended_early.is_some();
        if unexpected {
            // The server stopped without being asked to: stop everything else too.
            tracing::error!("server stopped unexpectedly; shutting down");
            shutdown.cancel();
        }
        tracing::info!(grace_seconds = grace.as_secs(), "shutting down");
        self.tasks.close();
        let drained = tokio::time::timeout(grace, async {
            let served = match ended_early {
                Some(ended) => ended,
                None => server.await,
            };
            self.tasks.wait().await;
            served
        })
        .await;
        self.state.store.close().await;
        let failures = std::mem::take(&mut *self.failures.lock());
        let served = match drained {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(anyhow::Error::from(e).context("server failed")),
            Ok(Err(e)) => Err(anyhow::Error::from(e).context("server task panicked")),
            Err(_) => {
                tracing::warn!("grace period over; abandoning in-flight work");
                Ok(())
            }
        };
        match served {
            Err(e) => Err(e),
            Ok(()) if !failures.is_empty() => Err(anyhow::anyhow!(failures.join("; "))),
            Ok(()) if unexpected => Err(anyhow::anyhow!("server stopped unexpectedly")),
            Ok(()) => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }
}

/// Build and serve: the whole service on a listener, until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    crate::exports::handlers::observe(app.state());
    crate::jobs::start_runner(&app, &shutdown);
    let events = crate::events::EventsSettings {
        lease: Duration::from_secs(app.state().config.events.delivery_lease_seconds),
        ..crate::events::EventsSettings::default()
    };
    crate::events::start(&app, events, &shutdown);
    crate::changes::start(&app, &shutdown);
    app.spawn_background(
        "connections-sweep",
        &shutdown,
        crate::connections::sweep::run,
    );
    app.spawn_background("worklogs", &shutdown, crate::worklogs::worker::run);
    app.spawn_background(
        "ticket-sync-schedule",
        &shutdown,
        crate::tickets::handlers::schedule_sync,
    );
    app.spawn_background(
        "inbound-webhooks",
        &shutdown,
        crate::webhooks_in::worker::run,
    );
    app.spawn_background(
        "webhook-registrations",
        &shutdown,
        crate::webhooks_in::registration::run,
    );
    app.spawn_background(
        "webhook-poll-backstop",
        &shutdown,
        crate::webhooks_in::backstop,
    );
    app.serve(listener, shutdown).await
}
