//! Control API under `/_sim/` (no authentication): scenario, stats, pacing, faults,
//! state reads and "act as a Jira user" writes that go through the same code as REST
//! (and so fire webhooks).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::model::*;
use crate::pacing::{Faults, Pacing};
use crate::rest::render::*;
use crate::rest::{issues, json_body, work, Call};
use crate::server::Via;
use crate::util::{jerr, no_content, ok_json, Query};
use crate::Sim;

type S = Arc<Sim>;

pub(crate) fn routes(sim: &S) -> Router<S> {
    Router::new()
        .route("/scenario", get(scenario))
        .route("/stats", get(stats))
        .route("/stats/reset", post(stats_reset))
        .route("/reset", post(reset))
        .route("/pacing", get(get_pacing).put(put_pacing))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/issues", get(list_issues))
        .route("/issues/{key}", get(get_issue).delete(act_delete))
        .route("/issues/{key}/edit", post(act_edit))
        .route("/issues/{key}/transition", post(act_transition))
        .route("/issues/{key}/comments", post(act_comment))
        .route("/issues/{key}/worklogs", post(act_worklog_add))
        .route(
            "/issues/{key}/worklogs/{id}",
            put(act_worklog_update).delete(act_worklog_delete),
        )
        .route("/issues/{key}/times", put(set_times))
        .merge(sim.ext.control_router())
}

pub(crate) fn scenario_json(sim: &Sim) -> Value {
    let w = sim.world.lock();
    let sites: Vec<Value> = w
        .sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut v = json!({
                "slug": s.slug,
                "name": s.name,
                "url": sim.site_url(&w, i),
                "site_url": format!("{}/site/{}", sim.base_url, s.slug),
            });
            if w.flavor == Flavor::Cloud {
                v["cloud_id"] = json!(s.cloud_id);
                v["oauth_api_url"] = json!(format!("{}/ex/jira/{}", sim.base_url, s.cloud_id));
            }
            v
        })
        .collect();
    let projects: Vec<Value> = w
        .projects
        .iter()
        .map(|p| {
            json!({
                "id": p.id.to_string(),
                "key": p.key,
                "name": p.name,
                "site": w.sites.get(p.site).map(|s| s.slug.clone()),
                "style": match p.style { Style::TeamManaged => "team-managed", Style::CompanyManaged => "company-managed" },
                "workflow": match p.workflow { WorkflowKind::Open => "open (any status to any status)", WorkflowKind::Strict => "To Do -> In Progress -> In Review -> Done (with back edges, Done -> To Do)" },
                "lead": p.lead,
                "hidden_from": p.hidden_from,
                "issue_types": p.issue_types.iter().filter_map(|t| w.issue_type(t)).map(|t| json!({"id": t.id, "name": t.name, "subtask": t.subtask, "hierarchyLevel": t.level})).collect::<Vec<_>>(),
                "issues": w.issues.values().filter(|i| i.project_id == p.id).count(),
            })
        })
        .collect();
    let users: Vec<Value> = w
        .users
        .iter()
        .map(|u| {
            json!({
                "account_id": u.account_id,
                "name": u.name,
                "key": u.key,
                "display_name": u.display_name,
                "email": u.email,
                "email_visible": u.email_visible,
                "time_zone": u.tz.name(),
                "api_token": u.api_token,
                "pat": u.pat,
                "password": u.password,
                "admin": u.admin,
                "can_log_work": u.can_log_work,
                "active": u.active,
            })
        })
        .collect();
    let fields: Vec<Value> = w
        .fields
        .iter()
        .map(|f| json!({"id": f.id, "name": f.name, "type": f.custom_type()}))
        .collect();
    let statuses: Vec<Value> = w
        .statuses
        .iter()
        .map(|s| json!({"id": s.id, "name": s.name, "category": s.category}))
        .collect();
    let flavor = match w.flavor {
        Flavor::Cloud => "cloud",
        Flavor::DataCenter => "dc",
    };
    let scenario = w.scenario.clone();
    drop(w);
    json!({
        "flavor": flavor,
        "scenario": scenario,
        "seed": sim.cfg.seed,
        "base_url": sim.base_url,
        "sites": sites,
        "projects": projects,
        "users": users,
        "fields": fields,
        "statuses": statuses,
        "transitions": issues::TRANSITIONS.iter().map(|(id, to)| json!({"id": id, "to": to})).collect::<Vec<_>>(),
        "oauth": sim.ext.scenario_json(),
    })
}

