//! Issues: create (single and bulk), get, edit, delete, changelog, properties,
//! transitions and remote links.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::fields::{self, Changes, Errors};
use super::render::*;
use super::{find_visible, json_body, Call, S};
use crate::model::*;
use crate::pacing::BulkItems;
use crate::util::{jerr, no_content, ok_json, paging};
use crate::Sim;

// ------------------------------------------------------------------ events

/// Publishes an issue event after the world lock was released.
pub fn publish_issue_event(sim: &Sim, snapshot: Option<(Value, jql_doc::DocSnap)>) {
    if let Some((body, snap)) = snapshot.filter(|(b, _)| !b.is_null()) {
        let event = body
            .get("webhookEvent")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        sim.ext
            .publish(snap.site, &event, body, &|jql: &str| snap.matches(sim, jql));
    }
}

pub mod jql_doc {
    //! Snapshot of an issue for matching webhook JQL filters.
    use crate::jql;
    use crate::Sim;

    pub struct DocSnap {
        pub doc: jql::Doc,
        pub site: usize,
        pub user: String,
    }

    impl DocSnap {
        pub fn matches(&self, sim: &Sim, q: &str) -> bool {
            if q.trim().is_empty() {
                return true;
            }
            let w = sim.world.lock();
            // Webhook filters see every project of the site (evaluated as an administrator).
            let who = w
                .users
                .iter()
                .find(|u| u.admin)
                .map(|u| u.account_id.clone())
                .unwrap_or_else(|| self.user.clone());
            let cat = crate::rest::search::catalog(&w, self.site, &who);
            jql::compile(q, &cat).is_ok_and(|c| c.matches(&self.doc))
        }
    }
}

/// A v2-style call used to render webhook payloads (Jira sends v2 representations).
pub fn hook_call(sim: &Sim, w: &World, site: usize, user: &str) -> Call {
    let base = sim.site_url(w, site);
    Call {
        site,
        flavor: w.flavor,
        v3: false,
        user: user.to_string(),
        tz: chrono_tz::UTC,
        api: format!("{base}/rest/api/2"),
        base,
        q: Default::default(),
        via: crate::server::Via::Direct,
    }
}

/// Builds the body of an issue webhook event.
pub fn issue_event(
    sim: &Sim,
    w: &World,
    issue: &Issue,
    event: &str,
    type_name: &str,
    user: &str,
    history: Option<&History>,
) -> (Value, jql_doc::DocSnap) {
    let site = w.site_of_issue(issue);
    if !sim.ext.listening(site) {
        let snap = jql_doc::DocSnap {
            doc: Default::default(),
            site,
            user: user.to_string(),
        };
        return (Value::Null, snap);
    }
    let call = hook_call(sim, w, site, user);
    let opts = IssueOpts {
        fields: FieldSel::parse(&[], true, true),
        ..Default::default()
    };
    let mut body = json!({
        "timestamp": Utc::now().timestamp_millis(),
        "webhookEvent": event,
        "issue_event_type_name": type_name,
        "user": user_json(w, &call, user),
        "issue": issue_json(w, &call, issue, &opts),
    });
    if let Some(h) = history {
        body["changelog"] = json!({"id": h.id.to_string(), "items": h.items});
    }
    let snap = jql_doc::DocSnap {
        doc: crate::rest::search::doc_of(w, issue),
        site,
        user: user.to_string(),
    };
    (body, snap)
}

// ------------------------------------------------------------------ create

