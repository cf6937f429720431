//! What a capability implements to run its kind of job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jira_bridge_store::jobs::{ItemError, Job, JobItem};
use jira_bridge_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The outcome of one item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    /// Done; the value is stored as the item's `result`.
    Succeeded(Value),
    /// Failed. Retryable failures run again after a backoff while attempts are left;
    /// others fail the item at once (a later `retry` of the job can run it again).
    Failed {
        /// Why (stored as the item's `error`).
        error: ItemError,
        /// Whether trying again may help (timeouts, 5xx, connection errors).
        retryable: bool,
    },
    /// Not now: run again after this delay. The attempt does not count against
    /// `max_attempts`, so the handler must not answer this forever (use it for
    /// "the site asked us to wait", not for errors).
    RetryAfter(Duration),
}

impl ItemOutcome {
    /// A permanent failure.
    pub fn failed(error: ItemError) -> Self {
        Self::Failed {
            error,
            retryable: false,
        }
    }

    /// A retryable failure.
    pub fn retryable(error: ItemError) -> Self {
        Self::Failed {
            error,
            retryable: true,
        }
    }
}

/// What a handler gets besides its items.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job (payload, payload version, tenant, connection), as of the claim.
    pub job: Job,
    /// The database.
    pub store: Store,
    /// The id of the worker running the batch (its leases' owner).
    pub worker_id: String,
    /// Cancelled when the runner shuts down: finish quickly or return.
    pub shutdown: CancellationToken,
}

/// A kind of job. Implementations must be idempotent per item: an item can run more
/// than once when a worker dies after the effect but before its outcome was recorded
/// (see `docs/jobs.md`).
pub trait JobHandler: Send + Sync + 'static {
    /// The job kind this handler runs, e.g. `tickets.bulk_create`.
    fn kind(&self) -> &str;

    /// Largest number of items handed to one [`JobHandler::run`] (e.g. 50 for Jira's
    /// bulk create).
    fn batch_size(&self) -> u32 {
        1
    }

    /// Whether a batch holds only items with the same group key.
    fn group_batches(&self) -> bool {
        false
    }

    /// How long one batch may take before its items are failed (retryably).
    fn timeout(&self) -> Duration {
        Duration::from_secs(300)
    }

    /// Run a batch: one outcome per item, in the items' order. A missing outcome
    /// counts as a retryable failure.
    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        items: &'a [JobItem],
    ) -> BoxFuture<'a, Vec<ItemOutcome>>;
}

/// The handlers a runner can run, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a handler (replacing one of the same kind).
    pub fn register(&mut self, handler: Arc<dyn JobHandler>) -> &mut Self {
        self.handlers.insert(handler.kind().to_owned(), handler);
        self
    }

    /// The handler of a kind.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(kind)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.handlers.keys().cloned().collect();
        k.sort();
        k
    }

    /// Whether no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    pub(crate) fn handlers(&self) -> impl Iterator<Item = &Arc<dyn JobHandler>> {
        self.handlers.values()
    }
}
