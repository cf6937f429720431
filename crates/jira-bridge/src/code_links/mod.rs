//! Code links: a pull request, commit or any other source whose title, branch and
//! commit messages name issues becomes ticket links with purpose `code:<KEY>` (one per
//! issue) and, when the source has a URL, a Jira remote link on each issue, upserted by
//! a stable global id so that repeating the call changes nothing in Jira.
//!
//! The backfill job (`code_links.backfill`) does the same for historical records
//! (title, branch, notes, URLs), deciding one issue per record and reporting what was
//! linked, what was ambiguous and what matched no existing issue. See
//! `docs/search-and-keys.md`.

pub mod api;
pub mod backfill;

use std::collections::{BTreeSet, HashMap};

use jira_bridge_store::links::{Link, LinkedIssue};
use jira_bridge_store::{ConnectionId, Store, TenantId};
use jira_client::keys::{IssueKey, KeyExtractor};
use jira_client::{Issue, JiraClient, RemoteLink, RemoteLinkObject};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::connections::ConnectionError;
use crate::http::ApiError;
use crate::tickets::Source;

/// Purpose prefix of code links: `code:ABC-12`.
pub const PURPOSE_PREFIX: &str = "code:";

/// The purpose of the link between a source and one issue.
pub fn purpose(key: &str) -> String {
    format!("{PURPOSE_PREFIX}{key}")
}

/// The remote link's global id for a source: stable, the same on every issue, unique
/// per tenant and source, at most 255 characters.
pub fn global_id(tenant: &TenantId, source: &Source) -> String {
    format!(
        "jira-bridge:code:{}",
        crate::tickets::idempotency_key(tenant, source, "code")
    )
}

/// Where a key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundIn {
    /// The title.
    Title,
    /// The branch name.
    Branch,
    /// A commit message.
    Commit,
    /// Notes (backfill).
    Notes,
    /// A URL (backfill).
    Url,
}

/// Distinct keys in fields taken in precedence order, each with the first field it
/// appeared in.
pub fn keys_in_order(x: &KeyExtractor, fields: &[(FoundIn, &str)]) -> Vec<(IssueKey, FoundIn)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (where_, text) in fields {
        for k in x.extract(text) {
            if seen.insert(k.clone()) {
                out.push((k, *where_));
            }
        }
    }
    out
}

/// Fields read of linked issues.
pub const ISSUE_FIELDS: &[&str] = &["summary", "status", "project", "updated"];

/// The existing issues among `keys`, by key (one bulk fetch per 100 keys).
pub async fn existing(
    jira: &JiraClient,
    keys: &[IssueKey],
) -> Result<HashMap<String, Issue>, jira_client::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let fields: Vec<String> = ISSUE_FIELDS.iter().map(|s| (*s).to_owned()).collect();
    let found = jira.bulk_fetch(&list, &fields).await?;
    Ok(found
        .issues
        .into_iter()
        .map(|i| (i.key.clone(), i))
        .collect())
}

/// Record the ledger link of a source and one existing issue (idempotent).
pub async fn link_issue(
    store: &Store,
    jira: &JiraClient,
    tenant: &TenantId,
    connection: &ConnectionId,
    source: &Source,
    issue: &Issue,
    job_id: Option<String>,
) -> Result<Link, jira_bridge_store::StoreError> {
    let project = issue
        .project()
        .map(|p| p.key)
        .or_else(|| {
            IssueKey::parse(&issue.key)
                .ok()
                .map(|k| k.project().as_str().to_owned())
        })
        .unwrap_or_default();
    let new = crate::tickets::new_link(
        tenant,
        connection,
        source,
        &purpose(&issue.key),
        &project,
        None,
        None,
        job_id,
    );
    let (link, _) = store.reserve_link(&new).await?;
    let status = issue.status();
    if link.state == "created" && link.issue_id.as_deref() == Some(issue.id.as_str()) {
        return Ok(link);
    }
    if link.state == "failed" {
        store.rearm_link(tenant, &link.id, &new).await?;
    }
    store
        .complete_link(
            tenant,
            &link.id,
            &LinkedIssue {
                issue_id: issue.id.clone(),
                issue_key: issue.key.clone(),
                url: jira.browse_url(&issue.key),
                status: status.as_ref().map(|s| s.name.clone()),
                status_category: status
                    .as_ref()
                    .and_then(|s| s.category_key().map(str::to_owned)),
                remote_updated_at: None,
                summary: None,
            },
        )
        .await
}

/// What happened to an issue's remote link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoteLinkOutcome {
    /// Created now.
    Created,
    /// Existed with other content; replaced.
    Updated,
    /// Existed as wanted; Jira was not written.
    Unchanged,
    /// The source has no URL: no remote link.
    Skipped,
}

/// The remote link a source puts on its issues.
pub fn remote_link(gid: &str, url: &str, title: &str, summary: Option<String>) -> RemoteLink {
    RemoteLink {
        global_id: gid.to_owned(),
        application: Some(json!({"type": "com.jira-bridge.code", "name": "jira-bridge"})),
        relationship: Some("mentioned in".to_owned()),
        object: RemoteLinkObject {
            url: url.to_owned(),
            title: title.to_owned(),
            summary,
            icon: None,
            status: None,
        },
    }
}

