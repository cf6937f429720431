//! The export job handlers and the observer that follows their jobs.
//!
//! - `exports.create`: a batch of epics or of stories (≤ 50) becomes one Jira bulk
//!   create through the tickets engine ([`crate::tickets::bulk::run_batch`]), after
//!   each story got its epic's key (parent or Epic Link), epics their Epic Name, and
//!   story points their field. Already-linked items succeed as `existing` without a
//!   call (or have summary and description updated with `update_existing`).
//! - `exports.rollback`: one item per epic of the export: deletes the stories this
//!   export created, then the epic, applying the rule for issues changed in Jira
//!   since (see `docs/exports-and-releases.md`).
//! - the export observer ([`observe`], [`follow_job`]): moves the export's state
//!   with its jobs and appends `export.finished` in the same transaction when the
//!   creating job finishes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jira_bridge_store::exports::ExportId;
use jira_bridge_store::jobs::{ItemError, JobItem};
use jira_bridge_store::links::TicketId;
use jira_bridge_store::{ConnectionId, Store, TenantId};
use jira_client::{IssueInput, JiraClient};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{flavor, item_fields, Flavor, ItemPayload, Role, CREATE_KIND, ROLLBACK_KIND};
use crate::events::EventType;
use crate::http::AppState;
use crate::jobs::{ItemOutcome, JobContext, JobHandler, JobObserver, JobProgress, Registry};
use crate::tickets::bulk::{self, Caches, Outcome};
use crate::tickets::engine::{MetaCache, MetaError};
use crate::tickets::handlers::{all_failed, connection_failure};
use crate::tickets::validate::{to_issue_input, ResolvedUsers, Target};
use crate::tickets::CreateOptions;

/// Register the export handlers and the observer.
pub fn register(registry: &mut Registry, state: &AppState) {
    registry.register(Arc::new(CreateHandler {
        state: state.clone(),
        caches: Caches::default(),
        opts: CreateOptions::default(),
    }));
    registry.register(Arc::new(RollbackHandler {
        state: state.clone(),
    }));
}

/// Follow export jobs (call once per process).
pub fn observe(state: &AppState) {
    state.jobs.add_observer(Arc::new(ExportObserver {
        store: state.store.clone(),
    }));
}

#[derive(Debug, Deserialize)]
struct JobPayload {
    connection_id: ConnectionId,
}

async fn connect(
    state: &AppState,
    ctx: &JobContext,
    items: &[JobItem],
) -> Result<(ConnectionId, JiraClient, String), Vec<ItemOutcome>> {
    let payload: JobPayload = serde_json::from_value(ctx.job.payload.clone()).map_err(|e| {
        all_failed(
            items,
            ItemError::new("invalid_payload", e.to_string()),
            false,
        )
    })?;
    match crate::connections::connect(state, &ctx.job.tenant_id, &payload.connection_id).await {
        Ok(c) => Ok((payload.connection_id, c.jira, c.connection.kind)),
        Err(e) => {
            let (err, retryable) = connection_failure(&e);
            Err(all_failed(items, err, retryable))
        }
    }
}

fn jira_item_error(e: &jira_client::Error) -> ItemOutcome {
    let retryable =
        e.is_outcome_unknown() || e.is_transient() || e.status().is_none_or(|s| s >= 500);
    let err = ItemError::new("jira_unavailable", e.to_string());
    if retryable {
        ItemOutcome::retryable(err)
    } else {
        ItemOutcome::failed(ItemError::new("jira_rejected", e.to_string()))
    }
}

/// Runs `exports.create` batches.
struct CreateHandler {
    state: AppState,
    caches: Caches,
    opts: CreateOptions,
}

impl JobHandler for CreateHandler {
    fn kind(&self) -> &str {
        CREATE_KIND
    }

    fn batch_size(&self) -> u32 {
        bulk::BATCH
    }

