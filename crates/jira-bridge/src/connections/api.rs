//! `/v1/connections…` and `/v1/oauth…`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use jira_bridge_store::connections::{Connection, OAuthSelection};
use jira_bridge_store::{ConnectionId, PageRequest};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::{ConnectionError, ConnectionProblem};
use super::metadata::{self, What};
use super::oauth::Site;
use super::{CallbackOutcome, Kind, Patch, TokenCredentials};
use crate::http::extract::{Json, Path, Query, RequestId};
use crate::http::{ApiError, AppState};
use crate::tenancy::Tenant;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_credentials))
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(
            get_connection,
            update_connection,
            delete_connection
        ))
        .routes(routes!(reverify_connection))
        .routes(routes!(oauth_start))
        .routes(routes!(oauth_callback))
        .routes(routes!(get_selection, complete_selection))
        .routes(routes!(projects))
        .routes(routes!(issue_types))
        .routes(routes!(create_fields))
        .routes(routes!(priorities))
        .routes(routes!(statuses))
        .routes(routes!(users))
}

/// A connection (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionResponse {
    /// `con_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// The host application's user or team id.
    pub owner: Option<String>,
    /// `cloud_token`, `dc_pat` or `cloud_oauth`.
    pub kind: String,
    /// Jira base URL (for OAuth: the site URL).
    pub base_url: String,
    /// Atlassian cloud id (OAuth).
    pub cloud_id: Option<String>,
    /// Site name.
    pub site_name: Option<String>,
    /// `Cloud` or `DataCenter`.
    pub deployment: Option<String>,
    /// Jira version.
    pub server_version: Option<String>,
    /// The connected Jira user: account id (Cloud) or user name (Data Center).
    pub account_id: Option<String>,
    /// The connected Jira user's display name.
    pub account_name: Option<String>,
    /// Email used with the API token (Cloud API tokens).
    pub email: Option<String>,
    /// Granted OAuth scopes.
    pub scopes: Vec<String>,
    /// When the current OAuth access token expires (it is refreshed before).
    pub token_expires_at: Option<DateTime<Utc>>,
    /// `not_verified`, `valid`, `invalid` or `expired`.
    pub verification_status: String,
    /// Last verification.
    pub last_verified_at: Option<DateTime<Utc>>,
    /// Why the last verification or refresh failed.
    pub last_error: Option<String>,
    /// Last OAuth token refresh.
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Disabled connections are kept but not used.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Connection> for ConnectionResponse {
    fn from(c: Connection) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name,
            owner: c.owner,
            kind: c.kind,
            base_url: c.base_url,
            cloud_id: c.cloud_id,
            site_name: c.site_name,
            deployment: c.deployment,
            server_version: c.server_version,
            account_id: c.account_id,
            account_name: c.account_name,
            email: c.email,
            scopes: c.scopes,
            token_expires_at: c.token_expires_at,
            verification_status: c.verification_status,
            last_verified_at: c.last_verified_at,
            last_error: c.last_error,
            last_refreshed_at: c.last_refreshed_at,
            enabled: c.enabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Credentials to check (`POST /v1/connections/verify`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// `cloud_token` or `dc_pat`.
    pub kind: Kind,
    /// Jira base URL.
    pub base_url: String,
    /// Atlassian account email (`cloud_token`).
    #[serde(default)]
    pub email: Option<String>,
    /// API token or personal access token.
    #[schema(value_type = String)]
    pub token: SecretString,
}

/// A connection to create (`POST /v1/connections`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    /// Display name.
    pub name: String,
    /// The host application's user or team id.
    #[serde(default)]
    pub owner: Option<String>,
    /// `cloud_token` or `dc_pat` (OAuth: `POST /v1/oauth/start`).
    pub kind: Kind,
    /// Jira base URL.
    pub base_url: String,
    /// Atlassian account email (`cloud_token`).
    #[serde(default)]
    pub email: Option<String>,
    /// API token or personal access token.
    #[schema(value_type = String)]
    pub token: SecretString,
}

