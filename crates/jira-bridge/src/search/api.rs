//! `GET /v1/connections/{id}/issues/search`, `…/issues/picker`, `…/issues/assigned`,
//! `…/issues/{key}`.

use axum::extract::State;
use jira_bridge_store::ConnectionId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::picker::{self, PickerResponse};
use super::{IssueDetails, IssuePage, SearchInput};
use crate::connections::errors::ConnectionProblem;
use crate::connections::ConnectionError;
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(picker))
        .routes(routes!(assigned))
        .routes(routes!(issue))
}

fn parse_id(id: &str) -> Result<ConnectionId, ConnectionError> {
    id.parse()
        .map_err(|_| ConnectionError::Api(ApiError::NotFound("no such connection".into())))
}

/// Search parameters: exactly one of `q` and `jql`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Free text: searched in all text fields; a text that looks like an issue key also
    /// matches that key.
    pub q: Option<String>,
    /// JQL, passed to Jira as written (Jira's error comes back as a 400).
    pub jql: Option<String>,
    /// Page size (default 50, at most 500; Jira may answer fewer).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (same `q`/`jql`).
    pub cursor: Option<String>,
}

/// Search issues by text or JQL.
#[utoipa::path(get, path = "/v1/connections/{id}/issues/search", tag = "search",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), SearchParams),
    responses(
        (status = 200, description = "A page of issues", body = IssuePage),
        (status = 400, description = "Missing query, bad cursor, or JQL Jira rejected (`invalid-jql`, Jira's messages in `jira`)", body = ConnectionProblem, content_type = PJ),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
    ))]
async fn search(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<SearchParams>,
) -> Result<Json<IssuePage>, ConnectionError> {
    let q = p.q.filter(|s| !s.trim().is_empty());
    let jql = p.jql.filter(|s| !s.trim().is_empty());
    let input = match (q, jql) {
        (Some(q), None) => SearchInput::Text(q),
        (None, Some(j)) => SearchInput::Jql(j),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_field("q", "give either q or jql, not both").into())
        }
        (None, None) => return Err(ApiError::bad_field("q", "give q (text) or jql").into()),
    };
    let c = crate::connections::connect(&state, &tenant.id, &parse_id(&id)?).await?;
    Ok(Json(
        super::search(&state, &c, input, p.limit, p.cursor.as_deref()).await?,
    ))
}

/// Picker parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PickerParams {
    /// What the user typed so far.
    pub q: Option<String>,
}

/// Autosuggest while typing: exact key, then key prefix, then text matches, from
/// Jira's picker and the connection's recent and linked issues. Repeated texts are
/// answered from a short-lived cache.
#[utoipa::path(get, path = "/v1/connections/{id}/issues/picker", tag = "search",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), PickerParams),
    responses(
        (status = 200, description = "Suggestions", body = PickerResponse),
        (status = 400, description = "Missing text", body = ConnectionProblem, content_type = PJ),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
    ))]
async fn picker(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<PickerParams>,
) -> Result<Json<PickerResponse>, ConnectionError> {
    let q = p.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::bad_field("q", "must not be empty").into());
    }
    let c = crate::connections::connect(&state, &tenant.id, &parse_id(&id)?).await?;
    Ok(Json(picker::suggest(&state, &c, &q).await?))
}

/// Paging parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The connection user's open issues (`assignee = currentUser() AND statusCategory !=
/// Done`), most recently updated first.
#[utoipa::path(get, path = "/v1/connections/{id}/issues/assigned", tag = "search",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), PageParams),
    responses(
        (status = 200, description = "A page of issues", body = IssuePage),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
    ))]
async fn assigned(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<IssuePage>, ConnectionError> {
    let c = crate::connections::connect(&state, &tenant.id, &parse_id(&id)?).await?;
    Ok(Json(
        super::assigned(&c, p.limit, p.cursor.as_deref()).await?,
    ))
}

/// Issue details; the description as Markdown (converted from ADF or wiki markup) and
/// as the original.
#[utoipa::path(get, path = "/v1/connections/{id}/issues/{key}", tag = "search",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "`con_…`"), ("key" = String, Path, description = "Issue key")),
    responses(
        (status = 200, description = "The issue", body = IssueDetails),
        (status = 400, description = "Not an issue key", body = ConnectionProblem, content_type = PJ),
        (status = 404, description = "No such connection, or no such issue visible to the connection (`jira-not-found`)", body = ConnectionProblem, content_type = PJ),
    ))]
async fn issue(
    tenant: Tenant,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<IssueDetails>, ConnectionError> {
    let c = crate::connections::connect(&state, &tenant.id, &parse_id(&id)?).await?;
    Ok(Json(super::details(&c, &key).await?))
}