/// Creates one issue from an `IssueUpdateDetails` body. On success returns the new id.
pub fn create_one(w: &mut World, sim: &Sim, call: &Call, body: &Value) -> Result<u64, Errors> {
    let mut errs = Errors::default();
    let Some(obj) = body.as_object() else {
        errs.messages.push("Issue body must be an object.".into());
        return Err(errs);
    };
    let mut flds: Map<String, Value> = obj
        .get("fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let pref = flds.get("project").cloned().unwrap_or(Value::Null);
    let pkey = pref
        .get("id")
        .or_else(|| pref.get("key"))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .or_else(|| pref.as_str().map(str::to_string));
    let project = pkey
        .and_then(|k| w.project_by_key_or_id(call.site, &k))
        .filter(|p| w.can_browse(&call.user, p.id))
        .cloned();
    let Some(project) = project else {
        errs.add("project", "Specify a valid project ID or key");
        return Err(errs);
    };
    let tref = flds.get("issuetype").cloned().unwrap_or(Value::Null);
    if tref.is_null() {
        errs.add("issuetype", "Specify an issue type");
        return Err(errs);
    }
    let itype = tref
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| project.issue_types.iter().find(|t| *t == id))
        .or_else(|| {
            tref.get("name").and_then(Value::as_str).and_then(|n| {
                project.issue_types.iter().find(|t| {
                    w.issue_type(t)
                        .is_some_and(|x| x.name.eq_ignore_ascii_case(n))
                })
            })
        })
        .and_then(|id| w.issue_type(id))
        .cloned();
    let Some(itype) = itype else {
        errs.add("issuetype", "The issue type selected is invalid.");
        return Err(errs);
    };
    fields::merge_update(&mut flds, obj.get("update"), &[], &mut errs);
    let ch = fields::validate(w, call, &project, &itype, &flds, true, &mut errs);
    let props = parse_properties(obj.get("properties"), &mut errs);
    let transition = obj
        .get("transition")
        .and_then(|t| t.get("id"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        });
    if let Some(t) = &transition {
        if target_of(&project, "10000", t).is_none() {
            errs.messages
                .push(format!("Transition id '{t}' is not valid for this issue."));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let now = Utc::now();
    let id = w.next_issue_id;
    w.next_issue_id += 1;
    let Some(pidx) = w.projects.iter().position(|p| p.id == project.id) else {
        errs.add("project", "Specify a valid project ID or key");
        return Err(errs);
    };
    let num = w.projects[pidx].next_num;
    w.projects[pidx].next_num += 1;
    let mut custom = BTreeMap::new();
    for (k, v) in ch.custom {
        if let Some(v) = v {
            custom.insert(k, v);
        }
    }
    let lag = sim.pacing.index_lag_ms();
    let mut issue = Issue {
        id,
        key: format!("{}-{}", project.key, num),
        project_id: project.id,
        issuetype: itype.id.clone(),
        summary: ch.summary.unwrap_or_default(),
        description: ch.description.flatten(),
        status: "10000".into(),
        priority: ch.priority.unwrap_or_else(|| "3".into()),
        assignee: ch.assignee.flatten(),
        reporter: Some(ch.reporter.flatten().unwrap_or_else(|| call.user.clone())),
        creator: call.user.clone(),
        labels: ch.labels.unwrap_or_default(),
        parent: ch.parent.flatten(),
        duedate: ch.duedate.flatten(),
        custom,
        created: now,
        updated: now,
        status_changed: now,
        resolution_date: None,
        properties: props,
        comments: vec![],
        remote_links: vec![],
        changelog: vec![],
        indexed_at: i64::try_from(lag)
            .ok()
            .and_then(Duration::try_milliseconds)
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    };
    if let Some(t) = transition.and_then(|t| target_of(&project, "10000", &t)) {
        issue.status = t.to_string();
        if t == "10002" {
            issue.resolution_date = Some(now);
        }
    }
    w.issues.insert(id, issue);
    Ok(id)
}

fn parse_properties(v: Option<&Value>, errs: &mut Errors) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return out };
    let Some(arr) = v.as_array() else {
        errs.messages
            .push("The properties must be an array.".into());
        return out;
    };
    for p in arr {
        let key = p.get("key").and_then(Value::as_str).unwrap_or("");
        let value = p.get("value").cloned().unwrap_or(Value::Null);
        if let Err(m) = check_property(key, &value) {
            errs.messages.push(m);
            continue;
        }
        out.insert(key.to_string(), value);
    }
    out
}

pub fn check_property(key: &str, value: &Value) -> Result<(), String> {
    if key.is_empty() {
        return Err("The property key must not be empty.".into());
    }
    if key.chars().count() > 255 {
        return Err("The property key can't be longer than 255 characters.".into());
    }
    if value.is_null() {
        return Err("The property value must not be empty.".into());
    }
    if value.to_string().chars().count() > 32_768 {
        return Err("The property value can't be longer than 32768 characters.".into());
    }
    Ok(())
}

pub async fn create(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut w = sim.world.lock();
    match create_one(&mut w, &sim, &call, &body) {
        Ok(id) => {
            let Some(issue) = w.issues.get(&id) else {
                return jerr(500, &["Issue vanished."], &[]);
            };
            let mut v = json!({
                "id": id.to_string(),
                "key": issue.key,
                "self": format!("{}/issue/{}", call.api, id),
            });
            if body.get("transition").is_some() {
                v["transition"] =
                    json!({"status": 200, "errorCollection": {"errorMessages": [], "errors": {}}});
            }
            let ev = issue_event(
                &sim,
                &w,
                issue,
                "jira:issue_created",
                "issue_created",
                &call.user,
                None,
            );
            drop(w);
            publish_issue_event(&sim, Some(ev));
            ok_json(201, v)
        }
        Err(e) => e.into_response(400),
    }
}

