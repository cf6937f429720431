//! Checking a ticket against Jira's create metadata before Jira is called, and
//! turning it into Jira's create input.
//!
//! Every problem is reported per field (`errors`: field → message) so the API answers
//! 422 naming the field, and a bulk job fails that item alone. Custom field values
//! are coerced by their create-metadata type:
//!
//! | type | accepted input | sent to Jira |
//! | --- | --- | --- |
//! | `option` (select, radio) | option value (case-insensitive) or id | `{"id"}` |
//! | `array` of `option` (multi-select, checkboxes) | a list (or one) of values / ids | `[{"id"}]` |
//! | `option-with-child` (cascading) | `{"parent","child"?}`, `["parent","child"]` or `"parent / child"` | `{"id","child":{"id"}}` |
//! | `user` | e-mail (resolved, cached per job) or account id | `{"accountId"}` (DC: `{"name"}`) |
//! | `number` | number or numeric string | number |
//! | `date` | `YYYY-MM-DD` or an RFC 3339 date-time (its date) | `YYYY-MM-DD` |
//! | `datetime` | RFC 3339 | Jira's `yyyy-MM-dd'T'HH:mm:ss.SSSZ` |
//! | `string` / `array` of `string` | text / list of texts | as given |
//!
//! Fields are named by id (`customfield_10020`), key, or display name
//! (case-insensitive).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate};
use jira_client::adf::{markdown_to_adf, markdown_to_wiki, Document};
use jira_client::text_limits::{fit_issue_adf, fit_issue_wiki};
use jira_client::{EntityProperty, FieldMeta, IssueInput};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What a ticket asks for (the API's create body after config targets are applied).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketFields {
    /// Project key.
    #[serde(default)]
    pub project_key: String,
    /// Issue type name or id.
    #[serde(default)]
    pub issue_type: String,
    /// Summary (longer than 255 characters: see the overflow policy in `docs/tickets.md`).
    #[serde(default)]
    pub summary: String,
    /// Description in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Description as an ADF document (Cloud), instead of Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub description_adf: Option<Value>,
    /// Priority name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Assignee by e-mail (resolved to an account id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_email: Option<String>,
    /// Assignee by account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_account_id: Option<String>,
    /// Labels (no spaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Other fields by id, key or name; values coerced by their type.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Parent issue key (sub-task or epic child).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_key: Option<String>,
}

impl TicketFields {
    /// Fill what this ticket leaves empty from `defaults` (bulk defaults, config
    /// targets). Labels and fields are merged, the ticket's own winning.
    pub fn with_defaults(mut self, defaults: &TicketFields) -> Self {
        fn fill(a: &mut String, b: &str) {
            if a.is_empty() {
                *a = b.to_owned();
            }
        }
        fill(&mut self.project_key, &defaults.project_key);
        fill(&mut self.issue_type, &defaults.issue_type);
        fill(&mut self.summary, &defaults.summary);
        if self.description.is_none() && self.description_adf.is_none() {
            self.description = defaults.description.clone();
            self.description_adf = defaults.description_adf.clone();
        }
        if self.priority.is_none() {
            self.priority = defaults.priority.clone();
        }
        if self.assignee_email.is_none() && self.assignee_account_id.is_none() {
            self.assignee_email = defaults.assignee_email.clone();
            self.assignee_account_id = defaults.assignee_account_id.clone();
        }
        for l in &defaults.labels {
            if !self.labels.contains(l) {
                self.labels.push(l.clone());
            }
        }
        for (k, v) in &defaults.fields {
            self.fields.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if self.parent_key.is_none() {
            self.parent_key = defaults.parent_key.clone();
        }
        self
    }
}

/// Per-field problems: field → message.
pub type FieldErrors = BTreeMap<String, String>;

/// The create screen of one project and issue type.
#[derive(Debug, Clone)]
pub struct CreateScreen {
    /// Issue type id.
    pub issue_type_id: String,
    /// Issue type name.
    pub issue_type_name: String,
    /// Fields of the screen.
    pub fields: Vec<FieldMeta>,
}

impl CreateScreen {
    fn field(&self, name: &str) -> Option<&FieldMeta> {
        self.fields
            .iter()
            .find(|f| f.field_id == name || f.key.as_deref() == Some(name))
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(name))
            })
    }
}

/// Users resolved from e-mail addresses: `None` when no active user has the address.
pub type ResolvedUsers = HashMap<String, Option<String>>;

