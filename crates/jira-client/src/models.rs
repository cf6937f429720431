//! Typed request and response bodies. Unknown fields are kept in `extra`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Fields Jira sent that this crate does not model.
pub type Extra = Map<String, Value>;

fn de_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    })
}

fn de_opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => Some(other.to_string()),
    })
}

/// `GET /serverInfo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// Site base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Version string.
    #[serde(default)]
    pub version: Option<String>,
    /// Version numbers.
    #[serde(default)]
    pub version_numbers: Vec<i64>,
    /// `Cloud`, `Server` or `DataCenter`.
    #[serde(default)]
    pub deployment_type: Option<String>,
    /// Build number.
    #[serde(default)]
    pub build_number: Option<i64>,
    /// Title.
    #[serde(default)]
    pub server_title: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A Jira user (Cloud: `accountId`; Data Center: `name`/`key`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Cloud account id.
    #[serde(default)]
    pub account_id: Option<String>,
    /// DC username.
    #[serde(default)]
    pub name: Option<String>,
    /// DC user key.
    #[serde(default)]
    pub key: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Email (may be hidden by privacy settings).
    #[serde(default)]
    pub email_address: Option<String>,
    /// Active account.
    #[serde(default)]
    pub active: Option<bool>,
    /// IANA time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `atlassian`, `app`, `customer`.
    #[serde(default)]
    pub account_type: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl User {
    /// The reference to put in `assignee`/`reporter` fields: `{"accountId"}` on Cloud,
    /// `{"name"}` on Data Center.
    pub fn reference(&self) -> Option<UserRef> {
        if let Some(a) = &self.account_id {
            return Some(UserRef::AccountId(a.clone()));
        }
        self.name.clone().map(UserRef::Name)
    }
}

/// A user reference in issue fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserRef {
    /// Cloud.
    AccountId(String),
    /// Data Center.
    Name(String),
}

impl UserRef {
    /// JSON for an issue field.
    pub fn to_json(&self) -> Value {
        match self {
            UserRef::AccountId(a) => serde_json::json!({ "accountId": a }),
            UserRef::Name(n) => serde_json::json!({ "name": n }),
        }
    }
}

