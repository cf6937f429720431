//! JSON representations of Jira entities, as Cloud v3 / v2 and Data Center v2 send them.

use serde_json::{json, Map, Value};

use crate::adf;
use crate::model::*;
use crate::rest::Call;
use crate::util::{avatar_urls, format_duration, jtime, jtime_fixed};

pub fn user_json(w: &World, call: &Call, account_id: &str) -> Value {
    let Some(u) = w.user(account_id) else {
        return Value::Null;
    };
    user_full(call, u)
}

pub fn user_full(call: &Call, u: &User) -> Value {
    match call.flavor {
        Flavor::Cloud => {
            let mut v = json!({
                "self": format!("{}/user?accountId={}", call.api, u.account_id),
                "accountId": u.account_id,
                "accountType": u.account_type,
                "avatarUrls": avatar_urls(&call.base, "accountId", &u.account_id),
                "displayName": u.display_name,
                "active": u.active,
                "timeZone": u.tz.name(),
            });
            if u.email_visible || u.account_id == call.user {
                v["emailAddress"] = json!(u.email);
            }
            v
        }
        Flavor::DataCenter => json!({
            "self": format!("{}/user?username={}", call.api, u.name),
            "key": u.key,
            "name": u.name,
            "emailAddress": u.email,
            "avatarUrls": avatar_urls(&call.base, "ownerId", &u.name),
            "displayName": u.display_name,
            "active": u.active,
            "timeZone": u.tz.name(),
        }),
    }
}

pub fn opt_user(w: &World, call: &Call, id: Option<&String>) -> Value {
    id.map(|a| user_json(w, call, a)).unwrap_or(Value::Null)
}

pub fn project_avatars(call: &Call, p: &Project) -> Value {
    json!({
        "48x48": format!("{}/secure/projectavatar?pid={}&avatarId=10400", call.base, p.id),
        "24x24": format!("{}/secure/projectavatar?size=small&pid={}&avatarId=10400", call.base, p.id),
        "16x16": format!("{}/secure/projectavatar?size=xsmall&pid={}&avatarId=10400", call.base, p.id),
        "32x32": format!("{}/secure/projectavatar?size=medium&pid={}&avatarId=10400", call.base, p.id),
    })
}

pub fn project_ref(call: &Call, p: &Project) -> Value {
    let mut v = json!({
        "self": format!("{}/project/{}", call.api, p.id),
        "id": p.id.to_string(),
        "key": p.key,
        "name": p.name,
        "projectTypeKey": "software",
        "avatarUrls": project_avatars(call, p),
    });
    if call.flavor == Flavor::Cloud {
        v["simplified"] = json!(p.style == Style::TeamManaged);
    }
    v
}

pub fn project_json(w: &World, call: &Call, p: &Project, expand: &[String]) -> Value {
    let mut v = project_ref(call, p);
    v["description"] = json!(p.description);
    v["lead"] = user_json(w, call, &p.lead);
    v["assigneeType"] = json!("UNASSIGNED");
    v["isPrivate"] = json!(false);
    if call.flavor == Flavor::Cloud {
        v["style"] = json!(match p.style {
            Style::TeamManaged => "next-gen",
            Style::CompanyManaged => "classic",
        });
        v["expand"] = json!("description,lead,issueTypes,url,projectKeys,permissions,insight");
        if p.style == Style::TeamManaged {
            v["uuid"] = json!(format!("00000000-0000-4000-8000-{:012}", p.id));
        }
    } else {
        v["expand"] = json!("description,lead,url,projectKeys");
    }
    let always_types = call.flavor == Flavor::DataCenter || expand.is_empty();
    if always_types || expand.iter().any(|e| e == "issueTypes") {
        v["issueTypes"] = Value::Array(
            p.issue_types
                .iter()
                .filter_map(|id| w.issue_type(id))
                .map(|t| issuetype_json(call, t))
                .collect(),
        );
    }
    if expand.iter().any(|e| e == "projectKeys") {
        v["projectKeys"] = json!([p.key]);
    }
    v
}

