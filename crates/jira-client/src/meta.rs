//! Site metadata: server info, current user, projects, issue types, create metadata,
//! fields, priorities, statuses, epic fields.

use futures::stream::BoxStream;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{JiraClient, Req};
use crate::config::Deployment;
use crate::error::Result;
use crate::models::{
    EpicFields, Field, FieldMeta, IssueType, IssueTypeStatuses, Priority, Project, ServerInfo,
    Status, StatusCategory, User,
};
use crate::paging::{offset_stream, OffsetPage};

/// A generic offset page (`values`, or `issueTypes`/`fields` for Cloud createmeta).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageBean<T> {
    #[serde(alias = "issueTypes", alias = "fields")]
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
    #[serde(default)]
    pub is_last: Option<bool>,
    #[serde(default)]
    pub total: Option<u64>,
}

impl<T> From<PageBean<T>> for OffsetPage<T> {
    fn from(p: PageBean<T>) -> Self {
        OffsetPage {
            values: p.values,
            is_last: p.is_last,
            total: p.total,
        }
    }
}

/// Filters of [`JiraClient::projects`].
#[derive(Debug, Clone, Default)]
pub struct ProjectQuery {
    /// Text matched against key and name.
    pub query: Option<String>,
    /// Only these keys.
    pub keys: Vec<String>,
    /// Page size (≤ 100).
    pub page_size: Option<u32>,
}

impl JiraClient {
    /// `GET /serverInfo`.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        self.call(Req::get(&["serverInfo"])).await
    }

    /// `GET /myself`: the authenticated user (also a credential check).
    pub async fn myself(&self) -> Result<User> {
        self.call(Req::get(&["myself"])).await
    }

    /// Projects visible to the caller, paged (`/project/search` on Cloud; `/project` on
    /// Data Center, which is not paged and filtered here).
    pub fn projects(&self, q: ProjectQuery) -> BoxStream<'static, Result<Project>> {
        let c = self.clone();
        let page_size = q.page_size.unwrap_or(50).clamp(1, 100);
        offset_stream(page_size, move |start, max| {
            let c = c.clone();
            let q = q.clone();
            async move {
                if c.deployment().await? == Deployment::DataCenter {
                    if start > 0 {
                        return Ok(OffsetPage {
                            values: vec![],
                            is_last: Some(true),
                            total: None,
                        });
                    }
                    let all: Vec<Project> = c.call(Req::get(&["project"])).await?;
                    let needle = q.query.as_deref().map(str::to_lowercase);
                    let values = all
                        .into_iter()
                        .filter(|p| q.keys.is_empty() || q.keys.iter().any(|k| k == &p.key))
                        .filter(|p| {
                            needle.as_ref().is_none_or(|n| {
                                p.key.to_lowercase().contains(n)
                                    || p.name.to_lowercase().contains(n)
                            })
                        })
                        .collect();
                    return Ok(OffsetPage {
                        values,
                        is_last: Some(true),
                        total: None,
                    });
                }
                let mut req = Req::get(&["project", "search"])
                    .q("startAt", start)
                    .q("maxResults", max)
                    .q_opt("query", q.query.as_deref());
                for k in &q.keys {
                    req = req.q("keys", k);
                }
                let page: PageBean<Project> = c.call(req).await?;
                Ok(page.into())
            }
        })
    }

    /// `GET /project/{key}`.
    pub async fn project(&self, key_or_id: &str) -> Result<Project> {
        self.call(Req::get(&["project", key_or_id])).await
    }

    /// Issue types usable in a project, from the create-metadata endpoint (respects the
    /// caller's create permission), all pages.
    pub async fn create_meta_issue_types(&self, project: &str) -> Result<Vec<IssueType>> {
        let c = self.clone();
        let project = project.to_string();
        offset_stream(200, move |start, max| {
            let c = c.clone();
            let project = project.clone();
            async move {
                let page: PageBean<IssueType> = c
                    .call(
                        Req::get(&["issue", "createmeta", &project, "issuetypes"])
                            .q("startAt", start)
                            .q("maxResults", max),
                    )
                    .await?;
                Ok(page.into())
            }
        })
        .try_collect()
        .await
    }

    /// Fields of the create screen of one project and issue type (required flags,
    /// allowed values), all pages.
    pub async fn create_meta_fields(
        &self,
        project: &str,
        issue_type_id: &str,
    ) -> Result<Vec<FieldMeta>> {
        let c = self.clone();
        let project = project.to_string();
        let it = issue_type_id.to_string();
        offset_stream(200, move |start, max| {
            let c = c.clone();
            let project = project.clone();
            let it = it.clone();
            async move {
                let page: PageBean<FieldMeta> = c
                    .call(
                        Req::get(&["issue", "createmeta", &project, "issuetypes", &it])
                            .q("startAt", start)
                            .q("maxResults", max),
                    )
                    .await?;
                Ok(page.into())
            }
        })
        .try_collect()
        .await
    }

    /// Issue types of a project (`GET /project/{key}` → `issueTypes`).
    pub async fn project_issue_types(&self, project: &str) -> Result<Vec<IssueType>> {
        Ok(self.project(project).await?.issue_types)
    }

    /// `GET /field`: every field visible to the caller.
    pub async fn fields(&self) -> Result<Vec<Field>> {
        self.call(Req::get(&["field"])).await
    }

    /// `GET /priority`.
    pub async fn priorities(&self) -> Result<Vec<Priority>> {
        self.call(Req::get(&["priority"])).await
    }

    /// `GET /status`.
    pub async fn statuses(&self) -> Result<Vec<Status>> {
        self.call(Req::get(&["status"])).await
    }

    /// `GET /project/{key}/statuses`: statuses per issue type.
    pub async fn project_statuses(&self, project: &str) -> Result<Vec<IssueTypeStatuses>> {
        self.call(Req::get(&["project", project, "statuses"])).await
    }

    /// `GET /statuscategory`.
    pub async fn status_categories(&self) -> Result<Vec<StatusCategory>> {
        self.call(Req::get(&["statuscategory"])).await
    }

    /// Epic Link / Epic Name custom fields (discovered from `/field` by their schema type,
    /// cached). On Cloud, epic children use `parent`: `epic_link` is `None` there.
    pub async fn epic_fields(&self) -> Result<EpicFields> {
        self.inner
            .epic_fields
            .get_or_try_init(|| async {
                let fields = self.fields().await?;
                let find = |suffix: &str| {
                    fields
                        .iter()
                        .find(|f| {
                            f.schema
                                .as_ref()
                                .and_then(|s| s.custom.as_deref())
                                .is_some_and(|c| c.ends_with(suffix))
                        })
                        .map(|f| f.id.clone())
                };
                let cloud = self.deployment().await? == Deployment::Cloud;
                Ok(EpicFields {
                    epic_link: if cloud { None } else { find(":gh-epic-link") },
                    epic_name: find(":gh-epic-label"),
                })
            })
            .await
            .cloned()
    }

    /// The field id and value that put an issue under `epic_key`: `("parent",
    /// {"key": …})` on Cloud, `(<Epic Link field>, "KEY")` on Data Center.
    pub async fn epic_parent_field(&self, epic_key: &str) -> Result<(String, Value)> {
        let ef = self.epic_fields().await?;
        Ok(match ef.epic_link {
            Some(id) => (id, Value::String(epic_key.to_string())),
            None => ("parent".to_string(), serde_json::json!({ "key": epic_key })),
        })
    }
}
