//! Jira metadata through a connection (projects, issue types, create fields,
//! priorities, statuses, users), cached per connection in the store for
//! `connections.metadata_ttl_seconds`; `refresh` fetches anew.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use jira_client::ProjectQuery;
use serde_json::{json, Value};

use super::errors::ConnectionError;
use super::Connected;
use crate::http::AppState;

/// Largest number of projects one listing returns.
const MAX_PROJECTS: usize = 1000;

/// A metadata answer.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The items.
    pub items: Value,
    /// When they were fetched from Jira.
    pub fetched_at: DateTime<Utc>,
    /// Served from the cache.
    pub cached: bool,
}

/// What to fetch.
#[derive(Debug, Clone)]
pub enum What {
    /// Projects matching a text.
    Projects(Option<String>),
    /// Issue types of a project.
    IssueTypes(String),
    /// Create fields of a project and issue type.
    Fields(String, String),
    /// Priorities.
    Priorities,
    /// Statuses (of a project).
    Statuses(Option<String>),
    /// Users by name or email.
    Users(String),
}

impl What {
    fn key(&self) -> String {
        match self {
            Self::Projects(q) => format!("projects:{}", q.as_deref().unwrap_or("")),
            Self::IssueTypes(p) => format!("issue-types:{p}"),
            Self::Fields(p, t) => format!("fields:{p}:{t}"),
            Self::Priorities => "priorities".into(),
            Self::Statuses(p) => format!("statuses:{}", p.as_deref().unwrap_or("")),
            Self::Users(q) => format!("users:{}", q.to_lowercase()),
        }
    }
}

/// Fetch (or serve from the cache) one kind of metadata.
pub async fn get(
    state: &AppState,
    c: &Connected,
    what: What,
    refresh: bool,
) -> Result<Cached, ConnectionError> {
    let key = what.key();
    let tenant = &c.connection.tenant_id;
    let id = &c.connection.id;
    let ttl = chrono::Duration::seconds(
        i64::try_from(state.config.connections.metadata_ttl_seconds).unwrap_or(600),
    );
    if !refresh {
        if let Some((items, fetched_at)) = state
            .store
            .get_connection_metadata(tenant, id, &key)
            .await?
        {
            if fetched_at + ttl > Utc::now() {
                return Ok(Cached {
                    items,
                    fetched_at,
                    cached: true,
                });
            }
        }
    }
    let items = fetch(c, &what).await?;
    state
        .store
        .put_connection_metadata(tenant, id, &key, &items)
        .await?;
    Ok(Cached {
        items,
        fetched_at: Utc::now(),
        cached: false,
    })
}

fn named(v: &Value) -> Value {
    json!({
        "id": v.get("id").cloned().unwrap_or(Value::Null),
        "name": v.get("name").or_else(|| v.get("value")).cloned().unwrap_or(Value::Null),
    })
}

async fn fetch(c: &Connected, what: &What) -> Result<Value, ConnectionError> {
    let j = &c.jira;
    Ok(match what {
        What::Projects(q) => {
            let projects: Vec<_> = c
                .observe(
                    j.projects(ProjectQuery {
                        query: q.clone(),
                        ..ProjectQuery::default()
                    })
                    .take(MAX_PROJECTS)
                    .try_collect::<Vec<_>>()
                    .await,
                )
                .await?;
            Value::Array(
                projects
                    .into_iter()
                    .map(|p| json!({"id": p.id, "key": p.key, "name": p.name}))
                    .collect(),
            )
        }
        What::IssueTypes(p) => {
            let types = c.observe(j.create_meta_issue_types(p).await).await?;
            Value::Array(
                types
                    .into_iter()
                    .map(|t| {
                        json!({"id": t.id, "name": t.name, "subtask": t.subtask,
                               "hierarchy_level": t.hierarchy_level, "description": t.description})
                    })
                    .collect(),
            )
        }
        What::Fields(p, t) => {
            let fields = c.observe(j.create_meta_fields(p, t).await).await?;
            Value::Array(
                fields
                    .into_iter()
                    .map(|f| {
                        let schema = f.schema.clone().unwrap_or_default();
                        json!({
                            "id": f.field_id,
                            "name": f.name,
                            "required": f.required,
                            "type": schema.kind,
                            "items": schema.items,
                            "custom": schema.custom,
                            "has_default_value": f.has_default_value.unwrap_or(false),
                            "allowed_values": f.allowed_values.iter().map(named).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            )
        }
        What::Priorities => {
            let ps = c.observe(j.priorities().await).await?;
            Value::Array(
                ps.into_iter()
                    .map(|p| json!({"id": p.id, "name": p.name}))
                    .collect(),
            )
        }
        What::Statuses(Some(p)) => {
            let per_type = c.observe(j.project_statuses(p).await).await?;
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for t in per_type {
                for s in t.statuses {
                    if seen.insert(s.id.clone()) {
                        out.push(json!({"id": s.id, "name": s.name, "category": s.category_key()}));
                    }
                }
            }
            Value::Array(out)
        }
        What::Statuses(None) => {
            let ss = c.observe(j.statuses().await).await?;
            Value::Array(
                ss.into_iter()
                    .map(|s| json!({"id": s.id, "name": s.name, "category": s.category_key()}))
                    .collect(),
            )
        }
        What::Users(q) => {
            let users = c.observe(j.search_users(q, 50).await).await?;
            Value::Array(
                users
                    .into_iter()
                    .map(|u| {
                        json!({
                            "account_id": u.account_id,
                            "name": u.name,
                            "display_name": u.display_name,
                            "email": u.email_address,
                            "active": u.active,
                        })
                    })
                    .collect(),
            )
        }
    })
}
