//! Two-way awareness: read Jira's worklog change feeds (`/worklog/updated`,
//! `/worklog/deleted`) per connection and mark entries whose worklog was changed or
//! deleted by someone else `conflict`, keeping Jira's version beside ours.
//!
//! A change is someone else's when its `updatedTime` is later than the `updated` our
//! own last write got back, and the worklog's start, counted seconds or comment differ
//! from the entry. The same rule applies to `worklog_updated` / `worklog_deleted`
//! webhooks ([`worklogs_changed`], [`worklogs_deleted`]). Jira leaves the last minute out of the feeds, so a change shows up
//! a minute or more after it was made; the cursor is the newest change seen + 1 ms.

use std::collections::HashMap;

use chrono::Utc;
use futures::TryStreamExt;
use jira_bridge_store::time_entries::{FeedCursor, TimeEntry};
use jira_bridge_store::{ConnectionId, TenantId};
use jira_client::JiraClient;
use serde_json::json;

use super::sync::{record_conflict, remote_version};
use super::time;
use crate::connections;
use crate::http::AppState;

/// Poll every connection that has synced worklogs.
pub async fn poll_all(state: &AppState) -> anyhow::Result<u64> {
    let mut found = 0;
    for (tenant, connection) in state.store.connections_with_worklogs().await? {
        match poll(state, &tenant, &connection).await {
            Ok(n) => found += n,
            Err(e) => {
                tracing::warn!(connection = %connection, error = ?e, "worklog feed poll failed")
            }
        }
    }
    Ok(found)
}

fn differs(entry: &TimeEntry, w: &jira_client::Worklog) -> bool {
    let started = w.started_at().map(|s| s.timestamp());
    let seconds = w.time_spent_seconds;
    let comment = w
        .comment
        .as_ref()
        .map(JiraClient::rich_text_to_markdown)
        .unwrap_or_default();
    started != Some(entry.started_at.timestamp())
        || seconds != Some(time::jira_seconds(entry.duration_s))
        || comment.trim() != entry.comment.as_deref().unwrap_or_default().trim()
}

/// Whether a reported change can make the entry a conflict: synced, pending or failed,
/// and not being synced right now (a sync in flight, e.g. moving the worklog to
/// another issue, causes changes of its own and settles the entry itself).
fn watched(e: &TimeEntry) -> bool {
    matches!(e.state.as_str(), "synced" | "pending" | "failed")
        && e.lease_until.is_none_or(|until| until <= Utc::now())
}

/// Entries of `connection` whose worklog Jira changed (worklog id → Jira's change time
/// in ms) after the `updated` our own last write got back.
async fn changed_after_our_write(
    state: &AppState,
    connection: &ConnectionId,
    times: &HashMap<String, i64>,
) -> anyhow::Result<Vec<TimeEntry>> {
    let ids: Vec<String> = times.keys().cloned().collect();
    let mut candidates = Vec::new();
    for chunk in ids.chunks(500) {
        for e in state
            .store
            .time_entries_by_worklog(connection, chunk)
            .await?
        {
            let changed_at = e
                .worklog_id
                .as_ref()
                .and_then(|w| times.get(w))
                .copied()
                .unwrap_or(0);
            if watched(&e) && changed_at > e.remote_updated_ms.unwrap_or(0) {
                candidates.push(e);
            }
        }
    }
    Ok(candidates)
}

/// Mark `candidates` `conflict` where Jira's worklog (in `remote`) differs from the
/// entry. A worklog that matches the entry (our own write reported back, or a change
/// that changed nothing we keep) is not a conflict.
async fn record_changed(
    state: &AppState,
    candidates: &[TimeEntry],
    remote: &[jira_client::Worklog],
) -> u64 {
    let by_id: HashMap<&str, &jira_client::Worklog> =
        remote.iter().map(|w| (w.id.as_str(), w)).collect();
    let mut found = 0;
    for e in candidates {
        let Some(w) = e.worklog_id.as_deref().and_then(|id| by_id.get(id)) else {
            continue;
        };
        if !differs(e, w) {
            continue;
        }
        let issue = e.worklog_issue_key.as_deref().unwrap_or(&e.issue_key);
        record_conflict(
            &state.store,
            e,
            remote_version(issue, w),
            "the worklog was changed in Jira",
        )
        .await;
        found += 1;
    }
    found
}

