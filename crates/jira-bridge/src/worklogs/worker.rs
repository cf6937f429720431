//! The background worker: runs bulk-sync job items (`worklogs.sync`) and due entries
//! (`auto` mode after the debounce, retries), many at once. Each Jira call goes
//! through the site's pacer, so the pace is the site's; writes to one issue are
//! serialised by the pacer's per-issue lock. Leases (entries and job items) are renewed
//! while work runs; a process that dies loses them after the lease and another
//! process (or this one after a restart) takes the work over, reconciling any add
//! that may have reached Jira.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use futures::StreamExt;
use jira_bridge_store::jobs::{ItemError, JobItem};
use jira_bridge_store::time_entries::TimeEntry;
use jira_bridge_store::{ConnectionId, Store, TenantId, Timestamp};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::sync::{self, Outcome};
use super::{chrono_dur, Settings, JOB_KIND};
use crate::connections::{self, Connected};
use crate::http::AppState;
use crate::jobs::{ItemOutcome, JobContext, JobHandler};

/// This process's worker id (lease owner).
pub fn process_owner() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("worklogs-{}", uuid::Uuid::now_v7().simple()))
}

/// Time entries being synced by a task of this process. The database lease's owner
/// is the process ([`process_owner`]), so it keeps other replicas out but not a second
/// task of the same process (the automatic worker, a sync job's item run again after
/// its job lease expired, a manual sync or delete): holding an entry here keeps it to
/// one task.
fn inflight() -> &'static parking_lot::Mutex<HashSet<String>> {
    static SET: OnceLock<parking_lot::Mutex<HashSet<String>>> = OnceLock::new();
    SET.get_or_init(Default::default)
}

/// A time entry held by one task of this process (released on drop).
#[derive(Debug)]
pub struct Held(String);

impl Drop for Held {
    fn drop(&mut self) {
        inflight().lock().remove(&self.0);
    }
}

/// Hold a time entry for this task; `None` while another task of this process holds
/// it. Take it before leasing the entry.
pub fn hold(entry_id: &str) -> Option<Held> {
    inflight()
        .lock()
        .insert(entry_id.to_owned())
        .then(|| Held(entry_id.to_owned()))
}

fn wake_signal() -> &'static Notify {
    static N: OnceLock<Notify> = OnceLock::new();
    N.get_or_init(Notify::new)
}

/// Wake the worker (new work was queued).
pub fn wake() {
    wake_signal().notify_one();
}

enum Work {
    Entry(TimeEntry, Held),
}

/// Clients by connection, reused for a short while (one pacer per site either way).
#[derive(Default)]
struct Clients {
    map: parking_lot::Mutex<HashMap<(TenantId, ConnectionId), (Instant, Connected)>>,
}

