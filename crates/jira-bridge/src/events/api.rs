//! `/v1/subscriptions` and `/v1/events`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use jira_bridge_store::events::{
    Delivery, DeliveryAttempt, DeliveryId, Event, Subscription, SubscriptionId,
};
use jira_bridge_store::{PageRequest, Store, TenantId};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::subscriptions::{self, SubscriptionChange, SubscriptionInput};
use super::{Wake, STREAM_HEARTBEAT, STREAM_POLL};
use crate::audit;
use crate::http::extract::{Json, Path, Query, RequestId};
use crate::http::{ApiError, AppState, Problem};
use crate::net_guard::UrlPolicy;
use crate::tenancy::Tenant;
use jira_bridge_store::audit::Outcome;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_subscription, list_subscriptions))
        .routes(routes!(
            get_subscription,
            update_subscription,
            delete_subscription
        ))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
        .routes(routes!(events))
}

/// `POST /v1/subscriptions`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
    /// The endpoint: `https`, public address (unless the operator allows private
    /// hosts).
    pub url: String,
    /// Event types to deliver; empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /v1/subscriptions/{id}`
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriptionRequest {
    /// New endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// New event type filter (empty: all).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Enable (also clears the failure streak) or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Issue a new signing secret (answered once). The previous one keeps signing
    /// alongside it for 24 hours.
    #[serde(default)]
    pub rotate_secret: bool,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A subscription.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubscriptionResponse {
    /// `sub_…`
    pub id: String,
    /// Endpoint.
    pub url: String,
    /// Event types delivered (empty: all).
    pub events: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): only in the answer that created or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for SubscriptionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionResponse")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

fn record(
    state: &AppState,
    tenant: &Tenant,
    action: &str,
    id: &str,
    detail: serde_json::Value,
    rid: Option<String>,
) -> impl std::future::Future<Output = ()> + Send {
    let store = state.store.clone();
    let event = audit::Event::new(&tenant.actor(), action, Outcome::Success)
        .tenant(&tenant.id)
        .target("subscription", id)
        .detail(detail)
        .request_id(rid);
    async move { audit::record(&store, event).await }
}

impl SubscriptionResponse {
    pub(crate) fn new(s: Subscription, secret: Option<&SecretString>) -> Self {
        Self {
            id: s.id.to_string(),
            url: s.url,
            events: s.event_types,
            description: s.description,
            enabled: s.enabled,
            disabled_reason: s.disabled_reason,
            failing_since: s.failing_since,
            created_at: s.created_at,
            updated_at: s.updated_at,
            secret: secret.map(|s| s.expose_secret().to_owned()),
        }
    }
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    /// Newest first.
    pub items: Vec<SubscriptionResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptResponse {
    /// 1 for the first.
    pub attempt: i32,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// HTTP status, if the endpoint answered.
    pub status_code: Option<i32>,
    /// How long it took.
    pub duration_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Start of the endpoint's answer.
    pub response_snippet: Option<String>,
}

impl From<DeliveryAttempt> for AttemptResponse {
    fn from(a: DeliveryAttempt) -> Self {
        Self {
            attempt: a.attempt,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            error: a.error,
            response_snippet: a.response_snippet,
        }
    }
}

/// A delivery of one event to one subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryResponse {
    /// `dlv_…`
    pub id: String,
    /// The event (`evt_…`, also the `webhook-id` header).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `succeeded`, `failed` (a retry is scheduled) or `exhausted`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptResponse>,
}

impl DeliveryResponse {
    pub(crate) fn new(d: Delivery, attempts: Vec<DeliveryAttempt>) -> Self {
        Self {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            attempt_log: attempts.into_iter().map(AttemptResponse::from).collect(),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<DeliveryResponse>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// An event as streamed and paged.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    /// `evt_…`
    pub id: String,
    /// Position in the stream: the SSE `id` and the `after=` cursor.
    pub seq: i64,
    /// Event type, e.g. `ticket.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Id of what it is about.
    pub subject: Option<String>,
    /// Payload (see the event types' documentation).
    pub data: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl From<Event> for EventResponse {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.to_string(),
            seq: e.seq,
            event_type: e.event_type,
            subject: e.subject,
            data: e.data,
            created_at: e.created_at,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Oldest first.
    pub items: Vec<EventResponse>,
    /// Pass as `after=` to get what follows (the last item's `seq`, or the `after`
    /// given when there was nothing new).
    pub next_after: i64,
    /// Whether more events are already available.
    pub has_more: bool,
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

/// Parameters of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events after this `seq`. JSON default: 0 (from the start); SSE default:
    /// now. For SSE, a `Last-Event-ID` header wins.
    pub after: Option<i64>,
    /// JSON page size (1–500, default 50).
    pub limit: Option<u32>,
}

fn sub_id(raw: &str) -> Result<SubscriptionId, ApiError> {
    raw.parse().map_err(|_| subscriptions::not_found())
}

fn delivery_id(raw: &str) -> Result<DeliveryId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such delivery".into()))
}

fn policy(state: &AppState) -> UrlPolicy {
    UrlPolicy::from_config(&state.config)
}

/// Subscribe an endpoint to events. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "events",
    security(("api_key" = [])),
    request_body = CreateSubscriptionRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown only here", body = SubscriptionResponse),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL (scheme, private address) or unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_subscription(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Json(req): Json<CreateSubscriptionRequest>,
) -> Result<(StatusCode, Json<SubscriptionResponse>), ApiError> {
    let (sub, secret) = subscriptions::create(
        &state.store,
        &state.keys,
        policy(&state),
        &tenant.id,
        SubscriptionInput {
            url: req.url,
            events: req.events,
            description: req.description,
        },
    )
    .await?;
    record(
        &state,
        &tenant,
        "subscription.create",
        sub.id.as_str(),
        serde_json::json!({"url": sub.url, "events": sub.event_types}),
        rid,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionResponse::new(sub, Some(&secret))),
    ))
}

