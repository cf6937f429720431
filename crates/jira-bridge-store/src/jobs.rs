//! Durable jobs and their items: the tables under the job engine.
//!
//! A **job** is one unit of long work a tenant asked for (a bulk create, an export, a
//! sync). It has a kind, a versioned JSON payload, and **items** — the pieces a worker
//! processes, each with its own state, attempts, lease, result and error. The job row
//! carries the item counts per state and a derived state; both are recomputed in the
//! same transaction as every item change, so a reader never sees counts that disagree
//! with the items.
//!
//! # Item states
//!
//! ```text
//!             claim                 succeed
//!   pending ────────► running ───────────────► succeeded ──► releases held children
//!     ▲  ▲               │  │ fail (attempts left, retryable)
//!     │  └───────────────┘  │
//!     │                     └── fail (permanent or exhausted) ──► failed ──retry──► pending
//!   held ── parent succeeded ──► pending        pending/held ──cancel──► cancelled
//! ```
//!
//! # Leases
//!
//! [`Store::claim_job_items`] moves up to N due items of one job to `running` with
//! `lease_owner` and `lease_until`, and bumps `lease_epoch`. The epoch is the fencing
//! token: [`Store::finish_job_items`] only applies an outcome when owner *and* epoch
//! still match, so a worker whose lease expired and was taken over cannot overwrite
//! the newer attempt. A `running` item whose lease has expired is due again (a crashed
//! worker's items are resumed by the next claim); if it has no attempts left it is
//! failed with code `lease_expired` instead.
//!
//! On PostgreSQL every transaction that changes a job's items first locks the job row
//! (an `UPDATE` of it), then claims items with `FOR UPDATE SKIP LOCKED`; on SQLite the
//! same first `UPDATE` takes the database's write lock, so the claim is one atomic
//! `UPDATE … RETURNING`. Either way two claimers never get the same item.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;

use crate::{ConnectionId, Page, PageRequest, Result, Store, StoreError, TenantId, Timestamp};

crate::define_id!(
    /// A job (`job_…`).
    JobId, "job", "job"
);
crate::define_id!(
    /// An item of a job (`jit_…`).
    JobItemId, "jit", "job item"
);

/// State of a job, derived from its items' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// No item has been claimed yet.
    Queued,
    /// Some items are pending or running.
    Running,
    /// Every item succeeded.
    Succeeded,
    /// Nothing succeeded; items failed (or are held behind failed parents).
    Failed,
    /// Some items succeeded, others failed or are held behind failed parents.
    PartiallyFailed,
    /// Cancelled: pending and held items were cancelled.
    Cancelled,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::PartiallyFailed => "partially_failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether no more work will happen without a retry.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The state of a job with these counts. `started` tells whether any item has
    /// been claimed.
    pub fn derive(counts: &JobCounts, started: bool) -> Self {
        if counts.pending + counts.running > 0 {
            if started {
                Self::Running
            } else {
                Self::Queued
            }
        } else if counts.cancelled > 0 {
            Self::Cancelled
        } else if counts.failed + counts.held == 0 {
            Self::Succeeded
        } else if counts.succeeded == 0 {
            Self::Failed
        } else {
            Self::PartiallyFailed
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "partially_failed" => Self::PartiallyFailed,
            "cancelled" => Self::Cancelled,
            other => return Err(StoreError::Corrupt(format!("job state {other:?}"))),
        })
    }
}

impl TryFrom<String> for JobState {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// State of one job item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting to be claimed (at or after `next_attempt_at`).
    Pending,
    /// Leased by a worker.
    Running,
    /// Done.
    Succeeded,
    /// Failed permanently or out of attempts; `retry` makes it pending again.
    Failed,
    /// Cancelled before it ran.
    Cancelled,
    /// Waiting for the item it depends on to succeed.
    Held,
}

impl ItemState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Held => "held",
        }
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "held" => Self::Held,
            other => return Err(StoreError::Corrupt(format!("job item state {other:?}"))),
        })
    }
}

impl TryFrom<String> for ItemState {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Number of a job's items in each state.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::FromRow,
)]
pub struct JobCounts {
    /// All items.
    pub total: i64,
    /// Succeeded items.
    pub succeeded: i64,
    /// Failed items.
    pub failed: i64,
    /// Items waiting to be claimed.
    pub pending: i64,
    /// Items leased by a worker.
    pub running: i64,
    /// Items waiting for their parent.
    pub held: i64,
    /// Cancelled items.
    pub cancelled: i64,
}

