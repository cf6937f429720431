//! `POST /v1/keys/extract`.

use axum::extract::State;
use jira_bridge_store::ConnectionId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{CaseOption, ExtractOptions, Extracted};
use crate::connections::errors::ConnectionProblem;
use crate::connections::ConnectionError;
use crate::http::extract::Json;
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(extract))
}

/// Texts to scan.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExtractRequest {
    /// Titles, branch names, commit messages, notes, URLs (at most 1,000).
    pub texts: Vec<String>,
    /// Only keys of these projects; lower-case keys of these projects are found too.
    /// Checked against the connection's projects when `connection_id` is given.
    pub project_keys: Option<Vec<String>>,
    /// A connection: its projects are the allow-list when `project_keys` is absent.
    pub connection_id: Option<String>,
    /// `upper`, `any_if_allow_listed` (default) or `any`.
    pub case: Option<CaseOption>,
    /// Accept `_` inside project keys (Data Center sites allow it).
    pub allow_underscore: Option<bool>,
    /// Replace the deny-list of look-alike projects (`ISO`, `UTF`, `SHA`, `CVE`, …).
    pub deny_projects: Option<Vec<String>>,
    /// Longest project part (2 to 255; default 10).
    pub max_project_len: Option<usize>,
}

/// Issue keys in texts, upper-cased, in order of first appearance.
#[utoipa::path(post, path = "/v1/keys/extract", tag = "keys",
    security(("api_key" = [])), request_body = ExtractRequest,
    responses(
        (status = 200, description = "Keys found", body = Extracted),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "Invalid texts or project keys (each named in `errors`)", body = ConnectionProblem, content_type = PJ),
    ))]
async fn extract(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<ExtractRequest>,
) -> Result<Json<Extracted>, ConnectionError> {
    let connection =
        match req.connection_id.as_deref() {
            Some(id) => Some(id.parse::<ConnectionId>().map_err(|_| {
                ConnectionError::Api(ApiError::NotFound("no such connection".into()))
            })?),
            None => None,
        };
    let opts = ExtractOptions {
        project_keys: req.project_keys,
        case: req.case,
        allow_underscore: req.allow_underscore,
        deny_projects: req.deny_projects,
        max_project_len: req.max_project_len,
    };
    Ok(Json(
        super::extract(&state, &tenant.id, &req.texts, connection.as_ref(), &opts).await?,
    ))
}