    fn group_batches(&self) -> bool {
        true
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
            let (connection, client, kind) = match connect(&self.state, ctx, items).await {
                Ok(c) => c,
                Err(o) => return o,
            };
            let opts = CreateOptions {
                connection_kind: Some(kind),
                ..self.opts.clone()
            };
            let cache = self.caches.for_job(ctx.job.id.as_str());
            let screens: Vec<(String, String)> =
                serde_json::from_value(ctx.job.payload["screens"].clone()).unwrap_or_default();
            cache.warm(&client, &screens).await;
            run_create(
                &ctx.store,
                &client,
                &cache,
                &ctx.job.tenant_id,
                &connection,
                ctx.job.id.as_str(),
                items,
                &opts,
            )
            .await
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_create(
    store: &Store,
    client: &JiraClient,
    cache: &MetaCache,
    tenant: &TenantId,
    connection: &ConnectionId,
    job_id: &str,
    items: &[JobItem],
    opts: &CreateOptions,
) -> Vec<ItemOutcome> {
    let flavor = match flavor(client, cache).await {
        Ok(f) => f,
        Err(e) => return items.iter().map(|_| jira_item_error(&e)).collect(),
    };
    let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
    let mut payloads: Vec<Option<ItemPayload>> = vec![None; items.len()];
    let mut parents: Vec<Option<String>> = vec![None; items.len()];
    let mut work: Vec<(usize, JobItem)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p: ItemPayload = match serde_json::from_value(item.payload.clone()) {
            Ok(p) => p,
            Err(e) => {
                outcomes[i] = Some(ItemOutcome::failed(ItemError::new(
                    "invalid_payload",
                    e.to_string(),
                )));
                continue;
            }
        };
        let mut epic_key = None;
        if let Some(parent) = &p.parent {
            match store
                .find_link_by_source(tenant, &parent.kind, &parent.id, &p.purpose)
                .await
            {
                Ok(Some(l)) if l.state == "created" => epic_key = l.issue_key,
                Ok(_) => {
                    outcomes[i] = Some(ItemOutcome::failed(
                        ItemError::new(
                            "parent_missing",
                            format!(
                                "its epic {}:{} has no Jira issue yet",
                                parent.kind, parent.id
                            ),
                        )
                        .with_field("parent"),
                    ));
                    continue;
                }
                Err(e) => {
                    outcomes[i] = Some(ItemOutcome::retryable(ItemError::new(
                        "store",
                        e.to_string(),
                    )));
                    continue;
                }
            }
        }
        let screen = match cache
            .screen(client, &p.fields.project_key, &p.fields.issue_type)
            .await
        {
            Ok(s) => Some(s),
            // run_batch reports the invalid target per item.
            Err(MetaError::Invalid(_)) => None,
            Err(MetaError::Jira(e)) => {
                outcomes[i] = Some(jira_item_error(&e));
                continue;
            }
        };
        let fields = match item_fields(&p, &flavor, screen.as_deref(), epic_key.as_deref()) {
            Ok(f) => f,
            Err(errors) => {
                let msg = errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut e = ItemError::new("validation", msg);
                if let Some(f) = errors.keys().next() {
                    e = e.with_field(f.clone());
                }
                outcomes[i] = Some(ItemOutcome::failed(e));
                continue;
            }
        };
        let ticket = bulk::ItemPayload {
            source: p.source.clone(),
            purpose: p.purpose.clone(),
            fields,
            config_id: p.config_id.clone(),
            target: p.target.clone(),
        };
        let mut ji = item.clone();
        ji.payload = json!(ticket);
        parents[i] = epic_key;
        payloads[i] = Some(p);
        work.push((i, ji));
    }
    let batch: Vec<JobItem> = work.iter().map(|(_, j)| j.clone()).collect();
    let results = bulk::run_batch(
        store, client, cache, tenant, connection, job_id, &batch, opts,
    )
    .await;
    for ((i, ji), r) in work.iter().zip(results) {
        let Some(p) = payloads[*i].as_ref() else {
            continue;
        };
        outcomes[*i] = Some(match r {
            Outcome::Succeeded(mut v) => {
                v["role"] = json!(p.role);
                v["summary"] = json!(p.fields.summary);
                v["link_field"] = json!(flavor.link_field);
                if let Some(k) = &parents[*i] {
                    v["parent_key"] = json!(k);
                }
                let existing = v["existing"] == true;
                if existing && p.update_existing {
                    match update_existing(client, cache, &flavor, ji, &v).await {
                        Ok(()) => {
                            v["updated"] = json!(true);
                            ItemOutcome::Succeeded(v)
                        }
                        Err(o) => o,
                    }
                } else {
                    ItemOutcome::Succeeded(v)
                }
            }
            Outcome::Failed { error, retryable } => ItemOutcome::Failed { error, retryable },
        });
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                ItemOutcome::retryable(ItemError::new("internal", "item was not processed"))
            })
        })
        .collect()
}

