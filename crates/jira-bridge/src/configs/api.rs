//! `/v1/configs…`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use jira_bridge_store::configs::{ConfigId, NewTicketConfig, TicketConfig, TicketConfigPatch};
use jira_bridge_store::{ConnectionId, PageRequest, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check, verify_targets, ConfigTarget, TargetCheck};
use crate::connections::errors::{ConnectionError, ConnectionProblem};
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_config, list_configs))
        .routes(routes!(get_config, update_config, delete_config))
        .routes(routes!(verify_config))
}

/// A config.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigResponse {
    /// `cfg_…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Connection.
    pub connection_id: String,
    /// Description.
    pub description: Option<String>,
    /// Targets.
    pub targets: Vec<ConfigTarget>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl ConfigResponse {
    pub(crate) fn from_row(c: TicketConfig) -> Result<Self, ApiError> {
        Ok(Self {
            id: c.id.to_string(),
            name: c.name,
            connection_id: c.connection_id.to_string(),
            description: c.description,
            targets: serde_json::from_value(c.targets).map_err(ApiError::internal)?,
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
    }
}

/// A config to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConfigRequest {
    /// Name, unique per tenant.
    pub name: String,
    /// Connection (`con_…`).
    pub connection_id: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Targets.
    pub targets: Vec<ConfigTarget>,
}

/// Changes to a config.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfigRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New connection.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// New description (null clears it).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New targets (replace all).
    #[serde(default)]
    pub targets: Option<Vec<ConfigTarget>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size (default 50, max 500).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of configs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigPage {
    /// Newest first.
    pub items: Vec<ConfigResponse>,
    /// Next page, or null.
    pub next_cursor: Option<String>,
}

/// Verification of a config.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyConfigResponse {
    /// Every target is usable.
    pub ok: bool,
    /// Per target.
    pub targets: Vec<TargetCheck>,
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such config".into())
}

fn parse_id(id: &str) -> Result<ConfigId, ApiError> {
    id.parse().map_err(|_| not_found())
}

fn validation(errors: std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation {
            detail: "the config is not valid".into(),
            errors,
        })
    }
}

/// The tenant's connection named in a request (422 `connection_id` otherwise).
pub(crate) async fn own_connection(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<ConnectionId, ApiError> {
    let bad = || ApiError::invalid_field("connection_id", "no such connection");
    let cid: ConnectionId = id.parse().map_err(|_| bad())?;
    state
        .store
        .get_connection(&tenant.id, &cid)
        .await?
        .ok_or_else(bad)?;
    Ok(cid)
}

fn conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { .. } => ApiError::Conflict("a config with this name exists".into()),
        e => e.into(),
    }
}

/// Create a config.
#[utoipa::path(post, path = "/v1/configs", tag = "configs",
    security(("api_key" = [])), request_body = CreateConfigRequest,
    responses(
        (status = 201, description = "Created", body = ConfigResponse),
        (status = 409, description = "Name in use", body = crate::http::Problem, content_type = PJ),
        (status = 422, description = "Invalid", body = crate::http::Problem, content_type = PJ),
    ))]
async fn create_config(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<CreateConfigRequest>,
) -> Result<(StatusCode, Json<ConfigResponse>), ApiError> {
    validation(check(&req.name, &req.targets))?;
    let connection_id = own_connection(&state, &tenant, &req.connection_id).await?;
    let row = state
        .store
        .insert_ticket_config(&NewTicketConfig {
            tenant_id: tenant.id.clone(),
            connection_id,
            name: req.name.trim().to_owned(),
            description: req.description,
            targets: serde_json::to_value(&req.targets).map_err(ApiError::internal)?,
        })
        .await
        .map_err(conflict)?;
    Ok((StatusCode::CREATED, Json(ConfigResponse::from_row(row)?)))
}

