//! serverInfo, myself, projects, issue types, create metadata, fields, priorities,
//! statuses and users.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Value};

use super::render::*;
use super::{Call, MaybeCall, S};
use crate::model::*;
use crate::util::{jerr, jtime, ok_json, paging};

pub async fn server_info(State(sim): State<S>, MaybeCall(call, ctx): MaybeCall) -> Response {
    let w = sim.world.lock();
    let base = ctx.base.clone();
    let tz = call.as_ref().map(|c| c.tz).unwrap_or(chrono_tz::UTC);
    let now = jtime(Utc::now(), tz);
    let title = w
        .sites
        .get(ctx.site)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let v = match w.flavor {
        Flavor::Cloud => json!({
            "baseUrl": base,
            "displayUrl": base,
            "version": "1001.0.0-SNAPSHOT",
            "versionNumbers": [1001, 0, 0],
            "deploymentType": "Cloud",
            "buildNumber": 100300,
            "buildDate": "2026-01-01T00:00:00.000+0000",
            "serverTime": now,
            "scmInfo": "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
            "serverTitle": title,
            "serverTimeZone": "Etc/UTC",
        }),
        Flavor::DataCenter => json!({
            "baseUrl": base,
            "version": "10.3.1",
            "versionNumbers": [10, 3, 1],
            "deploymentType": "Server",
            "buildNumber": 10030001,
            "buildDate": "2025-01-01T00:00:00.000+0000",
            "databaseBuildNumber": 10030001,
            "serverTime": now,
            "scmInfo": "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
            "serverTitle": title,
        }),
    };
    ok_json(200, v)
}

pub async fn myself(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    let Some(u) = w.user(&call.user) else {
        return jerr(404, &["User does not exist."], &[]);
    };
    let mut v = user_full(&call, u);
    v["emailAddress"] = json!(u.email);
    v["locale"] = json!(u.locale);
    let groups: Vec<Value> = if u.admin {
        vec!["jira-administrators", "jira-software-users"]
    } else {
        vec!["jira-software-users"]
    }
    .into_iter()
    .map(|g| json!({"name": g, "self": format!("{}/group?groupname={}", call.api, g)}))
    .collect();
    let expand: Vec<String> = call.q.list("expand");
    v["groups"] = if expand.iter().any(|e| e == "groups") {
        json!({"size": groups.len(), "items": groups})
    } else {
        json!({"size": groups.len(), "items": []})
    };
    v["applicationRoles"] = json!({"size": 1, "items": []});
    v["expand"] = json!("groups,applicationRoles");
    ok_json(200, v)
}

fn visible_projects<'a>(w: &'a World, call: &Call) -> Vec<&'a Project> {
    w.projects
        .iter()
        .filter(|p| p.site == call.site && !p.hidden_from.contains(&call.user))
        .collect()
}

pub async fn project_list(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    let expand = call.q.list("expand");
    let list: Vec<Value> = visible_projects(&w, &call)
        .into_iter()
        .map(|p| {
            let mut v = project_json(&w, &call, p, &expand);
            if !expand.iter().any(|e| e == "issueTypes") {
                if let Some(o) = v.as_object_mut() {
                    o.remove("issueTypes");
                }
            }
            v
        })
        .collect();
    ok_json(200, Value::Array(list))
}

