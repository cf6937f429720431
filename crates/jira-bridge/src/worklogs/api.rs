//! `/v1/time-entries…` and `/v1/sync-history`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, FixedOffset, Utc};
use jira_bridge_store::sync_history::{SyncAttempt, SyncHistoryFilter};
use jira_bridge_store::time_entries::{TimeEntry, TimeEntryFilter};
use jira_bridge_store::{PageRequest, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BulkRequest, EntryInput, Prefer};
use crate::connections::errors::ConnectionProblem;
use crate::connections::ConnectionError;
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_entry, get_entry, delete_entry))
        .routes(routes!(list_entries))
        .routes(routes!(sync_entry))
        .routes(routes!(bulk_sync))
        .routes(routes!(list_history))
}

/// One sync attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncAttemptResponse {
    /// `syh_…`
    pub id: String,
    /// What was attempted: `worklog.create`, `worklog.update`, `worklog.move`,
    /// `worklog.delete`, `worklog.reconcile`, `worklog.validate`, `worklog.remote_change`,
    /// `worklog.resolve_remote`, `worklog.noop`.
    pub kind: String,
    /// `succeeded`, `failed` or `conflict`.
    pub state: String,
    /// `time_entry`.
    pub subject_kind: String,
    /// The entry's `source_id`.
    pub subject_id: String,
    /// Issue.
    pub issue_key: Option<String>,
    /// Worklog id.
    pub worklog_id: Option<String>,
    /// Job of a bulk sync.
    pub job_id: Option<String>,
    /// Error code (`validation`, `permission`, `jira`, `conflict`, …).
    pub error_code: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Field errors, Jira's messages.
    pub detail: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<SyncAttempt> for SyncAttemptResponse {
    fn from(a: SyncAttempt) -> Self {
        Self {
            id: a.id.to_string(),
            kind: a.kind,
            state: a.state,
            subject_kind: a.subject_kind,
            subject_id: a.subject_id,
            issue_key: a.issue_key,
            worklog_id: a.remote_id,
            job_id: a.job_id,
            error_code: a.error_code,
            error: a.error,
            detail: a.detail,
            at: a.at,
        }
    }
}

