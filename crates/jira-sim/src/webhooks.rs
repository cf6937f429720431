//! Admin and dynamic webhooks of the simulator: registration and delivery.
//!
//! * **Admin webhooks** (`/rest/webhooks/1.0/webhook`): name, url, events, JQL filter
//!   (`filters["issue-related-events-section"]`), `excludeBody`, `enabled` and an optional
//!   write-once `secret`; with a secret every delivery carries
//!   `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. The URL may contain
//!   Jira's variables `${issue.id}`, `${issue.key}`, `${project.id}`, `${project.key}`.
//! * **Dynamic webhooks** (`/rest/api/3/webhook`, OAuth 2.0 apps): only the events
//!   Atlassian allows for OAuth apps ([`DYNAMIC_EVENTS`]; worklog events are refused per
//!   element), the JQL subset of `WebhookDetails.jqlFilter`, at most
//!   [`DYNAMIC_LIMIT_PER_USER`] per app and user, one delivery URL per app, expiry after
//!   30 days (control can shorten it) extended by refresh. One delivery per app and event,
//!   carrying `matchedWebhookIds` and `Authorization: Bearer <JWT HS256 signed with the
//!   app's client secret>` (see [`WebhookHub::register_app`]).
//! * **Delivery**: asynchronous over HTTP on tokio tasks; headers
//!   `X-Atlassian-Webhook-Identifier` (stable across retries),
//!   `X-Atlassian-Webhook-Retry: n` on retries, `X-Atlassian-Webhook-Flow: Primary`;
//!   retried on 408, 409, 425, 429, 5xx, connection errors and timeouts, up to 5 retries
//!   on a short, configurable schedule; other answers end the delivery. Deliveries that
//!   exhaust their retries are listed by `GET /rest/api/3/webhook/failed` for their app.
//!
//! One hub serves one site. A simulator with several sites creates one hub per site
//! (see [`WebhookHub::set_site`]).
//!
//! Additions to the documented interface: [`WebhookHub::control_router_for`],
//! [`WebhookHub::register_app`],
//! [`WebhookHub::set_app_owner`], [`WebhookHub::set_site`], [`WebhookHub::pending_count`], [`WebhookHub::wait_idle`],
//! [`WebhookHub::set_enabled`], [`WebhookHub::set_retry_delays`],
//! [`WebhookHub::set_dynamic_expiry`], [`WebhookHub::advance_clock`],
//! [`WebhookHub::deliveries`], [`WebhookHub::stats_json`], [`validate_dynamic_jql`],
//! [`hub_signature`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::Sha256;

/// Events an OAuth 2.0 app may register dynamic webhooks for.
pub const DYNAMIC_EVENTS: &[&str] = &[
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issue_property_set",
    "issue_property_deleted",
];
/// Dynamic webhooks per app, per user, per site for OAuth 2.0 apps.
pub const DYNAMIC_LIMIT_PER_USER: usize = 5;
/// Lifetime of a dynamic webhook (and what a refresh extends it by).
pub const DYNAMIC_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default pause before retry n (n = 1..=5). Jira Cloud waits minutes; the simulator is
/// quick so that tests stay fast. `PUT /_sim/webhooks/settings` changes it.
pub const DEFAULT_RETRY_DELAYS_MS: &[u64] = &[50, 100, 200, 400, 800];
/// Default timeout of one delivery attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One event "in Jira", published by the core.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    /// `jira:issue_created`, `jira:issue_updated`, `jira:issue_deleted`,
    /// `worklog_created|updated|deleted`, `comment_created|updated|deleted`,
    /// `issue_property_set|deleted`.
    pub event: String,
    /// The complete payload as Jira sends it (timestamp, webhookEvent, …). The hub adds
    /// `matchedWebhookIds` for dynamic webhooks.
    pub body: Value,
}

/// (HTTP status, Jira error body `{"errorMessages":[..],"errors":{..}}`)
pub type SimReject = (u16, Value);

fn reject(status: u16, msg: &str) -> SimReject {
    (status, json!({"errorMessages": [msg], "errors": {}}))
}

fn reject_field(field: &str, msg: &str) -> SimReject {
    (400, json!({"errorMessages": [], "errors": {field: msg}}))
}

#[derive(Clone)]
struct AdminHook {
    id: u64,
    name: String,
    description: Option<String>,
    url: String,
    events: Vec<String>,
    jql: String,
    exclude_body: bool,
    enabled: bool,
    secret: Option<String>,
    last_updated: i64,
}

#[derive(Clone)]
struct DynHook {
    id: u64,
    client_id: String,
    account_id: String,
    url: String,
    events: Vec<String>,
    jql: String,
    field_ids: Option<Vec<String>>,
    property_keys: Option<Vec<String>>,
    expires_ms: i64,
}

#[derive(Clone)]
struct Settings {
    enabled: bool,
    retry_delays: Vec<Duration>,
    timeout: Duration,
    dynamic_expiry: Duration,
    clock_offset_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            retry_delays: DEFAULT_RETRY_DELAYS_MS
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            timeout: DEFAULT_TIMEOUT,
            dynamic_expiry: DYNAMIC_EXPIRY,
            clock_offset_ms: 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone)]
struct Attempt {
    retry: u32,
    status: Option<u16>,
    error: Option<String>,
    at_ms: i64,
}

#[derive(Clone)]
struct Delivery {
    identifier: String,
    kind: &'static str,
    webhook_ids: Vec<u64>,
    client_id: Option<String>,
    url: String,
    event: String,
    body: Option<Value>,
    signed: bool,
    state: DeliveryState,
    attempts: Vec<Attempt>,
    created_ms: i64,
}

struct FailedRec {
    client_id: String,
    identifier: String,
    body: String,
    url: String,
    failure_time: i64,
}

struct HubState {
    admin: BTreeMap<u64, AdminHook>,
    next_admin: u64,
    dynamic: BTreeMap<u64, DynHook>,
    next_dynamic: u64,
    /// client id -> client secret (kept across resets: it is configuration).
    apps: HashMap<String, String>,
    /// client id -> owner account of a non-public app (kept across resets).
    owners: HashMap<String, String>,
    base_url: String,
    cloud_id: String,
    settings: Settings,
    deliveries: BTreeMap<u64, Delivery>,
    next_delivery: u64,
    failed: Vec<FailedRec>,
    dropped: u64,
}

impl HubState {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.settings.clock_offset_ms
    }

    fn clear(&mut self) {
        self.admin.clear();
        self.next_admin = 1;
        self.dynamic.clear();
        self.next_dynamic = 10000;
        self.settings = Settings::default();
        self.deliveries.clear();
        self.failed.clear();
        self.dropped = 0;
    }
}

/// Delivery requests in flight at once (the others queue).
const MAX_IN_FLIGHT: usize = 32;
/// How long `GET /rest/api/3/webhook/failed` remembers a failure (Jira: 72 hours).
const FAILED_KEEP_MS: i64 = 72 * 3600 * 1000;

/// Maximum number of deliveries kept in the log; the oldest finished ones go first.
const LOG_CAP: usize = 50_000;

struct Shared {
    state: Mutex<HubState>,
    pending: AtomicU64,
    idle: tokio::sync::Notify,
    client: OnceLock<reqwest::Client>,
    /// Bounds the requests in flight, as Jira's sender does.
    slots: tokio::sync::Semaphore,
}

/// Webhook registrations of one site and their delivery.
pub struct WebhookHub {
    shared: Arc<Shared>,
}

/// What one delivery sends.
struct Job {
    seq: u64,
    url: String,
    body: Vec<u8>,
    hmac_secret: Option<String>,
    jwt: Option<JwtSpec>,
}

struct JwtSpec {
    secret: String,
    issuer: String,
    audience: String,
    subject: String,
}

