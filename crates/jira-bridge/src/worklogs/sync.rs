//! One entry against Jira: add, update, move, delete, reconcile, settle a conflict.
//! Each call records its attempt in the sync history and, in the same transaction,
//! the entry's new state and the `worklog.*` event.

use chrono::Utc;
use jira_bridge_store::events::NewEvent;
use jira_bridge_store::sync_history::NewSyncAttempt;
use jira_bridge_store::time_entries::{SyncedWorklog, TimeEntry, UpsertTimeEntry};
use jira_bridge_store::{Store, StoreError, Timestamp};
use jira_client::{EntityProperty, JiraClient, Worklog, WorklogInput};
use serde_json::{json, Value};

use super::{content_hash, content_of, time, Prefer, MARKER_PROPERTY, SUBJECT};
use crate::connections::{errors::from_jira, Connected, ConnectionError};
use crate::http::ApiError;

/// Why a sync did not complete.
#[derive(Debug)]
pub struct SyncError {
    /// Stable code: `jira`, `permission`, `conflict`, `busy`, `store`.
    pub code: &'static str,
    /// What happened.
    pub message: String,
    /// Jira's error, when Jira refused or failed.
    pub jira: Option<jira_client::Error>,
}

impl SyncError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            jira: None,
        }
    }

    fn jira(e: jira_client::Error) -> Self {
        let code = if super::is_permission_refusal(&e) {
            "permission"
        } else {
            "jira"
        };
        let message = if code == "permission" {
            format!(
                "the connection's Jira user may not log work on this issue ({})",
                describe(&e)
            )
        } else {
            describe(&e)
        };
        Self {
            code,
            message,
            jira: Some(e),
        }
    }

    /// As an API problem.
    pub fn into_api(self) -> ConnectionError {
        match (self.code, self.jira) {
            ("permission", _) => {
                ConnectionError::Api(ApiError::invalid_field("issue_key", self.message))
            }
            (_, Some(e)) => from_jira(&e),
            ("conflict", None) => ConnectionError::Api(ApiError::Conflict(self.message)),
            _ => ConnectionError::Api(ApiError::Unavailable(self.message)),
        }
    }

    /// Jira's messages as JSON, for the history.
    fn detail(&self) -> Value {
        match &self.jira {
            Some(e) => json!({ "status": e.status(), "jira": e.jira_messages() }),
            None => json!({}),
        }
    }
}

fn describe(e: &jira_client::Error) -> String {
    let msgs = e.jira_messages();
    if msgs.is_empty() {
        e.to_string()
    } else {
        format!("Jira: {}", msgs.join("; "))
    }
}

/// The result of one sync.
#[derive(Debug)]
pub enum Outcome {
    /// Jira matches the entry (or the entry follows Jira, after `prefer=remote`).
    Done,
    /// It did not work.
    Failed {
        /// Why.
        error: SyncError,
        /// Whether trying again may help.
        retryable: bool,
    },
}

/// Who asked for the sync: sets the state a retryable failure leaves.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The job, for bulk syncs (retries are the job's).
    pub job_id: Option<&'a str>,
}

fn worklog_updated_ms(w: &Worklog) -> Option<i64> {
    w.updated
        .as_deref()
        .and_then(jira_client::parse_jira_datetime)
        .map(|d| d.timestamp_millis())
}

fn marker(entry: &TimeEntry) -> EntityProperty {
    EntityProperty {
        key: MARKER_PROPERTY.into(),
        value: json!({ "entry_id": entry.id, "source_id": entry.source_id }),
    }
}

fn has_marker(w: &Worklog, entry: &TimeEntry) -> bool {
    w.properties.iter().any(|p| {
        p.key == MARKER_PROPERTY
            && p.value.get("entry_id").and_then(Value::as_str) == Some(entry.id.as_str())
    })
}

async fn input_of(jira: &JiraClient, entry: &TimeEntry) -> Result<WorklogInput, SyncError> {
    let c = content_of(entry);
    let comment = match c.comment.as_deref() {
        Some(m) if !m.trim().is_empty() => Some(jira.rich_text(m).await.map_err(SyncError::jira)?),
        _ => None,
    };
    Ok(WorklogInput {
        started: c.start.local(),
        time_spent_seconds: time::jira_seconds(c.duration_s),
        comment,
        properties: vec![marker(entry)],
    })
}

struct Record<'a> {
    kind: &'a str,
    state: &'a str,
    issue_key: Option<&'a str>,
    worklog_id: Option<&'a str>,
    error: Option<&'a SyncError>,
    detail: Value,
}

