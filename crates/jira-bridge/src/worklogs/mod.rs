//! Time entries → Jira worklogs. See `docs/worklogs.md`.
//!
//! - A host upserts a time entry ([`upsert`]); it is validated (issue key format and
//!   existence, start before end, duration bounds, work-logging permission) and stored
//!   with a hash of the content Jira would get.
//! - A sync ([`sync::sync_entry`]) creates the worklog, updates it after an edit, moves
//!   it (delete + add) when the issue key changed, or deletes it. Every worklog we add
//!   carries the entity property [`MARKER_PROPERTY`] with our entry id; an entry whose
//!   last add may or may not have reached Jira (crash, timeout) is reconciled by
//!   listing the issue's worklogs and adopting the one with our marker before anything
//!   is added again.
//! - Entries in `auto` mode are due a short debounce after every change; bulk syncs are
//!   jobs (`worklogs.sync`) whose items the [`worker`] runs concurrently through the
//!   site's pacer, writes to one issue serialised by the pacer's per-issue lock.
//! - The [`feed`] poller reads Jira's `/worklog/updated` and `/worklog/deleted` and
//!   marks entries whose worklog was changed in Jira `conflict`, keeping both versions;
//!   a sync with `prefer=local|remote` settles a conflict either way.
//! - Every attempt is recorded in the sync history.

pub mod api;
pub mod feed;
pub mod sync;
pub mod time;
pub mod worker;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jira_bridge_store::jobs::NewJobItem;
use jira_bridge_store::sync_history::NewSyncAttempt;
use jira_bridge_store::time_entries::{TimeEntry, UpsertTimeEntry};
use jira_bridge_store::{ConnectionId, Store, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::connections::{self, Connected, ConnectionError};
use crate::http::{ApiError, AppState};

/// Worklog entity property carrying our entry id.
pub const MARKER_PROPERTY: &str = "jira-bridge.time-entry";
/// Job kind of bulk syncs.
pub const JOB_KIND: &str = "worklogs.sync";
/// Subject kind in the sync history.
pub const SUBJECT: &str = "time_entry";
/// Most entries one bulk sync takes.
pub const MAX_BULK: usize = 5000;

/// Tunables, from the `[worklogs]` section of the configuration
/// ([`crate::config::WorklogsConfig`], `JIRA_BRIDGE_WORKLOGS_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Delay between a change of an `auto` entry and its sync.
    pub debounce: Duration,
    /// How long a worker holds an entry or job item; renewed every third of it.
    pub lease: Duration,
    /// Syncs in flight per process; the site's pacer sets the pace.
    pub concurrency: usize,
    /// How often an idle worker looks for due work.
    pub poll: Duration,
    /// How often Jira's worklog change feeds are read (zero = off).
    pub feed_interval: Duration,
    /// How long an issue lookup or a permission answer is cached.
    pub issue_cache: Duration,
}

impl Settings {
    /// From the configuration.
    pub fn from_config(c: &crate::config::WorklogsConfig) -> Self {
        Self {
            debounce: Duration::from_millis(c.debounce_ms),
            lease: Duration::from_secs(c.lease_seconds.max(1)),
            concurrency: usize::try_from(c.concurrency).unwrap_or(16).clamp(1, 256),
            poll: Duration::from_millis(c.poll_ms.max(10)),
            feed_interval: Duration::from_secs(c.feed_seconds),
            issue_cache: Duration::from_secs(c.issue_cache_seconds),
        }
    }

    /// The settings of a running service.
    pub fn of(state: &AppState) -> Settings {
        Self::from_config(&state.config.worklogs)
    }
}

/// `auto` syncs after every change; `manual` waits for `POST …/sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Sync after every change (debounced).
    Auto,
    /// Sync on request.
    #[default]
    Manual,
}

impl SyncMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
        }
    }
}

