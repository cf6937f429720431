//! The ticket job handlers (`tickets.bulk_create`, `tickets.sync`), the runner task
//! that executes them in the service, and the scheduled status sync.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jira_bridge_store::jobs::{ItemError, JobItem, NewJobItem};
use jira_bridge_store::{ConnectionId, TenantId};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::bulk::{self, Caches, JobPayload, Outcome};
use super::CreateOptions;
use crate::http::AppState;
use crate::jobs::{EnqueueRequest, ItemOutcome, JobContext, JobHandler, Registry};
use crate::sync::{self, SyncOptions};

/// Runs `tickets.bulk_create` batches: up to 50 items, one Jira bulk create.
pub struct BulkCreateHandler {
    state: AppState,
    caches: Caches,
    opts: CreateOptions,
}

impl BulkCreateHandler {
    /// A handler using the service's connections.
    pub fn new(state: AppState, opts: CreateOptions) -> Self {
        Self {
            state,
            caches: Caches::default(),
            opts,
        }
    }
}

/// The same failure for every item of a batch.
pub(crate) fn all_failed(items: &[JobItem], error: ItemError, retryable: bool) -> Vec<ItemOutcome> {
    items
        .iter()
        .map(|_| ItemOutcome::Failed {
            error: error.clone(),
            retryable,
        })
        .collect()
}

/// The item error of a connection that cannot be used, and whether to retry.
pub(crate) fn connection_failure(e: &crate::connections::ConnectionError) -> (ItemError, bool) {
    use crate::connections::ConnectionError as C;
    let retryable = !matches!(
        e,
        C::Disabled(_) | C::Expired(_) | C::Invalid(_) | C::Api(_)
    );
    (
        ItemError::new(
            "connection_unusable",
            format!("the connection cannot be used: {e}"),
        ),
        retryable,
    )
}

impl JobHandler for BulkCreateHandler {
    fn kind(&self) -> &str {
        bulk::KIND
    }

    fn batch_size(&self) -> u32 {
        bulk::BATCH
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        items: &'a [JobItem],
    ) -> BoxFuture<'a, Vec<ItemOutcome>> {
        Box::pin(async move {
            let payload: JobPayload = match serde_json::from_value(ctx.job.payload.clone()) {
                Ok(p) => p,
                Err(e) => {
                    return all_failed(
                        items,
                        ItemError::new("invalid_payload", e.to_string()),
                        false,
                    )
                }
            };
            let conn = match crate::connections::connect(
                &self.state,
                &ctx.job.tenant_id,
                &payload.connection_id,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    let (err, retryable) = connection_failure(&e);
                    return all_failed(items, err, retryable);
                }
            };
            let cache = self.caches.for_job(ctx.job.id.as_str());
            let opts = CreateOptions {
                connection_kind: Some(conn.connection.kind.clone()),
                ..self.opts.clone()
            };
            let outcomes = bulk::run_batch(
                &ctx.store,
                &conn.jira,
                &cache,
                &ctx.job.tenant_id,
                &payload.connection_id,
                ctx.job.id.as_str(),
                items,
                &opts,
            )
            .await;
            outcomes
                .into_iter()
                .map(|o| match o {
                    Outcome::Succeeded(v) => ItemOutcome::Succeeded(v),
                    Outcome::Failed { error, retryable } => {
                        ItemOutcome::Failed { error, retryable }
                    }
                })
                .collect()
        })
    }
}

/// Runs `tickets.sync` items: one item per connection.
pub struct SyncHandler {
    state: AppState,
    opts: SyncOptions,
}

impl SyncHandler {
    /// A handler using the service's connections.
    pub fn new(state: AppState, opts: SyncOptions) -> Self {
        Self { state, opts }
    }
}

