//! `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/items`, `GET /v1/jobs/{id}/events` (SSE),
//! `POST /v1/jobs/{id}/retry`, `POST /v1/jobs/{id}/cancel`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use jira_bridge_store::jobs::{ItemError, ItemState, Job, JobItem};
use jira_bridge_store::{PageRequest, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{JobError, JobId, Jobs};
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState, Problem};
use crate::tenancy::Tenant;

/// Longest an SSE stream waits before re-reading the job without being told of a
/// change (changes of this process and, on PostgreSQL, of other replicas are told at
/// once; this only bounds the delay after a lost notification).
const SSE_POLL: Duration = Duration::from_secs(5);

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_job))
        .routes(routes!(list_items))
        .routes(routes!(job_events))
        .routes(routes!(retry_job))
        .routes(routes!(cancel_job))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound => not_found(),
            JobError::Invalid(m) => ApiError::Validation {
                detail: m,
                errors: Default::default(),
            },
            JobError::Store(e) => e.into(),
        }
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such job".into())
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse().map_err(|_| not_found())
}

/// A job's state and item counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobResponse {
    /// `job_…`
    pub id: String,
    /// What kind of work, e.g. `tickets.bulk_create`.
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed`, `partially_failed` or `cancelled`.
    pub state: String,
    /// Items in all.
    pub total: i64,
    /// Items done.
    pub succeeded: i64,
    /// Items failed (retry them with `POST /v1/jobs/{id}/retry`).
    pub failed: i64,
    /// Items waiting to run (including those waiting for a retry).
    pub pending: i64,
    /// Items running now.
    pub running: i64,
    /// Items waiting for the item they depend on.
    pub held: i64,
    /// Items cancelled.
    pub cancelled: i64,
    /// The Jira connection the job works on.
    pub connection_id: Option<String>,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When the first item started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached its current terminal state.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Job> for JobResponse {
    fn from(j: Job) -> Self {
        Self {
            id: j.id.to_string(),
            kind: j.kind,
            state: j.state.to_string(),
            total: j.counts.total,
            succeeded: j.counts.succeeded,
            failed: j.counts.failed,
            pending: j.counts.pending,
            running: j.counts.running,
            held: j.counts.held,
            cancelled: j.counts.cancelled,
            connection_id: j.connection_id.map(|c| c.to_string()),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// Why an item failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemErrorResponse {
    /// Stable code, e.g. `validation`, `jira_rejected`, `lease_expired`, `timeout`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The input field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Jira's own error body, when Jira refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jira: Option<serde_json::Value>,
}

impl From<ItemError> for ItemErrorResponse {
    fn from(e: ItemError) -> Self {
        Self {
            code: e.code,
            message: e.message,
            field: e.field,
            jira: e.jira,
        }
    }
}

/// One item of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobItemResponse {
    /// `jit_…`
    pub id: String,
    /// Position in the job (0-based).
    pub seq: i64,
    /// The host's key for the item (e.g. its source id).
    pub key: Option<String>,
    /// `pending`, `running`, `succeeded`, `failed`, `cancelled` or `held`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// When a pending item runs next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The result, once succeeded.
    pub result: Option<serde_json::Value>,
    /// The last error.
    pub error: Option<ItemErrorResponse>,
    /// The item that must succeed first.
    pub depends_on: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<JobItem> for JobItemResponse {
    fn from(i: JobItem) -> Self {
        Self {
            id: i.id.to_string(),
            seq: i.seq,
            key: i.item_key,
            state: i.state.to_string(),
            attempts: i.attempts,
            max_attempts: i.max_attempts,
            next_attempt_at: (i.state == ItemState::Pending).then_some(i.next_attempt_at),
            result: i.result,
            error: i.error.map(Into::into),
            depends_on: i.depends_on.map(|d| d.to_string()),
            updated_at: i.updated_at,
        }
    }
}

/// A page of job items.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobItemPage {
    /// Items in job order.
    pub items: Vec<JobItemResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// Filter and paging for `GET /v1/jobs/{id}/items`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemParams {
    /// Only items in this state: `pending`, `running`, `succeeded`, `failed`,
    /// `cancelled` or `held`.
    pub state: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A job's state and counts.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 200, description = "The job", body = JobResponse),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_job(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    let job = state.jobs.get(&tenant.id, &parse_id(&id)?).await?;
    Ok(Json(job.into()))
}

/// A job's items with their state, result, error and attempts, in job order.
#[utoipa::path(get, path = "/v1/jobs/{id}/items", tag = "jobs",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Job id (`job_…`)"), ItemParams),
    responses(
        (status = 200, description = "A page of items", body = JobItemPage),
        (status = 400, description = "Malformed cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown state", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_items(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ItemParams>,
) -> Result<Json<JobItemPage>, ApiError> {
    let id = parse_id(&id)?;
    let item_state = match p.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<ItemState>().map_err(|_| {
            ApiError::invalid_field(
                "state",
                "must be pending, running, succeeded, failed, cancelled or held",
            )
        })?),
    };
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    // 404 for another tenant's job (its items would list as empty).
    state.jobs.get(&tenant.id, &id).await?;
    let page = state
        .store
        .list_job_items(&tenant.id, &id, item_state, &page)
        .await?
        .map(JobItemResponse::from);
    Ok(Json(JobItemPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Re-run the job's failed items (failed only: succeeded items never run again).
/// Answers the job's snapshot.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 202, description = "Failed items queued again", body = JobResponse),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_job(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobResponse>), ApiError> {
    let (job, _) = state.jobs.retry_failed(&tenant.id, &parse_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// Cancel the job's pending and held items; running items finish their current
/// attempt. Answers the job's snapshot.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 200, description = "Pending items cancelled", body = JobResponse),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel_job(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobResponse>, ApiError> {
    let (job, _) = state.jobs.cancel(&tenant.id, &parse_id(&id)?).await?;
    Ok(Json(job.into()))
}

/// Server-sent events of a job: first a `progress` event with the current snapshot,
/// then a `progress` event on each change, and a final `finished` event (the same
/// body) when the job reaches a terminal state; then the stream ends. Each event's
/// data is a job object as answered by `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 200, description = "`text/event-stream` of `progress` and `finished` events whose data is a job", body = JobResponse, content_type = "text/event-stream"),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn job_events(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_id(&id)?;
    // Subscribe before the first read so no change falls between the two.
    let rx = state.jobs.subscribe();
    let first = state.jobs.get(&tenant.id, &id).await?;
    Ok(
        Sse::new(progress_stream(state.jobs.clone(), tenant.id, first, rx))
            .keep_alive(KeepAlive::default()),
    )
}