/// A time entry as the host sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Connection (`con_…`) the worklog is written through.
    pub connection_id: String,
    /// The host's user.
    #[serde(default)]
    pub owner: Option<String>,
    /// Jira issue key, e.g. `WEB-12`.
    pub issue_key: String,
    /// Start: RFC 3339 with offset, or a local date-time when `time_zone` is given.
    pub started_at: String,
    /// End (same forms); give this or `duration_seconds`.
    #[serde(default)]
    pub ended_at: Option<String>,
    /// Duration in seconds; give this or `ended_at`.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    /// IANA zone of the entry (e.g. `Europe/Berlin`): `started` is written with the
    /// zone's offset on the entry's date.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Comment (Markdown; sent as ADF on Cloud, wiki markup on Data Center).
    #[serde(default)]
    pub comment: Option<String>,
    /// `auto` (default `manual`).
    #[serde(default)]
    pub sync: SyncMode,
}

/// What the upsert did.
#[derive(Debug, Clone)]
pub struct Upserted {
    /// The entry.
    pub entry: TimeEntry,
    /// `true` when it was new.
    pub created: bool,
}

fn field_error(field: &str, message: impl Into<String>) -> ConnectionError {
    ConnectionError::Api(ApiError::invalid_field(field, message))
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ConnectionError {
    ConnectionError::Api(ApiError::internal(e))
}

/// Issue keys as Jira makes them: project key (letter, then letters, digits or `_`),
/// dash, number.
pub fn valid_key(key: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,17}$").unwrap_or_else(|_| {
            // The pattern is a constant; this branch is unreachable.
            regex::Regex::new("$^").unwrap_or_else(|_| unreachable!())
        })
    })
    .is_match(key)
}

/// The content Jira gets, checked and normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Issue key.
    pub issue_key: String,
    /// Start.
    pub start: time::Start,
    /// Zone name.
    pub time_zone: Option<String>,
    /// Duration as given.
    pub duration_s: i64,
    /// Comment.
    pub comment: Option<String>,
}

impl Content {
    /// Hash of what Jira would get (issue, `started` as written, seconds as counted,
    /// comment).
    pub fn hash(&self) -> String {
        content_hash(
            &self.issue_key,
            &jira_client::format_jira_datetime(&self.start.local()),
            time::jira_seconds(self.duration_s),
            self.comment.as_deref(),
        )
    }
}

/// Hash of worklog content.
pub fn content_hash(issue_key: &str, started: &str, seconds: i64, comment: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(issue_key.as_bytes());
    h.update([0]);
    h.update(started.as_bytes());
    h.update([0]);
    h.update(seconds.to_string().as_bytes());
    h.update([0]);
    h.update(comment.unwrap_or_default().trim().as_bytes());
    hex::encode(h.finalize())
}

/// The stored content of an entry.
pub fn content_of(e: &TimeEntry) -> Content {
    Content {
        issue_key: e.issue_key.clone(),
        start: time::Start {
            at: e.started_at,
            offset_s: i32::try_from(e.started_offset_s).unwrap_or(0),
        },
        time_zone: e.time_zone.clone(),
        duration_s: e.duration_s,
        comment: e.comment.clone(),
    }
}

