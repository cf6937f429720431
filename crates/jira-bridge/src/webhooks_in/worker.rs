//! Applies stored deliveries in batches, in arrival order.
//!
//! - `jira:issue_created` / `jira:issue_updated`: the linked tickets of the issue get
//!   its status and status category, with `ticket.status_changed` (through
//!   [`crate::tickets::apply_status_in`], the rule the status poll uses), and its
//!   summary (`ticket.summary_changed`). A payload older than what is stored (Jira's
//!   `updated`) is ignored.
//! - `jira:issue_deleted`: the linked tickets are marked (`issue_deleted_at`,
//!   `ticket.issue_deleted`).
//! - `worklog_updated` / `worklog_deleted`: time-entry conflict detection, the rule of
//!   the worklog feed poll ([`crate::worklogs::feed`]).
//! - Our own writes are not echoed: after a transition through the API the link
//!   already holds the new status, so the webhook reporting it changes nothing and
//!   appends no event; a worklog we wrote matches its entry, so it is no conflict.
//! - Other events are recorded with an outcome and otherwise ignored.
//!
//! Link changes, their events and the marking of the deliveries as applied are
//! written together, one transaction for many deliveries (events are published when
//! it commits). On SQLite there is one writer at a time, and the intake's
//! acknowledgements wait for their commit, so the worker takes its turn at writing
//! after the intake ([`super::intake::WriteTurn`]) and ends its transaction as soon as
//! the intake waits for its turn, or after [`TX_BUDGET`]. When a transaction fails,
//! its deliveries are applied again one per transaction, through the same code, so one
//! delivery that cannot be applied is recorded as `failed: …` and does not hold back
//! the others. Worklog deliveries are applied by the feed's own writes before the
//! link transactions.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use jira_bridge_store::inbound::InboundWebhook;
use jira_bridge_store::links::Link;
use jira_bridge_store::{ConnectionId, StoreError, StoreTx, Timestamp};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::http::AppState;

/// Deliveries taken per batch.
pub const BATCH: i64 = 500;

/// How long one apply transaction may hold the write turn (it ends sooner when the
/// intake waits).
pub const TX_BUDGET: Duration = Duration::from_millis(10);

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
        if let Err(e) = apply_batch(&state, &batch).await {
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

/// The links of the issues deliveries are about, by (connection, issue id).
type Links = HashMap<(ConnectionId, String), Vec<Link>>;

/// One delivery of a batch: its parsed body, or its outcome when that is known
/// before the link transaction (not JSON, a worklog event, an ignored event).
struct Item<'a> {
    delivery: &'a InboundWebhook,
    body: Option<Value>,
    outcome: Option<String>,
}

impl Item<'_> {
    fn key(&self) -> Option<(ConnectionId, String)> {
        let iid = self.body.as_ref().and_then(issue_id)?;
        Some((self.delivery.connection_id.clone(), iid))
    }
}

/// Apply one batch and mark every delivery applied with its outcome. `Err` only when
/// the outcomes could not be recorded (the deliveries stay pending and come again).
pub async fn apply_batch(state: &AppState, batch: &[InboundWebhook]) -> Result<(), StoreError> {
    let mut items: Vec<Item<'_>> = batch
        .iter()
        .map(|d| Item {
            delivery: d,
            body: serde_json::from_str::<Value>(&d.body).ok(),
            outcome: None,
        })
        .collect();
    let mut links = read_links(state, &items).await;
    // What does not touch a link: decided (worklogs: applied through the feed's own
    // writes) before the link transaction.
    for item in &mut items {
        item.outcome = match &item.body {
            None => Some("failed: not JSON".to_owned()),
            Some(body) => apply_unlinked(state, item.delivery, body).await,
        };
    }
    let mut start = 0;
    while start < items.len() {
        let attempted = match apply_in_tx(state, &items[start..], &mut links).await {
            Ok(n) => {
                start += n;
                continue;
            }
            Err((n, e)) => {
                tracing::warn!(
                    error = ?e,
                    n,
                    "inbound webhooks: applying deliveries together failed; applying them one by one"
                );
                &items[start..start + n]
            }
        };
        start += attempted.len();
        let mut failed = Vec::new();
        for item in attempted {
            if let Err((_, e)) = apply_in_tx(state, std::slice::from_ref(item), &mut links).await {
                tracing::warn!(seq = item.delivery.seq, error = ?e, "inbound webhooks: a delivery could not be applied");
                failed.push((item.delivery.seq, format!("failed: {e}")));
            }
        }
        state.store.mark_inbound_applied(&failed).await?;
    }
    Ok(())
}