pub async fn project_search(State(sim): State<S>, call: Call) -> Response {
    if call.flavor == Flavor::DataCenter {
        return jerr(404, &["null for uri: /rest/api/2/project/search"], &[]);
    }
    let (start, max) = match paging(&call.q, 50, 100) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let query = call.q.get("query").map(str::to_lowercase);
    let keys = call.q.list("keys");
    let ids = call.q.list("id");
    let expand = call.q.list("expand");
    let mut list: Vec<&Project> = visible_projects(&w, &call)
        .into_iter()
        .filter(|p| {
            query.as_ref().is_none_or(|q| {
                p.key.to_lowercase().contains(q) || p.name.to_lowercase().contains(q)
            })
        })
        .filter(|p| keys.is_empty() || keys.iter().any(|k| k.eq_ignore_ascii_case(&p.key)))
        .filter(|p| ids.is_empty() || ids.contains(&p.id.to_string()))
        .collect();
    match call.q.get("orderBy").unwrap_or("key") {
        "name" | "+name" => list.sort_by(|a, b| a.name.cmp(&b.name)),
        "-name" => list.sort_by(|a, b| b.name.cmp(&a.name)),
        "-key" => list.sort_by(|a, b| b.key.cmp(&a.key)),
        "id" | "+id" => list.sort_by_key(|p| p.id),
        "-id" => list.sort_by_key(|p| std::cmp::Reverse(p.id)),
        _ => list.sort_by(|a, b| a.key.cmp(&b.key)),
    }
    let total = list.len();
    if total == 0 && (query.is_some() || !keys.is_empty() || !ids.is_empty()) {
        return jerr(
            404,
            &["No projects matching the search criteria were found."],
            &[],
        );
    }
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(max)
        .map(|p| {
            let mut v = project_json(&w, &call, p, &expand);
            if !expand.iter().any(|e| e == "issueTypes") {
                if let Some(o) = v.as_object_mut() {
                    o.remove("issueTypes");
                }
            }
            v
        })
        .collect();
    let is_last = start + page.len() >= total;
    let mut v = json!({
        "self": format!("{}/project/search?startAt={}&maxResults={}", call.api, start, max),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": page,
    });
    if !is_last {
        v["nextPage"] = json!(format!(
            "{}/project/search?startAt={}&maxResults={}",
            call.api,
            start + max,
            max
        ));
    }
    ok_json(200, v)
}

fn no_project(key: &str) -> Response {
    jerr(
        404,
        &[&format!("No project could be found with key '{key}'.")],
        &[],
    )
}

pub async fn project_get(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let w = sim.world.lock();
    match w.project_by_key_or_id(call.site, &key) {
        Some(p) if w.can_browse(&call.user, p.id) => {
            let expand = call.q.list("expand");
            let mut v = project_json(&w, &call, p, &[]);
            if expand.iter().any(|e| e == "projectKeys") {
                v["projectKeys"] = json!([p.key]);
            }
            ok_json(200, v)
        }
        _ => no_project(&key),
    }
}

pub async fn project_statuses(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
) -> Response {
    let w = sim.world.lock();
    let Some(p) = w
        .project_by_key_or_id(call.site, &key)
        .filter(|p| w.can_browse(&call.user, p.id))
    else {
        return no_project(&key);
    };
    let statuses: Vec<Value> = w.statuses.iter().map(|s| status_json(&call, s)).collect();
    let list: Vec<Value> = p
        .issue_types
        .iter()
        .filter_map(|id| w.issue_type(id))
        .map(|t| {
            json!({
                "self": format!("{}/issuetype/{}", call.api, t.id),
                "id": t.id,
                "name": t.name,
                "subtask": t.subtask,
                "statuses": statuses,
            })
        })
        .collect();
    ok_json(200, Value::Array(list))
}

pub async fn issuetypes(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    let visible: Vec<u64> = visible_projects(&w, &call).iter().map(|p| p.id).collect();
    let list: Vec<Value> = w
        .issue_types
        .iter()
        .filter(|t| t.scope_project.is_none_or(|p| visible.contains(&p)))
        .map(|t| issuetype_json(&call, t))
        .collect();
    ok_json(200, Value::Array(list))
}

pub async fn issuetypes_for_project(State(sim): State<S>, call: Call) -> Response {
    if let Some(r) = super::cloud_only(&call) {
        return r;
    }
    let w = sim.world.lock();
    let Some(pid) = call.q.get("projectId") else {
        return jerr(400, &["The projectId parameter is required."], &[]);
    };
    let Some(p) = w
        .project_by_key_or_id(call.site, pid)
        .filter(|p| w.can_browse(&call.user, p.id))
    else {
        return jerr(
            404,
            &["The project was not found or the user does not have permission to view it."],
            &[],
        );
    };
    let level = call.q.get("level").and_then(|l| l.parse::<i32>().ok());
    let list: Vec<Value> = p
        .issue_types
        .iter()
        .filter_map(|id| w.issue_type(id))
        .filter(|t| level.is_none_or(|l| t.level == l))
        .map(|t| issuetype_json(&call, t))
        .collect();
    ok_json(200, Value::Array(list))
}