/// Check the input without Jira: every field error at once.
pub fn check_input(input: &EntryInput) -> Result<Content, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let issue_key = input.issue_key.trim().to_owned();
    if !valid_key(&issue_key) {
        errors.push((
            "issue_key".into(),
            format!("`{}` is not an issue key (like PROJ-123)", input.issue_key),
        ));
    }
    let zone = match input.time_zone.as_deref() {
        Some(z) => match time::parse_zone(z) {
            Ok(tz) => Some(tz),
            Err(m) => {
                errors.push(("time_zone".into(), m));
                None
            }
        },
        None => None,
    };
    let start = match time::resolve(&input.started_at, zone.as_ref()) {
        Ok(s) => Some(s),
        Err(m) => {
            errors.push(("started_at".into(), m));
            None
        }
    };
    let duration = match (&input.ended_at, input.duration_seconds) {
        (Some(_), Some(_)) => {
            errors.push((
                "duration_seconds".into(),
                "give ended_at or duration_seconds, not both".into(),
            ));
            None
        }
        (None, None) => {
            errors.push((
                "duration_seconds".into(),
                "give ended_at or duration_seconds".into(),
            ));
            None
        }
        (None, Some(d)) if d <= 0 => {
            errors.push((
                "duration_seconds".into(),
                format!("must be positive (got {d})"),
            ));
            None
        }
        (None, Some(d)) => Some(("duration_seconds", d)),
        (Some(end), None) => match (time::resolve(end, zone.as_ref()), start) {
            (Err(m), _) => {
                errors.push(("ended_at".into(), m));
                None
            }
            (Ok(end), Some(start)) => {
                let d = (end.at - start.at).num_seconds();
                if d <= 0 {
                    errors.push(("ended_at".into(), "must be after started_at".into()));
                    None
                } else {
                    Some(("ended_at", d))
                }
            }
            (Ok(_), None) => None,
        },
    };
    if let Some((field, d)) = duration {
        if d > time::MAX_DURATION_S {
            errors.push((
                field.into(),
                format!(
                    "an entry may last at most {} hours (got {d} seconds)",
                    time::MAX_DURATION_S / 3600
                ),
            ));
        }
    }
    if let Some(c) = &input.comment {
        if c.chars().count() > 30_000 {
            errors.push(("comment".into(), "at most 30000 characters".into()));
        }
    }
    match (start, duration, errors.is_empty()) {
        (Some(start), Some((_, d)), true) => Ok(Content {
            issue_key,
            start,
            time_zone: input.time_zone.clone(),
            duration_s: d,
            comment: input.comment.clone().filter(|c| !c.trim().is_empty()),
        }),
        _ => Err(errors),
    }
}

// --- Issue checks (cached) -------------------------------------------------------

/// What Jira said about an issue for a connection's user.
#[derive(Clone)]
enum IssueCheck {
    /// Visible, and the user may log work on it.
    Loggable,
    /// Missing or invisible.
    Missing(String),
    /// Visible, but the user lacks `WORK_ON_ISSUES` (or Jira refused a worklog).
    NoPermission(String),
}

/// Answers per (connection, issue key), each with the instant it goes stale.
type IssueCache = parking_lot::Mutex<HashMap<(ConnectionId, String), (Instant, IssueCheck)>>;

fn issue_cache() -> &'static IssueCache {
    static C: OnceLock<IssueCache> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn cached_check(connection: &ConnectionId, key: &str) -> Option<IssueCheck> {
    let mut c = issue_cache().lock();
    let k = (connection.clone(), key.to_owned());
    match c.get(&k) {
        Some((until, check)) if Instant::now() < *until => Some(check.clone()),
        Some(_) => {
            c.remove(&k);
            None
        }
        None => None,
    }
}

fn no_permission_message(key: &str, why: &str) -> String {
    format!("the connection's Jira user may not log work on {key}: {why}")
}

/// Remember that Jira refused work logging for this connection on this issue (a
/// worklog add refused for lack of permission), for `ttl`.
pub fn remember_refusal(connection: &ConnectionId, issue_key: &str, message: &str, ttl: Duration) {
    issue_cache().lock().insert(
        (connection.clone(), issue_key.to_owned()),
        (
            Instant::now() + ttl,
            IssueCheck::NoPermission(message.to_owned()),
        ),
    );
}

/// Whether a Jira refusal says the user may not log work.
pub fn is_permission_refusal(e: &jira_client::Error) -> bool {
    matches!(
        e,
        jira_client::Error::Validation { .. } | jira_client::Error::Forbidden { .. }
    ) && e
        .jira_messages()
        .iter()
        .any(|m| m.to_ascii_lowercase().contains("permission"))
}

/// Why work may not be logged on an issue: a refusal, or `None` when it may.
#[derive(Debug)]
pub enum WorkCheck {
    /// The issue does not exist or cannot be seen.
    Missing(String),
    /// The user lacks the work-logging permission on it.
    NoPermission(String),
}