pub fn issuetype_json(call: &Call, t: &IssueType) -> Value {
    let mut v = json!({
        "self": format!("{}/issuetype/{}", call.api, t.id),
        "id": t.id,
        "description": t.description,
        "iconUrl": format!("{}/secure/viewavatar?size=medium&avatarId={}&avatarType=issuetype", call.base, t.avatar_id),
        "name": t.name,
        "subtask": t.subtask,
        "avatarId": t.avatar_id,
    });
    if call.flavor == Flavor::Cloud {
        v["hierarchyLevel"] = json!(t.level);
        if let Some(pid) = t.scope_project {
            v["entityId"] = json!(format!(
                "00000000-0000-4000-9000-{:012}",
                t.id.parse::<u64>().unwrap_or(0)
            ));
            v["scope"] = json!({"type": "PROJECT", "project": {"id": pid.to_string()}});
        }
    }
    v
}

pub fn status_category_json(call: &Call, cat: u64) -> Value {
    let (key, name, color) = match cat {
        2 => ("new", "To Do", "blue-gray"),
        4 => ("indeterminate", "In Progress", "yellow"),
        3 => ("done", "Done", "green"),
        _ => ("undefined", "No Category", "medium-gray"),
    };
    json!({
        "self": format!("{}/statuscategory/{}", call.api, cat),
        "id": cat,
        "key": key,
        "colorName": color,
        "name": name,
    })
}

pub fn status_json(call: &Call, s: &Status) -> Value {
    json!({
        "self": format!("{}/status/{}", call.api, s.id),
        "description": s.description,
        "iconUrl": format!("{}/images/icons/statuses/generic.png", call.base),
        "name": s.name,
        "untranslatedName": s.name,
        "id": s.id,
        "statusCategory": status_category_json(call, s.category),
    })
}

pub fn priority_json(call: &Call, p: &Priority) -> Value {
    json!({
        "self": format!("{}/priority/{}", call.api, p.id),
        "statusColor": p.color,
        "description": format!("{} priority.", p.name),
        "iconUrl": format!("{}/images/icons/priorities/{}.svg", call.base, p.icon),
        "name": p.name,
        "id": p.id,
    })
}

/// Rich text in the representation of the call's API version.
pub fn rich_out(call: &Call, t: Option<&RichText>) -> Value {
    match (t, call.v3) {
        (None, _) => Value::Null,
        (Some(RichText::Adf(v)), true) => v.clone(),
        (Some(RichText::Plain(s)), true) => adf::from_plain(s),
        (Some(RichText::Adf(v)), false) => Value::String(adf::to_plain(v)),
        (Some(RichText::Plain(s)), false) => Value::String(s.clone()),
    }
}

pub fn option_json(call: &Call, o: &CfOption) -> Value {
    json!({
        "self": format!("{}/customFieldOption/{}", call.api, o.id),
        "value": o.value,
        "id": o.id,
    })
}

pub fn cf_value_json(w: &World, call: &Call, f: &FieldDef, v: &CfValue) -> Value {
    let find = |id: &str| f.options().iter().find(|o| o.id == id);
    match v {
        CfValue::Number(n) => json!(n),
        CfValue::Text(s) => json!(s),
        CfValue::Option(id) => find(id)
            .map(|o| option_json(call, o))
            .unwrap_or(Value::Null),
        CfValue::Options(ids) => Value::Array(
            ids.iter()
                .filter_map(|id| find(id))
                .map(|o| option_json(call, o))
                .collect(),
        ),
        CfValue::User(a) => user_json(w, call, a),
        CfValue::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        CfValue::Cascade(p, c) => {
            let Some(parent) = find(p) else {
                return Value::Null;
            };
            let mut v = option_json(call, parent);
            if let Some(child) = c
                .as_ref()
                .and_then(|c| parent.children.iter().find(|o| &o.id == c))
            {
                v["child"] = option_json(call, child);
            }
            v
        }
        CfValue::Issue(id) => w
            .issues
            .get(id)
            .map(|i| json!(i.key))
            .unwrap_or(Value::Null),
    }
}