impl JwtSpec {
    fn token(&self, now_s: i64) -> Option<String> {
        let claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.subject,
            "iat": now_s,
            "exp": now_s + 180,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .ok()
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, the value of `X-Hub-Signature`.
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC accepts keys of any length; this branch cannot be taken.
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookHub {
    /// Delivery runs on tokio tasks spawned lazily by [`publish`](Self::publish).
    pub fn new() -> Arc<Self> {
        let state = HubState {
            admin: BTreeMap::new(),
            next_admin: 1,
            dynamic: BTreeMap::new(),
            next_dynamic: 10000,
            apps: HashMap::new(),
            owners: HashMap::new(),
            base_url: "http://127.0.0.1".into(),
            cloud_id: String::new(),
            settings: Settings::default(),
            deliveries: BTreeMap::new(),
            next_delivery: 1,
            failed: Vec::new(),
            dropped: 0,
        };
        Arc::new(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                pending: AtomicU64::new(0),
                idle: tokio::sync::Notify::new(),
                client: OnceLock::new(),
                slots: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            }),
        })
    }

    /// Registers an OAuth app's client secret (addition): dynamic webhook deliveries
    /// for `client_id` carry a JWT signed with it. Kept across [`reset`](Self::reset).
    pub fn register_app(&self, client_id: &str, client_secret: &str) {
        self.shared
            .state
            .lock()
            .apps
            .insert(client_id.to_string(), client_secret.to_string());
    }

    /// Marks an OAuth app as non-public (addition): as in Jira, its dynamic webhooks
    /// are only delivered when the registering user is the app owner. `None` makes the
    /// app public (the default). Kept across [`reset`](Self::reset).
    pub fn set_app_owner(&self, client_id: &str, owner_account_id: Option<&str>) {
        let mut st = self.shared.state.lock();
        match owner_account_id {
            Some(o) => st.owners.insert(client_id.to_string(), o.to_string()),
            None => st.owners.remove(client_id),
        };
    }

    /// The site this hub serves (addition): `base_url` for `self`/`next` links (e.g.
    /// `http://127.0.0.1:PORT` or `…/site/{slug}`), `cloud_id` as the JWT issuer.
    pub fn set_site(&self, base_url: &str, cloud_id: &str) {
        let mut st = self.shared.state.lock();
        st.base_url = base_url.trim_end_matches('/').to_string();
        st.cloud_id = cloud_id.to_string();
    }

    /// Deliveries not yet finished (including those waiting for a retry).
    pub fn pending_count(&self) -> u64 {
        self.shared.pending.load(Ordering::SeqCst)
    }

    /// Waits until no delivery is pending, at most `timeout`; `true` when idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        wait_idle(&self.shared, timeout).await
    }

    /// Switches deliveries on or off (off: events are dropped, as if Jira sent none).
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.state.lock().settings.enabled = enabled;
    }

    /// Sets the pause before each retry; its length is the number of retries.
    pub fn set_retry_delays(&self, delays: Vec<Duration>) {
        self.shared.state.lock().settings.retry_delays = delays;
    }

    /// Sets the lifetime of dynamic webhooks registered or refreshed from now on.
    pub fn set_dynamic_expiry(&self, expiry: Duration) {
        self.shared.state.lock().settings.dynamic_expiry = expiry;
    }

    /// Moves the hub's clock forward (dynamic webhook expiry).
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
        let mut st = self.shared.state.lock();
        st.settings.clock_offset_ms = st.settings.clock_offset_ms.saturating_add(ms);
    }

    /// Counts for `GET /_sim/stats` (addition): registrations and deliveries by state.
    pub fn stats_json(&self) -> Value {
        let st = self.shared.state.lock();
        let count = |s: DeliveryState| st.deliveries.values().filter(|d| d.state == s).count();
        json!({
            "admin_webhooks": st.admin.len(),
            "dynamic_webhooks": st.dynamic.len(),
            "delivered": count(DeliveryState::Delivered),
            "failed": count(DeliveryState::Failed),
            "pending": self.pending_count(),
            "dropped": st.dropped,
            "attempts": st.deliveries.values().map(|d| d.attempts.len()).sum::<usize>(),
        })
    }

    /// The deliveries log, oldest first, as `GET /_sim/webhooks/deliveries` shows it.
    pub fn deliveries(&self) -> Vec<Value> {
        self.shared
            .state
            .lock()
            .deliveries
            .values()
            .map(delivery_json)
            .collect()
    }

    /// Deliver to every admin webhook whose events+JQL match and to every dynamic one
    /// that matches. `matches(jql)` evaluates a webhook's JQL filter against the event's
    /// issue (the core supplies it). Must be called within a tokio runtime.
    pub fn publish(&self, ev: WebhookEvent, matches: &dyn Fn(&str) -> bool) {
        // Snapshot the candidates, then evaluate JQL without holding the lock.
        let (admin, dynamic, now_ms) = {
            let mut st = self.shared.state.lock();
            if !st.settings.enabled {
                st.dropped += 1;
                return;
            }
            let now_ms = st.now_ms();
            let admin: Vec<AdminHook> = st
                .admin
                .values()
                .filter(|h| h.enabled && h.events.iter().any(|e| e == &ev.event))
                .cloned()
                .collect();
            let dynamic: Vec<DynHook> = st
                .dynamic
                .values()
                .filter(|h| h.expires_ms > now_ms && h.events.iter().any(|e| e == &ev.event))
                // Non-public apps only get webhooks their owner registered.
                .filter(|h| {
                    st.owners
                        .get(&h.client_id)
                        .is_none_or(|owner| *owner == h.account_id)
                })
                .cloned()
                .collect();
            (admin, dynamic, now_ms)
        };
        let admin: Vec<AdminHook> = admin
            .into_iter()
            .filter(|h| h.jql.trim().is_empty() || matches(&h.jql))
            .collect();
        let dynamic: Vec<DynHook> = dynamic
            .into_iter()
            .filter(|h| dynamic_filters_pass(h, &ev))
            .filter(|h| matches(&h.jql))
            .collect();
        if admin.is_empty() && dynamic.is_empty() {
            return;
        }
        let mut jobs = Vec::new();
        {
            let mut st = self.shared.state.lock();
            for h in admin {
                let body = if h.exclude_body {
                    Vec::new()
                } else {
                    serde_json::to_vec(&ev.body).unwrap_or_default()
                };
                let seq = st.next_delivery;
                st.next_delivery += 1;
                st.deliveries.insert(
                    seq,
                    Delivery {
                        identifier: uuid::Uuid::new_v4().to_string(),
                        kind: "admin",
                        webhook_ids: vec![h.id],
                        client_id: None,
                        url: substitute_url(&h.url, &ev.body),
                        event: ev.event.clone(),
                        body: (!h.exclude_body).then(|| ev.body.clone()),
                        signed: h.secret.is_some(),
                        state: DeliveryState::Pending,
                        attempts: Vec::new(),
                        created_ms: now_ms,
                    },
                );
                jobs.push(Job {
                    seq,
                    url: substitute_url(&h.url, &ev.body),
                    body,
                    hmac_secret: h.secret.clone(),
                    jwt: None,
                });
            }
            // One delivery per app, listing every matched webhook of the app.
            let mut by_app: BTreeMap<String, Vec<DynHook>> = BTreeMap::new();
            for h in dynamic {
                by_app.entry(h.client_id.clone()).or_default().push(h);
            }
            for (client_id, hooks) in by_app {
                let ids: Vec<u64> = hooks.iter().map(|h| h.id).collect();
                let mut body = ev.body.clone();
                if let Some(obj) = body.as_object_mut() {
                    obj.insert("matchedWebhookIds".into(), json!(ids));
                }
                let jwt = st.apps.get(&client_id).map(|secret| JwtSpec {
                    secret: secret.clone(),
                    issuer: st.cloud_id.clone(),
                    audience: client_id.clone(),
                    subject: hooks[0].account_id.clone(),
                });
                let seq = st.next_delivery;
                st.next_delivery += 1;
                let url = hooks[0].url.clone();
                st.deliveries.insert(
                    seq,
                    Delivery {
                        identifier: uuid::Uuid::new_v4().to_string(),
                        kind: "dynamic",
                        webhook_ids: ids,
                        client_id: Some(client_id.clone()),
                        url: url.clone(),
                        event: ev.event.clone(),
                        body: Some(body.clone()),
                        signed: jwt.is_some(),
                        state: DeliveryState::Pending,
                        attempts: Vec::new(),
                        created_ms: now_ms,
                    },
                );
                jobs.push(Job {
                    seq,
                    url,
                    body: serde_json::to_vec(&body).unwrap_or_default(),
                    hmac_secret: None,
                    jwt,
                });
            }
            trim_log(&mut st);
            self.shared
                .pending
                .fetch_add(jobs.len() as u64, Ordering::SeqCst);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                for job in jobs {
                    rt.spawn(run_delivery(self.shared.clone(), job));
                }
            }
            Err(_) => {
                for job in jobs {
                    finish(
                        &self.shared,
                        job.seq,
                        DeliveryState::Failed,
                        Some("no tokio runtime to deliver on"),
                    );
                }
            }
        }
    }

    // ---- dynamic webhooks (/rest/api/3/webhook) ----

    /// `POST /rest/api/3/webhook` for an authenticated OAuth app and user. Answers
    /// `ContainerForRegisteredWebhooks` (status 200), per-element errors inside.
    pub fn dynamic_register(
        &self,
        client_id: &str,
        account_id: &str,
        body: &Value,
    ) -> Result<Value, SimReject> {
        let Some(obj) = body.as_object() else {
            return Err(reject(400, "The request body is not a valid JSON object."));
        };
        if let Some(extra) = obj.keys().find(|k| *k != "url" && *k != "webhooks") {
            return Err(reject(
                400,
                &format!("Unrecognized field \"{extra}\" in the request body."),
            ));
        }
        let Some(url) = obj.get("url").and_then(Value::as_str) else {
            return Err(reject_field("url", "The webhook URL is required."));
        };
        if !valid_http_url(url) {
            return Err(reject_field("url", "The webhook URL is invalid."));
        }
        let Some(list) = obj.get("webhooks").and_then(Value::as_array) else {
            return Err(reject_field(
                "webhooks",
                "The list of webhooks is required.",
            ));
        };
        let mut st = self.shared.state.lock();
        let now_ms = st.now_ms();
        if st
            .dynamic
            .values()
            .any(|h| h.client_id == client_id && h.expires_ms > now_ms && h.url != url)
        {
            return Err(reject_field(
                "url",
                "Only a single URL per app is allowed to be registered.",
            ));
        }
        let expiry = duration_ms(st.settings.dynamic_expiry);
        let mut results = Vec::new();
        for item in list {
            match parse_dynamic(item) {
                Err(errors) => results.push(json!({"errors": errors})),
                Ok((events, jql, field_ids, property_keys)) => {
                    let count = st
                        .dynamic
                        .values()
                        .filter(|h| {
                            h.client_id == client_id
                                && h.account_id == account_id
                                && h.expires_ms > now_ms
                        })
                        .count();
                    if count >= DYNAMIC_LIMIT_PER_USER {
                        results.push(json!({"errors": [format!(
                            "The limit of {DYNAMIC_LIMIT_PER_USER} webhooks per app per user has been reached."
                        )]}));
                        continue;
                    }
                    let id = st.next_dynamic;
                    st.next_dynamic += 1;
                    st.dynamic.insert(
                        id,
                        DynHook {
                            id,
                            client_id: client_id.to_string(),
                            account_id: account_id.to_string(),
                            url: url.to_string(),
                            events,
                            jql,
                            field_ids,
                            property_keys,
                            expires_ms: now_ms + expiry,
                        },
                    );
                    results.push(json!({"createdWebhookId": id}));
                }
            }
        }
        Ok(json!({"webhookRegistrationResult": results}))
    }

    /// `GET /rest/api/3/webhook?startAt&maxResults` (`PageBeanWebhook`): the app's live
    /// webhooks. `max_results` 0 means the default (100); at most 100 per page.
    pub fn dynamic_list(&self, client_id: &str, start_at: u64, max_results: u64) -> Value {
        let st = self.shared.state.lock();
        let now_ms = st.now_ms();
        let max = if max_results == 0 {
            100
        } else {
            max_results.min(100)
        };
        let all: Vec<&DynHook> = st
            .dynamic
            .values()
            .filter(|h| h.client_id == client_id && h.expires_ms > now_ms)
            .collect();
        let total = all.len() as u64;
        let values: Vec<Value> = all
            .into_iter()
            .skip(usize::try_from(start_at).unwrap_or(usize::MAX))
            .take(usize::try_from(max).unwrap_or(100))
            .map(dynamic_json)
            .collect();
        let is_last = start_at.saturating_add(values.len() as u64) >= total;
        let mut page = json!({
            "self": format!("{}/rest/api/3/webhook?startAt={start_at}&maxResults={max}", st.base_url),
            "startAt": start_at,
            "maxResults": max,
            "total": total,
            "isLast": is_last,
            "values": values,
        });
        if !is_last {
            page["nextPage"] = json!(format!(
                "{}/rest/api/3/webhook?startAt={}&maxResults={max}",
                st.base_url,
                start_at + max
            ));
        }
        page
    }

    /// `DELETE /rest/api/3/webhook` (`{"webhookIds": [...]}`); the core answers 202.
    /// Ids of other apps are ignored.
    pub fn dynamic_delete(&self, client_id: &str, body: &Value) -> Result<(), SimReject> {
        let ids = webhook_ids(body)?;
        let mut st = self.shared.state.lock();
        st.dynamic
            .retain(|id, h| !(h.client_id == client_id && ids.contains(id)));
        Ok(())
    }

    /// `PUT /rest/api/3/webhook/refresh` (`{"webhookIds": [...]}`) →
    /// `{"expirationDate": <epoch ms>}`. Unknown, expired and other apps' ids are ignored.
    pub fn dynamic_refresh(&self, client_id: &str, body: &Value) -> Result<Value, SimReject> {
        let ids = webhook_ids(body)?;
        let mut st = self.shared.state.lock();
        let now_ms = st.now_ms();
        let until = now_ms + duration_ms(st.settings.dynamic_expiry);
        for h in st.dynamic.values_mut() {
            if h.client_id == client_id && ids.contains(&h.id) && h.expires_ms > now_ms {
                h.expires_ms = until;
            }
        }
        Ok(json!({"expirationDate": until}))
    }

    /// `GET /rest/api/3/webhook/failed?maxResults&after` (`FailedWebhooks`): deliveries
    /// to the app that exhausted their retries, oldest first. Jira restricts this
    /// operation to Connect apps; the core decides whether to answer 403 instead.
    pub fn dynamic_failed(&self, client_id: &str, max_results: u64, after: Option<i64>) -> Value {
        let st = self.shared.state.lock();
        let now_ms = st.now_ms();
        let max = if max_results == 0 {
            100
        } else {
            max_results.min(100)
        };
        let mut values: Vec<&FailedRec> = st
            .failed
            .iter()
            .filter(|f| f.client_id == client_id && after.is_none_or(|a| f.failure_time > a))
            .filter(|f| f.failure_time > now_ms - FAILED_KEEP_MS)
            .collect();
        values.sort_by_key(|f| f.failure_time);
        let mut page: Vec<&FailedRec> = Vec::new();
        for f in values {
            // Records with the same failure time are never split across pages.
            if page.len() as u64 >= max
                && page.last().map(|l| l.failure_time) != Some(f.failure_time)
            {
                break;
            }
            page.push(f);
        }
        let mut out = json!({
            "maxResults": max,
            "values": page.iter().map(|f| json!({
                "id": f.identifier,
                "body": f.body,
                "url": f.url,
                "failureTime": f.failure_time,
            })).collect::<Vec<_>>(),
        });
        if let Some(last) = page.last() {
            out["next"] = json!(format!(
                "{}/rest/api/3/webhook/failed?failedAfter={}&maxResults={max}",
                st.base_url, last.failure_time
            ));
        }
        out
    }

    // ---- admin webhooks (/rest/webhooks/1.0/webhook) ----

    /// `POST /rest/webhooks/1.0/webhook`; the core answers 201 with the returned bean.
    pub fn admin_create(&self, body: &Value) -> Result<Value, SimReject> {
        let mut st = self.shared.state.lock();
        let id = st.next_admin;
        let now = st.now_ms();
        let hook = admin_from_body(id, body, None, now)?;
        st.next_admin += 1;
        let out = admin_json(&hook, &st.base_url);
        st.admin.insert(id, hook);
        Ok(out)
    }

    /// `GET /rest/webhooks/1.0/webhook`: every admin webhook (array of beans).
    pub fn admin_list(&self) -> Value {
        let st = self.shared.state.lock();
        Value::Array(
            st.admin
                .values()
                .map(|h| admin_json(h, &st.base_url))
                .collect(),
        )
    }

    /// `GET /rest/webhooks/1.0/webhook/{id}`.
    pub fn admin_get(&self, id: u64) -> Result<Value, SimReject> {
        let st = self.shared.state.lock();
        st.admin
            .get(&id)
            .map(|h| admin_json(h, &st.base_url))
            .ok_or_else(admin_not_found)
    }

    /// `PUT /rest/webhooks/1.0/webhook/{id}`: fields given replace the stored ones; a
    /// `secret` given replaces the secret (`""` removes it).
    pub fn admin_update(&self, id: u64, body: &Value) -> Result<Value, SimReject> {
        let mut st = self.shared.state.lock();
        let now = st.now_ms();
        let Some(old) = st.admin.get(&id).cloned() else {
            return Err(admin_not_found());
        };
        let hook = admin_from_body(id, body, Some(&old), now)?;
        let out = admin_json(&hook, &st.base_url);
        st.admin.insert(id, hook);
        Ok(out)
    }

    /// `DELETE /rest/webhooks/1.0/webhook/{id}`; the core answers 204.
    pub fn admin_delete(&self, id: u64) -> Result<(), SimReject> {
        let mut st = self.shared.state.lock();
        st.admin.remove(&id).map(|_| ()).ok_or_else(admin_not_found)
    }

    /// Control routes mounted at `/_sim/webhooks`:
    ///
    /// * `GET /deliveries[?event=&state=&kind=]` — the deliveries log, oldest first;
    ///   `DELETE /deliveries` — forgets finished deliveries;
    /// * `GET /pending[?wait_ms=N]` — `{"pending": n, "idle": bool}`; with `wait_ms` it
    ///   waits (at most N ms) until no delivery is pending;
    /// * `GET /settings`, `PUT /settings` — any of `{"enabled": bool, "retry_delays_ms":
    ///   [..], "timeout_ms": n, "dynamic_expiry_secs": n}`;
    /// * `GET /admin`, `GET /dynamic` — registrations (admin secrets never shown);
    /// * `POST /dynamic/expire` — `{"webhookIds": [..]}` (absent: all) expire now;
    /// * `POST /advance` — `{"seconds": n}` moves the hub clock forward;
    /// * `GET /failed` — deliveries that exhausted their retries;
    /// * `PUT /app-owner` — `{"client_id", "owner_account_id": "…" | null}`: a
    ///   non-public app only gets webhooks registered by its owner;
    /// * `POST /reset` — forgets registrations, deliveries and settings.
    pub fn control_router(self: &Arc<Self>) -> Router {
        self.control_router_for()
    }

    /// [`control_router`](Self::control_router) for a parent router with state `S`
    /// (addition): `nest("/_sim/webhooks", hub.control_router_for())`.
    pub fn control_router_for<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route(
                "/deliveries",
                get(ctl_deliveries).delete(ctl_clear_deliveries),
            )
            .route("/pending", get(ctl_pending))
            .route("/settings", get(ctl_get_settings).put(ctl_put_settings))
            .route("/admin", get(ctl_admin))
            .route("/dynamic", get(ctl_dynamic))
            .route("/dynamic/expire", post(ctl_expire))
            .route("/advance", post(ctl_advance))
            .route("/failed", get(ctl_failed))
            .route("/app-owner", axum::routing::put(ctl_app_owner))
            .route("/reset", post(ctl_reset))
            .with_state(self.clone())
    }

    /// Forgets registrations, deliveries (in-flight ones finish unrecorded) and settings;
    /// keeps the registered apps and the site.
    pub fn reset(&self) {
        self.shared.state.lock().clear();
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn admin_not_found() -> SimReject {
    reject(404, "Webhook not found.")
}

fn valid_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .map(|u| (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some())
        .unwrap_or(false)
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn webhook_ids(body: &Value) -> Result<Vec<u64>, SimReject> {
    let Some(arr) = body.get("webhookIds").and_then(Value::as_array) else {
        return Err(reject_field(
            "webhookIds",
            "The list of webhook IDs is required.",
        ));
    };
    arr.iter()
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| reject_field("webhookIds", "Webhook IDs must be numbers."))
        })
        .collect()
}