/// A time entry and its sync state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimeEntryResponse {
    /// The host's id.
    pub source_id: String,
    /// `tme_…`
    pub id: String,
    /// Connection.
    pub connection_id: String,
    /// The host's user.
    pub owner: Option<String>,
    /// Issue key.
    pub issue_key: String,
    /// Start, in the offset `started` is written with.
    pub started_at: DateTime<FixedOffset>,
    /// The entry's IANA zone, if given.
    pub time_zone: Option<String>,
    /// Duration as given.
    pub duration_seconds: i64,
    /// Duration as Jira counts it (nearest minute, at least one).
    pub jira_seconds: i64,
    /// Comment (Markdown).
    pub comment: Option<String>,
    /// `auto` or `manual`.
    pub sync: String,
    /// `not_synced`, `pending`, `synced`, `failed`, `deleted` or `conflict`.
    pub state: String,
    /// Jira worklog id.
    pub worklog_id: Option<String>,
    /// Issue the worklog is on.
    pub worklog_issue_key: Option<String>,
    /// Why the last sync failed.
    pub last_error: Option<String>,
    /// On a conflict: the worklog as Jira has it (`{"deleted": true}` when deleted).
    pub remote: Option<serde_json::Value>,
    /// When it is due to sync.
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Last successful sync.
    pub synced_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Sync attempts, newest first (on `GET /v1/time-entries/{source_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<SyncAttemptResponse>>,
}

impl From<TimeEntry> for TimeEntryResponse {
    fn from(e: TimeEntry) -> Self {
        let start = super::content_of(&e).start;
        Self {
            source_id: e.source_id,
            id: e.id.to_string(),
            connection_id: e.connection_id.to_string(),
            owner: e.owner,
            issue_key: e.issue_key,
            started_at: start.local(),
            time_zone: e.time_zone,
            duration_seconds: e.duration_s,
            jira_seconds: super::time::jira_seconds(e.duration_s),
            comment: e.comment,
            sync: e.sync_mode,
            state: e.state,
            worklog_id: e.worklog_id,
            worklog_issue_key: e.worklog_issue_key,
            last_error: e.last_error,
            remote: e.remote,
            next_sync_at: e.next_sync_at,
            synced_at: e.synced_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
            history: None,
        }
    }
}

/// Upsert a time entry. Validation failures (issue key format or existence, start
/// before end, duration bounds, work logging refused) answer 422 naming the field,
/// are recorded in the sync history, and send nothing to Jira. `sync: auto` queues a
/// sync after a short debounce.
#[utoipa::path(put, path = "/v1/time-entries/{source_id}", tag = "worklogs",
    security(("api_key" = [])),
    params(("source_id" = String, Path, description = "The host's id of the entry")),
    request_body = EntryInput,
    responses(
        (status = 201, description = "Created", body = TimeEntryResponse),
        (status = 200, description = "Updated", body = TimeEntryResponse),
        (status = 422, description = "Invalid entry", body = ConnectionProblem, content_type = PJ),
    ))]
async fn put_entry(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    Json(input): Json<EntryInput>,
) -> Result<(StatusCode, Json<TimeEntryResponse>), ConnectionError> {
    let up = super::upsert(&state, &tenant.id, &source_id, input).await?;
    if up.entry.next_sync_at.is_some() {
        super::worker::wake();
    }
    let status = if up.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(up.entry.into())))
}

async fn history_of(
    state: &AppState,
    tenant: &Tenant,
    source_id: &str,
) -> Result<Vec<SyncAttemptResponse>, ConnectionError> {
    let page = state
        .store
        .list_sync_history(
            &tenant.id,
            &SyncHistoryFilter {
                subject: Some((super::SUBJECT.into(), source_id.to_owned())),
                ..Default::default()
            },
            &PageRequest::first(100),
        )
        .await?;
    Ok(page.items.into_iter().map(Into::into).collect())
}

/// One entry with its sync history (newest first, up to 100 attempts).
#[utoipa::path(get, path = "/v1/time-entries/{source_id}", tag = "worklogs",
    security(("api_key" = [])),
    params(("source_id" = String, Path, description = "The host's id of the entry")),
    responses(
        (status = 200, description = "The entry", body = TimeEntryResponse),
        (status = 404, description = "No such entry", body = ConnectionProblem, content_type = PJ),
    ))]
async fn get_entry(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(source_id): Path<String>,
) -> Result<Json<TimeEntryResponse>, ConnectionError> {
    let e = state
        .store
        .get_time_entry(&tenant.id, &source_id)
        .await?
        .ok_or_else(|| ConnectionError::Api(ApiError::NotFound("no such time entry".into())))?;
    let mut r = TimeEntryResponse::from(e);
    r.history = Some(history_of(&state, &tenant, &source_id).await?);
    Ok(Json(r))
}

/// `DELETE /v1/time-entries/{source_id}` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Also delete the worklog in Jira.
    #[serde(default)]
    pub delete_worklog: bool,
}

/// Forget an entry (state `deleted`); with `delete_worklog=true` its worklog is deleted
/// in Jira too.
#[utoipa::path(delete, path = "/v1/time-entries/{source_id}", tag = "worklogs",
    security(("api_key" = [])),
    params(("source_id" = String, Path, description = "The host's id of the entry"), DeleteParams),
    responses(
        (status = 200, description = "Deleted", body = TimeEntryResponse),
        (status = 404, description = "No such entry", body = ConnectionProblem, content_type = PJ),
    ))]
async fn delete_entry(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    Query(p): Query<DeleteParams>,
) -> Result<Json<TimeEntryResponse>, ConnectionError> {
    let e = super::delete(&state, &tenant.id, &source_id, p.delete_worklog).await?;
    Ok(Json(e.into()))
}

/// `GET /v1/time-entries` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this owner's entries.
    pub owner: Option<String>,
    /// Only entries in this state.
    pub state: Option<String>,
    /// Started at or after (RFC 3339).
    pub from: Option<DateTime<FixedOffset>>,
    /// Started before (RFC 3339).
    pub to: Option<DateTime<FixedOffset>>,
    /// Page size (default 50, max 500).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimeEntryPage {
    /// Newest first.
    pub items: Vec<TimeEntryResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

const STATES: &[&str] = &[
    "not_synced",
    "pending",
    "synced",
    "failed",
    "deleted",
    "conflict",
];

/// The tenant's time entries with their sync state.
#[utoipa::path(get, path = "/v1/time-entries", tag = "worklogs",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "A page", body = TimeEntryPage)))]
async fn list_entries(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<TimeEntryPage>, ConnectionError> {
    if let Some(s) = &p.state {
        if !STATES.contains(&s.as_str()) {
            return Err(ConnectionError::Api(ApiError::bad_field(
                "state",
                format!("one of {}", STATES.join(", ")),
            )));
        }
    }
    let page = PageRequest::new(p.limit, p.cursor.as_deref()).map_err(ApiError::from)?;
    let filter = TimeEntryFilter {
        owner: p.owner,
        state: p.state,
        from: p.from.map(|d| Timestamp::from(d.with_timezone(&Utc))),
        to: p.to.map(|d| Timestamp::from(d.with_timezone(&Utc))),
    };
    let rows = state
        .store
        .list_time_entries(&tenant.id, &filter, &page)
        .await?;
    Ok(Json(TimeEntryPage {
        items: rows.items.into_iter().map(Into::into).collect(),
        next_cursor: rows.next_cursor,
    }))
}

/// `POST /v1/time-entries/{source_id}/sync` options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncParams {
    /// On a conflict: `local` writes the entry over the worklog, `remote` takes the
    /// worklog's version into the entry.
    #[param(inline)]
    pub prefer: Option<Prefer>,
}

/// Create or update the entry's worklog now (or settle a conflict with `prefer`).
/// Answers the entry after the attempt; a failed attempt answers a problem and is
/// recorded (the entry is `failed` and can be synced again).
#[utoipa::path(post, path = "/v1/time-entries/{source_id}/sync", tag = "worklogs",
    security(("api_key" = [])),
    params(("source_id" = String, Path, description = "The host's id of the entry"), SyncParams),
    responses(
        (status = 200, description = "Synced", body = TimeEntryResponse),
        (status = 409, description = "A conflict to settle with prefer, or the entry is busy", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "Jira refused the worklog", body = ConnectionProblem, content_type = PJ),
    ))]
async fn sync_entry(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    Query(p): Query<SyncParams>,
) -> Result<Json<TimeEntryResponse>, ConnectionError> {
    let e = super::sync_now(&state, &tenant.id, &source_id, p.prefer).await?;
    Ok(Json(e.into()))
}

/// A started bulk sync.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkResponse {
    /// The job (`/v1/jobs/{id}`: total, succeeded, failed; `/items`: per entry).
    pub job_id: String,
    /// Entries in the job.
    pub total: i64,
}

/// Sync many entries (`{source_ids}` or `{owner?, from, to}`) as a job.
#[utoipa::path(post, path = "/v1/time-entries/sync", tag = "worklogs",
    security(("api_key" = [])),
    request_body = BulkRequest,
    responses(
        (status = 202, description = "Job started", body = BulkResponse),
        (status = 422, description = "Invalid request", body = ConnectionProblem, content_type = PJ),
    ))]
async fn bulk_sync(
    tenant: Tenant,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<BulkRequest>,
) -> Result<(StatusCode, Json<BulkResponse>), ConnectionError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("worklogs.sync:{k}"));
    let job = super::bulk(&state, &tenant.id, req, key).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BulkResponse {
            job_id: job.id.to_string(),
            total: job.counts.total,
        }),
    ))
}

/// `GET /v1/sync-history` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Kind (e.g. `worklog.create`), or a prefix ending in `.` (`worklog.`).
    pub kind: Option<String>,
    /// `succeeded`, `failed` or `conflict`.
    pub state: Option<String>,
    /// At or after (RFC 3339).
    pub from: Option<DateTime<FixedOffset>>,
    /// Before (RFC 3339).
    pub to: Option<DateTime<FixedOffset>>,
    /// Page size (default 50, max 500).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of attempts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncHistoryPage {
    /// Newest first.
    pub items: Vec<SyncAttemptResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// Every sync attempt, newest first.
#[utoipa::path(get, path = "/v1/sync-history", tag = "worklogs",
    security(("api_key" = [])), params(HistoryParams),
    responses((status = 200, description = "A page", body = SyncHistoryPage)))]
async fn list_history(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<HistoryParams>,
) -> Result<Json<SyncHistoryPage>, ConnectionError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref()).map_err(ApiError::from)?;
    let filter = SyncHistoryFilter {
        kind: p.kind,
        state: p.state,
        subject: None,
        from: p.from.map(|d| Timestamp::from(d.with_timezone(&Utc))),
        to: p.to.map(|d| Timestamp::from(d.with_timezone(&Utc))),
    };
    let rows = state
        .store
        .list_sync_history(&tenant.id, &filter, &page)
        .await?;
    Ok(Json(SyncHistoryPage {
        items: rows.items.into_iter().map(Into::into).collect(),
        next_cursor: rows.next_cursor,
    }))
}