/// Worklogs Jira reports changed (a `worklog_updated` webhook carries the worklog):
/// the same rule as the feed. Answers how many conflicts were found.
pub async fn worklogs_changed(
    state: &AppState,
    connection: &ConnectionId,
    worklogs: &[jira_client::Worklog],
) -> anyhow::Result<u64> {
    let times: HashMap<String, i64> = worklogs
        .iter()
        .filter_map(|w| {
            let ms = w
                .updated
                .as_deref()
                .and_then(jira_client::parse_jira_datetime)?
                .timestamp_millis();
            Some((w.id.clone(), ms))
        })
        .collect();
    let candidates = changed_after_our_write(state, connection, &times).await?;
    Ok(record_changed(state, &candidates, worklogs).await)
}

/// Worklogs Jira reports deleted (feed or `worklog_deleted` webhook): their entries
/// become conflicts with `{"deleted": true}`. Answers how many.
pub async fn worklogs_deleted(
    state: &AppState,
    connection: &ConnectionId,
    ids: &[String],
) -> anyhow::Result<u64> {
    let mut found = 0;
    for chunk in ids.chunks(500) {
        for e in state
            .store
            .time_entries_by_worklog(connection, chunk)
            .await?
        {
            if !watched(&e) {
                continue;
            }
            let issue = e
                .worklog_issue_key
                .clone()
                .unwrap_or_else(|| e.issue_key.clone());
            record_conflict(
                &state.store,
                &e,
                json!({ "deleted": true, "worklog_id": e.worklog_id, "issue_key": issue }),
                "the worklog was deleted in Jira",
            )
            .await;
            found += 1;
        }
    }
    Ok(found)
}

/// Poll one connection; answers how many conflicts were found.
pub async fn poll(
    state: &AppState,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> anyhow::Result<u64> {
    let conn = connections::connect(state, tenant, connection).await?;
    let now_ms = Utc::now().timestamp_millis();
    let cursor = state
        .store
        .worklog_feed_cursor(connection)
        .await?
        .unwrap_or(FeedCursor {
            updated_since: now_ms - 3_600_000,
            deleted_since: now_ms - 3_600_000,
        });
    let mut next = cursor;
    let mut found = 0;

    let updated: Vec<_> = conn
        .jira
        .worklogs_updated_since(cursor.updated_since)
        .try_collect()
        .await?;
    let times: HashMap<String, i64> = updated
        .iter()
        .map(|c| (c.worklog_id.to_string(), c.updated_time))
        .collect();
    if let Some(max) = updated.iter().map(|c| c.updated_time).max() {
        next.updated_since = next.updated_since.max(max + 1);
    }
    let candidates = changed_after_our_write(state, connection, &times).await?;
    if !candidates.is_empty() {
        let wids: Vec<i64> = candidates
            .iter()
            .filter_map(|e| e.worklog_id.as_deref()?.parse().ok())
            .collect();
        let remote = conn.jira.worklogs_by_ids(&wids).await?;
        found += record_changed(state, &candidates, &remote).await;
    }

    let deleted: Vec<_> = conn
        .jira
        .worklogs_deleted_since(cursor.deleted_since)
        .try_collect()
        .await?;
    if let Some(max) = deleted.iter().map(|c| c.updated_time).max() {
        next.deleted_since = next.deleted_since.max(max + 1);
    }
    let ids: Vec<String> = deleted.iter().map(|c| c.worklog_id.to_string()).collect();
    found += worklogs_deleted(state, connection, &ids).await?;
    state
        .store
        .set_worklog_feed_cursor(tenant, connection, next)
        .await?;
    Ok(found)
}