type DynParts = (
    Vec<String>,
    String,
    Option<Vec<String>>,
    Option<Vec<String>>,
);

fn parse_dynamic(item: &Value) -> Result<DynParts, Vec<String>> {
    let mut errors = Vec::new();
    let Some(obj) = item.as_object() else {
        return Err(vec!["The webhook details are not a JSON object.".into()]);
    };
    for k in obj.keys() {
        if ![
            "events",
            "jqlFilter",
            "fieldIdsFilter",
            "issuePropertyKeysFilter",
        ]
        .contains(&k.as_str())
        {
            errors.push(format!("Unrecognized field \"{k}\"."));
        }
    }
    let events = obj.get("events").and_then(str_list);
    match &events {
        None => errors.push("The list of events is required.".into()),
        Some(ev) if ev.is_empty() => errors.push("The list of events must not be empty.".into()),
        Some(ev) => {
            for e in ev {
                if !DYNAMIC_EVENTS.contains(&e.as_str()) {
                    errors.push(format!(
                        "The event {e} is not supported for webhooks registered by OAuth 2.0 apps."
                    ));
                }
            }
        }
    }
    let jql = obj
        .get("jqlFilter")
        .and_then(Value::as_str)
        .map(str::to_string);
    match &jql {
        None => errors.push("The JQL filter is required.".into()),
        Some(j) => {
            if let Err(e) = validate_dynamic_jql(j) {
                errors.push(e);
            }
        }
    }
    let field_ids = match obj.get("fieldIdsFilter") {
        None | Some(Value::Null) => None,
        Some(v) => match str_list(v) {
            Some(l) => Some(l),
            None => {
                errors.push("fieldIdsFilter must be a list of field IDs.".into());
                None
            }
        },
    };
    let property_keys = match obj.get("issuePropertyKeysFilter") {
        None | Some(Value::Null) => None,
        Some(v) => match str_list(v) {
            Some(l) => Some(l),
            None => {
                errors.push("issuePropertyKeysFilter must be a list of property keys.".into());
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        events.unwrap_or_default(),
        jql.unwrap_or_default(),
        field_ids,
        property_keys,
    ))
}

fn dynamic_filters_pass(h: &DynHook, ev: &WebhookEvent) -> bool {
    if ev.event == "jira:issue_updated" {
        if let Some(fields) = &h.field_ids {
            let items = ev
                .body
                .pointer("/changelog/items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let hit = items.iter().any(|it| {
                ["fieldId", "field"].iter().any(|k| {
                    it.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|f| fields.iter().any(|x| x == f))
                })
            });
            if !hit {
                return false;
            }
        }
    }
    if ev.event.starts_with("issue_property_") {
        if let Some(keys) = &h.property_keys {
            let key = ev
                .body
                .pointer("/property/key")
                .or_else(|| ev.body.get("propertyKey"))
                .and_then(Value::as_str);
            if !key.is_some_and(|k| keys.iter().any(|x| x == k)) {
                return false;
            }
        }
    }
    true
}