/// Update summary and description of an already-linked issue.
async fn update_existing(
    client: &JiraClient,
    cache: &MetaCache,
    flavor: &Flavor,
    item: &JobItem,
    result: &Value,
) -> Result<(), ItemOutcome> {
    let Some(key) = result["issue_key"].as_str() else {
        return Ok(());
    };
    let ticket: bulk::ItemPayload = serde_json::from_value(item.payload.clone())
        .map_err(|e| ItemOutcome::failed(ItemError::new("invalid_payload", e.to_string())))?;
    let screen = match cache
        .screen(
            client,
            &ticket.fields.project_key,
            &ticket.fields.issue_type,
        )
        .await
    {
        Ok(s) => s,
        Err(MetaError::Invalid(e)) => {
            return Err(ItemOutcome::failed(ItemError::new(
                "validation",
                format!("{e:?}"),
            )))
        }
        Err(MetaError::Jira(e)) => return Err(jira_item_error(&e)),
    };
    let users = ResolvedUsers::new();
    let target = Target {
        screen: &screen,
        users: &users,
        data_center: flavor.data_center,
    };
    let prepared = to_issue_input(&ticket.fields, target, &Value::Null).map_err(|e| {
        let msg = e
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ");
        ItemOutcome::failed(ItemError::new("validation", msg))
    })?;
    let mut fields = Map::new();
    for k in ["summary", "description"] {
        if let Some(v) = prepared.input.fields.get(k) {
            fields.insert(k.to_owned(), v.clone());
        }
    }
    let input = IssueInput {
        fields,
        update: Map::new(),
        properties: vec![],
    };
    client
        .edit_issue(key, &input, false)
        .await
        .map_err(|e| jira_item_error(&e))
}

/// One issue a rollback looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackIssue {
    /// The host object.
    pub source: crate::tickets::Source,
    /// Its ticket.
    pub ticket_id: String,
    /// Issue id.
    pub issue_id: String,
    /// Issue key at creation.
    pub issue_key: String,
    /// The summary the export wrote.
    pub summary: String,
}

/// The payload of one `exports.rollback` item: an epic's part of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackItem {
    /// The epic, when this export created it.
    pub epic: Option<RollbackIssue>,
    /// The epic's key (the parent the stories were created under).
    pub epic_key: Option<String>,
    /// Stories this export created.
    pub stories: Vec<RollbackIssue>,
    /// The field that links stories to the epic (`parent` or the Epic Link field).
    pub link_field: String,
    /// The export's project.
    pub project_key: String,
    /// Delete edited issues too (moved ones are always kept).
    #[serde(default)]
    pub force: bool,
}

/// What happened to one issue in a rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RollbackOutcome {
    /// The host object.
    pub source: crate::tickets::Source,
    /// Epic or story.
    pub role: Role,
    /// The issue key.
    pub issue_key: String,
    /// `deleted`, `kept` (see `reason`) or `gone` (already deleted in Jira).
    pub outcome: String,
    /// Why it was kept: `moved` (another project), `reparented` (another epic),
    /// `edited` (summary changed in Jira), `has_children` (an epic that still has
    /// issues under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Runs `exports.rollback` items.
struct RollbackHandler {
    state: AppState,
}

impl JobHandler for RollbackHandler {
    fn kind(&self) -> &str {
        ROLLBACK_KIND
    }

    fn batch_size(&self) -> u32 {
        4
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
            let (_, client, _) = match connect(&self.state, ctx, items).await {
                Ok(c) => c,
                Err(o) => return o,
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let parsed: Result<RollbackItem, _> = serde_json::from_value(item.payload.clone());
                out.push(match parsed {
                    Ok(p) => rollback_epic(&ctx.store, &client, &ctx.job.tenant_id, &p).await,
                    Err(e) => ItemOutcome::failed(ItemError::new("invalid_payload", e.to_string())),
                });
            }
            out
        })
    }
}

fn field_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("key").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn edited(now: &str, written: &str) -> bool {
    if now == written {
        return false;
    }
    // The overflow policy shortened a long summary to 254 units plus an ellipsis.
    match now.strip_suffix('…') {
        Some(prefix) => !written.starts_with(prefix),
        None => true,
    }
}

async fn forget(store: &Store, tenant: &TenantId, ticket: &str) {
    if let Ok(id) = ticket.parse::<TicketId>() {
        if let Err(e) = store.delete_link(tenant, &id).await {
            tracing::warn!(ticket, error = ?e, "could not forget the link of a deleted issue");
        }
    }
}

