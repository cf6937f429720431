//! Operator endpoints under `/v1/admin`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use jira_bridge_store::tenants::{ApiKey, Tenant as TenantRow};
use jira_bridge_store::{ApiKeyId, PageRequest, TenantId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Admin;
use crate::audit::Actor;
use crate::http::extract::{Json, Path, Query, RequestId};
use crate::http::{ApiError, AppState, Problem};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(me))
}

/// Who the calling key is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    /// The tenant (`ten_…`).
    pub tenant_id: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// The key used (`key_…`).
    pub key_id: String,
    /// The key's scopes.
    pub scopes: Vec<String>,
}

/// The tenant and key a request authenticates as.
#[utoipa::path(get, path = "/v1/me", tag = "tenancy",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn me(
    tenant: super::Tenant,
    State(state): State<AppState>,
) -> Result<Json<MeResponse>, ApiError> {
    let row = state
        .store
        .get_tenant(&tenant.id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the key's tenant no longer exists".into()))?;
    Ok(Json(MeResponse {
        tenant_id: tenant.id.to_string(),
        tenant_name: row.name,
        key_id: tenant.key_id.to_string(),
        scopes: tenant.scopes,
    }))
}

/// `POST /v1/admin/tenants`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Unique tenant name.
    pub name: String,
    /// Name of the first API key (default `default`).
    #[serde(default)]
    pub key_name: Option<String>,
    /// Scopes of the first key: `*` (everything, the default), `write` or `read` (read only).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantResponse {
    /// `ten_…`
    pub id: String,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<TenantRow> for TenantResponse {
    fn from(t: TenantRow) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            created_at: t.created_at,
        }
    }
}

/// An API key (never the key itself, except once in [`NewApiKeyResponse`]).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyResponse {
    /// `key_…`
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Name.
    pub name: String,
    /// First characters of the key.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last use (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            tenant_id: k.tenant_id.to_string(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new API key: the only time `key` is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewApiKeyResponse {
    /// The key metadata.
    #[serde(flatten)]
    pub api_key: ApiKeyResponse,
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
}

fn new_key(k: ApiKey, secret: &SecretString) -> NewApiKeyResponse {
    NewApiKeyResponse {
        api_key: k.into(),
        key: secret.expose_secret().to_owned(),
    }
}

/// Answer to `POST /v1/admin/tenants`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateTenantResponse {
    /// The tenant.
    pub tenant: TenantResponse,
    /// Its first API key.
    pub api_key: NewApiKeyResponse,
}

/// `POST /v1/admin/tenants/{id}/keys`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Name (default `default`).
    #[serde(default)]
    pub name: Option<String>,
    /// Scopes: `*` (everything, the default), `write` or `read` (read only).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    /// Tenants, newest first.
    pub items: Vec<TenantResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// A page of API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyPage {
    /// Keys, newest first.
    pub items: Vec<ApiKeyResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such tenant".into()))
}

/// Create a tenant and its first API key (shown once).
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin",
    security(("admin_key" = [])),
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created", body = CreateTenantResponse),
        (status = 401, description = "Missing or wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_tenant(
    _admin: Admin,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Json(req): Json<CreateTenantRequest>,
) -> Result<(StatusCode, Json<CreateTenantResponse>), ApiError> {
    let key_name = req.key_name.as_deref().unwrap_or("default");
    let (tenant, key, secret) = super::create_tenant(
        &state.store,
        &Actor::Admin,
        &req.name,
        key_name,
        req.scopes,
        rid,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateTenantResponse {
            tenant: tenant.into(),
            api_key: new_key(key, &secret),
        }),
    ))
}

/// List tenants.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin",
    security(("admin_key" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of tenants", body = TenantPage),
        (status = 401, description = "Missing or wrong admin key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_tenants(
    _admin: Admin,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<Json<TenantPage>, ApiError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = state
        .store
        .list_tenants(&page)
        .await?
        .map(TenantResponse::from);
    Ok(Json(TenantPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Create another API key for a tenant (shown once).
#[utoipa::path(post, path = "/v1/admin/tenants/{id}/keys", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "Tenant id")),
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created", body = NewApiKeyResponse),
        (status = 401, description = "Missing or wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_key(
    _admin: Admin,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    Json(req): Json<CreateKeyRequest>,
) -> Result<(StatusCode, Json<NewApiKeyResponse>), ApiError> {
    let tenant = tenant_id(&id)?;
    let name = req.name.as_deref().unwrap_or("default");
    let (key, secret) =
        super::create_key(&state.store, &Actor::Admin, &tenant, name, req.scopes, rid).await?;
    Ok((StatusCode::CREATED, Json(new_key(key, &secret))))
}

/// List a tenant's API keys.
#[utoipa::path(get, path = "/v1/admin/tenants/{id}/keys", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "Tenant id"), PageParams),
    responses(
        (status = 200, description = "A page of keys", body = ApiKeyPage),
        (status = 401, description = "Missing or wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_keys(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<ApiKeyPage>, ApiError> {
    let tenant = tenant_id(&id)?;
    if state.store.get_tenant(&tenant).await?.is_none() {
        return Err(ApiError::NotFound("no such tenant".into()));
    }
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = state
        .store
        .list_api_keys(&tenant, &page)
        .await?
        .map(ApiKeyResponse::from);
    Ok(Json(ApiKeyPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Revoke an API key. Requests with it answer 401 from then on.
#[utoipa::path(delete, path = "/v1/admin/tenants/{id}/keys/{key_id}", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "Tenant id"), ("key_id" = String, Path, description = "API key id")),
    responses(
        (status = 200, description = "Revoked", body = ApiKeyResponse),
        (status = 401, description = "Missing or wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key for this tenant", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_key(
    _admin: Admin,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKeyResponse>, ApiError> {
    let tenant = tenant_id(&id)?;
    let key: ApiKeyId = key_id
        .parse()
        .map_err(|_| ApiError::NotFound("no such API key for this tenant".into()))?;
    let revoked = super::revoke_key(&state.store, &Actor::Admin, &tenant, &key, rid).await?;
    Ok(Json(revoked.into()))
}
