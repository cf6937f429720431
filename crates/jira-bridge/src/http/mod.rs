//! The HTTP layer: router, middleware (request ids, tracing, metrics, limits,
//! timeouts, panics), problem+json errors, extractors, and the OpenAPI document.
//!
//! Each capability module exposes `api::routes() -> OpenApiRouter<AppState>`;
//! [`api_routes`] merges them. Handlers are thin: extract, call one domain function,
//! map the result.

pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use jira_bridge_store::Store;
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::crypto::KeyRing;
pub use error::{ApiError, Problem};
pub use metrics::Metrics;

/// Header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The secret box's keys.
    pub keys: Arc<KeyRing>,
    /// Settings.
    pub config: Arc<Config>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Process-wide state of Jira connections (refresh locks, OAuth app).
    pub connections: Arc<crate::connections::Runtime>,
    /// The job engine.
    pub jobs: crate::jobs::Jobs,
    /// Inbound Jira webhooks: rate limit and grouped writer.
    pub inbound: Arc<crate::webhooks_in::intake::Intake>,
}

/// All API routes with their OpenAPI descriptions (no state attached yet).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::metrics))
        .merge(crate::tenancy::api::routes())
        .merge(crate::audit::api::routes())
        .merge(crate::connections::api::routes())
        .merge(crate::configs::api::routes())
        .merge(crate::tickets::api::routes())
        .merge(crate::exports::api::routes())
        .merge(crate::releases::api::routes())
        .merge(crate::worklogs::api::routes())
        .merge(crate::jobs::api::routes())
        .merge(crate::events::api::routes())
        .merge(crate::search::api::routes())
        .merge(crate::keys::api::routes())
        .merge(crate::code_links::api::routes())
        .merge(crate::webhooks_in::api::routes())
}

/// The complete router with middleware, ready to serve.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = api_routes().split_for_parts();
    let openapi = Arc::new(openapi);
    let limit = state.config.server.body_limit_bytes;
    let timeout = Duration::from_secs(state.config.server.request_timeout_seconds);
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);

    routes
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(crate::console::routes())
        .route_layer(middleware::from_fn(metrics::record_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(middleware::from_fn(drop_unusable_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<Body>| {
                            let rid = req
                                .headers()
                                .get(REQUEST_ID_HEADER)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            tracing::info_span!(
                                "request",
                                request_id = %rid,
                                method = %req.method(),
                                path = %req.uri().path(),
                                route = tracing::field::Empty,
                            )
                        })
                        .on_request(())
                        .on_response(
                            tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                        )
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn(server_timing))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    metrics::track,
                ))
                .layer(middleware::from_fn(problem_fallback))
                .layer(CatchPanicLayer::custom(
                    |_: Box<dyn std::any::Any + Send>| {
                        ApiError::Internal("handler panicked".into()).into_response()
                    },
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    timeout,
                ))
                .layer(middleware::from_fn_with_state(limit, content_length_limit))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    idempotency::idempotency,
                ))
                .layer(DefaultBodyLimit::max(
                    usize::try_from(limit).unwrap_or(usize::MAX),
                )),
        )
        .with_state(state)
}

/// A client's `X-Request-Id` is honoured when it is a short token (at most 128 of
/// `A-Z a-z 0-9 - _ . :`); anything else is replaced by a generated id, so logs never
/// carry arbitrary client text.
async fn drop_unusable_request_id(mut req: Request, next: Next) -> Response {
    let usable = req.headers().get(REQUEST_ID_HEADER).map(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    if usable == Some(false) {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(req).await
}

/// `Server-Timing` on every answer: `total` (the time this service took to produce the
/// answer's head), and for requests that called Jira `pacer` (waiting for the site's
/// rate limit and in back-off) and `jira` (waiting for Jira's answers; `desc` gives the
/// attempts). Concurrent calls add up, so `pacer` and `jira` can exceed `total`.
async fn server_timing(req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let (mut res, t) = jira_client::timing::measure(next.run(req)).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut value = String::new();
    if t.attempts > 0 {
        value.push_str(&format!(
            "pacer;dur={:.3}, jira;dur={:.3};desc=\"{} calls\", ",
            ms(t.pacer),
            ms(t.jira),
            t.attempts
        ));
    }
    value.push_str(&format!("total;dur={:.3}", ms(start.elapsed())));
    if let Ok(v) = header::HeaderValue::from_str(&value) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}

/// Answer 413 early when the declared body length is over the limit, for every route.
async fn content_length_limit(State(limit): State<u64>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => ApiError::PayloadTooLarge { limit: Some(limit) }.into_response(),
        _ => next.run(req).await,
    }
}

/// Turn any error response that is not already a problem document (from a middleware
/// or the framework) into one. The console's HTML error pages stay as they are.
async fn problem_fallback(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(error::PROBLEM_JSON) || ct.starts_with("text/html"));
    if is_problem {
        return res;
    }
    let mut converted = error::problem_for_status(status).into_response();
    *converted.status_mut() = status;
    converted
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Health status body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> extract::Json<Health> {
    extract::Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<extract::Json<Health>, ApiError> {
    match tokio::time::timeout(Duration::from_secs(3), state.store.ping()).await {
        Ok(Ok(())) => Ok(extract::Json(Health { status: "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "readiness check failed");
            Err(ApiError::Unavailable(
                "the database is not reachable".into(),
            ))
        }
        Err(_) => Err(ApiError::Unavailable(
            "the database did not answer in time".into(),
        )),
    }
}