/// A project.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Key.
    pub key: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `software`, `business`, `service_desk`.
    #[serde(default)]
    pub project_type_key: Option<String>,
    /// `classic` (company-managed) or `next-gen` (team-managed).
    #[serde(default)]
    pub style: Option<String>,
    /// True for team-managed projects.
    #[serde(default)]
    pub simplified: Option<bool>,
    /// Issue types (with `expand=issueTypes` or on project get).
    #[serde(default)]
    pub issue_types: Vec<IssueType>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An issue type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueType {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Sub-task type.
    #[serde(default)]
    pub subtask: bool,
    /// Epic 1, base 0, sub-task -1.
    #[serde(default)]
    pub hierarchy_level: Option<i32>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A field's schema.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FieldSchema {
    /// `string`, `number`, `array`, `option`, `user`, `date`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Item type of arrays.
    #[serde(default)]
    pub items: Option<String>,
    /// System field name.
    #[serde(default)]
    pub system: Option<String>,
    /// Custom field type key, e.g. `com.pyxis.greenhopper.jira:gh-epic-link`.
    #[serde(default)]
    pub custom: Option<String>,
    /// Custom field numeric id.
    #[serde(default)]
    pub custom_id: Option<i64>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /field` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// Id (`summary`, `customfield_10014`).
    pub id: String,
    /// Key.
    #[serde(default)]
    pub key: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Custom field.
    #[serde(default)]
    pub custom: bool,
    /// Schema.
    #[serde(default)]
    pub schema: Option<FieldSchema>,
    /// JQL clause names.
    #[serde(default)]
    pub clause_names: Vec<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Create-metadata of one field for one project and issue type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldMeta {
    /// Field id.
    pub field_id: String,
    /// Key.
    #[serde(default)]
    pub key: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Must be set on create.
    #[serde(default)]
    pub required: bool,
    /// Schema.
    #[serde(default)]
    pub schema: Option<FieldSchema>,
    /// Allowed values (options, priorities, …) as Jira sent them.
    #[serde(default)]
    pub allowed_values: Vec<Value>,
    /// Has a default value.
    #[serde(default)]
    pub has_default_value: Option<bool>,
    /// Operations (`set`, `add`, …).
    #[serde(default)]
    pub operations: Vec<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A priority.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Priority {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A status category (`new` / `indeterminate` / `done`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusCategory {
    /// Id (2 To Do, 4 In Progress, 3 Done).
    #[serde(default)]
    pub id: Option<i64>,
    /// `new`, `indeterminate`, `done`.
    #[serde(default)]
    pub key: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Colour.
    #[serde(default)]
    pub color_name: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Category.
    #[serde(default)]
    pub status_category: Option<StatusCategory>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Status {
    /// The category key (`new`, `indeterminate`, `done`), if known.
    pub fn category_key(&self) -> Option<&str> {
        self.status_category.as_ref().map(|c| c.key.as_str())
    }
}

/// Statuses of one issue type in a project (`GET /project/{key}/statuses`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueTypeStatuses {
    /// Issue type id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Issue type name.
    #[serde(default)]
    pub name: String,
    /// Sub-task type.
    #[serde(default)]
    pub subtask: bool,
    /// Statuses.
    #[serde(default)]
    pub statuses: Vec<Status>,
}

/// An issue. `fields` holds whatever fields were requested, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Key (absent when only ids were requested).
    #[serde(default)]
    pub key: String,
    /// REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
    /// Requested fields.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Requested entity properties.
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// Other fields (`names`, `transitions`, `changelog`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Issue {
    /// A field decoded into `T` (None when absent, null or of another shape).
    pub fn field<T: serde::de::DeserializeOwned>(&self, id: &str) -> Option<T> {
        self.fields
            .get(id)
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    /// `summary`.
    pub fn summary(&self) -> Option<String> {
        self.field("summary")
    }
    /// `status`.
    pub fn status(&self) -> Option<Status> {
        self.field("status")
    }
    /// `issuetype`.
    pub fn issue_type(&self) -> Option<IssueType> {
        self.field("issuetype")
    }
    /// `project`.
    pub fn project(&self) -> Option<Project> {
        self.field("project")
    }
}

/// An entity property `{key, value}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntityProperty {
    /// Key (≤ 255 chars).
    pub key: String,
    /// Any JSON (≤ 32,768 chars serialised).
    pub value: Value,
}

/// Input of create / edit: `fields`, `update` operations, entity properties.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IssueInput {
    /// Field id → value.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// Field id → operations.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub update: Map<String, Value>,
    /// Entity properties set at creation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<EntityProperty>,
}

impl IssueInput {
    /// Empty input.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set any field.
    pub fn field(mut self, id: impl Into<String>, value: Value) -> Self {
        self.fields.insert(id.into(), value);
        self
    }
    /// `project: {key}`.
    pub fn project_key(self, key: &str) -> Self {
        self.field("project", serde_json::json!({ "key": key }))
    }
    /// `issuetype: {name}`.
    pub fn issue_type_name(self, name: &str) -> Self {
        self.field("issuetype", serde_json::json!({ "name": name }))
    }
    /// `issuetype: {id}`.
    pub fn issue_type_id(self, id: &str) -> Self {
        self.field("issuetype", serde_json::json!({ "id": id }))
    }
    /// `summary`.
    pub fn summary(self, s: &str) -> Self {
        self.field("summary", Value::String(s.to_string()))
    }
    /// `description`: an ADF document (Cloud) or a wiki-markup string (Data Center).
    pub fn description(self, d: Value) -> Self {
        self.field("description", d)
    }
    /// `priority: {name}`.
    pub fn priority_name(self, name: &str) -> Self {
        self.field("priority", serde_json::json!({ "name": name }))
    }
    /// `assignee`.
    pub fn assignee(self, user: &UserRef) -> Self {
        self.field("assignee", user.to_json())
    }
    /// `labels`.
    pub fn labels<I: IntoIterator<Item = S>, S: Into<String>>(self, labels: I) -> Self {
        let v: Vec<Value> = labels
            .into_iter()
            .map(|l| Value::String(l.into()))
            .collect();
        self.field("labels", Value::Array(v))
    }
    /// `parent: {key}` (sub-tasks; Cloud epics).
    pub fn parent_key(self, key: &str) -> Self {
        self.field("parent", serde_json::json!({ "key": key }))
    }
    /// Add an entity property set at creation.
    pub fn property(mut self, key: impl Into<String>, value: Value) -> Self {
        self.properties.push(EntityProperty {
            key: key.into(),
            value,
        });
        self
    }
}

