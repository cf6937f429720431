//! Prometheus metrics: request counts and latency histograms by matched route,
//! method and status, and the calls to Jira (answers by status, retries by reason,
//! transport errors, per site pacer), served as text at `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::error::ApiError;
use super::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

/// The service's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("jira_bridge");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by matched route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by matched route, method and status",
            latency.clone(),
        );
        registry.register_collector(Box::new(UpstreamCollector));
        Self {
            registry,
            requests,
            latency,
        }
    }
}

impl Metrics {
    /// The registry, for modules that add their own metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn observe(&self, route: String, method: String, status: u16, seconds: f64) {
        let labels = RequestLabels {
            route,
            method,
            status: status.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }
}

/// The Jira client's per-site counters (every client of the process shares its
/// site's pacer in [`jira_client::PacerRegistry::global`]), read at each scrape:
/// `upstream_responses_total{site,status}`, `upstream_retries_total{site,reason}`
/// (`rate_limited`, `server_error`, `transport`) and
/// `upstream_transport_errors_total{site}`. `site` is the pacer's key: the Jira
/// origin, or `cloud:<cloud id>` for OAuth connections.
#[derive(Debug)]
struct UpstreamCollector;

impl Collector for UpstreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sites = jira_client::PacerRegistry::global().all_stats();
        let kind = ConstCounter::new(0u64).metric_type();
        let mut family = encoder.encode_descriptor(
            "upstream_responses",
            "Answers from Jira, by site and HTTP status (retried attempts included)",
            None,
            kind,
        )?;
        for (site, stats) in &sites {
            for (status, n) in &stats.responses_by_status {
                let status = status.to_string();
                ConstCounter::new(*n).encode(
                    family
                        .encode_family(&[("site", site.as_str()), ("status", status.as_str())])?,
                )?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "upstream_retries",
            "Requests to Jira sent again, by site and reason (rate_limited, server_error, transport)",
            None,
            kind,
        )?;
        for (site, stats) in &sites {
            for (reason, n) in &stats.retries_by_reason {
                ConstCounter::new(*n).encode(
                    family.encode_family(&[("site", site.as_str()), ("reason", reason)])?,
                )?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "upstream_transport_errors",
            "Attempts to call Jira that failed below HTTP (connect, reset, timeout), by site",
            None,
            kind,
        )?;
        for (site, stats) in &sites {
            ConstCounter::new(stats.transport_errors)
                .encode(family.encode_family(&[("site", site.as_str())])?)?;
        }
        Ok(())
    }
}

/// The matched route of a request, carried from the router to outer middleware.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(pub String);

/// Inner (route) layer: note the matched route in the span and the response.
pub(crate) async fn record_route(
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let route = matched.map(|m| m.as_str().to_owned());
    if let Some(r) = &route {
        tracing::Span::current().record("route", r.as_str());
    }
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(RouteLabel(r));
    }
    res
}

/// Outer layer: count and time every request, including unmatched ones (labelled
/// `unmatched`, so unknown paths cannot blow up the label set).
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    state.metrics.observe(
        route,
        method,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = state.metrics.encode().map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
