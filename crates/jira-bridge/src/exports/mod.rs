//! Exports: epic → story hierarchies created in Jira from a tree posted by the host
//! application, previewed (dry run), linked right for the site's flavor, re-runnable
//! without duplicates, and reversible (rollback). See `docs/exports-and-releases.md`.
//!
//! - Every epic and story is a ticket ([`crate::tickets`]) with purpose `export`, so
//!   the ledger makes creation exactly once and a re-export finds what exists.
//! - One job (`exports.create`) holds one item per epic and story; a story item
//!   depends on its epic's item, so stories wait (held) until their epic exists and
//!   stay held when it fails. Items are batched by role (epics, then stories), up to
//!   50 per Jira bulk create.
//! - Flavor: Cloud (team- or company-managed) puts stories under their epic with
//!   `parent`; Data Center sets the Epic Link custom field and gives epics their
//!   Epic Name (both found from field metadata by their schema type).
//! - [`handlers`]: the `exports.create` and `exports.rollback` job handlers and the
//!   job observer that moves the export's state and emits `export.finished`.

pub mod api;
pub mod handlers;

use std::collections::{BTreeMap, HashMap, HashSet};

use jira_bridge_store::exports::{Export, ExportId, NewExport};
use jira_bridge_store::jobs::NewJobItem;
use jira_bridge_store::{ConnectionId, Store, StoreError, TenantId};
use jira_client::JiraClient;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::tickets::engine::{MetaCache, MetaError};
use crate::tickets::validate::{to_issue_input, CreateScreen, ResolvedUsers, Target};
use crate::tickets::{FieldErrors, Source, TicketFields};

/// Job kind that creates an export's (or a release's) issues.
pub const CREATE_KIND: &str = "exports.create";
/// Job kind that deletes what an export created.
pub const ROLLBACK_KIND: &str = "exports.rollback";
/// Purpose of the tickets an export creates.
pub const PURPOSE: &str = "export";
/// Most epics plus stories in one export.
pub const MAX_ITEMS: usize = 5_000;

/// A source as given: `"id"` (kind `epic` / `story` by position) or `{kind, id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SourceRef {
    /// Just the id.
    Id(String),
    /// Kind and id.
    Full(Source),
}

impl SourceRef {
    fn resolve(&self, default_kind: &str) -> Source {
        match self {
            Self::Id(id) => Source {
                kind: default_kind.to_owned(),
                id: id.clone(),
            },
            Self::Full(s) => s.clone(),
        }
    }
}

/// One story of an epic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorySpec {
    /// The host object (`"id"` or `{kind, id}`; kind defaults to `story`).
    pub source: SourceRef,
    /// Summary.
    pub summary: String,
    /// Description (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Acceptance criteria: rendered as a task list under an "Acceptance criteria"
    /// heading at the end of the description.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceptance_criteria: Vec<String>,
    /// Issue type (default `Story`, or the request's `story_issue_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Story points (sent to the story points field found in the create metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story_points: Option<f64>,
}

/// One epic with its stories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpicSpec {
    /// The host object (`"id"` or `{kind, id}`; kind defaults to `epic`).
    pub source: SourceRef,
    /// Summary (also the Epic Name on Data Center).
    pub summary: String,
    /// Description (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Stories.
    #[serde(default)]
    pub stories: Vec<StorySpec>,
}

/// `POST /v1/exports`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Connection (`con_…`).
    pub connection_id: String,
    /// Project every issue goes to.
    pub project_key: String,
    /// Preview only: answer the plan, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also update summary and description of items that already have an issue.
    #[serde(default)]
    pub update_existing: bool,
    /// Issue type of epics (default `Epic`).
    #[serde(default)]
    pub epic_issue_type: Option<String>,
    /// Default issue type of stories (default `Story`).
    #[serde(default)]
    pub story_issue_type: Option<String>,
    /// The tree.
    pub epics: Vec<EpicSpec>,
}

/// Epic or story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An epic.
    Epic,
    /// A story (or another standard issue type) under an epic.
    Story,
}