/// Put the remote link on an issue unless it is already there as wanted.
pub async fn ensure_remote_link(
    jira: &JiraClient,
    key: &str,
    link: &RemoteLink,
) -> Result<RemoteLinkOutcome, jira_client::Error> {
    let current = jira.remote_links(key, Some(&link.global_id)).await?;
    if current.iter().any(|r| r.object == link.object) {
        return Ok(RemoteLinkOutcome::Unchanged);
    }
    let up = jira.upsert_remote_link(key, link).await?;
    Ok(if up.created {
        RemoteLinkOutcome::Created
    } else {
        RemoteLinkOutcome::Updated
    })
}

/// A commit: its message, or `{id, message}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CommitInput {
    /// Just the message.
    Message(String),
    /// A commit with its id.
    Commit {
        /// Commit id (SHA).
        #[serde(default)]
        id: Option<String>,
        /// Message.
        message: String,
    },
}

impl CommitInput {
    fn message(&self) -> &str {
        match self {
            Self::Message(m) | Self::Commit { message: m, .. } => m,
        }
    }
}

/// A source to link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CodeLinkRequest {
    /// The connection of the issues.
    pub connection_id: String,
    /// The pull request (or commit, …): `{kind, id}`.
    pub source: Source,
    /// Title (keys here come first).
    pub title: String,
    /// Branch name (keys here next; lower-case keys of the site's projects are found).
    pub branch: Option<String>,
    /// Commits (keys here last).
    pub commits: Option<Vec<CommitInput>>,
    /// Where the source lives; when given, each issue gets a remote link to it.
    pub url: Option<String>,
}

/// One key of a code link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkedKey {
    /// The key.
    pub key: String,
    /// The first field it appeared in.
    pub found_in: FoundIn,
    /// `linked`, or `not_found` when no such issue is visible to the connection.
    pub status: String,
    /// The ticket (`tkt_…`) recording the link.
    pub ticket_id: Option<String>,
    /// What happened to the Jira remote link.
    pub remote_link: Option<RemoteLinkOutcome>,
}

/// The answer of a code link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CodeLinkResponse {
    /// The source.
    pub source: Source,
    /// Keys in precedence order (title, branch, commits).
    pub keys: Vec<LinkedKey>,
    /// The remote links' global id.
    pub global_id: String,
}

const MAX_COMMITS: usize = 1000;

fn validate(req: &CodeLinkRequest) -> Result<(), ApiError> {
    let mut errors = crate::tickets::check_source(&req.source, "code")
        .err()
        .unwrap_or_default();
    if req.title.chars().count() > 1000 {
        errors.insert("title".into(), "at most 1,000 characters".into());
    }
    if req
        .branch
        .as_ref()
        .is_some_and(|b| b.chars().count() > 1000)
    {
        errors.insert("branch".into(), "at most 1,000 characters".into());
    }
    if req.commits.as_ref().is_some_and(|c| c.len() > MAX_COMMITS) {
        errors.insert("commits".into(), format!("at most {MAX_COMMITS} commits"));
    }
    if let Some(u) = &req.url {
        match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") => {}
            _ => {
                errors.insert("url".into(), "an absolute http(s) URL".into());
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation {
            detail: "the code link is not valid".into(),
            errors,
        })
    }
}

/// Link a source to the issues its title, branch and commits name.
pub async fn link(
    state: &crate::http::AppState,
    tenant: &TenantId,
    req: CodeLinkRequest,
) -> Result<CodeLinkResponse, ConnectionError> {
    validate(&req)?;
    let con: ConnectionId = req
        .connection_id
        .parse()
        .map_err(|_| ApiError::NotFound("no such connection".into()))?;
    let c = crate::connections::connect(state, tenant, &con).await?;
    let known = crate::keys::connection_projects(state, &c).await?;
    let allow: Vec<String> = known.into_iter().collect();
    let x = KeyExtractor::new().allow_projects(&allow);
    let mut fields: Vec<(FoundIn, &str)> = vec![(FoundIn::Title, req.title.as_str())];
    if let Some(b) = &req.branch {
        fields.push((FoundIn::Branch, b.as_str()));
    }
    for commit in req.commits.iter().flatten() {
        fields.push((FoundIn::Commit, commit.message()));
    }
    let found = keys_in_order(&x, &fields);
    let keys: Vec<IssueKey> = found.iter().map(|(k, _)| k.clone()).collect();
    let issues = c.observe(existing(&c.jira, &keys).await).await?;
    let gid = global_id(tenant, &req.source);
    let summary = req
        .branch
        .as_ref()
        .map(|b| format!("{} {} · branch {b}", req.source.kind, req.source.id))
        .or_else(|| Some(format!("{} {}", req.source.kind, req.source.id)));
    let mut out = Vec::with_capacity(found.len());
    for (key, found_in) in found {
        let Some(issue) = issues.get(key.as_str()) else {
            out.push(LinkedKey {
                key: key.to_string(),
                found_in,
                status: "not_found".into(),
                ticket_id: None,
                remote_link: None,
            });
            continue;
        };
        let l = link_issue(
            &state.store,
            &c.jira,
            tenant,
            &con,
            &req.source,
            issue,
            None,
        )
        .await
        .map_err(ApiError::from)?;
        let remote = match &req.url {
            Some(url) => {
                let rl = remote_link(&gid, url, &req.title, summary.clone());
                Some(
                    c.observe(ensure_remote_link(&c.jira, &issue.key, &rl).await)
                        .await?,
                )
            }
            None => Some(RemoteLinkOutcome::Skipped),
        };
        out.push(LinkedKey {
            key: issue.key.clone(),
            found_in,
            status: "linked".into(),
            ticket_id: Some(l.id.to_string()),
            remote_link: remote,
        });
    }
    Ok(CodeLinkResponse {
        source: req.source,
        keys: out,
        global_id: gid,
    })
}