/// Ask Jira (cached for `ttl` per connection and issue) whether the issue exists for
/// the connection's user and whether that user may log work on it
/// (`GET /mypermissions?permissions=WORK_ON_ISSUES&issueKey=…`). Transport and other
/// Jira failures are errors; refusals are `Ok(Some(_))`.
pub async fn check_work_on_issue(
    conn: &Connected,
    key: &str,
    ttl: Duration,
) -> Result<Option<WorkCheck>, jira_client::Error> {
    let check = match cached_check(&conn.connection.id, key) {
        Some(c) => c,
        None => {
            let c = match conn.jira.can_log_work(key).await {
                Ok(true) => IssueCheck::Loggable,
                Ok(false) => IssueCheck::NoPermission(
                    "Jira does not grant it the Work On Issues permission".into(),
                ),
                Err(jira_client::Error::NotFound { .. }) => IssueCheck::Missing(format!(
                    "issue {key} does not exist or the connection's Jira user cannot see it"
                )),
                Err(e) => return Err(e),
            };
            issue_cache().lock().insert(
                (conn.connection.id.clone(), key.to_owned()),
                (Instant::now() + ttl, c.clone()),
            );
            c
        }
    };
    Ok(match check {
        IssueCheck::Loggable => None,
        IssueCheck::Missing(m) => Some(WorkCheck::Missing(m)),
        IssueCheck::NoPermission(why) => {
            Some(WorkCheck::NoPermission(no_permission_message(key, &why)))
        }
    })
}

/// Check that the issue exists, is visible to the connection's user and that the user
/// may log work on it (cached): a field error on `issue_key` otherwise.
async fn check_issue(conn: &Connected, key: &str, ttl: Duration) -> Result<(), ConnectionError> {
    match check_work_on_issue(conn, key, ttl).await {
        Ok(None) => Ok(()),
        Ok(Some(WorkCheck::Missing(m) | WorkCheck::NoPermission(m))) => {
            Err(field_error("issue_key", m))
        }
        Err(e) => Err(conn
            .observe::<()>(Err(e))
            .await
            .err()
            .unwrap_or_else(|| internal(std::io::Error::other("jira")))),
    }
}

fn validation_summary(e: &ConnectionError) -> (String, serde_json::Value) {
    match e {
        ConnectionError::Api(ApiError::Validation { detail, errors }) => {
            (detail.clone(), serde_json::json!({ "errors": errors }))
        }
        other => (other.to_string(), serde_json::json!({})),
    }
}

/// Record a refused upsert in the sync history.
async fn record_refusal(
    store: &Store,
    tenant: &TenantId,
    source_id: &str,
    connection: Option<&ConnectionId>,
    issue_key: &str,
    e: &ConnectionError,
) {
    let (error, detail) = validation_summary(e);
    let attempt = NewSyncAttempt {
        tenant_id: tenant.clone(),
        kind: "worklog.validate".into(),
        state: "failed".into(),
        subject_kind: SUBJECT.into(),
        subject_id: source_id.to_owned(),
        connection_id: connection.cloned(),
        issue_key: Some(issue_key.to_owned()),
        remote_id: None,
        job_id: None,
        error_code: Some("validation".into()),
        error: Some(error),
        detail,
    };
    if let Err(err) = store.record_sync_attempt(&attempt).await {
        tracing::warn!(error = ?err, "could not record a refused time entry in the sync history");
    }
}

fn check_source_id(source_id: &str) -> Result<(), ConnectionError> {
    if source_id.is_empty() || source_id.len() > 255 || source_id.chars().any(char::is_control) {
        return Err(field_error(
            "source_id",
            "1 to 255 characters, no control characters",
        ));
    }
    Ok(())
}

