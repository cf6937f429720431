//! `/v1/tickets…`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use jira_bridge_store::configs::ConfigId;
use jira_bridge_store::links::{Link, LinkFilter, TicketId};
use jira_bridge_store::{ConnectionId, PageRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{create_one, new_link, CreateOne, CreateOptions, Source, TicketFields, TicketOpError};
use crate::configs::ConfigTarget;
use crate::connections::errors::{from_jira, ConnectionError, ConnectionProblem};
use crate::http::error::{PROBLEM_JSON, PROBLEM_TYPE_PREFIX};
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ticket, list_tickets))
        .routes(routes!(bulk_create))
        .routes(routes!(sync_now))
        .routes(routes!(get_ticket))
        .routes(routes!(refresh_ticket))
        .routes(routes!(transition_ticket))
}

/// A ticket: a host object linked to a Jira issue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketResponse {
    /// `tkt_…`.
    pub id: String,
    /// The host object.
    pub source: Source,
    /// Purpose (`""` when none).
    pub purpose: String,
    /// Connection.
    pub connection_id: String,
    /// `pending` (being created), `created` or `failed`.
    pub state: String,
    /// Project.
    pub project_key: String,
    /// Jira issue id.
    pub issue_id: Option<String>,
    /// Jira issue key.
    pub issue_key: Option<String>,
    /// Browse URL.
    pub url: Option<String>,
    /// Status name (as of the last sync).
    pub status: Option<String>,
    /// Status category key: `new`, `indeterminate`, `done`.
    pub status_category: Option<String>,
    /// The issue's summary as Jira last reported it (webhooks).
    pub summary: Option<String>,
    /// When Jira reported the issue deleted; the ticket is kept, marked.
    pub issue_deleted_at: Option<DateTime<Utc>>,
    /// When the status was last read from Jira.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Jira's `updated` at that time.
    pub remote_updated_at: Option<DateTime<Utc>>,
    /// Config it came from.
    pub config_id: Option<String>,
    /// Config target.
    pub target: Option<String>,
    /// Creating bulk job.
    pub job_id: Option<String>,
    /// Why creation failed.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// The summary was shortened to Jira's 255 characters (full text in the description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_truncated: Option<bool>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Link> for TicketResponse {
    fn from(l: Link) -> Self {
        Self {
            id: l.id.to_string(),
            source: Source {
                kind: l.source_kind,
                id: l.source_id,
            },
            purpose: l.purpose,
            connection_id: l.connection_id.to_string(),
            state: l.state,
            project_key: l.project_key,
            issue_id: l.issue_id,
            issue_key: l.issue_key,
            url: l.url,
            status: l.status,
            status_category: l.status_category,
            summary: l.summary,
            issue_deleted_at: l.issue_deleted_at,
            last_synced_at: l.synced_at,
            remote_updated_at: l.remote_updated_at,
            config_id: l.config_id,
            target: l.target,
            job_id: l.job_id,
            error: l.last_error,
            summary_truncated: None,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// A ticket to create: from a connection and explicit fields, or from a config target
/// (the target's project, issue type, priority, labels and fields are defaults).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTicketRequest {
    /// Connection (`con_…`), unless `config_id` is given.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Config (`cfg_…`) whose `target` supplies defaults.
    #[serde(default)]
    pub config_id: Option<String>,
    /// Target name in the config.
    #[serde(default)]
    pub target: Option<String>,
    /// The host object.
    pub source: Source,
    /// Why the issue exists; one issue per source and purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The issue.
    #[serde(flatten)]
    pub fields: TicketFields,
}

/// Where a ticket goes: connection, config and target names, defaults.
pub struct Resolved {
    /// Connection.
    pub connection_id: ConnectionId,
    /// Config id, if any.
    pub config_id: Option<String>,
    /// Target, if any.
    pub target: Option<String>,
    /// Defaults from the target.
    pub defaults: TicketFields,
}

/// Resolve `connection_id` or `config_id` + `target`.
pub async fn resolve_target(
    state: &AppState,
    tenant: &Tenant,
    connection_id: Option<&str>,
    config_id: Option<&str>,
    target: Option<&str>,
) -> Result<Resolved, ApiError> {
    match (connection_id, config_id) {
        (_, Some(cfg)) => {
            let bad = || ApiError::invalid_field("config_id", "no such config");
            let id: ConfigId = cfg.parse().map_err(|_| bad())?;
            let row = state
                .store
                .get_ticket_config(&tenant.id, &id)
                .await?
                .ok_or_else(bad)?;
            let targets: Vec<ConfigTarget> =
                serde_json::from_value(row.targets).map_err(ApiError::internal)?;
            let Some(name) = target else {
                return Err(ApiError::invalid_field(
                    "target",
                    "name the config target to use",
                ));
            };
            let t = targets
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                    ApiError::invalid_field(
                        "target",
                        format!(
                            "no target {name:?} in this config; targets: {}",
                            names.join(", ")
                        ),
                    )
                })?;
            Ok(Resolved {
                connection_id: row.connection_id,
                config_id: Some(row.id.to_string()),
                target: Some(t.name.clone()),
                defaults: t.defaults(),
            })
        }
        (Some(c), None) => {
            let bad = || ApiError::invalid_field("connection_id", "no such connection");
            let id: ConnectionId = c.parse().map_err(|_| bad())?;
            state
                .store
                .get_connection(&tenant.id, &id)
                .await?
                .ok_or_else(bad)?;
            Ok(Resolved {
                connection_id: id,
                config_id: None,
                target: None,
                defaults: TicketFields::default(),
            })
        }
        (None, None) => Err(ApiError::invalid_field(
            "connection_id",
            "give connection_id, or config_id and target",
        )),
    }
}