impl JobCounts {
    fn from_groups(groups: &[(String, i64)]) -> Result<Self> {
        let mut c = Self::default();
        for (state, n) in groups {
            let slot = match state.parse::<ItemState>()? {
                ItemState::Pending => &mut c.pending,
                ItemState::Running => &mut c.running,
                ItemState::Succeeded => &mut c.succeeded,
                ItemState::Failed => &mut c.failed,
                ItemState::Cancelled => &mut c.cancelled,
                ItemState::Held => &mut c.held,
            };
            *slot += n;
            c.total += n;
        }
        Ok(c)
    }
}

/// Why an item failed: a stable `code`, a human `message`, the input `field` at fault
/// if any, and Jira's own error body when Jira refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// Stable machine-readable code, e.g. `validation`, `jira_rejected`, `lease_expired`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The input field at fault, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Jira's error body (`{"errorMessages":[],"errors":{}}`) when Jira refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira: Option<Value>,
}

impl ItemError {
    /// An error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
            jira: None,
        }
    }

    /// The same error naming the input field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same error carrying Jira's error body.
    pub fn with_jira(mut self, jira: Value) -> Self {
        self.jira = Some(jira);
        self
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Job {
    /// Id (`job_…`).
    pub id: JobId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// What kind of work (names the handler).
    pub kind: String,
    /// Job-wide input shared by all items.
    #[sqlx(json)]
    pub payload: Value,
    /// Version of the payload's shape, so handlers can read old jobs after upgrades.
    pub payload_version: i64,
    /// Derived state.
    #[sqlx(try_from = "String")]
    pub state: JobState,
    /// Item counts per state.
    #[sqlx(flatten)]
    pub counts: JobCounts,
    /// Client-supplied key: a second create with the same key answers this job.
    pub idempotency_key: Option<String>,
    /// The Jira connection the job works on, if any.
    pub connection_id: Option<ConnectionId>,
    /// When cancellation was asked for.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the first item was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached a terminal state (cleared by a retry).
    pub finished_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A job item row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct JobItem {
    /// Id (`jit_…`).
    pub id: JobItemId,
    /// The job.
    pub job_id: JobId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Position in the job (0-based), the processing and listing order.
    pub seq: i64,
    /// The host's key for this item (e.g. a source id), if any.
    pub item_key: Option<String>,
    /// Item input.
    #[sqlx(json)]
    pub payload: Value,
    /// State.
    #[sqlx(try_from = "String")]
    pub state: ItemState,
    /// Attempts made so far (a claim starts one).
    pub attempts: i64,
    /// Attempts allowed before the item fails for good.
    pub max_attempts: i64,
    /// Not claimed before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Worker holding the lease (while running).
    pub lease_owner: Option<String>,
    /// Lease expiry (while running).
    pub lease_until: Option<DateTime<Utc>>,
    /// Incremented on every claim; fences stale workers.
    pub lease_epoch: i64,
    /// Handler's result on success.
    #[sqlx(json(nullable))]
    pub result: Option<Value>,
    /// Last error (kept until the item succeeds).
    #[sqlx(json(nullable))]
    pub error: Option<ItemError>,
    /// The item that must succeed before this one runs.
    pub depends_on: Option<JobItemId>,
    /// Items with the same group key can be claimed together (one Jira bulk call).
    pub group_key: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An item to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJobItem {
    /// The host's key for the item.
    pub item_key: Option<String>,
    /// Item input.
    pub payload: Value,
    /// Index (in [`NewJob::items`]) of an earlier item that must succeed first.
    pub depends_on: Option<usize>,
    /// Batching group.
    pub group_key: Option<String>,
}

impl NewJobItem {
    /// An item with just a payload.
    pub fn new(payload: Value) -> Self {
        Self {
            item_key: None,
            payload,
            depends_on: None,
            group_key: None,
        }
    }
}

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Kind (names the handler).
    pub kind: String,
    /// Job-wide input.
    pub payload: Value,
    /// Version of the payload shape.
    pub payload_version: i64,
    /// Idempotency key, unique per tenant.
    pub idempotency_key: Option<String>,
    /// Connection the job works on.
    pub connection_id: Option<ConnectionId>,
    /// Attempts allowed per item.
    pub max_attempts: i64,
    /// The items, in processing order.
    pub items: Vec<NewJobItem>,
}

/// Result of [`Store::create_job`].
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedJob {
    /// The job (the existing one when the idempotency key was seen before).
    pub job: Job,
    /// `false` when the idempotency key matched an existing job.
    pub created: bool,
}

/// Per-kind claim limits for [`Store::claim_job_items`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindClaim {
    /// Job kind.
    pub kind: String,
    /// Largest batch to claim.
    pub limit: u32,
    /// Claim only items sharing the first due item's group key.
    pub same_group: bool,
}

/// A claim: which kinds, for whom, until when.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// Worker id written to `lease_owner`.
    pub owner: &'a str,
    /// Kinds this worker can run.
    pub kinds: &'a [KindClaim],
    /// Lease expiry for the claimed items.
    pub lease_until: Timestamp,
    /// The current time (items due at or before it are claimed).
    pub now: Timestamp,
}