fn attempt(entry: &TimeEntry, caller: Caller<'_>, r: &Record<'_>) -> NewSyncAttempt {
    let mut detail = r.detail.clone();
    if let (Some(e), Some(d)) = (r.error, detail.as_object_mut()) {
        if let Some(o) = e.detail().as_object() {
            d.extend(o.clone());
        }
    }
    NewSyncAttempt {
        tenant_id: entry.tenant_id.clone(),
        kind: r.kind.to_owned(),
        state: r.state.to_owned(),
        subject_kind: SUBJECT.into(),
        subject_id: entry.source_id.clone(),
        connection_id: Some(entry.connection_id.clone()),
        issue_key: r.issue_key.map(str::to_owned),
        remote_id: r.worklog_id.map(str::to_owned),
        job_id: caller.job_id.map(str::to_owned),
        error_code: r.error.map(|e| e.code.to_owned()),
        error: r.error.map(|e| e.message.clone()),
        detail,
    }
}

fn event(entry: &TimeEntry, event_type: &str, data: Value) -> NewEvent {
    NewEvent {
        tenant_id: entry.tenant_id.clone(),
        event_type: event_type.to_owned(),
        subject: Some(entry.source_id.clone()),
        data,
    }
}

/// Commit a success: the entry's sync fields, the attempt, the event.
async fn commit_success(
    store: &Store,
    entry: &TimeEntry,
    caller: Caller<'_>,
    kind: &str,
    w: SyncedWorklog,
    deleted: bool,
) -> Outcome {
    let result: Result<(), StoreError> = async {
        let mut tx = store.begin().await?;
        let row = tx.finish_time_entry_sync(&entry.id, &w, deleted).await?;
        let issue = w
            .worklog_issue_key
            .clone()
            .or_else(|| entry.worklog_issue_key.clone());
        tx.record_sync_attempt(&attempt(
            entry,
            caller,
            &Record {
                kind,
                state: "succeeded",
                issue_key: issue.as_deref(),
                worklog_id: w.worklog_id.as_deref().or(entry.worklog_id.as_deref()),
                error: None,
                detail: json!({}),
            },
        ))
        .await?;
        let (etype, state) = if deleted {
            ("worklog.deleted", "deleted".to_owned())
        } else {
            (
                "worklog.synced",
                row.as_ref()
                    .map_or_else(|| "synced".to_owned(), |r| r.state.clone()),
            )
        };
        tx.append_event(event(
            entry,
            etype,
            json!({
                "source_id": entry.source_id,
                "issue_key": issue,
                "worklog_id": w.worklog_id.as_deref().or(entry.worklog_id.as_deref()),
                "state": state,
            }),
        ))
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => {
            tracing::error!(entry = %entry.id, error = ?e, "could not record a finished worklog sync");
            Outcome::Failed {
                error: SyncError::new("store", "the database failed while recording the sync"),
                retryable: true,
            }
        }
    }
}