/// Errors of the ticket endpoints.
#[derive(Debug)]
pub enum TicketApiError {
    /// Any API, connection or Jira problem.
    Conn(ConnectionError),
    /// The workflow has no path to the target.
    Unreachable {
        /// What is wrong.
        detail: String,
        /// Status now.
        current: String,
        /// Transitions available from it.
        available: Vec<String>,
    },
    /// Jira did not answer a create; a retry reconciles.
    OutcomeUnknown(String),
}

impl From<ApiError> for TicketApiError {
    fn from(e: ApiError) -> Self {
        Self::Conn(ConnectionError::Api(e))
    }
}

impl From<ConnectionError> for TicketApiError {
    fn from(e: ConnectionError) -> Self {
        Self::Conn(e)
    }
}

impl From<jira_bridge_store::StoreError> for TicketApiError {
    fn from(e: jira_bridge_store::StoreError) -> Self {
        Self::Conn(ConnectionError::Api(e.into()))
    }
}

impl From<TicketOpError> for TicketApiError {
    fn from(e: TicketOpError) -> Self {
        match e {
            TicketOpError::NotCreated(s) => Self::Conn(ConnectionError::Api(ApiError::Conflict(
                format!("the ticket has no Jira issue yet (state {s})"),
            ))),
            TicketOpError::Store(e) => e.into(),
            TicketOpError::Jira(jira_client::Error::NoTransitionPath {
                issue,
                target,
                current,
                available,
            }) => Self::Unreachable {
                detail: format!(
                    "{issue} cannot reach {target} from {current:?} through its workflow"
                ),
                current,
                available,
            },
            TicketOpError::Jira(e) => Self::Conn(from_jira(&e)),
        }
    }
}

/// The 409 problem of an unreachable transition target.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnreachableProblem {
    /// `urn:jira-bridge:problem:transition-unreachable`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Title.
    pub title: String,
    /// 409.
    pub status: u16,
    /// What is wrong.
    pub detail: String,
    /// Status now.
    pub current_status: String,
    /// Transitions available from it (`name → status`).
    pub available_transitions: Vec<String>,
}

