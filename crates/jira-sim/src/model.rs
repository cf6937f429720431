//! The simulator's in-memory Jira: users, projects, metadata, issues and their children.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which Jira product the simulator imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Jira Cloud: REST v3 (ADF) and v2, basic auth `email:api_token`, `/search/jql`.
    #[default]
    Cloud,
    /// Jira Data Center: REST v2 only, Bearer PAT or basic `username:password`, `/search`.
    #[serde(rename = "dc")]
    DataCenter,
}

impl Flavor {
    pub fn is_cloud(self) -> bool {
        self == Flavor::Cloud
    }
}

/// One Jira site (Cloud) or instance (Data Center).
#[derive(Debug, Clone)]
pub struct Site {
    pub slug: String,
    pub name: String,
    pub cloud_id: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub account_id: String,
    /// Data Center username (also used as the user key).
    pub name: String,
    pub key: String,
    pub display_name: String,
    pub email: String,
    /// When false, `emailAddress` is omitted and user search matches only the full address.
    pub email_visible: bool,
    pub tz: Tz,
    pub locale: String,
    pub api_token: String,
    pub pat: String,
    pub password: String,
    pub admin: bool,
    /// *Work on issues* permission (log work).
    pub can_log_work: bool,
    pub active: bool,
    pub account_type: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Team-managed ("next-gen", simplified).
    TeamManaged,
    /// Company-managed ("classic").
    CompanyManaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowKind {
    /// Every status reachable from every other (global transitions), as team-managed projects do.
    Open,
    /// To Do → In Progress → In Review → Done with back edges only.
    Strict,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub site: usize,
    pub style: Style,
    pub workflow: WorkflowKind,
    pub issue_types: Vec<String>,
    pub lead: String,
    pub next_num: u64,
    /// Users who cannot browse this project.
    pub hidden_from: Vec<String>,
    /// Custom fields on the create/edit screen, per issue type id: (field id, required).
    pub screens: BTreeMap<String, Vec<(String, bool)>>,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct IssueType {
    pub id: String,
    pub name: String,
    pub description: String,
    pub subtask: bool,
    pub level: i32,
    pub avatar_id: u64,
    /// Team-managed types are scoped to one project.
    pub scope_project: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub id: String,
    pub name: String,
    pub description: String,
    /// 2 = new (To Do), 4 = indeterminate (In Progress), 3 = done.
    pub category: u64,
}

#[derive(Debug, Clone)]
pub struct Priority {
    pub id: String,
    pub name: String,
    pub color: String,
    pub icon: String,
    pub rank: usize,
}

#[derive(Debug, Clone)]
pub struct CfOption {
    pub id: String,
    pub value: String,
    pub children: Vec<CfOption>,
}

#[derive(Debug, Clone)]
pub enum CfKind {
    Number,
    Text,
    Select(Vec<CfOption>),
    MultiSelect(Vec<CfOption>),
    User,
    Date,
    Cascading(Vec<CfOption>),
    /// Data Center Epic Link (`com.pyxis.greenhopper.jira:gh-epic-link`).
    EpicLink,
    /// Data Center Epic Name (`com.pyxis.greenhopper.jira:gh-epic-label`).
    EpicName,
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub id: String,
    pub name: String,
    pub kind: CfKind,
}

impl FieldDef {
    pub fn numeric_id(&self) -> u64 {
        self.id
            .trim_start_matches("customfield_")
            .parse()
            .unwrap_or(0)
    }

    pub fn custom_type(&self) -> &'static str {
        match self.kind {
            CfKind::Number => "com.atlassian.jira.plugin.system.customfieldtypes:float",
            CfKind::Text => "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            CfKind::Select(_) => "com.atlassian.jira.plugin.system.customfieldtypes:select",
            CfKind::MultiSelect(_) => {
                "com.atlassian.jira.plugin.system.customfieldtypes:multiselect"
            }
            CfKind::User => "com.atlassian.jira.plugin.system.customfieldtypes:userpicker",
            CfKind::Date => "com.atlassian.jira.plugin.system.customfieldtypes:datepicker",
            CfKind::Cascading(_) => {
                "com.atlassian.jira.plugin.system.customfieldtypes:cascadingselect"
            }
            CfKind::EpicLink => "com.pyxis.greenhopper.jira:gh-epic-link",
            CfKind::EpicName => "com.pyxis.greenhopper.jira:gh-epic-label",
        }
    }

    pub fn schema_type(&self) -> (&'static str, Option<&'static str>) {
        match self.kind {
            CfKind::Number => ("number", None),
            CfKind::Text | CfKind::EpicName => ("string", None),
            CfKind::Select(_) => ("option", None),
            CfKind::MultiSelect(_) => ("array", Some("option")),
            CfKind::User => ("user", None),
            CfKind::Date => ("date", None),
            CfKind::Cascading(_) => ("option-with-child", None),
            CfKind::EpicLink => ("any", None),
        }
    }

    pub fn options(&self) -> &[CfOption] {
        match &self.kind {
            CfKind::Select(o) | CfKind::MultiSelect(o) | CfKind::Cascading(o) => o,
            _ => &[],
        }
    }
}

/// Stored value of a custom field.
#[derive(Debug, Clone, PartialEq)]
pub enum CfValue {
    Number(f64),
    Text(String),
    Option(String),
    Options(Vec<String>),
    User(String),
    Date(NaiveDate),
    Cascade(String, Option<String>),
    /// Epic Link: the epic's issue id.
    Issue(u64),
}

/// Rich text as it was written: ADF (Cloud v3) or a plain / wiki-markup string (v2, DC).
#[derive(Debug, Clone, PartialEq)]
pub enum RichText {
    Adf(Value),
    Plain(String),
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub author: String,
    pub update_author: String,
    pub body: RichText,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Worklog {
    pub id: u64,
    pub issue_id: u64,
    pub author: String,
    pub update_author: String,
    pub comment: Option<RichText>,
    pub started: DateTime<chrono::FixedOffset>,
    pub time_spent_seconds: i64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub properties: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct RemoteLink {
    pub id: u64,
    pub global_id: Option<String>,
    pub application: Option<Value>,
    pub relationship: Option<String>,
    pub object: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeItem {
    pub field: String,
    pub fieldtype: String,
    #[serde(rename = "fieldId")]
    pub field_id: String,
    pub from: Option<String>,
    #[serde(rename = "fromString")]
    pub from_string: Option<String>,
    pub to: Option<String>,
    #[serde(rename = "toString")]
    pub to_string: Option<String>,
}

#[derive(Debug, Clone)]
pub struct History {
    pub id: u64,
    pub author: String,
    pub created: DateTime<Utc>,
    pub items: Vec<ChangeItem>,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub id: u64,
    pub key: String,
    pub project_id: u64,
    pub issuetype: String,
    pub summary: String,
    pub description: Option<RichText>,
    pub status: String,
    pub priority: String,
    pub assignee: Option<String>,
    pub reporter: Option<String>,
    pub creator: String,
    pub labels: Vec<String>,
    pub parent: Option<u64>,
    pub duedate: Option<NaiveDate>,
    pub custom: BTreeMap<String, CfValue>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub status_changed: DateTime<Utc>,
    pub resolution_date: Option<DateTime<Utc>>,
    pub properties: BTreeMap<String, Value>,
    pub comments: Vec<Comment>,
    pub remote_links: Vec<RemoteLink>,
    pub changelog: Vec<History>,
    /// Before this instant the issue is missing from JQL search results (index lag).
    pub indexed_at: DateTime<Utc>,
}

/// The whole simulated Jira.
#[derive(Debug, Clone)]
pub struct World {
    pub flavor: Flavor,
    pub scenario: String,
    pub sites: Vec<Site>,
    pub users: Vec<User>,
    pub issue_types: Vec<IssueType>,
    pub statuses: Vec<Status>,
    pub priorities: Vec<Priority>,
    pub fields: Vec<FieldDef>,
    pub projects: Vec<Project>,
    pub issues: BTreeMap<u64, Issue>,
    pub worklogs: BTreeMap<u64, Worklog>,
    /// (worklog id, deletion time in ms)
    pub deleted_worklogs: Vec<(u64, i64)>,
    pub next_issue_id: u64,
    pub next_worklog_id: u64,
    pub next_comment_id: u64,
    pub next_history_id: u64,
    pub next_link_id: u64,
    /// Epoch-ms timestamps of the last change of each worklog (for `/worklog/updated`).
    pub worklog_updated: BTreeMap<u64, i64>,
}

impl World {
    pub fn user(&self, account_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.account_id == account_id)
    }

    pub fn project(&self, id: u64) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    pub fn project_by_key_or_id(&self, site: usize, s: &str) -> Option<&Project> {
        self.projects
            .iter()
            .filter(|p| p.site == site)
            .find(|p| p.key.eq_ignore_ascii_case(s) || p.id.to_string() == s)
    }

    pub fn can_browse(&self, account_id: &str, project_id: u64) -> bool {
        self.project(project_id)
            .is_some_and(|p| !p.hidden_from.iter().any(|h| h == account_id))
    }

    pub fn issue_type(&self, id: &str) -> Option<&IssueType> {
        self.issue_types.iter().find(|t| t.id == id)
    }

    pub fn status(&self, id: &str) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }

    pub fn priority(&self, id: &str) -> Option<&Priority> {
        self.priorities.iter().find(|p| p.id == id)
    }

    pub fn field(&self, id: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.id == id)
    }

    pub fn site_of_issue(&self, issue: &Issue) -> usize {
        self.project(issue.project_id).map(|p| p.site).unwrap_or(0)
    }

    /// Finds an issue of `site` by id or key (case-insensitive), regardless of permissions.
    pub fn find_issue(&self, site: usize, id_or_key: &str) -> Option<u64> {
        let found = if let Ok(id) = id_or_key.parse::<u64>() {
            self.issues.get(&id)
        } else {
            let upper = id_or_key.to_ascii_uppercase();
            self.issues.values().find(|i| i.key == upper)
        }?;
        (self.site_of_issue(found) == site).then_some(found.id)
    }

    /// Epic Link custom field (Data Center).
    pub fn epic_link_field(&self) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| matches!(f.kind, CfKind::EpicLink))
    }
}