/// The payload of one `exports.create` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemPayload {
    /// Epic or story.
    pub role: Role,
    /// The host object.
    pub source: Source,
    /// Ticket purpose.
    pub purpose: String,
    /// The issue (without the parent, the Epic Name and story points: those are
    /// resolved when the item runs).
    pub fields: TicketFields,
    /// Story points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story_points: Option<f64>,
    /// The epic of a story.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Source>,
    /// Update summary and description when the issue exists.
    #[serde(default)]
    pub update_existing: bool,
    /// Config the item came from (releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    /// Config target (releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl ItemPayload {
    /// The job item key: `kind:id`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.source.kind, self.source.id)
    }

    /// As a job item (group by role, so epics and stories go in separate bulks).
    pub fn job_item(&self, depends_on: Option<usize>) -> NewJobItem {
        let mut ni = NewJobItem::new(json!(self));
        ni.item_key = Some(self.key());
        ni.depends_on = depends_on;
        ni.group_key = Some(match self.role {
            Role::Epic => "epic".into(),
            Role::Story => "story".into(),
        });
        ni
    }
}

/// Render a story's description: its text, then the acceptance criteria as a task
/// list under a heading (an ADF task list on Cloud, wiki markup on Data Center).
pub fn story_description(description: Option<&str>, criteria: &[String]) -> Option<String> {
    let crit: Vec<&str> = criteria
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    if crit.is_empty() {
        return description.map(str::to_owned);
    }
    let mut out = String::new();
    if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
        out.push_str(d.trim_end());
        out.push_str("\n\n");
    }
    out.push_str("## Acceptance criteria\n\n");
    for c in crit {
        out.push_str("- [ ] ");
        out.push_str(&c.replace('\n', " "));
        out.push('\n');
    }
    Some(out)
}

/// The items of an export tree, in job order (each epic, then its stories), and the
/// structural problems (field → message). Items already seen (same source twice)
/// are refused.
pub fn tree_items(req: &ExportRequest) -> (Vec<ItemPayload>, Vec<Option<usize>>, FieldErrors) {
    let mut errors = FieldErrors::new();
    let mut items = Vec::new();
    let mut deps = Vec::new();
    let mut seen = HashSet::new();
    let project = req.project_key.trim().to_uppercase();
    let epic_type = req.epic_issue_type.clone().unwrap_or_else(|| "Epic".into());
    let story_type = req
        .story_issue_type
        .clone()
        .unwrap_or_else(|| "Story".into());
    let mut check = |src: &Source, path: String, errors: &mut FieldErrors| -> bool {
        if let Err(e) = crate::tickets::check_source(src, PURPOSE) {
            for (k, v) in e {
                errors.insert(format!("{path}.{k}"), v);
            }
            return false;
        }
        if !seen.insert((src.kind.clone(), src.id.clone())) {
            errors.insert(
                format!("{path}.source"),
                "the same source appears twice in this export".into(),
            );
            return false;
        }
        true
    };
    for (ei, epic) in req.epics.iter().enumerate() {
        let esrc = epic.source.resolve("epic");
        if !check(&esrc, format!("epics[{ei}]"), &mut errors) {
            continue;
        }
        let epic_index = items.len();
        items.push(ItemPayload {
            role: Role::Epic,
            source: esrc.clone(),
            purpose: PURPOSE.into(),
            fields: TicketFields {
                project_key: project.clone(),
                issue_type: epic_type.clone(),
                summary: epic.summary.clone(),
                description: epic.description.clone(),
                labels: epic.labels.clone(),
                ..TicketFields::default()
            },
            story_points: None,
            parent: None,
            update_existing: req.update_existing,
            config_id: None,
            target: None,
        });
        deps.push(None);
        for (si, story) in epic.stories.iter().enumerate() {
            let ssrc = story.source.resolve("story");
            if !check(&ssrc, format!("epics[{ei}].stories[{si}]"), &mut errors) {
                continue;
            }
            items.push(ItemPayload {
                role: Role::Story,
                source: ssrc,
                purpose: PURPOSE.into(),
                fields: TicketFields {
                    project_key: project.clone(),
                    issue_type: story
                        .issue_type
                        .clone()
                        .unwrap_or_else(|| story_type.clone()),
                    summary: story.summary.clone(),
                    description: story_description(
                        story.description.as_deref(),
                        &story.acceptance_criteria,
                    ),
                    labels: story.labels.clone(),
                    ..TicketFields::default()
                },
                story_points: story.story_points,
                parent: Some(esrc.clone()),
                update_existing: req.update_existing,
                config_id: None,
                target: None,
            });
            deps.push(Some(epic_index));
        }
    }
    if req.project_key.trim().is_empty() {
        errors.insert("project_key".into(), "must not be empty".into());
    }
    if req.epics.is_empty() {
        errors.insert("epics".into(), "at least one epic is needed".into());
    }
    if items.len() > MAX_ITEMS {
        errors.insert(
            "epics".into(),
            format!("at most {MAX_ITEMS} epics and stories per export"),
        );
    }
    (items, deps, errors)
}

