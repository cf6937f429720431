//! Validation of `fields` on create and edit, with Jira's messages.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::adf;
use crate::model::*;
use crate::rest::Call;

pub const SUMMARY_MAX: usize = 255;
pub const TEXT_MAX: usize = 32_767;

/// Field errors collected while validating.
#[derive(Debug, Default)]
pub struct Errors {
    pub messages: Vec<String>,
    pub fields: Map<String, Value>,
}

impl Errors {
    pub fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.fields
            .entry(field.to_string())
            .or_insert_with(|| Value::String(msg.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.fields.is_empty()
    }
    pub fn into_response(self, status: u16) -> axum::response::Response {
        crate::util::jerr_map(status, self.messages, self.fields)
    }
    pub fn to_json(&self) -> Value {
        serde_json::json!({"errorMessages": self.messages, "errors": self.fields})
    }
}

/// Values a create or edit will write. `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub summary: Option<String>,
    pub description: Option<Option<RichText>>,
    pub priority: Option<String>,
    pub assignee: Option<Option<String>>,
    pub reporter: Option<Option<String>>,
    pub labels: Option<Vec<String>>,
    pub duedate: Option<Option<NaiveDate>>,
    pub parent: Option<Option<u64>>,
    pub custom: BTreeMap<String, Option<CfValue>>,
}

const SYSTEM_SETTABLE: &[&str] = &[
    "summary",
    "description",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "duedate",
    "parent",
    "project",
    "issuetype",
];

pub fn not_on_screen(id: &str) -> String {
    format!("Field '{id}' cannot be set. It is not on the appropriate screen, or unknown.")
}

fn id_or(v: &Value, keys: &[&str]) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(s.to_string());
    }
    for k in keys {
        match v.get(*k) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Number(n)) => return Some(n.to_string()),
            _ => {}
        }
    }
    None
}

/// Resolves a user reference (`{"accountId"}` on Cloud, `{"name"}`/`{"key"}` on DC).
pub fn user_ref(w: &World, v: &Value) -> Result<Option<String>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let id = match w.flavor {
        Flavor::Cloud => id_or(v, &["accountId", "id"]),
        Flavor::DataCenter => id_or(v, &["name", "key"]),
    };
    let Some(id) = id else {
        return Err("Specified user does not exist or you do not have required permissions".into());
    };
    if id == "-1" {
        return Ok(None);
    }
    w.users
        .iter()
        .find(|u| {
            u.account_id == id || (w.flavor == Flavor::DataCenter && (u.name == id || u.key == id))
        })
        .filter(|u| u.active)
        .map(|u| Some(u.account_id.clone()))
        .ok_or_else(|| match w.flavor {
            Flavor::Cloud => {
                "Specified user does not exist or you do not have required permissions".to_string()
            }
            Flavor::DataCenter => format!("User '{id}' does not exist."),
        })
}

pub fn rich_in(call: &Call, field: &str, v: &Value, errs: &mut Errors) -> Option<Option<RichText>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) if !call.v3 => {
            if s.chars().count() > TEXT_MAX {
                errs.add(field, "The entered text is too long. It exceeds the allowed limit of 32,767 characters.");
                return None;
            }
            Some((!s.is_empty()).then(|| RichText::Plain(s.clone())))
        }
        other if call.v3 => {
            if let Err(_why) = adf::validate(other) {
                errs.add(
                    field,
                    "Operation value must be an Atlassian Document (see the Atlassian Document Format)",
                );
                return None;
            }
            if other.to_string().chars().count() > TEXT_MAX {
                errs.add(field, "The entered text is too long. It exceeds the allowed limit of 32,767 characters.");
                return None;
            }
            Some(Some(RichText::Adf(other.clone())))
        }
        _ => {
            errs.add(field, "Operation value must be a string");
            None
        }
    }
}

fn option_ref<'a>(opts: &'a [CfOption], v: &Value) -> Result<&'a CfOption, String> {
    if let Some(id) = v.get("id").and_then(|x| {
        x.as_str()
            .map(str::to_string)
            .or_else(|| x.as_u64().map(|n| n.to_string()))
    }) {
        return opts
            .iter()
            .find(|o| o.id == id)
            .ok_or(format!("Option id '{id}' is not valid"));
    }
    if let Some(val) = v.get("value").and_then(Value::as_str) {
        return opts
            .iter()
            .find(|o| o.value == val)
            .ok_or(format!("Option value '{val}' is not valid"));
    }
    Err("Specify a valid 'id' or 'name' for the option".into())
}