/// Insert or update a time entry. Refusals (field errors) are recorded in the sync
/// history and nothing is stored or sent. An `auto` entry whose content changed is
/// due after the debounce.
pub async fn upsert(
    state: &AppState,
    tenant: &TenantId,
    source_id: &str,
    input: EntryInput,
) -> Result<Upserted, ConnectionError> {
    check_source_id(source_id)?;
    let connection_id: Option<ConnectionId> = input.connection_id.parse().ok();
    let content = match check_input(&input) {
        Ok(c) => c,
        Err(errors) => {
            let detail = errors
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ");
            let e = ConnectionError::Api(ApiError::Validation {
                detail,
                errors: errors.into_iter().collect(),
            });
            record_refusal(
                &state.store,
                tenant,
                source_id,
                connection_id.as_ref(),
                &input.issue_key,
                &e,
            )
            .await;
            return Err(e);
        }
    };
    let Some(connection_id) = connection_id else {
        return Err(field_error("connection_id", "not a connection id (con_…)"));
    };
    let conn = connections::connect(state, tenant, &connection_id).await?;
    let settings = Settings::of(state);
    if let Err(e) = check_issue(&conn, &content.issue_key, settings.issue_cache).await {
        if matches!(e, ConnectionError::Api(ApiError::Validation { .. })) {
            record_refusal(
                &state.store,
                tenant,
                source_id,
                Some(&connection_id),
                &content.issue_key,
                &e,
            )
            .await;
        }
        return Err(e);
    }
    let existing = state.store.get_time_entry(tenant, source_id).await?;
    let hash = content.hash();
    let changed = existing.as_ref().is_none_or(|e| {
        e.content_hash != hash || e.state == "deleted" || e.connection_id != connection_id
    });
    let (new_state, next) = match &existing {
        Some(e) if !changed => (
            e.state.clone(),
            match (input.sync, e.state.as_str()) {
                (SyncMode::Auto, "not_synced" | "failed") => {
                    Some(Timestamp::from(Utc::now() + chrono_dur(settings.debounce)))
                }
                _ => e.next_sync_at.map(Timestamp::from),
            },
        ),
        Some(e) if e.state == "conflict" => (
            // A local edit during a conflict stays a conflict until resolved.
            "conflict".to_owned(),
            None,
        ),
        _ => {
            let in_sync = existing.as_ref().is_some_and(|e| {
                e.synced_hash.as_deref() == Some(hash.as_str()) && e.state != "deleted"
            });
            match (in_sync, input.sync) {
                (true, _) => ("synced".to_owned(), None),
                (false, SyncMode::Auto) => (
                    "pending".to_owned(),
                    Some(Timestamp::from(Utc::now() + chrono_dur(settings.debounce))),
                ),
                (false, SyncMode::Manual) => {
                    let s = if existing.as_ref().is_some_and(|e| e.worklog_id.is_some()) {
                        "pending"
                    } else {
                        "not_synced"
                    };
                    (s.to_owned(), None)
                }
            }
        }
    };
    let row = UpsertTimeEntry {
        tenant_id: tenant.clone(),
        connection_id,
        source_id: source_id.to_owned(),
        owner: input.owner.clone(),
        issue_key: content.issue_key.clone(),
        started_at: Timestamp::from(content.start.at),
        started_offset_s: i64::from(content.start.offset_s),
        time_zone: content.time_zone.clone(),
        duration_s: content.duration_s,
        comment: content.comment.clone(),
        sync_mode: input.sync.as_str().to_owned(),
        content_hash: hash,
        state: new_state,
        next_sync_at: next,
    };
    let mut tx = state.store.begin().await?;
    let entry = tx.upsert_time_entry(&row).await?;
    tx.commit().await?;
    Ok(Upserted {
        entry,
        created: existing.is_none(),
    })
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

async fn get_entry(
    store: &Store,
    tenant: &TenantId,
    source_id: &str,
) -> Result<TimeEntry, ConnectionError> {
    store
        .get_time_entry(tenant, source_id)
        .await?
        .ok_or_else(|| ConnectionError::Api(ApiError::NotFound("no such time entry".into())))
}

/// How a conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    /// Write the entry over the worklog.
    Local,
    /// Take the worklog's version into the entry.
    Remote,
}

