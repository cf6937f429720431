//! The durable job engine: long work (bulk creates, exports, syncs, backfills) split
//! into items that workers lease, run, retry and report on. See `docs/jobs.md`.
//!
//! - [`Jobs`] is the handle domain code and HTTP handlers hold: [`Jobs::enqueue`],
//!   [`Jobs::get`], [`Jobs::retry_failed`], [`Jobs::cancel`], and progress
//!   notifications ([`Jobs::subscribe`], [`JobObserver`]).
//! - [`JobHandler`] is what a capability implements for its kind of job; handlers go
//!   in a [`Registry`].
//! - [`JobRunner`] claims due items of the registered kinds and runs them:
//!   [`JobRunner::run`] until shutdown (the service), [`JobRunner::drain_until_idle`]
//!   inline (tests).
//!
//! The tables and the claim/lease/fencing rules live in
//! [`jira_bridge_store::jobs`]; this module adds backoff, heartbeats, concurrency,
//! wake-ups and progress.

pub mod api;
mod handler;
mod runner;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jira_bridge_store::jobs::{Job, JobCounts, NewJob, NewJobItem};
use jira_bridge_store::notify::Channel;
use jira_bridge_store::{ConnectionId, Store, StoreError, TenantId, Timestamp};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::http::AppState;
use crate::App;

pub use handler::{ItemOutcome, JobContext, JobHandler, Registry};
pub use jira_bridge_store::jobs::{ItemError, ItemState, JobId, JobItem, JobItemId, JobState};
pub use runner::{Backoff, DrainReport, JobRunner, RunnerConfig};

/// The handlers this service runs. Each capability with long work adds its handler
/// here (e.g. `registry.register(Arc::new(tickets::BulkCreate::new(state.clone())))`).
pub fn handlers(state: &AppState) -> Registry {
    let mut registry = Registry::new();
    registry.register(Arc::new(crate::worklogs::worker::BulkSync::new(
        state.clone(),
    )));
    crate::tickets::handlers::register(&mut registry, state);
    crate::exports::handlers::register(&mut registry, state);
    crate::code_links::backfill::register(&mut registry, state);
    registry
}

/// Start this process's job runner as a background task of `app`: the handlers of
/// [`handlers`], on the engine handle in the app's state (so an enqueue from a request
/// wakes it at once), until `shutdown`.
pub fn start_runner(app: &App, shutdown: &CancellationToken) {
    let registry = handlers(app.state());
    let lease = Duration::from_secs(app.state().config.jobs.lease_seconds.max(2));
    let config = RunnerConfig {
        lease,
        heartbeat: lease / 4,
        concurrency: usize::try_from(app.state().config.jobs.concurrency)
            .unwrap_or(16)
            .clamp(1, 256),
        ..RunnerConfig::default()
    };
    app.spawn_background("job runner", shutdown, move |state, token| async move {
        JobRunner::new(state.jobs.clone(), registry, config)
            .run(token)
            .await;
        Ok(())
    });
}

/// Attempts per item when the enqueuer does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Capacity of the in-process progress channel; slow subscribers skip ahead.
const PROGRESS_CHANNEL: usize = 1024;

/// Everything the job engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// No such job for this tenant.
    #[error("no such job")]
    NotFound,
    /// The request is not valid (e.g. an item depends on a later item).
    #[error("invalid job: {0}")]
    Invalid(String),
    /// The database failed.
    #[error("job store")]
    Store(#[source] StoreError),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            e => Self::Store(e),
        }
    }
}

/// A change of a job's counts or state, published after every item change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// The job.
    pub job_id: JobId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its kind.
    pub kind: String,
    /// State after the change.
    pub state: JobState,
    /// Counts after the change.
    pub counts: JobCounts,
}

impl JobProgress {
    /// The progress a job row shows.
    pub fn of(job: &Job) -> Self {
        Self {
            job_id: job.id.clone(),
            tenant_id: job.tenant_id.clone(),
            kind: job.kind.clone(),
            state: job.state,
            counts: job.counts,
        }
    }