/// How the site links stories to epics, found from metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Flavor {
    /// Data Center.
    pub data_center: bool,
    /// The field that puts a story under its epic: `parent`, or the Epic Link
    /// custom field id on Data Center.
    pub link_field: String,
    /// The Epic Name custom field id (Data Center).
    pub epic_name_field: Option<String>,
}

/// Discover the flavor (deployment and epic fields; cached by the client).
pub async fn flavor(client: &JiraClient, cache: &MetaCache) -> Result<Flavor, jira_client::Error> {
    let dc = cache.data_center(client).await?;
    if !dc {
        return Ok(Flavor {
            data_center: false,
            link_field: "parent".into(),
            epic_name_field: None,
        });
    }
    let ef = client.epic_fields().await?;
    Ok(Flavor {
        data_center: true,
        link_field: ef.epic_link.unwrap_or_else(|| "parent".into()),
        epic_name_field: ef.epic_name,
    })
}

/// The story points field of a create screen (by its Jira Software type or its name).
pub fn story_points_field(screen: &CreateScreen) -> Option<String> {
    screen
        .fields
        .iter()
        .find(|f| {
            f.schema
                .as_ref()
                .and_then(|s| s.custom.as_deref())
                .is_some_and(|c| c.ends_with(":jsw-story-points"))
        })
        .or_else(|| {
            screen.fields.iter().find(|f| {
                let n = f.name.to_lowercase();
                n == "story points" || n == "story point estimate"
            })
        })
        .map(|f| f.field_id.clone())
}

/// The ticket an item becomes: the Epic Name (DC epics), the parent or Epic Link
/// (stories, when the epic's key is known), story points on the discovered field.
pub fn item_fields(
    item: &ItemPayload,
    flavor: &Flavor,
    screen: Option<&CreateScreen>,
    epic_key: Option<&str>,
) -> Result<TicketFields, FieldErrors> {
    let mut f = item.fields.clone();
    match item.role {
        Role::Epic => {
            if let Some(id) = &flavor.epic_name_field {
                let name: String = f.summary.trim().chars().take(255).collect();
                if screen.is_none_or(|s| s.fields.iter().any(|m| &m.field_id == id)) {
                    f.fields.insert(id.clone(), Value::String(name));
                }
            }
        }
        Role::Story => {
            if let Some(key) = epic_key {
                if flavor.link_field == "parent" {
                    f.parent_key = Some(key.to_owned());
                } else {
                    f.fields
                        .insert(flavor.link_field.clone(), Value::String(key.to_owned()));
                }
            }
        }
    }
    if let Some(points) = item.story_points {
        let field = screen.and_then(story_points_field);
        match (field, screen) {
            (Some(id), _) => {
                f.fields.insert(id, json!(points));
            }
            (None, Some(s)) => {
                return Err(FieldErrors::from([(
                    "story_points".to_owned(),
                    format!(
                        "{} in {} has no story points field on its create screen",
                        s.issue_type_name, f.project_key
                    ),
                )]));
            }
            (None, None) => {}
        }
    }
    Ok(f)
}

/// What a dry run says about one item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanItem {
    /// Epic or story.
    pub role: Role,
    /// The host object.
    pub source: Source,
    /// Summary.
    pub summary: String,
    /// Issue type.
    pub issue_type: String,
    /// `create`, `existing` (already linked: skipped), `update` (already linked:
    /// summary and description would be updated), `invalid` (with `errors`) or
    /// `blocked` (a story whose epic is invalid: it would wait for its epic).
    pub action: String,
    /// The linked issue, for `existing` / `update`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_key: Option<String>,
    /// Field → problem, for `invalid` (and `blocked` stories with their own problems).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
    /// Stories of an epic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub stories: Vec<PlanItem>,
}

