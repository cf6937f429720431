//! Comments and worklogs (with their sync feeds and entity properties).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Timelike, Utc};
use serde_json::{json, Value};

use super::fields::{self, Errors};
use super::issues::{check_property, hook_call, publish_issue_event};
use super::render::*;
use super::{find_visible, json_body, Call, S};
use crate::model::*;
use crate::pacing::BulkItems;
use crate::util::{jerr, no_content, ok_json, paging, parse_duration};
use crate::Sim;

// ------------------------------------------------------------------ events

fn child_event(
    sim: &Sim,
    w: &World,
    issue_id: u64,
    event: &str,
    key: &str,
    payload: Value,
    user: &str,
) -> Option<(Value, super::issues::jql_doc::DocSnap)> {
    let issue = w.issues.get(&issue_id)?;
    let site = w.site_of_issue(issue);
    if !sim.ext.listening(site) {
        return None;
    }
    let call = hook_call(sim, w, site, user);
    let mut body = json!({
        "timestamp": Utc::now().timestamp_millis(),
        "webhookEvent": event,
        "issue": issue_mini(w, &call, issue),
    });
    body[key] = payload;
    if event.starts_with("worklog") {
        if let Some(o) = body.as_object_mut() {
            o.remove("issue");
        }
    }
    let snap = super::issues::jql_doc::DocSnap {
        doc: super::search::doc_of(w, issue),
        site,
        user: user.to_string(),
    };
    Some((body, snap))
}

fn worklog_event(
    sim: &Sim,
    w: &World,
    wl: &Worklog,
    event: &str,
    user: &str,
) -> Option<(Value, super::issues::jql_doc::DocSnap)> {
    let issue = w.issues.get(&wl.issue_id)?;
    let call = hook_call(sim, w, w.site_of_issue(issue), user);
    let payload = worklog_json(w, &call, wl, false);
    child_event(sim, w, wl.issue_id, event, "worklog", payload, user)
}

fn comment_event(
    sim: &Sim,
    w: &World,
    issue_id: u64,
    c: &Comment,
    event: &str,
    user: &str,
) -> Option<(Value, super::issues::jql_doc::DocSnap)> {
    let issue = w.issues.get(&issue_id)?;
    let call = hook_call(sim, w, w.site_of_issue(issue), user);
    let payload = comment_json(w, &call, issue, c);
    child_event(sim, w, issue_id, event, "comment", payload, user)
}

// ------------------------------------------------------------------ comments

/// Adds a comment; returns its id.
pub fn add_comment(w: &mut World, issue_id: u64, user: &str, body: RichText) -> u64 {
    let cid = w.next_comment_id;
    w.next_comment_id += 1;
    let now = Utc::now();
    if let Some(i) = w.issues.get_mut(&issue_id) {
        i.comments.push(Comment {
            id: cid,
            author: user.to_string(),
            update_author: user.to_string(),
            body,
            created: now,
            updated: now,
        });
        i.updated = now;
    }
    cid
}

fn comment_body(call: &Call, b: &Value) -> Result<RichText, Response> {
    let v = b.get("body").cloned().unwrap_or(Value::Null);
    if v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Err(jerr(
            400,
            &[],
            &[("comment", "Comment body can not be empty!")],
        ));
    }
    let mut errs = Errors::default();
    match fields::rich_in(call, "comment", &v, &mut errs) {
        Some(Some(t)) if errs.is_empty() => Ok(t),
        _ => Err(jerr(400, &[], &[("comment", "Comment body is not valid!")])),
    }
}

pub async fn comments(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let (start, max) = match paging(&call.q, 5000, 5000) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let issue = &w.issues[&id];
    let mut list: Vec<&Comment> = issue.comments.iter().collect();
    if call.q.get("orderBy") == Some("-created") {
        list.reverse();
    }
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(max)
        .map(|c| comment_json(&w, &call, issue, c))
        .collect();
    ok_json(
        200,
        json!({"startAt": start, "maxResults": max, "total": list.len(), "comments": page}),
    )
}

