//! Releases: from a config and a version, one release epic per named platform
//! target, created by the export job (`exports.create`, epics only: Epic Name on Data
//! Center is handled there); later a check reads their statuses and reports the
//! release `complete` when each reached its target's `completed_status` (or the done
//! category), emitting `release.completed` exactly once. See
//! `docs/exports-and-releases.md`.

pub mod api;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use jira_bridge_store::configs::ConfigId;
use jira_bridge_store::exports::{NewRelease, Release, ReleaseId};
use jira_bridge_store::links::Link;
use jira_bridge_store::{Store, StoreError, TenantId, Timestamp};
use jira_client::JiraClient;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::configs::ConfigTarget;
use crate::events::EventType;
use crate::exports::{ItemPayload, Role, CREATE_KIND};
use crate::tickets::{FieldErrors, Source, TicketFields};

/// Source kind of release epics.
pub const SOURCE_KIND: &str = "release";
/// Purpose of release epics.
pub const PURPOSE: &str = "release";
/// Default summary template.
pub const DEFAULT_SUMMARY: &str = "Release {version} ({platform})";
/// Default description template.
pub const DEFAULT_DESCRIPTION: &str =
    "Release **{version}** for {platform}, planned for {planned_date}.\n\n{description}";

/// `POST /v1/releases`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Config (`cfg_…`) whose targets are the platforms.
    pub config_id: String,
    /// Version, e.g. `1.2.0` (no spaces; labels get `v1.2.0`).
    pub version: String,
    /// Target names of the config, one release epic each.
    pub platforms: Vec<String>,
    /// Planned date (`YYYY-MM-DD`).
    #[serde(default)]
    pub planned_date: Option<String>,
    /// Free text for the description template's `{description}`.
    #[serde(default)]
    pub description: Option<String>,
}

/// One platform of a release as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPlatform {
    /// Target name.
    pub platform: String,
    /// Project.
    pub project_key: String,
    /// Completed status (none: the done category).
    pub completed_status: Option<String>,
    /// The link's source id.
    pub source_id: String,
}