pub async fn issuetype_get(State(sim): State<S>, call: Call, Path(id): Path<String>) -> Response {
    let w = sim.world.lock();
    match w.issue_type(&id) {
        Some(t) => ok_json(200, issuetype_json(&call, t)),
        None => jerr(404, &["The issue type was not found."], &[]),
    }
}

fn createmeta_project<'a>(w: &'a World, call: &Call, key: &str) -> Result<&'a Project, Response> {
    w.project_by_key_or_id(call.site, key)
        .filter(|p| w.can_browse(&call.user, p.id))
        .ok_or_else(|| {
            jerr(
                404,
                &[&format!(
                    "No project could be found with key or id '{key}'."
                )],
                &[],
            )
        })
}

fn createmeta_paging(call: &Call) -> Result<(usize, usize), Response> {
    let max = call.q.int("maxResults", 50)?;
    if max > 200 {
        return Err(jerr(
            400,
            &["Parameter 'maxResults' must not exceed the limit '200'"],
            &[],
        ));
    }
    paging(&call.q, 50, 200)
}

fn page_json(call: &Call, key_cloud: &str, items: Vec<Value>, start: usize, max: usize) -> Value {
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    match call.flavor {
        Flavor::Cloud => {
            let mut v = json!({"startAt": start, "maxResults": max, "total": total});
            v[key_cloud] = Value::Array(page);
            v
        }
        Flavor::DataCenter => json!({
            "maxResults": max,
            "startAt": start,
            "total": total,
            "isLast": start + max >= total,
            "values": page,
        }),
    }
}

pub async fn createmeta_types(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
) -> Response {
    let (start, max) = match createmeta_paging(&call) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let p = match createmeta_project(&w, &call, &key) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items: Vec<Value> = p
        .issue_types
        .iter()
        .filter_map(|id| w.issue_type(id))
        .map(|t| issuetype_json(&call, t))
        .collect();
    ok_json(200, page_json(&call, "issueTypes", items, start, max))
}

fn sys_field(id: &str, name: &str, required: bool, schema: Value, ops: &[&str]) -> Value {
    json!({
        "required": required,
        "schema": schema,
        "name": name,
        "key": id,
        "fieldId": id,
        "hasDefaultValue": false,
        "operations": ops,
    })
}

/// Create-screen fields of a project and issue type, as createmeta describes them.
pub fn create_fields(w: &World, call: &Call, p: &Project, t: &IssueType) -> Vec<Value> {
    let mut out = vec![];
    out.push(sys_field(
        "summary",
        "Summary",
        true,
        json!({"type": "string", "system": "summary"}),
        &["set"],
    ));
    let mut it = sys_field(
        "issuetype",
        "Issue Type",
        true,
        json!({"type": "issuetype", "system": "issuetype"}),
        &[],
    );
    it["allowedValues"] = json!([issuetype_json(call, t)]);
    out.push(it);
    let mut pr = sys_field(
        "project",
        "Project",
        true,
        json!({"type": "project", "system": "project"}),
        &["set"],
    );
    pr["allowedValues"] = json!([project_ref(call, p)]);
    out.push(pr);
    out.push(sys_field(
        "description",
        "Description",
        false,
        json!({"type": "string", "system": "description"}),
        &["set"],
    ));
    let mut rep = sys_field(
        "reporter",
        "Reporter",
        true,
        json!({"type": "user", "system": "reporter"}),
        &["set"],
    );
    rep["hasDefaultValue"] = json!(true);
    rep["autoCompleteUrl"] = json!(format!("{}/user/search?query=", call.api));
    out.push(rep);
    let mut asg = sys_field(
        "assignee",
        "Assignee",
        false,
        json!({"type": "user", "system": "assignee"}),
        &["set"],
    );
    asg["autoCompleteUrl"] = json!(format!(
        "{}/user/assignable/search?project={}&query=",
        call.api, p.key
    ));
    out.push(asg);
    let mut pri = sys_field(
        "priority",
        "Priority",
        false,
        json!({"type": "priority", "system": "priority"}),
        &["set"],
    );
    pri["allowedValues"] = Value::Array(
        w.priorities
            .iter()
            .map(|x| priority_json(call, x))
            .collect(),
    );
    pri["hasDefaultValue"] = json!(true);
    if let Some(m) = w.priorities.iter().find(|x| x.name == "Medium") {
        pri["defaultValue"] = priority_json(call, m);
    }
    out.push(pri);
    let mut lab = sys_field(
        "labels",
        "Labels",
        false,
        json!({"type": "array", "items": "string", "system": "labels"}),
        &["add", "set", "remove"],
    );
    lab["autoCompleteUrl"] = json!(format!("{}/labels/suggest?query=", call.base));
    out.push(lab);
    out.push(sys_field(
        "duedate",
        "Due date",
        false,
        json!({"type": "date", "system": "duedate"}),
        &["set"],
    ));
    if t.subtask || (call.flavor == Flavor::Cloud && t.level < 1) {
        out.push(sys_field(
            "parent",
            "Parent",
            t.subtask,
            json!({"type": "issuelink", "system": "parent"}),
            &["set"],
        ));
    }
    for (fid, required) in p.screens.get(&t.id).cloned().unwrap_or_default() {
        let Some(f) = w.field(&fid) else { continue };
        let (ty, items) = f.schema_type();
        let mut schema = json!({"type": ty, "custom": f.custom_type(), "customId": f.numeric_id()});
        if let Some(i) = items {
            schema["items"] = json!(i);
        }
        let ops: &[&str] = match f.kind {
            CfKind::MultiSelect(_) => &["add", "set", "remove"],
            _ => &["set"],
        };
        let mut v = sys_field(&f.id, &f.name, required, schema, ops);
        if !f.options().is_empty() {
            v["allowedValues"] = Value::Array(
                f.options()
                    .iter()
                    .map(|o| {
                        let mut ov = option_json(call, o);
                        if !o.children.is_empty() {
                            ov["children"] = Value::Array(
                                o.children.iter().map(|c| option_json(call, c)).collect(),
                            );
                        }
                        ov
                    })
                    .collect(),
            );
        }
        if matches!(f.kind, CfKind::User) {
            v["autoCompleteUrl"] = json!(format!("{}/user/picker?query=", call.api));
        }
        out.push(v);
    }
    out
}