/// What verification found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// Always true (failures are problem documents).
    pub ok: bool,
    /// Normalised base URL.
    pub base_url: String,
    /// `Cloud` or `DataCenter`.
    pub deployment: String,
    /// Jira version.
    pub version: Option<String>,
    /// Server title.
    pub server_title: Option<String>,
    /// The Jira account the credentials act as.
    pub account: AccountResponse,
}

/// A Jira account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountResponse {
    /// Account id (Cloud) or user name (Data Center).
    pub account_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Email, when Jira shows it.
    pub email: Option<String>,
}

fn creds(
    kind: Kind,
    base_url: String,
    email: Option<String>,
    token: SecretString,
) -> Result<TokenCredentials, ConnectionError> {
    if kind == Kind::CloudOauth {
        return Err(ConnectionError::Api(ApiError::invalid_field(
            "kind",
            "OAuth connections are made with POST /v1/oauth/start",
        )));
    }
    Ok(TokenCredentials {
        kind,
        base_url,
        email,
        token,
    })
}

const PJ: &str = "application/problem+json";

/// Check credentials without storing them: the Jira account, deployment and
/// version, or a problem saying what is wrong.
#[utoipa::path(post, path = "/v1/connections/verify", tag = "connections",
    security(("api_key" = [])),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The credentials work", body = VerifyResponse),
        (status = 422, description = "Wrong credentials, unreachable host, not Jira, private address, wrong deployment", body = ConnectionProblem, content_type = PJ),
    ))]
async fn verify_credentials(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Json(req): Json<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ConnectionError> {
    let c = creds(req.kind, req.base_url, req.email, req.token)?;
    let p = super::verify_credentials(&state, &tenant.id, &tenant.actor(), &c, rid).await?;
    Ok(Json(VerifyResponse {
        ok: true,
        base_url: p.base_url,
        deployment: p.deployment,
        version: p.version,
        server_title: p.server_title,
        account: AccountResponse {
            account_id: p.account_id,
            display_name: p.display_name,
            email: p.email,
        },
    }))
}

/// Verify and store a token connection (sealed).
#[utoipa::path(post, path = "/v1/connections", tag = "connections",
    security(("api_key" = [])),
    request_body = CreateConnectionRequest,
    responses(
        (status = 201, description = "Created and verified", body = ConnectionResponse),
        (status = 422, description = "Invalid input or credentials", body = ConnectionProblem, content_type = PJ),
    ))]
async fn create_connection(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Json(req): Json<CreateConnectionRequest>,
) -> Result<(StatusCode, Json<ConnectionResponse>), ConnectionError> {
    let c = creds(req.kind, req.base_url, req.email, req.token)?;
    let row = super::create_token_connection(
        &state,
        &tenant.id,
        &tenant.actor(),
        &req.name,
        req.owner.as_deref(),
        &c,
        rid,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `GET /v1/connections` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this owner's connections.
    pub owner: Option<String>,
    /// Page size (default 50, max 500).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of connections.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionPage {
    /// Newest first.
    pub items: Vec<ConnectionResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// The tenant's connections (never any secret).
#[utoipa::path(get, path = "/v1/connections", tag = "connections",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, description = "A page", body = ConnectionPage)))]
async fn list_connections(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<ConnectionPage>, ConnectionError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = super::list(&state, &tenant.id, p.owner.as_deref(), &page)
        .await?
        .map(ConnectionResponse::from);
    Ok(Json(ConnectionPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

fn parse_id(id: &str) -> Result<ConnectionId, ConnectionError> {
    id.parse()
        .map_err(|_| ConnectionError::Api(ApiError::NotFound("no such connection".into())))
}

/// One connection.
#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`")),
    responses(
        (status = 200, description = "The connection", body = ConnectionResponse),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
    ))]
async fn get_connection(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConnectionResponse>, ConnectionError> {
    let row = super::get(&state, &tenant.id, &parse_id(&id)?).await?;
    Ok(Json(row.into()))
}

/// Changes to a connection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionRequest {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New owner; null clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<Option<String>>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A replacement API token / PAT (verified before it is stored).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub token: Option<SecretString>,
    /// A replacement email (Cloud API tokens).
    #[serde(default)]
    pub email: Option<String>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// Rename, change the owner, enable / disable, or replace the token.
#[utoipa::path(patch, path = "/v1/connections/{id}", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`")),
    request_body = UpdateConnectionRequest,
    responses(
        (status = 200, description = "Updated", body = ConnectionResponse),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "Invalid input or rejected token", body = ConnectionProblem, content_type = PJ),
    ))]
async fn update_connection(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    Json(req): Json<UpdateConnectionRequest>,
) -> Result<Json<ConnectionResponse>, ConnectionError> {
    let row = super::update(
        &state,
        &tenant.id,
        &tenant.actor(),
        &parse_id(&id)?,
        Patch {
            name: req.name,
            owner: req.owner,
            enabled: req.enabled,
            token: req.token,
            email: req.email,
        },
        rid,
    )
    .await?;
    Ok(Json(row.into()))
}

/// Delete a connection.
#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such connection", body = ConnectionProblem, content_type = PJ),
    ))]