fn dynamic_json(h: &DynHook) -> Value {
    let mut v = json!({
        "id": h.id,
        "events": h.events,
        "jqlFilter": h.jql,
        "expirationDate": h.expires_ms,
        "url": h.url,
    });
    if let Some(f) = &h.field_ids {
        v["fieldIdsFilter"] = json!(f);
    }
    if let Some(k) = &h.property_keys {
        v["issuePropertyKeysFilter"] = json!(k);
    }
    v
}

fn admin_from_body(
    id: u64,
    body: &Value,
    old: Option<&AdminHook>,
    now_ms: i64,
) -> Result<AdminHook, SimReject> {
    let Some(obj) = body.as_object() else {
        return Err(reject(400, "The request body is not a valid JSON object."));
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => return Err(reject_field("name", "The webhook name must not be empty.")),
        None => match old {
            Some(o) => o.name.clone(),
            None => return Err(reject_field("name", "The webhook name is required.")),
        },
    };
    let url = match obj.get("url") {
        Some(Value::String(s)) if valid_http_url(s) => s.clone(),
        Some(_) => return Err(reject_field("url", "The webhook URL is invalid.")),
        None => match old {
            Some(o) => o.url.clone(),
            None => return Err(reject_field("url", "The webhook URL is required.")),
        },
    };
    let events = match obj.get("events") {
        Some(v) => match str_list(v) {
            Some(l)
                if l.iter().all(|e| {
                    !e.is_empty()
                        && e.chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':')
                }) =>
            {
                l
            }
            _ => {
                return Err(reject_field(
                    "events",
                    "The events must be a list of event names.",
                ))
            }
        },
        None => old.map(|o| o.events.clone()).unwrap_or_default(),
    };
    let jql = match obj.get("filters") {
        Some(Value::Object(f)) => match f.get("issue-related-events-section") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => {
                return Err(reject_field(
                    "filters",
                    "The issue-related-events-section filter must be a JQL string.",
                ))
            }
        },
        Some(Value::Null) => String::new(),
        Some(_) => return Err(reject_field("filters", "The filters must be an object.")),
        None => old.map(|o| o.jql.clone()).unwrap_or_default(),
    };
    let flag = |key: &str, default: bool| -> Result<bool, SimReject> {
        match obj.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(reject_field(key, "The value must be a boolean.")),
        }
    };
    let exclude_body = flag("excludeBody", old.is_some_and(|o| o.exclude_body))?;
    let enabled = flag("enabled", old.is_none_or(|o| o.enabled))?;
    let secret = match obj.get("secret") {
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) => None,
        Some(_) => return Err(reject_field("secret", "The secret must be a string.")),
        None => old.and_then(|o| o.secret.clone()),
    };
    let description = match obj.get("description") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => old.and_then(|o| o.description.clone()),
    };
    Ok(AdminHook {
        id,
        name,
        description,
        url,
        events,
        jql,
        exclude_body,
        enabled,
        secret,
        last_updated: now_ms,
    })
}

fn admin_json(h: &AdminHook, base_url: &str) -> Value {
    let mut v = json!({
        "name": h.name,
        "url": h.url,
        "excludeBody": h.exclude_body,
        "filters": {"issue-related-events-section": h.jql},
        "events": h.events,
        "enabled": h.enabled,
        "self": format!("{base_url}/rest/webhooks/1.0/webhook/{}", h.id),
        "lastUpdatedUser": "admin",
        "lastUpdatedDisplayName": "Administrator",
        "lastUpdated": h.last_updated,
    });
    if let Some(d) = &h.description {
        v["description"] = json!(d);
    }
    v
}

/// Replaces Jira's URL variables (`${issue.id}`, `${issue.key}`, `${project.id}`,
/// `${project.key}`) with values from the payload.
fn substitute_url(url: &str, body: &Value) -> String {
    if !url.contains("${") {
        return url.to_string();
    }
    let get = |p: &str| {
        body.pointer(p)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .unwrap_or_default()
    };
    url.replace("${issue.id}", &get("/issue/id"))
        .replace("${issue.key}", &get("/issue/key"))
        .replace("${project.id}", &get("/issue/fields/project/id"))
        .replace("${project.key}", &get("/issue/fields/project/key"))
}

fn trim_log(st: &mut HubState) {
    if st.deliveries.len() <= LOG_CAP {
        return;
    }
    let excess = st.deliveries.len() - LOG_CAP;
    let old: Vec<u64> = st
        .deliveries
        .iter()
        .filter(|(_, d)| d.state != DeliveryState::Pending)
        .take(excess)
        .map(|(k, _)| *k)
        .collect();
    for k in old {
        st.deliveries.remove(&k);
    }
}

fn client(shared: &Shared) -> &reqwest::Client {
    shared.client.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("Atlassian Webhook HTTP Client")
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

fn retriable(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429) || status >= 500
}

async fn run_delivery(shared: Arc<Shared>, job: Job) {
    let mut retry: u32 = 0;
    loop {
        let (identifier, timeout, delays) = {
            let st = shared.state.lock();
            let Some(d) = st.deliveries.get(&job.seq) else {
                // Forgotten by a reset: stop quietly.
                drop(st);
                finish(&shared, job.seq, DeliveryState::Failed, None);
                return;
            };
            (
                d.identifier.clone(),
                st.settings.timeout,
                st.settings.retry_delays.clone(),
            )
        };
        let mut req = client(&shared)
            .post(&job.url)
            .timeout(timeout)
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("X-Atlassian-Webhook-Identifier", &identifier)
            .header("X-Atlassian-Webhook-Flow", "Primary")
            .body(job.body.clone());
        if retry > 0 {
            req = req.header("X-Atlassian-Webhook-Retry", retry.to_string());
        }
        if let Some(secret) = &job.hmac_secret {
            req = req.header("X-Hub-Signature", hub_signature(secret, &job.body));
        }
        if let Some(jwt) = &job.jwt {
            // Receivers check `exp` against their own clock: use the real one.
            if let Some(token) = jwt.token(chrono::Utc::now().timestamp()) {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
        }
        let permit = shared.slots.acquire().await.ok();
        let sent = req.send().await;
        drop(permit);
        let (status, error) = match sent {
            Ok(resp) => (Some(resp.status().as_u16()), None),
            Err(e) => (
                None,
                Some(if e.is_timeout() {
                    "timeout".to_string()
                } else {
                    "connection failed".to_string()
                }),
            ),
        };
        {
            let mut st = shared.state.lock();
            let at_ms = st.now_ms();
            if let Some(d) = st.deliveries.get_mut(&job.seq) {
                d.attempts.push(Attempt {
                    retry,
                    status,
                    error: error.clone(),
                    at_ms,
                });
            }
        }
        if status.is_some_and(|s| (200..300).contains(&s)) {
            finish(&shared, job.seq, DeliveryState::Delivered, None);
            return;
        }
        let again = status.is_none_or(retriable);
        let idx = usize::try_from(retry).unwrap_or(usize::MAX);
        if !again || idx >= delays.len() {
            finish(&shared, job.seq, DeliveryState::Failed, None);
            return;
        }
        tokio::time::sleep(delays[idx]).await;
        retry += 1;
    }
}

/// Records the end of a delivery and wakes waiters when nothing is pending any more.
fn finish(shared: &Shared, seq: u64, state: DeliveryState, error: Option<&str>) {
    {
        let mut st = shared.state.lock();
        let now_ms = st.now_ms();
        let mut failed = None;
        if let Some(d) = st.deliveries.get_mut(&seq) {
            d.state = state;
            if let Some(e) = error {
                d.attempts.push(Attempt {
                    retry: 0,
                    status: None,
                    error: Some(e.to_string()),
                    at_ms: now_ms,
                });
            }
            if state == DeliveryState::Failed {
                if let Some(client_id) = &d.client_id {
                    failed = Some(FailedRec {
                        client_id: client_id.clone(),
                        identifier: d.identifier.clone(),
                        body: d.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
                        url: d.url.clone(),
                        failure_time: now_ms,
                    });
                }
            }
        }
        if let Some(f) = failed {
            st.failed.push(f);
        }
    }
    if shared.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
        shared.idle.notify_waiters();
    }
}