/// `POST /issue` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreatedIssue {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Key.
    pub key: String,
    /// REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
}

/// The result of one element of a bulk create, at its input index.
#[derive(Debug, Clone)]
pub enum BulkCreateItem {
    /// Created.
    Created(CreatedIssue),
    /// Jira refused this element.
    Rejected {
        /// Element status.
        status: u16,
        /// `errorMessages`.
        messages: Vec<String>,
        /// `errors`.
        field_errors: BTreeMap<String, String>,
    },
    /// The chunk request failed as a whole (shared error of the chunk). When the error
    /// is [`crate::Error::OutcomeUnknown`] the element may exist in Jira.
    Failed(std::sync::Arc<crate::Error>),
}

impl BulkCreateItem {
    /// The created issue, if any.
    pub fn created(&self) -> Option<&CreatedIssue> {
        match self {
            BulkCreateItem::Created(c) => Some(c),
            _ => None,
        }
    }
}

/// A comment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// ADF (Cloud) or wiki markup string (DC).
    #[serde(default)]
    pub body: Value,
    /// Author.
    #[serde(default)]
    pub author: Option<User>,
    /// Created timestamp as Jira wrote it.
    #[serde(default)]
    pub created: Option<String>,
    /// Updated timestamp as Jira wrote it.
    #[serde(default)]
    pub updated: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A worklog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Worklog {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Issue id.
    #[serde(default, deserialize_with = "de_opt_string_or_number")]
    pub issue_id: Option<String>,
    /// `started` as Jira wrote it (`yyyy-MM-dd'T'HH:mm:ss.SSS+hhmm`).
    #[serde(default)]
    pub started: Option<String>,
    /// Duration.
    #[serde(default)]
    pub time_spent_seconds: Option<i64>,
    /// Comment (ADF on Cloud, string on DC).
    #[serde(default)]
    pub comment: Option<Value>,
    /// Author.
    #[serde(default)]
    pub author: Option<User>,
    /// Updated timestamp.
    #[serde(default)]
    pub updated: Option<String>,
    /// Entity properties (with `expand=properties`).
    #[serde(default)]
    pub properties: Vec<EntityProperty>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Worklog {
    /// `started` parsed.
    pub fn started_at(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        self.started
            .as_deref()
            .and_then(crate::worklogs::parse_jira_datetime)
    }
}

/// Input of worklog add / update.
#[derive(Debug, Clone)]
pub struct WorklogInput {
    /// Start, written in its own offset.
    pub started: chrono::DateTime<chrono::FixedOffset>,
    /// Duration in seconds (Jira counts minutes; ≥ 60).
    pub time_spent_seconds: i64,
    /// Comment (ADF on Cloud, string on DC).
    pub comment: Option<Value>,
    /// Worklog entity properties.
    pub properties: Vec<EntityProperty>,
}

/// An entry of `/worklog/updated` or `/worklog/deleted`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorklogChange {
    /// Worklog id.
    pub worklog_id: i64,
    /// Change time (ms since epoch).
    pub updated_time: i64,
    /// Properties (with `expand=properties`).
    #[serde(default)]
    pub properties: Vec<EntityProperty>,
}

/// A transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// Id.
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Target status.
    pub to: Status,
    /// Has a screen.
    #[serde(default)]
    pub has_screen: Option<bool>,
    /// Available (Cloud).
    #[serde(default)]
    pub is_available: Option<bool>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Remote link object `{url, title, …}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RemoteLinkObject {
    /// Link target.
    pub url: String,
    /// Title.
    pub title: String,
    /// Summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Icon `{url16x16, title}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Value>,
    /// Status `{resolved, icon}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// A remote link to write (upserted by `global_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RemoteLink {
    /// Stable id of the link target (≤ 255 chars); the upsert key.
    pub global_id: String,
    /// `{type, name}` of the linking application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Value>,
    /// Relationship text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// The link object.
    pub object: RemoteLinkObject,
}