async fn delete_connection(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode, ConnectionError> {
    super::delete(&state, &tenant.id, &tenant.actor(), &parse_id(&id)?, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify a stored connection now; the answer carries `verification_status` and
/// `last_verified_at`.
#[utoipa::path(post, path = "/v1/connections/{id}/verify", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`")),
    responses(
        (status = 200, description = "Verified (see verification_status)", body = ConnectionResponse),
        (status = 502, description = "Jira could not be reached", body = ConnectionProblem, content_type = PJ),
    ))]
async fn reverify_connection(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
) -> Result<Json<ConnectionResponse>, ConnectionError> {
    let row = super::reverify(&state, &tenant.id, &tenant.actor(), &parse_id(&id)?, rid).await?;
    Ok(Json(row.into()))
}

/// `POST /v1/oauth/start`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthStartRequest {
    /// Owner of the connection to be made.
    #[serde(default)]
    pub owner: Option<String>,
    /// Its display name (default: the site name).
    #[serde(default)]
    pub name: Option<String>,
    /// Where to send the browser afterwards (allow-listed origins only).
    #[serde(default)]
    pub return_to: Option<String>,
}

/// Where to send the user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthStartResponse {
    /// Atlassian's consent page with a single-use signed state.
    pub authorization_url: String,
    /// The state stops working at this time.
    pub expires_at: DateTime<Utc>,
}

/// Start a Jira Cloud OAuth 2.0 (3LO) connection.
#[utoipa::path(post, path = "/v1/oauth/start", tag = "connections",
    security(("api_key" = [])), request_body = OAuthStartRequest,
    responses(
        (status = 201, description = "Send the user to authorization_url", body = OAuthStartResponse),
        (status = 409, description = "OAuth is not configured", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "return_to not allowed", body = ConnectionProblem, content_type = PJ),
    ))]
async fn oauth_start(
    tenant: Tenant,
    State(state): State<AppState>,
    Json(req): Json<OAuthStartRequest>,
) -> Result<(StatusCode, Json<OAuthStartResponse>), ConnectionError> {
    let s = super::oauth_start(
        &state,
        &tenant.id,
        req.owner.as_deref(),
        req.name.as_deref(),
        req.return_to.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(OAuthStartResponse {
            authorization_url: s.authorization_url,
            expires_at: s.expires_at,
        }),
    ))
}

/// Query of the OAuth callback.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// Authorization code.
    pub code: Option<String>,
    /// The state from `POST /v1/oauth/start`.
    pub state: Option<String>,
    /// `access_denied` when the user declined.
    pub error: Option<String>,
    /// Atlassian's description of the error.
    pub error_description: Option<String>,
}

/// A pending site selection.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SelectionResponse {
    /// Id, for `POST /v1/oauth/selections/{id}`.
    pub id: String,
    /// The owner the connection will have.
    pub owner: Option<String>,
    /// Sites of the grant, in no meaningful order.
    pub sites: Vec<Site>,
    /// The selection expires at.
    pub expires_at: DateTime<Utc>,
}