impl Clients {
    async fn get(
        &self,
        state: &AppState,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Connected, connections::ConnectionError> {
        let k = (tenant.clone(), id.clone());
        if let Some((at, c)) = self.map.lock().get(&k) {
            if at.elapsed() < Duration::from_secs(30) {
                return Ok(c.clone());
            }
        }
        let c = connections::connect(state, tenant, id).await?;
        self.map.lock().insert(k, (Instant::now(), c.clone()));
        Ok(c)
    }
}

/// Run until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let s = Settings::of(&state);
    let owner = process_owner();
    let clients = Arc::new(Clients::default());
    let mut set: JoinSet<()> = JoinSet::new();
    let mut last_beat = Instant::now();
    let mut last_feed = Instant::now();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // Renew leases of running work.
        if last_beat.elapsed() >= s.lease / 3 {
            last_beat = Instant::now();
            let now = Utc::now();
            let until = Timestamp::from(now + chrono_dur(s.lease));
            let ids: Vec<_> = inflight()
                .lock()
                .iter()
                .filter_map(|i| i.parse().ok())
                .collect();
            if let Err(e) = state
                .store
                .extend_time_entry_leases(owner, &ids, until)
                .await
            {
                tracing::warn!(error = ?e, "worklog lease renewal failed");
            }
        }
        if !s.feed_interval.is_zero() && last_feed.elapsed() >= s.feed_interval {
            last_feed = Instant::now();
            let st = state.clone();
            set.spawn(async move {
                if let Err(e) = super::feed::poll_all(&st).await {
                    tracing::warn!(error = ?e, "worklog change feed poll failed");
                }
            });
        }
        let free = s.concurrency.saturating_sub(set.len());
        let mut claimed = 0;
        if free > 0 {
            match claim(&state.store, owner, &s, free).await {
                Ok(work) => {
                    claimed = work.len();
                    for w in work {
                        let st = state.clone();
                        let cl = clients.clone();
                        set.spawn(async move {
                            run_one(&st, &cl, w).await;
                        });
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "claiming worklog work failed"),
            }
        }
        if claimed > 0 && set.len() < s.concurrency {
            continue;
        }
        let wait = if set.is_empty() {
            s.poll
        } else {
            s.poll.min(Duration::from_millis(200))
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake_signal().notified() => {}
            Some(_) = set.join_next(), if !set.is_empty() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        while set.try_join_next().is_some() {}
    }
    // Let running syncs finish (the app's grace period bounds this).
    while set.join_next().await.is_some() {}
    Ok(())
}

async fn claim(store: &Store, owner: &str, s: &Settings, free: usize) -> anyhow::Result<Vec<Work>> {
    let now = Utc::now();
    let until = Timestamp::from(now + chrono_dur(s.lease));
    let mut out = Vec::new();
    let left = free.saturating_sub(out.len());
    if left > 0 {
        let entries = store
            .claim_due_time_entries(
                owner,
                Timestamp::from(now),
                until,
                u32::try_from(left).unwrap_or(1),
            )
            .await?;
        for e in entries {
            // Held by another task here: that one syncs it (and ends the lease).
            if let Some(held) = hold(e.id.as_str()) {
                out.push(Work::Entry(e, held));
            }
        }
    }
    Ok(out)
}

async fn run_one(state: &AppState, clients: &Clients, work: Work) {
    match work {
        Work::Entry(e, _held) => {
            let conn = match clients.get(state, &e.tenant_id, &e.connection_id).await {
                Ok(c) => c,
                Err(err) => {
                    sync::release_with_error(&state.store, &e, &err.to_string(), None).await;
                    return;
                }
            };
            let _ = sync::sync_entry(
                &state.store,
                &conn,
                &e,
                None,
                None,
                Settings::of(state).issue_cache,
            )
            .await;
        }
    }
}

async fn run_item(
    state: &AppState,
    clients: &Clients,
    item: &JobItem,
    job_id: &str,
) -> ItemOutcome {
    let Some(source_id) = item.payload.get("source_id").and_then(|v| v.as_str()) else {
        return ItemOutcome::failed(ItemError::new("invalid", "item has no source_id"));
    };
    let entry = match state.store.get_time_entry(&item.tenant_id, source_id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return ItemOutcome::failed(ItemError::new(
                "not_found",
                format!("no time entry {source_id}"),
            ))
        }
        Err(e) => return ItemOutcome::retryable(ItemError::new("store", e.to_string())),
    };
    if entry.state == "deleted" {
        return ItemOutcome::failed(ItemError::new("deleted", "the time entry was deleted"));
    }
    if entry.state == "conflict" {
        return ItemOutcome::failed(ItemError::new(
            "conflict",
            "the worklog was changed in Jira: settle with POST /v1/time-entries/{source_id}/sync?prefer=local|remote",
        ));
    }
    let Some(_held) = hold(entry.id.as_str()) else {
        // Another task of this process is syncing it: look again shortly.
        return ItemOutcome::RetryAfter(Duration::from_secs(1));
    };
    let now = Utc::now();
    let s = Settings::of(state);
    let leased = match state
        .store
        .lease_time_entry(
            &item.tenant_id,
            &entry.id,
            process_owner(),
            Timestamp::from(now),
            Timestamp::from(now + chrono_dur(s.lease)),
        )
        .await
    {
        Ok(Some(e)) => e,
        // Another worker is syncing it (auto mode): look again shortly.
        Ok(None) => return ItemOutcome::RetryAfter(Duration::from_secs(1)),
        Err(e) => return ItemOutcome::retryable(ItemError::new("store", e.to_string())),
    };
    let conn = match clients
        .get(state, &item.tenant_id, &leased.connection_id)
        .await
    {
        Ok(c) => c,
        Err(err) => {
            sync::release_with_error(&state.store, &leased, &err.to_string(), Some(job_id)).await;
            return ItemOutcome::failed(ItemError::new("connection", err.to_string()));
        }
    };
    match sync::sync_entry(
        &state.store,
        &conn,
        &leased,
        None,
        Some(job_id),
        s.issue_cache,
    )
    .await
    {
        Outcome::Done => {
            let after = state
                .store
                .get_time_entry(&item.tenant_id, source_id)
                .await
                .ok()
                .flatten();
            ItemOutcome::Succeeded(serde_json::json!({
                "source_id": source_id,
                "worklog_id": after.as_ref().and_then(|e| e.worklog_id.clone()),
                "state": after.as_ref().map(|e| e.state.clone()),
            }))
        }
        Outcome::Failed { error, retryable } => {
            let mut ie = ItemError::new(error.code, error.message.clone());
            if error.code == "permission" {
                ie = ie.with_field("issue_key");
            }
            if let Some(j) = &error.jira {
                ie = ie.with_jira(serde_json::json!({
                    "status": j.status(),
                    "errorMessages": j.jira_messages(),
                }));
            }
            if retryable {
                ItemOutcome::retryable(ie)
            } else {
                ItemOutcome::failed(ie)
            }
        }
    }
}

/// The `worklogs.sync` job: batches of up to 50 entries, each batch run
/// `JIRA_BRIDGE_WORKLOGS_CONCURRENCY` at a time (the site's pacer sets the pace;
/// writes to one issue wait for each other).
pub struct BulkSync {
    state: AppState,
    clients: Arc<Clients>,
}

impl BulkSync {
    /// The handler over the service's state.
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            clients: Arc::default(),
        }
    }
}

impl JobHandler for BulkSync {
    fn kind(&self) -> &str {
        JOB_KIND
    }

    fn batch_size(&self) -> u32 {
        50
    }

    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        items: &'a [JobItem],
    ) -> BoxFuture<'a, Vec<ItemOutcome>> {
        Box::pin(async move {
            let job_id = ctx.job.id.to_string();
            let n = Settings::of(&self.state).concurrency;
            let job_id = job_id.as_str();
            let mut runs = Vec::with_capacity(items.len());
            for item in items {
                runs.push(run_item(&self.state, &self.clients, item, job_id));
            }
            futures::stream::iter(runs).buffered(n).collect().await
        })
    }
}