/// Counts of a plan by action.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PlanCounts {
    /// Would be created.
    pub create: u32,
    /// Already linked, skipped.
    pub existing: u32,
    /// Already linked, updated.
    pub update: u32,
    /// Invalid.
    pub invalid: u32,
    /// Waiting for an invalid epic.
    pub blocked: u32,
}

/// The answer of a dry run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    /// Always true.
    pub dry_run: bool,
    /// Project.
    pub project_key: String,
    /// `team-managed`, `company-managed` (Cloud) or `data-center`.
    pub project_style: String,
    /// How stories are put under epics.
    pub flavor: Flavor,
    /// Counts by action.
    pub counts: PlanCounts,
    /// Epic by epic.
    pub epics: Vec<PlanItem>,
}

/// Errors of planning and enqueueing.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Structural problems of the request.
    #[error("invalid export")]
    Invalid(FieldErrors),
    /// Jira failed.
    #[error(transparent)]
    Jira(#[from] jira_client::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The project's style: `team-managed` / `company-managed` on Cloud, `data-center`.
pub async fn project_style(
    client: &JiraClient,
    flavor: &Flavor,
    project: &str,
) -> Result<String, jira_client::Error> {
    if flavor.data_center {
        return Ok("data-center".into());
    }
    let p = client.project(project).await?;
    let team = p.simplified == Some(true) || p.style.as_deref() == Some("next-gen");
    Ok(if team {
        "team-managed".into()
    } else {
        "company-managed".into()
    })
}

/// Preview an export: per item what would happen, from the ledger and Jira's create
/// metadata. Reads only (metadata, field list, project); nothing is written.
pub async fn plan(
    store: &Store,
    client: &JiraClient,
    tenant: &TenantId,
    req: &ExportRequest,
) -> Result<Plan, ExportError> {
    let (items, _deps, errors) = tree_items(req);
    if !errors.is_empty() {
        return Err(ExportError::Invalid(errors));
    }
    let cache = MetaCache::new();
    let flavor = flavor(client, &cache).await?;
    let project_key = req.project_key.trim().to_uppercase();
    let style = match project_style(client, &flavor, &project_key).await {
        Ok(s) => s,
        Err(jira_client::Error::NotFound { .. }) => "unknown".into(),
        Err(e) => return Err(e.into()),
    };
    let users = ResolvedUsers::new();
    let mut counts = PlanCounts::default();
    let mut epics: Vec<PlanItem> = Vec::new();
    let mut epic_invalid = false;
    for item in &items {
        let link = store
            .find_link_by_source(tenant, &item.source.kind, &item.source.id, &item.purpose)
            .await?
            .filter(|l| l.state == "created");
        let mut p = PlanItem {
            role: item.role,
            source: item.source.clone(),
            summary: item.fields.summary.clone(),
            issue_type: item.fields.issue_type.clone(),
            action: String::new(),
            issue_key: None,
            errors: BTreeMap::new(),
            stories: Vec::new(),
        };
        if let Some(l) = link {
            p.issue_key = l.issue_key;
            p.action = if item.update_existing {
                "update"
            } else {
                "existing"
            }
            .into();
        } else {
            let screen = match cache
                .screen(client, &item.fields.project_key, &item.fields.issue_type)
                .await
            {
                Ok(s) => Some(s),
                Err(MetaError::Invalid(e)) => {
                    p.errors = e;
                    None
                }
                Err(MetaError::Jira(e)) => return Err(e.into()),
            };
            if let Some(screen) = screen {
                // A stand-in epic key: the real one exists only once the epic does.
                let epic_key = format!("{project_key}-1");
                match item_fields(item, &flavor, Some(&screen), Some(&epic_key)) {
                    Ok(mut f) if item.role == Role::Story => {
                        // The parent is checked by Jira itself; validate the rest.
                        f.parent_key = None;
                        f.fields.remove(&flavor.link_field);
                        let target = Target {
                            screen: &screen,
                            users: &users,
                            data_center: flavor.data_center,
                        };
                        if let Err(e) = to_issue_input(&f, target, &Value::Null) {
                            p.errors = e;
                        }
                    }
                    Ok(f) => {
                        let target = Target {
                            screen: &screen,
                            users: &users,
                            data_center: flavor.data_center,
                        };
                        if let Err(e) = to_issue_input(&f, target, &Value::Null) {
                            p.errors = e;
                        }
                    }
                    Err(e) => p.errors = e,
                }
            }
            p.action = if !p.errors.is_empty() {
                "invalid"
            } else {
                "create"
            }
            .into();
        }
        match item.role {
            Role::Epic => {
                epic_invalid = p.action == "invalid";
                bump(&mut counts, &p.action);
                epics.push(p);
            }
            Role::Story => {
                if epic_invalid && (p.action == "create" || p.action == "invalid") {
                    p.action = "blocked".into();
                }
                bump(&mut counts, &p.action);
                if let Some(e) = epics.last_mut() {
                    e.stories.push(p);
                }
            }
        }
    }
    Ok(Plan {
        dry_run: true,
        project_key,
        project_style: style,
        flavor,
        counts,
        epics,
    })
}

fn bump(c: &mut PlanCounts, action: &str) {
    match action {
        "create" => c.create += 1,
        "existing" => c.existing += 1,
        "update" => c.update += 1,
        "invalid" => c.invalid += 1,
        _ => c.blocked += 1,
    }
}

/// Store the export and enqueue its job; answers the export (with its job).
pub async fn start(
    state: &crate::http::AppState,
    tenant: &TenantId,
    connection: &ConnectionId,
    req: &ExportRequest,
) -> Result<Export, ExportError> {
    let (items, deps, errors) = tree_items(req);
    if !errors.is_empty() {
        return Err(ExportError::Invalid(errors));
    }
    let id = ExportId::new();
    let tree = json!(req.epics);
    let export = state
        .store
        .insert_export(&NewExport {
            id: id.clone(),
            tenant_id: tenant.clone(),
            connection_id: connection.clone(),
            project_key: req.project_key.trim().to_uppercase(),
            options: json!({
                "update_existing": req.update_existing,
                "epic_issue_type": req.epic_issue_type,
                "story_issue_type": req.story_issue_type,
            }),
            tree,
        })
        .await?;
    // The create screens the job needs, read together when it starts.
    let mut screens: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.fields.project_key.clone(), i.fields.issue_type.clone()))
        .collect();
    screens.sort();
    screens.dedup();
    let job_items: Vec<NewJobItem> = items.iter().zip(deps).map(|(i, d)| i.job_item(d)).collect();
    let enq = crate::jobs::EnqueueRequest::new(tenant.clone(), CREATE_KIND, job_items)
        .payload(
            json!({"connection_id": connection, "export_id": export.id, "screens": screens}),
            1,
        )
        .connection(connection.clone());
    let job = state.jobs.enqueue(enq).await.map_err(|e| match e {
        crate::jobs::JobError::Store(e) => ExportError::Store(e),
        crate::jobs::JobError::NotFound => ExportError::Store(StoreError::NotFound),
        crate::jobs::JobError::Invalid(m) => {
            ExportError::Invalid(FieldErrors::from([("epics".to_owned(), m)]))
        }
    })?;
    state
        .store
        .set_export_job(tenant, &export.id, job.job.id.as_str())
        .await?;
    // The job may have moved before its id was recorded.
    if let Some(j) = state.store.get_job(tenant, &job.job.id).await? {
        handlers::follow_job(&state.store, &crate::jobs::JobProgress::of(&j)).await?;
    }
    Ok(state
        .store
        .get_export(tenant, &export.id)
        .await?
        .unwrap_or(export))
}