/// Adds a comment as `call.user` (REST and control API).
pub fn comment_add_impl(
    sim: &Sim,
    call: &Call,
    key: &str,
    body: &Value,
) -> Result<Value, Response> {
    let text = comment_body(call, body)?;
    let mut w = sim.world.lock();
    let id = find_visible(&w, call, key)?;
    let cid = add_comment(&mut w, id, &call.user, text);
    let issue = &w.issues[&id];
    let Some(c) = issue.comments.iter().find(|c| c.id == cid) else {
        return Err(crate::util::not_found_issue());
    };
    let v = comment_json(&w, call, issue, c);
    let ev = comment_event(sim, &w, id, c, "comment_created", &call.user);
    drop(w);
    publish_issue_event(sim, ev);
    Ok(v)
}

pub async fn comment_add(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match comment_add_impl(&sim, &call, &key, &b) {
        Ok(v) => ok_json(201, v),
        Err(r) => r,
    }
}

fn no_comment(id: &str) -> Response {
    jerr(
        404,
        &[&format!("Can not find a comment for the id: {id}.")],
        &[],
    )
}

pub async fn comment_get(
    State(sim): State<S>,
    call: Call,
    Path((key, cid)): Path<(String, String)>,
) -> Response {
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let issue = &w.issues[&id];
    match issue.comments.iter().find(|c| c.id.to_string() == cid) {
        Some(c) => ok_json(200, comment_json(&w, &call, issue, c)),
        None => no_comment(&cid),
    }
}