impl JobHandler for SyncHandler {
    fn kind(&self) -> &str {
        sync::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        items: &'a [JobItem],
    ) -> BoxFuture<'a, Vec<ItemOutcome>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Some(con) = item
                    .payload
                    .get("connection_id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<ConnectionId>().ok())
                else {
                    out.push(ItemOutcome::failed(ItemError::new(
                        "invalid_payload",
                        "no connection_id",
                    )));
                    continue;
                };
                let conn = match crate::connections::connect(&self.state, &ctx.job.tenant_id, &con)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        let (err, retryable) = connection_failure(&e);
                        out.push(ItemOutcome::Failed {
                            error: err,
                            retryable,
                        });
                        continue;
                    }
                };
                match sync::sync_connection(
                    &ctx.store,
                    &conn.jira,
                    &ctx.job.tenant_id,
                    &con,
                    &self.opts,
                )
                .await
                {
                    Ok(report) => out.push(ItemOutcome::Succeeded(json!(report))),
                    Err(sync::SyncError::Jira(e)) => {
                        let retryable = e.is_transient();
                        let _ = conn.observe::<()>(Err(e.clone_for_report())).await;
                        out.push(ItemOutcome::Failed {
                            error: ItemError::new("jira", e.to_string()),
                            retryable,
                        });
                    }
                    Err(e) => out.push(ItemOutcome::retryable(ItemError::new(
                        "store",
                        e.to_string(),
                    ))),
                }
            }
            out
        })
    }
}

trait CloneForReport {
    fn clone_for_report(&self) -> jira_client::Error;
}

impl CloneForReport for jira_client::Error {
    /// Only 401s mark a connection; other errors are reported as a configuration error
    /// (which `observe` ignores).
    fn clone_for_report(&self) -> jira_client::Error {
        match self {
            jira_client::Error::Unauthorized { ctx, messages } => {
                jira_client::Error::Unauthorized {
                    ctx: ctx.clone(),
                    messages: messages.clone(),
                }
            }
            other => jira_client::Error::Config(other.to_string()),
        }
    }
}

/// The handlers of this module.
pub fn register(registry: &mut Registry, state: &AppState) {
    registry.register(Arc::new(BulkCreateHandler::new(
        state.clone(),
        CreateOptions::default(),
    )));
    registry.register(Arc::new(SyncHandler::new(
        state.clone(),
        SyncOptions::default(),
    )));
}

/// How often the scheduled status sync runs.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(300);

/// Enqueue a sync job of a tenant's connections (those with tickets, or `only`).
pub async fn enqueue_sync(
    state: &AppState,
    tenant: &TenantId,
    only: Option<&ConnectionId>,
    idempotency_key: Option<String>,
) -> Result<Option<crate::jobs::Enqueued>, crate::jobs::JobError> {
    let all = state.store.connections_with_links().await?;
    let mut items: Vec<NewJobItem> = all
        .into_iter()
        .filter(|(t, c)| t == tenant && only.is_none_or(|o| o == c))
        .map(|(_, c)| {
            let mut i = NewJobItem::new(json!({"connection_id": c}));
            i.item_key = Some(c.to_string());
            i
        })
        .collect();
    if items.is_empty() {
        if let Some(c) = only {
            let mut i = NewJobItem::new(json!({"connection_id": c}));
            i.item_key = Some(c.to_string());
            items.push(i);
        } else {
            return Ok(None);
        }
    }
    let mut req = EnqueueRequest::new(tenant.clone(), sync::KIND, items).max_attempts(3);
    if let Some(c) = only {
        req = req.connection(c.clone());
    }
    if let Some(k) = idempotency_key {
        req = req.idempotency_key(k);
    }
    Ok(Some(state.jobs.enqueue(req).await?))
}

/// The scheduled sync's interval (`tickets.sync_seconds`); `None` when it is off.
fn sync_interval(config: &crate::config::Config) -> Option<Duration> {
    match config.tickets.sync_seconds {
        0 => None,
        s => Some(Duration::from_secs(s)),
    }
}

/// Background task: every `tickets.sync_seconds` (default [`SYNC_INTERVAL`]), a
/// sync job per tenant with tickets (one job per tenant and interval, across
/// replicas, by idempotency key).
pub async fn schedule_sync(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(interval) = sync_interval(&state.config) else {
        shutdown.cancelled().await;
        return Ok(());
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                let slot = chrono::Utc::now().timestamp() / interval.as_secs().max(1) as i64;
                let tenants: std::collections::BTreeSet<TenantId> = match state.store.connections_with_links().await {
                    Ok(v) => v.into_iter().map(|(t, _)| t).collect(),
                    Err(e) => {
                        tracing::warn!(error = ?e, "scheduled sync: could not list connections");
                        continue;
                    }
                };
                for t in tenants {
                    if let Err(e) = enqueue_sync(&state, &t, None, Some(format!("tickets.sync:{slot}"))).await {
                        tracing::warn!(tenant = %t, error = ?e, "scheduled sync: could not enqueue");
                    }
                }
            }
        }
    }
}
