//! Pacing (rate limits, latency), fault injection and request accounting.
//!
//! Everything here runs as one axum middleware in front of the REST routes. Decisions that
//! involve chance draw from a generator seeded with the scenario seed, in request order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::server::Ctx;
use crate::util::jerr;
use crate::{Sim, SimConfig};

/// Rate limits and latency. All fields optional in `PUT /_sim/pacing` (missing = default).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct Pacing {
    /// Sustained requests per second per site (token bucket). `None` = unlimited.
    pub rate: Option<f64>,
    /// Bucket size; defaults to `rate`.
    pub burst: Option<f64>,
    /// Jira's per-issue write limit: 20 writes per 2 s on one issue.
    pub per_issue_write_limit: bool,
    /// Added to every REST answer.
    pub latency_ms: u64,
    /// Added per item of a bulk request (bulk create, bulk fetch, worklog list).
    pub latency_per_item_ms: u64,
    /// `/worklog/updated` and `/worklog/deleted` leave out changes younger than this
    /// (Jira: the last minute). Default 60000.
    pub worklog_feed_delay_ms: Option<u64>,
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with `status` (default 503) without touching state.
    Error,
    /// Close the connection without answering, without touching state.
    Reset,
    /// Answer normally after `delay_ms`.
    Slow,
    /// Apply the write, then close the connection without answering.
    UnansweredReset,
    /// Apply the write, then hold the answer for `delay_ms` before sending it.
    UnansweredHold,
    /// Answer 429 as the burst limiter would.
    RateLimit,
}

/// A scripted fault: hits requests that match, after `skip` of them passed, `count` times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the path (after any site prefix) to match, e.g. `/issue/bulk`.
    #[serde(default)]
    pub path_contains: Option<String>,
    pub fault: FaultKind,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many times to fire; absent = forever.
    #[serde(default)]
    pub count: Option<u64>,
    /// Matching requests to let through before firing.
    #[serde(default)]
    pub skip: u64,
}

/// How "applied but unanswered" writes end.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnansweredMode {
    #[default]
    Reset,
    Hold,
}

/// Fault injection. All fields optional in `PUT /_sim/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Probability of an injected 5xx (status `error_status`, default 503).
    pub error_rate: f64,
    pub error_status: Option<u16>,
    /// Probability of closing the connection without answering (state untouched).
    pub reset_rate: f64,
    /// Probability of a slow answer (`slow_ms`).
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Probability that a write (POST/PUT/DELETE) is applied but not answered.
    pub unanswered_rate: f64,
    pub unanswered_mode: UnansweredMode,
    /// How long a held answer waits (mode `hold`).
    pub hold_ms: u64,
    /// Newly created issues stay invisible to JQL search for this long.
    pub index_lag_ms: u64,
    /// Deterministic scripted faults, checked before the random ones.
    pub rules: Vec<FaultRule>,
}

/// Marks a response whose connection must be dropped unanswered.
#[derive(Debug, Clone, Copy)]
pub struct AbortConnection;

/// Set by handlers on a response: number of items in a bulk request (for per-item latency).
#[derive(Debug, Clone, Copy)]
pub struct BulkItems(pub usize);

struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
struct Stats {
    counts: BTreeMap<(String, String, u16), u64>,
    by_site: BTreeMap<usize, u64>,
    total: u64,
    rate_limited: u64,
    faults: BTreeMap<&'static str, u64>,
    since: Option<chrono::DateTime<Utc>>,
}

struct Inner {
    flavor: crate::Flavor,
    pacing: Pacing,
    faults: Faults,
    buckets: HashMap<usize, Bucket>,
    issue_writes: HashMap<String, VecDeque<Instant>>,
    rule_hits: Vec<u64>,
    rng: StdRng,
    stats: Stats,
}

/// Pacing, fault and stats state of a simulator.
pub struct PacingState {
    inner: Mutex<Inner>,
}

