//! JQL search (Cloud `/search/jql` with `nextPageToken`, Data Center `/search` with
//! `startAt`) behind one API, issue picker, bulk fetch.

use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{JiraClient, Req};
use crate::config::Deployment;
use crate::error::{Error, Result};
use crate::models::{BulkFetch, Issue, PickerResult, SearchPage, SearchRequest};
use crate::paging::{token_stream, TokenPage};

/// Jira's bulk-fetch limit per request.
pub const BULK_FETCH_CHUNK: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudSearch {
    #[serde(default)]
    issues: Vec<Issue>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    is_last: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacySearch {
    #[serde(default)]
    issues: Vec<Issue>,
    #[serde(default)]
    start_at: u64,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkFetchBody {
    #[serde(default)]
    issues: Vec<Issue>,
    #[serde(default)]
    issue_errors: Vec<Value>,
}

impl JiraClient {
    /// One page of a JQL search. `cursor` is `None` for the first page, then the
    /// previous page's `next_cursor`.
    pub async fn search_page(
        &self,
        req: &SearchRequest,
        cursor: Option<&str>,
    ) -> Result<SearchPage> {
        let max = req.page_size.unwrap_or(50).clamp(1, 5000);
        match self.deployment().await? {
            Deployment::Cloud => {
                let mut body = serde_json::json!({
                    "jql": req.jql,
                    "maxResults": max,
                });
                if !req.fields.is_empty() {
                    body["fields"] = serde_json::json!(req.fields);
                }
                if !req.properties.is_empty() {
                    body["properties"] = serde_json::json!(req.properties);
                }
                if !req.expand.is_empty() {
                    body["expand"] = Value::String(req.expand.join(","));
                }
                if !req.reconcile_issues.is_empty() {
                    body["reconcileIssues"] = serde_json::json!(req.reconcile_issues);
                }
                if let Some(c) = cursor {
                    body["nextPageToken"] = Value::String(c.to_string());
                }
                let p: CloudSearch = self
                    .call(Req::post_read(&["search", "jql"]).json_value(body))
                    .await?;
                let next = if p.is_last == Some(true) {
                    None
                } else {
                    p.next_page_token.filter(|t| !t.is_empty())
                };
                Ok(SearchPage {
                    issues: p.issues,
                    next_cursor: next,
                })
            }
            Deployment::DataCenter => {
                let start: u64 = match cursor {
                    Some(c) => c
                        .parse()
                        .map_err(|_| Error::Config(format!("invalid search cursor {c:?}")))?,
                    None => 0,
                };
                let mut body = serde_json::json!({
                    "jql": req.jql,
                    "startAt": start,
                    "maxResults": max,
                });
                if !req.fields.is_empty() {
                    body["fields"] = serde_json::json!(req.fields);
                }
                if !req.properties.is_empty() {
                    body["properties"] = serde_json::json!(req.properties);
                }
                if !req.expand.is_empty() {
                    body["expand"] = serde_json::json!(req.expand);
                }
                let p: LegacySearch = self
                    .call(Req::post_read(&["search"]).json_value(body))
                    .await?;
                let n = p.issues.len() as u64;
                let next_start = p.start_at.max(start) + n;
                let more = n > 0 && p.total.is_none_or(|t| next_start < t);
                Ok(SearchPage {
                    issues: p.issues,
                    next_cursor: more.then(|| next_start.to_string()),
                })
            }
        }
    }

    /// Every issue matching a JQL search, page by page.
    pub fn search(&self, req: SearchRequest) -> BoxStream<'static, Result<Issue>> {
        let c = self.clone();
        token_stream(move |token| {
            let c = c.clone();
            let req = req.clone();
            async move {
                let p = c.search_page(&req, token.as_deref()).await?;
                Ok(TokenPage {
                    values: p.issues,
                    next: p.next_cursor,
                })
            }
        })
        .boxed()
    }

    /// `GET /issue/picker`: suggestions for `query`, optionally within `current_jql`.
    pub async fn issue_picker(
        &self,
        query: &str,
        current_jql: Option<&str>,
    ) -> Result<PickerResult> {
        self.call(
            Req::get(&["issue", "picker"])
                .q("query", query)
                .q_opt("currentJQL", current_jql),
        )
        .await
    }

    /// Fetch issues by id or key, 100 per request (`/issue/bulkfetch` on Cloud, a
    /// `key in (…)` search on Data Center). Unknown or invisible issues are omitted.
    pub async fn bulk_fetch(&self, ids_or_keys: &[String], fields: &[String]) -> Result<BulkFetch> {
        let mut out = BulkFetch::default();
        let dc = self.deployment().await? == Deployment::DataCenter;
        for chunk in ids_or_keys.chunks(BULK_FETCH_CHUNK) {
            if dc {
                for k in chunk {
                    if k.is_empty()
                        || !k
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        return Err(Error::Config(format!("not an issue key or id: {k:?}")));
                    }
                }
                let list: Vec<String> = chunk.iter().map(|k| format!("\"{k}\"")).collect();
                let req = SearchRequest {
                    jql: format!("issuekey in ({}) ORDER BY key ASC", list.join(", ")),
                    fields: fields.to_vec(),
                    page_size: Some(BULK_FETCH_CHUNK as u32),
                    ..SearchRequest::default()
                };
                let mut p = self.search_page(&req, None).await?;
                out.issues.append(&mut p.issues);
            } else {
                let mut body = serde_json::json!({ "issueIdsOrKeys": chunk });
                if !fields.is_empty() {
                    body["fields"] = serde_json::json!(fields);
                }
                let mut p: BulkFetchBody = self
                    .call(Req::post_read(&["issue", "bulkfetch"]).json_value(body))
                    .await?;
                out.issues.append(&mut p.issues);
                out.issue_errors.append(&mut p.issue_errors);
            }
        }
        Ok(out)
    }
}