/// Everything the conversion needs besides the ticket.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The create screen.
    pub screen: &'a CreateScreen,
    /// E-mail → account id (Cloud) or username (DC).
    pub users: &'a ResolvedUsers,
    /// Data Center (wiki-markup descriptions, `{"name"}` user references).
    pub data_center: bool,
}

/// Entity property key under which the idempotency key is stored on the issue.
pub const IDEMPOTENCY_PROPERTY: &str = "jira-bridge.idempotency";

/// The result of [`to_issue_input`].
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Jira's create input.
    pub input: IssueInput,
    /// Whether the summary was shortened (overflow policy).
    pub summary_truncated: bool,
    /// Whether the description was shortened.
    pub description_truncated: bool,
}

/// E-mail addresses a ticket needs resolved (assignee and user-typed fields).
pub fn emails_needed(t: &TicketFields, screen: Option<&CreateScreen>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &t.assignee_email {
        out.push(e.trim().to_lowercase());
    }
    if let Some(screen) = screen {
        for (name, value) in &t.fields {
            let Some(meta) = screen.field(name) else {
                continue;
            };
            if schema_kind(meta) == "user"
                || (schema_kind(meta) == "array" && schema_items(meta) == "user")
            {
                for v in as_list(value) {
                    if let Some(s) = v.as_str() {
                        if s.contains('@') {
                            out.push(s.trim().to_lowercase());
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Check a ticket against the create screen and build Jira's input, with the
/// idempotency property. `Err` names every field at fault.
pub fn to_issue_input(
    t: &TicketFields,
    target: Target<'_>,
    idempotency: &Value,
) -> Result<Prepared, FieldErrors> {
    let mut errors = FieldErrors::new();
    let screen = target.screen;
    let mut fields = Map::new();
    fields.insert("project".into(), json!({ "key": t.project_key }));
    fields.insert("issuetype".into(), json!({ "id": screen.issue_type_id }));

    if t.summary.trim().is_empty() {
        errors.insert("summary".into(), "summary is required".into());
    }

    // Description: Markdown or ADF, then the length policy (with the summary).
    let doc: Option<Document> = match (&t.description, &t.description_adf) {
        (Some(_), Some(_)) => {
            errors.insert(
                "description".into(),
                "give either description (Markdown) or description_adf, not both".into(),
            );
            None
        }
        (Some(md), None) => Some(markdown_to_adf(md)),
        (None, Some(adf)) => {
            if adf.get("type").and_then(Value::as_str) != Some("doc") {
                errors.insert(
                    "description_adf".into(),
                    "must be an ADF document ({\"type\":\"doc\",\"version\":1,\"content\":[…]})"
                        .into(),
                );
                None
            } else {
                Some(Document::from_value_lossy(adf))
            }
        }
        (None, None) => None,
    };
    let (summary, description, summary_truncated, description_truncated) = if target.data_center {
        let f = fit_issue_wiki(&t.summary, doc.as_ref());
        (
            f.summary,
            f.description.map(Value::String),
            f.summary_truncated,
            f.description_truncated,
        )
    } else {
        let f = fit_issue_adf(&t.summary, doc.as_ref());
        (
            f.summary,
            f.description.map(|d| d.to_value()),
            f.summary_truncated,
            f.description_truncated,
        )
    };
    let _ = markdown_to_wiki; // wiki rendering goes through fit_issue_wiki
    fields.insert("summary".into(), Value::String(summary));
    if let Some(d) = description {
        if screen.field("description").is_none() {
            errors.insert(
                "description".into(),
                "description is not on the create screen of this issue type".into(),
            );
        } else {
            fields.insert("description".into(), d);
        }
    }

    // Priority by name, checked against the screen's allowed values.
    if let Some(p) = &t.priority {
        match screen.field("priority") {
            None => {
                errors.insert(
                    "priority".into(),
                    "priority is not on the create screen of this project and issue type".into(),
                );
            }
            Some(meta) if meta.allowed_values.is_empty() => {
                fields.insert("priority".into(), json!({ "name": p }));
            }
            Some(meta) => match find_allowed(&meta.allowed_values, p) {
                Some(id) => {
                    fields.insert("priority".into(), json!({ "id": id }));
                }
                None => {
                    errors.insert(
                        "priority".into(),
                        format!(
                            "unknown priority {p:?}; allowed: {}",
                            allowed_names(&meta.allowed_values).join(", ")
                        ),
                    );
                }
            },
        }
    }

    // Assignee.
    match (&t.assignee_email, &t.assignee_account_id) {
        (Some(_), Some(_)) => {
            errors.insert(
                "assignee_email".into(),
                "give assignee_email or assignee_account_id, not both".into(),
            );
        }
        (Some(email), None) => match target.users.get(&email.trim().to_lowercase()) {
            Some(Some(id)) => {
                fields.insert("assignee".into(), user_ref(id, target.data_center));
            }
            _ => {
                errors.insert(
                    "assignee_email".into(),
                    format!("no active Jira user with the e-mail address {email:?}"),
                );
            }
        },
        (None, Some(id)) => {
            fields.insert("assignee".into(), user_ref(id, target.data_center));
        }
        (None, None) => {}
    }

    if !t.labels.is_empty() {
        match t
            .labels
            .iter()
            .find(|l| l.is_empty() || l.chars().any(char::is_whitespace))
        {
            Some(bad) => {
                errors.insert(
                    "labels".into(),
                    format!("label {bad:?} is empty or contains spaces; Jira labels cannot"),
                );
            }
            None => {
                fields.insert("labels".into(), json!(t.labels));
            }
        }
    }

    if let Some(parent) = &t.parent_key {
        fields.insert("parent".into(), json!({ "key": parent }));
    }

    // Custom and other fields.
    for (name, value) in &t.fields {
        let err_key = format!("fields.{name}");
        let Some(meta) = screen.field(name) else {
            errors.insert(
                err_key,
                format!(
                    "field {name:?} is not on the create screen of {} in this project",
                    screen.issue_type_name
                ),
            );
            continue;
        };
        match coerce(meta, value, target) {
            Ok(v) => {
                fields.insert(meta.field_id.clone(), v);
            }
            Err(msg) => {
                errors.insert(err_key, format!("{} ({}): {msg}", meta.name, meta.field_id));
            }
        }
    }

    // Required fields of the screen that are still missing.
    for meta in &screen.fields {
        if !meta.required || meta.has_default_value == Some(true) {
            continue;
        }
        if fields.contains_key(&meta.field_id) {
            continue;
        }
        let key = match meta.field_id.as_str() {
            "reporter" => continue, // Jira fills the caller in.
            "priority" => "priority".to_owned(),
            "assignee" => "assignee_email".to_owned(),
            "description" => "description".to_owned(),
            "labels" => "labels".to_owned(),
            "parent" => "parent_key".to_owned(),
            id => format!("fields.{id}"),
        };
        errors.entry(key).or_insert_with(|| {
            format!(
                "{} ({}) is required for {}",
                meta.name, meta.field_id, screen.issue_type_name
            )
        });
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let input = IssueInput {
        fields,
        update: Map::new(),
        properties: vec![EntityProperty {
            key: IDEMPOTENCY_PROPERTY.to_owned(),
            value: idempotency.clone(),
        }],
    };
    Ok(Prepared {
        input,
        summary_truncated,
        description_truncated,
    })
}

fn user_ref(id: &str, dc: bool) -> Value {
    if dc {
        json!({ "name": id })
    } else {
        json!({ "accountId": id })
    }
}

fn schema_kind(meta: &FieldMeta) -> &str {
    meta.schema
        .as_ref()
        .and_then(|s| s.kind.as_deref())
        .unwrap_or("string")
}

fn schema_items(meta: &FieldMeta) -> &str {
    meta.schema
        .as_ref()
        .and_then(|s| s.items.as_deref())
        .unwrap_or("")
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("name"))
            .or_else(|| o.get("id"))
            .and_then(value_text),
        _ => None,
    }
}

/// The id of the allowed value named (by `value`, `name` or `id`) `wanted`.
fn find_allowed(allowed: &[Value], wanted: &str) -> Option<String> {
    let wanted = wanted.trim();
    allowed.iter().find_map(|a| {
        let id = a.get("id").and_then(value_text)?;
        let label = a
            .get("value")
            .or_else(|| a.get("name"))
            .and_then(Value::as_str);
        (id == wanted || label.is_some_and(|l| l.eq_ignore_ascii_case(wanted))).then_some(id)
    })
}

fn allowed_names(allowed: &[Value]) -> Vec<String> {
    allowed
        .iter()
        .filter_map(|a| {
            a.get("value")
                .or_else(|| a.get("name"))
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
        .collect()
}

fn coerce_option(meta: &FieldMeta, v: &Value) -> Result<Value, String> {
    let text = value_text(v).ok_or("expected an option value")?;
    if meta.allowed_values.is_empty() {
        return Ok(json!({ "value": text }));
    }
    find_allowed(&meta.allowed_values, &text)
        .map(|id| json!({ "id": id }))
        .ok_or_else(|| {
            format!(
                "{text:?} is not an allowed value; allowed: {}",
                allowed_names(&meta.allowed_values).join(", ")
            )
        })
}

fn coerce_user(v: &Value, target: Target<'_>) -> Result<Value, String> {
    let s = value_text(v).ok_or("expected an e-mail address or account id")?;
    if s.contains('@') {
        match target.users.get(&s.trim().to_lowercase()) {
            Some(Some(id)) => Ok(user_ref(id, target.data_center)),
            _ => Err(format!("no active Jira user with the e-mail address {s:?}")),
        }
    } else {
        Ok(user_ref(&s, target.data_center))
    }
}

fn coerce_cascading(meta: &FieldMeta, v: &Value) -> Result<Value, String> {
    let (parent, child): (String, Option<String>) = match v {
        Value::Object(o) => (
            o.get("parent")
                .or_else(|| o.get("value"))
                .and_then(value_text)
                .ok_or("expected {\"parent\": …, \"child\": …}")?,
            o.get("child").and_then(value_text),
        ),
        Value::Array(a) => (
            a.first()
                .and_then(value_text)
                .ok_or("expected [parent, child]")?,
            a.get(1).and_then(value_text),
        ),
        Value::String(s) => match s.split_once(" / ") {
            Some((p, c)) => (p.trim().to_owned(), Some(c.trim().to_owned())),
            None => (s.trim().to_owned(), None),
        },
        _ => return Err("expected {\"parent\": …, \"child\": …}".into()),
    };
    let Some(opt) = meta.allowed_values.iter().find(|a| {
        a.get("id").and_then(value_text).as_deref() == Some(parent.as_str())
            || a.get("value")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case(&parent))
    }) else {
        return Err(format!(
            "{parent:?} is not an allowed value; allowed: {}",
            allowed_names(&meta.allowed_values).join(", ")
        ));
    };
    let pid = opt.get("id").and_then(value_text).unwrap_or_default();
    let Some(child) = child else {
        return Ok(json!({ "id": pid }));
    };
    let children: Vec<Value> = opt
        .get("children")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match find_allowed(&children, &child) {
        Some(cid) => Ok(json!({ "id": pid, "child": { "id": cid } })),
        None => Err(format!(
            "{child:?} is not an allowed child of {parent:?}; allowed: {}",
            allowed_names(&children).join(", ")
        )),
    }
}

fn coerce(meta: &FieldMeta, v: &Value, target: Target<'_>) -> Result<Value, String> {
    match schema_kind(meta) {
        "option" => coerce_option(meta, v),
        "option-with-child" => coerce_cascading(meta, v),
        "user" => coerce_user(v, target),
        "number" => match v {
            Value::Number(_) => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("{s:?} is not a number")),
            _ => Err("expected a number".into()),
        },
        "date" => {
            let s = v.as_str().ok_or("expected a date (YYYY-MM-DD)")?.trim();
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Ok(Value::String(d.format("%Y-%m-%d").to_string()));
            }
            DateTime::parse_from_rfc3339(s)
                .map(|t| Value::String(t.date_naive().format("%Y-%m-%d").to_string()))
                .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
        }
        "datetime" => {
            let s = v.as_str().ok_or("expected an RFC 3339 date-time")?.trim();
            DateTime::parse_from_rfc3339(s)
                .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()))
                .map_err(|_| format!("{s:?} is not an RFC 3339 date-time"))
        }
        "array" => {
            let items = schema_items(meta);
            let list = as_list(v);
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                out.push(match items {
                    "option" => coerce_option(meta, item)?,
                    "user" => coerce_user(item, target)?,
                    "string" => Value::String(value_text(item).ok_or("expected texts")?),
                    _ => item.clone(),
                });
            }
            Ok(Value::Array(out))
        }
        "string" => match v {
            Value::String(_) => Ok(v.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            // Rich-text custom fields take ADF on Cloud.
            Value::Object(_) => Ok(v.clone()),
            _ => Err("expected a text".into()),
        },
        _ => Ok(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn meta(
        id: &str,
        name: &str,
        kind: &str,
        items: Option<&str>,
        required: bool,
        allowed: Value,
    ) -> FieldMeta {
        serde_json::from_value(json!({
            "fieldId": id, "key": id, "name": name, "required": required,
            "schema": {"type": kind, "items": items},
            "allowedValues": allowed, "hasDefaultValue": false, "operations": ["set"]
        }))
        .unwrap()
    }

    fn screen() -> CreateScreen {
        CreateScreen {
            issue_type_id: "10004".into(),
            issue_type_name: "Bug".into(),
            fields: vec![
                meta("summary", "Summary", "string", None, true, json!([])),
                meta(
                    "description",
                    "Description",
                    "string",
                    None,
                    false,
                    json!([]),
                ),
                meta(
                    "priority",
                    "Priority",
                    "priority",
                    None,
                    false,
                    json!([{"id": "1", "name": "Highest"}, {"id": "3", "name": "Medium"}]),
                ),
                meta("assignee", "Assignee", "user", None, false, json!([])),
                meta(
                    "labels",
                    "Labels",
                    "array",
                    Some("string"),
                    false,
                    json!([]),
                ),
                meta(
                    "customfield_10020",
                    "Severity",
                    "option",
                    None,
                    true,
                    json!([{"id": "100", "value": "Sev 1"}, {"id": "101", "value": "Sev 2"}]),
                ),
                meta(
                    "customfield_10021",
                    "Platforms",
                    "array",
                    Some("option"),
                    false,
                    json!([{"id": "200", "value": "Web"}, {"id": "201", "value": "iOS"}]),
                ),
                meta(
                    "customfield_10016",
                    "Story Points",
                    "number",
                    None,
                    false,
                    json!([]),
                ),
                meta(
                    "customfield_10023",
                    "Target date",
                    "date",
                    None,
                    false,
                    json!([]),
                ),
                meta(
                    "customfield_10024",
                    "Region",
                    "option-with-child",
                    None,
                    false,
                    json!([{"id": "300", "value": "EU", "children": [{"id": "301", "value": "Berlin"}]}]),
                ),
                meta(
                    "customfield_10022",
                    "Reviewer",
                    "user",
                    None,
                    false,
                    json!([]),
                ),
            ],
        }
    }

    #[test]
    fn coerces_every_type_and_names_bad_fields() {
        let s = screen();
        let mut users = ResolvedUsers::new();
        users.insert("bob@example.com".into(), Some("acc-bob".into()));
        users.insert("nobody@example.com".into(), None);
        let target = Target {
            screen: &s,
            users: &users,
            data_center: false,
        };
        let mut t = TicketFields {
            project_key: "OPS".into(),
            issue_type: "Bug".into(),
            summary: "x".repeat(300),
            priority: Some("medium".into()),
            assignee_email: Some("Bob@Example.com".into()),
            ..Default::default()
        };
        t.fields.insert("Severity".into(), json!("sev 2"));
        t.fields
            .insert("customfield_10021".into(), json!(["Web", "201"]));
        t.fields.insert("Story Points".into(), json!("5"));
        t.fields.insert(
            "customfield_10023".into(),
            json!("2026-12-01T10:00:00+13:00"),
        );
        t.fields.insert("Region".into(), json!("EU / Berlin"));
        t.fields.insert("Reviewer".into(), json!("bob@example.com"));
        let p = to_issue_input(&t, target, &json!({"key": "k"})).unwrap();
        let f = &p.input.fields;
        assert!(p.summary_truncated);
        assert_eq!(f["summary"].as_str().unwrap().encode_utf16().count(), 255);
        assert_eq!(f["priority"], json!({"id": "3"}));
        assert_eq!(f["assignee"], json!({"accountId": "acc-bob"}));
        assert_eq!(f["customfield_10020"], json!({"id": "101"}));
        assert_eq!(
            f["customfield_10021"],
            json!([{"id": "200"}, {"id": "201"}])
        );
        assert_eq!(f["customfield_10016"], json!(5.0));
        assert_eq!(f["customfield_10023"], json!("2026-12-01"));
        assert_eq!(
            f["customfield_10024"],
            json!({"id": "300", "child": {"id": "301"}})
        );
        assert_eq!(f["customfield_10022"], json!({"accountId": "acc-bob"}));
        assert_eq!(p.input.properties[0].key, IDEMPOTENCY_PROPERTY);

        let bad = TicketFields {
            project_key: "OPS".into(),
            issue_type: "Bug".into(),
            summary: "s".into(),
            priority: Some("Urgent".into()),
            assignee_email: Some("nobody@example.com".into()),
            fields: [
                ("Story Points".to_owned(), json!("many")),
                ("Region".to_owned(), json!("US")),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let errs = to_issue_input(&bad, target, &json!({})).unwrap_err();
        assert!(errs["priority"].contains("Urgent"), "{errs:?}");
        assert!(errs["assignee_email"].contains("nobody@example.com"));
        assert!(errs["fields.customfield_10020"].contains("required"));
        assert!(errs["fields.Story Points"].contains("not a number"));
        assert!(errs["fields.Region"].contains("not an allowed value"));
    }
}