enum Pre {
    Pass,
    Reject(Response, &'static str),
    Reset,
}

#[derive(Default)]
struct Post {
    slow_ms: u64,
    unanswered: Option<(UnansweredMode, u64)>,
}

impl PacingState {
    pub(crate) fn new(cfg: &SimConfig) -> Self {
        PacingState {
            inner: Mutex::new(Inner {
                flavor: cfg.flavor,
                pacing: cfg.pacing.clone(),
                faults: cfg.faults.clone(),
                buckets: HashMap::new(),
                issue_writes: HashMap::new(),
                rule_hits: vec![0; cfg.faults.rules.len()],
                rng: StdRng::seed_from_u64(cfg.seed ^ 0x5eed_fa17),
                stats: Stats {
                    since: Some(Utc::now()),
                    ..Stats::default()
                },
            }),
        }
    }

    pub(crate) fn reset(&self, cfg: &SimConfig) {
        *self.inner.lock() = PacingState::new(cfg).inner.into_inner();
    }

    pub fn pacing(&self) -> Pacing {
        self.inner.lock().pacing.clone()
    }

    pub fn set_pacing(&self, p: Pacing) {
        let mut i = self.inner.lock();
        i.pacing = p;
        i.buckets.clear();
        i.issue_writes.clear();
    }

    pub fn faults(&self) -> Faults {
        self.inner.lock().faults.clone()
    }

    pub fn set_faults(&self, f: Faults) {
        let mut i = self.inner.lock();
        i.rule_hits = vec![0; f.rules.len()];
        i.faults = f;
    }

    pub fn index_lag_ms(&self) -> u64 {
        self.inner.lock().faults.index_lag_ms
    }

    pub fn reset_stats(&self) {
        self.inner.lock().stats = Stats {
            since: Some(Utc::now()),
            ..Stats::default()
        };
    }

    pub(crate) fn stats_json(&self, site_names: &[String]) -> Value {
        let i = self.inner.lock();
        let s = &i.stats;
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        let requests: Vec<Value> = s
            .counts
            .iter()
            .map(|((m, e, st), c)| {
                *by_status.entry(st.to_string()).or_default() += c;
                json!({"method": m, "endpoint": e, "status": st, "count": c})
            })
            .collect();
        let by_site: BTreeMap<String, u64> = s
            .by_site
            .iter()
            .map(|(k, v)| {
                (
                    site_names.get(*k).cloned().unwrap_or_else(|| k.to_string()),
                    *v,
                )
            })
            .collect();
        json!({
            "since": s.since.map(|t| t.to_rfc3339()),
            "total": s.total,
            "rate_limited": s.rate_limited,
            "faults": s.faults,
            "by_status": by_status,
            "by_site": by_site,
            "requests": requests,
        })
    }

    fn count(&self, site: usize, method: &str, endpoint: &str, status: u16) {
        let mut i = self.inner.lock();
        i.stats.total += 1;
        *i.stats.by_site.entry(site).or_default() += 1;
        if status == 429 {
            i.stats.rate_limited += 1;
        }
        *i.stats
            .counts
            .entry((method.to_string(), endpoint.to_string(), status))
            .or_default() += 1;
    }

    fn note_fault(&self, kind: &'static str) {
        *self.inner.lock().stats.faults.entry(kind).or_default() += 1;
    }