pub async fn createmeta_fields(
    State(sim): State<S>,
    call: Call,
    Path((key, type_id)): Path<(String, String)>,
) -> Response {
    let (start, max) = match createmeta_paging(&call) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let p = match createmeta_project(&w, &call, &key) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(t) = p
        .issue_types
        .contains(&type_id)
        .then(|| w.issue_type(&type_id))
        .flatten()
    else {
        return jerr(
            404,
            &[&format!(
                "Issue type with id '{type_id}' does not exist or is not visible in this project."
            )],
            &[],
        );
    };
    let items = create_fields(&w, &call, p, t);
    ok_json(200, page_json(&call, "fields", items, start, max))
}

pub async fn fields(State(sim): State<S>, _call: Call) -> Response {
    let w = sim.world.lock();
    let mut list: Vec<Value> = SYSTEM_FIELDS
        .iter()
        .map(|(id, name)| {
            let schema_type = match *id {
                "labels" | "subtasks" | "issuelinks" | "components" | "fixVersions" | "versions" => "array",
                "created" | "updated" | "resolutiondate" | "statuscategorychangedate" => "datetime",
                "duedate" => "date",
                "assignee" | "reporter" | "creator" => "user",
                "timespent" | "aggregatetimespent" | "timeoriginalestimate" | "timeestimate" => "number",
                "issuetype" | "project" | "status" | "priority" | "resolution" | "comment" | "worklog" | "timetracking" | "watches" | "votes" => id,
                "parent" => "issuelink",
                _ => "string",
            };
            let mut v = json!({
                "id": id,
                "key": id,
                "name": name,
                "custom": false,
                "orderable": !matches!(*id, "created" | "updated" | "status" | "creator" | "resolutiondate" | "statuscategorychangedate" | "subtasks" | "votes" | "watches" | "aggregatetimespent" | "timespent"),
                "navigable": !matches!(*id, "comment" | "worklog" | "timetracking"),
                "searchable": true,
                "clauseNames": [id],
                "schema": {"type": schema_type, "system": id},
            });
            if schema_type == "array" {
                v["schema"]["items"] = json!(if *id == "labels" { "string" } else { "json" });
            }
            v
        })
        .collect();
    for f in &w.fields {
        let (ty, items) = f.schema_type();
        let mut schema = json!({"type": ty, "custom": f.custom_type(), "customId": f.numeric_id()});
        if let Some(i) = items {
            schema["items"] = json!(i);
        }
        list.push(json!({
            "id": f.id,
            "key": f.id,
            "name": f.name,
            "custom": true,
            "orderable": true,
            "navigable": true,
            "searchable": true,
            "clauseNames": [format!("cf[{}]", f.numeric_id()), f.name.clone()],
            "schema": schema,
        }));
    }
    ok_json(200, Value::Array(list))
}