pub async fn bulk_create(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(list) = body.get("issueUpdates").and_then(Value::as_array) else {
        return jerr(400, &["Issue updates list must not be empty."], &[]);
    };
    if list.is_empty() {
        return jerr(400, &["Issue updates list must not be empty."], &[]);
    }
    if list.len() > 50 {
        return jerr(
            400,
            &["Bulk create request exceeds the maximum number of issues. Max is 50."],
            &[],
        );
    }
    let mut created = vec![];
    let mut errors = vec![];
    let mut events = vec![];
    {
        let mut w = sim.world.lock();
        for (i, item) in list.iter().enumerate() {
            match create_one(&mut w, &sim, &call, item) {
                Ok(id) => {
                    if let Some(issue) = w.issues.get(&id) {
                        created.push(json!({
                            "id": id.to_string(),
                            "key": issue.key,
                            "self": format!("{}/issue/{}", call.api, id),
                        }));
                        events.push(issue_event(
                            &sim,
                            &w,
                            issue,
                            "jira:issue_created",
                            "issue_created",
                            &call.user,
                            None,
                        ));
                    }
                }
                Err(e) => errors.push(json!({
                    "status": 400,
                    "elementErrors": e.to_json(),
                    "failedElementNumber": i,
                })),
            }
        }
    }
    for ev in events {
        publish_issue_event(&sim, Some(ev));
    }
    let status = if created.is_empty() { 400 } else { 201 };
    let mut r = ok_json(status, json!({"issues": created, "errors": errors}));
    r.extensions_mut().insert(BulkItems(list.len()));
    r
}

// ------------------------------------------------------------------ read

pub fn issue_opts(call: &Call, default_all: bool) -> IssueOpts {
    let fields = call.q.list("fields");
    let fields = if fields.is_empty() && default_all {
        FieldSel::parse(&["*all".to_string()], true, true)
    } else {
        FieldSel::parse(&fields, default_all, default_all)
    };
    IssueOpts {
        fields,
        expand: call.q.list("expand"),
        properties: call.q.list("properties"),
        fields_by_keys: call.q.bool("fieldsByKeys", false),
    }
}

pub async fn get_issue(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(issue) = w.issues.get(&id) else {
        return crate::util::not_found_issue();
    };
    ok_json(200, issue_json(&w, &call, issue, &issue_opts(&call, true)))
}