/// Sync one entry now (create, update, move; or settle a conflict with `prefer`).
pub async fn sync_now(
    state: &AppState,
    tenant: &TenantId,
    source_id: &str,
    prefer: Option<Prefer>,
) -> Result<TimeEntry, ConnectionError> {
    let entry = get_entry(&state.store, tenant, source_id).await?;
    if entry.state == "deleted" {
        return Err(ConnectionError::Api(ApiError::Conflict(
            "this time entry was deleted; PUT it again to sync it".into(),
        )));
    }
    if entry.state == "conflict" && prefer.is_none() {
        return Err(ConnectionError::Api(ApiError::Conflict(
            "the worklog was changed in Jira: settle the conflict with ?prefer=local or ?prefer=remote".into(),
        )));
    }
    let Some(_held) = worker::hold(entry.id.as_str()) else {
        return Err(ConnectionError::Api(ApiError::Conflict(
            "this time entry is being synced right now; try again in a moment".into(),
        )));
    };
    let owner = worker::process_owner();
    let s = Settings::of(state);
    let now = Utc::now();
    let Some(leased) = state
        .store
        .lease_time_entry(
            tenant,
            &entry.id,
            owner,
            Timestamp::from(now),
            Timestamp::from(now + chrono_dur(s.lease)),
        )
        .await?
    else {
        return Err(ConnectionError::Api(ApiError::Conflict(
            "this time entry is being synced right now; try again in a moment".into(),
        )));
    };
    let conn = match connections::connect(state, tenant, &leased.connection_id).await {
        Ok(c) => c,
        Err(e) => {
            sync::release_with_error(&state.store, &leased, &e.to_string(), None).await;
            return Err(e);
        }
    };
    let outcome = sync::sync_entry(&state.store, &conn, &leased, prefer, None, s.issue_cache).await;
    let after = get_entry(&state.store, tenant, source_id).await?;
    match outcome {
        sync::Outcome::Done => Ok(after),
        sync::Outcome::Failed { error, .. } => Err(error.into_api()),
    }
}

/// Delete an entry; with `delete_worklog`, its worklog too (now, through Jira).
pub async fn delete(
    state: &AppState,
    tenant: &TenantId,
    source_id: &str,
    delete_worklog: bool,
) -> Result<TimeEntry, ConnectionError> {
    let entry = get_entry(&state.store, tenant, source_id).await?;
    if !delete_worklog || entry.worklog_id.is_none() {
        let mut tx = state.store.begin().await?;
        let row = tx
            .forget_time_entry(&entry.id)
            .await?
            .ok_or_else(|| ConnectionError::Api(ApiError::NotFound("no such time entry".into())))?;
        tx.commit().await?;
        return Ok(row);
    }
    let Some(_held) = worker::hold(entry.id.as_str()) else {
        return Err(ConnectionError::Api(ApiError::Conflict(
            "this time entry is being synced right now; try again in a moment".into(),
        )));
    };
    let owner = worker::process_owner();
    let now = Utc::now();
    let Some(leased) = state
        .store
        .lease_time_entry(
            tenant,
            &entry.id,
            owner,
            Timestamp::from(now),
            Timestamp::from(now + chrono_dur(Settings::of(state).lease)),
        )
        .await?
    else {
        return Err(ConnectionError::Api(ApiError::Conflict(
            "this time entry is being synced right now; try again in a moment".into(),
        )));
    };
    let conn = match connections::connect(state, tenant, &leased.connection_id).await {
        Ok(c) => c,
        Err(e) => {
            sync::release_with_error(&state.store, &leased, &e.to_string(), None).await;
            return Err(e);
        }
    };
    match sync::delete_worklog(&state.store, &conn, &leased, None).await {
        sync::Outcome::Done => get_entry(&state.store, tenant, source_id).await,
        sync::Outcome::Failed { error, .. } => Err(error.into_api()),
    }
}

/// What a bulk sync names.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// Entries by the host's ids.
    #[serde(default)]
    pub source_ids: Option<Vec<String>>,
    /// Or an owner's entries …
    #[serde(default)]
    pub owner: Option<String>,
    /// … that started at or after this …
    #[serde(default)]
    pub from: Option<DateTime<chrono::FixedOffset>>,
    /// … and before this.
    #[serde(default)]
    pub to: Option<DateTime<chrono::FixedOffset>>,
}