    fn decide(&self, site: usize, method: &Method, path: &str) -> (Pre, Post) {
        let mut i = self.inner.lock();
        let flavor = i.flavor;
        let now = Instant::now();
        let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut post = Post::default();
        // Scripted faults first (deterministic).
        let mut fired: Option<FaultRule> = None;
        for idx in 0..i.faults.rules.len() {
            let r = &i.faults.rules[idx];
            let m_ok = r
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()));
            let p_ok = r.path_contains.as_deref().is_none_or(|p| path.contains(p));
            if !(m_ok && p_ok) {
                continue;
            }
            let seen = i.rule_hits.get(idx).copied().unwrap_or(0);
            let r = r.clone();
            if let Some(h) = i.rule_hits.get_mut(idx) {
                *h += 1;
            }
            if seen < r.skip {
                continue;
            }
            if let Some(c) = r.count {
                if seen - r.skip >= c {
                    continue;
                }
            }
            fired = Some(r);
            break;
        }
        if let Some(r) = fired {
            match r.fault {
                FaultKind::Error => {
                    return (
                        Pre::Reject(server_error(r.status.unwrap_or(503)), "error"),
                        post,
                    )
                }
                FaultKind::Reset => return (Pre::Reset, post),
                FaultKind::Slow => post.slow_ms = r.delay_ms.unwrap_or(5000),
                FaultKind::UnansweredReset => {
                    post.unanswered = Some((UnansweredMode::Reset, 0));
                }
                FaultKind::UnansweredHold => {
                    post.unanswered = Some((UnansweredMode::Hold, r.delay_ms.unwrap_or(30_000)));
                }
                FaultKind::RateLimit => {
                    let rate = i.pacing.rate.unwrap_or(10.0);
                    return (
                        Pre::Reject(too_many(flavor, rate, 1, "jira-burst-based"), "rate_limit"),
                        post,
                    );
                }
            }
        }
        // Token bucket per site.
        if let Some(rate) = i.pacing.rate.filter(|r| *r > 0.0) {
            let burst = i.pacing.burst.unwrap_or(rate).max(1.0);
            let b = i.buckets.entry(site).or_insert(Bucket {
                tokens: burst,
                last: now,
            });
            let elapsed = now.duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rate).min(burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
            } else {
                let wait = (1.0 - b.tokens) / rate;
                let secs = wait.ceil().max(1.0) as u64;
                return (
                    Pre::Reject(too_many(flavor, rate, secs, "jira-burst-based"), ""),
                    post,
                );
            }
        }
        // Per-issue write limit: 20 writes per 2 s.
        if write && i.pacing.per_issue_write_limit {
            if let Some(key) = issue_of_path(path) {
                let q = i.issue_writes.entry(key).or_default();
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(2))
                {
                    q.pop_front();
                }
                if q.len() >= 20 {
                    let oldest = q.front().copied().unwrap_or(now);
                    let wait = Duration::from_secs(2).saturating_sub(now.duration_since(oldest));
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    return (
                        Pre::Reject(too_many(flavor, 10.0, secs, "jira-per-issue-on-write"), ""),
                        post,
                    );
                }
                q.push_back(now);
            }
        }
        // Random faults.
        let f = i.faults.clone();
        if f.error_rate > 0.0 && i.rng.gen_bool(f.error_rate.clamp(0.0, 1.0)) {
            return (
                Pre::Reject(server_error(f.error_status.unwrap_or(503)), "error"),
                post,
            );
        }
        if f.reset_rate > 0.0 && i.rng.gen_bool(f.reset_rate.clamp(0.0, 1.0)) {
            return (Pre::Reset, post);
        }
        if f.slow_rate > 0.0 && i.rng.gen_bool(f.slow_rate.clamp(0.0, 1.0)) {
            post.slow_ms = post.slow_ms.max(f.slow_ms);
        }
        if write
            && post.unanswered.is_none()
            && f.unanswered_rate > 0.0
            && i.rng.gen_bool(f.unanswered_rate.clamp(0.0, 1.0))
        {
            post.unanswered = Some((f.unanswered_mode, f.hold_ms));
        }
        (Pre::Pass, post)
    }

    fn latency(&self) -> (u64, u64) {
        let i = self.inner.lock();
        (i.pacing.latency_ms, i.pacing.latency_per_item_ms)
    }

    fn limit_headers(&self, site: usize) -> Option<(u64, u64)> {
        let i = self.inner.lock();
        let rate = i.pacing.rate.filter(|r| *r > 0.0)?;
        let remaining = i
            .buckets
            .get(&site)
            .map(|b| b.tokens.floor().max(0.0) as u64)?;
        Some((rate.round() as u64, remaining))
    }
}

/// The issue id or key a write goes to (`/rest/api/3/issue/ABC-1/...`), if any.
fn issue_of_path(path: &str) -> Option<String> {
    let rest = path.split("/issue/").nth(1)?;
    let first = rest.split('/').next()?;
    if first.is_empty()
        || matches!(
            first,
            "bulk" | "bulkfetch" | "picker" | "createmeta" | "properties"
        )
    {
        return None;
    }
    Some(first.to_ascii_uppercase())
}

fn server_error(status: u16) -> Response {
    let mut r = jerr(
        status,
        &["Internal server error. Please try again later."],
        &[],
    );
    if status == 503 {
        r.headers_mut()
            .insert("Retry-After", HeaderValue::from_static("1"));
    }
    r
}

