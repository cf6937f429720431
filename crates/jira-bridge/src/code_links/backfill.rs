//! The `code_links.backfill` job: historical records (title, branch, notes, URLs) →
//! one issue per record, linked with purpose `code:<KEY>`.
//!
//! Per record, the fields are read in order title, branch, notes, URLs; the first
//! field naming at least one existing issue decides: exactly one → `linked`, more →
//! `ambiguous` (nothing linked, the candidates reported). No existing issue in any
//! field → `no_match` (the keys that named no issue are reported). Items run 100 at a
//! time: one extraction, one bulk fetch per 100 distinct keys, then the ledger writes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jira_bridge_store::jobs::{ItemError, JobItem, NewJobItem};
use jira_bridge_store::ConnectionId;
use jira_client::keys::{IssueKey, KeyExtractor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{existing, keys_in_order, link_issue, FoundIn};
use crate::http::AppState;
use crate::jobs::{ItemOutcome, JobContext, JobHandler, Registry};
use crate::tickets::Source;

/// Job kind.
pub const KIND: &str = "code_links.backfill";
/// Records per batch.
pub const BATCH: u32 = 100;
/// Most records per backfill.
pub const MAX_RECORDS: usize = 10_000;

/// One historical record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackfillRecord {
    /// The record's id in the host application (the link's source id).
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Branch name.
    #[serde(default)]
    pub branch: Option<String>,
    /// Free-text notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// URLs (e.g. a Jira browse URL).
    #[serde(default)]
    pub urls: Vec<String>,
}

/// Job-wide payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPayload {
    /// Connection.
    pub connection_id: ConnectionId,
    /// Source kind of every record.
    pub source_kind: String,
}

/// What happened to a record (an item's `result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordResult {
    /// The record.
    pub record_id: String,
    /// `linked`, `ambiguous` or `no_match`.
    pub outcome: String,
    /// The issue linked (`linked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The field that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_in: Option<FoundIn>,
    /// The ticket recording the link (`linked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// Existing issues named by the deciding field (`ambiguous`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub candidates: Vec<String>,
    /// Keys found that name no existing issue.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub missing: Vec<String>,
}