impl From<OAuthSelection> for SelectionResponse {
    fn from(s: OAuthSelection) -> Self {
        Self {
            id: s.id,
            owner: s.owner,
            sites: serde_json::from_value(s.sites).unwrap_or_default(),
            expires_at: s.expires_at,
        }
    }
}

/// What the callback did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallbackResponse {
    /// `connected` or `selection_required`.
    pub status: String,
    /// The new connection (`connected`).
    pub connection: Option<ConnectionResponse>,
    /// The sites to pick from (`selection_required`).
    pub selection: Option<SelectionResponse>,
}

fn redirect_to(return_to: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(return_to) {
        Ok(u) => u,
        Err(_) => {
            return ApiError::Internal("stored return_to is not a URL".into()).into_response()
        }
    };
    url.query_pairs_mut().extend_pairs(pairs.iter());
    match HeaderValue::from_str(url.as_str()) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::Internal("return_to is not a header value".into()).into_response(),
    }
}

/// Atlassian sends the user back here. Public (the state names the tenant). One site:
/// a connection; several: a selection to complete. Redirects to `return_to` when the
/// start call gave one, otherwise answers JSON.
#[utoipa::path(get, path = "/v1/oauth/callback", tag = "connections",
    params(CallbackParams),
    responses(
        (status = 201, description = "Connected", body = CallbackResponse),
        (status = 200, description = "Several sites: pick one", body = CallbackResponse),
        (status = 303, description = "Sent back to return_to with connection_id, selection_id or error"),
        (status = 400, description = "Invalid, replayed or expired state", body = ConnectionProblem, content_type = PJ),
        (status = 403, description = "The user declined", body = ConnectionProblem, content_type = PJ),
    ))]
async fn oauth_callback(
    State(state): State<AppState>,
    Query(p): Query<CallbackParams>,
) -> Result<Response, ConnectionError> {
    let cb = super::oauth_callback(
        &state,
        p.code.as_deref(),
        p.state.as_deref(),
        p.error.as_deref(),
        p.error_description.as_deref(),
    )
    .await?;
    Ok(match (cb.return_to, cb.result) {
        (Some(r), Ok(CallbackOutcome::Connected(c))) => redirect_to(
            &r,
            &[("status", "connected"), ("connection_id", c.id.as_str())],
        ),
        (Some(r), Ok(CallbackOutcome::Selection(s))) => redirect_to(
            &r,
            &[("status", "selection_required"), ("selection_id", &s.id)],
        ),
        (Some(r), Err(e)) => redirect_to(&r, &[("status", "error"), ("error", e.slug())]),
        (None, Ok(CallbackOutcome::Connected(c))) => (
            StatusCode::CREATED,
            Json(CallbackResponse {
                status: "connected".into(),
                connection: Some((*c).into()),
                selection: None,
            }),
        )
            .into_response(),
        (None, Ok(CallbackOutcome::Selection(s))) => Json(CallbackResponse {
            status: "selection_required".into(),
            connection: None,
            selection: Some((*s).into()),
        })
        .into_response(),
        (None, Err(e)) => e.into_response(),
    })
}

/// The sites of a pending selection.
#[utoipa::path(get, path = "/v1/oauth/selections/{id}", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`sel_…`")),
    responses(
        (status = 200, description = "The sites", body = SelectionResponse),
        (status = 404, description = "Unknown, completed or expired", body = ConnectionProblem, content_type = PJ),
    ))]
async fn get_selection(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SelectionResponse>, ConnectionError> {
    Ok(Json(
        super::get_selection(&state, &tenant.id, &id).await?.into(),
    ))
}

/// The site picked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectSiteRequest {
    /// `cloud_id` of one of the selection's sites.
    pub cloud_id: String,
}

/// Pick a site: the connection is made.
#[utoipa::path(post, path = "/v1/oauth/selections/{id}", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`sel_…`")),
    request_body = SelectSiteRequest,
    responses(
        (status = 201, description = "Connected", body = ConnectionResponse),
        (status = 404, description = "Unknown, completed or expired", body = ConnectionProblem, content_type = PJ),
        (status = 422, description = "Not one of the sites", body = ConnectionProblem, content_type = PJ),
    ))]