    /// Whether the job has reached a terminal state.
    pub fn is_finished(&self) -> bool {
        self.state.is_terminal()
    }
}

/// Told about every job change made through this process's [`Jobs`] handle, after
/// the change is committed (for example the events module, which records
/// `job.progress` / `job.finished`). Called in order, awaited, from the worker or
/// request that made the change: keep it quick.
pub trait JobObserver: Send + Sync + 'static {
    /// A job changed.
    fn job_changed<'a>(&'a self, progress: &'a JobProgress) -> BoxFuture<'a, ()>;
}

/// The engine's clock: the system time plus an offset that tests can advance (to
/// make backoffs and leases expire without waiting).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        let offset = chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed));
        Timestamp::from(chrono::Utc::now() + offset)
    }

    /// `now() + d`.
    pub fn after(&self, d: Duration) -> Timestamp {
        let now = self.now().as_datetime();
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Timestamp::from(now.checked_add_signed(d).unwrap_or(now))
    }

    /// Move this clock (and every clone) forward.
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// A job to enqueue; see [`Jobs::enqueue`].
#[derive(Debug, Clone)]
pub struct EnqueueRequest {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Kind (names the handler).
    pub kind: String,
    /// Job-wide input shared by all items.
    pub payload: Value,
    /// Version of the payload shape (handlers read old versions after upgrades).
    pub payload_version: i64,
    /// The items, in processing order.
    pub items: Vec<NewJobItem>,
    /// A second enqueue with the same key (per tenant) answers the first job.
    pub idempotency_key: Option<String>,
    /// The Jira connection the job works on.
    pub connection_id: Option<ConnectionId>,
    /// Attempts per item ([`DEFAULT_MAX_ATTEMPTS`] when `None`).
    pub max_attempts: Option<u32>,
}

impl EnqueueRequest {
    /// A job of `kind` for `tenant` with these items, payload `{}` version 1.
    pub fn new(tenant: TenantId, kind: impl Into<String>, items: Vec<NewJobItem>) -> Self {
        Self {
            tenant,
            kind: kind.into(),
            payload: Value::Object(Default::default()),
            payload_version: 1,
            items,
            idempotency_key: None,
            connection_id: None,
            max_attempts: None,
        }
    }

    /// Set the job-wide payload and its version.
    pub fn payload(mut self, payload: Value, version: i64) -> Self {
        self.payload = payload;
        self.payload_version = version;
        self
    }

    /// Set the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Set the connection.
    pub fn connection(mut self, id: ConnectionId) -> Self {
        self.connection_id = Some(id);
        self
    }

    /// Set the attempts per item.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
}

/// Result of [`Jobs::enqueue`].
#[derive(Debug, Clone)]
pub struct Enqueued {
    /// The job.
    pub job: Job,
    /// `false` when the idempotency key named an existing job.
    pub created: bool,
}

struct Shared {
    store: Store,
    clock: Clock,
    wake: Notify,
    progress: broadcast::Sender<JobProgress>,
    observers: RwLock<Vec<Arc<dyn JobObserver>>>,
}

/// Handle on the job engine: enqueue, read, retry, cancel, and progress. Cheap to
/// clone; clones share the wake-up signal and the progress channel, so a runner built
/// from a handle wakes when that handle enqueues.
#[derive(Clone)]
pub struct Jobs {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    /// A handle on the jobs in `store`, on the system clock.
    pub fn new(store: Store) -> Self {
        Self::with_clock(store, Clock::default())
    }