/// Which fields a response should carry.
#[derive(Debug, Clone, Default)]
pub struct FieldSel {
    pub all: bool,
    pub navigable: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl FieldSel {
    pub fn parse(list: &[String], default_all: bool, default_nav: bool) -> Self {
        let mut s = FieldSel::default();
        if list.is_empty() {
            s.all = default_all;
            s.navigable = default_nav;
            return s;
        }
        for f in list {
            match f.as_str() {
                "*all" => s.all = true,
                "*navigable" => s.navigable = true,
                x if x.starts_with('-') => s.exclude.push(x[1..].to_string()),
                x => s.include.push(x.to_string()),
            }
        }
        s
    }

    pub fn none(&self) -> bool {
        !self.all && !self.navigable && self.include.is_empty()
    }

    /// Whether only id / key were asked for (`fields=id` or `fields=key`).
    pub fn wants(&self, id: &str, name: &str, navigable: bool) -> bool {
        if self
            .exclude
            .iter()
            .any(|e| e == id || e.eq_ignore_ascii_case(name))
        {
            return false;
        }
        self.all
            || (self.navigable && navigable)
            || self
                .include
                .iter()
                .any(|e| e == id || e.eq_ignore_ascii_case(name))
    }
}

const NON_NAVIGABLE: &[&str] = &["comment", "worklog", "timetracking"];

pub fn issue_mini(w: &World, call: &Call, i: &Issue) -> Value {
    let mut fields = json!({
        "summary": i.summary,
    });
    if let Some(s) = w.status(&i.status) {
        fields["status"] = status_json(call, s);
    }
    if let Some(p) = w.priority(&i.priority) {
        fields["priority"] = priority_json(call, p);
    }
    if let Some(t) = w.issue_type(&i.issuetype) {
        fields["issuetype"] = issuetype_json(call, t);
    }
    json!({
        "id": i.id.to_string(),
        "key": i.key,
        "self": format!("{}/issue/{}", call.api, i.id),
        "fields": fields,
    })
}

pub fn comment_json(w: &World, call: &Call, issue: &Issue, c: &Comment) -> Value {
    let mut v = json!({
        "self": format!("{}/issue/{}/comment/{}", call.api, issue.id, c.id),
        "id": c.id.to_string(),
        "author": user_json(w, call, &c.author),
        "body": rich_out(call, Some(&c.body)),
        "updateAuthor": user_json(w, call, &c.update_author),
        "created": jtime(c.created, call.tz),
        "updated": jtime(c.updated, call.tz),
    });
    if call.flavor == Flavor::Cloud {
        v["jsdPublic"] = json!(true);
    }
    v
}

pub fn worklog_json(w: &World, call: &Call, wl: &Worklog, with_props: bool) -> Value {
    let mut v = json!({
        "self": format!("{}/issue/{}/worklog/{}", call.api, wl.issue_id, wl.id),
        "author": user_json(w, call, &wl.author),
        "updateAuthor": user_json(w, call, &wl.update_author),
        "created": jtime(wl.created, call.tz),
        "updated": jtime(wl.updated, call.tz),
        "started": jtime_fixed(wl.started.with_timezone(&call.tz).fixed_offset()),
        "timeSpent": format_duration(wl.time_spent_seconds),
        "timeSpentSeconds": wl.time_spent_seconds,
        "id": wl.id.to_string(),
        "issueId": wl.issue_id.to_string(),
    });
    if let Some(c) = &wl.comment {
        v["comment"] = rich_out(call, Some(c));
    }
    if with_props {
        v["properties"] = Value::Array(
            wl.properties
                .iter()
                .map(|(k, val)| json!({"key": k, "value": val}))
                .collect(),
        );
    }
    v
}

pub fn history_json(w: &World, call: &Call, h: &History) -> Value {
    json!({
        "id": h.id.to_string(),
        "author": user_json(w, call, &h.author),
        "created": jtime(h.created, call.tz),
        "items": h.items,
    })
}

/// Options for [`issue_json`].
#[derive(Debug, Clone, Default)]
pub struct IssueOpts {
    pub fields: FieldSel,
    pub expand: Vec<String>,
    pub properties: Vec<String>,
    pub fields_by_keys: bool,
}

/// Custom fields shown for an issue: the ones on its screen plus any with a value.
pub fn issue_custom_fields<'a>(w: &'a World, i: &Issue) -> Vec<&'a FieldDef> {
    let screen: Vec<String> = w
        .project(i.project_id)
        .and_then(|p| p.screens.get(&i.issuetype))
        .map(|s| s.iter().map(|(f, _)| f.clone()).collect())
        .unwrap_or_default();
    w.fields
        .iter()
        .filter(|f| screen.contains(&f.id) || i.custom.contains_key(&f.id))
        .collect()
}