/// A stored remote link.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteLinkRecord {
    /// Id.
    pub id: i64,
    /// Global id.
    #[serde(default)]
    pub global_id: Option<String>,
    /// Object.
    pub object: RemoteLinkObject,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Result of a remote-link upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteLinkUpsert {
    /// Link id.
    pub id: i64,
    /// True when created (201), false when an existing link was updated (200).
    pub created: bool,
}

/// A dynamic webhook to register.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// Events (`jira:issue_created`, `comment_created`, …).
    pub events: Vec<String>,
    /// JQL filter (required; restricted subset).
    pub jql_filter: String,
    /// Only for `jira:issue_updated`: fields that must have changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_ids_filter: Vec<String>,
    /// Only for property events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issue_property_keys_filter: Vec<String>,
}

/// A registered dynamic webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Id.
    pub id: i64,
    /// Events.
    #[serde(default)]
    pub events: Vec<String>,
    /// JQL filter.
    #[serde(default)]
    pub jql_filter: Option<String>,
    /// Expiry (ms epoch or ISO string, as Jira sent it).
    #[serde(default)]
    pub expiration_date: Option<Value>,
    /// Delivery URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Webhook {
    /// Expiry parsed.
    pub fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.expiration_date.as_ref().and_then(parse_expiration)
    }
}

/// Parse an expiration that may be epoch milliseconds or an ISO-8601 string.
pub fn parse_expiration(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    match v {
        Value::Number(n) => n.as_i64().and_then(chrono::DateTime::from_timestamp_millis),
        Value::String(s) => {
            if let Ok(ms) = s.parse::<i64>() {
                return chrono::DateTime::from_timestamp_millis(ms);
            }
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .or_else(|| crate::worklogs::parse_jira_datetime(s))
                .map(|d| d.with_timezone(&chrono::Utc))
        }
        _ => None,
    }
}

/// Epic fields of a site.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpicFields {
    /// Epic Link custom field id (Data Center / legacy), `None` when the site uses `parent`.
    pub epic_link: Option<String>,
    /// Epic Name custom field id (required when creating epics on legacy schemes).
    pub epic_name: Option<String>,
}

/// Issue picker answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickerResult {
    /// Sections (history search, current search).
    #[serde(default)]
    pub sections: Vec<PickerSection>,
}

/// One picker section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickerSection {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Label.
    #[serde(default)]
    pub label: Option<String>,
    /// Issues.
    #[serde(default)]
    pub issues: Vec<PickerIssue>,
}

/// One picker suggestion.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickerIssue {
    /// Id.
    #[serde(default, deserialize_with = "de_opt_string_or_number")]
    pub id: Option<String>,
    /// Key.
    pub key: String,
    /// Summary without highlighting.
    #[serde(default)]
    pub summary_text: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Bulk fetch answer.
#[derive(Debug, Clone, Default)]
pub struct BulkFetch {
    /// Issues found (unknown or invisible ones are omitted).
    pub issues: Vec<Issue>,
    /// Per-issue errors Jira reported.
    pub issue_errors: Vec<Value>,
}

/// A JQL search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The JQL (bounded on Cloud).
    pub jql: String,
    /// Fields to return (Cloud default is only `id`; give what you need).
    pub fields: Vec<String>,
    /// Issue properties to return (≤ 5).
    pub properties: Vec<String>,
    /// Expansions.
    pub expand: Vec<String>,
    /// Page size (default 50).
    pub page_size: Option<u32>,
    /// Cloud read-after-write: issue ids to reconcile (≤ 50).
    pub reconcile_issues: Vec<i64>,
}

impl SearchRequest {
    /// A search for `jql` with the given fields.
    pub fn new(jql: impl Into<String>) -> Self {
        Self {
            jql: jql.into(),
            ..Self::default()
        }
    }
    /// Fields to return.
    pub fn fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, f: I) -> Self {
        self.fields = f.into_iter().map(Into::into).collect();
        self
    }
    /// Properties to return.
    pub fn properties<I: IntoIterator<Item = S>, S: Into<String>>(mut self, p: I) -> Self {
        self.properties = p.into_iter().map(Into::into).collect();
        self
    }
    /// Page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }
}

/// One page of search results with an opaque cursor for the next page.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// Issues.
    pub issues: Vec<Issue>,
    /// Cursor of the next page (`nextPageToken` on Cloud, the next `startAt` on DC).
    pub next_cursor: Option<String>,
}