impl IntoResponse for TicketApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Conn(e) => return e.into_response(),
            Self::Unreachable {
                detail,
                current,
                available,
            } => (
                StatusCode::CONFLICT,
                serde_json::to_vec(&UnreachableProblem {
                    type_: format!("{PROBLEM_TYPE_PREFIX}transition-unreachable"),
                    title: "The target status cannot be reached".into(),
                    status: 409,
                    detail,
                    current_status: current,
                    available_transitions: available,
                }),
            ),
            Self::OutcomeUnknown(detail) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::to_vec(&crate::http::Problem {
                    type_: format!("{PROBLEM_TYPE_PREFIX}jira-outcome-unknown"),
                    title: "Jira did not confirm the creation".into(),
                    status: 503,
                    detail: format!(
                        "{detail}; send the same request again: it finds the issue if Jira created it, and never makes a second one"
                    ),
                    errors: None,
                }),
            ),
        };
        let mut res = (status, body.unwrap_or_default()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

/// Create the Jira issue of a host object, once: the same source and purpose again
/// answers the existing ticket (200). Validated against Jira's create metadata first
/// (422 naming the field). Overlong summaries and descriptions follow the documented
/// overflow policy.
#[utoipa::path(post, path = "/v1/tickets", tag = "tickets",
    security(("api_key" = [])), request_body = CreateTicketRequest,
    responses(
        (status = 201, description = "Created", body = TicketResponse),
        (status = 200, description = "This source and purpose already have a ticket", body = TicketResponse),
        (status = 409, description = "Another request is creating this source's issue right now", body = crate::http::Problem, content_type = PJ),
        (status = 422, description = "Invalid input, or Jira refused (its messages in `jira`)", body = ConnectionProblem, content_type = PJ),
        (status = 503, description = "Jira did not confirm; retry the same request", body = crate::http::Problem, content_type = PJ),
    ))]
async fn create_ticket(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<CreateTicketRequest>,
) -> Result<(StatusCode, Json<TicketResponse>), TicketApiError> {
    let purpose = req.purpose.clone().unwrap_or_default();
    if let Err(errors) = super::check_source(&req.source, &purpose) {
        return Err(ApiError::Validation {
            detail: "the source is not valid".into(),
            errors,
        }
        .into());
    }
    let r = resolve_target(
        &state,
        &tenant,
        req.connection_id.as_deref(),
        req.config_id.as_deref(),
        req.target.as_deref(),
    )
    .await?;
    let fields = req.fields.with_defaults(&r.defaults);
    // An existing ticket answers without touching Jira.
    if let Some(l) = state
        .store
        .find_link_by_source(&tenant.id, &req.source.kind, &req.source.id, &purpose)
        .await?
    {
        if l.state == "created" {
            return Ok((StatusCode::OK, Json(l.into())));
        }
    }
    let conn = crate::connections::connect(&state, &tenant.id, &r.connection_id).await?;
    let new = new_link(
        &tenant.id,
        &r.connection_id,
        &req.source,
        &purpose,
        &fields.project_key,
        r.config_id,
        r.target,
        None,
    );
    let out = create_one(
        &state.store,
        &conn.jira,
        new,
        fields,
        &CreateOptions::default(),
    )
    .await?;
    match out {
        CreateOne::Existing(l) => Ok((StatusCode::OK, Json(l.into()))),
        CreateOne::Created {
            link,
            summary_truncated,
        } => {
            let mut body = TicketResponse::from(link);
            body.summary_truncated = Some(summary_truncated);
            Ok((StatusCode::CREATED, Json(body)))
        }
        CreateOne::Invalid(errors) => Err(ApiError::Validation {
            detail: "the ticket does not fit the project's create screen".into(),
            errors,
        }
        .into()),
        CreateOne::Rejected { message, errors } => Err(ConnectionError::Jira {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            slug: "jira-rejected",
            detail: format!("Jira rejected the issue: {message}"),
            jira: Some(crate::connections::errors::JiraMessages {
                status: Some(400),
                error_messages: vec![message],
                errors,
            }),
        }
        .into()),
        CreateOne::Uncertain(m) => Err(TicketApiError::OutcomeUnknown(m)),
        CreateOne::InProgress => Err(ApiError::Conflict(
            "another request is creating this source's issue right now; retry in a moment".into(),
        )
        .into()),
    }
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this source kind.
    pub source_kind: Option<String>,
    /// Only this source id.
    pub source_id: Option<String>,
    /// Only this status category (`new`, `indeterminate`, `done`).
    pub status_category: Option<String>,
    /// Only this project.
    pub project: Option<String>,
    /// Only this connection.
    pub connection_id: Option<String>,
    /// Page size (default 50, max 500).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of tickets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketPage {
    /// Newest first.
    pub items: Vec<TicketResponse>,
    /// Next page, or null.
    pub next_cursor: Option<String>,
}