fn custom_value(
    w: &World,
    site: usize,
    f: &FieldDef,
    v: &Value,
) -> Result<Option<CfValue>, String> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(match &f.kind {
        CfKind::Number => CfValue::Number(v.as_f64().ok_or("Operation value must be a number")?),
        CfKind::Text => {
            let s = v.as_str().ok_or("Operation value must be a string")?;
            if s.chars().count() > 255 {
                return Err("Please enter text no longer than 255 characters.".into());
            }
            CfValue::Text(s.to_string())
        }
        CfKind::EpicName => {
            let s = v.as_str().ok_or("Operation value must be a string")?;
            if s.trim().is_empty() {
                return Err("Epic Name is required.".into());
            }
            CfValue::Text(s.to_string())
        }
        CfKind::Select(opts) => CfValue::Option(option_ref(opts, v)?.id.clone()),
        CfKind::MultiSelect(opts) => {
            let arr = v.as_array().ok_or("data was not an array")?;
            let mut ids = vec![];
            for x in arr {
                ids.push(option_ref(opts, x)?.id.clone());
            }
            if ids.is_empty() {
                return Ok(None);
            }
            CfValue::Options(ids)
        }
        CfKind::Cascading(opts) => {
            let parent = option_ref(opts, v)?;
            let child = match v.get("child") {
                None | Some(Value::Null) => None,
                Some(c) => Some(
                    option_ref(&parent.children, c)
                        .map_err(|_| {
                            format!(
                                "Option '{}' is not a valid child of '{}'",
                                id_or(c, &["id", "value"]).unwrap_or_default(),
                                parent.value
                            )
                        })?
                        .id
                        .clone(),
                ),
            };
            CfValue::Cascade(parent.id.clone(), child)
        }
        CfKind::User => match user_ref(w, v)? {
            Some(a) => CfValue::User(a),
            None => return Ok(None),
        },
        CfKind::Date => {
            let s = v.as_str().ok_or("Operation value must be a string")?;
            CfValue::Date(
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| format!("Error parsing date string: {s}"))?,
            )
        }
        CfKind::EpicLink => {
            let s = v.as_str().ok_or("Operation value must be a string")?;
            let id = w
                .find_issue(site, s)
                .ok_or(format!("Could not find issue by id or key '{s}'."))?;
            let is_epic = w
                .issues
                .get(&id)
                .and_then(|i| w.issue_type(&i.issuetype))
                .is_some_and(|t| t.level == 1);
            if !is_epic {
                return Err(format!("Issue '{s}' is not an epic."));
            }
            CfValue::Issue(id)
        }
    }))
}

/// Checks parent rules for an issue of `child_type` in `project`.
fn check_parent(
    w: &World,
    call: &Call,
    project: &Project,
    child_type: &IssueType,
    v: &Value,
) -> Result<Option<u64>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let key = id_or(v, &["key", "id"]).ok_or("Could not find issue by id or key.")?;
    let pid = w
        .find_issue(call.site, &key)
        .filter(|id| super::visible(w, &call.user, *id))
        .ok_or("Could not find issue by id or key.")?;
    let parent = w
        .issues
        .get(&pid)
        .ok_or("Could not find issue by id or key.")?;
    let ptype = w
        .issue_type(&parent.issuetype)
        .ok_or("Could not find issue by id or key.")?;
    let hierarchy = "Given parent issue does not belong to appropriate hierarchy.".to_string();
    if ptype.level != child_type.level + 1 {
        return Err(hierarchy);
    }
    let same_project = parent.project_id == project.id;
    if (child_type.subtask || project.style == Style::TeamManaged) && !same_project {
        return Err(hierarchy);
    }
    Ok(Some(pid))
}