pub(crate) fn summary_text(sim: &Sim) -> String {
    let s = scenario_json(sim);
    let mut out = format!(
        "jira-sim ({}, scenario {}, seed {}) listening on {}\n",
        s["flavor"].as_str().unwrap_or(""),
        s["scenario"].as_str().unwrap_or(""),
        sim.cfg.seed,
        sim.base_url
    );
    for site in s["sites"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  site {:<8} {}  cloudId {}\n",
            site["slug"].as_str().unwrap_or(""),
            site["url"].as_str().unwrap_or(""),
            site["cloud_id"].as_str().unwrap_or("-")
        ));
    }
    for p in s["projects"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  project {:<5} {:<18} {:<16} {} issues\n",
            p["key"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or(""),
            p["style"].as_str().unwrap_or(""),
            p["issues"]
        ));
    }
    let dc = s["flavor"] == "dc";
    for u in s["users"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  user {:<6} {:<20} {:<18} {}\n",
            u["name"].as_str().unwrap_or(""),
            u["email"].as_str().unwrap_or(""),
            u["time_zone"].as_str().unwrap_or(""),
            if dc {
                format!("PAT {}", u["pat"].as_str().unwrap_or(""))
            } else {
                format!("API token {}", u["api_token"].as_str().unwrap_or(""))
            }
        ));
    }
    if let Some(cid) = s["oauth"]["client_id"].as_str() {
        out.push_str(&format!("  oauth client_id {cid}\n"));
    }
    out.push_str(&format!("  control API: {}/_sim/scenario\n", sim.base_url));
    out
}

async fn scenario(State(sim): State<S>) -> Response {
    ok_json(200, scenario_json(&sim))
}

pub(crate) fn stats_json(sim: &Sim) -> Value {
    let names: Vec<String> = sim
        .world
        .lock()
        .sites
        .iter()
        .map(|s| s.slug.clone())
        .collect();
    let mut v = sim.pacing.stats_json(&names);
    let ext = sim.ext.stats_json();
    v["oauth"] = ext["oauth"].clone();
    v["webhooks"] = ext["webhooks"].clone();
    v
}

async fn stats(State(sim): State<S>) -> Response {
    ok_json(200, stats_json(&sim))
}

async fn stats_reset(State(sim): State<S>) -> Response {
    sim.pacing.reset_stats();
    no_content()
}

async fn reset(State(sim): State<S>) -> Response {
    sim.reset();
    no_content()
}

async fn get_pacing(State(sim): State<S>) -> Response {
    ok_json(
        200,
        serde_json::to_value(sim.pacing.pacing()).unwrap_or(Value::Null),
    )
}

async fn put_pacing(State(sim): State<S>, body: Bytes) -> Response {
    match serde_json::from_slice::<Pacing>(&body) {
        Ok(p) => {
            sim.pacing.set_pacing(p.clone());
            ok_json(200, serde_json::to_value(p).unwrap_or(Value::Null))
        }
        Err(e) => jerr(400, &[&format!("Invalid pacing: {e}")], &[]),
    }
}

async fn get_faults(State(sim): State<S>) -> Response {
    ok_json(
        200,
        serde_json::to_value(sim.pacing.faults()).unwrap_or(Value::Null),
    )
}

async fn put_faults(State(sim): State<S>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            sim.pacing.set_faults(f.clone());
            ok_json(200, serde_json::to_value(f).unwrap_or(Value::Null))
        }
        Err(e) => jerr(400, &[&format!("Invalid faults: {e}")], &[]),
    }
}