/// The tenant's configs.
#[utoipa::path(get, path = "/v1/configs", tag = "configs",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "A page", body = ConfigPage)))]
async fn list_configs(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<ConfigPage>, ApiError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = state.store.list_ticket_configs(&tenant.id, &page).await?;
    let items = page
        .items
        .into_iter()
        .map(ConfigResponse::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(ConfigPage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// One config.
#[utoipa::path(get, path = "/v1/configs/{id}", tag = "configs",
    security(("api_key" = [])), params(("id" = String, Path, description = "`cfg_…`")),
    responses(
        (status = 200, description = "The config", body = ConfigResponse),
        (status = 404, description = "No such config", body = crate::http::Problem, content_type = PJ),
    ))]
async fn get_config(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConfigResponse>, ApiError> {
    let row = state
        .store
        .get_ticket_config(&tenant.id, &parse_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(ConfigResponse::from_row(row)?))
}

/// Change a config.
#[utoipa::path(patch, path = "/v1/configs/{id}", tag = "configs",
    security(("api_key" = [])), params(("id" = String, Path, description = "`cfg_…`")),
    request_body = UpdateConfigRequest,
    responses(
        (status = 200, description = "Changed", body = ConfigResponse),
        (status = 404, description = "No such config", body = crate::http::Problem, content_type = PJ),
        (status = 422, description = "Invalid", body = crate::http::Problem, content_type = PJ),
    ))]
async fn update_config(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateConfigRequest>,
) -> Result<Json<ConfigResponse>, ApiError> {
    let id = parse_id(&id)?;
    let current = state
        .store
        .get_ticket_config(&tenant.id, &id)
        .await?
        .ok_or_else(not_found)?;
    let name = req.name.clone().unwrap_or(current.name.clone());
    let targets: Vec<ConfigTarget> = match &req.targets {
        Some(t) => t.clone(),
        None => serde_json::from_value(current.targets.clone()).map_err(ApiError::internal)?,
    };
    validation(check(&name, &targets))?;
    let connection_id = match &req.connection_id {
        Some(c) => Some(own_connection(&state, &tenant, c).await?),
        None => None,
    };
    let patch = TicketConfigPatch {
        name: req.name.map(|n| n.trim().to_owned()),
        description: req.description,
        targets: match req.targets {
            Some(t) => Some(serde_json::to_value(t).map_err(ApiError::internal)?),
            None => None,
        },
        connection_id,
    };
    let row = state
        .store
        .update_ticket_config(&tenant.id, &id, &patch)
        .await
        .map_err(conflict)?
        .ok_or_else(not_found)?;
    Ok(Json(ConfigResponse::from_row(row)?))
}

/// Delete a config (tickets made from it keep their links).
#[utoipa::path(delete, path = "/v1/configs/{id}", tag = "configs",
    security(("api_key" = [])), params(("id" = String, Path, description = "`cfg_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such config", body = crate::http::Problem, content_type = PJ),
    ))]
async fn delete_config(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .delete_ticket_config(&tenant.id, &parse_id(&id)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// Check that every target's project, issue type, priority and completed status exist
/// in Jira.
#[utoipa::path(post, path = "/v1/configs/{id}/verify", tag = "configs",
    security(("api_key" = [])), params(("id" = String, Path, description = "`cfg_…`")),
    responses(
        (status = 200, description = "Per-target result", body = VerifyConfigResponse),
        (status = 404, description = "No such config", body = ConnectionProblem, content_type = PJ),
        (status = 409, description = "The connection is disabled or expired", body = ConnectionProblem, content_type = PJ),
    ))]
async fn verify_config(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<VerifyConfigResponse>, ConnectionError> {
    let row = state
        .store
        .get_ticket_config(&tenant.id, &parse_id(&id)?)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(not_found)?;
    let targets: Vec<ConfigTarget> =
        serde_json::from_value(row.targets).map_err(ApiError::internal)?;
    let conn = crate::connections::connect(&state, &tenant.id, &row.connection_id).await?;
    let checks = conn
        .observe(verify_targets(&conn.jira, &targets).await)
        .await?;
    Ok(Json(VerifyConfigResponse {
        ok: checks.iter().all(|c| c.ok),
        targets: checks,
    }))
}