/// Commit a failure. `retryable` failures leave the entry `pending` (due again after a
/// backoff unless a job retries it); others `failed` (or `conflict`).
#[allow(clippy::too_many_arguments)] // one call shape for every failure path
async fn commit_failure(
    store: &Store,
    entry: &TimeEntry,
    caller: Caller<'_>,
    kind: &str,
    error: SyncError,
    retryable: bool,
    keep_intent: bool,
    conflict: Option<Value>,
) -> Outcome {
    let state = if conflict.is_some() {
        "conflict"
    } else if retryable {
        "pending"
    } else {
        "failed"
    };
    let retry_at = (retryable && caller.job_id.is_none() && conflict.is_none()).then(|| {
        let secs = 2_i64
            .saturating_pow(u32::try_from(entry.attempts.clamp(1, 9)).unwrap_or(1))
            .min(300);
        Timestamp::from(Utc::now() + chrono::Duration::seconds(secs))
    });
    let result: Result<(), StoreError> = async {
        let mut tx = store.begin().await?;
        tx.fail_time_entry_sync(
            &entry.id,
            state,
            &error.message,
            retry_at,
            conflict.as_ref(),
            keep_intent,
        )
        .await?;
        tx.record_sync_attempt(&attempt(
            entry,
            caller,
            &Record {
                kind,
                state: if conflict.is_some() {
                    "conflict"
                } else {
                    "failed"
                },
                issue_key: Some(&entry.issue_key),
                worklog_id: entry.worklog_id.as_deref(),
                error: Some(&error),
                detail: json!({ "retryable": retryable }),
            },
        ))
        .await?;
        if state != "pending" {
            tx.append_event(event(
                entry,
                "worklog.failed",
                json!({
                    "source_id": entry.source_id,
                    "issue_key": entry.issue_key,
                    "state": state,
                    "error": error.message,
                }),
            ))
            .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(entry = %entry.id, error = ?e, "could not record a failed worklog sync");
    }
    Outcome::Failed { error, retryable }
}

/// Free a leased entry after a failure before any Jira call (e.g. its connection is
/// unusable).
pub async fn release_with_error(
    store: &Store,
    entry: &TimeEntry,
    message: &str,
    job_id: Option<&str>,
) {
    let _ = commit_failure(
        store,
        entry,
        Caller { job_id },
        "worklog.sync",
        SyncError::new("connection", message),
        false,
        entry.intent.is_some(),
        None,
    )
    .await;
}

/// Whether trying again may help: transient failures, unknown outcomes, and a 401
/// on an OAuth connection whose tokens were rotated meanwhile (the grant works; a
/// dead grant fails the refresh instead).
fn classify(conn: &Connected, e: &jira_client::Error) -> bool {
    e.is_transient()
        || matches!(
            e,
            jira_client::Error::RateLimited { .. } | jira_client::Error::OutcomeUnknown { .. }
        )
        || crate::connections::unauthorized_is_token_race(&conn.connection, e)
}

/// Find the worklog this entry added, by our marker, on `issue`.
async fn find_ours(
    jira: &JiraClient,
    issue: &str,
    entry: &TimeEntry,
) -> Result<Option<Worklog>, jira_client::Error> {
    use futures::TryStreamExt;
    let all: Vec<Worklog> = jira.worklogs(issue).try_collect().await?;
    Ok(all.into_iter().find(|w| has_marker(w, entry)))
}

/// Bring Jira in line with a leased entry (or, with `prefer=remote` on a conflict, the
/// entry in line with Jira). Frees the lease.
pub async fn sync_entry(
    store: &Store,
    conn: &Connected,
    entry: &TimeEntry,
    prefer: Option<Prefer>,
    job_id: Option<&str>,
    cache_ttl: std::time::Duration,
) -> Outcome {
    let caller = Caller { job_id };
    let jira = &conn.jira;
    if entry.state == "deleted" {
        return commit_success(
            store,
            entry,
            caller,
            "worklog.noop",
            SyncedWorklog {
                worklog_id: entry.worklog_id.clone(),
                worklog_issue_key: entry.worklog_issue_key.clone(),
                synced_hash: entry.synced_hash.clone(),
                remote_updated_ms: entry.remote_updated_ms,
            },
            true,
        )
        .await;
    }
    let mut entry = entry.clone();
    let mut force = false;
    if entry.state == "conflict" {
        match prefer {
            Some(Prefer::Remote) => return adopt_remote(store, &entry, caller).await,
            Some(Prefer::Local) => {
                force = true;
                if entry
                    .remote
                    .as_ref()
                    .and_then(|r| r.get("deleted"))
                    .and_then(Value::as_bool)
                    == Some(true)
                {
                    // Gone in Jira: add it again.
                    entry.worklog_id = None;
                    entry.worklog_issue_key = None;
                }
            }
            None => return commit_failure(
                store,
                &entry,
                caller,
                "worklog.sync",
                SyncError::new(
                    "conflict",
                    "the worklog was changed in Jira: settle with prefer=local or prefer=remote",
                ),
                false,
                false,
                entry.remote.clone(),
            )
            .await,
        }
    }
    // Nothing is sent for an issue the user may not log work on (asked once per
    // connection and issue, cached).
    let refused = match super::check_work_on_issue(conn, &entry.issue_key, cache_ttl).await {
        Ok(None) => None,
        Ok(Some(super::WorkCheck::NoPermission(m))) => Some(SyncError::new("permission", m)),
        Ok(Some(super::WorkCheck::Missing(m))) => Some(SyncError::new("not_found", m)),
        Err(e) => {
            let retry = classify(conn, &e);
            return commit_failure(
                store,
                &entry,
                caller,
                "worklog.sync",
                SyncError::jira(e),
                retry,
                entry.intent.is_some(),
                None,
            )
            .await;
        }
    };
    if let Some(e) = refused {
        return commit_failure(
            store,
            &entry,
            caller,
            "worklog.create",
            e,
            false,
            false,
            None,
        )
        .await;
    }
    let input = match input_of(jira, &entry).await {
        Ok(i) => i,
        Err(e) => {
            let retry = e.jira.as_ref().is_some_and(|j| classify(conn, j));
            return commit_failure(
                store,
                &entry,
                caller,
                "worklog.sync",
                e,
                retry,
                entry.intent.is_some(),
                None,
            )
            .await;
        }
    };

    // Move: the worklog is on another issue. Delete it there first (a 404 means it is
    // already gone), then add on the new issue. The intent covers a crash in between.
    if let (Some(wid), Some(old_issue)) =
        (entry.worklog_id.clone(), entry.worklog_issue_key.clone())
    {
        if !old_issue.eq_ignore_ascii_case(&entry.issue_key) {
            if let Err(e) = store.set_time_entry_intent(&entry.id, Some("move")).await {
                tracing::warn!(error = ?e, "could not record the move intent");
            }
            let deleted = {
                let _g = jira.pacer().lock_issue(&old_issue).await;
                jira.delete_worklog(&old_issue, &wid).await
            };
            match deleted {
                Ok(()) | Err(jira_client::Error::NotFound { .. }) => {
                    entry.worklog_id = None;
                    entry.worklog_issue_key = None;
                    entry.intent = Some("move".into());
                }
                Err(e) => {
                    let retry = classify(conn, &e);
                    let _ = conn.observe::<()>(Err(describe_err(&e))).await;
                    return commit_failure(
                        store,
                        &entry,
                        caller,
                        "worklog.move",
                        SyncError::jira(e),
                        retry,
                        true,
                        None,
                    )
                    .await;
                }
            }
        }
    }

    let issue = entry.issue_key.clone();
    let _guard = jira.pacer().lock_issue(&issue).await;
    match entry.worklog_id.clone() {
        None => {
            let kind = if entry.intent.as_deref() == Some("move") {
                "worklog.move"
            } else {
                "worklog.create"
            };
            // A previous add may have reached Jira: adopt it instead of adding again.
            if entry.intent.is_some() {
                match find_ours(jira, &issue, &entry).await {
                    Ok(Some(w)) => {
                        let same = w.time_spent_seconds == Some(input.time_spent_seconds)
                            && w.started_at().map(|s| s.timestamp())
                                == Some(input.started.timestamp());
                        if same && !force {
                            let updated = worklog_updated_ms(&w);
                            return commit_success(
                                store,
                                &entry,
                                caller,
                                "worklog.reconcile",
                                SyncedWorklog {
                                    worklog_id: Some(w.id.clone()),
                                    worklog_issue_key: Some(issue.clone()),
                                    synced_hash: Some(entry.content_hash.clone()),
                                    remote_updated_ms: updated,
                                },
                                false,
                            )
                            .await;
                        }
                        entry.worklog_id = Some(w.id.clone());
                        entry.worklog_issue_key = Some(issue.clone());
                        return update(store, conn, &entry, caller, &input, force).await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let retry = classify(conn, &e);
                        return commit_failure(
                            store,
                            &entry,
                            caller,
                            "worklog.reconcile",
                            SyncError::jira(e),
                            retry,
                            true,
                            None,
                        )
                        .await;
                    }
                }
            }
            if let Err(e) = store.set_time_entry_intent(&entry.id, Some("add")).await {
                return commit_failure(
                    store,
                    &entry,
                    caller,
                    kind,
                    SyncError::new("store", format!("could not record the intent: {e}")),
                    true,
                    entry.intent.is_some(),
                    None,
                )
                .await;
            }
            match jira.add_worklog(&issue, &input).await {
                Ok(w) => {
                    let updated = worklog_updated_ms(&w);
                    commit_success(
                        store,
                        &entry,
                        caller,
                        kind,
                        SyncedWorklog {
                            worklog_id: Some(w.id),
                            worklog_issue_key: Some(issue.clone()),
                            synced_hash: Some(entry.content_hash.clone()),
                            remote_updated_ms: updated,
                        },
                        false,
                    )
                    .await
                }
                Err(e) => {
                    let maybe = e.write_may_have_applied();
                    if super::is_permission_refusal(&e) {
                        super::remember_refusal(
                            &entry.connection_id,
                            &issue,
                            &describe(&e),
                            cache_ttl,
                        );
                    }
                    let _ = conn.observe::<()>(Err(describe_err(&e))).await;
                    let retry = classify(conn, &e);
                    commit_failure(
                        store,
                        &entry,
                        caller,
                        kind,
                        SyncError::jira(e),
                        retry,
                        maybe,
                        None,
                    )
                    .await
                }
            }
        }
        Some(_) => update(store, conn, &entry, caller, &input, force).await,
    }
}

/// `observe` consumes the error; give it an equivalent one so the connection is
/// marked on a 401 while we keep ours.
fn describe_err(e: &jira_client::Error) -> jira_client::Error {
    match e {
        jira_client::Error::Unauthorized { ctx, messages } => jira_client::Error::Unauthorized {
            ctx: ctx.clone(),
            messages: messages.clone(),
        },
        other => jira_client::Error::Config(other.to_string()),
    }
}

async fn update(
    store: &Store,
    conn: &Connected,
    entry: &TimeEntry,
    caller: Caller<'_>,
    input: &WorklogInput,
    force: bool,
) -> Outcome {
    let jira = &conn.jira;
    let (Some(wid), issue) = (entry.worklog_id.clone(), entry.issue_key.clone()) else {
        return Outcome::Failed {
            error: SyncError::new("store", "no worklog to update"),
            retryable: false,
        };
    };
    if !force
        && entry.synced_hash.as_deref() == Some(entry.content_hash.as_str())
        && entry.intent.is_none()
    {
        return commit_success(
            store,
            entry,
            caller,
            "worklog.noop",
            SyncedWorklog {
                worklog_id: Some(wid),
                worklog_issue_key: Some(issue),
                synced_hash: entry.synced_hash.clone(),
                remote_updated_ms: entry.remote_updated_ms,
            },
            false,
        )
        .await;
    }
    match jira.update_worklog(&issue, &wid, input).await {
        Ok(w) => {
            let updated = worklog_updated_ms(&w);
            commit_success(
                store,
                entry,
                caller,
                "worklog.update",
                SyncedWorklog {
                    worklog_id: Some(w.id),
                    worklog_issue_key: Some(issue),
                    synced_hash: Some(entry.content_hash.clone()),
                    remote_updated_ms: updated,
                },
                false,
            )
            .await
        }
        Err(jira_client::Error::NotFound { .. }) if !force => {
            // Deleted in Jira meanwhile: both versions are kept until settled.
            commit_failure(
                store,
                entry,
                caller,
                "worklog.update",
                SyncError::new("conflict", format!("worklog {wid} was deleted in Jira")),
                false,
                false,
                Some(json!({ "deleted": true, "worklog_id": wid, "issue_key": issue })),
            )
            .await
        }
        Err(e) => {
            let retry = classify(conn, &e);
            let _ = conn.observe::<()>(Err(describe_err(&e))).await;
            commit_failure(
                store,
                entry,
                caller,
                "worklog.update",
                SyncError::jira(e),
                retry,
                false,
                None,
            )
            .await
        }
    }
}

/// Take the remote version into the entry (`prefer=remote`).
async fn adopt_remote(store: &Store, entry: &TimeEntry, caller: Caller<'_>) -> Outcome {
    let remote = entry.remote.clone().unwrap_or(Value::Null);
    if remote.get("deleted").and_then(Value::as_bool) == Some(true) {
        return commit_success(
            store,
            entry,
            caller,
            "worklog.resolve_remote",
            SyncedWorklog {
                worklog_id: None,
                worklog_issue_key: None,
                synced_hash: None,
                remote_updated_ms: None,
            },
            true,
        )
        .await;
    }
    let started = remote
        .get("started")
        .and_then(Value::as_str)
        .and_then(jira_client::parse_jira_datetime);
    let seconds = remote.get("time_spent_seconds").and_then(Value::as_i64);
    let (Some(started), Some(seconds)) = (started, seconds) else {
        return commit_failure(
            store,
            entry,
            caller,
            "worklog.resolve_remote",
            SyncError::new(
                "conflict",
                "the remote version is incomplete; sync with prefer=local",
            ),
            false,
            false,
            entry.remote.clone(),
        )
        .await;
    };
    let comment = remote
        .get("comment")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|c| !c.trim().is_empty());
    let issue = remote
        .get("issue_key")
        .and_then(Value::as_str)
        .unwrap_or(&entry.issue_key)
        .to_owned();
    let hash = content_hash(
        &issue,
        &jira_client::format_jira_datetime(&started),
        time::jira_seconds(seconds),
        comment.as_deref(),
    );
    let result: Result<(), StoreError> = async {
        let mut tx = store.begin().await?;
        tx.upsert_time_entry(&UpsertTimeEntry {
            tenant_id: entry.tenant_id.clone(),
            connection_id: entry.connection_id.clone(),
            source_id: entry.source_id.clone(),
            owner: entry.owner.clone(),
            issue_key: issue.clone(),
            started_at: Timestamp::from(started.with_timezone(&Utc)),
            started_offset_s: i64::from(started.offset().local_minus_utc()),
            time_zone: None,
            duration_s: seconds,
            comment: comment.clone(),
            sync_mode: entry.sync_mode.clone(),
            content_hash: hash.clone(),
            state: "synced".into(),
            next_sync_at: None,
        })
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = ?e, "could not take the remote worklog version");
        return Outcome::Failed {
            error: SyncError::new("store", "the database failed"),
            retryable: true,
        };
    }
    let mut adopted = entry.clone();
    adopted.content_hash = hash.clone();
    commit_success(
        store,
        &adopted,
        caller,
        "worklog.resolve_remote",
        SyncedWorklog {
            worklog_id: entry.worklog_id.clone(),
            worklog_issue_key: Some(issue),
            synced_hash: Some(hash),
            remote_updated_ms: remote.get("updated_ms").and_then(Value::as_i64),
        },
        false,
    )
    .await
}