pub async fn priorities(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    ok_json(
        200,
        Value::Array(
            w.priorities
                .iter()
                .map(|p| priority_json(&call, p))
                .collect(),
        ),
    )
}

pub async fn priority_search(State(sim): State<S>, call: Call) -> Response {
    if let Some(r) = super::cloud_only(&call) {
        return r;
    }
    let (start, max) = match paging(&call.q, 50, 50) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let ids = call.q.list("id");
    let name = call.q.get("priorityName").map(str::to_lowercase);
    let list: Vec<Value> = w
        .priorities
        .iter()
        .filter(|p| ids.is_empty() || ids.contains(&p.id))
        .filter(|p| {
            name.as_ref()
                .is_none_or(|n| p.name.to_lowercase().contains(n))
        })
        .map(|p| {
            let mut v = priority_json(&call, p);
            v["isDefault"] = json!(p.name == "Medium");
            v
        })
        .collect();
    let total = list.len();
    let page: Vec<Value> = list.into_iter().skip(start).take(max).collect();
    ok_json(
        200,
        json!({
            "self": format!("{}/priority/search?startAt={}&maxResults={}", call.api, start, max),
            "maxResults": max,
            "startAt": start,
            "total": total,
            "isLast": start + page.len() >= total,
            "values": page,
        }),
    )
}

pub async fn priority_get(State(sim): State<S>, call: Call, Path(id): Path<String>) -> Response {
    let w = sim.world.lock();
    match w.priority(&id) {
        Some(p) => ok_json(200, priority_json(&call, p)),
        None => jerr(
            404,
            &[&format!("The priority with id '{id}' does not exist.")],
            &[],
        ),
    }
}

pub async fn statuses(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    ok_json(
        200,
        Value::Array(w.statuses.iter().map(|s| status_json(&call, s)).collect()),
    )
}

pub async fn status_get(State(sim): State<S>, call: Call, Path(id): Path<String>) -> Response {
    let w = sim.world.lock();
    match w
        .statuses
        .iter()
        .find(|s| s.id == id || s.name.eq_ignore_ascii_case(&id))
    {
        Some(s) => ok_json(200, status_json(&call, s)),
        None => jerr(
            404,
            &[&format!("The status with id '{id}' does not exist.")],
            &[],
        ),
    }
}

pub async fn status_categories(call: Call) -> Response {
    ok_json(
        200,
        Value::Array(
            [1u64, 2, 4, 3]
                .iter()
                .map(|c| status_category_json(&call, *c))
                .collect(),
        ),
    )
}

/// User-search matching: display name / username prefix by word, or e-mail (a hidden
/// e-mail matches only the complete address).
fn user_matches(u: &User, q: &str, dc: bool) -> bool {
    let q = q.to_lowercase();
    let name_hit = u
        .display_name
        .to_lowercase()
        .split_whitespace()
        .any(|w| w.starts_with(&q))
        || u.display_name.to_lowercase().starts_with(&q)
        || (dc && u.name.to_lowercase().starts_with(&q));
    let email_hit = if u.email_visible || dc {
        u.email.to_lowercase().starts_with(&q)
    } else {
        u.email.to_lowercase() == q
    };
    name_hit || email_hit
}

pub async fn user_search(State(sim): State<S>, call: Call) -> Response {
    let (start, max) = match paging(&call.q, 50, 1000) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let dc = call.flavor == Flavor::DataCenter;
    let query = call
        .q
        .get("query")
        .or_else(|| if dc { call.q.get("username") } else { None });
    let account = call.q.get("accountId");
    let property = call.q.get("property");
    if query.is_none() && account.is_none() && property.is_none() {
        return jerr(
            400,
            &["The query parameter 'query' or 'accountId' or 'property' is required."],
            &[],
        );
    }
    if query.is_some() && account.is_some() {
        return jerr(
            400,
            &["You can't specify both 'query' and 'accountId'."],
            &[],
        );
    }
    let w = sim.world.lock();
    let list: Vec<Value> = w
        .users
        .iter()
        .filter(|u| u.active)
        .filter(|u| match (query, account) {
            (Some(q), _) => q == "." || user_matches(u, q, dc),
            (None, Some(a)) => u.account_id == a,
            _ => false,
        })
        .skip(start)
        .take(max)
        .map(|u| user_full(&call, u))
        .collect();
    ok_json(200, Value::Array(list))
}

