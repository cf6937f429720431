//! Per-site pacing: an adaptive token bucket, a concurrency cap, per-issue write
//! serialisation, retry back-off, and counters.
//!
//! Every request of every [`crate::JiraClient`] of one Jira site must go through that
//! site's single [`Pacer`]; [`PacerRegistry::global`] hands out one per site key (or
//! pass an `Arc<Pacer>` explicitly to [`crate::ClientBuilder::pacer`]).
//!
//! The rate adapts AIMD-style: a 429 multiplies it by
//! [`PacerConfig::decrease_factor`] (at most once per congestion window), empties the
//! bucket and pauses every request of the site for `Retry-After` (with jitter);
//! each success while the bucket is drained adds [`PacerConfig::increase_per_success`]
//! up to [`PacerConfig::max_rate`] — and never above the rate the site states in
//! `X-RateLimit-Limit`, nor while less than a fifth of it remains. A 429 whose `RateLimit-Reason` is
//! `jira-per-issue-on-write` only delays the request concerned.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::time::Instant;

use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// Retry settings (jittered exponential back-off).
#[derive(Clone, Debug)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First back-off delay.
    pub base_delay: Duration,
    /// Upper bound of a back-off delay (before jitter).
    pub max_delay: Duration,
    /// Jitter multiplier range, e.g. `(0.7, 1.3)`.
    pub jitter: (f64, f64),
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: (0.7, 1.3),
        }
    }
}

/// Below this share of `X-RateLimit-Limit` remaining, the rate is not increased.
const NEAR_LIMIT_SHARE: f64 = 0.2;

/// Tuning of a [`Pacer`].
#[derive(Clone, Debug)]
pub struct PacerConfig {
    /// Requests per second at start.
    pub initial_rate: f64,
    /// Floor of the adaptive rate.
    pub min_rate: f64,
    /// Ceiling of the adaptive rate.
    pub max_rate: f64,
    /// Bucket size (requests that may go out back to back).
    pub burst: f64,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Rate multiplier on a 429 (0 < f < 1).
    pub decrease_factor: f64,
    /// Requests/second added per success while the bucket is drained.
    pub increase_per_success: f64,
    /// Multiplier range applied to `Retry-After` (must start at ≥ 1.0: it is a floor).
    pub retry_after_jitter: (f64, f64),
    /// Retry policy.
    pub retry: RetryConfig,
}

impl Default for PacerConfig {
    /// Tuned for Jira Cloud: a steady 20 req/s start (a safe share of the per-endpoint
    /// burst limits and of the OAuth points quota), creeping up to 100 req/s.
    fn default() -> Self {
        Self {
            initial_rate: 20.0,
            min_rate: 0.5,
            max_rate: 100.0,
            burst: 20.0,
            max_concurrency: 16,
            decrease_factor: 0.7,
            increase_per_success: 0.05,
            retry_after_jitter: (1.0, 1.2),
            retry: RetryConfig::default(),
        }
    }
}

impl PacerConfig {
    /// A conservative profile for Data Center sites (admin-configured limits are often
    /// a few requests per second).
    pub fn data_center() -> Self {
        Self {
            initial_rate: 5.0,
            max_rate: 50.0,
            burst: 10.0,
            max_concurrency: 8,
            ..Self::default()
        }
    }
}

/// Counters of one pacer (monotonic since creation, except the gauges).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PacerStats {
    /// Attempts sent (retries included).
    pub requests: u64,
    /// Answers received (any status).
    pub responses: u64,
    /// Answers with status 429.
    pub rate_limited: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Answers by HTTP status.
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Retries by [`RetryReason`] (its [`RetryReason::as_str`]).
    pub retries_by_reason: BTreeMap<&'static str, u64>,
    /// Attempts that failed below HTTP (connect, reset, timeout).
    pub transport_errors: u64,
    /// Total time requests spent waiting for the pacer (bucket, pause, concurrency cap).
    pub wait_time: Duration,
    /// Total time spent sleeping between retries.
    pub backoff_time: Duration,
    /// Current adaptive rate (req/s).
    pub current_rate: f64,
    /// Requests in flight now.
    pub in_flight: usize,
}