/// Jira's 429. Cloud: `X-RateLimit-*` and `RateLimit-Reason`; Data Center: its
/// token-bucket headers (`X-RateLimit-FillRate`, `X-RateLimit-Interval-Seconds`).
fn too_many(flavor: crate::Flavor, rate: f64, retry_after: u64, reason: &'static str) -> Response {
    let reset = (Utc::now() + chrono::Duration::seconds(retry_after as i64))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut r = jerr(429, &["Rate limit exceeded."], &[]);
    let h = r.headers_mut();
    let put = |h: &mut axum::http::HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put(h, "Retry-After", retry_after.to_string());
    put(h, "X-RateLimit-Limit", (rate.round() as u64).to_string());
    put(h, "X-RateLimit-Remaining", "0".into());
    if flavor == crate::Flavor::DataCenter {
        put(h, "X-RateLimit-FillRate", (rate.round() as u64).to_string());
        put(h, "X-RateLimit-Interval-Seconds", "1".into());
    } else {
        put(h, "X-RateLimit-Reset", reset);
        put(h, "RateLimit-Reason", reason.to_string());
    }
    r
}

/// The pacing / fault / stats / recording middleware for REST routes.
pub(crate) async fn middleware(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/rest/") {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".to_string());
    let site = req.extensions().get::<Ctx>().map(|c| c.site).unwrap_or(0);
    let gateway = req
        .extensions()
        .get::<Ctx>()
        .is_some_and(|c| c.via == crate::server::Via::OAuth);
    let query = req.uri().query().map(str::to_string);
    let (pre, post) = sim.pacing.decide(site, &method, &path);
    let (req_body, req) = if sim.recorder.is_some() {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
            .await
            .unwrap_or_default();
        (
            Some(bytes.clone()),
            Request::from_parts(parts, Body::from(bytes)),
        )
    } else {
        (None, req)
    };
    let mut resp = match pre {
        Pre::Reject(r, fault) => {
            if !fault.is_empty() {
                sim.pacing.note_fault(fault);
            }
            r
        }
        Pre::Reset => {
            sim.pacing.note_fault("reset");
            sim.pacing.count(site, method.as_str(), &endpoint, 0);
            let mut r = ().into_response();
            r.extensions_mut().insert(AbortConnection);
            return r;
        }
        Pre::Pass => {
            let r = next.run(req).await;
            let (lat, per_item) = sim.pacing.latency();
            let items = r.extensions().get::<BulkItems>().map(|b| b.0).unwrap_or(0) as u64;
            let delay = lat
                .saturating_add(per_item.saturating_mul(items))
                .saturating_add(post.slow_ms);
            if post.slow_ms > 0 {
                sim.pacing.note_fault("slow");
            }
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            r
        }
    };
    if let Some((rate, remaining)) = sim.pacing.limit_headers(site) {
        if resp.status().as_u16() != 429 {
            if let Ok(v) = HeaderValue::from_str(&rate.to_string()) {
                resp.headers_mut().insert("X-RateLimit-Limit", v);
            }
            if let Ok(v) = HeaderValue::from_str(&remaining.to_string()) {
                resp.headers_mut().insert("X-RateLimit-Remaining", v);
            }
        }
    }
    let status = resp.status().as_u16();
    if let Some(rec) = &sim.recorder {
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 256 * 1024 * 1024)
            .await
            .unwrap_or_default();
        rec.write(
            &method,
            &path,
            query.as_deref(),
            status,
            req_body.as_deref(),
            &bytes,
            sim.cfg.flavor,
            gateway,
        );
        resp = Response::from_parts(parts, Body::from(bytes));
    }
    match post.unanswered {
        Some((UnansweredMode::Reset, _)) => {
            sim.pacing.note_fault("unanswered");
            sim.pacing.count(site, method.as_str(), &endpoint, 0);
            let mut r = ().into_response();
            r.extensions_mut().insert(AbortConnection);
            return r;
        }
        Some((UnansweredMode::Hold, ms)) => {
            sim.pacing.note_fault("unanswered");
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        None => {}
    }
    sim.pacing.count(site, method.as_str(), &endpoint, status);
    resp
}