async fn wait_idle(shared: &Shared, timeout: Duration) -> bool {
    let wait = async {
        loop {
            let notified = shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(timeout, wait).await.is_ok()
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "identifier": d.identifier,
        "kind": d.kind,
        "webhookIds": d.webhook_ids,
        "clientId": d.client_id,
        "url": d.url,
        "event": d.event,
        "state": d.state.as_str(),
        "signed": d.signed,
        "created": d.created_ms,
        "attempts": d.attempts.iter().map(|a| json!({
            "retry": a.retry,
            "status": a.status,
            "error": a.error,
            "at": a.at_ms,
        })).collect::<Vec<_>>(),
        "body": d.body,
    })
}

// ---- dynamic webhook JQL subset ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(String),
}

fn tokenize(jql: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = jql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("The JQL filter has an unterminated string.".into()),
                    Some('\\') => {
                        if let Some(n) = chars.get(i + 1) {
                            s.push(*n);
                        }
                        i += 2;
                    }
                    Some(ch) if *ch == c => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if "=!~<>".contains(c) {
            let mut op = c.to_string();
            if let Some('=' | '~') = chars.get(i + 1) {
                if c != '=' {
                    op.push(chars[i + 1]);
                }
            }
            i += op.chars().count();
            out.push(Tok::Op(op));
        } else {
            let mut s = String::new();
            while i < chars.len() {
                let ch = chars[i];
                if ch.is_whitespace() || "(),=!~<>\"'".contains(ch) {
                    // `cf[10014]` and `issue.property[key].path` keep their brackets.
                    break;
                }
                s.push(ch);
                i += 1;
            }
            out.push(Tok::Word(s));
        }
    }
    Ok(out)
}

struct JqlCheck {
    toks: Vec<Tok>,
    pos: usize,
}

impl JqlCheck {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<(), String> {
        self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            self.and()?;
        }
        Ok(())
    }

    fn and(&mut self) -> Result<(), String> {
        self.not()?;
        while self.peek_word("and") {
            self.pos += 1;
            self.not()?;
        }
        Ok(())
    }

    fn not(&mut self) -> Result<(), String> {
        if self.peek_word("not") {
            self.pos += 1;
            return self.not();
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            self.or()?;
            return match self.next() {
                Some(Tok::RParen) => Ok(()),
                _ => Err("The JQL filter has an unbalanced parenthesis.".into()),
            };
        }
        self.clause()
    }

    fn clause(&mut self) -> Result<(), String> {
        let field = match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => w,
            _ => return Err("The JQL filter is not valid: a field name was expected.".into()),
        };
        if field.eq_ignore_ascii_case("order") {
            return Err("The ORDER BY clause is unsupported".into());
        }
        let lower = field.to_ascii_lowercase();
        let supported = [
            "issuekey",
            "key",
            "project",
            "issuetype",
            "type",
            "status",
            "assignee",
            "reporter",
        ]
        .contains(&lower.as_str())
            || (lower.starts_with("cf[") && lower.ends_with(']'))
            || lower.starts_with("issue.property[");
        if !supported {
            return Err(format!("The clause {field} is unsupported"));
        }
        let list = match self.next() {
            Some(Tok::Op(op)) if op == "=" || op == "!=" => false,
            Some(Tok::Op(op)) => return Err(format!("The operator '{op}' is unsupported")),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => true,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") && self.peek_word("in") => {
                self.pos += 1;
                true
            }
            Some(Tok::Word(w)) => return Err(format!("The operator '{w}' is unsupported")),
            _ => {
                return Err(format!(
                    "The JQL filter is not valid: an operator was expected after {field}."
                ))
            }
        };
        if list {
            if self.next() != Some(Tok::LParen) {
                return Err("The JQL filter is not valid: a list was expected after IN.".into());
            }
            loop {
                self.value()?;
                match self.next() {
                    Some(Tok::Comma) => continue,
                    Some(Tok::RParen) => break,
                    _ => return Err("The JQL filter is not valid: unterminated list.".into()),
                }
            }
            Ok(())
        } else {
            self.value()
        }
    }

    fn value(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Tok::Str(_)) => Ok(()),
            Some(Tok::Word(w)) => {
                let lower = w.to_ascii_lowercase();
                if ["and", "or", "not", "in"].contains(&lower.as_str()) {
                    return Err(format!("The JQL filter is not valid: unexpected {w}."));
                }
                // A function call such as currentUser().
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    while !matches!(self.peek(), Some(Tok::RParen) | None) {
                        self.pos += 1;
                    }
                    if self.next() != Some(Tok::RParen) {
                        return Err("The JQL filter has an unbalanced parenthesis.".into());
                    }
                }
                Ok(())
            }
            _ => Err("The JQL filter is not valid: a value was expected.".into()),
        }
    }
}

/// Checks a dynamic webhook's `jqlFilter` against the subset Jira supports there:
/// fields `issueKey`, `project`, `issuetype`, `status`, `assignee`, `reporter`,
/// `issue.property[…]`, `cf[id]`; operators `=`, `!=`, `IN`, `NOT IN`; `AND`, `OR`, `NOT`
/// and parentheses. The error reads like Jira's (`The clause watchCount is unsupported`).
pub fn validate_dynamic_jql(jql: &str) -> Result<(), String> {
    if jql.trim().is_empty() {
        return Err("The JQL filter must not be empty.".into());
    }
    let toks = tokenize(jql)?;
    let mut p = JqlCheck { toks, pos: 0 };
    p.or()?;
    match p.peek() {
        None => Ok(()),
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("order") => {
            Err("The ORDER BY clause is unsupported".into())
        }
        Some(_) => Err("The JQL filter is not valid: unexpected input after a clause.".into()),
    }
}

// ---- control ----

type Reply = (StatusCode, Json<Value>);

fn ctl_bad(msg: &str) -> Reply {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorMessages": [msg], "errors": {}})),
    )
}

async fn ctl_deliveries(
    State(hub): State<Arc<WebhookHub>>,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    let st = hub.shared.state.lock();
    let list: Vec<Value> = st
        .deliveries
        .values()
        .filter(|d| q.get("event").is_none_or(|e| *e == d.event))
        .filter(|d| q.get("state").is_none_or(|s| s == d.state.as_str()))
        .filter(|d| q.get("kind").is_none_or(|k| k == d.kind))
        .map(delivery_json)
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "total": list.len(),
            "pending": hub.pending_count(),
            "dropped": st.dropped,
            "deliveries": list,
        })),
    )
}

async fn ctl_clear_deliveries(State(hub): State<Arc<WebhookHub>>) -> Reply {
    let mut st = hub.shared.state.lock();
    let before = st.deliveries.len();
    st.deliveries
        .retain(|_, d| d.state == DeliveryState::Pending);
    let removed = before - st.deliveries.len();
    (StatusCode::OK, Json(json!({"removed": removed})))
}

async fn ctl_pending(
    State(hub): State<Arc<WebhookHub>>,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    if let Some(ms) = q.get("wait_ms") {
        let Ok(ms) = ms.parse::<u64>() else {
            return ctl_bad("wait_ms must be a number of milliseconds");
        };
        hub.wait_idle(Duration::from_millis(ms.min(120_000))).await;
    }
    let n = hub.pending_count();
    (StatusCode::OK, Json(json!({"pending": n, "idle": n == 0})))
}

fn settings_json(s: &Settings) -> Value {
    json!({
        "enabled": s.enabled,
        "retry_delays_ms": s.retry_delays.iter().map(|d| duration_ms(*d)).collect::<Vec<_>>(),
        "timeout_ms": duration_ms(s.timeout),
        "dynamic_expiry_secs": s.dynamic_expiry.as_secs(),
        "clock_offset_ms": s.clock_offset_ms,
    })
}

async fn ctl_get_settings(State(hub): State<Arc<WebhookHub>>) -> Reply {
    let st = hub.shared.state.lock();
    (StatusCode::OK, Json(settings_json(&st.settings)))
}