/// Why a request was sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryReason {
    /// Jira answered 429.
    RateLimited,
    /// Jira answered 5xx (idempotent requests only).
    ServerError,
    /// The attempt failed below HTTP (connect, reset, timeout).
    Transport,
}

impl RetryReason {
    /// `rate_limited`, `server_error` or `transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::Transport => "transport",
        }
    }
}

/// Rate-limit information read from an answer's headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateInfo {
    /// `Retry-After` (seconds or HTTP date).
    pub retry_after: Option<Duration>,
    /// `RateLimit-Reason` (or its `X-`/`Beta-` variants).
    pub reason: Option<String>,
    /// `X-RateLimit-Limit`.
    pub limit: Option<f64>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<f64>,
    /// `X-RateLimit-NearLimit: true`.
    pub near_limit: bool,
}

impl RateInfo {
    /// Read from response headers.
    pub fn from_headers(h: &http::HeaderMap) -> Self {
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let retry_after = get("retry-after").and_then(parse_retry_after);
        let reason = get("ratelimit-reason")
            .or_else(|| get("x-ratelimit-reason"))
            .or_else(|| get("x-beta-ratelimit-reason"))
            .map(str::to_string);
        let num = |name: &str| get(name).and_then(|v| v.parse::<f64>().ok());
        Self {
            retry_after,
            reason,
            limit: num("x-ratelimit-limit"),
            remaining: num("x-ratelimit-remaining"),
            near_limit: get("x-ratelimit-nearlimit")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }
    }

    /// True when the 429 concerned only writes to one issue.
    pub fn is_per_issue(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.contains("per-issue"))
    }
}

/// Parse `Retry-After`: delta seconds (fractions tolerated) or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
        return None;
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last_refill: Instant,
    paused_until: Instant,
    last_decrease: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, now: Instant, burst: f64) {
        if now > self.last_refill {
            let dt = (now - self.last_refill).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(burst);
            self.last_refill = now;
        }
    }
}