/// Items claimed from one job.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedBatch {
    /// The job, after the claim.
    pub job: Job,
    /// The claimed items, in `seq` order.
    pub items: Vec<JobItem>,
}

/// What happened to one claimed item.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    /// Done, with the handler's result.
    Succeeded {
        /// Result to store.
        result: Value,
    },
    /// Failed. With `retry_at` and attempts left, the item is pending again from that
    /// time; otherwise it is failed for good.
    Failed {
        /// Why.
        error: ItemError,
        /// When to try again, if the failure is retryable.
        retry_at: Option<Timestamp>,
    },
    /// Give the item back (pending from `at`); `count_attempt: false` does not count
    /// this attempt against `max_attempts`.
    Release {
        /// When it may be claimed again.
        at: Timestamp,
        /// Whether the attempt counts.
        count_attempt: bool,
    },
}

/// One item's outcome for [`Store::finish_job_items`].
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFinish {
    /// The item.
    pub id: JobItemId,
    /// The epoch it was claimed with (fencing token).
    pub lease_epoch: i64,
    /// What happened.
    pub outcome: FinishOutcome,
}

/// Result of [`Store::finish_job_items`].
#[derive(Debug, Clone, PartialEq)]
pub struct FinishResult {
    /// The job after the update.
    pub job: Job,
    /// Items whose outcome was not applied: the lease was lost (expired and taken
    /// over, or the item was cancelled meanwhile).
    pub lost: Vec<JobItemId>,
}

const JOB_COLUMNS: &str = "id, tenant_id, kind, payload, payload_version, state, total, \
    succeeded, failed, pending, running, held, cancelled, idempotency_key, connection_id, \
    cancel_requested_at, created_at, started_at, finished_at, updated_at";

const ITEM_COLUMNS: &str = "id, job_id, tenant_id, seq, item_key, payload, state, attempts, \
    max_attempts, next_attempt_at, lease_owner, lease_until, lease_epoch, result, error, \
    depends_on, group_key, created_at, updated_at";

/// Condition (on `job_items`) for an item that a claim may take at `$now`.
const DUE: &str = "((state = 'pending' AND next_attempt_at <= $2) \
    OR (state = 'running' AND lease_until < $2))";

/// Rows per multi-row `INSERT` when enqueueing items.
const INSERT_CHUNK: usize = 200;

fn lease_expired_error() -> ItemError {
    ItemError::new(
        "lease_expired",
        "the worker processing this item stopped responding and no attempts are left",
    )
}

// Lock the job row for the rest of the transaction and return it. On PostgreSQL the
// UPDATE takes the row lock; on SQLite it takes the database's write lock, so the
// reads that follow see a stable state. `$tenant` may be `None` (workers).
macro_rules! lock_job {
    ($tx:expr, $id:expr, $tenant:expr, $now:expr) => {
        sqlx::query_as::<_, Job>(&format!(
            "UPDATE jobs SET updated_at = $2 WHERE id = $1 AND ($3 IS NULL OR tenant_id = $3)
             RETURNING {JOB_COLUMNS}"
        ))
        .bind($id)
        .bind($now)
        .bind($tenant)
        .fetch_optional(&mut *$tx)
        .await?
    };
}