/// The job items of records (validated: non-empty unique ids).
pub fn job_items(
    records: Vec<BackfillRecord>,
) -> Result<Vec<NewJobItem>, std::collections::BTreeMap<String, String>> {
    let mut errors = std::collections::BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (i, r) in records.iter().enumerate() {
        if r.id.trim().is_empty() || r.id.len() > 500 {
            errors.insert(format!("records[{i}].id"), "1 to 500 characters".into());
        } else if !seen.insert(r.id.clone()) {
            errors.insert(format!("records[{i}].id"), "appears twice".into());
        }
        let size = r.title.as_ref().map_or(0, String::len)
            + r.branch.as_ref().map_or(0, String::len)
            + r.notes.as_ref().map_or(0, String::len)
            + r.urls.iter().map(String::len).sum::<usize>();
        if size > 100_000 {
            errors.insert(
                format!("records[{i}]"),
                "at most 100,000 bytes of text".into(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(records
        .into_iter()
        .map(|r| {
            let mut item = NewJobItem::new(json!(r));
            item.item_key = Some(r.id.clone());
            item
        })
        .collect())
}

fn fields_of(r: &BackfillRecord) -> Vec<(FoundIn, String)> {
    let mut f = Vec::new();
    if let Some(t) = &r.title {
        f.push((FoundIn::Title, t.clone()));
    }
    if let Some(b) = &r.branch {
        f.push((FoundIn::Branch, b.clone()));
    }
    if let Some(n) = &r.notes {
        f.push((FoundIn::Notes, n.clone()));
    }
    if !r.urls.is_empty() {
        f.push((FoundIn::Url, r.urls.join("\n")));
    }
    f
}

/// Decide a record from the keys of each of its fields and the existing issues.
pub fn decide(x: &KeyExtractor, r: &BackfillRecord, exists: &dyn Fn(&str) -> bool) -> RecordResult {
    let mut result = RecordResult {
        record_id: r.id.clone(),
        outcome: "no_match".into(),
        key: None,
        found_in: None,
        ticket_id: None,
        candidates: Vec::new(),
        missing: Vec::new(),
    };
    let mut missing = Vec::new();
    for (where_, text) in fields_of(r) {
        let keys = x.extract(&text);
        let hits: Vec<String> = keys
            .iter()
            .map(|k| k.to_string())
            .filter(|k| exists(k))
            .collect();
        for k in keys.iter().map(|k| k.to_string()).filter(|k| !exists(k)) {
            if !missing.contains(&k) {
                missing.push(k);
            }
        }
        match hits.len() {
            0 => continue,
            1 => {
                result.outcome = "linked".into();
                result.key = hits.into_iter().next();
                result.found_in = Some(where_);
                break;
            }
            _ => {
                result.outcome = "ambiguous".into();
                result.candidates = hits;
                result.found_in = Some(where_);
                break;
            }
        }
    }
    result.missing = missing;
    result
}

/// Runs backfill batches.
pub struct BackfillHandler {
    state: AppState,
}

impl BackfillHandler {
    /// A handler using the service's connections.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn all_failed(items: &[JobItem], error: ItemError, retryable: bool) -> Vec<ItemOutcome> {
    items
        .iter()
        .map(|_| ItemOutcome::Failed {
            error: error.clone(),
            retryable,
        })
        .collect()
}

impl JobHandler for BackfillHandler {
    fn kind(&self) -> &str {
        KIND
    }

    fn batch_size(&self) -> u32 {
        BATCH
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        items: &'a [JobItem],
    ) -> BoxFuture<'a, Vec<ItemOutcome>> {
        Box::pin(async move {
            let payload: JobPayload = match serde_json::from_value(ctx.job.payload.clone()) {
                Ok(p) => p,
                Err(e) => {
                    return all_failed(
                        items,
                        ItemError::new("invalid_payload", e.to_string()),
                        false,
                    )
                }
            };
            let tenant = &ctx.job.tenant_id;
            let c = match crate::connections::connect(&self.state, tenant, &payload.connection_id)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    use crate::connections::ConnectionError as C;
                    let retryable = !matches!(e, C::Disabled(_) | C::Expired(_) | C::Invalid(_));
                    return all_failed(
                        items,
                        ItemError::new(
                            "connection_unusable",
                            format!("the connection cannot be used: {e}"),
                        ),
                        retryable,
                    );
                }
            };
            let known = match crate::keys::connection_projects(&self.state, &c).await {
                Ok(k) => k,
                Err(e) => {
                    return all_failed(items, ItemError::new("jira", e.to_string()), true);
                }
            };
            let allow: Vec<String> = known.into_iter().collect();
            let x = KeyExtractor::new().allow_projects(&allow);
            let records: Vec<Option<BackfillRecord>> = items
                .iter()
                .map(|i| serde_json::from_value(i.payload.clone()).ok())
                .collect();
            let mut all_keys: Vec<IssueKey> = Vec::new();
            let mut seen = BTreeSet::new();
            for r in records.iter().flatten() {
                let fields = fields_of(r);
                let refs: Vec<(FoundIn, &str)> =
                    fields.iter().map(|(w, t)| (*w, t.as_str())).collect();
                for (k, _) in keys_in_order(&x, &refs) {
                    if seen.insert(k.clone()) {
                        all_keys.push(k);
                    }
                }
            }
            let issues = match existing(&c.jira, &all_keys).await {
                Ok(m) => m,
                Err(e) => {
                    let retryable = e.is_transient();
                    let _ = c.observe::<()>(Err(e)).await;
                    return all_failed(
                        items,
                        ItemError::new("jira", "looking up the issues failed"),
                        retryable,
                    );
                }
            };
            let by_key: HashMap<&str, &jira_client::Issue> =
                issues.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let mut out = Vec::with_capacity(items.len());
            for r in records {
                let Some(r) = r else {
                    out.push(ItemOutcome::failed(ItemError::new(
                        "invalid_payload",
                        "not a record",
                    )));
                    continue;
                };
                let mut result = decide(&x, &r, &|k| by_key.contains_key(k));
                if let Some(key) = result.key.clone() {
                    let Some(issue) = by_key.get(key.as_str()) else {
                        out.push(ItemOutcome::retryable(ItemError::new(
                            "internal",
                            "issue vanished",
                        )));
                        continue;
                    };
                    let source = Source {
                        kind: payload.source_kind.clone(),
                        id: r.id.clone(),
                    };
                    match link_issue(
                        &ctx.store,
                        &c.jira,
                        tenant,
                        &payload.connection_id,
                        &source,
                        issue,
                        Some(ctx.job.id.to_string()),
                    )
                    .await
                    {
                        Ok(l) => result.ticket_id = Some(l.id.to_string()),
                        Err(e) => {
                            out.push(ItemOutcome::retryable(ItemError::new(
                                "store",
                                e.to_string(),
                            )));
                            continue;
                        }
                    }
                }
                out.push(ItemOutcome::Succeeded(json!(result)));
            }
            out
        })
    }
}

/// The handlers of this module.
pub fn register(registry: &mut Registry, state: &AppState) {
    registry.register(Arc::new(BackfillHandler::new(state.clone())));
}

/// Totals and lists of a backfill's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackfillReport {
    /// The job.
    pub job_id: String,
    /// Job state.
    pub state: String,
    /// Records in all.
    pub total: i64,
    /// Records not done yet.
    pub pending: i64,
    /// Records whose processing failed (retry with `POST /v1/jobs/{id}/retry`).
    pub failed: i64,
    /// Linked records: `{record_id, key, …}`.
    pub linked: Vec<RecordResult>,
    /// Records naming several existing issues in their deciding field.
    pub ambiguous: Vec<RecordResult>,
    /// Records naming no existing issue.
    pub no_match: Vec<RecordResult>,
}

/// The report of a backfill job of a tenant.
pub async fn report(
    state: &AppState,
    tenant: &jira_bridge_store::TenantId,
    job_id: &crate::jobs::JobId,
) -> Result<BackfillReport, crate::http::ApiError> {
    let job = state
        .jobs
        .get(tenant, job_id)
        .await
        .map_err(crate::http::ApiError::from)?;
    if job.kind != KIND {
        return Err(crate::http::ApiError::NotFound("no such backfill".into()));
    }
    let mut r = BackfillReport {
        job_id: job.id.to_string(),
        state: job.state.to_string(),
        total: job.counts.total,
        pending: job.counts.pending + job.counts.running + job.counts.held,
        failed: job.counts.failed,
        ..BackfillReport::default()
    };
    let mut cursor: Option<String> = None;
    loop {
        let page = jira_bridge_store::PageRequest::new(Some(500), cursor.as_deref())?;
        let items = state
            .store
            .list_job_items(
                tenant,
                job_id,
                Some(crate::jobs::ItemState::Succeeded),
                &page,
            )
            .await?;
        for it in &items.items {
            let Some(res) = it
                .result
                .clone()
                .and_then(|v: Value| serde_json::from_value::<RecordResult>(v).ok())
            else {
                continue;
            };
            match res.outcome.as_str() {
                "linked" => r.linked.push(res),
                "ambiguous" => r.ambiguous.push(res),
                _ => r.no_match.push(res),
            }
        }
        match items.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(r)
}