pub fn issue_json(w: &World, call: &Call, i: &Issue, o: &IssueOpts) -> Value {
    let mut v = json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": i.id.to_string(),
        "self": format!("{}/issue/{}", call.api, i.id),
        "key": i.key,
    });
    if o.fields.none() {
        if !o.properties.is_empty() {
            v["properties"] = properties_obj(i, &o.properties);
        }
        return v;
    }
    let tz = call.tz;
    let mut f = Map::new();
    let sel = &o.fields;
    let mut put = |id: &str, name: &str, val: Value| {
        if sel.wants(id, name, !NON_NAVIGABLE.contains(&id)) {
            f.insert(id.to_string(), val);
        }
    };
    let project = w.project(i.project_id);
    put("summary", "Summary", json!(i.summary));
    put(
        "issuetype",
        "Issue Type",
        w.issue_type(&i.issuetype)
            .map(|t| issuetype_json(call, t))
            .unwrap_or(Value::Null),
    );
    put(
        "project",
        "Project",
        project.map(|p| project_ref(call, p)).unwrap_or(Value::Null),
    );
    let status = w.status(&i.status);
    put(
        "status",
        "Status",
        status.map(|s| status_json(call, s)).unwrap_or(Value::Null),
    );
    put(
        "priority",
        "Priority",
        w.priority(&i.priority)
            .map(|p| priority_json(call, p))
            .unwrap_or(Value::Null),
    );
    put(
        "assignee",
        "Assignee",
        opt_user(w, call, i.assignee.as_ref()),
    );
    put(
        "reporter",
        "Reporter",
        opt_user(w, call, i.reporter.as_ref()),
    );
    put("creator", "Creator", user_json(w, call, &i.creator));
    put("labels", "Labels", json!(i.labels));
    put(
        "description",
        "Description",
        rich_out(call, i.description.as_ref()),
    );
    put("environment", "Environment", Value::Null);
    put("created", "Created", json!(jtime(i.created, tz)));
    put("updated", "Updated", json!(jtime(i.updated, tz)));
    put(
        "statuscategorychangedate",
        "Status Category Changed",
        json!(jtime(i.status_changed, tz)),
    );
    let done = status.is_some_and(|s| s.category == 3);
    put(
        "resolution",
        "Resolution",
        if done {
            json!({"self": format!("{}/resolution/10000", call.api), "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"})
        } else {
            Value::Null
        },
    );
    put(
        "resolutiondate",
        "Resolved",
        i.resolution_date
            .map(|d| json!(jtime(d, tz)))
            .unwrap_or(Value::Null),
    );
    put(
        "duedate",
        "Due date",
        i.duedate
            .map(|d| json!(d.format("%Y-%m-%d").to_string()))
            .unwrap_or(Value::Null),
    );
    if let Some(parent) = i.parent.and_then(|p| w.issues.get(&p)) {
        put("parent", "Parent", issue_mini(w, call, parent));
    }
    let subtasks: Vec<Value> = w
        .issues
        .values()
        .filter(|c| c.parent == Some(i.id) && w.issue_type(&c.issuetype).is_some_and(|t| t.subtask))
        .map(|c| issue_mini(w, call, c))
        .collect();
    put("subtasks", "Sub-tasks", Value::Array(subtasks));
    put("issuelinks", "Linked Issues", json!([]));
    put("components", "Components", json!([]));
    put("fixVersions", "Fix versions", json!([]));
    put("versions", "Affects versions", json!([]));
    let wls: Vec<&Worklog> = w
        .worklogs
        .values()
        .filter(|wl| wl.issue_id == i.id)
        .collect();
    let spent: i64 = wls.iter().map(|wl| wl.time_spent_seconds).sum();
    let spent_v = if wls.is_empty() {
        Value::Null
    } else {
        json!(spent)
    };
    put("timespent", "Time Spent", spent_v.clone());
    put("aggregatetimespent", "Σ Time Spent", spent_v);
    put("timeoriginalestimate", "Original estimate", Value::Null);
    put("timeestimate", "Remaining Estimate", Value::Null);
    let mut tt = json!({});
    if !wls.is_empty() {
        tt = json!({"timeSpent": format_duration(spent), "timeSpentSeconds": spent});
    }
    put("timetracking", "Time tracking", tt);
    put(
        "worklog",
        "Log Work",
        json!({
            "startAt": 0,
            "maxResults": 20,
            "total": wls.len(),
            "worklogs": wls.iter().take(20).map(|wl| worklog_json(w, call, wl, false)).collect::<Vec<_>>(),
        }),
    );
    put(
        "comment",
        "Comment",
        json!({
            "comments": i.comments.iter().map(|c| comment_json(w, call, i, c)).collect::<Vec<_>>(),
            "self": format!("{}/issue/{}/comment", call.api, i.id),
            "maxResults": i.comments.len(),
            "total": i.comments.len(),
            "startAt": 0,
        }),
    );
    put(
        "watches",
        "Watchers",
        json!({"self": format!("{}/issue/{}/watchers", call.api, i.key), "watchCount": 0, "isWatching": false}),
    );
    put(
        "votes",
        "Votes",
        json!({"self": format!("{}/issue/{}/votes", call.api, i.key), "votes": 0, "hasVoted": false}),
    );
    for cf in issue_custom_fields(w, i) {
        let val = i
            .custom
            .get(&cf.id)
            .map(|v| cf_value_json(w, call, cf, v))
            .unwrap_or(Value::Null);
        put(&cf.id, &cf.name, val);
    }
    if o.fields_by_keys {
        // Keys equal ids for system fields; custom fields are keyed by id as well.
    }
    v["fields"] = Value::Object(f);
    if !o.properties.is_empty() {
        v["properties"] = properties_obj(i, &o.properties);
    }
    if o.expand.iter().any(|e| e == "changelog") {
        v["changelog"] = json!({
            "startAt": 0,
            "maxResults": i.changelog.len(),
            "total": i.changelog.len(),
            "histories": i.changelog.iter().map(|h| history_json(w, call, h)).collect::<Vec<_>>(),
        });
    }
    if o.expand.iter().any(|e| e == "names") {
        let mut names = Map::new();
        for cf in issue_custom_fields(w, i) {
            names.insert(cf.id.clone(), json!(cf.name));
        }
        for (id, name) in SYSTEM_FIELDS {
            names.insert(id.to_string(), json!(name));
        }
        v["names"] = Value::Object(names);
    }
    if o.expand.iter().any(|e| e == "renderedFields") {
        v["renderedFields"] = json!({
            "description": i.description.as_ref().map(|d| match d {
                RichText::Adf(a) => format!("<p>{}</p>", adf::to_plain(a)),
                RichText::Plain(s) => format!("<p>{s}</p>"),
            }),
        });
    }
    v
}