/// The links of every issue mentioned, one query per connection (and 400 issues).
async fn read_links(state: &AppState, items: &[Item<'_>]) -> Links {
    let mut wanted: HashMap<&ConnectionId, Vec<String>> = HashMap::new();
    for item in items {
        if let Some(id) = item.body.as_ref().and_then(issue_id) {
            wanted
                .entry(&item.delivery.connection_id)
                .or_default()
                .push(id);
        }
    }
    let mut links = Links::new();
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
    links
}

/// Apply deliveries from the front of `items` (link changes, their events, the
/// outcomes) in one transaction, taken at the intake's turn: until all are applied,
/// the intake waits for its turn, or [`TX_BUDGET`] has passed. Answers how many were
/// applied (at least one). On `Err` (with how many were attempted) nothing was written
/// and the links are as they were.
async fn apply_in_tx(
    state: &AppState,
    items: &[Item<'_>],
    links: &mut Links,
) -> Result<usize, (usize, StoreError)> {
    let turn = state.inbound.turn();
    let _turn = turn.worker().await;
    let started = std::time::Instant::now();
    let mut undo: Vec<((ConnectionId, String), Vec<Link>)> = Vec::new();
    let mut done = Vec::new();
    let mut attempted = 0;
    let result = async {
        let mut tx = state.store.begin().await?;
        for item in items {
            attempted += 1;
            let outcome = match (&item.outcome, &item.body) {
                (Some(o), _) => o.clone(),
                (None, Some(body)) => {
                    if let Some(k) = item.key() {
                        if !undo.iter().any(|(u, _)| *u == k) {
                            if let Some(v) = links.get(&k) {
                                undo.push((k, v.clone()));
                            }
                        }
                    }
                    apply_linked(&mut tx, item.delivery, body, links).await?
                }
                (None, None) => "failed: not JSON".to_owned(),
            };
            done.push((item.delivery.seq, outcome));
            if turn.intake_waits() || started.elapsed() >= TX_BUDGET {
                break;
            }
        }
        tx.mark_inbound_applied(&done).await?;
        tx.commit().await
    }
    .await;
    turn.worker_done();
    match result {
        Ok(()) => Ok(done.len()),
        Err(e) => {
            links.extend(undo);
            Err((attempted.max(1), e))
        }
    }
}

/// Events that change no link: their outcome (worklog events are applied here, through
/// the feed's rule and writes). `None` for the issue events, applied in the link
/// transaction.
async fn apply_unlinked(state: &AppState, d: &InboundWebhook, body: &Value) -> Option<String> {
    Some(match d.event.as_str() {
        "jira:issue_created" | "jira:issue_updated" | "jira:issue_deleted" => return None,
        "worklog_updated" => {
            let Ok(w) = serde_json::from_value::<jira_client::Worklog>(body["worklog"].clone())
            else {
                return Some("ignored: no worklog".into());
            };
            match crate::worklogs::feed::worklogs_changed(state, &d.connection_id, &[w]).await {
                Ok(0) => "applied: no conflict".into(),
                Ok(n) => format!("applied: {n} conflict(s)"),
                Err(e) => format!("failed: {e}"),
            }
        }
        "worklog_deleted" => {
            let id = match &body["worklog"]["id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Some("ignored: no worklog id".into()),
            };
            match crate::worklogs::feed::worklogs_deleted(state, &d.connection_id, &[id]).await {
                Ok(0) => "applied: no conflict".into(),
                Ok(n) => format!("applied: {n} conflict(s)"),
                Err(e) => format!("failed: {e}"),
            }
        }
        e if e.contains("worklog") => "ignored: worklog created".into(),
        _ => "ignored".into(),
    })
}

/// An issue event, inside the transaction: its outcome; `Err` when the store failed
/// (the transaction is then rolled back).
async fn apply_linked(
    tx: &mut StoreTx,
    d: &InboundWebhook,
    body: &Value,
    links: &mut Links,
) -> Result<String, StoreError> {
    let Some(iid) = issue_id(body) else {
        return Ok("ignored: no issue id".into());
    };
    let Some(linked) = links.get_mut(&(d.connection_id.clone(), iid)) else {
        return Ok("ignored: not linked".into());
    };
    if d.event == "jira:issue_deleted" {
        return apply_issue_deleted(tx, d, body, linked).await;
    }
    let fields = &body["issue"]["fields"];
    let status = serde_json::from_value::<jira_client::Status>(fields["status"].clone()).ok();
    let summary = fields["summary"].as_str();
    if status.is_none() && summary.is_none() {
        return Ok("ignored: no status or summary".into());
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
            if link.summary.as_deref() != Some(summary)
                && crate::tickets::apply_summary_in(tx, link, summary, updated.map(Timestamp::from))
                    .await?
            {
                link.summary = Some(summary.to_owned());
                link.remote_updated_at = updated.or(link.remote_updated_at);
                this = true;
            }
        }
        if let Some(status) = &status {
            let differs = link.status.as_deref() != Some(status.name.as_str())
                || (status.category_key().is_some()
                    && link.status_category.as_deref() != status.category_key());
            if differs {
                if let Some((after, c)) =
                    crate::tickets::apply_status_in(tx, link, status, updated.map(Timestamp::from))
                        .await?
                {
                    *link = after;
                    this |= c;
                }
            }
        }
        if this {
            changed += 1;
        }
    }
    Ok(if changed > 0 {
        format!("applied: {changed} link(s)")
    } else {
        "applied: unchanged".into()
    })
}

/// `jira:issue_deleted`: every linked ticket of the issue is marked (kept, with
/// `issue_deleted_at` and a `ticket.issue_deleted` event).
async fn apply_issue_deleted(
    tx: &mut StoreTx,
    d: &InboundWebhook,
    body: &Value,
    linked: &mut [Link],
) -> Result<String, StoreError> {
    let at = body["timestamp"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or(d.received_at);
    let mut marked = 0;
    for link in linked.iter_mut() {
        if link.issue_deleted_at.is_some() {
            continue;
        }
        if crate::tickets::mark_issue_deleted_in(tx, link, at).await? {
            marked += 1;
        }
        link.issue_deleted_at = Some(at);
    }
    Ok(format!("applied: {marked} link(s) marked deleted"))
}