// Recompute a locked job's counts and state from its items, inside the transaction.
macro_rules! recount {
    ($tx:expr, $job:expr, $now:expr, $claimed:expr) => {{
        let job: &Job = $job;
        let groups: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM job_items WHERE job_id = $1 GROUP BY state",
        )
        .bind(&job.id)
        .fetch_all(&mut *$tx)
        .await?;
        let counts = JobCounts::from_groups(&groups)?;
        let now: Timestamp = $now;
        let started_at: Option<Timestamp> = match job.started_at {
            Some(t) => Some(Timestamp::from(t)),
            None if $claimed => Some(now),
            None => None,
        };
        let state = JobState::derive(&counts, started_at.is_some());
        let finished_at: Option<Timestamp> = if state.is_terminal() {
            Some(job.finished_at.map(Timestamp::from).unwrap_or(now))
        } else {
            None
        };
        sqlx::query_as::<_, Job>(&format!(
            "UPDATE jobs SET state = $2, total = $3, succeeded = $4, failed = $5, pending = $6,
                 running = $7, held = $8, cancelled = $9, started_at = $10, finished_at = $11,
                 updated_at = $12
             WHERE id = $1 RETURNING {JOB_COLUMNS}"
        ))
        .bind(&job.id)
        .bind(state.as_str())
        .bind(counts.total)
        .bind(counts.succeeded)
        .bind(counts.failed)
        .bind(counts.pending)
        .bind(counts.running)
        .bind(counts.held)
        .bind(counts.cancelled)
        .bind(started_at)
        .bind(finished_at)
        .bind(now)
        .fetch_one(&mut *$tx)
        .await?
    }};
}