fn properties_obj(i: &Issue, keys: &[String]) -> Value {
    let mut m = Map::new();
    for k in keys {
        if k == "*all" {
            for (kk, vv) in &i.properties {
                m.insert(kk.clone(), vv.clone());
            }
        } else if let Some(val) = i.properties.get(k) {
            m.insert(k.clone(), val.clone());
        }
    }
    Value::Object(m)
}

/// System fields: (id, name).
pub const SYSTEM_FIELDS: &[(&str, &str)] = &[
    ("summary", "Summary"),
    ("issuetype", "Issue Type"),
    ("project", "Project"),
    ("status", "Status"),
    ("priority", "Priority"),
    ("assignee", "Assignee"),
    ("reporter", "Reporter"),
    ("creator", "Creator"),
    ("labels", "Labels"),
    ("description", "Description"),
    ("environment", "Environment"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("statuscategorychangedate", "Status Category Changed"),
    ("resolution", "Resolution"),
    ("resolutiondate", "Resolved"),
    ("duedate", "Due date"),
    ("parent", "Parent"),
    ("subtasks", "Sub-tasks"),
    ("issuelinks", "Linked Issues"),
    ("components", "Components"),
    ("fixVersions", "Fix versions"),
    ("versions", "Affects versions"),
    ("timespent", "Time Spent"),
    ("aggregatetimespent", "Σ Time Spent"),
    ("timeoriginalestimate", "Original estimate"),
    ("timeestimate", "Remaining Estimate"),
    ("timetracking", "Time tracking"),
    ("worklog", "Log Work"),
    ("comment", "Comment"),
    ("watches", "Watchers"),
    ("votes", "Votes"),
];
