//! `GET /v1/audit`

use axum::extract::State;
use chrono::{DateTime, FixedOffset, Utc};
use jira_bridge_store::audit::{AuditEntry, AuditFilter};
use jira_bridge_store::{AuditId, PageRequest, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState, Problem};
use crate::tenancy::Tenant;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(get_audit))
}

/// Filters and paging for `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact action, e.g. `api_key.revoke`.
    pub action: Option<String>,
    /// Exact actor: `key:<key id>`, `admin`, `cli`, `system`.
    pub actor: Option<String>,
    /// Exact target kind, e.g. `connection`.
    pub target_kind: Option<String>,
    /// Exact target id.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub from: Option<DateTime<FixedOffset>>,
    /// Entries before this time (RFC 3339).
    pub to: Option<DateTime<FixedOffset>>,
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryResponse {
    /// `aud_…`
    pub id: String,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// Kind of object acted on.
    pub target_kind: Option<String>,
    /// Id of the object acted on.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// Details.
    pub detail: serde_json::Value,
    /// Request id of the call that caused it.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryResponse {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            actor: e.actor,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            outcome: e.outcome,
            detail: e.detail,
            request_id: e.request_id,
            created_at: e.created_at,
        }
    }
}

/// A page of audit entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditEntryResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    security(("api_key" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "Malformed filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_audit(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    if let Some(o) = &p.outcome {
        if o != "success" && o != "failure" {
            return Err(ApiError::invalid_field(
                "outcome",
                "must be `success` or `failure`",
            ));
        }
    }
    if let (Some(from), Some(to)) = (p.from, p.to) {
        if from > to {
            return Err(ApiError::invalid_field("to", "must not be before `from`"));
        }
    }
    let filter = AuditFilter {
        action: p.action,
        actor: p.actor,
        target_kind: p.target_kind,
        target_id: p.target_id,
        outcome: p.outcome,
        from: p.from.map(|t| Timestamp::from(t.with_timezone(&Utc))),
        to: p.to.map(|t| Timestamp::from(t.with_timezone(&Utc))),
    };
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = state
        .store
        .list_audit(&tenant.id, &filter, &page)
        .await?
        .map(AuditEntryResponse::from);
    Ok(Json(AuditPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One entry of the tenant's audit log.
#[utoipa::path(get, path = "/v1/audit/{id}", tag = "audit",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Audit entry id (`aud_…`)")),
    responses(
        (status = 200, description = "The entry", body = AuditEntryResponse),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry for this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_audit(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AuditEntryResponse>, ApiError> {
    let not_found = || ApiError::NotFound("no such audit entry".into());
    let id: AuditId = id.parse().map_err(|_| not_found())?;
    let entry = state
        .store
        .get_audit(&tenant.id, &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(entry.into()))
}