pub async fn changelog(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    if let Some(r) = super::cloud_only(&call) {
        return r;
    }
    let (start, max) = match paging(&call.q, 100, 100) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(issue) = w.issues.get(&id) else {
        return crate::util::not_found_issue();
    };
    let total = issue.changelog.len();
    let values: Vec<Value> = issue
        .changelog
        .iter()
        .skip(start)
        .take(max)
        .map(|h| history_json(&w, &call, h))
        .collect();
    let is_last = start + values.len() >= total;
    let mut v = json!({
        "self": format!("{}/issue/{}/changelog?startAt={}&maxResults={}", call.api, key, start, max),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last {
        v["nextPage"] = json!(format!(
            "{}/issue/{}/changelog?startAt={}&maxResults={}",
            call.api,
            key,
            start + max,
            max
        ));
    }
    ok_json(200, v)
}

// ------------------------------------------------------------------ edit

fn item(
    field: &str,
    field_id: &str,
    from: Option<String>,
    from_s: Option<String>,
    to: Option<String>,
    to_s: Option<String>,
    custom: bool,
) -> ChangeItem {
    ChangeItem {
        field: field.to_string(),
        fieldtype: if custom {
            "custom".into()
        } else {
            "jira".into()
        },
        field_id: field_id.to_string(),
        from,
        from_string: from_s,
        to,
        to_string: to_s,
    }
}

fn rich_str(t: &Option<RichText>) -> Option<String> {
    t.as_ref().map(|t| match t {
        RichText::Adf(v) => crate::adf::to_plain(v),
        RichText::Plain(s) => s.clone(),
    })
}

fn cf_str(w: &World, f: &FieldDef, v: &Option<CfValue>) -> (Option<String>, Option<String>) {
    let Some(v) = v else { return (None, None) };
    let opt = |id: &str| {
        f.options()
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.value.clone())
    };
    match v {
        CfValue::Number(n) => (None, Some(n.to_string())),
        CfValue::Text(s) => (None, Some(s.clone())),
        CfValue::Option(id) => (Some(id.clone()), opt(id)),
        CfValue::Options(ids) => (
            Some(format!("[{}]", ids.join(", "))),
            Some(
                ids.iter()
                    .filter_map(|i| opt(i))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ),
        CfValue::User(a) => (Some(a.clone()), w.user(a).map(|u| u.display_name.clone())),
        CfValue::Date(d) => (Some(d.to_string()), Some(d.to_string())),
        CfValue::Cascade(p, c) => (
            Some(p.clone()),
            Some(format!(
                "{}{}",
                opt(p).unwrap_or_default(),
                c.as_ref()
                    .and_then(|c| {
                        f.options()
                            .iter()
                            .flat_map(|o| o.children.iter())
                            .find(|o| &o.id == c)
                            .map(|o| format!(" - {}", o.value))
                    })
                    .unwrap_or_default()
            )),
        ),
        CfValue::Issue(id) => (
            Some(id.to_string()),
            w.issues.get(id).map(|i| i.key.clone()),
        ),
    }
}

/// Applies validated changes; returns the change items for the changelog.
pub fn apply_changes(w: &mut World, id: u64, ch: Changes) -> Vec<ChangeItem> {
    let mut items = vec![];
    let Some(cur) = w.issues.get(&id).cloned() else {
        return items;
    };
    let uname = |w: &World, a: &Option<String>| {
        a.as_ref()
            .and_then(|a| w.user(a))
            .map(|u| u.display_name.clone())
    };
    let mut next = cur.clone();
    if let Some(s) = ch.summary {
        if s != cur.summary {
            items.push(item(
                "summary",
                "summary",
                None,
                Some(cur.summary.clone()),
                None,
                Some(s.clone()),
                false,
            ));
            next.summary = s;
        }
    }
    if let Some(d) = ch.description {
        if d != cur.description {
            items.push(item(
                "description",
                "description",
                None,
                rich_str(&cur.description),
                None,
                rich_str(&d),
                false,
            ));
            next.description = d;
        }
    }
    if let Some(p) = ch.priority {
        if p != cur.priority {
            let name = |id: &str| w.priority(id).map(|p| p.name.clone());
            items.push(item(
                "priority",
                "priority",
                Some(cur.priority.clone()),
                name(&cur.priority),
                Some(p.clone()),
                name(&p),
                false,
            ));
            next.priority = p;
        }
    }
    if let Some(a) = ch.assignee {
        if a != cur.assignee {
            items.push(item(
                "assignee",
                "assignee",
                cur.assignee.clone(),
                uname(w, &cur.assignee),
                a.clone(),
                uname(w, &a),
                false,
            ));
            next.assignee = a;
        }
    }
    if let Some(r) = ch.reporter {
        if r != cur.reporter {
            items.push(item(
                "reporter",
                "reporter",
                cur.reporter.clone(),
                uname(w, &cur.reporter),
                r.clone(),
                uname(w, &r),
                false,
            ));
            next.reporter = r;
        }
    }
    if let Some(l) = ch.labels {
        if l != cur.labels {
            items.push(item(
                "labels",
                "labels",
                None,
                Some(cur.labels.join(" ")),
                None,
                Some(l.join(" ")),
                false,
            ));
            next.labels = l;
        }
    }
    if let Some(d) = ch.duedate {
        if d != cur.duedate {
            items.push(item(
                "duedate",
                "duedate",
                cur.duedate.map(|d| d.to_string()),
                cur.duedate.map(|d| d.to_string()),
                d.map(|d| d.to_string()),
                d.map(|d| d.to_string()),
                false,
            ));
            next.duedate = d;
        }
    }
    if let Some(p) = ch.parent {
        if p != cur.parent {
            let key = |id: Option<u64>| id.and_then(|i| w.issues.get(&i)).map(|i| i.key.clone());
            items.push(item(
                "IssueParentAssociation",
                "parent",
                cur.parent.map(|x| x.to_string()),
                key(cur.parent),
                p.map(|x| x.to_string()),
                key(p),
                false,
            ));
            next.parent = p;
        }
    }
    for (k, v) in ch.custom {
        let old = cur.custom.get(&k).cloned();
        if old != v {
            if let Some(f) = w.field(&k) {
                let (fo, fs) = cf_str(w, f, &old);
                let (to, ts) = cf_str(w, f, &v);
                items.push(item(&f.name, &k, fo, fs, to, ts, true));
            }
            match v {
                Some(v) => {
                    next.custom.insert(k, v);
                }
                None => {
                    next.custom.remove(&k);
                }
            }
        }
    }
    if !items.is_empty() {
        next.updated = Utc::now();
    }
    w.issues.insert(id, next);
    items
}

/// Records a changelog entry on an issue.
pub fn record_history(
    w: &mut World,
    id: u64,
    user: &str,
    items: Vec<ChangeItem>,
) -> Option<History> {
    if items.is_empty() {
        return None;
    }
    let hid = w.next_history_id;
    w.next_history_id += 1;
    let h = History {
        id: hid,
        author: user.to_string(),
        created: Utc::now(),
        items,
    };
    if let Some(i) = w.issues.get_mut(&id) {
        i.changelog.push(h.clone());
    }
    Some(h)
}

/// Edits an issue (shared by the REST endpoint and the control API).
pub fn edit_issue(sim: &Sim, call: &Call, key: &str, body: &Value) -> Result<u64, Response> {
    let mut w = sim.world.lock();
    let id = find_visible(&w, call, key)?;
    let Some(cur) = w.issues.get(&id).cloned() else {
        return Err(crate::util::not_found_issue());
    };
    let mut errs = Errors::default();
    let mut flds: Map<String, Value> = body
        .get("fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    fields::merge_update(&mut flds, body.get("update"), &cur.labels, &mut errs);
    let (Some(project), Some(itype)) = (
        w.project(cur.project_id).cloned(),
        w.issue_type(&cur.issuetype).cloned(),
    ) else {
        return Err(crate::util::not_found_issue());
    };
    for k in ["issuetype", "status"] {
        if flds.contains_key(k) {
            flds.remove(k);
            errs.add(k, fields::not_on_screen(k));
        }
    }
    let ch = fields::validate(&w, call, &project, &itype, &flds, false, &mut errs);
    let comment_adds: Vec<Value> = body
        .get("update")
        .and_then(|u| u.get("comment"))
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .filter_map(|o| o.get("add").and_then(|a| a.get("body")).cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut comment_bodies = vec![];
    for b in &comment_adds {
        if let Some(Some(t)) = fields::rich_in(call, "comment", b, &mut errs) {
            comment_bodies.push(t);
        }
    }
    if !errs.is_empty() {
        return Err(errs.into_response(400));
    }
    let items = apply_changes(&mut w, id, ch);
    let hist = record_history(&mut w, id, &call.user, items);
    for b in comment_bodies {
        super::work::add_comment(&mut w, id, &call.user, b);
    }
    let ev = match (&hist, w.issues.get(&id)) {
        (Some(h), Some(issue)) => Some(issue_event(
            sim,
            &w,
            issue,
            "jira:issue_updated",
            if h.items.iter().any(|it| it.field_id == "assignee") {
                "issue_assigned"
            } else {
                "issue_updated"
            },
            &call.user,
            Some(h),
        )),
        _ => None,
    };
    drop(w);
    publish_issue_event(sim, ev);
    Ok(id)
}

pub async fn edit(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match edit_issue(&sim, &call, &key, &body) {
        Ok(id) => {
            if call.q.bool("returnIssue", false) {
                let w = sim.world.lock();
                match w.issues.get(&id) {
                    Some(i) => ok_json(200, issue_json(&w, &call, i, &issue_opts(&call, true))),
                    None => no_content(),
                }
            } else {
                no_content()
            }
        }
        Err(r) => r,
    }
}

/// Deletes an issue (and, when allowed, its sub-tasks).
pub fn delete_issue(
    sim: &Sim,
    call: &Call,
    key: &str,
    delete_subtasks: bool,
) -> Result<(), Response> {
    let mut w = sim.world.lock();
    let id = find_visible(&w, call, key)?;
    let children: Vec<u64> = w
        .issues
        .values()
        .filter(|c| c.parent == Some(id) && w.issue_type(&c.issuetype).is_some_and(|t| t.subtask))
        .map(|c| c.id)
        .collect();
    if !children.is_empty() && !delete_subtasks {
        return Err(jerr(
            400,
            &["The issue has subtasks. You must specify the 'deleteSubtasks' parameter to delete this issue and all its subtasks."],
            &[],
        ));
    }
    let mut events = vec![];
    for del in children.into_iter().chain(std::iter::once(id)) {
        if let Some(issue) = w.issues.get(&del) {
            events.push(issue_event(
                sim,
                &w,
                issue,
                "jira:issue_deleted",
                "issue_deleted",
                &call.user,
                None,
            ));
        }
        w.issues.remove(&del);
        let now = Utc::now().timestamp_millis();
        let gone: Vec<u64> = w
            .worklogs
            .values()
            .filter(|wl| wl.issue_id == del)
            .map(|wl| wl.id)
            .collect();
        for wid in gone {
            w.worklogs.remove(&wid);
            w.worklog_updated.remove(&wid);
            w.deleted_worklogs.push((wid, now));
        }
        // Children that are not sub-tasks lose their parent.
        for other in w.issues.values_mut() {
            if other.parent == Some(del) {
                other.parent = None;
            }
        }
    }
    drop(w);
    for ev in events {
        publish_issue_event(sim, Some(ev));
    }
    Ok(())
}

pub async fn delete(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    match delete_issue(&sim, &call, &key, call.q.bool("deleteSubtasks", false)) {
        Ok(()) => no_content(),
        Err(r) => r,
    }
}

// ------------------------------------------------------------------ properties

pub async fn property_keys(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let keys: Vec<Value> = w.issues[&id]
        .properties
        .keys()
        .map(|k| json!({"self": format!("{}/issue/{}/properties/{}", call.api, id, k), "key": k}))
        .collect();
    ok_json(200, json!({"keys": keys}))
}

pub async fn property_get(
    State(sim): State<S>,
    call: Call,
    Path((key, prop)): Path<(String, String)>,
) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match w.issues[&id].properties.get(&prop) {
        Some(v) => ok_json(200, json!({"key": prop, "value": v})),
        None => jerr(
            404,
            &[&format!("The property with key '{prop}' does not exist.")],
            &[],
        ),
    }
}

pub async fn property_put(
    State(sim): State<S>,
    call: Call,
    Path((key, prop)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let value = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(m) = check_property(&prop, &value) {
        return jerr(400, &[&m], &[]);
    }
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(issue) = w.issues.get_mut(&id) else {
        return crate::util::not_found_issue();
    };
    let existed = issue
        .properties
        .insert(prop.clone(), value.clone())
        .is_some();
    let ev = property_event(
        &sim,
        &w,
        id,
        "issue_property_set",
        &prop,
        Some(value),
        &call.user,
    );
    drop(w);
    publish_issue_event(&sim, ev);
    (crate::util::code(if existed { 200 } else { 201 })).into_response()
}

/// `issue_property_set` / `issue_property_deleted` event body.
fn property_event(
    sim: &Sim,
    w: &World,
    id: u64,
    event: &str,
    key: &str,
    value: Option<Value>,
    user: &str,
) -> Option<(Value, jql_doc::DocSnap)> {
    let issue = w.issues.get(&id)?;
    let site = w.site_of_issue(issue);
    if !sim.ext.listening(site) {
        return None;
    }
    let call = hook_call(sim, w, site, user);
    let mut property = json!({"key": key});
    if let Some(v) = value {
        property["value"] = v;
    }
    let body = json!({
        "timestamp": Utc::now().timestamp_millis(),
        "webhookEvent": event,
        "user": user_json(w, &call, user),
        "issue": issue_mini(w, &call, issue),
        "property": property,
    });
    let snap = jql_doc::DocSnap {
        doc: crate::rest::search::doc_of(w, issue),
        site,
        user: user.to_string(),
    };
    Some((body, snap))
}

pub async fn property_delete(
    State(sim): State<S>,
    call: Call,
    Path((key, prop)): Path<(String, String)>,
) -> Response {
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match w
        .issues
        .get_mut(&id)
        .and_then(|i| i.properties.remove(&prop))
    {
        Some(_) => {
            let ev = property_event(
                &sim,
                &w,
                id,
                "issue_property_deleted",
                &prop,
                None,
                &call.user,
            );
            drop(w);
            publish_issue_event(&sim, ev);
            no_content()
        }
        None => jerr(
            404,
            &[&format!("The property with key '{prop}' does not exist.")],
            &[],
        ),
    }
}

// ------------------------------------------------------------------ transitions

/// Transition id → target status id.
pub const TRANSITIONS: &[(&str, &str)] = &[
    ("11", "10000"),
    ("21", "3"),
    ("31", "10001"),
    ("41", "10002"),
];

/// Transitions available from `from` in the project's workflow: (id, name, target status).
pub fn available(project: &Project, from: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    match project.workflow {
        WorkflowKind::Open => vec![
            ("11", "To Do", "10000"),
            ("21", "In Progress", "3"),
            ("31", "In Review", "10001"),
            ("41", "Done", "10002"),
        ],
        WorkflowKind::Strict => match from {
            "10000" => vec![("21", "Start Progress", "3")],
            "3" => vec![
                ("11", "Stop Progress", "10000"),
                ("31", "Request Review", "10001"),
            ],
            "10001" => vec![("21", "Back to In Progress", "3"), ("41", "Done", "10002")],
            "10002" => vec![("11", "Reopen", "10000")],
            _ => vec![],
        },
    }
}

fn target_of(project: &Project, from: &str, tid: &str) -> Option<&'static str> {
    available(project, from)
        .into_iter()
        .find(|(id, _, _)| *id == tid)
        .map(|(_, _, to)| to)
}

pub async fn transitions(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let issue = &w.issues[&id];
    let Some(project) = w.project(issue.project_id) else {
        return crate::util::not_found_issue();
    };
    let with_fields = call
        .q
        .get("expand")
        .is_some_and(|e| e.contains("transitions.fields"));
    let only = call.q.get("transitionId");
    let list: Vec<Value> = available(project, &issue.status)
        .into_iter()
        .filter(|(tid, _, _)| only.is_none_or(|o| o == *tid))
        .filter_map(|(tid, name, to)| {
            let s = w.status(to)?;
            let mut v = json!({
                "id": tid,
                "name": name,
                "to": status_json(&call, s),
                "hasScreen": false,
                "isGlobal": project.workflow == WorkflowKind::Open,
                "isInitial": false,
                "isAvailable": true,
                "isConditional": false,
                "isLooped": false,
            });
            if with_fields {
                v["fields"] = json!({});
            }
            Some(v)
        })
        .collect();
    ok_json(200, json!({"expand": "transitions", "transitions": list}))
}

/// Performs a transition (shared with the control API).
pub fn transition_issue(sim: &Sim, call: &Call, key: &str, body: &Value) -> Result<(), Response> {
    let mut w = sim.world.lock();
    let id = find_visible(&w, call, key)?;
    let tid = body
        .get("transition")
        .and_then(|t| t.get("id"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        });
    let tname = body
        .get("transition")
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str);
    let Some(cur) = w.issues.get(&id).cloned() else {
        return Err(crate::util::not_found_issue());
    };
    let Some(project) = w.project(cur.project_id).cloned() else {
        return Err(crate::util::not_found_issue());
    };
    let avail = available(&project, &cur.status);
    let found = match (&tid, tname) {
        (Some(t), _) => avail.iter().find(|(id, _, _)| id == t),
        (None, Some(n)) => avail
            .iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(n)),
        (None, None) => return Err(jerr(400, &["Missing 'transition' identifier"], &[])),
    };
    let Some((_, _, to)) = found.copied() else {
        return Err(jerr(
            400,
            &[&format!(
                "Transition id '{}' is not valid for this issue.",
                tid.unwrap_or_else(|| tname.unwrap_or("").to_string())
            )],
            &[],
        ));
    };
    let mut errs = Errors::default();
    let comment = body
        .get("update")
        .and_then(|u| u.get("comment"))
        .and_then(Value::as_array)
        .and_then(|ops| {
            ops.iter()
                .find_map(|o| o.get("add").and_then(|a| a.get("body")).cloned())
        });
    let comment = comment.and_then(|b| fields::rich_in(call, "comment", &b, &mut errs).flatten());
    if let Some(f) = body.get("fields").and_then(Value::as_object) {
        for k in f.keys() {
            if k != "resolution" {
                errs.add(k, fields::not_on_screen(k));
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs.into_response(400));
    }
    let now = Utc::now();
    let name = |w: &World, s: &str| w.status(s).map(|x| x.name.clone());
    let mut items = vec![item(
        "status",
        "status",
        Some(cur.status.clone()),
        name(&w, &cur.status),
        Some(to.to_string()),
        name(&w, to),
        false,
    )];
    let was_done = cur.status == "10002";
    let now_done = to == "10002";
    if was_done != now_done {
        items.push(item(
            "resolution",
            "resolution",
            was_done.then(|| "10000".to_string()),
            was_done.then(|| "Done".to_string()),
            now_done.then(|| "10000".to_string()),
            now_done.then(|| "Done".to_string()),
            false,
        ));
    }
    if let Some(i) = w.issues.get_mut(&id) {
        let cat_changed = i.status != to;
        i.status = to.to_string();
        i.updated = now;
        if cat_changed {
            i.status_changed = now;
        }
        i.resolution_date = now_done.then_some(now);
    }
    let hist = record_history(&mut w, id, &call.user, items);
    if let Some(c) = comment {
        super::work::add_comment(&mut w, id, &call.user, c);
    }
    let ev = match (&hist, w.issues.get(&id)) {
        (Some(h), Some(issue)) => Some(issue_event(
            sim,
            &w,
            issue,
            "jira:issue_updated",
            "issue_generic",
            &call.user,
            Some(h),
        )),
        _ => None,
    };
    drop(w);
    publish_issue_event(sim, ev);
    Ok(())
}

pub async fn do_transition(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match transition_issue(&sim, &call, &key, &body) {
        Ok(()) => no_content(),
        Err(r) => r,
    }
}

// ------------------------------------------------------------------ remote links

fn link_json(call: &Call, issue_id: u64, l: &RemoteLink) -> Value {
    let mut v = json!({
        "id": l.id,
        "self": format!("{}/issue/{}/remotelink/{}", call.api, issue_id, l.id),
        "object": l.object,
    });
    if let Some(g) = &l.global_id {
        v["globalId"] = json!(g);
    }
    if let Some(a) = &l.application {
        v["application"] = a.clone();
    }
    if let Some(r) = &l.relationship {
        v["relationship"] = json!(r);
    }
    v
}

/// (globalId, application, relationship, object)
type LinkParts = (Option<String>, Option<Value>, Option<String>, Value);

fn parse_link(body: &Value) -> Result<LinkParts, Response> {
    let mut errs = Errors::default();
    let object = body.get("object").cloned().unwrap_or(Value::Null);
    if object
        .get("url")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        errs.add("url", "'url' is required.");
    }
    if object
        .get("title")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        errs.add("title", "'title' is required.");
    }
    let gid = body
        .get("globalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    if gid.as_ref().is_some_and(|g| g.chars().count() > 255) {
        errs.add(
            "globalId",
            "The global id can't be longer than 255 characters.",
        );
    }
    if !errs.is_empty() {
        return Err(errs.into_response(400));
    }
    Ok((
        gid,
        body.get("application").cloned(),
        body.get("relationship")
            .and_then(Value::as_str)
            .map(str::to_string),
        object,
    ))
}

