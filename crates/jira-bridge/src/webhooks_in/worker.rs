//! Applies stored deliveries in batches, in arrival order.
//!
//! - `jira:issue_created` / `jira:issue_updated`: the linked tickets of the issue get
//!   its status and status category, with `ticket.status_changed` in the same
//!   transaction (through [`crate::tickets::apply_status`], the function the status
//!   poll uses), and its summary (`ticket.summary_changed`). A payload older than what
//!   is stored (Jira's `updated`) is ignored.
//! - `jira:issue_deleted`: the linked tickets are marked (`issue_deleted_at`,
//!   `ticket.issue_deleted`).
//! - `worklog_updated` / `worklog_deleted`: time-entry conflict detection, the rule of
//!   the worklog feed poll ([`crate::worklogs::feed`]).
//! - Our own writes are not echoed: after a transition through the API the link
//!   already holds the new status, so the webhook reporting it changes nothing and
//!   appends no event; a worklog we wrote matches its entry, so it is no conflict.
//! - Other events are recorded with an outcome and otherwise ignored.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use jira_bridge_store::inbound::InboundWebhook;
use jira_bridge_store::links::Link;
use jira_bridge_store::{ConnectionId, Timestamp};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::http::AppState;

/// Deliveries taken per batch.
pub const BATCH: i64 = 500;

static WAKE: Notify = Notify::const_new();

/// Tell the worker a delivery was stored.
pub fn wake() {
    WAKE.notify_one();
}

/// Background task: apply stored deliveries until shutdown.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let batch = match state.store.pending_inbound(BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = ?e, "inbound webhooks: cannot read pending deliveries");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = WAKE.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            continue;
        }
        let done = apply_batch(&state, &batch).await;
        if let Err(e) = state.store.mark_inbound_applied(&done).await {
            tracing::warn!(error = ?e, "inbound webhooks: cannot mark deliveries applied");
            pause(&shutdown, Duration::from_secs(1)).await;
        }
    }
}