/// Every item of a job, in order.
pub async fn all_job_items(
    store: &Store,
    tenant: &TenantId,
    job: &jira_bridge_store::jobs::JobId,
) -> Result<Vec<jira_bridge_store::jobs::JobItem>, StoreError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = jira_bridge_store::PageRequest::new(Some(500), cursor.as_deref())?;
        let p = store.list_job_items(tenant, job, None, &page).await?;
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// One epic or story of an export, as it stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportNode {
    /// Epic or story.
    pub role: Role,
    /// The host object.
    pub source: Source,
    /// Summary as posted.
    pub summary: String,
    /// The item's state in the export job: `pending`, `running`, `held` (waiting for
    /// its epic), `succeeded`, `failed`, `cancelled`.
    pub state: String,
    /// For succeeded items: `created`, `adopted` (found from an earlier attempt),
    /// `existing` (already linked, skipped) or `updated` (already linked, updated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Issue key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_key: Option<String>,
    /// Browse URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// What the rollback did with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<handlers::RollbackOutcome>,
    /// Stories of an epic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub stories: Vec<ExportNode>,
}

/// Counts of an export's items.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ExportCounts {
    /// Epics and stories.
    pub total: u32,
    /// Issues this export created (or adopted).
    pub created: u32,
    /// Already linked (skipped or updated).
    pub existing: u32,
    /// Failed.
    pub failed: u32,
    /// Waiting for their epic.
    pub held: u32,
    /// Not run yet (pending or running).
    pub pending: u32,
    /// Deleted by the rollback.
    pub deleted: u32,
    /// Kept by the rollback.
    pub kept: u32,
}

