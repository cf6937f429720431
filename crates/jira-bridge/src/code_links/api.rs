//! `POST /v1/code-links`, `POST /v1/code-links/backfill`,
//! `GET /v1/code-links/backfill/{job_id}`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::backfill::{self, BackfillRecord, BackfillReport};
use super::{CodeLinkRequest, CodeLinkResponse};
use crate::connections::errors::ConnectionProblem;
use crate::connections::ConnectionError;
use crate::http::extract::{Json, Path};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(code_link))
        .routes(routes!(start_backfill))
        .routes(routes!(backfill_report))
}

/// Link a pull request (or commit, or any source) to the issues its title, branch and
/// commits name (in that precedence); each issue gets a ticket link with purpose
/// `code:<KEY>` and, when `url` is given, a Jira remote link upserted by a stable
/// global id. Repeating the call changes nothing in Jira.
#[utoipa::path(post, path = "/v1/code-links", tag = "keys",
    security(("api_key" = [])), request_body = CodeLinkRequest,
    responses(
        (status = 200, description = "Keys and what was linked", body = CodeLinkResponse),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "Invalid input", body = ConnectionProblem, content_type = PJ),
    ))]
async fn code_link(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<CodeLinkRequest>,
) -> Result<Json<CodeLinkResponse>, ConnectionError> {
    Ok(Json(super::link(&state, &tenant.id, req).await?))
}

/// Historical records to link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackfillRequest {
    /// The connection of the issues.
    pub connection_id: String,
    /// Source kind of the records' links (default `record`).
    pub source_kind: Option<String>,
    /// The records (1 to 10,000; ids unique).
    pub records: Vec<BackfillRecord>,
}

/// A queued backfill.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackfillAccepted {
    /// The job: progress at `/v1/jobs/{id}`, per-record results at
    /// `/v1/jobs/{id}/items`, the report at `/v1/code-links/backfill/{id}`.
    pub job_id: String,
}

/// Link historical records in a job: per record the first of title, branch, notes and
/// URLs that names an existing issue decides; the report says what was linked, what
/// was ambiguous and what matched no existing issue.
#[utoipa::path(post, path = "/v1/code-links/backfill", tag = "keys",
    security(("api_key" = [])), request_body = BackfillRequest,
    responses(
        (status = 202, description = "Queued", body = BackfillAccepted),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "Invalid records", body = ConnectionProblem, content_type = PJ),
    ))]
async fn start_backfill(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<BackfillRequest>,
) -> Result<(StatusCode, Json<BackfillAccepted>), ConnectionError> {
    if req.records.is_empty() || req.records.len() > backfill::MAX_RECORDS {
        return Err(ApiError::invalid_field(
            "records",
            format!("1 to {} records", backfill::MAX_RECORDS),
        )
        .into());
    }
    let source_kind = req.source_kind.unwrap_or_else(|| "record".to_owned());
    if source_kind.trim().is_empty() || source_kind.len() > 100 {
        return Err(ApiError::invalid_field("source_kind", "1 to 100 characters").into());
    }
    let con = req
        .connection_id
        .parse()
        .map_err(|_| ApiError::NotFound("no such connection".into()))?;
    // The connection must exist and be usable now.
    let c = crate::connections::connect(&state, &tenant.id, &con).await?;
    let items = backfill::job_items(req.records).map_err(|errors| ApiError::Validation {
        detail: "some records are not valid".into(),
        errors,
    })?;
    let payload = backfill::JobPayload {
        connection_id: c.connection.id.clone(),
        source_kind,
    };
    let enq = crate::jobs::EnqueueRequest::new(tenant.id.clone(), backfill::KIND, items)
        .payload(serde_json::json!(payload), 1)
        .connection(c.connection.id.clone());
    let job = state.jobs.enqueue(enq).await.map_err(ApiError::from)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BackfillAccepted {
            job_id: job.job.id.to_string(),
        }),
    ))
}

/// The report of a backfill: totals and the records linked, ambiguous and without a
/// matching issue.
#[utoipa::path(get, path = "/v1/code-links/backfill/{job_id}", tag = "keys",
    security(("api_key" = [])), params(("job_id" = String, Path, description = "`job_…`")),
    responses(
        (status = 200, description = "The report so far", body = BackfillReport),
        (status = 404, description = "No such backfill", body = crate::http::Problem, content_type = PJ),
    ))]
async fn backfill_report(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<BackfillReport>, ApiError> {
    let id = job_id
        .parse()
        .map_err(|_| ApiError::NotFound("no such backfill".into()))?;
    Ok(Json(backfill::report(&state, &tenant.id, &id).await?))
}
