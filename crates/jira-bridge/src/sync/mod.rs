//! Status sync by incremental JQL polling, per connection.
//!
//! One run asks Jira for the issues of the linked projects updated at or after the
//! connection's watermark minus an overlap:
//!
//! ```text
//! project in ("OPS", "WEB") AND updated >= "2026-11-22 14:05" ORDER BY updated ASC
//! ```
//!
//! - The date-time is written by the JQL builder **in the connection user's time
//!   zone** (Jira reads bare JQL date-times in the searching user's profile zone), and
//!   rounded down to the minute on the safe side, so a user in Auckland or Honolulu
//!   gets the same window as one in UTC.
//! - Pages follow `nextPageToken`, 100 issues each, with only `status`, `updated` and
//!   `summary`.
//! - Only issues that have a link are looked at; a link whose status name or category
//!   changed is updated and `ticket.status_changed` is appended **in the same
//!   transaction**. Re-reading an issue in the overlap changes nothing (its status is
//!   already stored), so overlaps never repeat events.
//! - The new watermark is the latest `updated` seen (Jira's own clock, so clock skew
//!   between this service and Jira does not matter); without results it stays.
//! - The first run of a connection starts at its oldest link.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jira_bridge_store::links::{Link, SyncState};
use jira_bridge_store::{ConnectionId, Store, StoreError, TenantId, Timestamp};
use jira_client::jql::{user_zone, Clause, Direction, Query};
use jira_client::{JiraClient, SearchRequest};
use serde::Serialize;

use crate::tickets::apply_status;

/// Job kind of an on-demand or scheduled sync (one item per connection).
pub const KIND: &str = "tickets.sync";

/// Tunables of a sync run.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Re-read this much before the watermark (index lag, equal timestamps).
    pub overlap: Duration,
    /// Issues per search page.
    pub page_size: u32,
    /// Most pages one run reads (the rest is read by the next run).
    pub max_pages: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(120),
            page_size: 100,
            max_pages: 200,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// Search calls made.
    pub searches: u32,
    /// Issues returned by the searches.
    pub seen: u64,
    /// Linked issues among them.
    pub linked: u64,
    /// Links whose status changed.
    pub changed: u64,
    /// The JQL used.
    pub jql: String,
    /// Watermark after the run.
    pub watermark: Option<DateTime<Utc>>,
}

/// Errors of a sync run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Jira failed.
    #[error(transparent)]
    Jira(#[from] jira_client::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sync the statuses of a connection's links.
pub async fn sync_connection(
    store: &Store,
    client: &JiraClient,
    tenant: &TenantId,
    connection: &ConnectionId,
    opts: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let projects = store.linked_projects(connection).await?;
    let state = store.get_sync_state(connection).await?;
    let mut report = SyncReport::default();
    if projects.is_empty() {
        return Ok(report);
    }
    let start = match state.as_ref().and_then(|s| s.watermark) {
        Some(w) => w,
        None => match store.oldest_link_created_at(connection).await? {
            Some(t) => t,
            None => return Ok(report),
        },
    };
    let overlap = chrono::Duration::from_std(opts.overlap).unwrap_or(chrono::Duration::zero());
    let me = client.myself().await?;
    let zone = me
        .time_zone
        .as_deref()
        .and_then(|z| user_zone(z).ok())
        .unwrap_or(chrono_tz::UTC);
    let jql =
        Query::new(Clause::project_in(&projects).and(Clause::updated_since(start - overlap, zone)))
            .order_by("updated", Direction::Asc)
            .build()
            .map_err(|e| jira_client::Error::Config(e.to_string()))?;
    report.jql = jql.clone();
    let req = SearchRequest {
        jql,
        fields: vec!["status".into(), "updated".into(), "summary".into()],
        page_size: Some(opts.page_size),
        ..SearchRequest::default()
    };
    let mut watermark = start;
    let mut cursor: Option<String> = None;
    for _ in 0..opts.max_pages {
        let page = client.search_page(&req, cursor.as_deref()).await?;
        report.searches += 1;
        report.seen += page.issues.len() as u64;
        let ids: Vec<String> = page.issues.iter().map(|i| i.id.clone()).collect();
        let links = store.links_by_issue_ids(connection, &ids).await?;
        let by_issue: std::collections::HashMap<&str, &Link> = links
            .iter()
            .filter_map(|l| l.issue_id.as_deref().map(|id| (id, l)))
            .collect();
        for issue in &page.issues {
            let updated = issue
                .fields
                .get("updated")
                .and_then(serde_json::Value::as_str)
                .and_then(jira_client::parse_jira_datetime)
                .map(|t| t.with_timezone(&Utc));
            if let Some(u) = updated {
                watermark = watermark.max(u);
            }
            let Some(link) = by_issue.get(issue.id.as_str()) else {
                continue;
            };
            report.linked += 1;
            let Some(status) = issue.field::<jira_client::Status>("status") else {
                continue;
            };
            let changed = link.status.as_deref() != Some(status.name.as_str())
                || (status.category_key().is_some()
                    && link.status_category.as_deref() != status.category_key());
            if changed {
                apply_status(store, link, &status, updated.map(Timestamp::from)).await?;
                report.changed += 1;
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    report.watermark = Some(watermark);
    store
        .put_sync_state(&SyncState {
            connection_id: connection.clone(),
            tenant_id: tenant.clone(),
            watermark: Some(watermark),
            last_run_at: Some(Utc::now()),
            last_searches: i64::from(report.searches),
            last_changed: report.changed as i64,
        })
        .await?;
    Ok(report)
}