pub async fn comment_update(
    State(sim): State<S>,
    call: Call,
    Path((key, cid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = match comment_body(&call, &b) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let admin = w.user(&call.user).is_some_and(|u| u.admin);
    let Some(c) = w
        .issues
        .get_mut(&id)
        .and_then(|i| i.comments.iter_mut().find(|c| c.id.to_string() == cid))
    else {
        return no_comment(&cid);
    };
    if c.author != call.user && !admin {
        return jerr(
            403,
            &["You do not have the permission to edit this comment."],
            &[],
        );
    }
    c.body = text;
    c.update_author = call.user.clone();
    c.updated = Utc::now();
    let c = c.clone();
    let issue = &w.issues[&id];
    let v = comment_json(&w, &call, issue, &c);
    let ev = comment_event(&sim, &w, id, &c, "comment_updated", &call.user);
    drop(w);
    publish_issue_event(&sim, ev);
    ok_json(200, v)
}

pub async fn comment_delete(
    State(sim): State<S>,
    call: Call,
    Path((key, cid)): Path<(String, String)>,
) -> Response {
    let mut w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let admin = w.user(&call.user).is_some_and(|u| u.admin);
    let Some(c) = w.issues[&id]
        .comments
        .iter()
        .find(|c| c.id.to_string() == cid)
        .cloned()
    else {
        return no_comment(&cid);
    };
    if c.author != call.user && !admin {
        return jerr(
            403,
            &["You do not have the permission to delete this comment."],
            &[],
        );
    }
    let ev = comment_event(&sim, &w, id, &c, "comment_deleted", &call.user);
    if let Some(i) = w.issues.get_mut(&id) {
        i.comments.retain(|x| x.id != c.id);
    }
    drop(w);
    publish_issue_event(&sim, ev);
    no_content()
}

// ------------------------------------------------------------------ worklogs

/// Jira's `started` format: `yyyy-MM-dd'T'HH:mm:ss.SSSZ` (offset as +hhmm).
pub fn parse_started(s: &str) -> Option<DateTime<FixedOffset>> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 28
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && (b[23] == b'+' || b[23] == b'-')
        && [
            0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 24, 25, 26, 27,
        ]
        .iter()
        .all(|i| b[*i].is_ascii_digit());
    if !shape_ok {
        return None;
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").ok()
}

const STARTED_MSG: &str = "Could not parse the started date. Expected format: yyyy-MM-dd'T'HH:mm:ss.SSSZ (for example 2026-01-17T12:34:00.000+0000).";

struct WlInput {
    started: Option<DateTime<FixedOffset>>,
    seconds: Option<i64>,
    comment: Option<Option<RichText>>,
    properties: BTreeMap<String, Value>,
}

fn worklog_input(call: &Call, b: &Value, creating: bool) -> Result<WlInput, Response> {
    let mut errs = Errors::default();
    let started = match b.get("started") {
        // Jira logs work without `started` as started now (in the user's zone).
        None | Some(Value::Null) if creating => Some(
            Utc::now()
                .with_timezone(&call.tz)
                .fixed_offset()
                .with_nanosecond(0)
                .unwrap_or_else(|| Utc::now().fixed_offset()),
        ),
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_started(s) {
            Some(d) => Some(d),
            None => {
                errs.add("started", STARTED_MSG);
                None
            }
        },
        Some(_) => {
            errs.add("started", STARTED_MSG);
            None
        }
    };
    let secs = match (b.get("timeSpentSeconds"), b.get("timeSpent")) {
        (Some(v), _) if !v.is_null() => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse::<i64>().ok()))
        {
            Some(n) => Some(n),
            None => {
                errs.add("timeLogged", "Invalid time duration entered.");
                None
            }
        },
        (_, Some(Value::String(s))) => match parse_duration(s) {
            Some(n) => Some(n),
            None => {
                errs.add("timeLogged", "Invalid time duration entered.");
                None
            }
        },
        _ => {
            if creating {
                errs.add("timeLogged", "You must indicate the time spent working.");
            }
            None
        }
    };
    if let Some(n) = secs {
        if n <= 0 {
            errs.add("timeLogged", "You must indicate the time spent working.");
        } else if n < 60 {
            errs.add("timeLogged", "The time logged must be at least one minute.");
        }
    }
    let comment = match b.get("comment") {
        None => None,
        Some(v) => fields::rich_in(call, "comment", v, &mut errs),
    };
    let mut properties = BTreeMap::new();
    if let Some(ps) = b.get("properties") {
        match ps.as_array() {
            Some(arr) => {
                for p in arr {
                    let k = p.get("key").and_then(Value::as_str).unwrap_or("");
                    let v = p.get("value").cloned().unwrap_or(Value::Null);
                    match check_property(k, &v) {
                        Ok(()) => {
                            properties.insert(k.to_string(), v);
                        }
                        Err(m) => errs.messages.push(m),
                    }
                }
            }
            None => errs
                .messages
                .push("The properties must be an array.".into()),
        }
    }
    match call.q.get("adjustEstimate") {
        None | Some("auto" | "leave") => {}
        Some("new")
            if call
                .q
                .get("newEstimate")
                .is_some_and(|e| parse_duration(e).is_some()) => {}
        Some("new") => errs.add("newEstimate", "You must supply a valid new estimate."),
        Some("manual")
            if call
                .q
                .get("reduceBy")
                .or(call.q.get("increaseBy"))
                .is_some_and(|e| parse_duration(e).is_some()) => {}
        Some("manual") => errs.add(
            "reduceBy",
            "You must specify a valid amount to reduce the estimate by.",
        ),
        Some(other) => errs
            .messages
            .push(format!("Invalid value for adjustEstimate: '{other}'.")),
    }
    if !errs.is_empty() {
        return Err(errs.into_response(400));
    }
    Ok(WlInput {
        started,
        seconds: secs,
        comment,
        properties,
    })
}

fn with_props(call: &Call) -> bool {
    call.q.list("expand").iter().any(|e| e == "properties")
}

/// Adds a worklog as `call.user` (REST and control API).
pub fn worklog_add_impl(sim: &Sim, call: &Call, key: &str, b: &Value) -> Result<Value, Response> {
    let input = worklog_input(call, b, true)?;
    let mut w = sim.world.lock();
    let id = find_visible(&w, call, key)?;
    if !w.user(&call.user).is_some_and(|u| u.can_log_work) {
        return Err(jerr(
            400,
            &["You do not have the permission to associate a worklog to this issue."],
            &[],
        ));
    }
    let now = Utc::now();
    let wid = w.next_worklog_id;
    w.next_worklog_id += 1;
    let (Some(started), Some(secs)) = (input.started, input.seconds) else {
        return Err(jerr(400, &["Worklog is incomplete."], &[]));
    };
    let wl = Worklog {
        id: wid,
        issue_id: id,
        author: call.user.clone(),
        update_author: call.user.clone(),
        comment: input.comment.flatten(),
        started,
        time_spent_seconds: secs,
        created: now,
        updated: now,
        properties: input.properties,
    };
    w.worklogs.insert(wid, wl.clone());
    w.worklog_updated.insert(wid, now.timestamp_millis());
    if let Some(i) = w.issues.get_mut(&id) {
        i.updated = now;
    }
    let v = worklog_json(&w, call, &wl, with_props(call));
    let ev = worklog_event(sim, &w, &wl, "worklog_created", &call.user);
    drop(w);
    publish_issue_event(sim, ev);
    Ok(v)
}

