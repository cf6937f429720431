//! `/v1/exports…`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jira_bridge_store::exports::ExportId;
use jira_bridge_store::PageRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    plan, rollback, start, view, ExportError, ExportRequest, ExportView, Plan, RollbackError,
};
use crate::configs::api::{own_connection, ListParams};
use crate::connections::errors::{from_jira, ConnectionError};
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_export, list_exports))
        .routes(routes!(get_export))
        .routes(routes!(rollback_export))
}

/// A started export.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportAccepted {
    /// `exp_…`.
    pub export_id: String,
    /// The job creating the issues (`/v1/jobs/{id}`, `/events` for SSE progress,
    /// `/retry` for failed items).
    pub job_id: String,
}

/// A rollback started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RollbackAccepted {
    /// The export.
    pub export_id: String,
    /// The rollback job.
    pub job_id: String,
}

/// Rollback options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Delete issues whose summary was edited in Jira too (moved or re-parented
    /// issues are always kept).
    #[serde(default)]
    pub force: bool,
}

/// A page of exports.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportPage {
    /// Newest first (counts, no tree).
    pub items: Vec<ExportView>,
    /// Next page, or null.
    pub next_cursor: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such export".into())
}

async fn load(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<jira_bridge_store::exports::Export, ApiError> {
    let id: ExportId = id.parse().map_err(|_| not_found())?;
    state
        .store
        .get_export(&tenant.id, &id)
        .await?
        .ok_or_else(not_found)
}

fn export_error(e: ExportError) -> ConnectionError {
    match e {
        ExportError::Invalid(errors) => ConnectionError::Api(ApiError::Validation {
            detail: "the export is not valid".into(),
            errors,
        }),
        ExportError::Jira(e) => from_jira(&e),
        ExportError::Store(e) => ConnectionError::Api(e.into()),
    }
}

/// Create an epic → story hierarchy, or preview it (`dry_run`).
#[utoipa::path(post, path = "/v1/exports", tag = "exports",
    security(("api_key" = [])), request_body = ExportRequest,
    responses(
        (status = 200, description = "Dry run: the plan per item; nothing was written", body = Plan),
        (status = 202, description = "Started", body = ExportAccepted),
        (status = 422, description = "Invalid tree or connection", body = crate::http::Problem, content_type = PJ),
    ))]
async fn create_export(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<ExportRequest>,
) -> Result<Response, ConnectionError> {
    let connection = own_connection(&state, &tenant, &req.connection_id).await?;
    if req.dry_run {
        let conn = crate::connections::connect(&state, &tenant.id, &connection).await?;
        let p = match plan(&state.store, &conn.jira, &tenant.id, &req).await {
            Ok(p) => p,
            Err(ExportError::Jira(e)) => {
                return Err(conn.observe::<()>(Err(e)).await.err().unwrap_or_else(|| {
                    from_jira(&jira_client::Error::Config("unreachable".into()))
                }))
            }
            Err(e) => return Err(export_error(e)),
        };
        return Ok((StatusCode::OK, axum::Json(p)).into_response());
    }
    let export = start(&state, &tenant.id, &connection, &req)
        .await
        .map_err(export_error)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ExportAccepted {
            export_id: export.id.to_string(),
            job_id: export.job_id.unwrap_or_default(),
        }),
    )
        .into_response())
}

/// The tenant's exports, newest first (counts; the tree is on the single export).
#[utoipa::path(get, path = "/v1/exports", tag = "exports",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "A page", body = ExportPage)))]
async fn list_exports(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<Json<ExportPage>, ApiError> {
    let page = PageRequest::new(q.limit, q.cursor.as_deref())?;
    let rows = state.store.list_exports(&tenant.id, &page).await?;
    let mut items = Vec::with_capacity(rows.items.len());
    for e in rows.items {
        items.push(view(&state.store, e, false).await?);
    }
    Ok(Json(ExportPage {
        items,
        next_cursor: rows.next_cursor,
    }))
}

/// An export: the tree with issue keys and per-item state (and rollback outcome).
#[utoipa::path(get, path = "/v1/exports/{id}", tag = "exports",
    security(("api_key" = [])), params(("id" = String, Path, description = "`exp_…`")),
    responses(
        (status = 200, description = "The export", body = ExportView),
        (status = 404, description = "No such export", body = crate::http::Problem, content_type = PJ),
    ))]
async fn get_export(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExportView>, ApiError> {
    let e = load(&state, &tenant, &id).await?;
    Ok(Json(view(&state.store, e, true).await?))
}

/// Delete the issues this export created, stories first (see the rule for issues
/// moved or edited in Jira in `docs/exports-and-releases.md`).
#[utoipa::path(post, path = "/v1/exports/{id}/rollback", tag = "exports",
    security(("api_key" = [])), params(("id" = String, Path, description = "`exp_…`")),
    request_body(content = Option<RollbackRequest>),
    responses(
        (status = 202, description = "Rollback job (the same one when asked again)", body = RollbackAccepted),
        (status = 404, description = "No such export", body = crate::http::Problem, content_type = PJ),
        (status = 409, description = "Still running, or nothing to roll back", body = crate::http::Problem, content_type = PJ),
    ))]
async fn rollback_export(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<RollbackAccepted>), ApiError> {
    let opts: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_field("body", e.to_string()))?
    };
    let e = load(&state, &tenant, &id).await?;
    let force = opts.force;
    let job = rollback(&state, &e, force).await.map_err(|e| match e {
        RollbackError::Store(s) => ApiError::from(s),
        other => ApiError::Conflict(other.to_string()),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RollbackAccepted {
            export_id: e.id.to_string(),
            job_id: job.id.to_string(),
        }),
    ))
}