/// A call acting as a scenario user (`as`: account id, username or e-mail; default the
/// first administrator). `api` 2 renders and accepts v2 (string) rich text.
fn act_call(
    sim: &Sim,
    who: Option<&str>,
    api: Option<u64>,
    site: usize,
    q: Query,
) -> Result<Call, Response> {
    let w = sim.world.lock();
    let user = match who {
        Some(who) => w.users.iter().find(|u| {
            u.account_id == who
                || u.name.eq_ignore_ascii_case(who)
                || u.email.eq_ignore_ascii_case(who)
        }),
        None => w.users.iter().find(|u| u.admin),
    };
    let Some(user) = user else {
        return Err(jerr(400, &["Unknown user in 'as'."], &[]));
    };
    let v3 = w.flavor == Flavor::Cloud && api != Some(2);
    let base = sim.site_url(&w, site);
    Ok(Call {
        site,
        flavor: w.flavor,
        v3,
        user: user.account_id.clone(),
        tz: user.tz,
        api: format!("{base}/rest/api/{}", if v3 { 3 } else { 2 }),
        base,
        q,
        via: Via::Direct,
    })
}

fn site_of_key(sim: &Sim, key: &str) -> usize {
    let w = sim.world.lock();
    (0..w.sites.len())
        .find(|s| w.find_issue(*s, key).is_some())
        .unwrap_or(0)
}

fn body_call(sim: &Sim, key: &str, body: &Bytes) -> Result<(Call, Value), Response> {
    let b = if body.is_empty() {
        json!({})
    } else {
        json_body(body)?
    };
    let call = act_call(
        sim,
        b.get("as").and_then(Value::as_str),
        b.get("api").and_then(Value::as_u64),
        site_of_key(sim, key),
        Query::default(),
    )?;
    Ok((call, b))
}

fn admin_call(sim: &Sim, site: usize, q: &Query) -> Result<Call, Response> {
    act_call(
        sim,
        q.get("as"),
        q.get("api").and_then(|a| a.parse().ok()),
        site,
        Query::default(),
    )
}

async fn list_issues(
    State(sim): State<S>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let project = q.get("project").map(str::to_uppercase);
    let w = sim.world.lock();
    let list: Vec<Value> = w
        .issues
        .values()
        .filter(|i| {
            project.as_ref().is_none_or(|p| {
                w.project(i.project_id)
                    .is_some_and(|pr| pr.key == *p || pr.id.to_string() == *p)
            })
        })
        .map(|i| {
            json!({
                "id": i.id.to_string(),
                "key": i.key,
                "project": w.project(i.project_id).map(|p| p.key.clone()),
                "issuetype": w.issue_type(&i.issuetype).map(|t| t.name.clone()),
                "summary": i.summary,
                "status": w.status(&i.status).map(|s| s.name.clone()),
                "statusCategory": w.status(&i.status).map(|s| s.category),
                "assignee": i.assignee,
                "reporter": i.reporter,
                "labels": i.labels,
                "parent": i.parent.and_then(|p| w.issues.get(&p)).map(|p| p.key.clone()),
                "created": i.created.to_rfc3339(),
                "updated": i.updated.to_rfc3339(),
                "properties": i.properties,
                "worklogs": w.worklogs.values().filter(|wl| wl.issue_id == i.id).count(),
                "comments": i.comments.len(),
                "remoteLinks": i.remote_links.len(),
            })
        })
        .collect();
    ok_json(200, Value::Array(list))
}

