//! HTTP: the public inbound endpoint and the per-connection webhook set-up.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use jira_bridge_store::inbound::WebhookSetup;
use jira_bridge_store::ConnectionId;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::verify::{self, Credentials};
use crate::http::extract::{Json, Path, Query};
use crate::http::{ApiError, AppState, Problem};
use crate::tenancy::Tenant;

const PJ: &str = "application/problem+json";

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive))
        .routes(routes!(get_setup, rotate_setup))
        .routes(routes!(ensure_registration))
}

/// Query of the inbound endpoint.
#[derive(Debug, Deserialize, IntoParams)]
pub struct InboundQuery {
    /// The connection's URL token, for Jira set-ups that cannot sign deliveries.
    #[serde(default)]
    pub token: Option<String>,
}

/// Answer to an accepted delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundAck {
    /// `accepted` (stored, applied shortly) or `duplicate` (seen before; nothing changed).
    pub status: &'static str,
    /// The identifier the delivery was deduplicated by.
    pub identifier: String,
}

fn parse_connection(id: &str) -> Result<ConnectionId, ApiError> {
    id.parse::<ConnectionId>()
        .map_err(|_| ApiError::NotFound("no such connection".into()))
}

/// Receive a Jira webhook delivery (public: verified by signature, JWT or URL token).
#[utoipa::path(post, path = "/v1/webhooks/jira/{connection_id}", tag = "webhooks",
    params(("connection_id" = String, Path, description = "Connection id"), InboundQuery),
    request_body(content = serde_json::Value, description = "Jira's webhook payload, as sent"),
    responses(
        (status = 202, description = "Stored; applied asynchronously", body = InboundAck),
        (status = 200, description = "A replay of a stored delivery; nothing changed", body = InboundAck),
        (status = 400, description = "Not JSON", body = Problem, content_type = PJ),
        (status = 401, description = "Missing or wrong signature, token or bearer JWT", body = Problem, content_type = PJ),
        (status = 404, description = "No such connection", body = Problem, content_type = PJ),
        (status = 413, description = "Body over the limit", body = Problem, content_type = PJ),
        (status = 429, description = "Over the connection's delivery rate; see Retry-After", body = Problem, content_type = PJ),
        (status = 503, description = "Could not be stored now; Jira retries", body = Problem, content_type = PJ),
    ))]
async fn receive(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    Query(q): Query<InboundQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<InboundAck>), ApiError> {
    let id = parse_connection(&connection_id)?;
    let limit = state
        .config
        .webhooks
        .inbound_body_limit_bytes
        .min(state.config.server.body_limit_bytes);
    if body.len() as u64 > limit {
        return Err(ApiError::PayloadTooLarge { limit: Some(limit) });
    }
    let connection = state
        .store
        .get_connection_for_system(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound("no such connection".into()))?;
    if let Err(wait) = state.inbound.admit(&id) {
        return Err(ApiError::TooManyRequests {
            detail: format!(
                "more than {} deliveries a second for this connection; retry after {wait} s",
                state.config.webhooks.inbound_rate_per_second
            ),
            retry_after_seconds: wait,
        });
    }
    let setup = state
        .store
        .get_webhook_setup_for_system(&id)
        .await
        .map_err(ApiError::internal)?;
    let secret: Option<SecretString> = match setup.as_ref().and_then(|s| s.secret.as_deref()) {
        Some(sealed) => Some(
            state
                .keys
                .open_str(sealed, super::secret_context(&id))
                .map_err(ApiError::internal)?,
        ),
        None => None,
    };
    let oauth = (connection.kind == "cloud_oauth")
        .then(|| {
            state
                .config
                .oauth
                .client_secret
                .as_ref()
                .map(|s| (state.config.oauth.client_id.as_str(), s))
        })
        .flatten();
    let creds = Credentials {
        secret: secret.as_ref(),
        token_hash: setup.as_ref().and_then(|s| s.token_hash.as_deref()),
        oauth,
    };
    if let Err(reason) = verify::verify(&headers, q.token.as_deref(), &body, &creds) {
        state
            .store
            .record_inbound_rejection(&id, reason)
            .await
            .map_err(ApiError::internal)?;
        tracing::info!(connection = %id, reason, "inbound webhook refused");
        return Err(ApiError::Unauthorized(reason.to_owned()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            detail: format!("the body is not valid JSON: {e}"),
            errors: BTreeMap::new(),
        })?;
    let Some(obj) = value.as_object() else {
        return Err(ApiError::BadRequest {
            detail: "the body must be a JSON object".into(),
            errors: BTreeMap::new(),
        });
    };
    let event = obj
        .get("webhookEvent")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown");
    let identifier = headers
        .get("x-atlassian-webhook-identifier")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(
            || format!("sha256:{}", hex::encode(Sha256::digest(&body))),
            str::to_owned,
        );
    let inserted = state
        .inbound
        .store(super::intake::Delivery {
            tenant_id: connection.tenant_id.clone(),
            connection_id: id.clone(),
            identifier: identifier.clone(),
            event: event.to_owned(),
            body: String::from_utf8_lossy(&body).into_owned(),
        })
        .await
        .map_err(|e| ApiError::Unavailable(format!("the delivery could not be stored: {e}")))?;
    if inserted {
        Ok((
            StatusCode::ACCEPTED,
            Json(InboundAck {
                status: "accepted",
                identifier,
            }),
        ))
    } else {
        Ok((
            StatusCode::OK,
            Json(InboundAck {
                status: "duplicate",
                identifier,
            }),
        ))
    }
}

/// Webhook set-up and health of a connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSetupResponse {
    /// Connection id.
    pub connection_id: String,
    /// URL to enter in Jira (admin webhook) or registered as dynamic webhook.
    pub url: String,
    /// The URL with `?token=`, only in the answer that generated the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_with_token: Option<String>,
    /// The HMAC secret to enter in Jira, only in the answer that generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Whether a secret and URL token exist.
    pub secret_set: bool,
    /// Events to select in Jira's admin webhook form.
    pub events: Vec<&'static str>,
    /// Health of the inbound webhooks.
    pub health: WebhookHealth,
}