async fn complete_selection(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    Json(req): Json<SelectSiteRequest>,
) -> Result<(StatusCode, Json<ConnectionResponse>), ConnectionError> {
    let row = super::complete_selection(&state, &tenant.id, &id, &req.cloud_id, rid).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Metadata query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetaParams {
    /// Fetch from Jira even if cached.
    #[serde(default)]
    pub refresh: Option<bool>,
    /// Text filter (projects) or name / email (users).
    pub query: Option<String>,
    /// Project key (statuses).
    pub project: Option<String>,
}

/// Metadata answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetadataResponse {
    /// The items.
    pub items: serde_json::Value,
    /// When they were fetched from Jira.
    pub fetched_at: DateTime<Utc>,
    /// Served from the cache.
    pub cached: bool,
}

async fn meta(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    what: What,
    refresh: Option<bool>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    let c = super::connect(state, &tenant.id, &parse_id(id)?).await?;
    let r = metadata::get(state, &c, what, refresh.unwrap_or(false)).await?;
    Ok(Json(MetadataResponse {
        items: r.items,
        fetched_at: r.fetched_at,
        cached: r.cached,
    }))
}

/// Projects visible to the connection (cached).
#[utoipa::path(get, path = "/v1/connections/{id}/projects", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), MetaParams),
    responses((status = 200, description = "Projects", body = MetadataResponse)))]
async fn projects(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<MetaParams>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    let q = p.query.filter(|q| !q.trim().is_empty());
    meta(&state, &tenant, &id, What::Projects(q), p.refresh).await
}

/// Issue types the connected user can create in a project.
#[utoipa::path(get, path = "/v1/connections/{id}/projects/{key}/issue-types", tag = "connections",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "`con_…`"), ("key" = String, Path, description = "Project key"), MetaParams),
    responses((status = 200, description = "Issue types", body = MetadataResponse)))]
async fn issue_types(
    tenant: Tenant,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    Query(p): Query<MetaParams>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    meta(&state, &tenant, &id, What::IssueTypes(key), p.refresh).await
}

/// Create fields of a project and issue type: required flag, type, allowed values.
#[utoipa::path(get, path = "/v1/connections/{id}/projects/{key}/issue-types/{type_id}/fields", tag = "connections",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "`con_…`"), ("key" = String, Path, description = "Project key"),
           ("type_id" = String, Path, description = "Issue type id"), MetaParams),
    responses((status = 200, description = "Fields", body = MetadataResponse)))]
async fn create_fields(
    tenant: Tenant,
    State(state): State<AppState>,
    Path((id, key, type_id)): Path<(String, String, String)>,
    Query(p): Query<MetaParams>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    meta(&state, &tenant, &id, What::Fields(key, type_id), p.refresh).await
}

/// Priorities.
#[utoipa::path(get, path = "/v1/connections/{id}/priorities", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), MetaParams),
    responses((status = 200, description = "Priorities", body = MetadataResponse)))]
async fn priorities(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<MetaParams>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    meta(&state, &tenant, &id, What::Priorities, p.refresh).await
}

/// Statuses (of a project with `?project=`).
#[utoipa::path(get, path = "/v1/connections/{id}/statuses", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), MetaParams),
    responses((status = 200, description = "Statuses", body = MetadataResponse)))]
async fn statuses(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<MetaParams>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    let project = p.project.filter(|q| !q.trim().is_empty());
    meta(&state, &tenant, &id, What::Statuses(project), p.refresh).await
}

/// Users by name or email (`?query=`).
#[utoipa::path(get, path = "/v1/connections/{id}/users", tag = "connections",
    security(("api_key" = [])), params(("id" = String, Path, description = "`con_…`"), MetaParams),
    responses((status = 200, description = "Users", body = MetadataResponse)))]
async fn users(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<MetaParams>,
) -> Result<Json<MetadataResponse>, ConnectionError> {
    let Some(q) = p.query.filter(|q| !q.trim().is_empty()) else {
        return Err(ConnectionError::Api(ApiError::bad_field(
            "query",
            "give a name or email to search for",
        )));
    };
    meta(&state, &tenant, &id, What::Users(q), p.refresh).await
}