async fn ctl_put_settings(State(hub): State<Arc<WebhookHub>>, Json(body): Json<Value>) -> Reply {
    let mut next = hub.shared.state.lock().settings.clone();
    if let Some(v) = body.get("enabled") {
        let Some(b) = v.as_bool() else {
            return ctl_bad("enabled must be a boolean");
        };
        next.enabled = b;
    }
    if let Some(v) = body.get("retry_delays_ms") {
        let Some(list) = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
        else {
            return ctl_bad("retry_delays_ms must be a list of milliseconds");
        };
        next.retry_delays = list.into_iter().map(Duration::from_millis).collect();
    }
    if let Some(v) = body.get("timeout_ms") {
        let Some(ms) = v.as_u64().filter(|ms| *ms > 0) else {
            return ctl_bad("timeout_ms must be a positive number of milliseconds");
        };
        next.timeout = Duration::from_millis(ms);
    }
    if let Some(v) = body.get("dynamic_expiry_secs") {
        let Some(s) = v.as_u64() else {
            return ctl_bad("dynamic_expiry_secs must be a number of seconds");
        };
        next.dynamic_expiry = Duration::from_secs(s);
    }
    let mut st = hub.shared.state.lock();
    next.clock_offset_ms = st.settings.clock_offset_ms;
    st.settings = next;
    (StatusCode::OK, Json(settings_json(&st.settings)))
}

async fn ctl_admin(State(hub): State<Arc<WebhookHub>>) -> Reply {
    let st = hub.shared.state.lock();
    let list: Vec<Value> = st
        .admin
        .iter()
        .map(|(id, h)| {
            let mut v = admin_json(h, &st.base_url);
            v["id"] = json!(id);
            v["hasSecret"] = json!(h.secret.is_some());
            v
        })
        .collect();
    (StatusCode::OK, Json(Value::Array(list)))
}

async fn ctl_dynamic(State(hub): State<Arc<WebhookHub>>) -> Reply {
    let st = hub.shared.state.lock();
    let now = st.now_ms();
    let list: Vec<Value> = st
        .dynamic
        .values()
        .map(|h| {
            let mut v = dynamic_json(h);
            v["clientId"] = json!(h.client_id);
            v["accountId"] = json!(h.account_id);
            v["expired"] = json!(h.expires_ms <= now);
            v
        })
        .collect();
    (StatusCode::OK, Json(Value::Array(list)))
}

async fn ctl_expire(State(hub): State<Arc<WebhookHub>>, body: axum::body::Bytes) -> Reply {
    let ids: Option<Vec<u64>> = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("webhookIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
    });
    let mut st = hub.shared.state.lock();
    let now = st.now_ms();
    let mut n = 0;
    for h in st.dynamic.values_mut() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&h.id)) && h.expires_ms > now {
            h.expires_ms = now;
            n += 1;
        }
    }
    (StatusCode::OK, Json(json!({"expired": n})))
}

async fn ctl_advance(State(hub): State<Arc<WebhookHub>>, Json(body): Json<Value>) -> Reply {
    let Some(secs) = body
        .get("seconds")
        .and_then(Value::as_u64)
        .filter(|s| *s <= 3_153_600_000)
    else {
        return ctl_bad("seconds must be an integer between 0 and 3153600000");
    };
    hub.advance_clock(Duration::from_secs(secs));
    let st = hub.shared.state.lock();
    (
        StatusCode::OK,
        Json(json!({"clock_offset_ms": st.settings.clock_offset_ms})),
    )
}

async fn ctl_failed(State(hub): State<Arc<WebhookHub>>) -> Reply {
    let st = hub.shared.state.lock();
    let list: Vec<Value> = st
        .failed
        .iter()
        .map(|f| {
            json!({
                "clientId": f.client_id,
                "id": f.identifier,
                "url": f.url,
                "failureTime": f.failure_time,
                "body": f.body,
            })
        })
        .collect();
    (StatusCode::OK, Json(Value::Array(list)))
}

async fn ctl_app_owner(State(hub): State<Arc<WebhookHub>>, Json(body): Json<Value>) -> Reply {
    let Some(client_id) = body.get("client_id").and_then(Value::as_str) else {
        return ctl_bad("client_id is required");
    };
    let owner = match body.get("owner_account_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return ctl_bad("owner_account_id must be a string or null"),
    };
    hub.set_app_owner(client_id, owner);
    (
        StatusCode::OK,
        Json(json!({"client_id": client_id, "owner_account_id": owner})),
    )
}