impl Store {
    /// Create a job and its items in one transaction. With an idempotency key that the
    /// tenant used before, nothing is created and the existing job is answered
    /// (`created: false`), whatever the new request contains.
    ///
    /// Items with `depends_on` start `held`; the others `pending`. A `depends_on` that
    /// does not name an earlier item is refused with [`StoreError::Conflict`].
    pub async fn create_job(&self, new: NewJob, now: Timestamp) -> Result<CreatedJob> {
        if let Some(key) = &new.idempotency_key {
            if let Some(job) = self
                .find_job_by_idempotency_key(&new.tenant_id, key)
                .await?
            {
                return Ok(CreatedJob {
                    job,
                    created: false,
                });
            }
        }
        for (i, item) in new.items.iter().enumerate() {
            if item.depends_on.is_some_and(|d| d >= i) {
                return Err(StoreError::Conflict {
                    constraint: format!("job item {i}: depends_on must name an earlier item"),
                });
            }
        }
        let id = JobId::new();
        let item_ids: Vec<JobItemId> = new.items.iter().map(|_| JobItemId::new()).collect();
        let held = new.items.iter().filter(|i| i.depends_on.is_some()).count() as i64;
        let total = new.items.len() as i64;
        let counts = JobCounts {
            total,
            pending: total - held,
            held,
            ..JobCounts::default()
        };
        let state = JobState::derive(&counts, false);
        let finished_at = state.is_terminal().then_some(now);

        let inserted: Result<Job> = on_pool!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let job = sqlx::query_as::<_, Job>(&format!(
                    "INSERT INTO jobs (id, tenant_id, kind, payload, payload_version, state, total,
                         pending, held, idempotency_key, connection_id, created_at, finished_at,
                         updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12)
                     RETURNING {JOB_COLUMNS}"
                ))
                .bind(&id)
                .bind(&new.tenant_id)
                .bind(&new.kind)
                .bind(Json(&new.payload))
                .bind(new.payload_version)
                .bind(state.as_str())
                .bind(counts.total)
                .bind(counts.pending)
                .bind(counts.held)
                .bind(&new.idempotency_key)
                .bind(&new.connection_id)
                .bind(now)
                .bind(finished_at)
                .fetch_one(&mut *tx)
                .await?;
                let rows: Vec<(usize, &NewJobItem)> = new.items.iter().enumerate().collect();
                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO job_items (id, job_id, tenant_id, seq, item_key, payload, state,
                             max_attempts, next_attempt_at, depends_on, group_key, created_at,
                             updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, (i, item)| {
                        let state = if item.depends_on.is_some() {
                            ItemState::Held
                        } else {
                            ItemState::Pending
                        };
                        b.push_bind(&item_ids[*i])
                            .push_bind(&id)
                            .push_bind(&new.tenant_id)
                            .push_bind(*i as i64)
                            .push_bind(&item.item_key)
                            .push_bind(Json(&item.payload))
                            .push_bind(state.as_str())
                            .push_bind(new.max_attempts.max(1))
                            .push_bind(now)
                            .push_bind(item.depends_on.map(|d| &item_ids[d]))
                            .push_bind(&item.group_key)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(job)
            }
            .await
        });
        match inserted {
            Ok(job) => Ok(CreatedJob { job, created: true }),
            // Lost a race with the same idempotency key: answer the winner's job.
            Err(StoreError::Conflict { constraint }) => match &new.idempotency_key {
                Some(key) => match self
                    .find_job_by_idempotency_key(&new.tenant_id, key)
                    .await?
                {
                    Some(job) => Ok(CreatedJob {
                        job,
                        created: false,
                    }),
                    None => Err(StoreError::Conflict { constraint }),
                },
                None => Err(StoreError::Conflict { constraint }),
            },
            Err(e) => Err(e),
        }
    }

    /// The tenant's job with this idempotency key.
    pub async fn find_job_by_idempotency_key(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<Job>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Job>(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
            ))
            .bind(tenant)
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's job.
    pub async fn get_job(&self, tenant: &TenantId, id: &JobId) -> Result<Option<Job>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Job>(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's jobs, optionally of one kind, newest first.
    pub async fn list_jobs(
        &self,
        tenant: &TenantId,
        kind: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Job>(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE tenant_id = $1 AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            ))
            .bind(tenant)
            .bind(kind)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |j| j.id.as_str()))
    }

    /// A tenant's job item.
    pub async fn get_job_item(&self, tenant: &TenantId, id: &JobItemId) -> Result<Option<JobItem>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, JobItem>(&format!(
                "SELECT {ITEM_COLUMNS} FROM job_items WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A job's items, optionally in one state, in `seq` order. The cursor is the last
    /// item's position. Another tenant's job has no items.
    pub async fn list_job_items(
        &self,
        tenant: &TenantId,
        job: &JobId,
        state: Option<ItemState>,
        page: &PageRequest,
    ) -> Result<Page<JobItem>> {
        let after = match page.after() {
            None => None,
            Some(s) => Some(s.parse::<i64>().map_err(|_| StoreError::InvalidCursor)?),
        };
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, JobItem>(&format!(
                "SELECT {ITEM_COLUMNS} FROM job_items
                 WHERE tenant_id = $1 AND job_id = $2 AND ($3 IS NULL OR state = $3)
                   AND ($4 IS NULL OR seq > $4)
                 ORDER BY seq LIMIT $5"
            ))
            .bind(tenant)
            .bind(job)
            .bind(state.map(ItemState::as_str))
            .bind(after)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        let keyed: Vec<(String, JobItem)> =
            rows.into_iter().map(|i| (i.seq.to_string(), i)).collect();
        Ok(Page::from_overfetch(keyed, page, |(k, _)| k).map(|(_, i)| i))
    }

    /// Claim a batch of due items of one job, for one worker. Jobs are served oldest
    /// first; of a job, items in `seq` order. Due means `pending` with
    /// `next_attempt_at <= now`, or `running` with an expired lease (its worker is
    /// presumed dead). Each claimed item gets `running`, the lease, one more attempt and
    /// a new `lease_epoch`. `None` when nothing is due.
    pub async fn claim_job_items(&self, req: &ClaimRequest<'_>) -> Result<Option<ClaimedBatch>> {
        if req.kinds.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (0..req.kinds.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let candidates_sql = format!(
            "SELECT j.id, j.kind FROM jobs j
             WHERE j.state IN ('queued', 'running') AND j.kind IN ({})
               AND EXISTS (SELECT 1 FROM job_items WHERE job_items.job_id = j.id AND {DUE})
             ORDER BY j.id LIMIT $1",
            placeholders.join(", ")
        );
        let candidates: Vec<(JobId, String)> = on_pool!(self, pool => {
            let mut q = sqlx::query_as(&candidates_sql).bind(4_i64).bind(req.now);
            for k in req.kinds {
                q = q.bind(&k.kind);
            }
            q.fetch_all(pool).await?
        });
        for (job_id, kind) in candidates {
            let Some(spec) = req.kinds.iter().find(|k| k.kind == kind) else {
                continue;
            };
            if let Some(batch) = self.claim_from_job(&job_id, spec, req).await? {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    async fn claim_from_job(
        &self,
        job_id: &JobId,
        spec: &KindClaim,
        req: &ClaimRequest<'_>,
    ) -> Result<Option<ClaimedBatch>> {
        let skip_locked = match self.backend() {
            crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let expired_error = Json(lease_expired_error());
        on_pool!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let no_tenant: Option<&TenantId> = None;
                let Some(job) = lock_job!(tx, job_id, no_tenant, req.now) else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                if job.state.is_terminal() {
                    tx.rollback().await?;
                    return Ok(None);
                }
                // A crashed worker's item with no attempts left fails instead of running
                // a poisoned input forever.
                sqlx::query(
                    "UPDATE job_items SET state = 'failed', error = $3, lease_owner = NULL,
                         lease_until = NULL, updated_at = $2
                     WHERE job_id = $1 AND state = 'running' AND lease_until < $2
                       AND attempts >= max_attempts",
                )
                .bind(job_id)
                .bind(req.now)
                .bind(&expired_error)
                .execute(&mut *tx)
                .await?;
                let group: Option<Option<String>> = if spec.same_group {
                    sqlx::query_scalar(&format!(
                        "SELECT group_key FROM job_items WHERE job_id = $1 AND {DUE}
                         ORDER BY seq LIMIT 1"
                    ))
                    .bind(job_id)
                    .bind(req.now)
                    .fetch_optional(&mut *tx)
                    .await?
                } else {
                    None
                };
                let group_filter = if group.is_some() {
                    "AND (group_key = $6 OR (group_key IS NULL AND $6 IS NULL))"
                } else {
                    "AND $6 IS NULL"
                };
                let mut items = sqlx::query_as::<_, JobItem>(&format!(
                    "UPDATE job_items SET state = 'running', lease_owner = $3, lease_until = $4,
                         lease_epoch = lease_epoch + 1, attempts = attempts + 1, updated_at = $2
                     WHERE id IN (
                         SELECT id FROM job_items WHERE job_id = $1 AND {DUE} {group_filter}
                         ORDER BY seq LIMIT $5 {skip_locked})
                     RETURNING {ITEM_COLUMNS}"
                ))
                .bind(job_id)
                .bind(req.now)
                .bind(req.owner)
                .bind(req.lease_until)
                .bind(i64::from(spec.limit.max(1)))
                .bind(group.flatten())
                .fetch_all(&mut *tx)
                .await?;
                let job = recount!(tx, &job, req.now, !items.is_empty());
                tx.commit().await?;
                if items.is_empty() {
                    return Ok(None);
                }
                items.sort_by_key(|i| i.seq);
                Ok(Some(ClaimedBatch { job, items }))
            }
            .await
        })
    }

    /// Extend the leases of every item `owner` is running to `lease_until`. Answers how
    /// many leases were extended (items taken over by another worker are not).
    ///
    /// On PostgreSQL the rows are locked in id order and rows locked right now (their
    /// outcome being recorded) are skipped: an unordered multi-row update could
    /// deadlock with a concurrent finish or claim.
    pub async fn heartbeat_job_items(
        &self,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<u64> {
        let sql = match self.backend() {
            crate::Backend::Postgres => {
                "UPDATE job_items SET lease_until = $2, updated_at = $3
                 WHERE id IN (SELECT id FROM job_items
                              WHERE lease_owner = $1 AND state = 'running'
                              ORDER BY id FOR UPDATE SKIP LOCKED)"
            }
            crate::Backend::Sqlite => {
                "UPDATE job_items SET lease_until = $2, updated_at = $3
                 WHERE lease_owner = $1 AND state = 'running'"
            }
        };
        let n = on_pool!(self, pool => {
            sqlx::query(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Record the outcomes of claimed items of one job, release the held children of
    /// items that succeeded, and recompute the job, in one transaction. An outcome is
    /// applied only if the item is still `running` under `owner` with the same
    /// `lease_epoch`; the others are answered in [`FinishResult::lost`].
    ///
    /// After a cancel, a retryable failure or a release cancels the item instead.
    pub async fn finish_job_items(
        &self,
        job_id: &JobId,
        owner: &str,
        finishes: &[ItemFinish],
        now: Timestamp,
    ) -> Result<FinishResult> {
        on_pool!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let no_tenant: Option<&TenantId> = None;
                let Some(job) = lock_job!(tx, job_id, no_tenant, now) else {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound);
                };
                let cancelling = job.cancel_requested_at.is_some();
                let mut lost = Vec::new();
                for f in finishes {
                    let q = match &f.outcome {
                        FinishOutcome::Succeeded { result } => sqlx::query(
                            "UPDATE job_items SET state = 'succeeded', result = $5, error = NULL,
                                 lease_owner = NULL, lease_until = NULL, updated_at = $4
                             WHERE id = $1 AND job_id = $6 AND lease_owner = $2
                               AND lease_epoch = $3 AND state = 'running'",
                        )
                        .bind(&f.id)
                        .bind(owner)
                        .bind(f.lease_epoch)
                        .bind(now)
                        .bind(Json(result))
                        .bind(job_id),
                        FinishOutcome::Failed { error, retry_at } => sqlx::query(
                            "UPDATE job_items SET
                                 state = CASE WHEN $6 IS NULL OR attempts >= max_attempts
                                     THEN 'failed' WHEN $7 THEN 'cancelled' ELSE 'pending' END,
                                 next_attempt_at = COALESCE($6, next_attempt_at),
                                 error = $5, lease_owner = NULL, lease_until = NULL,
                                 updated_at = $4
                             WHERE id = $1 AND job_id = $8 AND lease_owner = $2
                               AND lease_epoch = $3 AND state = 'running'",
                        )
                        .bind(&f.id)
                        .bind(owner)
                        .bind(f.lease_epoch)
                        .bind(now)
                        .bind(Json(error))
                        .bind(*retry_at)
                        .bind(cancelling)
                        .bind(job_id),
                        FinishOutcome::Release { at, count_attempt } => sqlx::query(
                            "UPDATE job_items SET
                                 state = CASE WHEN $6 THEN 'cancelled' ELSE 'pending' END,
                                 attempts = CASE WHEN $7 THEN attempts ELSE attempts - 1 END,
                                 next_attempt_at = $5, lease_owner = NULL, lease_until = NULL,
                                 updated_at = $4
                             WHERE id = $1 AND job_id = $8 AND lease_owner = $2
                               AND lease_epoch = $3 AND state = 'running'",
                        )
                        .bind(&f.id)
                        .bind(owner)
                        .bind(f.lease_epoch)
                        .bind(now)
                        .bind(*at)
                        .bind(cancelling)
                        .bind(*count_attempt)
                        .bind(job_id),
                    };
                    let applied = q.execute(&mut *tx).await?.rows_affected() > 0;
                    if !applied {
                        lost.push(f.id.clone());
                    } else if matches!(f.outcome, FinishOutcome::Succeeded { .. }) {
                        sqlx::query(
                            "UPDATE job_items SET state = 'pending', next_attempt_at = $2,
                                 updated_at = $2
                             WHERE depends_on = $1 AND state = 'held'",
                        )
                        .bind(&f.id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let job = recount!(tx, &job, now, false);
                tx.commit().await?;
                Ok(FinishResult { job, lost })
            }
            .await
        })
    }

    /// Make a tenant's failed items pending again (attempts reset; an item whose parent
    /// has not succeeded goes back to `held`), clear a pending cancellation and
    /// recompute the job. Answers the job and how many items were retried; `None` for
    /// no such job.
    pub async fn retry_failed_job_items(
        &self,
        tenant: &TenantId,
        job_id: &JobId,
        now: Timestamp,
    ) -> Result<Option<(Job, u64)>> {
        on_pool!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let Some(job) = lock_job!(tx, job_id, Some(tenant), now) else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let n = sqlx::query(
                    "UPDATE job_items SET
                         state = CASE WHEN depends_on IS NULL OR EXISTS (
                             SELECT 1 FROM job_items p
                             WHERE p.id = job_items.depends_on AND p.state = 'succeeded')
                           THEN 'pending' ELSE 'held' END,
                         attempts = 0, next_attempt_at = $2, updated_at = $2
                     WHERE job_id = $1 AND state = 'failed'",
                )
                .bind(job_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    sqlx::query(
                        "UPDATE jobs SET cancel_requested_at = NULL, finished_at = NULL
                         WHERE id = $1",
                    )
                    .bind(job_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let job = Job {
                    finished_at: if n > 0 { None } else { job.finished_at },
                    cancel_requested_at: if n > 0 { None } else { job.cancel_requested_at },
                    ..job
                };
                let job = recount!(tx, &job, now, false);
                tx.commit().await?;
                Ok(Some((job, n)))
            }
            .await
        })
    }

    /// Cancel a tenant's job: pending and held items become `cancelled`; running items
    /// finish their current attempt (a retryable failure then cancels them). Answers
    /// the job and how many items were cancelled; `None` for no such job. A finished
    /// job is left as it is.
    pub async fn cancel_job(
        &self,
        tenant: &TenantId,
        job_id: &JobId,
        now: Timestamp,
    ) -> Result<Option<(Job, u64)>> {
        on_pool!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let Some(job) = lock_job!(tx, job_id, Some(tenant), now) else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                if job.state.is_terminal() {
                    tx.commit().await?;
                    return Ok(Some((job, 0)));
                }
                let n = sqlx::query(
                    "UPDATE job_items SET state = 'cancelled', updated_at = $2
                     WHERE job_id = $1 AND state IN ('pending', 'held')",
                )
                .bind(job_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let job = sqlx::query_as::<_, Job>(&format!(
                    "UPDATE jobs SET cancel_requested_at = $2 WHERE id = $1 RETURNING {JOB_COLUMNS}"
                ))
                .bind(job_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let job = recount!(tx, &job, now, false);
                tx.commit().await?;
                Ok(Some((job, n)))
            }
            .await
        })
    }

    /// Items (of any tenant) that are `running` with a lease that expired before `now`:
    /// their workers are presumed dead. The next claim of their job takes them over.
    pub async fn expired_job_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<JobItem>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, JobItem>(&format!(
                "SELECT {ITEM_COLUMNS} FROM job_items
                 WHERE state = 'running' AND lease_until < $1
                 ORDER BY lease_until LIMIT $2"
            ))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Item counts of a job straight from its items (for checks; the job row carries
    /// the same numbers).
    pub async fn count_job_items(&self, tenant: &TenantId, job_id: &JobId) -> Result<JobCounts> {
        let groups: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT state, COUNT(*) FROM job_items WHERE tenant_id = $1 AND job_id = $2
                 GROUP BY state",
            )
            .bind(tenant)
            .bind(job_id)
            .fetch_all(pool)
            .await?
        });
        JobCounts::from_groups(&groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        pending: i64,
        running: i64,
        succeeded: i64,
        failed: i64,
        held: i64,
        cancelled: i64,
    ) -> JobCounts {
        JobCounts {
            total: pending + running + succeeded + failed + held + cancelled,
            succeeded,
            failed,
            pending,
            running,
            held,
            cancelled,
        }
    }

    #[test]
    fn job_state_follows_item_counts() {
        assert_eq!(
            JobState::derive(&counts(3, 0, 0, 0, 0, 0), false),
            JobState::Queued
        );
        assert_eq!(
            JobState::derive(&counts(2, 1, 0, 0, 0, 0), true),
            JobState::Running
        );
        assert_eq!(
            JobState::derive(&counts(0, 0, 3, 0, 0, 0), true),
            JobState::Succeeded
        );
        assert_eq!(
            JobState::derive(&counts(0, 0, 0, 0, 0, 0), false),
            JobState::Succeeded
        );
        assert_eq!(
            JobState::derive(&counts(0, 0, 0, 2, 1, 0), true),
            JobState::Failed
        );
        assert_eq!(
            JobState::derive(&counts(0, 0, 2, 1, 0, 0), true),
            JobState::PartiallyFailed
        );
        assert_eq!(
            JobState::derive(&counts(0, 0, 2, 0, 1, 0), true),
            JobState::PartiallyFailed
        );
        assert_eq!(
            JobState::derive(&counts(0, 0, 2, 1, 0, 4), true),
            JobState::Cancelled
        );
        // Held items behind a pending parent keep the job running.
        assert_eq!(
            JobState::derive(&counts(1, 0, 0, 0, 5, 0), true),
            JobState::Running
        );
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::PartiallyFailed,
            JobState::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<JobState>().ok(), Some(s));
        }
        for s in [
            ItemState::Pending,
            ItemState::Running,
            ItemState::Succeeded,
            ItemState::Failed,
            ItemState::Cancelled,
            ItemState::Held,
        ] {
            assert_eq!(s.as_str().parse::<ItemState>().ok(), Some(s));
        }
        assert!("bogus".parse::<JobState>().is_err());
    }
}