async fn get_issue(
    State(sim): State<S>,
    Path(key): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let site = site_of_key(&sim, &key);
    let call = match admin_call(&sim, site, &q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let w = sim.world.lock();
    let Some(id) = w.find_issue(site, &key) else {
        return crate::util::not_found_issue();
    };
    let Some(i) = w.issues.get(&id) else {
        return crate::util::not_found_issue();
    };
    let opts = IssueOpts {
        fields: FieldSel::parse(&["*all".to_string()], true, true),
        expand: vec!["changelog".into()],
        properties: vec!["*all".into()],
        fields_by_keys: false,
    };
    let mut v = issue_json(&w, &call, i, &opts);
    v["worklogs"] = Value::Array(
        w.worklogs
            .values()
            .filter(|wl| wl.issue_id == id)
            .map(|wl| worklog_json(&w, &call, wl, true))
            .collect(),
    );
    v["remoteLinks"] = Value::Array(
        i.remote_links
            .iter()
            .map(|l| {
                json!({"id": l.id, "globalId": l.global_id, "application": l.application, "relationship": l.relationship, "object": l.object})
            })
            .collect(),
    );
    ok_json(200, v)
}

async fn act_edit(State(sim): State<S>, Path(key): Path<String>, body: Bytes) -> Response {
    let (call, b) = match body_call(&sim, &key, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match issues::edit_issue(&sim, &call, &key, &b) {
        Ok(_) => no_content(),
        Err(r) => r,
    }
}

async fn act_transition(State(sim): State<S>, Path(key): Path<String>, body: Bytes) -> Response {
    let (call, mut b) = match body_call(&sim, &key, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    // `{"to": "Done"}`: pick the transition leading to that status (name or id).
    if let Some(to) = b.get("to").and_then(Value::as_str).map(str::to_string) {
        let w = sim.world.lock();
        let found = w
            .find_issue(call.site, &key)
            .and_then(|id| w.issues.get(&id))
            .and_then(|i| {
                let p = w.project(i.project_id)?;
                issues::available(p, &i.status)
                    .into_iter()
                    .find(|(_, _, target)| {
                        *target == to
                            || w.status(target)
                                .is_some_and(|s| s.name.eq_ignore_ascii_case(&to))
                    })
            });
        drop(w);
        match found {
            Some((tid, _, _)) => b["transition"] = json!({"id": tid}),
            None => {
                return jerr(
                    400,
                    &[&format!(
                        "No transition leads to '{to}' from the current status."
                    )],
                    &[],
                )
            }
        }
    }
    match issues::transition_issue(&sim, &call, &key, &b) {
        Ok(()) => no_content(),
        Err(r) => r,
    }
}

async fn act_comment(State(sim): State<S>, Path(key): Path<String>, body: Bytes) -> Response {
    let (call, b) = match body_call(&sim, &key, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match work::comment_add_impl(&sim, &call, &key, &b) {
        Ok(v) => ok_json(201, v),
        Err(r) => r,
    }
}

async fn act_worklog_add(State(sim): State<S>, Path(key): Path<String>, body: Bytes) -> Response {
    let (call, b) = match body_call(&sim, &key, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match work::worklog_add_impl(&sim, &call, &key, &b) {
        Ok(v) => ok_json(201, v),
        Err(r) => r,
    }
}

async fn act_worklog_update(
    State(sim): State<S>,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (call, b) = match body_call(&sim, &key, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match work::worklog_update_impl(&sim, &call, &key, &id, &b) {
        Ok(v) => ok_json(200, v),
        Err(r) => r,
    }
}

async fn act_worklog_delete(
    State(sim): State<S>,
    Path((key, id)): Path<(String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let call = match admin_call(&sim, site_of_key(&sim, &key), &q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match work::worklog_delete_impl(&sim, &call, &key, &id) {
        Ok(()) => no_content(),
        Err(r) => r,
    }
}

async fn act_delete(
    State(sim): State<S>,
    Path(key): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let call = match admin_call(&sim, site_of_key(&sim, &key), &q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match issues::delete_issue(&sim, &call, &key, q.bool("deleteSubtasks", true)) {
        Ok(()) => no_content(),
        Err(r) => r,
    }
}

/// `PUT /_sim/issues/{key}/times` `{"created": rfc3339, "updated": rfc3339}`: sets the
/// timestamps directly (for time-zone tests); fires nothing.
async fn set_times(State(sim): State<S>, Path(key): Path<String>, body: Bytes) -> Response {
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parse = |k: &str| -> Result<Option<DateTime<Utc>>, Response> {
        match b.get(k).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|_| {
                    jerr(
                        400,
                        &[&format!("'{k}' must be an RFC 3339 date-time.")],
                        &[],
                    )
                }),
        }
    };
    let (created, updated) = match (parse("created"), parse("updated")) {
        (Ok(c), Ok(u)) => (c, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let site = site_of_key(&sim, &key);
    let mut w = sim.world.lock();
    let Some(id) = w.find_issue(site, &key) else {
        return crate::util::not_found_issue();
    };
    if let Some(i) = w.issues.get_mut(&id) {
        if let Some(c) = created {
            i.created = c;
            i.indexed_at = i.indexed_at.min(c);
        }
        if let Some(u) = updated {
            i.updated = u;
        }
    }
    no_content()
}