/// The tenant's tickets.
#[utoipa::path(get, path = "/v1/tickets", tag = "tickets",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "A page", body = TicketPage)))]
async fn list_tickets(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<TicketPage>, ApiError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let connection_id = match p.connection_id.as_deref() {
        Some(c) => Some(
            c.parse()
                .map_err(|_| ApiError::bad_field("connection_id", "not a connection id"))?,
        ),
        None => None,
    };
    let filter = LinkFilter {
        source_kind: p.source_kind,
        source_id: p.source_id,
        status_category: p.status_category,
        project_key: p.project.map(|s| s.to_uppercase()),
        connection_id,
    };
    let page = state.store.list_links(&tenant.id, &filter, &page).await?;
    Ok(Json(TicketPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn load(state: &AppState, tenant: &Tenant, id: &str) -> Result<Link, ApiError> {
    let nf = || ApiError::NotFound("no such ticket".into());
    let id: TicketId = id.parse().map_err(|_| nf())?;
    state.store.get_link(&tenant.id, &id).await?.ok_or_else(nf)
}

/// One ticket.
#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "tickets",
    security(("api_key" = [])), params(("id" = String, Path, description = "`tkt_…`")),
    responses(
        (status = 200, description = "The ticket", body = TicketResponse),
        (status = 404, description = "No such ticket", body = crate::http::Problem, content_type = PJ),
    ))]
async fn get_ticket(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TicketResponse>, ApiError> {
    Ok(Json(load(&state, &tenant, &id).await?.into()))
}

/// Read the issue's status from Jira now.
#[utoipa::path(post, path = "/v1/tickets/{id}/refresh", tag = "tickets",
    security(("api_key" = [])), params(("id" = String, Path, description = "`tkt_…`")),
    responses(
        (status = 200, description = "The ticket with its current status", body = TicketResponse),
        (status = 404, description = "No such ticket", body = ConnectionProblem, content_type = PJ),
        (status = 409, description = "No issue yet", body = ConnectionProblem, content_type = PJ),
    ))]
async fn refresh_ticket(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TicketResponse>, TicketApiError> {
    let link = load(&state, &tenant, &id).await?;
    let conn = crate::connections::connect(&state, &tenant.id, &link.connection_id).await?;
    match super::refresh(&state.store, &conn.jira, &link).await {
        Ok(l) => Ok(Json(l.into())),
        Err(TicketOpError::Jira(e)) => Err(conn.observe::<()>(Err(e)).await.err().map_or_else(
            || ApiError::internal(std::io::Error::other("unreachable")).into(),
            TicketApiError::from,
        )),
        Err(e) => Err(e.into()),
    }
}

/// Where to move a ticket's issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// A status name.
    #[serde(default)]
    pub to_status: Option<String>,
    /// A status category: `todo`, `in_progress` or `done`.
    #[serde(default)]
    pub to_category: Option<String>,
}

/// Move the issue to a status or a status category, walking the workflow as needed.
/// Unreachable: 409 with the transitions available from the current status.
#[utoipa::path(post, path = "/v1/tickets/{id}/transition", tag = "tickets",
    security(("api_key" = [])), params(("id" = String, Path, description = "`tkt_…`")),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "The ticket in its new status", body = TicketResponse),
        (status = 409, description = "No path to the target", body = UnreachableProblem, content_type = PJ),
        (status = 422, description = "Invalid target", body = crate::http::Problem, content_type = PJ),
    ))]