/// Delete a leased entry's worklog and mark the entry deleted.
pub async fn delete_worklog(
    store: &Store,
    conn: &Connected,
    entry: &TimeEntry,
    job_id: Option<&str>,
) -> Outcome {
    let caller = Caller { job_id };
    let (Some(wid), Some(issue)) = (entry.worklog_id.clone(), entry.worklog_issue_key.clone())
    else {
        return commit_success(
            store,
            entry,
            caller,
            "worklog.delete",
            SyncedWorklog {
                worklog_id: None,
                worklog_issue_key: None,
                synced_hash: None,
                remote_updated_ms: None,
            },
            true,
        )
        .await;
    };
    let res = {
        let _g = conn.jira.pacer().lock_issue(&issue).await;
        conn.jira.delete_worklog(&issue, &wid).await
    };
    match res {
        Ok(()) | Err(jira_client::Error::NotFound { .. }) => {
            commit_success(
                store,
                entry,
                caller,
                "worklog.delete",
                SyncedWorklog {
                    worklog_id: None,
                    worklog_issue_key: None,
                    synced_hash: None,
                    remote_updated_ms: None,
                },
                true,
            )
            .await
        }
        Err(e) => {
            let retry = classify(conn, &e);
            let _ = conn.observe::<()>(Err(describe_err(&e))).await;
            commit_failure(
                store,
                entry,
                caller,
                "worklog.delete",
                SyncError::jira(e),
                retry,
                false,
                None,
            )
            .await
        }
    }
}