/// The tenant's subscriptions.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "events",
    security(("api_key" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of subscriptions", body = SubscriptionPage),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_subscriptions(
    tenant: Tenant,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<Json<SubscriptionPage>, ApiError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = state
        .store
        .list_subscriptions(&tenant.id, &page)
        .await?
        .map(|s| SubscriptionResponse::new(s, None));
    Ok(Json(SubscriptionPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "events",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionResponse),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_subscription(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionResponse>, ApiError> {
    let sub = subscriptions::get(&state.store, &tenant.id, &sub_id(&id)?).await?;
    Ok(Json(SubscriptionResponse::new(sub, None)))
}

/// Change a subscription, enable or disable it, or rotate its secret.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "events",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    request_body = UpdateSubscriptionRequest,
    responses(
        (status = 200, description = "Changed; `secret` present when rotated", body = SubscriptionResponse),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_subscription(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    Json(req): Json<UpdateSubscriptionRequest>,
) -> Result<Json<SubscriptionResponse>, ApiError> {
    let (sub, secret) = subscriptions::update(
        &state.store,
        &state.keys,
        policy(&state),
        &tenant.id,
        &sub_id(&id)?,
        SubscriptionChange {
            url: req.url,
            events: req.events,
            description: req.description,
            enabled: req.enabled,
            rotate_secret: req.rotate_secret,
        },
    )
    .await?;
    record(
        &state,
        &tenant,
        "subscription.update",
        sub.id.as_str(),
        serde_json::json!({
            "url": sub.url,
            "events": sub.event_types,
            "enabled": sub.enabled,
            "secret_rotated": secret.is_some(),
        }),
        rid,
    )
    .await;
    Ok(Json(SubscriptionResponse::new(sub, secret.as_ref())))
}

/// Delete a subscription and its delivery history.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "events",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_subscription(
    tenant: Tenant,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = sub_id(&id)?;
    subscriptions::delete(&state.store, &tenant.id, &id).await?;
    record(
        &state,
        &tenant,
        "subscription.delete",
        id.as_str(),
        serde_json::json!({}),
        rid,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, with every attempt and its outcome.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/deliveries", tag = "events",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Subscription id"), PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_deliveries(
    tenant: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let page = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let page = subscriptions::deliveries(&state.store, &tenant.id, &sub_id(&id)?, &page)
        .await?
        .map(|(d, a)| DeliveryResponse::new(d, a));
    Ok(Json(DeliveryPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Send a delivery again now (one more attempt), whatever its state.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/deliveries/{delivery_id}/retry", tag = "events",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "Subscription id"),
        ("delivery_id" = String, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Queued", body = DeliveryResponse),
        (status = 404, description = "No such subscription or delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The subscription is disabled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_delivery(
    tenant: Tenant,
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryResponse>), ApiError> {
    let (d, attempts) = subscriptions::retry(
        &state.store,
        &tenant.id,
        &sub_id(&id)?,
        &delivery_id(&delivery)?,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DeliveryResponse::new(d, attempts)),
    ))
}

/// The tenant's events: a live SSE stream when the client accepts
/// `text/event-stream` (resumable with `Last-Event-ID`; heartbeat comments every
/// 15 s), otherwise a JSON page after `after`.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    security(("api_key" = [])),
    params(
        EventParams,
        ("Last-Event-ID" = Option<String>, Header, description = "SSE: resume after this event's `seq`"),
    ),
    responses(
        (status = 200, description = "A page of events (JSON), or the SSE stream: each event has `id` = seq, `event` = type, `data` = the event as JSON", content(
            (EventPage = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = "Bad `after` or `Last-Event-ID`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown or revoked API key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn events(
    tenant: Tenant,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<EventParams>,
) -> Result<Response, ApiError> {
    if p.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_field(
            "after",
            "must be a non-negative event seq",
        ));
    }
    let wants_stream = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if !wants_stream {
        let limit = p
            .limit
            .unwrap_or(jira_bridge_store::paging::DEFAULT_LIMIT)
            .clamp(1, jira_bridge_store::paging::MAX_LIMIT);
        let after = p.after.unwrap_or(0);
        let mut items = state
            .store
            .list_events(&tenant.id, Some(after), limit + 1)
            .await?;
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_after = items.last().map_or(after, |e| e.seq);
        return Ok(Json(EventPage {
            items: items.into_iter().map(EventResponse::from).collect(),
            next_after,
            has_more,
        })
        .into_response());
    }
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_field(
                        "Last-Event-ID",
                        "must be the id (seq) of an event of this stream",
                    )
                })?,
        ),
    };
    // Subscribe to wake-ups before reading the starting point, so nothing is missed.
    let wake = Wake::new();
    let start = match last_event_id.or(p.after) {
        Some(s) => s,
        None => state.store.last_event_seq().await?,
    };
    let stream = event_stream(state.store.clone(), tenant.id, start, wake)
        .take_until(super::stream_shutdown(&state).cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(STREAM_HEARTBEAT)
                .text("heartbeat"),
        )
        .into_response())
}

fn event_stream(
    store: Store,
    tenant: TenantId,
    mut cursor: i64,
    mut wake: Wake,
) -> impl futures::Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        loop {
            match store.list_events(&tenant, Some(cursor), 100).await {
                Ok(events) if !events.is_empty() => {
                    for e in events {
                        cursor = e.seq;
                        let id = e.seq.to_string();
                        let ty = e.event_type.clone();
                        let data = serde_json::to_string(&EventResponse::from(e)).unwrap_or_default();
                        yield Ok(SseEvent::default().id(id).event(ty).data(data));
                    }
                }
                Ok(_) => wake.wait(STREAM_POLL).await,
                Err(e) => {
                    tracing::warn!(error = ?e, "event stream: store error");
                    wake.wait(STREAM_POLL).await;
                }
            }
        }
    }
}