pub async fn remote_links(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let links = &w.issues[&id].remote_links;
    if let Some(g) = call.q.get("globalId") {
        return match links.iter().find(|l| l.global_id.as_deref() == Some(g)) {
            Some(l) => ok_json(200, link_json(&call, id, l)),
            None => jerr(
                404,
                &[&format!("No remote link with global id '{g}' exists.")],
                &[],
            ),
        };
    }
    ok_json(
        200,
        Value::Array(links.iter().map(|l| link_json(&call, id, l)).collect()),
    )
}

pub async fn remote_link_upsert(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (gid, app, rel, object) = match parse_link(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let next_id = w.next_link_id;
    let Some(issue) = w.issues.get_mut(&id) else {
        return crate::util::not_found_issue();
    };
    if let Some(existing) = gid.as_ref().and_then(|g| {
        issue
            .remote_links
            .iter_mut()
            .find(|l| l.global_id.as_ref() == Some(g))
    }) {
        existing.application = app;
        existing.relationship = rel;
        existing.object = object;
        let lid = existing.id;
        return ok_json(
            200,
            json!({"id": lid, "self": format!("{}/issue/{}/remotelink/{}", call.api, id, lid)}),
        );
    }
    issue.remote_links.push(RemoteLink {
        id: next_id,
        global_id: gid,
        application: app,
        relationship: rel,
        object,
    });
    issue.updated = Utc::now();
    w.next_link_id += 1;
    ok_json(
        201,
        json!({"id": next_id, "self": format!("{}/issue/{}/remotelink/{}", call.api, id, next_id)}),
    )
}

pub async fn remote_link_get(
    State(sim): State<S>,
    call: Call,
    Path((key, lid)): Path<(String, String)>,
) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match w.issues[&id]
        .remote_links
        .iter()
        .find(|l| l.id.to_string() == lid)
    {
        Some(l) => ok_json(200, link_json(&call, id, l)),
        None => jerr(
            404,
            &[&format!(
                "No remote link with id '{lid}' exists on this issue."
            )],
            &[],
        ),
    }
}