/// One platform of a release as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlatformView {
    /// Target name.
    pub platform: String,
    /// Project.
    pub project_key: String,
    /// The status that counts as completed (null: any status of the done category).
    pub completed_status: Option<String>,
    /// The ticket (`tkt_…`) once reserved.
    pub ticket_id: Option<String>,
    /// `pending`, `created`, `failed`.
    pub state: String,
    /// Issue key.
    pub issue_key: Option<String>,
    /// Browse URL.
    pub url: Option<String>,
    /// Status name (as of the last check or sync).
    pub status: Option<String>,
    /// Status category key.
    pub status_category: Option<String>,
    /// Whether this platform's epic reached its completed status.
    pub complete: bool,
    /// Why creation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// A release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseView {
    /// `rel_…`.
    pub id: String,
    /// Same as `id` (for clients that read `release_id`).
    pub release_id: String,
    /// Config.
    pub config_id: String,
    /// Connection.
    pub connection_id: String,
    /// Version.
    pub version: String,
    /// Planned date.
    pub planned_date: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The job creating the epics.
    pub job_id: Option<String>,
    /// Every platform's epic reached its completed status.
    pub complete: bool,
    /// When that was first seen (`release.completed` was emitted then).
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last check.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Per platform.
    pub platforms: Vec<PlatformView>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Errors of releases.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Invalid request (field → message).
    #[error("invalid release")]
    Invalid(FieldErrors),
    /// Jira failed.
    #[error(transparent)]
    Jira(#[from] jira_client::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Fill a template.
pub fn render(
    template: &str,
    version: &str,
    platform: &str,
    planned: Option<&str>,
    description: Option<&str>,
) -> String {
    template
        .replace("{version}", version)
        .replace("{platform}", platform)
        .replace("{planned_date}", planned.unwrap_or("no date yet"))
        .replace("{description}", description.unwrap_or(""))
        .trim()
        .to_owned()
}

/// The version label: `v1.2.0` (a version already starting with `v` is kept).
pub fn version_label(version: &str) -> String {
    if version.starts_with(['v', 'V']) {
        version.to_owned()
    } else {
        format!("v{version}")
    }
}

fn invalid(field: &str, msg: impl Into<String>) -> ReleaseError {
    ReleaseError::Invalid(FieldErrors::from([(field.to_owned(), msg.into())]))
}

/// Create a release: store it and enqueue its epics (one per platform target).
pub async fn create(
    state: &crate::http::AppState,
    tenant: &TenantId,
    req: &ReleaseRequest,
) -> Result<Release, ReleaseError> {
    let version = req.version.trim();
    if version.is_empty() || version.len() > 100 || version.chars().any(char::is_whitespace) {
        return Err(invalid("version", "1 to 100 characters without spaces"));
    }
    if let Some(d) = &req.planned_date {
        if NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
            return Err(invalid("planned_date", "a date YYYY-MM-DD"));
        }
    }
    if req.platforms.is_empty() {
        return Err(invalid(
            "platforms",
            "name at least one target of the config",
        ));
    }
    let cid: ConfigId = req
        .config_id
        .parse()
        .map_err(|_| invalid("config_id", "no such config"))?;
    let config = state
        .store
        .get_ticket_config(tenant, &cid)
        .await?
        .ok_or_else(|| invalid("config_id", "no such config"))?;
    let targets: Vec<ConfigTarget> =
        serde_json::from_value(config.targets.clone()).map_err(|e| {
            invalid(
                "config_id",
                format!("the config's targets are unreadable: {e}"),
            )
        })?;
    let id = ReleaseId::new();
    let mut errors = FieldErrors::new();
    let mut chosen: Vec<&ConfigTarget> = Vec::new();
    for (i, p) in req.platforms.iter().enumerate() {
        match targets
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(p.trim()))
        {
            Some(t) if chosen.iter().any(|c| c.name == t.name) => {
                errors.insert(format!("platforms[{i}]"), format!("{p:?} is named twice"));
            }
            Some(t) => chosen.push(t),
            None => {
                let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                errors.insert(
                    format!("platforms[{i}]"),
                    format!(
                        "no target {p:?} in this config; targets: {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(ReleaseError::Invalid(errors));
    }
    let mut stored = Vec::new();
    let mut items = Vec::new();
    for t in &chosen {
        let source_id = format!("{id}:{}", t.name);
        stored.push(StoredPlatform {
            platform: t.name.clone(),
            project_key: t.project_key.to_uppercase(),
            completed_status: t.completed_status.clone(),
            source_id: source_id.clone(),
        });
        let issue_type = t
            .release_issue_type
            .clone()
            .unwrap_or_else(|| "Epic".into());
        let mut labels = t.labels.clone();
        for l in ["release".to_owned(), version_label(version)] {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        let planned = req.planned_date.as_deref();
        let fields = TicketFields {
            project_key: t.project_key.to_uppercase(),
            issue_type: issue_type.clone(),
            summary: render(
                t.summary_template.as_deref().unwrap_or(DEFAULT_SUMMARY),
                version,
                &t.name,
                planned,
                req.description.as_deref(),
            ),
            description: Some(render(
                t.description_template
                    .as_deref()
                    .unwrap_or(DEFAULT_DESCRIPTION),
                version,
                &t.name,
                planned,
                req.description.as_deref(),
            )),
            priority: t.priority.clone(),
            labels,
            // The target's extra fields are for its own issue type.
            fields: if issue_type.eq_ignore_ascii_case(&t.issue_type) {
                t.fields.clone()
            } else {
                Default::default()
            },
            ..TicketFields::default()
        };
        let item = ItemPayload {
            role: Role::Epic,
            source: Source {
                kind: SOURCE_KIND.into(),
                id: source_id,
            },
            purpose: PURPOSE.into(),
            fields,
            story_points: None,
            parent: None,
            update_existing: false,
            config_id: Some(config.id.to_string()),
            target: Some(t.name.clone()),
        };
        items.push(item.job_item(None));
    }
    let release = state
        .store
        .insert_release(&NewRelease {
            id: id.clone(),
            tenant_id: tenant.clone(),
            connection_id: config.connection_id.clone(),
            config_id: config.id.to_string(),
            version: version.to_owned(),
            planned_date: req.planned_date.clone(),
            description: req.description.clone(),
            platforms: json!(stored),
        })
        .await?;
    let enq = crate::jobs::EnqueueRequest::new(tenant.clone(), CREATE_KIND, items)
        .payload(
            json!({"connection_id": config.connection_id, "release_id": release.id}),
            1,
        )
        .connection(config.connection_id.clone());
    let job = state.jobs.enqueue(enq).await.map_err(|e| match e {
        crate::jobs::JobError::Store(e) => ReleaseError::Store(e),
        e => invalid("platforms", e.to_string()),
    })?;
    state
        .store
        .set_release_job(tenant, &release.id, job.job.id.as_str())
        .await?;
    Ok(state
        .store
        .get_release(tenant, &release.id)
        .await?
        .unwrap_or(release))
}

fn platform_complete(p: &StoredPlatform, link: Option<&Link>) -> bool {
    let Some(l) = link.filter(|l| l.state == "created") else {
        return false;
    };
    match &p.completed_status {
        Some(s) => l
            .status
            .as_deref()
            .is_some_and(|st| st.eq_ignore_ascii_case(s)),
        None => l.status_category.as_deref() == Some("done"),
    }
}

async fn links_of(
    store: &Store,
    release: &Release,
) -> Result<Vec<(StoredPlatform, Option<Link>)>, StoreError> {
    let platforms: Vec<StoredPlatform> =
        serde_json::from_value(release.platforms.clone()).unwrap_or_default();
    let mut out = Vec::with_capacity(platforms.len());
    for p in platforms {
        let link = store
            .find_link_by_source(&release.tenant_id, SOURCE_KIND, &p.source_id, PURPOSE)
            .await?;
        out.push((p, link));
    }
    Ok(out)
}

/// The release with its platforms (as of the last check or sync).
pub async fn view(store: &Store, release: Release) -> Result<ReleaseView, StoreError> {
    let rows = links_of(store, &release).await?;
    let platforms: Vec<PlatformView> = rows
        .iter()
        .map(|(p, l)| PlatformView {
            platform: p.platform.clone(),
            project_key: p.project_key.clone(),
            completed_status: p.completed_status.clone(),
            ticket_id: l.as_ref().map(|l| l.id.to_string()),
            state: l.as_ref().map_or("pending".into(), |l| l.state.clone()),
            issue_key: l.as_ref().and_then(|l| l.issue_key.clone()),
            url: l.as_ref().and_then(|l| l.url.clone()),
            status: l.as_ref().and_then(|l| l.status.clone()),
            status_category: l.as_ref().and_then(|l| l.status_category.clone()),
            complete: platform_complete(p, l.as_ref()),
            error: l
                .as_ref()
                .filter(|l| l.state == "failed")
                .and_then(|l| l.last_error.clone()),
        })
        .collect();
    let complete = !platforms.is_empty() && platforms.iter().all(|p| p.complete);
    Ok(ReleaseView {
        id: release.id.to_string(),
        release_id: release.id.to_string(),
        config_id: release.config_id,
        connection_id: release.connection_id.to_string(),
        version: release.version,
        planned_date: release.planned_date,
        description: release.description,
        job_id: release.job_id,
        complete,
        completed_at: release.completed_at,
        checked_at: release.checked_at,
        platforms,
        created_at: release.created_at,
    })
}

/// Read the epics' statuses now (one bulk read), record them (with
/// `ticket.status_changed` where they changed), and when every platform is complete
/// mark the release complete and emit `release.completed` — once.
pub async fn check(
    store: &Store,
    client: &JiraClient,
    release: &Release,
) -> Result<ReleaseView, ReleaseError> {
    let rows = links_of(store, release).await?;
    let keys: Vec<String> = rows
        .iter()
        .filter_map(|(_, l)| l.as_ref().and_then(|l| l.issue_key.clone()))
        .collect();
    if !keys.is_empty() {
        let fetched = client
            .bulk_fetch(&keys, &["status".to_owned(), "updated".to_owned()])
            .await?;
        let by_id: BTreeMap<String, jira_client::Issue> = fetched
            .issues
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        for (_, l) in &rows {
            let Some(link) = l else { continue };
            let Some(issue) = link.issue_id.as_ref().and_then(|id| by_id.get(id)) else {
                continue;
            };
            let status: Option<jira_client::Status> = issue.field("status");
            let updated = issue
                .fields
                .get("updated")
                .and_then(Value::as_str)
                .and_then(jira_client::parse_jira_datetime)
                .map(|t| Timestamp::from(t.with_timezone(&chrono::Utc)));
            if let Some(s) = status {
                crate::tickets::apply_status(store, link, &s, updated).await?;
            }
        }
    }
    store
        .touch_release_checked(&release.tenant_id, &release.id)
        .await?;
    let fresh = store
        .get_release(&release.tenant_id, &release.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let v = view(store, fresh).await?;
    if v.complete && v.completed_at.is_none() {
        let mut tx = store.begin().await?;
        if tx.complete_release(&release.tenant_id, &release.id).await? {
            crate::events::append(
                &mut tx,
                &release.tenant_id,
                EventType::ReleaseCompleted,
                Some(release.id.as_str()),
                json!({
                    "release_id": release.id,
                    "config_id": release.config_id,
                    "version": release.version,
                    "platforms": v.platforms.iter().map(|p| json!({
                        "target": p.platform,
                        "platform": p.platform,
                        "issue_key": p.issue_key,
                        "status": p.status,
                    })).collect::<Vec<_>>(),
                }),
            )
            .await?;
        }
        tx.commit().await?;
        let fresh = store
            .get_release(&release.tenant_id, &release.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        return Ok(view(store, fresh).await?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_version_labels() {
        assert_eq!(
            render(DEFAULT_SUMMARY, "1.2.0", "WEB", None, None),
            "Release 1.2.0 (WEB)"
        );
        assert_eq!(
            render(
                "{platform} {version} on {planned_date}",
                "2.0",
                "APP_STORE",
                Some("2026-12-01"),
                None
            ),
            "APP_STORE 2.0 on 2026-12-01"
        );
        assert_eq!(version_label("1.2.0"), "v1.2.0");
        assert_eq!(version_label("v1.2.0"), "v1.2.0");
    }
}