/// An export with its tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportView {
    /// `exp_…`.
    pub id: String,
    /// Connection.
    pub connection_id: String,
    /// Project.
    pub project_key: String,
    /// `queued`, `running`, `succeeded`, `partially_failed`, `failed`, `cancelled`,
    /// `rolling_back`, `rolled_back`, `rollback_failed`.
    pub state: String,
    /// The creating job (progress, SSE, retry: `/v1/jobs/{id}`).
    pub job_id: Option<String>,
    /// The rollback job.
    pub rollback_job_id: Option<String>,
    /// Options.
    #[schema(value_type = Object)]
    pub options: Value,
    /// Counts.
    pub counts: ExportCounts,
    /// The tree (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epics: Option<Vec<ExportNode>>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When its job last finished.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn outcome_of(result: &Value) -> &'static str {
    if result["existing"] == true {
        if result["updated"] == true {
            "updated"
        } else {
            "existing"
        }
    } else if result["adopted"] == true {
        "adopted"
    } else {
        "created"
    }
}

/// The export with its tree and per-item state (`with_tree: false` for lists: the
/// counts only).
pub async fn view(
    store: &Store,
    export: Export,
    with_tree: bool,
) -> Result<ExportView, StoreError> {
    let tenant = &export.tenant_id;
    let mut by_key: HashMap<String, jira_bridge_store::jobs::JobItem> = HashMap::new();
    if let Some(job) = export
        .job_id
        .as_deref()
        .and_then(|j| j.parse::<jira_bridge_store::jobs::JobId>().ok())
    {
        for it in all_job_items(store, tenant, &job).await? {
            if let Some(k) = it.item_key.clone() {
                by_key.insert(k, it);
            }
        }
    }
    let mut rolled: HashMap<String, handlers::RollbackOutcome> = HashMap::new();
    if let Some(job) = export
        .rollback_job_id
        .as_deref()
        .and_then(|j| j.parse::<jira_bridge_store::jobs::JobId>().ok())
    {
        for it in all_job_items(store, tenant, &job).await? {
            let list = it
                .result
                .as_ref()
                .and_then(|r| r.get("issues"))
                .cloned()
                .unwrap_or(Value::Null);
            let outcomes: Vec<handlers::RollbackOutcome> =
                serde_json::from_value(list).unwrap_or_default();
            for o in outcomes {
                rolled.insert(format!("{}:{}", o.source.kind, o.source.id), o);
            }
        }
    }
    // The stored state follows the jobs a moment after they change (the job observer
    // runs after the job's commit): answer what the job says now.
    let mut state = export.state.clone();
    let current = match export.rollback_job_id.as_deref() {
        Some(j) => Some((true, j)),
        None => export.job_id.as_deref().map(|j| (false, j)),
    };
    if let Some((rollback, j)) = current {
        if let Ok(jid) = j.parse::<jira_bridge_store::jobs::JobId>() {
            if let Some(job) = store.get_job(tenant, &jid).await? {
                state = handlers::export_state(rollback, &crate::jobs::JobProgress::of(&job));
            }
        }
    }
    let epics: Vec<EpicSpec> = serde_json::from_value(export.tree.clone()).unwrap_or_default();
    let mut counts = ExportCounts::default();
    let node = |role: Role, source: Source, summary: &str, counts: &mut ExportCounts| {
        let key = format!("{}:{}", source.kind, source.id);
        let item = by_key.get(&key);
        let mut n = ExportNode {
            role,
            source,
            summary: summary.to_owned(),
            state: item.map_or("pending", |i| i.state.as_str()).to_owned(),
            outcome: None,
            issue_key: None,
            url: None,
            error: item
                .and_then(|i| i.error.as_ref())
                .filter(|_| item.is_some_and(|i| i.state.as_str() == "failed"))
                .map(|e| json!(e)),
            rollback: rolled.get(&key).cloned(),
            stories: Vec::new(),
        };
        counts.total += 1;
        match n.state.as_str() {
            "succeeded" => {
                let r = item.and_then(|i| i.result.clone()).unwrap_or(Value::Null);
                let o = outcome_of(&r);
                if o == "created" || o == "adopted" {
                    counts.created += 1;
                } else {
                    counts.existing += 1;
                }
                n.outcome = Some(o.to_owned());
                n.issue_key = r["issue_key"].as_str().map(str::to_owned);
                n.url = r["url"].as_str().map(str::to_owned);
            }
            "failed" => counts.failed += 1,
            "held" => counts.held += 1,
            "cancelled" => {}
            _ => counts.pending += 1,
        }
        match n.rollback.as_ref().map(|r| r.outcome.as_str()) {
            Some("deleted") => counts.deleted += 1,
            Some("kept") => counts.kept += 1,
            _ => {}
        }
        n
    };
    let mut tree = Vec::with_capacity(epics.len());
    for e in &epics {
        let mut en = node(
            Role::Epic,
            e.source.resolve("epic"),
            &e.summary,
            &mut counts,
        );
        for s in &e.stories {
            en.stories.push(node(
                Role::Story,
                s.source.resolve("story"),
                &s.summary,
                &mut counts,
            ));
        }
        tree.push(en);
    }
    Ok(ExportView {
        id: export.id.to_string(),
        connection_id: export.connection_id.to_string(),
        project_key: export.project_key,
        state,
        job_id: export.job_id,
        rollback_job_id: export.rollback_job_id,
        options: export.options,
        counts,
        epics: with_tree.then_some(tree),
        created_at: export.created_at,
        updated_at: export.updated_at,
        finished_at: export.finished_at,
    })
}