async fn ctl_reset(State(hub): State<Arc<WebhookHub>>) -> Reply {
    hub.reset();
    (StatusCode::OK, Json(json!({"reset": true})))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use sha2::Digest;
    use std::sync::atomic::AtomicUsize;

    const APP: &str = "app-client";
    const APP_SECRET: &str = "app-client-secret";
    const WAIT: Duration = Duration::from_secs(10);

    struct Received {
        path: String,
        headers: HeaderMap,
        body: Bytes,
    }

    #[derive(Clone)]
    struct Receiver {
        got: Arc<Mutex<Vec<Received>>>,
        fail_first: Arc<AtomicUsize>,
        fail_status: u16,
    }

    /// An HTTP receiver on 127.0.0.1:0 that answers `fail_status` to its first
    /// `fail_first` requests (0: never answers them) and 200 afterwards.
    async fn receiver(fail_first: usize, fail_status: u16) -> (String, Receiver) {
        let r = Receiver {
            got: Arc::new(Mutex::new(Vec::new())),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            fail_status,
        };
        let handler = |State(r): State<Receiver>,
                       uri: axum::http::Uri,
                       headers: HeaderMap,
                       body: Bytes| async move {
            r.got.lock().push(Received {
                path: uri.path().to_string(),
                headers,
                body,
            });
            let fail = r
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if fail && r.fail_status == 0 {
                // Never answers: the sender's timeout has to fire.
                std::future::pending::<()>().await;
            }
            if fail {
                StatusCode::from_u16(r.fail_status).unwrap()
            } else {
                StatusCode::OK
            }
        };
        let app = Router::new()
            .route("/{*rest}", post(handler))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), r)
    }

    async fn control(hub: &Arc<WebhookHub>) -> String {
        let app = Router::new().nest("/_sim/webhooks", hub.control_router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/_sim/webhooks")
    }

    fn hub() -> Arc<WebhookHub> {
        let hub = WebhookHub::new();
        hub.register_app(APP, APP_SECRET);
        hub.set_site("http://127.0.0.1:1", "cloud-1");
        hub
    }

    fn issue_event(event: &str, key: &str, project: &str) -> WebhookEvent {
        WebhookEvent {
            event: event.into(),
            body: json!({
                "timestamp": 1_790_000_000_000_i64,
                "webhookEvent": event,
                "issue_event_type_name": "issue_generic",
                "user": {"accountId": "acc-9", "displayName": "Ann"},
                "issue": {"id": "10001", "key": key, "fields": {"project": {"id": "100", "key": project}}},
                "changelog": {"id": "5", "items": [{"field": "status", "fieldtype": "jira", "fieldId": "status",
                    "from": "1", "fromString": "To Do", "to": "3", "toString": "In Progress"}]},
            }),
        }
    }

    /// The core's JQL evaluation for an issue of `project`, reduced to what these tests
    /// register.
    fn project_is(project: &'static str) -> impl Fn(&str) -> bool {
        move |jql: &str| {
            jql == format!("project = {project}") || jql == format!("project IN ({project}, ZZZ)")
        }
    }

    /// HMAC-SHA256 written out from RFC 2104, independent of the `hmac` crate.
    fn reference_hmac(key: &[u8], msg: &[u8]) -> String {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::digest([ipad.as_slice(), msg].concat());
        hex::encode(Sha256::digest([opad.as_slice(), inner.as_slice()].concat()))
    }

    #[test]
    fn reference_hmac_matches_rfc_4231() {
        assert_eq!(
            reference_hmac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn admin_webhook_delivers_signed_body_to_matching_hooks_only() {
        let (url, rx) = receiver(0, 500).await;
        let hub = hub();
        let secret = "s3cr3t-value";
        let created = hub
            .admin_create(&json!({
                "name": "signed", "url": format!("{url}/hook/${{issue.key}}"),
                "events": ["jira:issue_updated"],
                "filters": {"issue-related-events-section": "project = ALPHA"},
                "excludeBody": false, "secret": secret,
            }))
            .unwrap();
        assert!(created.get("secret").is_none(), "the secret is write-once");
        assert_eq!(
            created["self"],
            "http://127.0.0.1:1/rest/webhooks/1.0/webhook/1"
        );
        assert_eq!(
            created["filters"]["issue-related-events-section"],
            "project = ALPHA"
        );
        hub.admin_create(&json!({
            "name": "other project", "url": format!("{url}/other"),
            "events": ["jira:issue_updated"],
            "filters": {"issue-related-events-section": "project = BETA"},
        }))
        .unwrap();
        hub.admin_create(&json!({
            "name": "bodiless", "url": format!("{url}/nobody"),
            "events": ["jira:issue_updated"], "excludeBody": true,
        }))
        .unwrap();
        hub.admin_create(&json!({
            "name": "created only", "url": format!("{url}/created"),
            "events": ["jira:issue_created"],
        }))
        .unwrap();

        hub.publish(
            issue_event("jira:issue_updated", "ALPHA-7", "ALPHA"),
            &project_is("ALPHA"),
        );
        assert!(hub.wait_idle(WAIT).await);
        let got = rx.got.lock();
        let mut paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, vec!["/hook/ALPHA-7", "/nobody"]);

        let signed = got.iter().find(|r| r.path == "/hook/ALPHA-7").unwrap();
        let header = signed.headers["x-hub-signature"].to_str().unwrap();
        let (method, sig) = header.split_once('=').unwrap();
        assert_eq!(method, "sha256");
        assert_eq!(sig, reference_hmac(secret.as_bytes(), &signed.body));
        let body: Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(body["issue"]["key"], "ALPHA-7");
        assert!(body.get("matchedWebhookIds").is_none());
        assert!(signed
            .headers
            .contains_key("x-atlassian-webhook-identifier"));
        assert!(!signed.headers.contains_key("x-atlassian-webhook-retry"));

        let bodiless = got.iter().find(|r| r.path == "/nobody").unwrap();
        assert!(bodiless.body.is_empty());
        assert!(!bodiless.headers.contains_key("x-hub-signature"));
    }

    #[tokio::test]
    async fn admin_crud_and_validation() {
        let hub = hub();
        let e = hub
            .admin_create(&json!({"url": "http://127.0.0.1:9/x"}))
            .unwrap_err();
        assert_eq!(e.0, 400);
        assert!(e.1["errors"]["name"].is_string());
        let e = hub
            .admin_create(&json!({"name": "n", "url": "not a url"}))
            .unwrap_err();
        assert_eq!(e.0, 400);
        let a = hub
            .admin_create(&json!({"name": "a", "url": "http://127.0.0.1:9/a", "events": ["jira:issue_created"]}))
            .unwrap();
        assert_eq!(a["enabled"], true);
        let updated = hub
            .admin_update(1, &json!({"enabled": false, "events": ["comment_created"]}))
            .unwrap();
        assert_eq!(updated["name"], "a");
        assert_eq!(updated["enabled"], false);
        assert_eq!(updated["events"], json!(["comment_created"]));
        assert_eq!(hub.admin_get(1).unwrap()["enabled"], false);
        assert_eq!(hub.admin_list().as_array().unwrap().len(), 1);
        hub.admin_delete(1).unwrap();
        assert_eq!(hub.admin_get(1).unwrap_err().0, 404);
        assert_eq!(hub.admin_delete(1).unwrap_err().0, 404);
        assert_eq!(hub.admin_update(1, &json!({})).unwrap_err().0, 404);
    }

    fn reg(jql: &str, events: &[&str]) -> Value {
        json!({"events": events, "jqlFilter": jql})
    }

    #[tokio::test]
    async fn dynamic_registration_limits_and_refused_events() {
        let hub = hub();
        let url = "http://127.0.0.1:9/jira";
        let mut hooks: Vec<Value> = (0..6)
            .map(|_| reg("project = ALPHA", &["jira:issue_updated"]))
            .collect();
        hooks.insert(
            1,
            reg(
                "project = ALPHA",
                &["worklog_created", "jira:issue_created"],
            ),
        );
        hooks.insert(2, reg("watchCount > 2", &["jira:issue_created"]));
        let out = hub
            .dynamic_register(APP, "acc-1", &json!({"url": url, "webhooks": hooks}))
            .unwrap();
        let res = out["webhookRegistrationResult"].as_array().unwrap();
        assert_eq!(res.len(), 8, "one result per element, same order");
        assert!(res[0]["createdWebhookId"].is_u64());
        let worklog_err = res[1]["errors"][0].as_str().unwrap();
        assert!(worklog_err.contains("worklog_created"), "{worklog_err}");
        assert_eq!(res[2]["errors"][0], "The clause watchCount is unsupported");
        let created = res
            .iter()
            .filter(|r| r.get("createdWebhookId").is_some())
            .count();
        assert_eq!(created, DYNAMIC_LIMIT_PER_USER);
        assert!(res[7]["errors"][0].as_str().unwrap().contains("limit"));

        // Another user of the same app has their own allowance.
        let other = hub
            .dynamic_register(
                APP,
                "acc-2",
                &json!({"url": url, "webhooks": [reg("project IN (ALPHA, BETA)", &["comment_created"])]}),
            )
            .unwrap();
        assert!(other["webhookRegistrationResult"][0]["createdWebhookId"].is_u64());

        // One delivery URL per app.
        let e = hub
            .dynamic_register(
                APP,
                "acc-2",
                &json!({"url": "http://127.0.0.1:9/else", "webhooks": [reg("project = A", &["jira:issue_created"])]}),
            )
            .unwrap_err();
        assert_eq!(e.0, 400);
        // Malformed bodies.
        assert_eq!(
            hub.dynamic_register(APP, "acc-1", &json!({"webhooks": []}))
                .unwrap_err()
                .0,
            400
        );

        let page = hub.dynamic_list(APP, 0, 100);
        assert_eq!(page["total"], 6);
        assert_eq!(page["isLast"], true);
        let first = &page["values"][0];
        assert_eq!(first["url"], url);
        assert_eq!(first["jqlFilter"], "project = ALPHA");
        let expires = first["expirationDate"].as_i64().unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        assert!(expires > now + 29 * 24 * 3600 * 1000, "30-day expiry");
        let small = hub.dynamic_list(APP, 2, 3);
        assert_eq!(small["values"].as_array().unwrap().len(), 3);
        assert_eq!(small["isLast"], false);
        assert!(small["nextPage"].as_str().unwrap().contains("startAt=5"));
        assert_eq!(hub.dynamic_list("other-app", 0, 100)["total"], 0);

        // Delete ignores other apps' ids; a missing list is a 400.
        let id = first["id"].as_u64().unwrap();
        hub.dynamic_delete("other-app", &json!({"webhookIds": [id]}))
            .unwrap();
        assert_eq!(hub.dynamic_list(APP, 0, 100)["total"], 6);
        hub.dynamic_delete(APP, &json!({"webhookIds": [id]}))
            .unwrap();
        assert_eq!(hub.dynamic_list(APP, 0, 100)["total"], 5);
        assert_eq!(hub.dynamic_delete(APP, &json!({})).unwrap_err().0, 400);
        // Freed a slot for acc-1.
        let again = hub
            .dynamic_register(
                APP,
                "acc-1",
                &json!({"url": url, "webhooks": [reg("status = Done", &["jira:issue_deleted"])]}),
            )
            .unwrap();
        assert!(again["webhookRegistrationResult"][0]["createdWebhookId"].is_u64());
    }

    #[tokio::test]
    async fn dynamic_webhooks_expire_unless_refreshed_and_deliveries_carry_a_jwt() {
        let (url, rx) = receiver(0, 500).await;
        let hub = hub();
        let ctl = control(&hub).await;
        let http = reqwest::Client::new();
        let s: Value = http
            .put(format!("{ctl}/settings"))
            .json(&json!({"dynamic_expiry_secs": 60}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["dynamic_expiry_secs"], 60);
        let out = hub
            .dynamic_register(
                APP,
                "acc-1",
                &json!({"url": format!("{url}/in"), "webhooks": [
                    reg("project = ALPHA", &["jira:issue_updated"]),
                    reg("project IN (ALPHA, ZZZ)", &["jira:issue_updated"]),
                ]}),
            )
            .unwrap();
        let id1 = out["webhookRegistrationResult"][0]["createdWebhookId"]
            .as_u64()
            .unwrap();
        let id2 = out["webhookRegistrationResult"][1]["createdWebhookId"]
            .as_u64()
            .unwrap();

        http.post(format!("{ctl}/advance"))
            .json(&json!({"seconds": 30}))
            .send()
            .await
            .unwrap();
        let before = hub.dynamic_list(APP, 0, 100)["values"][0]["expirationDate"]
            .as_i64()
            .unwrap();
        let refreshed = hub
            .dynamic_refresh(APP, &json!({"webhookIds": [id1, 999_999]}))
            .unwrap();
        let after = refreshed["expirationDate"].as_i64().unwrap();
        assert!(after > before, "refresh extends the life");
        hub.advance_clock(Duration::from_secs(45));
        let page = hub.dynamic_list(APP, 0, 100);
        assert_eq!(page["total"], 1, "the unrefreshed webhook expired");
        assert_eq!(page["values"][0]["id"], id1);

        hub.publish(
            issue_event("jira:issue_updated", "ALPHA-1", "ALPHA"),
            &project_is("ALPHA"),
        );
        assert!(hub.wait_idle(WAIT).await);
        let got = rx.got.lock();
        assert_eq!(got.len(), 1);
        let body: Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(body["matchedWebhookIds"], json!([id1]));
        assert_ne!(id1, id2);
        let auth = got[0].headers["authorization"].to_str().unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[APP]);
        let claims = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(APP_SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["iss"], "cloud-1");
        assert_eq!(claims["sub"], "acc-1");
        assert!(jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(b"wrong secret"),
            &validation,
        )
        .is_err());

        // Expired webhooks cannot be refreshed back to life.
        let r = hub
            .dynamic_refresh(APP, &json!({"webhookIds": [id2]}))
            .unwrap();
        assert!(r["expirationDate"].is_i64());
        assert_eq!(hub.dynamic_list(APP, 0, 100)["total"], 1);
    }

    #[tokio::test]
    async fn dynamic_filters_on_fields_and_property_keys() {
        let (url, rx) = receiver(0, 500).await;
        let hub = hub();
        hub.dynamic_register(
            APP,
            "acc-1",
            &json!({"url": format!("{url}/in"), "webhooks": [
                {"events": ["jira:issue_updated"], "jqlFilter": "project = ALPHA", "fieldIdsFilter": ["summary"]},
                {"events": ["jira:issue_updated"], "jqlFilter": "project = ALPHA", "fieldIdsFilter": ["status"]},
                {"events": ["issue_property_set"], "jqlFilter": "project = ALPHA", "issuePropertyKeysFilter": ["mine"]},
            ]}),
        )
        .unwrap();
        hub.publish(
            issue_event("jira:issue_updated", "ALPHA-2", "ALPHA"),
            &project_is("ALPHA"),
        );
        let mut prop = issue_event("issue_property_set", "ALPHA-2", "ALPHA");
        prop.body["property"] = json!({"key": "theirs", "value": 1});
        hub.publish(prop.clone(), &project_is("ALPHA"));
        prop.body["property"] = json!({"key": "mine", "value": 1});
        hub.publish(prop, &project_is("ALPHA"));
        // Another project: no match.
        hub.publish(
            issue_event("jira:issue_updated", "BETA-2", "BETA"),
            &project_is("BETA"),
        );
        assert!(hub.wait_idle(WAIT).await);
        let got = rx.got.lock();
        let bodies: Vec<Value> = got
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        let upd = bodies
            .iter()
            .find(|b| b["webhookEvent"] == "jira:issue_updated")
            .unwrap();
        assert_eq!(upd["matchedWebhookIds"], json!([10001]));
        let p = bodies
            .iter()
            .find(|b| b["webhookEvent"] == "issue_property_set")
            .unwrap();
        assert_eq!(p["matchedWebhookIds"], json!([10002]));
    }

    #[tokio::test]
    async fn retries_keep_the_identifier_after_a_receiver_fails_twice() {
        let (url, rx) = receiver(2, 503).await;
        let hub = hub();
        let ctl = control(&hub).await;
        hub.admin_create(
            &json!({"name": "r", "url": format!("{url}/r"), "events": ["jira:issue_created"]}),
        )
        .unwrap();
        hub.publish(issue_event("jira:issue_created", "A-1", "A"), &|_| true);
        // Wait for quiescence through the control API, without sleeping.
        let p: Value = reqwest::get(format!("{ctl}/pending?wait_ms=10000"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(p, json!({"pending": 0, "idle": true}));
        let ids = {
            let got = rx.got.lock();
            assert_eq!(got.len(), 3);
            let ids: Vec<String> = got
                .iter()
                .map(|r| {
                    r.headers["x-atlassian-webhook-identifier"]
                        .to_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
            assert_eq!(ids[0].len(), 36);
            let retries: Vec<Option<&str>> = got
                .iter()
                .map(|r| {
                    r.headers
                        .get("x-atlassian-webhook-retry")
                        .map(|v| v.to_str().unwrap())
                })
                .collect();
            assert_eq!(retries, vec![None, Some("1"), Some("2")]);
            ids
        };

        let log: Value = reqwest::get(format!("{ctl}/deliveries"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(log["total"], 1);
        let d = &log["deliveries"][0];
        assert_eq!(d["state"], "delivered");
        assert_eq!(d["identifier"], ids[0]);
        let statuses: Vec<Value> = d["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].clone())
            .collect();
        assert_eq!(statuses, vec![json!(503), json!(503), json!(200)]);
    }

    #[tokio::test]
    async fn exhausted_retries_land_in_the_failed_list_and_4xx_is_not_retried() {
        let (url, rx) = receiver(usize::MAX, 500).await;
        let (url4, rx4) = receiver(usize::MAX, 400).await;
        let hub = hub();
        hub.set_retry_delays(vec![Duration::from_millis(1); 5]);
        hub.dynamic_register(
            APP,
            "acc-1",
            &json!({"url": format!("{url}/in"), "webhooks": [reg("project = A", &["comment_created"])]}),
        )
        .unwrap();
        hub.admin_create(
            &json!({"name": "bad", "url": format!("{url4}/x"), "events": ["comment_created"]}),
        )
        .unwrap();
        hub.publish(issue_event("comment_created", "A-1", "A"), &project_is("A"));
        assert!(hub.wait_idle(WAIT).await);
        assert_eq!(rx.got.lock().len(), 6, "first attempt and five retries");
        assert_eq!(rx4.got.lock().len(), 1, "400 is final");
        let failed = hub.dynamic_failed(APP, 100, None);
        let values = failed["values"].as_array().unwrap();
        assert_eq!(values.len(), 1);
        let ident = rx.got.lock()[0].headers["x-atlassian-webhook-identifier"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(values[0]["id"], ident);
        assert_eq!(values[0]["url"], format!("{url}/in"));
        let body: Value = serde_json::from_str(values[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["issue"]["key"], "A-1");
        let t = values[0]["failureTime"].as_i64().unwrap();
        assert!(failed["next"]
            .as_str()
            .unwrap()
            .contains(&format!("failedAfter={t}")));
        assert_eq!(hub.dynamic_failed(APP, 100, Some(t))["values"], json!([]));
        assert_eq!(hub.dynamic_failed("other", 100, None)["values"], json!([]));
        let states: Vec<Value> = hub
            .deliveries()
            .iter()
            .map(|d| d["state"].clone())
            .collect();
        assert_eq!(states, vec![json!("failed"), json!("failed")]);
    }

    #[tokio::test]
    async fn switched_off_deliveries_send_nothing() {
        let (url, rx) = receiver(0, 500).await;
        let hub = hub();
        let ctl = control(&hub).await;
        hub.admin_create(
            &json!({"name": "r", "url": format!("{url}/r"), "events": ["jira:issue_created"]}),
        )
        .unwrap();
        let http = reqwest::Client::new();
        http.put(format!("{ctl}/settings"))
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap();
        hub.publish(issue_event("jira:issue_created", "A-1", "A"), &|_| true);
        assert_eq!(hub.pending_count(), 0);
        assert!(hub.deliveries().is_empty());
        hub.set_enabled(true);
        hub.publish(issue_event("jira:issue_created", "A-2", "A"), &|_| true);
        assert!(hub.wait_idle(WAIT).await);
        let got = rx.got.lock();
        assert_eq!(got.len(), 1);
        let body: Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(body["issue"]["key"], "A-2");
        drop(got);
        hub.reset();
        assert!(hub.deliveries().is_empty());
        assert_eq!(hub.admin_list(), json!([]));
    }

    #[tokio::test]
    async fn non_public_app_only_gets_webhooks_its_owner_registered() {
        let (url, rx) = receiver(0, 500).await;
        let hub = hub();
        let ctl = control(&hub).await;
        let mut ids = Vec::new();
        for account in ["owner", "someone"] {
            let out = hub
                .dynamic_register(
                    APP,
                    account,
                    &json!({"url": format!("{url}/in"), "webhooks": [reg("project = A", &["jira:issue_created"])]}),
                )
                .unwrap();
            ids.push(out["webhookRegistrationResult"][0]["createdWebhookId"].clone());
        }
        let r = reqwest::Client::new()
            .put(format!("{ctl}/app-owner"))
            .json(&json!({"client_id": APP, "owner_account_id": "owner"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        hub.publish(
            issue_event("jira:issue_created", "A-1", "A"),
            &project_is("A"),
        );
        assert!(hub.wait_idle(WAIT).await);
        hub.set_app_owner(APP, None);
        hub.publish(
            issue_event("jira:issue_created", "A-2", "A"),
            &project_is("A"),
        );
        assert!(hub.wait_idle(WAIT).await);
        let got = rx.got.lock();
        let matched: Vec<(Value, Value)> = got
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .map(|b| (b["issue"]["key"].clone(), b["matchedWebhookIds"].clone()))
            .collect();
        assert_eq!(matched.len(), 2);
        assert!(matched.contains(&(json!("A-1"), json!([ids[0]]))));
        assert!(matched.contains(&(json!("A-2"), json!([ids[0], ids[1]]))));
    }

    #[tokio::test]
    async fn a_receiver_that_times_out_gets_a_retry() {
        let (url, rx) = receiver(1, 0).await;
        let hub = hub();
        let ctl = control(&hub).await;
        let r = reqwest::Client::new()
            .put(format!("{ctl}/settings"))
            .json(&json!({"timeout_ms": 500, "retry_delays_ms": [1, 1, 1, 1, 1]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        hub.admin_create(
            &json!({"name": "t", "url": format!("{url}/t"), "events": ["jira:issue_created"]}),
        )
        .unwrap();
        hub.publish(issue_event("jira:issue_created", "A-1", "A"), &|_| true);
        assert!(hub.wait_idle(WAIT).await);
        // Only the first request hangs; a slow machine may time out more than once.
        let n = rx.got.lock().len();
        assert!(n >= 2, "{n}");
        let d = &hub.deliveries()[0];
        assert_eq!(d["state"], "delivered");
        assert_eq!(d["attempts"][0]["error"], "timeout");
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.last().unwrap()["status"], 200);
        let stats = hub.stats_json();
        assert_eq!(stats["delivered"], 1);
        assert_eq!(stats["attempts"], n);
    }

    #[test]
    fn dynamic_jql_subset() {
        for ok in [
            "project = PROJ",
            "project IN (PROJ, EXP) AND status = done",
            "issuetype = Bug OR (assignee != currentUser() AND reporter = \"a b\")",
            "issueKey NOT IN (A-1, A-2)",
            "NOT project = X",
            "cf[10014] = \"epic\"",
            "issue.property[mine].flag = true",
        ] {
            assert!(validate_dynamic_jql(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            validate_dynamic_jql("watchCount > 2").unwrap_err(),
            "The clause watchCount is unsupported"
        );
        for bad in [
            "",
            "summary ~ foo",
            "project ~ foo",
            "project > 1",
            "project = A ORDER BY key",
            "(project = A",
            "project IN (A, B",
            "project =",
            "updated >= -1d",
        ] {
            assert!(validate_dynamic_jql(bad).is_err(), "{bad}");
        }
    }
}