pub async fn user_get(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    let id = call
        .q
        .get("accountId")
        .or_else(|| call.q.get("username"))
        .or_else(|| call.q.get("key"));
    let Some(id) = id else {
        return jerr(
            400,
            &["The accountId query parameter needs to be provided."],
            &[],
        );
    };
    match w.users.iter().find(|u| {
        u.account_id == id || (call.flavor == Flavor::DataCenter && (u.name == id || u.key == id))
    }) {
        Some(u) => ok_json(200, user_full(&call, u)),
        None => jerr(
            404,
            &["Specified user does not exist or you do not have required permissions"],
            &[],
        ),
    }
}

pub async fn assignable_search(State(sim): State<S>, call: Call) -> Response {
    let (start, max) = match paging(&call.q, 50, 1000) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let project_id = if let Some(k) = call.q.get("issueKey").or_else(|| call.q.get("issueId")) {
        match w.find_issue(call.site, k) {
            Some(id) if super::visible(&w, &call.user, id) => {
                w.issues.get(&id).map(|i| i.project_id)
            }
            _ => return crate::util::not_found_issue(),
        }
    } else if let Some(p) = call.q.get("project") {
        match w
            .project_by_key_or_id(call.site, p)
            .filter(|p| w.can_browse(&call.user, p.id))
        {
            Some(p) => Some(p.id),
            None => {
                return jerr(
                    404,
                    &[&format!("No project could be found with key '{p}'.")],
                    &[],
                )
            }
        }
    } else {
        None
    };
    let Some(project_id) = project_id else {
        return jerr(
            400,
            &["The issueKey, issueId or project parameter is required."],
            &[],
        );
    };
    let dc = call.flavor == Flavor::DataCenter;
    let query = call.q.get("query").or_else(|| call.q.get("username"));
    let account = call.q.get("accountId");
    let list: Vec<Value> = w
        .users
        .iter()
        .filter(|u| u.active && w.can_browse(&u.account_id, project_id))
        .filter(|u| query.is_none_or(|q| user_matches(u, q, dc)))
        .filter(|u| account.is_none_or(|a| u.account_id == a))
        .skip(start)
        .take(max)
        .map(|u| user_full(&call, u))
        .collect();
    ok_json(200, Value::Array(list))
}

/// The old `GET /issue/createmeta` (Cloud still answers it; removed from Data Center 9).
pub async fn createmeta_legacy(State(sim): State<S>, call: Call) -> Response {
    if let Some(r) = super::cloud_only(&call) {
        return r;
    }
    let w = sim.world.lock();
    let keys = call.q.list("projectKeys");
    let ids = call.q.list("projectIds");
    let type_ids = call.q.list("issuetypeIds");
    let type_names = call.q.list("issuetypeNames");
    let with_fields = call
        .q
        .list("expand")
        .iter()
        .any(|e| e == "projects.issuetypes.fields");
    let projects: Vec<Value> = visible_projects(&w, &call)
        .into_iter()
        .filter(|p| keys.is_empty() || keys.iter().any(|k| k.eq_ignore_ascii_case(&p.key)))
        .filter(|p| ids.is_empty() || ids.contains(&p.id.to_string()))
        .map(|p| {
            let types: Vec<Value> = p
                .issue_types
                .iter()
                .filter_map(|id| w.issue_type(id))
                .filter(|t| type_ids.is_empty() || type_ids.contains(&t.id))
                .filter(|t| {
                    type_names.is_empty()
                        || type_names.iter().any(|n| n.eq_ignore_ascii_case(&t.name))
                })
                .map(|t| {
                    let mut v = issuetype_json(&call, t);
                    v["expand"] = json!("fields");
                    if with_fields {
                        let mut fields = serde_json::Map::new();
                        for mut f in create_fields(&w, &call, p, t) {
                            // The legacy document keys fields by id and its FieldMetadata
                            // has no `fieldId` property.
                            let id = f
                                .as_object_mut()
                                .and_then(|o| o.remove("fieldId"))
                                .and_then(|v| v.as_str().map(str::to_string));
                            if let Some(id) = id {
                                fields.insert(id, f);
                            }
                        }
                        v["fields"] = Value::Object(fields);
                    }
                    v
                })
                .collect();
            json!({
                "expand": "issuetypes",
                "self": format!("{}/project/{}", call.api, p.id),
                "id": p.id.to_string(),
                "key": p.key,
                "name": p.name,
                "avatarUrls": project_avatars(&call, p),
                "issuetypes": types,
            })
        })
        .collect();
    ok_json(200, json!({"expand": "projects", "projects": projects}))
}