pub async fn worklog_add(
    State(sim): State<S>,
    call: Call,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match worklog_add_impl(&sim, &call, &key, &b) {
        Ok(v) => ok_json(201, v),
        Err(r) => r,
    }
}

pub async fn worklogs(State(sim): State<S>, call: Call, Path(key): Path<String>) -> Response {
    let (start, max) = match paging(&call.q, 5000, 5000) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let after = call
        .q
        .get("startedAfter")
        .and_then(|s| s.parse::<i64>().ok());
    let before = call
        .q
        .get("startedBefore")
        .and_then(|s| s.parse::<i64>().ok());
    let w = sim.world.lock();
    let id = match find_visible(&w, &call, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let list: Vec<&Worklog> = w
        .worklogs
        .values()
        .filter(|wl| wl.issue_id == id)
        .filter(|wl| after.is_none_or(|a| wl.started.timestamp_millis() >= a))
        .filter(|wl| before.is_none_or(|b| wl.started.timestamp_millis() < b))
        .collect();
    let props = with_props(&call);
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(max)
        .map(|wl| worklog_json(&w, &call, wl, props))
        .collect();
    ok_json(
        200,
        json!({"startAt": start, "maxResults": max, "total": list.len(), "worklogs": page}),
    )
}

fn find_worklog(w: &World, call: &Call, key: &str, wid: &str) -> Result<(u64, u64), Response> {
    let id = find_visible(w, call, key)?;
    let wid_n: u64 = wid.parse().map_err(|_| no_worklog(wid))?;
    match w.worklogs.get(&wid_n) {
        Some(wl) if wl.issue_id == id => Ok((id, wid_n)),
        _ => Err(no_worklog(wid)),
    }
}

fn no_worklog(wid: &str) -> Response {
    jerr(
        404,
        &[&format!("Cannot find worklog with id: '{wid}'.")],
        &[],
    )
}

pub async fn worklog_get(
    State(sim): State<S>,
    call: Call,
    Path((key, wid)): Path<(String, String)>,
) -> Response {
    let w = sim.world.lock();
    match find_worklog(&w, &call, &key, &wid) {
        Ok((_, wid)) => ok_json(
            200,
            worklog_json(&w, &call, &w.worklogs[&wid], with_props(&call)),
        ),
        Err(r) => r,
    }
}

/// Updates a worklog as `call.user` (REST and control API).
pub fn worklog_update_impl(
    sim: &Sim,
    call: &Call,
    key: &str,
    wid: &str,
    b: &Value,
) -> Result<Value, Response> {
    let input = worklog_input(call, b, false)?;
    let mut w = sim.world.lock();
    let (id, wid) = find_worklog(&w, call, key, wid)?;
    let admin = w.user(&call.user).is_some_and(|u| u.admin);
    let now = Utc::now();
    let Some(wl) = w.worklogs.get_mut(&wid) else {
        return Err(no_worklog(&wid.to_string()));
    };
    if wl.author != call.user && !admin {
        return Err(jerr(
            403,
            &["You do not have the permission to edit this worklog."],
            &[],
        ));
    }
    if let Some(s) = input.started {
        wl.started = s;
    }
    if let Some(n) = input.seconds {
        wl.time_spent_seconds = n;
    }
    if let Some(c) = input.comment {
        wl.comment = c;
    }
    for (k, v) in input.properties {
        wl.properties.insert(k, v);
    }
    wl.update_author = call.user.clone();
    wl.updated = now;
    let wl = wl.clone();
    w.worklog_updated.insert(wid, now.timestamp_millis());
    if let Some(i) = w.issues.get_mut(&id) {
        i.updated = now;
    }
    let v = worklog_json(&w, call, &wl, with_props(call));
    let ev = worklog_event(sim, &w, &wl, "worklog_updated", &call.user);
    drop(w);
    publish_issue_event(sim, ev);
    Ok(v)
}

pub async fn worklog_update(
    State(sim): State<S>,
    call: Call,
    Path((key, wid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match worklog_update_impl(&sim, &call, &key, &wid, &b) {
        Ok(v) => ok_json(200, v),
        Err(r) => r,
    }
}

/// Deletes a worklog as `call.user` (REST and control API).
pub fn worklog_delete_impl(sim: &Sim, call: &Call, key: &str, wid: &str) -> Result<(), Response> {
    if let Some(a) = call.q.get("adjustEstimate") {
        if !matches!(a, "auto" | "leave" | "new" | "manual") {
            return Err(jerr(
                400,
                &[&format!("Invalid value for adjustEstimate: '{a}'.")],
                &[],
            ));
        }
    }
    let mut w = sim.world.lock();
    let (id, wid) = find_worklog(&w, call, key, wid)?;
    let admin = w.user(&call.user).is_some_and(|u| u.admin);
    let Some(wl) = w.worklogs.get(&wid).cloned() else {
        return Err(no_worklog(&wid.to_string()));
    };
    if wl.author != call.user && !admin {
        return Err(jerr(
            403,
            &["You do not have the permission to delete this worklog."],
            &[],
        ));
    }
    let ev = worklog_event(sim, &w, &wl, "worklog_deleted", &call.user);
    let now = Utc::now();
    w.worklogs.remove(&wid);
    w.worklog_updated.remove(&wid);
    w.deleted_worklogs.push((wid, now.timestamp_millis()));
    if let Some(i) = w.issues.get_mut(&id) {
        i.updated = now;
    }
    drop(w);
    publish_issue_event(sim, ev);
    Ok(())
}

pub async fn worklog_delete(
    State(sim): State<S>,
    call: Call,
    Path((key, wid)): Path<(String, String)>,
) -> Response {
    match worklog_delete_impl(&sim, &call, &key, &wid) {
        Ok(()) => no_content(),
        Err(r) => r,
    }
}

fn feed(sim: &Sim, call: &Call, entries: Vec<(u64, i64)>, path: &str, props: bool) -> Response {
    let since = match call.q.int("since", 0) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let delay = sim.pacing.pacing().worklog_feed_delay_ms.unwrap_or(60_000) as i64;
    let cutoff = Utc::now().timestamp_millis() - delay;
    let w = sim.world.lock();
    let mut list: Vec<(u64, i64)> = entries
        .into_iter()
        .filter(|(_, t)| *t >= since && *t <= cutoff)
        .collect();
    list.sort_by_key(|(id, t)| (*t, *id));
    let last_page = list.len() <= 1000;
    list.truncate(1000);
    let until = list.last().map(|(_, t)| *t).unwrap_or(since);
    let values: Vec<Value> = list
        .iter()
        .map(|(id, t)| {
            let p: Vec<Value> = if props {
                w.worklogs
                    .get(id)
                    .map(|wl| {
                        wl.properties
                            .iter()
                            .map(|(k, v)| json!({"key": k, "value": v}))
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                vec![]
            };
            json!({"worklogId": id, "updatedTime": t, "properties": p})
        })
        .collect();
    let mut v = json!({
        "values": values,
        "since": since,
        "until": until,
        "self": format!("{}/worklog/{}?since={}", call.api, path, since),
        "lastPage": last_page,
    });
    if !last_page {
        v["nextPage"] = json!(format!("{}/worklog/{}?since={}", call.api, path, until + 1));
    }
    ok_json(200, v)
}

pub async fn worklogs_updated(State(sim): State<S>, call: Call) -> Response {
    let entries: Vec<(u64, i64)> = {
        let w = sim.world.lock();
        w.worklog_updated
            .iter()
            .filter(|(id, _)| {
                w.worklogs.get(id).is_some_and(|wl| {
                    super::visible(&w, &call.user, wl.issue_id)
                        && w.issues
                            .get(&wl.issue_id)
                            .is_some_and(|i| w.site_of_issue(i) == call.site)
                })
            })
            .map(|(id, t)| (*id, *t))
            .collect()
    };
    feed(&sim, &call, entries, "updated", with_props(&call))
}

pub async fn worklogs_deleted(State(sim): State<S>, call: Call) -> Response {
    let entries = sim.world.lock().deleted_worklogs.clone();
    feed(&sim, &call, entries, "deleted", false)
}

pub async fn worklog_list(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(ids) = b.get("ids").and_then(Value::as_array) else {
        return jerr(400, &["Worklog ids must not be empty."], &[]);
    };
    if ids.is_empty() {
        return jerr(400, &["Worklog ids must not be empty."], &[]);
    }
    if ids.len() > 1000 {
        return jerr(400, &["The number of worklog ids can't exceed 1000."], &[]);
    }
    let w = sim.world.lock();
    let props = with_props(&call);
    let list: Vec<Value> = ids
        .iter()
        .filter_map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter_map(|id| w.worklogs.get(&id))
        .filter(|wl| super::visible(&w, &call.user, wl.issue_id))
        .map(|wl| worklog_json(&w, &call, wl, props))
        .collect();
    let mut r = ok_json(200, Value::Array(list));
    r.extensions_mut().insert(BulkItems(ids.len()));
    r
}

// ------------------------------------------------------------------ worklog properties

pub async fn worklog_property_keys(
    State(sim): State<S>,
    call: Call,
    Path((key, wid)): Path<(String, String)>,
) -> Response {
    let w = sim.world.lock();
    match find_worklog(&w, &call, &key, &wid) {
        Ok((id, wid)) => {
            let keys: Vec<Value> = w.worklogs[&wid]
                .properties
                .keys()
                .map(|k| json!({"self": format!("{}/issue/{}/worklog/{}/properties/{}", call.api, id, wid, k), "key": k}))
                .collect();
            ok_json(200, json!({"keys": keys}))
        }
        Err(r) => r,
    }
}

pub async fn worklog_property_get(
    State(sim): State<S>,
    call: Call,
    Path((key, wid, prop)): Path<(String, String, String)>,
) -> Response {
    let w = sim.world.lock();
    match find_worklog(&w, &call, &key, &wid) {
        Ok((_, wid)) => match w.worklogs[&wid].properties.get(&prop) {
            Some(v) => ok_json(200, json!({"key": prop, "value": v})),
            None => jerr(
                404,
                &[&format!("The property with key '{prop}' does not exist.")],
                &[],
            ),
        },
        Err(r) => r,
    }
}

pub async fn worklog_property_put(
    State(sim): State<S>,
    call: Call,
    Path((key, wid, prop)): Path<(String, String, String)>,
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
    match find_worklog(&w, &call, &key, &wid) {
        Ok((_, wid)) => {
            let Some(wl) = w.worklogs.get_mut(&wid) else {
                return no_worklog(&wid.to_string());
            };
            let existed = wl.properties.insert(prop, value).is_some();
            let now = Utc::now().timestamp_millis();
            w.worklog_updated.insert(wid, now);
            crate::util::code(if existed { 200 } else { 201 }).into_response()
        }
        Err(r) => r,
    }
}

pub async fn worklog_property_delete(
    State(sim): State<S>,
    call: Call,
    Path((key, wid, prop)): Path<(String, String, String)>,
) -> Response {
    let mut w = sim.world.lock();
    match find_worklog(&w, &call, &key, &wid) {
        Ok((_, wid)) => match w
            .worklogs
            .get_mut(&wid)
            .and_then(|wl| wl.properties.remove(&prop))
        {
            Some(_) => no_content(),
            None => jerr(
                404,
                &[&format!("The property with key '{prop}' does not exist.")],
                &[],
            ),
        },
        Err(r) => r,
    }
}
