//! Ticket configs: reusable named targets (e.g. WEB / PLAY_STORE / APP_STORE) under a
//! connection, each with project, issue type, priority, labels, completed status and
//! extra fields; `verify` checks every target against Jira. `/v1/configs`.

pub mod api;

use std::collections::BTreeMap;

use jira_client::JiraClient;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tickets::TicketFields;

/// One named target of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigTarget {
    /// Target name, unique in the config (e.g. `WEB`, `PLAY_STORE`).
    pub name: String,
    /// Project key.
    pub project_key: String,
    /// Issue type name or id.
    pub issue_type: String,
    /// Priority name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Status that counts as completed (default: any status of the done category).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_status: Option<String>,
    /// Extra fields (by id, key or name), coerced like ticket fields.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Releases: summary of the platform's release epic; `{version}`, `{platform}`,
    /// `{planned_date}` are replaced (default `Release {version} ({platform})`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_template: Option<String>,
    /// Releases: description of the release epic (Markdown, same placeholders plus
    /// `{description}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_template: Option<String>,
    /// Releases: issue type of the release epic (default `Epic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_issue_type: Option<String>,
}

impl ConfigTarget {
    /// The ticket defaults this target gives.
    pub fn defaults(&self) -> TicketFields {
        TicketFields {
            project_key: self.project_key.clone(),
            issue_type: self.issue_type.clone(),
            priority: self.priority.clone(),
            labels: self.labels.clone(),
            fields: self.fields.clone(),
            ..TicketFields::default()
        }
    }
}

/// Check a config's name and targets; field → message.
pub fn check(name: &str, targets: &[ConfigTarget]) -> BTreeMap<String, String> {
    let mut e = BTreeMap::new();
    if name.trim().is_empty() || name.len() > 200 {
        e.insert("name".into(), "must be 1 to 200 characters".into());
    }
    if targets.is_empty() {
        e.insert("targets".into(), "at least one target is needed".into());
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in targets.iter().enumerate() {
        if t.name.trim().is_empty() {
            e.insert(format!("targets[{i}].name"), "must not be empty".into());
        } else if !seen.insert(t.name.to_lowercase()) {
            e.insert(
                format!("targets[{i}].name"),
                format!("{:?} appears twice", t.name),
            );
        }
        if t.project_key.trim().is_empty() {
            e.insert(
                format!("targets[{i}].project_key"),
                "must not be empty".into(),
            );
        }
        if t.issue_type.trim().is_empty() {
            e.insert(
                format!("targets[{i}].issue_type"),
                "must not be empty".into(),
            );
        }
        if let Some(l) = t.labels.iter().find(|l| l.chars().any(char::is_whitespace)) {
            e.insert(
                format!("targets[{i}].labels"),
                format!("label {l:?} contains spaces"),
            );
        }
    }
    e
}

/// What verification found for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetCheck {
    /// Target name.
    pub name: String,
    /// Whether everything exists.
    pub ok: bool,
    /// Field → what is wrong.
    pub problems: BTreeMap<String, String>,
}

/// Check that each target's project, issue type, priority and completed status exist
/// in Jira (create metadata and the project's statuses).
pub async fn verify_targets(
    client: &JiraClient,
    targets: &[ConfigTarget],
) -> Result<Vec<TargetCheck>, jira_client::Error> {
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let mut problems = BTreeMap::new();
        match client.create_meta_issue_types(&t.project_key).await {
            Err(jira_client::Error::NotFound { .. })
            | Err(jira_client::Error::Validation { .. }) => {
                problems.insert(
                    "project_key".into(),
                    format!(
                        "project {:?} does not exist or is not visible to the connection user",
                        t.project_key
                    ),
                );
            }
            Err(e) => return Err(e),
            Ok(types) => match types
                .iter()
                .find(|it| it.id == t.issue_type || it.name.eq_ignore_ascii_case(&t.issue_type))
            {
                None => {
                    let names: Vec<&str> = types.iter().map(|it| it.name.as_str()).collect();
                    problems.insert(
                        "issue_type".into(),
                        format!(
                            "{:?} is not an issue type of {}; available: {}",
                            t.issue_type,
                            t.project_key,
                            names.join(", ")
                        ),
                    );
                }
                Some(it) => {
                    let fields = client.create_meta_fields(&t.project_key, &it.id).await?;
                    if let Some(p) = &t.priority {
                        match fields.iter().find(|f| f.field_id == "priority") {
                            None => {
                                problems.insert(
                                    "priority".into(),
                                    "priority is not on the create screen".into(),
                                );
                            }
                            Some(meta) => {
                                let known = meta.allowed_values.is_empty()
                                    || meta.allowed_values.iter().any(|v| {
                                        v.get("name")
                                            .and_then(Value::as_str)
                                            .is_some_and(|n| n.eq_ignore_ascii_case(p))
                                    });
                                if !known {
                                    problems.insert(
                                        "priority".into(),
                                        format!("unknown priority {p:?}"),
                                    );
                                }
                            }
                        }
                    }
                    if let Some(s) = &t.completed_status {
                        let statuses = client.project_statuses(&t.project_key).await?;
                        let found = statuses.iter().any(|ts| {
                            (ts.name.eq_ignore_ascii_case(&it.name) || ts.id == it.id)
                                && ts.statuses.iter().any(|st| st.name.eq_ignore_ascii_case(s))
                        }) || statuses
                            .iter()
                            .flat_map(|ts| ts.statuses.iter())
                            .any(|st| st.name.eq_ignore_ascii_case(s));
                        if !found {
                            problems.insert(
                                "completed_status".into(),
                                format!(
                                    "no status {s:?} in the workflow of {} in {}",
                                    it.name, t.project_key
                                ),
                            );
                        }
                    }
                }
            },
        }
        out.push(TargetCheck {
            name: t.name.clone(),
            ok: problems.is_empty(),
            problems,
        });
    }
    Ok(out)
}