    /// A handle with its own clock (tests advance it).
    pub fn with_clock(store: Store, clock: Clock) -> Self {
        let (progress, _) = broadcast::channel(PROGRESS_CHANNEL);
        Self {
            shared: Arc::new(Shared {
                store,
                clock,
                wake: Notify::new(),
                progress,
                observers: RwLock::new(Vec::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Create a job (or answer the existing one for a repeated idempotency key) and
    /// wake this process's runner. Items with `depends_on` start held until the item
    /// they name succeeds.
    pub async fn enqueue(&self, req: EnqueueRequest) -> Result<Enqueued, JobError> {
        if req.kind.is_empty() {
            return Err(JobError::Invalid("kind must not be empty".into()));
        }
        for (i, item) in req.items.iter().enumerate() {
            if item.depends_on.is_some_and(|d| d >= i) {
                return Err(JobError::Invalid(format!(
                    "item {i}: depends_on must name an earlier item"
                )));
            }
        }
        let new = NewJob {
            tenant_id: req.tenant,
            kind: req.kind,
            payload: req.payload,
            payload_version: req.payload_version,
            idempotency_key: req.idempotency_key,
            connection_id: req.connection_id,
            max_attempts: i64::from(req.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1)),
            items: req.items,
        };
        let created = self.shared.store.create_job(new, self.now()).await?;
        if created.created {
            self.publish(&created.job).await;
            self.wake();
        }
        Ok(Enqueued {
            job: created.job,
            created: created.created,
        })
    }

    /// A tenant's job.
    pub async fn get(&self, tenant: &TenantId, id: &JobId) -> Result<Job, JobError> {
        self.shared
            .store
            .get_job(tenant, id)
            .await?
            .ok_or(JobError::NotFound)
    }

    /// Make the job's failed items pending again (failed only; succeeded items never
    /// run twice). Answers the job and how many items will run again.
    pub async fn retry_failed(
        &self,
        tenant: &TenantId,
        id: &JobId,
    ) -> Result<(Job, u64), JobError> {
        let (job, n) = self
            .shared
            .store
            .retry_failed_job_items(tenant, id, self.now())
            .await?
            .ok_or(JobError::NotFound)?;
        if n > 0 {
            self.publish(&job).await;
            self.wake();
        }
        Ok((job, n))
    }

    /// Cancel the job's pending and held items; running items finish their attempt.
    /// Answers the job and how many items were cancelled.
    pub async fn cancel(&self, tenant: &TenantId, id: &JobId) -> Result<(Job, u64), JobError> {
        let (job, n) = self
            .shared
            .store
            .cancel_job(tenant, id, self.now())
            .await?
            .ok_or(JobError::NotFound)?;
        if n > 0 {
            self.publish(&job).await;
        }
        Ok((job, n))
    }

    /// Progress of every job changed through this handle (and its clones), as it
    /// happens, and, while [`crate::changes`] listens (PostgreSQL), of changes made
    /// by other replicas.
    pub fn subscribe(&self) -> broadcast::Receiver<JobProgress> {
        self.shared.progress.subscribe()
    }

    /// A change made by another replica: tell this process's subscribers and wake
    /// its runner (the change may have made items due, e.g. a new job). Observers are
    /// not called: the replica that made the change did that.
    pub(crate) fn remote_change(&self, progress: JobProgress) {
        let _ = self.shared.progress.send(progress);
        self.wake();
    }

    /// Add an observer called after every job change made through this handle.
    pub fn add_observer(&self, observer: Arc<dyn JobObserver>) {
        self.shared.observers.write().push(observer);
    }

    /// Wake idle workers of runners built from this handle.
    pub fn wake(&self) {
        self.shared.wake.notify_waiters();
    }

    pub(crate) fn wake_signal(&self) -> &Notify {
        &self.shared.wake
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    pub(crate) async fn publish(&self, job: &Job) {
        let progress = JobProgress::of(job);
        // No subscriber is fine.
        let _ = self.shared.progress.send(progress.clone());
        // Other replicas' subscribers (and idle runners) hear it through the store.
        match crate::changes::job_payload(&progress) {
            Ok(payload) => {
                if let Err(e) = self.shared.store.notify(Channel::Jobs, &payload).await {
                    tracing::debug!(job_id = %job.id, error = ?e, "could not notify other replicas of a job change");
                }
            }
            Err(e) => tracing::warn!(job_id = %job.id, error = ?e, "job change not encodable"),
        }
        let observers: Vec<Arc<dyn JobObserver>> = self.shared.observers.read().clone();
        for o in observers {
            o.job_changed(&progress).await;
        }
    }
}