pub async fn remote_link_put(
    State(sim): State<S>,
    call: Call,
    Path((key, lid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (gid, app, rel, object) = match parse_link(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(l) = w
        .issues
        .get_mut(&id)
        .and_then(|i| i.remote_links.iter_mut().find(|l| l.id.to_string() == lid))
    else {
        return jerr(
            404,
            &[&format!(
                "No remote link with id '{lid}' exists on this issue."
            )],
            &[],
        );
    };
    l.global_id = gid;
    l.application = app;
    l.relationship = rel;
    l.object = object;
    no_content()
}

pub async fn remote_link_delete(
    State(sim): State<S>,
    call: Call,
    Path((key, lid)): Path<(String, String)>,
) -> Response {
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(issue) = w.issues.get_mut(&id) else {
        return crate::util::not_found_issue();
    };
    let before = issue.remote_links.len();
    issue.remote_links.retain(|l| l.id.to_string() != lid);
    if issue.remote_links.len() == before {
        return jerr(
            404,
            &[&format!(
                "No remote link with id '{lid}' exists on this issue."
            )],
            &[],
        );
    }
    no_content()
}

pub async fn remote_link_delete_by_global(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
) -> Response {
    let Some(g) = call.q.get("globalId").map(str::to_string) else {
        return jerr(400, &["The globalId parameter is required."], &[]);
    };
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(issue) = w.issues.get_mut(&id) else {
        return crate::util::not_found_issue();
    };
    let before = issue.remote_links.len();
    issue
        .remote_links
        .retain(|l| l.global_id.as_deref() != Some(g.as_str()));
    if issue.remote_links.len() == before {
        return jerr(
            404,
            &[&format!("No remote link with global id '{g}' exists.")],
            &[],
        );
    }
    no_content()
}