/// Delete one epic's part of an export (stories first), by the documented rule.
async fn rollback_epic(
    store: &Store,
    client: &JiraClient,
    tenant: &TenantId,
    p: &RollbackItem,
) -> ItemOutcome {
    // By key (a moved issue answers under its new key); matched back by id.
    let mut keys: Vec<String> = p.stories.iter().map(|s| s.issue_key.clone()).collect();
    if let Some(e) = &p.epic {
        keys.push(e.issue_key.clone());
    }
    let fields = vec![
        "summary".to_owned(),
        "project".to_owned(),
        p.link_field.clone(),
    ];
    let fetched = match client.bulk_fetch(&keys, &fields).await {
        Ok(f) => f,
        Err(e) => return jira_item_error(&e),
    };
    let by_id: HashMap<String, jira_client::Issue> = fetched
        .issues
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let mut outcomes = Vec::new();
    let mut kept_story = false;
    for s in &p.stories {
        let mut o = RollbackOutcome {
            source: s.source.clone(),
            role: Role::Story,
            issue_key: s.issue_key.clone(),
            outcome: "deleted".into(),
            reason: None,
            detail: None,
        };
        let Some(issue) = by_id.get(&s.issue_id) else {
            o.outcome = "gone".into();
            forget(store, tenant, &s.ticket_id).await;
            outcomes.push(o);
            continue;
        };
        o.issue_key = issue.key.clone();
        let project = issue
            .fields
            .get("project")
            .and_then(|v| v.get("key"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let parent = issue.fields.get(&p.link_field).and_then(field_key);
        let summary = issue
            .fields
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !project.eq_ignore_ascii_case(&p.project_key) {
            o.outcome = "kept".into();
            o.reason = Some("moved".into());
            o.detail = Some(format!("now in project {project} as {}", issue.key));
        } else if parent.is_some() && parent != p.epic_key {
            o.outcome = "kept".into();
            o.reason = Some("reparented".into());
            o.detail = Some(format!("now under {}", parent.clone().unwrap_or_default()));
        } else if parent.is_none() && p.epic_key.is_some() {
            o.outcome = "kept".into();
            o.reason = Some("reparented".into());
            o.detail = Some("no longer under its epic".into());
        } else if !p.force && edited(summary, &s.summary) {
            o.outcome = "kept".into();
            o.reason = Some("edited".into());
            o.detail = Some(format!("summary is now {summary:?}"));
        }
        if o.outcome == "deleted" {
            match client.delete_issue(&issue.key, false).await {
                Ok(()) => forget(store, tenant, &s.ticket_id).await,
                Err(jira_client::Error::NotFound { .. }) => {
                    o.outcome = "gone".into();
                    forget(store, tenant, &s.ticket_id).await;
                }
                Err(e) => return jira_item_error(&e),
            }
        } else if o.reason.as_deref() == Some("edited") {
            // Still under the epic: the epic stays too.
            kept_story = true;
        }
        outcomes.push(o);
    }
    if let Some(e) = &p.epic {
        let mut o = RollbackOutcome {
            source: e.source.clone(),
            role: Role::Epic,
            issue_key: e.issue_key.clone(),
            outcome: "deleted".into(),
            reason: None,
            detail: None,
        };
        match by_id.get(&e.issue_id) {
            None => {
                o.outcome = "gone".into();
                forget(store, tenant, &e.ticket_id).await;
            }
            Some(issue) => {
                o.issue_key = issue.key.clone();
                let summary = issue
                    .fields
                    .get("summary")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let project = issue
                    .fields
                    .get("project")
                    .and_then(|v| v.get("key"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let children = if kept_story {
                    Ok(vec!["(kept stories)".to_owned()])
                } else {
                    remaining_children(client, &p.link_field, &issue.key).await
                };
                match children {
                    Err(err) => return jira_item_error(&err),
                    Ok(c) if !c.is_empty() => {
                        o.outcome = "kept".into();
                        o.reason = Some("has_children".into());
                        o.detail = Some(if kept_story {
                            "some of its stories were kept".into()
                        } else {
                            format!("issues still under it: {}", c.join(", "))
                        });
                    }
                    Ok(_) if !project.eq_ignore_ascii_case(&p.project_key) => {
                        o.outcome = "kept".into();
                        o.reason = Some("moved".into());
                        o.detail = Some(format!("now in project {project} as {}", issue.key));
                    }
                    Ok(_) if !p.force && edited(summary, &e.summary) => {
                        o.outcome = "kept".into();
                        o.reason = Some("edited".into());
                        o.detail = Some(format!("summary is now {summary:?}"));
                    }
                    Ok(_) => match client.delete_issue(&issue.key, false).await {
                        Ok(()) => forget(store, tenant, &e.ticket_id).await,
                        Err(jira_client::Error::NotFound { .. }) => {
                            o.outcome = "gone".into();
                            forget(store, tenant, &e.ticket_id).await;
                        }
                        Err(err) => return jira_item_error(&err),
                    },
                }
            }
        }
        outcomes.push(o);
    }
    let deleted = outcomes.iter().filter(|o| o.outcome == "deleted").count();
    let kept = outcomes.iter().filter(|o| o.outcome == "kept").count();
    ItemOutcome::Succeeded(json!({
        "deleted": deleted,
        "kept": kept,
        "issues": outcomes,
    }))
}

/// Keys of issues still under an epic (a bounded search).
async fn remaining_children(
    client: &JiraClient,
    link_field: &str,
    epic_key: &str,
) -> Result<Vec<String>, jira_client::Error> {
    let clause = if link_field == "parent" {
        format!("parent = \"{epic_key}\"")
    } else {
        format!("\"Epic Link\" = \"{epic_key}\"")
    };
    let req = jira_client::SearchRequest {
        jql: clause,
        fields: vec!["summary".into()],
        page_size: Some(50),
        ..jira_client::SearchRequest::default()
    };
    let page = client.search_page(&req, None).await?;
    Ok(page.issues.into_iter().map(|i| i.key).collect())
}

/// Moves an export's state with its jobs; `export.finished` when the creating job
/// finishes (in the transaction of the state change).
struct ExportObserver {
    store: Store,
}

impl JobObserver for ExportObserver {
    fn job_changed<'a>(&'a self, progress: &'a JobProgress) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if progress.kind != CREATE_KIND && progress.kind != ROLLBACK_KIND {
                return;
            }
            if let Err(e) = self.follow(progress).await {
                tracing::error!(job = %progress.job_id, error = ?e, "could not update the export of a job");
            }
        })
    }
}

