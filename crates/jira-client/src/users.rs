//! User search, assignable users and email → user resolution.

use crate::client::{JiraClient, Req};
use crate::config::Deployment;
use crate::error::Result;
use crate::models::User;

/// What an assignable-user search is scoped to.
#[derive(Debug, Clone)]
pub enum AssignableScope {
    /// New issues of a project (key or id).
    Project(String),
    /// An existing issue (key or id).
    Issue(String),
}

/// The scope a permission question is asked in (`GET /mypermissions`).
#[derive(Debug, Clone)]
pub enum PermissionScope {
    /// An issue (key or id).
    Issue(String),
    /// A project (key or id).
    Project(String),
}

/// One permission as `GET /mypermissions` answers it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPermission {
    /// Permission key, e.g. `WORK_ON_ISSUES`.
    #[serde(default)]
    pub key: Option<String>,
    /// Whether the caller has it in the asked scope.
    #[serde(default)]
    pub have_permission: bool,
}

#[derive(Debug, serde::Deserialize)]
struct Permissions {
    #[serde(default)]
    permissions: std::collections::BTreeMap<String, UserPermission>,
}

impl JiraClient {
    /// `GET /mypermissions?permissions=…&issueKey=…|projectKey=…`: which of `keys` the
    /// connection's user has in `scope`. A key Jira does not answer counts as missing.
    /// An issue the user cannot see is Jira's 404 ([`crate::Error::NotFound`]).
    pub async fn my_permissions(
        &self,
        scope: &PermissionScope,
        keys: &[&str],
    ) -> Result<std::collections::BTreeMap<String, bool>> {
        let mut req = Req::get(&["mypermissions"]).q("permissions", keys.join(","));
        req = match scope {
            PermissionScope::Issue(i) if i.chars().all(|c| c.is_ascii_digit()) => {
                req.q("issueId", i)
            }
            PermissionScope::Issue(i) => req.q("issueKey", i),
            PermissionScope::Project(p) if p.chars().all(|c| c.is_ascii_digit()) => {
                req.q("projectId", p)
            }
            PermissionScope::Project(p) => req.q("projectKey", p),
        };
        let got: Permissions = self.call(req).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let have = got.permissions.get(*k).is_some_and(|p| p.have_permission);
                ((*k).to_owned(), have)
            })
            .collect())
    }

    /// Whether the connection's user may log work on an issue (`WORK_ON_ISSUES`).
    pub async fn can_log_work(&self, issue: &str) -> Result<bool> {
        let got = self
            .my_permissions(
                &PermissionScope::Issue(issue.to_owned()),
                &["WORK_ON_ISSUES"],
            )
            .await?;
        Ok(got.get("WORK_ON_ISSUES").copied().unwrap_or(false))
    }

    /// `GET /user/search`: active users whose name or email starts with `query` (first
    /// page of up to `max_results`). On Data Center the `username` parameter is used.
    pub async fn search_users(&self, query: &str, max_results: u32) -> Result<Vec<User>> {
        let key = match self.deployment().await? {
            Deployment::Cloud => "query",
            Deployment::DataCenter => "username",
        };
        self.call(
            Req::get(&["user", "search"])
                .q(key, query)
                .q("maxResults", max_results.clamp(1, 1000)),
        )
        .await
    }

    /// `GET /user/assignable/search`.
    pub async fn assignable_users(
        &self,
        scope: &AssignableScope,
        query: Option<&str>,
        max_results: u32,
    ) -> Result<Vec<User>> {
        let dc = self.deployment().await? == Deployment::DataCenter;
        let mut req =
            Req::get(&["user", "assignable", "search"]).q("maxResults", max_results.clamp(1, 1000));
        req = match scope {
            AssignableScope::Project(p) => req.q("project", p),
            AssignableScope::Issue(i) => req.q("issueKey", i),
        };
        if let Some(q) = query {
            req = req.q(if dc { "username" } else { "query" }, q);
        }
        self.call(req).await
    }

    /// Resolve an email address to a user (accountId on Cloud, name on DC), cached per
    /// client. `None` when no user, or more than one candidate, matches. A user whose
    /// email is hidden is accepted only when it is the single exact-address match.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let norm = email.trim().to_lowercase();
        if norm.is_empty() || !norm.contains('@') {
            return Ok(None);
        }
        if let Some(u) = self.inner.users_by_email.lock().get(&norm) {
            return Ok(Some(u.clone()));
        }
        let users = self.search_users(&norm, 50).await?;
        let exact: Vec<&User> = users
            .iter()
            .filter(|u| {
                u.email_address
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&norm))
            })
            .collect();
        let found = match exact.as_slice() {
            [one] => Some((*one).clone()),
            [] => {
                let hidden: Vec<&User> = users
                    .iter()
                    .filter(|u| u.email_address.as_deref().unwrap_or("").is_empty())
                    .collect();
                if users.len() == 1 && hidden.len() == 1 {
                    Some(hidden[0].clone())
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(u) = &found {
            let mut cache = self.inner.users_by_email.lock();
            if cache.len() >= self.inner.options.user_cache_capacity {
                cache.clear();
            }
            cache.insert(norm, u.clone());
        }
        Ok(found)
    }

    /// Resolve an email to the account id (Cloud) or username (DC).
    pub async fn account_id_for_email(&self, email: &str) -> Result<Option<String>> {
        Ok(self
            .user_by_email(email)
            .await?
            .and_then(|u| u.account_id.or(u.name)))
    }
}
