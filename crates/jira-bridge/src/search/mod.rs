//! Finding issues through a connection: text or JQL search with cursor paging, the
//! autosuggest picker (Jira's picker plus recent and linked issues, cached briefly per
//! connection), the connection user's open issues, and issue details with the
//! description as Markdown. See `docs/search-and-keys.md`.

pub mod api;
pub mod picker;

use base64::Engine;
use jira_client::jql::{field, Clause, Query, TextQuery};
use jira_client::keys::IssueKey;
use jira_client::{GetIssue, Issue, JiraClient, SearchRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::connections::errors::from_jira;
use crate::connections::{Connected, ConnectionError};
use crate::http::ApiError;

/// Fields a search result carries (and nothing more is asked of Jira).
pub const SEARCH_FIELDS: &[&str] = &["summary", "status", "assignee", "issuetype", "project"];

/// Fields of issue details.
pub const DETAIL_FIELDS: &[&str] = &[
    "summary",
    "status",
    "issuetype",
    "priority",
    "assignee",
    "reporter",
    "parent",
    "labels",
    "created",
    "updated",
    "resolutiondate",
    "duedate",
    "description",
    "project",
];

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;

/// A status with its category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusRef {
    /// Status name (`In Progress`).
    pub name: String,
    /// Category key: `new`, `indeterminate` or `done`.
    pub category: Option<String>,
}

/// A user as Jira shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserRef {
    /// Cloud account id.
    pub account_id: Option<String>,
    /// Data Center user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// An issue type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TypeRef {
    /// Id.
    pub id: Option<String>,
    /// Name (`Bug`).
    pub name: Option<String>,
    /// Whether it is a sub-task type.
    pub subtask: bool,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectRef {
    /// Key.
    pub key: String,
    /// Name.
    pub name: Option<String>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssueSummary {
    /// Issue key.
    pub key: String,
    /// Issue id.
    pub id: String,
    /// Summary.
    pub summary: Option<String>,
    /// Status and category.
    pub status: Option<StatusRef>,
    /// Assignee.
    pub assignee: Option<UserRef>,
    /// Issue type.
    #[serde(rename = "type")]
    pub issue_type: Option<TypeRef>,
    /// Project.
    pub project: Option<ProjectRef>,
    /// Browse URL.
    pub url: String,
}

/// A page of issues.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuePage {
    /// The issues.
    pub items: Vec<IssueSummary>,
    /// Cursor of the next page, `null` on the last.
    pub next_cursor: Option<String>,
    /// The JQL that was run.
    pub jql: String,
}