/// Validates `fields` (already merged with simple `update` operations) against the screen
/// of `project` / `itype`. `creating` adds the required-field checks.
pub fn validate(
    w: &World,
    call: &Call,
    project: &Project,
    itype: &IssueType,
    fields: &Map<String, Value>,
    creating: bool,
    errs: &mut Errors,
) -> Changes {
    let screen: Vec<(String, bool)> = project.screens.get(&itype.id).cloned().unwrap_or_default();
    let parent_allowed = itype.subtask || (call.flavor == Flavor::Cloud && itype.level == 0);
    let mut ch = Changes::default();
    for (k, v) in fields {
        let on_screen = (SYSTEM_SETTABLE.contains(&k.as_str())
            && (k != "parent" || parent_allowed))
            || screen.iter().any(|(f, _)| f == k);
        if !on_screen || (!creating && (k == "project")) {
            errs.add(k, not_on_screen(k));
            continue;
        }
        match k.as_str() {
            "project" | "issuetype" => {}
            "summary" => match v.as_str() {
                None if v.is_null() => {
                    errs.add("summary", "You must specify a summary of the issue.")
                }
                None => errs.add("summary", "Operation value must be a string"),
                Some(s) if s.trim().is_empty() => {
                    errs.add("summary", "You must specify a summary of the issue.")
                }
                Some(s) if s.chars().count() > SUMMARY_MAX => {
                    errs.add("summary", "Summary must be less than 255 characters.")
                }
                Some(s) if s.contains('\n') || s.contains('\r') => errs.add(
                    "summary",
                    "The summary is invalid because it contains newline characters.",
                ),
                Some(s) => ch.summary = Some(s.to_string()),
            },
            "description" => ch.description = rich_in(call, "description", v, errs),
            "priority" => {
                let id = id_or(v, &["id", "name"]);
                match id.and_then(|x| {
                    w.priorities
                        .iter()
                        .find(|p| p.id == x || p.name.eq_ignore_ascii_case(&x))
                }) {
                    Some(p) => ch.priority = Some(p.id.clone()),
                    None => errs.add("priority", "The priority selected is invalid."),
                }
            }
            "assignee" | "reporter" => match user_ref(w, v) {
                Ok(u) => {
                    if let Some(a) = &u {
                        if k == "assignee" && !w.can_browse(a, project.id) {
                            errs.add("assignee", format!("User '{a}' cannot be assigned issues."));
                            continue;
                        }
                    }
                    if k == "assignee" {
                        ch.assignee = Some(u);
                    } else if u.is_none() {
                        errs.add("reporter", "Reporter is required.");
                    } else {
                        ch.reporter = Some(u);
                    }
                }
                Err(m) => errs.add(k, m),
            },
            "labels" => match v.as_array() {
                None if v.is_null() => ch.labels = Some(vec![]),
                None => errs.add("labels", "data was not an array"),
                Some(arr) => {
                    let mut labels = vec![];
                    for l in arr {
                        match l.as_str() {
                            Some(s) if s.contains(char::is_whitespace) => {
                                errs.add(
                                    "labels",
                                    format!("The label '{s}' contains spaces which is invalid."),
                                );
                            }
                            Some(s) if s.chars().count() > 255 => {
                                errs.add("labels", "The label must not exceed 255 characters.")
                            }
                            Some("") => {}
                            Some(s) => {
                                if !labels.iter().any(|x: &String| x == s) {
                                    labels.push(s.to_string())
                                }
                            }
                            None => errs.add("labels", "Operation value must be a string"),
                        }
                    }
                    ch.labels = Some(labels);
                }
            },
            "duedate" => match v {
                Value::Null => ch.duedate = Some(None),
                Value::String(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    Ok(d) => ch.duedate = Some(Some(d)),
                    Err(_) => errs.add("duedate", format!("Error parsing date string: {s}")),
                },
                _ => errs.add("duedate", "Operation value must be a string"),
            },
            "parent" => match check_parent(w, call, project, itype, v) {
                Ok(p) => ch.parent = Some(p),
                Err(m) => errs.add("parent", m),
            },
            cf => {
                let Some(f) = w.field(cf) else {
                    errs.add(cf, not_on_screen(cf));
                    continue;
                };
                match custom_value(w, call.site, f, v) {
                    Ok(val) => {
                        ch.custom.insert(cf.to_string(), val);
                    }
                    Err(m) => errs.add(cf, m),
                }
            }
        }
    }
    if creating {
        if !fields.contains_key("summary") {
            errs.add("summary", "You must specify a summary of the issue.");
        }
        if itype.subtask && fields.get("parent").is_none_or(|p| p.is_null()) {
            errs.add(
                "parent",
                "Issue type is a sub-task but parent issue key or id not specified.",
            );
        }
    }
    for (fid, required) in &screen {
        if !required {
            continue;
        }
        let missing = match ch.custom.get(fid) {
            Some(Some(_)) => false,
            Some(None) => true,
            None => creating,
        };
        if missing && !errs.fields.contains_key(fid) {
            let name = w
                .field(fid)
                .map(|f| f.name.clone())
                .unwrap_or_else(|| fid.clone());
            errs.add(fid, format!("{name} is required."));
        }
    }
    ch
}

/// Folds simple `update` operations (`set`, and `add`/`remove` on labels) into `fields`.
pub fn merge_update(
    fields: &mut Map<String, Value>,
    update: Option<&Value>,
    current_labels: &[String],
    errs: &mut Errors,
) {
    let Some(update) = update.and_then(Value::as_object) else {
        return;
    };
    for (k, ops) in update {
        if fields.contains_key(k) {
            errs.messages.push(format!(
                "Field '{k}' cannot be set in both the 'fields' and 'update' sections."
            ));
            continue;
        }
        if k == "comment" {
            continue;
        }
        let Some(ops) = ops.as_array() else {
            errs.add(k, "Operation value must be an array of operations");
            continue;
        };
        if k == "labels" {
            let mut labels: Vec<Value> = current_labels
                .iter()
                .map(|l| Value::String(l.clone()))
                .collect();
            for op in ops {
                if let Some(v) = op.get("add") {
                    if !labels.contains(v) {
                        labels.push(v.clone());
                    }
                } else if let Some(v) = op.get("remove") {
                    labels.retain(|l| l != v);
                } else if let Some(v) = op.get("set") {
                    labels = v.as_array().cloned().unwrap_or_default();
                }
            }
            fields.insert(k.clone(), Value::Array(labels));
            continue;
        }
        for op in ops {
            if let Some(v) = op.get("set") {
                fields.insert(k.clone(), v.clone());
            } else {
                errs.add(k, format!("Field '{k}' does not support this operation."));
            }
        }
    }
}