/// Health of a connection's inbound webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookHealth {
    /// `healthy` (a delivery within the last hour), `stale`, or `never`.
    pub state: &'static str,
    /// Last accepted delivery.
    pub last_received_at: Option<DateTime<Utc>>,
    /// Accepted deliveries (replays included).
    pub received: i64,
    /// Distinct deliveries stored.
    pub stored: i64,
    /// Stored deliveries already applied.
    pub applied: i64,
    /// Refused deliveries.
    pub rejected: i64,
    /// Last refusal and why.
    pub last_rejected_at: Option<DateTime<Utc>>,
    /// Why the last delivery was refused.
    pub last_rejection: Option<String>,
    /// Jira ids of registered dynamic webhooks (OAuth connections).
    pub registration_ids: Vec<i64>,
    /// When the dynamic registration expires in Jira.
    pub registration_expires_at: Option<DateTime<Utc>>,
}

/// How long after the last delivery webhooks count as healthy.
pub const HEALTHY_WITHIN: chrono::Duration = chrono::Duration::hours(1);

/// Health of a set-up (absent: never received).
pub fn health(setup: Option<&WebhookSetup>, (stored, applied): (i64, i64)) -> WebhookHealth {
    let now = Utc::now();
    let state = match setup.and_then(|s| s.last_received_at) {
        None => "never",
        Some(t) if now - t <= HEALTHY_WITHIN => "healthy",
        Some(_) => "stale",
    };
    WebhookHealth {
        state,
        last_received_at: setup.and_then(|s| s.last_received_at),
        received: setup.map_or(0, |s| s.received_count),
        stored,
        applied,
        rejected: setup.map_or(0, |s| s.rejected_count),
        last_rejected_at: setup.and_then(|s| s.last_rejected_at),
        last_rejection: setup.and_then(|s| s.last_rejection.clone()),
        registration_ids: setup
            .and_then(|s| serde_json::from_str(&s.registration_ids).ok())
            .unwrap_or_default(),
        registration_expires_at: setup.and_then(|s| s.registration_expires_at),
    }
}

const ADMIN_EVENTS: &[&str] = &[
    "jira:issue_updated",
    "jira:issue_deleted",
    "worklog_created",
    "worklog_updated",
    "worklog_deleted",
];

async fn tenant_connection(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<ConnectionId, ApiError> {
    let id = parse_connection(id)?;
    state
        .store
        .get_connection(&tenant.id, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound("no such connection".into()))?;
    Ok(id)
}

/// Webhook set-up (URL, whether a secret exists) and health of a connection.
#[utoipa::path(get, path = "/v1/connections/{id}/webhook-setup", tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Set-up and health", body = WebhookSetupResponse),
        (status = 404, description = "No such connection", body = Problem, content_type = PJ),
    ))]
async fn get_setup(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WebhookSetupResponse>, ApiError> {
    let id = tenant_connection(&state, &tenant, &id).await?;
    let setup = state
        .store
        .get_webhook_setup(&tenant.id, &id)
        .await
        .map_err(ApiError::internal)?;
    let counts = state
        .store
        .count_inbound(&id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(WebhookSetupResponse {
        connection_id: id.to_string(),
        url: super::inbound_url(&state, &id),
        url_with_token: None,
        secret: None,
        secret_set: setup.as_ref().is_some_and(|s| s.secret.is_some()),
        events: ADMIN_EVENTS.to_vec(),
        health: health(setup.as_ref(), counts),
    }))
}

/// Generate (or rotate) the connection's webhook secret and URL token; both are shown
/// in this answer only. The previous ones stop working at once.
#[utoipa::path(post, path = "/v1/connections/{id}/webhook-setup", tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 201, description = "New secret and URL token", body = WebhookSetupResponse),
        (status = 404, description = "No such connection", body = Problem, content_type = PJ),
    ))]
async fn rotate_setup(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookSetupResponse>), ApiError> {
    let id = tenant_connection(&state, &tenant, &id).await?;
    let new = super::rotate_secrets(&state, &tenant.id, &id)
        .await
        .map_err(ApiError::internal)?;
    let url = super::inbound_url(&state, &id);
    Ok((
        StatusCode::CREATED,
        Json(WebhookSetupResponse {
            connection_id: id.to_string(),
            url_with_token: Some(format!("{url}?token={}", new.token.expose_secret())),
            url,
            secret: Some(new.secret.expose_secret().to_owned()),
            secret_set: true,
            events: ADMIN_EVENTS.to_vec(),
            health: health(Some(&new.setup), (0, 0)),
        }),
    ))
}

/// Register (or refresh, or re-create) the connection's dynamic webhook in Jira now
/// (OAuth connections with `server.public_url` set; the service also does this at
/// start and hourly).
#[utoipa::path(post, path = "/v1/connections/{id}/webhook-registration", tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "What was done", body = super::registration::Registration),
        (status = 404, description = "No such connection", body = Problem, content_type = PJ),
        (status = 503, description = "Jira could not be reached or refused", body = Problem, content_type = PJ),
    ))]
async fn ensure_registration(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<super::registration::Registration>, ApiError> {
    let id = tenant_connection(&state, &tenant, &id).await?;
    super::registration::ensure(&state, &tenant.id, &id)
        .await
        .map(Json)
        .map_err(|e| ApiError::Unavailable(format!("webhook registration failed: {e}")))
}