impl ExportObserver {
    async fn follow(&self, progress: &JobProgress) -> Result<(), jira_bridge_store::StoreError> {
        follow_job(&self.store, progress).await
    }
}

/// The export state a job's progress means (its creating job, or its rollback job).
pub fn export_state(rollback: bool, progress: &JobProgress) -> String {
    match (rollback, progress.is_finished()) {
        (false, false) => "running".to_owned(),
        (false, true) => progress.state.as_str().to_owned(),
        (true, false) => "rolling_back".to_owned(),
        (true, true) if progress.counts.failed == 0 && progress.counts.cancelled == 0 => {
            "rolled_back".to_owned()
        }
        (true, true) => "rollback_failed".to_owned(),
    }
}

/// Bring an export's state in line with one of its jobs (and append
/// `export.finished` when the creating job finished). Called by the observer, and
/// after an export records a job id (the job may have moved before that).
pub async fn follow_job(
    store: &Store,
    progress: &JobProgress,
) -> Result<(), jira_bridge_store::StoreError> {
    let Some(job) = store.get_job(&progress.tenant_id, &progress.job_id).await? else {
        return Ok(());
    };
    let Some(export_id) = job
        .payload
        .get("export_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ExportId>().ok())
    else {
        return Ok(());
    };
    let rollback = progress.kind == ROLLBACK_KIND;
    let finished = progress.is_finished();
    let state = export_state(rollback, progress);
    // Issues created by this run (succeeded items that were not already linked).
    let created = if finished && !rollback {
        super::all_job_items(store, &progress.tenant_id, &progress.job_id)
            .await?
            .iter()
            .filter(|i| i.state.as_str() == "succeeded")
            .filter(|i| i.result.as_ref().is_some_and(|r| r["existing"] != true))
            .count() as i64
    } else {
        0
    };
    let mut tx = store.begin().await?;
    let changed = tx
        .set_export_state(
            &progress.tenant_id,
            &export_id,
            progress.job_id.as_str(),
            &state,
            finished,
        )
        .await?;
    if changed && finished && !rollback {
        crate::events::append(
            &mut tx,
            &progress.tenant_id,
            EventType::ExportFinished,
            Some(export_id.as_str()),
            json!({
                "export_id": export_id,
                "job_id": progress.job_id,
                "state": state,
                "created": created,
                "existing": progress.counts.succeeded - created,
                "total": progress.counts.total,
                "succeeded": progress.counts.succeeded,
                "failed": progress.counts.failed,
                "held": progress.counts.held,
            }),
        )
        .await?;
    }
    tx.commit().await
}