fn event(name: &str, job: &JobResponse) -> Event {
    Event::default()
        .event(name)
        .json_data(job)
        .unwrap_or_else(|_| Event::default().event(name))
}

fn progress_stream(
    jobs: Jobs,
    tenant: TenantId,
    first: Job,
    mut rx: tokio::sync::broadcast::Receiver<super::JobProgress>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let id = first.id.clone();
        let mut last = (first.state, first.counts);
        let finished = first.state.is_terminal();
        let snapshot = JobResponse::from(first);
        yield Ok(event("progress", &snapshot));
        if finished {
            yield Ok(event("finished", &snapshot));
            return;
        }
        let mut poll = tokio::time::interval(SSE_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut local = true;
        loop {
            tokio::select! {
                msg = rx.recv(), if local => match msg {
                    Ok(p) if p.job_id != id => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => { local = false; continue; }
                },
                _ = poll.tick() => {}
            }
            let job = match jobs.get(&tenant, &id).await {
                Ok(job) => job,
                Err(JobError::NotFound) => return,
                Err(e) => {
                    tracing::warn!(job_id = %id, error = ?e, "reading job for its event stream failed");
                    continue;
                }
            };
            let now = (job.state, job.counts);
            if now == last {
                continue;
            }
            last = now;
            let terminal = job.state.is_terminal();
            let body = JobResponse::from(job);
            yield Ok(event("progress", &body));
            if terminal {
                yield Ok(event("finished", &body));
                return;
            }
        }
    }
}