async fn transition_ticket(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<TransitionRequest>,
) -> Result<Json<TicketResponse>, TicketApiError> {
    let target = match (req.to_status, req.to_category.as_deref()) {
        (Some(s), None) if !s.trim().is_empty() => jira_client::Target::Status(s),
        (None, Some(c)) => jira_client::Target::Category(match c {
            "todo" | "to_do" | "new" => jira_client::Category::ToDo,
            "in_progress" | "indeterminate" => jira_client::Category::InProgress,
            "done" => jira_client::Category::Done,
            _ => {
                return Err(ApiError::invalid_field(
                    "to_category",
                    "one of todo, in_progress, done",
                )
                .into())
            }
        }),
        _ => {
            return Err(
                ApiError::invalid_field("to_status", "give to_status or to_category").into(),
            )
        }
    };
    let link = load(&state, &tenant, &id).await?;
    let conn = crate::connections::connect(&state, &tenant.id, &link.connection_id).await?;
    match super::transition(&state.store, &conn.jira, &link, &target).await {
        Ok(l) => Ok(Json(l.into())),
        Err(TicketOpError::Jira(e))
            if !matches!(e, jira_client::Error::NoTransitionPath { .. }) =>
        {
            Err(conn.observe::<()>(Err(e)).await.err().map_or_else(
                || ApiError::internal(std::io::Error::other("unreachable")).into(),
                TicketApiError::from,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Most items in one bulk request.
pub const MAX_BULK_ITEMS: usize = 10_000;

/// Many tickets at once.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkRequest {
    /// Connection (`con_…`), unless `config_id` is given.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Config whose `target` supplies defaults.
    #[serde(default)]
    pub config_id: Option<String>,
    /// Config target name.
    #[serde(default)]
    pub target: Option<String>,
    /// Fields every item gets unless it sets its own.
    #[serde(default)]
    pub defaults: TicketFields,
    /// The tickets.
    pub items: Vec<super::bulk::BulkItem>,
}

/// A job was queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobAccepted {
    /// `job_…`: follow it at `/v1/jobs/{id}`.
    pub job_id: String,
}

/// Create many tickets in a durable job: items are validated one by one against the
/// create metadata, grouped into Jira bulk creates of 50, each created exactly once;
/// per-item results at `/v1/jobs/{id}/items`.
#[utoipa::path(post, path = "/v1/tickets/bulk", tag = "tickets",
    security(("api_key" = [])), request_body = BulkRequest,
    responses(
        (status = 202, description = "Queued", body = JobAccepted),
        (status = 422, description = "Structurally invalid request", body = crate::http::Problem, content_type = PJ),
    ))]
async fn bulk_create(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<BulkRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    if req.items.is_empty() || req.items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::invalid_field(
            "items",
            format!("1 to {MAX_BULK_ITEMS} items"),
        ));
    }
    let r = resolve_target(
        &state,
        &tenant,
        req.connection_id.as_deref(),
        req.config_id.as_deref(),
        req.target.as_deref(),
    )
    .await?;
    let defaults = req.defaults.with_defaults(&r.defaults);
    let mut items =
        super::bulk::job_items(&defaults, req.items).map_err(|errors| ApiError::Validation {
            detail: "some items are not valid".into(),
            errors,
        })?;
    for it in &mut items {
        if let Some(obj) = it.payload.as_object_mut() {
            obj.insert("config_id".into(), serde_json::json!(r.config_id));
            obj.insert("target".into(), serde_json::json!(r.target));
        }
    }
    let enq = crate::jobs::EnqueueRequest::new(tenant.id.clone(), super::bulk::KIND, items)
        .payload(serde_json::json!({"connection_id": r.connection_id}), 1)
        .connection(r.connection_id.clone());
    let job = state.jobs.enqueue(enq).await.map_err(|e| match e {
        crate::jobs::JobError::Invalid(m) => ApiError::invalid_field("items", m),
        crate::jobs::JobError::NotFound => ApiError::NotFound("no such job".into()),
        crate::jobs::JobError::Store(e) => e.into(),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: job.job.id.to_string(),
        }),
    ))
}

/// Which connections to sync.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Only this connection (default: every connection with tickets).
    #[serde(default)]
    pub connection_id: Option<String>,
}

/// Sync ticket statuses from Jira now (incremental JQL search per connection).
#[utoipa::path(post, path = "/v1/tickets/sync", tag = "tickets",
    security(("api_key" = [])), request_body = SyncRequest,
    responses(
        (status = 202, description = "Queued", body = JobAccepted),
        (status = 422, description = "No such connection, or nothing to sync", body = crate::http::Problem, content_type = PJ),
    ))]
async fn sync_now(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<SyncRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let only = match req.connection_id.as_deref() {
        Some(c) => Some(
            resolve_target(&state, &tenant, Some(c), None, None)
                .await?
                .connection_id,
        ),
        None => None,
    };
    let job = super::handlers::enqueue_sync(&state, &tenant.id, only.as_ref(), None)
        .await
        .map_err(|e| match e {
            crate::jobs::JobError::Store(e) => ApiError::from(e),
            e => ApiError::internal(e),
        })?
        .ok_or_else(|| {
            ApiError::invalid_field("connection_id", "no connection has tickets to sync")
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: job.job.id.to_string(),
        }),
    ))
}