/// Mark an entry conflicting with the worklog Jira has (`remote`), recording it.
pub async fn record_conflict(store: &Store, entry: &TimeEntry, remote: Value, message: &str) {
    let result: Result<(), StoreError> = async {
        if !store
            .mark_time_entry_conflict(&entry.id, &remote, message)
            .await?
        {
            return Ok(());
        }
        let mut tx = store.begin().await?;
        tx.record_sync_attempt(&attempt(
            entry,
            Caller { job_id: None },
            &Record {
                kind: "worklog.remote_change",
                state: "conflict",
                issue_key: entry.worklog_issue_key.as_deref(),
                worklog_id: entry.worklog_id.as_deref(),
                error: None,
                detail: json!({ "message": message, "remote": remote }),
            },
        ))
        .await?;
        tx.append_event(event(
            entry,
            "worklog.failed",
            json!({
                "source_id": entry.source_id,
                "issue_key": entry.issue_key,
                "state": "conflict",
                "error": message,
            }),
        ))
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = ?e, "could not record a worklog conflict");
    }
}

/// The remote version of a worklog as stored on a conflict.
pub fn remote_version(issue_key: &str, w: &Worklog) -> Value {
    json!({
        "worklog_id": w.id,
        "issue_key": issue_key,
        "started": w.started,
        "time_spent_seconds": w.time_spent_seconds,
        "comment": w.comment.as_ref().map(JiraClient::rich_text_to_markdown),
        "updated_ms": worklog_updated_ms(w),
        "author": w.author.as_ref().and_then(|a| a.display_name.clone()),
    })
}
