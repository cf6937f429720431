//! `/v1/releases…`.

use axum::extract::State;
use axum::http::StatusCode;
use jira_bridge_store::exports::{Release, ReleaseId};
use jira_bridge_store::PageRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check, create, view, ReleaseError, ReleaseRequest, ReleaseView};
use crate::configs::api::ListParams;
use crate::connections::errors::{from_jira, ConnectionError};
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_release, list_releases))
        .routes(routes!(get_release))
        .routes(routes!(check_release))
}

/// A page of releases.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleasePage {
    /// Newest first.
    pub items: Vec<ReleaseView>,
    /// Next page, or null.
    pub next_cursor: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such release".into())
}

fn release_error(e: ReleaseError) -> ConnectionError {
    match e {
        ReleaseError::Invalid(errors) => ConnectionError::Api(ApiError::Validation {
            detail: "the release is not valid".into(),
            errors,
        }),
        ReleaseError::Jira(e) => from_jira(&e),
        ReleaseError::Store(e) => ConnectionError::Api(e.into()),
    }
}

async fn load(state: &AppState, tenant: &Tenant, id: &str) -> Result<Release, ApiError> {
    let id: ReleaseId = id.parse().map_err(|_| not_found())?;
    state
        .store
        .get_release(&tenant.id, &id)
        .await?
        .ok_or_else(not_found)
}

/// Create one release epic per platform target of a config.
#[utoipa::path(post, path = "/v1/releases", tag = "releases",
    security(("api_key" = [])), request_body = ReleaseRequest,
    responses(
        (status = 202, description = "Release stored; its epics are being created by `job_id`", body = ReleaseView),
        (status = 422, description = "Unknown config or platform, bad version or date", body = crate::http::Problem, content_type = PJ),
    ))]
async fn create_release(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<ReleaseRequest>,
) -> Result<(StatusCode, Json<ReleaseView>), ConnectionError> {
    let r = create(&state, &tenant.id, &req)
        .await
        .map_err(release_error)?;
    let v = view(&state.store, r).await.map_err(ApiError::from)?;
    Ok((StatusCode::ACCEPTED, Json(v)))
}

/// The tenant's releases, newest first.
#[utoipa::path(get, path = "/v1/releases", tag = "releases",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "A page", body = ReleasePage)))]
async fn list_releases(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<Json<ReleasePage>, ApiError> {
    let page = PageRequest::new(q.limit, q.cursor.as_deref())?;
    let rows = state.store.list_releases(&tenant.id, &page).await?;
    let mut items = Vec::with_capacity(rows.items.len());
    for r in rows.items {
        items.push(view(&state.store, r).await?);
    }
    Ok(Json(ReleasePage {
        items,
        next_cursor: rows.next_cursor,
    }))
}

/// A release: per platform the epic's key, URL and status (as of the last check or
/// sync), and `complete`.
#[utoipa::path(get, path = "/v1/releases/{id}", tag = "releases",
    security(("api_key" = [])), params(("id" = String, Path, description = "`rel_…`")),
    responses(
        (status = 200, description = "The release", body = ReleaseView),
        (status = 404, description = "No such release", body = crate::http::Problem, content_type = PJ),
    ))]
async fn get_release(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ReleaseView>, ApiError> {
    let r = load(&state, &tenant, &id).await?;
    Ok(Json(view(&state.store, r).await?))
}

/// Read the epics' statuses from Jira now; `complete` when each reached its target's
/// completed status (or the done category). `release.completed` is emitted once.
#[utoipa::path(post, path = "/v1/releases/{id}/check", tag = "releases",
    security(("api_key" = [])), params(("id" = String, Path, description = "`rel_…`")),
    responses(
        (status = 200, description = "The release after the check", body = ReleaseView),
        (status = 404, description = "No such release", body = crate::http::Problem, content_type = PJ),
    ))]
async fn check_release(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ReleaseView>, ConnectionError> {
    let r = load(&state, &tenant, &id).await?;
    let conn = crate::connections::connect(&state, &tenant.id, &r.connection_id).await?;
    match check(&state.store, &conn.jira, &r).await {
        Ok(v) => Ok(Json(v)),
        Err(ReleaseError::Jira(e)) => {
            Err(conn.observe::<()>(Err(e)).await.err().unwrap_or_else(|| {
                ConnectionError::Api(ApiError::internal(std::io::Error::other("unreachable")))
            }))
        }
        Err(e) => Err(release_error(e)),
    }
}