fn str_of(v: Option<&Value>, k: &str) -> Option<String> {
    v.and_then(|v| v.get(k)).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn status_of(issue: &Issue) -> Option<StatusRef> {
    issue.status().map(|s| StatusRef {
        category: s.category_key().map(str::to_owned),
        name: s.name,
    })
}

fn user_of(v: Option<&Value>) -> Option<UserRef> {
    let v = v.filter(|v| v.is_object())?;
    Some(UserRef {
        account_id: str_of(Some(v), "accountId"),
        name: str_of(Some(v), "name"),
        display_name: str_of(Some(v), "displayName"),
    })
}

fn type_of(issue: &Issue) -> Option<TypeRef> {
    let v = issue.fields.get("issuetype").filter(|v| v.is_object())?;
    Some(TypeRef {
        id: str_of(Some(v), "id"),
        name: str_of(Some(v), "name"),
        subtask: v.get("subtask").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn project_of(issue: &Issue) -> Option<ProjectRef> {
    let v = issue.fields.get("project").filter(|v| v.is_object())?;
    Some(ProjectRef {
        key: str_of(Some(v), "key")?,
        name: str_of(Some(v), "name"),
    })
}

/// The summary view of an issue.
pub fn summarize(jira: &JiraClient, issue: &Issue) -> IssueSummary {
    IssueSummary {
        key: issue.key.clone(),
        id: issue.id.clone(),
        summary: issue.summary(),
        status: status_of(issue),
        assignee: user_of(issue.fields.get("assignee")),
        issue_type: type_of(issue),
        project: project_of(issue),
        url: jira.browse_url(&issue.key),
    }
}

/// What to search for.
#[derive(Debug, Clone)]
pub enum SearchInput {
    /// Free text (becomes `text ~ …`; a key-looking text also matches the key).
    Text(String),
    /// JQL written by the caller, passed through.
    Jql(String),
}

/// The JQL for a free-text search: the words searched literally in all text fields,
/// and, when the text looks like an issue key of one of `projects` (the connection's;
/// Jira refuses `key = …` for a project it does not have), that key too.
pub fn text_jql(
    q: &str,
    projects: &std::collections::BTreeSet<String>,
) -> Result<String, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(ApiError::bad_field("q", "must not be empty"));
    }
    if q.chars().count() > 500 {
        return Err(ApiError::bad_field("q", "at most 500 characters"));
    }
    let text = Clause::text(TextQuery::words(q));
    let clause = match IssueKey::parse(q) {
        Ok(key) if projects.contains(key.project().as_str()) => field("key").eq(&key).or(text),
        _ => text,
    };
    Query::new(clause)
        .order_by("updated", jira_client::jql::Direction::Desc)
        .build()
        .map_err(|e| ApiError::bad_field("q", e.to_string()))
}

/// The JQL of the connection user's unresolved issues.
pub const ASSIGNED_JQL: &str =
    "assignee = currentUser() AND statusCategory != Done ORDER BY updated DESC";

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// Connection.
    c: String,
    /// Hash of the JQL.
    q: String,
    /// Jira's page token (or start index on Data Center).
    t: String,
}

fn jql_hash(jql: &str) -> String {
    let d = Sha256::digest(jql.as_bytes());
    hex::encode(&d[..8])
}

/// Our cursor: Jira's page token bound to the connection and the query.
pub fn encode_cursor(connection: &str, jql: &str, token: &str) -> String {
    let body = CursorBody {
        c: connection.to_owned(),
        q: jql_hash(jql),
        t: token.to_owned(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Jira's page token from our cursor, if it was made for this connection and query.
pub fn decode_cursor(cursor: &str, connection: &str, jql: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_field("cursor", "not a cursor from a previous page of this search");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if body.c != connection || body.q != jql_hash(jql) || body.t.is_empty() {
        return Err(bad());
    }
    Ok(body.t)
}

/// Map a failed search: Jira refusing the JQL is the caller's 400, naming Jira's reason.
fn search_error(e: &jira_client::Error) -> ConnectionError {
    if let jira_client::Error::Validation { status: 400, .. } = e {
        let jira = crate::connections::errors::jira_messages(e);
        let reason = jira
            .as_ref()
            .map(|m| {
                let mut all = m.error_messages.clone();
                all.extend(m.errors.iter().map(|(k, v)| format!("{k}: {v}")));
                all.join("; ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Jira did not accept the query".to_owned());
        return ConnectionError::Jira {
            status: axum::http::StatusCode::BAD_REQUEST,
            slug: "invalid-jql",
            detail: format!("Jira rejected the JQL: {reason}"),
            jira,
        };
    }
    from_jira(e)
}

/// One page of a search.
pub async fn search(
    state: &crate::http::AppState,
    c: &Connected,
    input: SearchInput,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<IssuePage, ConnectionError> {
    let jql = match input {
        SearchInput::Text(q) => {
            let looks_like_key = IssueKey::parse(q.trim()).is_ok();
            let projects = if looks_like_key {
                crate::keys::connection_projects(state, c).await?
            } else {
                Default::default()
            };
            text_jql(&q, &projects)?
        }
        SearchInput::Jql(j) => {
            let j = j.trim().to_owned();
            if j.is_empty() {
                return Err(ApiError::bad_field("jql", "must not be empty").into());
            }
            if j.len() > 10_000 {
                return Err(ApiError::bad_field("jql", "at most 10,000 characters").into());
            }
            j
        }
    };
    run_jql(c, jql, limit, cursor).await
}

/// One page of a JQL search with our cursor.
pub async fn run_jql(
    c: &Connected,
    jql: String,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<IssuePage, ConnectionError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_field("limit", format!("1 to {MAX_LIMIT}")).into());
    }
    let con = c.connection.id.as_str();
    let token = match cursor.filter(|s| !s.is_empty()) {
        Some(cur) => Some(decode_cursor(cur, con, &jql)?),
        None => None,
    };
    let req = SearchRequest::new(jql.clone())
        .fields(SEARCH_FIELDS.iter().copied())
        .page_size(limit);
    let page = match c.jira.search_page(&req, token.as_deref()).await {
        Ok(p) => p,
        Err(e) => {
            // 401s mark the connection; the answer is ours.
            let _ = c.observe::<()>(Err(clone_unauthorized(&e))).await;
            return Err(search_error(&e));
        }
    };
    Ok(IssuePage {
        items: page.issues.iter().map(|i| summarize(&c.jira, i)).collect(),
        next_cursor: page.next_cursor.map(|t| encode_cursor(con, &jql, &t)),
        jql,
    })
}

/// Only a 401 needs to reach [`Connected::observe`]; everything else is mapped here.
fn clone_unauthorized(e: &jira_client::Error) -> jira_client::Error {
    match e {
        jira_client::Error::Unauthorized { ctx, messages } => jira_client::Error::Unauthorized {
            ctx: ctx.clone(),
            messages: messages.clone(),
        },
        other => jira_client::Error::Config(other.to_string()),
    }
}

/// The connection user's unresolved issues.
pub async fn assigned(
    c: &Connected,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<IssuePage, ConnectionError> {
    run_jql(c, ASSIGNED_JQL.to_owned(), limit, cursor).await
}

/// The parent of an issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParentRef {
    /// Key.
    pub key: String,
    /// Summary.
    pub summary: Option<String>,
}

/// A description in both forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Description {
    /// Markdown converted from the original.
    pub markdown: String,
    /// `adf` (Cloud) or `wiki` (Data Center).
    pub format: String,
    /// The original: an ADF document or a wiki-markup string.
    pub original: Value,
}

/// Issue details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssueDetails {
    /// Key.
    pub key: String,
    /// Id.
    pub id: String,
    /// Browse URL.
    pub url: String,
    /// Summary.
    pub summary: Option<String>,
    /// Status and category.
    pub status: Option<StatusRef>,
    /// Issue type.
    #[serde(rename = "type")]
    pub issue_type: Option<TypeRef>,
    /// Priority name.
    pub priority: Option<String>,
    /// Assignee.
    pub assignee: Option<UserRef>,
    /// Reporter.
    pub reporter: Option<UserRef>,
    /// Parent issue.
    pub parent: Option<ParentRef>,
    /// Project.
    pub project: Option<ProjectRef>,
    /// Labels.
    pub labels: Vec<String>,
    /// Created (as Jira wrote it).
    pub created: Option<String>,
    /// Last updated.
    pub updated: Option<String>,
    /// Resolved.
    pub resolved: Option<String>,
    /// Due date.
    pub due_date: Option<String>,
    /// Description (absent when the issue has none).
    pub description: Option<Description>,
}

/// Issue details by key.
pub async fn details(c: &Connected, key: &str) -> Result<IssueDetails, ConnectionError> {
    let key = IssueKey::parse(key.trim()).map_err(|e| ApiError::bad_field("key", e.to_string()))?;
    let opts = GetIssue {
        fields: DETAIL_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        ..GetIssue::default()
    };
    let issue = c
        .observe(c.jira.get_issue(key.as_str(), &opts).await)
        .await?;
    let d = details_of(&c.jira, &issue);
    picker::remember(&c.connection.id, &d);
    Ok(d)
}

/// The details view of an issue.
pub fn details_of(jira: &JiraClient, issue: &Issue) -> IssueDetails {
    let f = &issue.fields;
    let description = f
        .get("description")
        .filter(|v| !v.is_null())
        .map(|v| Description {
            markdown: JiraClient::rich_text_to_markdown(v),
            format: if v.is_string() { "wiki" } else { "adf" }.to_owned(),
            original: v.clone(),
        });
    let parent = f.get("parent").filter(|v| v.is_object()).and_then(|p| {
        Some(ParentRef {
            key: str_of(Some(p), "key")?,
            summary: p
                .get("fields")
                .and_then(|pf| pf.get("summary"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    });
    let text = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_owned);
    IssueDetails {
        key: issue.key.clone(),
        id: issue.id.clone(),
        url: jira.browse_url(&issue.key),
        summary: issue.summary(),
        status: status_of(issue),
        issue_type: type_of(issue),
        priority: str_of(f.get("priority"), "name"),
        assignee: user_of(f.get("assignee")),
        reporter: user_of(f.get("reporter")),
        parent,
        project: project_of(issue),
        labels: f
            .get("labels")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        created: text("created"),
        updated: text("updated"),
        resolved: text("resolutiondate"),
        due_date: text("duedate"),
        description,
    }
}