/// Start a bulk sync: a `worklogs.sync` job with one item per entry.
pub async fn bulk(
    state: &AppState,
    tenant: &TenantId,
    req: BulkRequest,
    idempotency_key: Option<String>,
) -> Result<jira_bridge_store::jobs::Job, ConnectionError> {
    let sources: Vec<String> = match (&req.source_ids, &req.from, &req.to) {
        (Some(ids), None, None) if req.owner.is_none() => {
            if ids.is_empty() {
                return Err(field_error("source_ids", "name at least one entry"));
            }
            ids.clone()
        }
        (None, Some(from), Some(to)) => {
            if to <= from {
                return Err(field_error("to", "must be after from"));
            }
            state
                .store
                .time_entry_sources_in_range(
                    tenant,
                    req.owner.as_deref(),
                    Timestamp::from(from.with_timezone(&Utc)),
                    Timestamp::from(to.with_timezone(&Utc)),
                    u32::try_from(MAX_BULK + 1).unwrap_or(u32::MAX),
                )
                .await?
        }
        _ => {
            return Err(field_error(
                "source_ids",
                "give source_ids, or owner (optional) with from and to",
            ))
        }
    };
    if sources.len() > MAX_BULK {
        return Err(field_error(
            "source_ids",
            format!("at most {MAX_BULK} entries per sync"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let items: Vec<NewJobItem> = sources
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .map(|s| NewJobItem {
            item_key: Some(s.clone()),
            payload: serde_json::json!({ "source_id": s }),
            depends_on: None,
            group_key: None,
        })
        .collect();
    let mut req = crate::jobs::EnqueueRequest::new(tenant.clone(), JOB_KIND, items).max_attempts(8);
    if let Some(k) = idempotency_key {
        req = req.idempotency_key(k);
    }
    let created = state.jobs.enqueue(req).await.map_err(|e| match e {
        crate::jobs::JobError::Invalid(m) => field_error("source_ids", m),
        other => internal(other),
    })?;
    Ok(created.job)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input(started: &str, end: Option<&str>, dur: Option<i64>, zone: Option<&str>) -> EntryInput {
        EntryInput {
            connection_id: "con_x".into(),
            owner: None,
            issue_key: "WEB-1".into(),
            started_at: started.into(),
            ended_at: end.map(Into::into),
            duration_seconds: dur,
            time_zone: zone.map(Into::into),
            comment: None,
            sync: SyncMode::Manual,
        }
    }

    fn fields(r: Result<Content, Vec<(String, String)>>) -> Vec<String> {
        r.err().unwrap().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn bad_input_names_each_field() {
        let mut i = input("2026-03-01T10:00:00Z", None, Some(0), None);
        i.issue_key = "web 1".into();
        assert_eq!(fields(check_input(&i)), ["issue_key", "duration_seconds"]);
        let i = input(
            "2026-03-01T10:00:00Z",
            Some("2026-03-01T09:00:00Z"),
            None,
            None,
        );
        assert_eq!(fields(check_input(&i)), ["ended_at"]);
        let i = input("2026-03-01T10:00:00Z", None, Some(-5), None);
        assert_eq!(fields(check_input(&i)), ["duration_seconds"]);
        let i = input("2026-03-01T10:00:00", None, Some(60), None);
        assert_eq!(fields(check_input(&i)), ["started_at"]);
        let i = input("2026-03-01T10:00:00", None, Some(60), Some("Nowhere/Land"));
        assert_eq!(fields(check_input(&i)), ["time_zone", "started_at"]);
        let i = input("2026-03-01T10:00:00Z", None, Some(25 * 3600), None);
        assert_eq!(fields(check_input(&i)), ["duration_seconds"]);
        let ok = check_input(&input(
            "2026-03-01T10:00:00Z",
            Some("2026-03-01T10:30:00Z"),
            None,
            None,
        ))
        .unwrap();
        assert_eq!(ok.duration_s, 1800);
    }

    #[test]
    fn issue_keys() {
        assert!(valid_key("WEB-1"));
        assert!(valid_key("A_B2-10"));
        assert!(!valid_key("web-1"));
        assert!(!valid_key("WEB-0"));
        assert!(!valid_key("WEB1"));
        assert!(!valid_key("1WEB-1"));
    }

    #[test]
    fn hash_follows_what_jira_would_get() {
        let a = check_input(&input("2026-03-01T10:00:00Z", None, Some(600), None)).unwrap();
        let b = check_input(&input("2026-03-01T10:00:00Z", None, Some(610), None)).unwrap();
        let c = check_input(&input("2026-03-01T11:00:00+01:00", None, Some(600), None)).unwrap();
        // 610 s is counted as 600 s: nothing to update.
        assert_eq!(a.hash(), b.hash());
        // The same instant written with another offset is a different `started`.
        assert_ne!(a.hash(), c.hash());
    }
}