/// Why a rollback cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The export's job has not finished.
    #[error("the export is still running; cancel its job or wait for it to finish")]
    Running,
    /// It created nothing.
    #[error("the export created no issues; there is nothing to roll back")]
    Nothing,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Enqueue the rollback of an export: one item per epic, deleting the stories this
/// export created and then the epic (if it created it). Asking again answers the
/// same job.
pub async fn rollback(
    state: &crate::http::AppState,
    export: &Export,
    force: bool,
) -> Result<jira_bridge_store::jobs::Job, RollbackError> {
    let tenant = &export.tenant_id;
    if let Some(j) = export
        .rollback_job_id
        .as_deref()
        .and_then(|j| j.parse::<jira_bridge_store::jobs::JobId>().ok())
    {
        if let Some(job) = state.store.get_job(tenant, &j).await? {
            return Ok(job);
        }
    }
    let Some(job_id) = export
        .job_id
        .as_deref()
        .and_then(|j| j.parse::<jira_bridge_store::jobs::JobId>().ok())
    else {
        return Err(RollbackError::Nothing);
    };
    let job = state
        .store
        .get_job(tenant, &job_id)
        .await?
        .ok_or(RollbackError::Nothing)?;
    if !job.state.is_terminal() {
        return Err(RollbackError::Running);
    }
    let items = all_job_items(&state.store, tenant, &job_id).await?;
    // Group by epic, in tree order.
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, handlers::RollbackItem> = HashMap::new();
    let mut link_field = "parent".to_owned();
    for it in &items {
        if it.state.as_str() != "succeeded" {
            continue;
        }
        let (Ok(p), Some(r)) = (
            serde_json::from_value::<ItemPayload>(it.payload.clone()),
            it.result.as_ref(),
        ) else {
            continue;
        };
        if let Some(f) = r["link_field"].as_str() {
            link_field = f.to_owned();
        }
        let epic_source = match p.role {
            Role::Epic => p.source.clone(),
            Role::Story => match &p.parent {
                Some(s) => s.clone(),
                None => continue,
            },
        };
        let gk = format!("{}:{}", epic_source.kind, epic_source.id);
        let g = groups.entry(gk.clone()).or_insert_with(|| {
            order.push(gk.clone());
            handlers::RollbackItem {
                epic: None,
                epic_key: None,
                stories: Vec::new(),
                link_field: String::new(),
                project_key: export.project_key.clone(),
                force,
            }
        });
        let key = r["issue_key"].as_str().map(str::to_owned);
        match p.role {
            Role::Epic => g.epic_key = key.clone(),
            Role::Story => {
                if g.epic_key.is_none() {
                    g.epic_key = r["parent_key"].as_str().map(str::to_owned);
                }
            }
        }
        if outcome_of(r) == "existing" || outcome_of(r) == "updated" {
            continue;
        }
        let (Some(issue_key), Some(issue_id), Some(ticket)) =
            (key, r["issue_id"].as_str(), r["ticket_id"].as_str())
        else {
            continue;
        };
        let issue = handlers::RollbackIssue {
            source: p.source.clone(),
            ticket_id: ticket.to_owned(),
            issue_id: issue_id.to_owned(),
            issue_key,
            summary: r["summary"]
                .as_str()
                .unwrap_or(&p.fields.summary)
                .to_owned(),
        };
        match p.role {
            Role::Epic => g.epic = Some(issue),
            Role::Story => g.stories.push(issue),
        }
    }
    let mut job_items = Vec::new();
    for k in order {
        if let Some(mut g) = groups.remove(&k) {
            if g.epic.is_none() && g.stories.is_empty() {
                continue;
            }
            g.link_field = link_field.clone();
            let mut ni = NewJobItem::new(json!(g));
            ni.item_key = Some(k);
            job_items.push(ni);
        }
    }
    if job_items.is_empty() {
        return Err(RollbackError::Nothing);
    }
    let enq = crate::jobs::EnqueueRequest::new(tenant.clone(), ROLLBACK_KIND, job_items)
        .payload(
            json!({"connection_id": export.connection_id, "export_id": export.id}),
            1,
        )
        .connection(export.connection_id.clone())
        .idempotency_key(format!("rollback:{}", export.id));
    let enq = state.jobs.enqueue(enq).await.map_err(|e| match e {
        crate::jobs::JobError::Store(e) => RollbackError::Store(e),
        _ => RollbackError::Nothing,
    })?;
    state
        .store
        .set_export_rollback_job(tenant, &export.id, enq.job.id.as_str())
        .await?;
    if let Some(j) = state.store.get_job(tenant, &enq.job.id).await? {
        handlers::follow_job(&state.store, &crate::jobs::JobProgress::of(&j)).await?;
    }
    Ok(enq.job)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn acceptance_criteria_become_a_task_list_section() {
        let d = story_description(
            Some("As a user …"),
            &["one".into(), " ".into(), "two".into()],
        )
        .unwrap();
        assert_eq!(
            d,
            "As a user …\n\n## Acceptance criteria\n\n- [ ] one\n- [ ] two\n"
        );
        assert_eq!(story_description(Some("x"), &[]).as_deref(), Some("x"));
        assert_eq!(story_description(None, &[]), None);
    }

    #[test]
    fn tree_items_orders_epics_before_their_stories_and_refuses_duplicates() {
        let req: ExportRequest = serde_json::from_value(json!({
            "connection_id": "con_x", "project_key": "web",
            "epics": [
                {"source": "e1", "summary": "E1", "stories": [
                    {"source": "s1", "summary": "S1", "story_points": 3},
                    {"source": {"kind": "req", "id": "s2"}, "summary": "S2", "issue_type": "Task"}
                ]},
                {"source": "e2", "summary": "E2", "stories": [{"source": "s1", "summary": "dup"}]}
            ]
        }))
        .unwrap();
        let (items, deps, errors) = tree_items(&req);
        assert_eq!(items.len(), 4);
        assert_eq!(deps, vec![None, Some(0), Some(0), None]);
        assert_eq!(items[0].fields.project_key, "WEB");
        assert_eq!(items[2].source.kind, "req");
        assert_eq!(items[2].fields.issue_type, "Task");
        assert!(
            errors.contains_key("epics[1].stories[0].source"),
            "{errors:?}"
        );
    }
}