/// The limiter of one Jira site. See the module documentation.
pub struct Pacer {
    cfg: PacerConfig,
    bucket: Mutex<Bucket>,
    slots: Arc<Semaphore>,
    issue_locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    issue_pauses: Mutex<HashMap<String, Instant>>,
    requests: AtomicU64,
    responses: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    server_errors: AtomicU64,
    by_status: Mutex<BTreeMap<u16, u64>>,
    by_reason: Mutex<BTreeMap<&'static str, u64>>,
    transport_errors: AtomicU64,
    wait_us: AtomicU64,
    backoff_us: AtomicU64,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("config", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Held while a request is in flight (a concurrency slot).
#[derive(Debug)]
pub struct PacerPermit {
    _slot: Option<OwnedSemaphorePermit>,
}

/// Exclusive right to write to one issue (see [`Pacer::lock_issue`]).
#[derive(Debug)]
pub struct IssueWriteGuard {
    _guard: OwnedMutexGuard<()>,
}

impl Pacer {
    /// A pacer with the given configuration.
    pub fn new(cfg: PacerConfig) -> Arc<Self> {
        let now = Instant::now();
        let rate = cfg
            .initial_rate
            .clamp(cfg.min_rate.max(0.001), cfg.max_rate.max(0.001));
        let burst = cfg.burst.max(1.0);
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(cfg.max_concurrency.max(1))),
            bucket: Mutex::new(Bucket {
                rate,
                tokens: burst,
                last_refill: now,
                paused_until: now,
                last_decrease: None,
            }),
            cfg,
            issue_locks: Mutex::new(HashMap::new()),
            issue_pauses: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            by_status: Mutex::new(BTreeMap::new()),
            by_reason: Mutex::new(BTreeMap::new()),
            transport_errors: AtomicU64::new(0),
            wait_us: AtomicU64::new(0),
            backoff_us: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PacerConfig {
        &self.cfg
    }

    /// Wait for a concurrency slot and a token (and for any pause after a 429).
    pub async fn acquire(&self) -> PacerPermit {
        let start = Instant::now();
        let slot = self.slots.clone().acquire_owned().await.ok();
        let burst = self.cfg.burst.max(1.0);
        loop {
            let wait = {
                let now = Instant::now();
                let mut b = self.bucket.lock();
                if now < b.paused_until {
                    b.paused_until - now
                } else {
                    b.refill(now, burst);
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        break;
                    }
                    Duration::from_secs_f64(((1.0 - b.tokens) / b.rate).max(0.000_1))
                }
            };
            tokio::time::sleep(wait).await;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.add_us(&self.wait_us, start.elapsed());
        crate::timing::add_pacer(start.elapsed());
        PacerPermit { _slot: slot }
    }

    fn add_us(&self, c: &AtomicU64, d: Duration) {
        c.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Wait while writes to `issue_key` are paused after a per-issue 429.
    pub async fn wait_for_issue(&self, issue_key: &str) {
        let key = issue_key.to_ascii_uppercase();
        loop {
            let until = {
                let mut m = self.issue_pauses.lock();
                match m.get(&key) {
                    Some(t) if *t > Instant::now() => *t,
                    Some(_) => {
                        m.remove(&key);
                        return;
                    }
                    None => return,
                }
            };
            let start = Instant::now();
            tokio::time::sleep_until(until).await;
            self.add_us(&self.wait_us, start.elapsed());
            crate::timing::add_pacer(start.elapsed());
        }
    }

    /// Record an answer to a request about `issue_key` (a write to one issue): like
    /// [`Pacer::on_response`], and a per-issue 429 pauses further writes to that issue
    /// (only) for `Retry-After`.
    pub fn on_issue_response(
        &self,
        issue_key: Option<&str>,
        status: u16,
        info: &RateInfo,
    ) -> Duration {
        let delay = self.on_response(status, info);
        if status == 429 && info.is_per_issue() {
            if let Some(key) = issue_key {
                let until = Instant::now() + delay;
                let mut m = self.issue_pauses.lock();
                if m.len() > 1024 {
                    let now = Instant::now();
                    m.retain(|_, t| *t > now);
                }
                let e = m.entry(key.to_ascii_uppercase()).or_insert(until);
                if *e < until {
                    *e = until;
                }
            }
        }
        delay
    }

    /// Record an answer and adapt the rate. Returns the delay the request concerned must
    /// at least wait before a retry (for a 429: `Retry-After` with jitter).
    pub fn on_response(&self, status: u16, info: &RateInfo) -> Duration {
        self.responses.fetch_add(1, Ordering::Relaxed);
        *self.by_status.lock().entry(status).or_default() += 1;
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            let (lo, hi) = self.cfg.retry_after_jitter;
            let floor = info.retry_after.unwrap_or(Duration::ZERO);
            let delay = floor.mul_f64(jitter(lo.max(1.0), hi.max(lo.max(1.0))));
            if info.is_per_issue() {
                return delay;
            }
            let now = Instant::now();
            let mut b = self.bucket.lock();
            let window = floor.max(Duration::from_secs(1));
            let may_decrease = b
                .last_decrease
                .is_none_or(|t| now.duration_since(t) >= window);
            if may_decrease {
                b.rate = (b.rate * self.cfg.decrease_factor).max(self.cfg.min_rate);
                b.last_decrease = Some(now);
            }
            let until = now + delay;
            if until > b.paused_until {
                b.paused_until = until;
            }
            // Nothing accrues during the pause; start from an empty bucket after it.
            b.tokens = b.tokens.min(0.0);
            b.last_refill = b.last_refill.max(b.paused_until);
            return delay;
        }
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
            return info.retry_after.unwrap_or(Duration::ZERO);
        }
        if (200..400).contains(&status) {
            // The site's own figures bound the probing: never above the rate it states
            // (`X-RateLimit-Limit`, requests/second of the burst scope), and no
            // increase while less than a fifth of it remains (Jira's `NearLimit`
            // threshold) — creeping past the stated limit only buys 429s and pauses.
            let limit = info.limit.filter(|l| *l > 0.0);
            let ceiling = limit.map_or(self.cfg.max_rate, |l| l.min(self.cfg.max_rate));
            let near = match (info.remaining, limit) {
                (Some(r), Some(l)) => r < NEAR_LIMIT_SHARE * l,
                (Some(r), None) => r <= 0.0,
                (None, _) => false,
            };
            let hold = info.near_limit || near;
            let mut b = self.bucket.lock();
            if !hold && b.tokens < 1.0 {
                b.rate = (b.rate + self.cfg.increase_per_success).min(ceiling);
            }
            if b.rate > ceiling {
                b.rate = ceiling.max(self.cfg.min_rate);
            }
        }
        Duration::ZERO
    }

    /// Record an attempt that failed below HTTP.
    pub fn on_transport_error(&self) {
        self.transport_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Jittered exponential back-off for retry number `attempt` (0-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let r = &self.cfg.retry;
        let exp = r
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(r.max_delay);
        exp.mul_f64(jitter(r.jitter.0, r.jitter.1))
    }

    /// Sleep before a retry, counting it under its reason.
    pub async fn sleep_before_retry(&self, reason: RetryReason, d: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        *self.by_reason.lock().entry(reason.as_str()).or_default() += 1;
        self.add_us(&self.backoff_us, d);
        crate::timing::add_pacer(d);
        tokio::time::sleep(d).await;
    }

    /// Serialise writes to one issue (Jira limits writes per issue): hold the guard while
    /// writing. Do not nest two guards for the same key in one task.
    pub async fn lock_issue(&self, issue_key: &str) -> IssueWriteGuard {
        let key = issue_key.to_ascii_uppercase();
        let m = {
            let mut map = self.issue_locks.lock();
            if map.len() > 1024 {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(&key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key, Arc::downgrade(&m));
                    m
                }
            }
        };
        IssueWriteGuard {
            _guard: m.lock_owned().await,
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PacerStats {
        let rate = self.bucket.lock().rate;
        PacerStats {
            requests: self.requests.load(Ordering::Relaxed),
            responses: self.responses.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            responses_by_status: self.by_status.lock().clone(),
            retries_by_reason: self.by_reason.lock().clone(),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            wait_time: Duration::from_micros(self.wait_us.load(Ordering::Relaxed)),
            backoff_time: Duration::from_micros(self.backoff_us.load(Ordering::Relaxed)),
            current_rate: rate,
            in_flight: self.cfg.max_concurrency.max(1) - self.slots.available_permits(),
        }
    }
}

fn jitter(lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rand::thread_rng().gen_range(lo..hi)
    } else {
        lo
    }
}

/// One [`Pacer`] per Jira site, shared by every client of the process.
#[derive(Debug, Default)]
pub struct PacerRegistry {
    pacers: Mutex<HashMap<String, Arc<Pacer>>>,
    configs: Mutex<HashMap<String, PacerConfig>>,
    default: Mutex<Option<PacerConfig>>,
}

impl PacerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static PacerRegistry {
        static GLOBAL: OnceLock<PacerRegistry> = OnceLock::new();
        GLOBAL.get_or_init(PacerRegistry::new)
    }

    /// Configuration used for sites without their own (before their pacer is created).
    pub fn set_default_config(&self, cfg: PacerConfig) {
        *self.default.lock() = Some(cfg);
    }

    /// Configuration for one site (takes effect if its pacer is not created yet).
    pub fn configure(&self, site_key: &str, cfg: PacerConfig) {
        self.configs.lock().insert(site_key.to_string(), cfg);
    }

    /// The pacer of a site (created on first use).
    pub fn get(&self, site_key: &str) -> Arc<Pacer> {
        self.get_or(site_key, PacerConfig::default)
    }

    /// The pacer of a site, created with `fallback()` when neither a site nor a default
    /// configuration was set.
    pub fn get_or(&self, site_key: &str, fallback: impl FnOnce() -> PacerConfig) -> Arc<Pacer> {
        let mut map = self.pacers.lock();
        if let Some(p) = map.get(site_key) {
            return p.clone();
        }
        let cfg = self
            .configs
            .lock()
            .get(site_key)
            .cloned()
            .or_else(|| self.default.lock().clone())
            .unwrap_or_else(fallback);
        let p = Pacer::new(cfg);
        map.insert(site_key.to_string(), p.clone());
        p
    }

    /// Stats of every site.
    pub fn all_stats(&self) -> Vec<(String, PacerStats)> {
        let map = self.pacers.lock();
        let mut v: Vec<_> = map.iter().map(|(k, p)| (k.clone(), p.stats())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn rate_info_reads_jira_headers() {
        let i = RateInfo::from_headers(&headers(&[
            ("Retry-After", "5"),
            ("RateLimit-Reason", "jira-burst-based"),
            ("X-RateLimit-Limit", "20"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-NearLimit", "true"),
        ]));
        assert_eq!(i.retry_after, Some(Duration::from_secs(5)));
        assert_eq!(i.reason.as_deref(), Some("jira-burst-based"));
        assert_eq!(i.limit, Some(20.0));
        assert_eq!(i.remaining, Some(0.0));
        assert!(i.near_limit);
        assert!(!i.is_per_issue());
        let i =
            RateInfo::from_headers(&headers(&[("RateLimit-Reason", "jira-per-issue-on-write")]));
        assert!(i.is_per_issue());
        assert_eq!(i.retry_after, None);
    }

    #[test]
    fn retry_after_zero_is_a_floor_not_a_stop() {
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-3"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let past = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(past, Some(Duration::ZERO));
    }

    #[test]
    fn aimd_decreases_once_per_window_and_creeps_up() {
        let p = Pacer::new(PacerConfig {
            initial_rate: 10.0,
            decrease_factor: 0.5,
            increase_per_success: 1.0,
            max_rate: 12.0,
            ..PacerConfig::default()
        });
        let info = RateInfo {
            retry_after: Some(Duration::from_secs(1)),
            reason: Some("jira-burst-based".into()),
            ..RateInfo::default()
        };
        let d = p.on_response(429, &info);
        assert!(d >= Duration::from_secs(1), "Retry-After is a floor: {d:?}");
        assert!(d <= Duration::from_millis(1200));
        assert_eq!(p.stats().current_rate, 5.0);
        // A second 429 of the same congestion window does not halve again.
        p.on_response(429, &info);
        assert_eq!(p.stats().current_rate, 5.0);
        // Per-issue 429s never change the site's rate.
        p.on_response(
            429,
            &RateInfo {
                reason: Some("jira-per-issue-on-write".into()),
                ..RateInfo::default()
            },
        );
        assert_eq!(p.stats().current_rate, 5.0);
        // The bucket is empty after the 429, so successes creep the rate back up, capped.
        for _ in 0..20 {
            p.on_response(200, &RateInfo::default());
        }
        assert_eq!(p.stats().current_rate, 12.0);
        let s = p.stats();
        assert_eq!(s.rate_limited, 3);
        assert_eq!(s.responses, 23);
    }

    #[tokio::test(start_paused = true)]
    async fn per_issue_429_pauses_only_that_issue() {
        let p = Pacer::new(PacerConfig::default());
        let info = RateInfo {
            retry_after: Some(Duration::from_secs(2)),
            reason: Some("jira-per-issue-on-write".into()),
            ..RateInfo::default()
        };
        let d = p.on_issue_response(Some("ops-1"), 429, &info);
        assert!(d >= Duration::from_secs(2));
        assert_eq!(p.stats().current_rate, 20.0, "the site's rate is untouched");
        let start = Instant::now();
        p.wait_for_issue("OPS-2").await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "other issues are not paused"
        );
        p.wait_for_issue("OPS-1").await;
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[test]
    fn near_limit_holds_the_rate() {
        let p = Pacer::new(PacerConfig {
            initial_rate: 10.0,
            burst: 1.0,
            increase_per_success: 1.0,
            ..PacerConfig::default()
        });
        {
            p.bucket.lock().tokens = 0.0;
        }
        p.on_response(
            200,
            &RateInfo {
                near_limit: true,
                ..RateInfo::default()
            },
        );
        assert_eq!(p.stats().current_rate, 10.0);
        p.on_response(200, &RateInfo::default());
        assert_eq!(p.stats().current_rate, 11.0);
    }

    #[test]
    fn the_stated_limit_caps_the_rate_and_low_remaining_holds_it() {
        let p = Pacer::new(PacerConfig {
            initial_rate: 19.5,
            burst: 1.0,
            increase_per_success: 1.0,
            ..PacerConfig::default()
        });
        let answer = |remaining: f64| RateInfo {
            limit: Some(20.0),
            remaining: Some(remaining),
            ..RateInfo::default()
        };
        p.bucket.lock().tokens = 0.0;
        // 3 of 20 left (under a fifth): hold.
        p.on_response(200, &answer(3.0));
        assert_eq!(p.stats().current_rate, 19.5);
        // Plenty left: increase, but not past the stated 20/s.
        p.on_response(200, &answer(10.0));
        assert_eq!(p.stats().current_rate, 20.0);
        p.on_response(200, &answer(10.0));
        assert_eq!(p.stats().current_rate, 20.0);
        // A lower stated limit brings the rate down to it.
        p.on_response(
            200,
            &RateInfo {
                limit: Some(5.0),
                remaining: Some(4.0),
                ..RateInfo::default()
            },
        );
        assert_eq!(p.stats().current_rate, 5.0);
        // Without figures the configured ceiling applies.
        p.on_response(200, &RateInfo::default());
        assert_eq!(p.stats().current_rate, 6.0);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = Pacer::new(PacerConfig {
            retry: RetryConfig {
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(1000),
                jitter: (1.0, 1.0),
                max_retries: 4,
            },
            ..PacerConfig::default()
        });
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(10), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_requests_at_the_rate() {
        let p = Pacer::new(PacerConfig {
            initial_rate: 10.0,
            burst: 2.0,
            ..PacerConfig::default()
        });
        let start = tokio::time::Instant::now();
        for _ in 0..12 {
            let _permit = p.acquire().await;
        }
        // 2 from the burst, then 10 at 10/s: one second of virtual time.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1100), "{elapsed:?}");
        assert_eq!(p.stats().requests, 12);
    }

    #[tokio::test]
    async fn issue_locks_serialise_per_key() {
        let p = Pacer::new(PacerConfig::default());
        let g = p.lock_issue("abc-1").await;
        // Another key is free.
        let other = tokio::time::timeout(Duration::from_millis(200), p.lock_issue("ABC-2")).await;
        assert!(other.is_ok());
        // The same key (case-insensitive) waits until the first guard is dropped.
        let p2 = p.clone();
        let h = tokio::spawn(async move {
            let _g = p2.lock_issue("ABC-1").await;
        });
        tokio::task::yield_now().await;
        assert!(!h.is_finished());
        drop(g);
        tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn registry_shares_one_pacer_per_site() {
        let r = PacerRegistry::new();
        r.configure(
            "https://b",
            PacerConfig {
                initial_rate: 3.0,
                ..PacerConfig::default()
            },
        );
        let a1 = r.get("https://a");
        let a2 = r.get("https://a");
        assert!(Arc::ptr_eq(&a1, &a2));
        let b = r.get("https://b");
        assert!(!Arc::ptr_eq(&a1, &b));
        assert_eq!(b.stats().current_rate, 3.0);
        assert_eq!(r.all_stats().len(), 2);
    }
}