async fn pause(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

fn issue_id(body: &Value) -> Option<String> {
    match &body["issue"]["id"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Apply one batch; answers `(seq, outcome)` for every delivery.
pub async fn apply_batch(state: &AppState, batch: &[InboundWebhook]) -> Vec<(i64, String)> {
    let parsed: Vec<Option<Value>> = batch
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).ok())
        .collect();
    // The links of every issue mentioned, one query per connection.
    let mut wanted: HashMap<&ConnectionId, Vec<String>> = HashMap::new();
    for (d, body) in batch.iter().zip(&parsed) {
        if let Some(id) = body.as_ref().and_then(issue_id) {
            wanted.entry(&d.connection_id).or_default().push(id);
        }
    }
    let mut links: HashMap<(ConnectionId, String), Vec<Link>> = HashMap::new();
    for (con, mut ids) in wanted {
        ids.sort();
        ids.dedup();
        for chunk in ids.chunks(400) {
            match state.store.links_by_issue_ids(con, chunk).await {
                Ok(found) => {
                    for l in found {
                        if let Some(iid) = l.issue_id.clone() {
                            links.entry((con.clone(), iid)).or_default().push(l);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "inbound webhooks: cannot read links"),
            }
        }
    }
    let mut out = Vec::with_capacity(batch.len());
    for (d, body) in batch.iter().zip(parsed) {
        let outcome = match body {
            None => "failed: not JSON".to_owned(),
            Some(body) => apply_one(state, d, &body, &mut links).await,
        };
        out.push((d.seq, outcome));
    }
    out
}

async fn apply_one(
    state: &AppState,
    d: &InboundWebhook,
    body: &Value,
    links: &mut HashMap<(ConnectionId, String), Vec<Link>>,
) -> String {
    match d.event.as_str() {
        "jira:issue_created" | "jira:issue_updated" => {}
        "jira:issue_deleted" => return apply_issue_deleted(state, d, body, links).await,
        "worklog_updated" => {
            let Ok(w) = serde_json::from_value::<jira_client::Worklog>(body["worklog"].clone())
            else {
                return "ignored: no worklog".into();
            };
            return match crate::worklogs::feed::worklogs_changed(state, &d.connection_id, &[w])
                .await
            {
                Ok(0) => "applied: no conflict".into(),
                Ok(n) => format!("applied: {n} conflict(s)"),
                Err(e) => format!("failed: {e}"),
            };
        }
        "worklog_deleted" => {
            let id = match &body["worklog"]["id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return "ignored: no worklog id".into(),
            };
            return match crate::worklogs::feed::worklogs_deleted(state, &d.connection_id, &[id])
                .await
            {
                Ok(0) => "applied: no conflict".into(),
                Ok(n) => format!("applied: {n} conflict(s)"),
                Err(e) => format!("failed: {e}"),
            };
        }
        e if e.contains("worklog") => return "ignored: worklog created".into(),
        _ => return "ignored".into(),
    }
    let Some(iid) = issue_id(body) else {
        return "ignored: no issue id".into();
    };
    let Some(linked) = links.get_mut(&(d.connection_id.clone(), iid)) else {
        return "ignored: not linked".into();
    };
    let fields = &body["issue"]["fields"];
    let status = serde_json::from_value::<jira_client::Status>(fields["status"].clone()).ok();
    let summary = fields["summary"].as_str();
    if status.is_none() && summary.is_none() {
        return "ignored: no status or summary".into();
    }
    let updated = fields["updated"]
        .as_str()
        .and_then(jira_client::parse_jira_datetime)
        .map(|t| t.with_timezone(&Utc));
    let mut changed = 0;
    for link in linked.iter_mut() {
        if let (Some(stored), Some(u)) = (link.remote_updated_at, updated) {
            if u < stored {
                continue;
            }
        }
        let mut this = false;
        if let Some(summary) = summary {
            if link.summary.as_deref() != Some(summary) {
                match crate::tickets::apply_summary(
                    &state.store,
                    link,
                    summary,
                    updated.map(Timestamp::from),
                )
                .await
                {
                    Ok(c) => {
                        if c {
                            link.summary = Some(summary.to_owned());
                        }
                        this |= c;
                    }
                    Err(e) => return format!("failed: {e}"),
                }
            }
        }
        if let Some(status) = &status {
            let differs = link.status.as_deref() != Some(status.name.as_str())
                || (status.category_key().is_some()
                    && link.status_category.as_deref() != status.category_key());
            if differs {
                match crate::tickets::apply_status(
                    &state.store,
                    link,
                    status,
                    updated.map(Timestamp::from),
                )
                .await
                {
                    Ok(after) => {
                        *link = after;
                        this = true;
                    }
                    Err(e) => return format!("failed: {e}"),
                }
            }
        }
        if this {
            changed += 1;
        }
    }
    if changed > 0 {
        format!("applied: {changed} link(s)")
    } else {
        "applied: unchanged".into()
    }
}

/// `jira:issue_deleted`: every linked ticket of the issue is marked (kept, with
/// `issue_deleted_at` and a `ticket.issue_deleted` event).
async fn apply_issue_deleted(
    state: &AppState,
    d: &InboundWebhook,
    body: &Value,
    links: &mut HashMap<(ConnectionId, String), Vec<Link>>,
) -> String {
    let Some(iid) = issue_id(body) else {
        return "ignored: no issue id".into();
    };
    let Some(linked) = links.get_mut(&(d.connection_id.clone(), iid)) else {
        return "ignored: not linked".into();
    };
    let at = body["timestamp"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or(d.received_at);
    let mut marked = 0;
    for link in linked.iter_mut() {
        if link.issue_deleted_at.is_some() {
            continue;
        }
        match crate::tickets::mark_issue_deleted(&state.store, link, at).await {
            Ok(m) => {
                link.issue_deleted_at = Some(at);
                if m {
                    marked += 1;
                }
            }
            Err(e) => return format!("failed: {e}"),
        }
    }
    format!("applied: {marked} link(s) marked deleted")
}