/// Project permissions the simulator knows, with Jira's ids, names and descriptions.
const PROJECT_PERMISSIONS: &[(&str, &str, &str, &str)] = &[
    (
        "BROWSE_PROJECTS",
        "10",
        "Browse Projects",
        "Ability to browse projects and the issues within them.",
    ),
    (
        "CREATE_ISSUES",
        "11",
        "Create Issues",
        "Ability to create issues.",
    ),
    (
        "EDIT_ISSUES",
        "12",
        "Edit Issues",
        "Ability to edit issues.",
    ),
    (
        "ADD_COMMENTS",
        "15",
        "Add Comments",
        "Ability to comment on issues.",
    ),
    (
        "WORK_ON_ISSUES",
        "20",
        "Work On Issues",
        "Ability to log work done against an issue. Only useful if Time Tracking is turned on.",
    ),
    (
        "TRANSITION_ISSUES",
        "46",
        "Transition Issues",
        "Ability to transition issues.",
    ),
];

/// `GET /mypermissions`: the caller's permissions, optionally in the context of a
/// project or an issue. Cloud requires `permissions` (comma-separated keys); Data
/// Center answers every permission when it is absent.
pub async fn my_permissions(State(sim): State<S>, call: Call) -> Response {
    let w = sim.world.lock();
    let asked: Vec<String> = call
        .q
        .get("permissions")
        .map(|p| {
            p.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if asked.is_empty() && call.flavor == Flavor::Cloud {
        return jerr(400, &["The permissions query parameter is required."], &[]);
    }
    if let Some(bad) = asked
        .iter()
        .find(|k| !PROJECT_PERMISSIONS.iter().any(|(key, ..)| key == k))
    {
        return jerr(
            400,
            &[format!("Invalid permission key: {bad}.").as_str()],
            &[],
        );
    }
    // The context: an issue (id wins over key), a project (id wins over key), or none.
    let project = if let Some(issue) = call.q.get("issueId").or_else(|| call.q.get("issueKey")) {
        match super::find_visible(&w, &call, issue) {
            Ok(id) => w.issues.get(&id).map(|i| i.project_id),
            Err(r) => return r,
        }
    } else if let Some(p) = call.q.get("projectId").or_else(|| call.q.get("projectKey")) {
        match w
            .project_by_key_or_id(call.site, p)
            .filter(|p| w.can_browse(&call.user, p.id))
        {
            Some(p) => Some(p.id),
            None => return jerr(404, &["No project could be found with key or id."], &[]),
        }
    } else {
        None
    };
    let user = w.user(&call.user);
    let browse = match project {
        Some(p) => w.can_browse(&call.user, p),
        // Without a context: whether the user has it in at least one project.
        None => w
            .projects
            .iter()
            .any(|p| p.site == call.site && w.can_browse(&call.user, p.id)),
    };
    let mut out = serde_json::Map::new();
    for (key, id, name, description) in PROJECT_PERMISSIONS {
        if !asked.is_empty() && !asked.iter().any(|a| a == key) {
            continue;
        }
        let have = browse
            && match *key {
                "WORK_ON_ISSUES" => user.is_some_and(|u| u.can_log_work),
                _ => true,
            };
        out.insert(
            (*key).to_owned(),
            json!({
                "id": id,
                "key": key,
                "name": name,
                "type": "PROJECT",
                "description": description,
                "havePermission": have,
            }),
        );
    }
    ok_json(200, json!({ "permissions": out }))
}
