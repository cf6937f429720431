//! Searching: `/search/jql` (Cloud), legacy `/search` (410 on Cloud, paged on DC),
//! approximate count, bulk fetch and the issue picker.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};

use super::issues::issue_opts;
use super::render::*;
use super::{json_body, Call, S};
use crate::jql::{self, Catalog, Compiled, Doc};
use crate::model::*;
use crate::pacing::BulkItems;
use crate::util::{jerr, ok_json};

/// The JQL catalog of a site as `user` sees it.
pub fn catalog(w: &World, site: usize, user: &str) -> Catalog {
    let tz = w.user(user).map(|u| u.tz).unwrap_or(chrono_tz::UTC);
    let projects: Vec<&Project> = w
        .projects
        .iter()
        .filter(|p| p.site == site && !p.hidden_from.iter().any(|h| h == user))
        .collect();
    Catalog {
        current_user: user.to_string(),
        tz,
        now: Utc::now(),
        data_center: w.flavor == Flavor::DataCenter,
        projects: projects
            .iter()
            .map(|p| (p.id.to_string(), p.key.clone()))
            .collect(),
        statuses: w
            .statuses
            .iter()
            .map(|s| (s.id.clone(), s.name.clone(), s.category))
            .collect(),
        issue_types: w
            .issue_types
            .iter()
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect(),
        priorities: w
            .priorities
            .iter()
            .map(|p| (p.id.clone(), p.name.clone(), p.rank))
            .collect(),
        users: w
            .users
            .iter()
            .map(|u| (u.account_id.clone(), u.name.clone(), u.email.clone()))
            .collect(),
        issues: w
            .issues
            .values()
            .map(|i| (i.id.to_string(), i.key.clone()))
            .collect(),
    }
}

fn plain(t: &Option<RichText>) -> String {
    match t {
        Some(RichText::Adf(v)) => crate::adf::to_plain(v),
        Some(RichText::Plain(s)) => s.clone(),
        None => String::new(),
    }
}

/// An issue as the JQL evaluator sees it.
pub fn doc_of(w: &World, i: &Issue) -> Doc {
    let epic = w
        .epic_link_field()
        .and_then(|f| i.custom.get(&f.id))
        .and_then(|v| match v {
            CfValue::Issue(id) => Some(id.to_string()),
            _ => None,
        });
    Doc {
        id: i.id.to_string(),
        key: i.key.clone(),
        project_id: i.project_id.to_string(),
        status_id: i.status.clone(),
        category: w.status(&i.status).map(|s| s.category).unwrap_or(2),
        issuetype_id: i.issuetype.clone(),
        priority_id: i.priority.clone(),
        assignee: i.assignee.clone(),
        reporter: i.reporter.clone(),
        creator: Some(i.creator.clone()),
        summary: i.summary.clone(),
        description: plain(&i.description),
        comments: i
            .comments
            .iter()
            .map(|c| plain(&Some(c.body.clone())))
            .collect::<Vec<_>>()
            .join("\n"),
        labels: i.labels.clone(),
        parent_id: i.parent.map(|p| p.to_string()),
        epic_link_id: epic,
        created: i.created,
        updated: i.updated,
        remote_global_ids: i
            .remote_links
            .iter()
            .filter_map(|l| l.global_id.clone())
            .collect(),
    }
}

fn compile(w: &World, call: &Call, q: &str) -> Result<Compiled, Response> {
    let cat = catalog(w, call.site, &call.user);
    jql::compile(q, &cat).map_err(|e| jerr(400, &[&e.0], &[]))
}

/// Matching visible issue ids in result order. `reconcile` ids bypass the index lag.
fn run(w: &World, call: &Call, c: &Compiled, reconcile: &[u64]) -> Vec<u64> {
    let now = Utc::now();
    let mut docs: Vec<Doc> = w
        .issues
        .values()
        .filter(|i| w.site_of_issue(i) == call.site && w.can_browse(&call.user, i.project_id))
        .filter(|i| i.indexed_at <= now || reconcile.contains(&i.id))
        .map(|i| doc_of(w, i))
        .filter(|d| c.matches(d))
        .collect();
    c.sort(&mut docs);
    docs.iter().filter_map(|d| d.id.parse().ok()).collect()
}

#[derive(Default)]
struct JqlParams {
    jql: String,
    token: Option<String>,
    max: Option<i64>,
    fields: Vec<String>,
    expand: Vec<String>,
    properties: Vec<String>,
    fields_by_keys: bool,
    reconcile: Vec<u64>,
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .or_else(|| x.as_i64().map(|n| n.to_string()))
            })
            .flat_map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => vec![],
    }
}

fn encode_token(offset: usize, jql: &str) -> String {
    let payload = json!({"o": offset, "q": jql_hash(jql)}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
}

fn jql_hash(jql: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(jql.as_bytes())[..8])
}

fn decode_token(t: &str, jql: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    if v.get("q")?.as_str()? != jql_hash(jql) {
        return None;
    }
    v.get("o")?.as_u64().map(|o| o as usize)
}

fn search_jql_impl(sim: &S, call: &Call, p: JqlParams) -> Response {
    if p.properties.len() > 5 {
        return jerr(400, &["The number of properties can't exceed 5."], &[]);
    }
    if p.reconcile.len() > 50 {
        return jerr(
            400,
            &["The number of reconcileIssues can't exceed 50."],
            &[],
        );
    }
    let w = sim.world.lock();
    let c = match compile(&w, call, &p.jql) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.is_bounded() {
        return jerr(
            400,
            &["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."],
            &[],
        );
    }
    let offset = match &p.token {
        None => 0,
        Some(t) => match decode_token(t, &p.jql) {
            Some(o) => o,
            None => {
                return jerr(
                    400,
                    &["The provided next page token is invalid or expired."],
                    &[],
                )
            }
        },
    };
    let mut call = call.clone();
    call.q = Default::default();
    let mut opts = issue_opts(&call, false);
    opts.fields = FieldSel::parse(&p.fields, false, false);
    opts.expand = p.expand;
    opts.properties = p.properties;
    opts.fields_by_keys = p.fields_by_keys;
    let light = opts.fields.none()
        || (!opts.fields.all
            && !opts.fields.navigable
            && opts.fields.include.iter().all(|f| f == "id" || f == "key"));
    let cap = if light { 5000 } else { 100 };
    let max = p.max.unwrap_or(50);
    if max < 0 {
        return jerr(
            400,
            &["The 'maxResults' parameter must not be negative."],
            &[],
        );
    }
    // A page is never empty while issues remain (a zero page size would loop forever).
    let max = (max as usize).clamp(1, cap);
    let ids = run(&w, &call, &c, &p.reconcile);
    let page: Vec<Value> = ids
        .iter()
        .skip(offset)
        .take(max)
        .filter_map(|id| w.issues.get(id))
        .map(|i| issue_json(&w, &call, i, &opts))
        .collect();
    let end = offset + page.len();
    let is_last = end >= ids.len();
    let mut v = json!({"issues": page, "isLast": is_last});
    if !is_last {
        v["nextPageToken"] = json!(encode_token(end, &p.jql));
    }
    ok_json(200, v)
}

pub async fn search_jql(State(sim): State<S>, call: Call) -> Response {
    if call.flavor == Flavor::DataCenter {
        return jerr(404, &["null for uri: /rest/api/2/search/jql"], &[]);
    }
    let max = match call.q.get("maxResults") {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return jerr(400, &["The 'maxResults' parameter must be a number."], &[]),
        },
    };
    let reconcile: Vec<u64> = call
        .q
        .list("reconcileIssues")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let p = JqlParams {
        jql: call.q.get("jql").unwrap_or("").to_string(),
        token: call.q.get("nextPageToken").map(str::to_string),
        max,
        fields: call.q.list("fields"),
        expand: call.q.list("expand"),
        properties: call.q.list("properties"),
        fields_by_keys: call.q.bool("fieldsByKeys", false),
        reconcile,
    };
    search_jql_impl(&sim, &call, p)
}

pub async fn search_jql_post(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    if call.flavor == Flavor::DataCenter {
        return jerr(404, &["null for uri: /rest/api/2/search/jql"], &[]);
    }
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p = JqlParams {
        jql: b
            .get("jql")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        token: b
            .get("nextPageToken")
            .and_then(Value::as_str)
            .map(str::to_string),
        max: b.get("maxResults").and_then(Value::as_i64),
        fields: str_list(b.get("fields")),
        expand: str_list(b.get("expand")),
        properties: str_list(b.get("properties")),
        fields_by_keys: b
            .get("fieldsByKeys")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        reconcile: b
            .get("reconcileIssues")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
    };
    search_jql_impl(&sim, &call, p)
}

const REMOVED: &str = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046";

fn search_dc(
    sim: &S,
    call: &Call,
    jql: &str,
    start: i64,
    max: i64,
    fields: Vec<String>,
    expand: Vec<String>,
) -> Response {
    if start < 0 {
        return jerr(400, &["The 'startAt' parameter must not be negative."], &[]);
    }
    let max = max.clamp(0, 1000) as usize;
    let start = start as usize;
    let w = sim.world.lock();
    let c = match compile(&w, call, jql) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut call = call.clone();
    call.q = Default::default();
    let opts = IssueOpts {
        fields: if fields.is_empty() {
            FieldSel::parse(&["*navigable".to_string()], false, true)
        } else {
            FieldSel::parse(&fields, false, false)
        },
        expand,
        ..Default::default()
    };
    let ids = run(&w, &call, &c, &[]);
    let page: Vec<Value> = ids
        .iter()
        .skip(start)
        .take(max)
        .filter_map(|id| w.issues.get(id))
        .map(|i| issue_json(&w, &call, i, &opts))
        .collect();
    ok_json(
        200,
        json!({
            "expand": "schema,names",
            "startAt": start,
            "maxResults": max,
            "total": ids.len(),
            "issues": page,
        }),
    )
}

pub async fn search_old(State(sim): State<S>, call: Call) -> Response {
    if call.flavor == Flavor::Cloud {
        return jerr(410, &[REMOVED], &[]);
    }
    let start = match call.q.int("startAt", 0) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let max = match call.q.int("maxResults", 50) {
        Ok(v) => v,
        Err(r) => return r,
    };
    search_dc(
        &sim,
        &call,
        call.q.get("jql").unwrap_or(""),
        start,
        max,
        call.q.list("fields"),
        call.q.list("expand"),
    )
}

pub async fn search_old_post(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    if call.flavor == Flavor::Cloud {
        return jerr(410, &[REMOVED], &[]);
    }
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    search_dc(
        &sim,
        &call,
        b.get("jql").and_then(Value::as_str).unwrap_or(""),
        b.get("startAt").and_then(Value::as_i64).unwrap_or(0),
        b.get("maxResults").and_then(Value::as_i64).unwrap_or(50),
        str_list(b.get("fields")),
        str_list(b.get("expand")),
    )
}

pub async fn approximate_count(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    if call.flavor == Flavor::DataCenter {
        return jerr(404, &["null for uri"], &[]);
    }
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let q = b.get("jql").and_then(Value::as_str).unwrap_or("");
    let w = sim.world.lock();
    let c = match compile(&w, &call, q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.is_bounded() {
        return jerr(
            400,
            &["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."],
            &[],
        );
    }
    ok_json(200, json!({"count": run(&w, &call, &c, &[]).len()}))
}

pub async fn jql_parse(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    if let Some(r) = super::cloud_only(&call) {
        return r;
    }
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(qs) = b.get("queries").and_then(Value::as_array) else {
        return jerr(400, &["The 'queries' field is required."], &[]);
    };
    let w = sim.world.lock();
    let cat = catalog(&w, call.site, &call.user);
    let out: Vec<Value> = qs
        .iter()
        .map(|q| {
            let s = q.as_str().unwrap_or("");
            match jql::compile(s, &cat) {
                Ok(_) => json!({"query": s, "structure": {}}),
                Err(e) => json!({"query": s, "errors": [e.0]}),
            }
        })
        .collect();
    ok_json(200, json!({"queries": out}))
}

pub async fn bulk_fetch(State(sim): State<S>, call: Call, body: Bytes) -> Response {
    if call.flavor == Flavor::DataCenter {
        return jerr(404, &["null for uri: /rest/api/2/issue/bulkfetch"], &[]);
    }
    let b = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let keys = str_list(b.get("issueIdsOrKeys"));
    if keys.is_empty() {
        return jerr(400, &["issueIdsOrKeys must not be empty."], &[]);
    }
    if keys.len() > 100 {
        return jerr(
            400,
            &["The number of issueIdsOrKeys can't exceed 100."],
            &[],
        );
    }
    let props = str_list(b.get("properties"));
    if props.len() > 5 {
        return jerr(400, &["The number of properties can't exceed 5."], &[]);
    }
    let fields = str_list(b.get("fields"));
    let opts = IssueOpts {
        fields: if fields.is_empty() {
            FieldSel::parse(&["*navigable".to_string()], false, true)
        } else {
            FieldSel::parse(&fields, false, false)
        },
        expand: str_list(b.get("expand")),
        properties: props,
        fields_by_keys: b
            .get("fieldsByKeys")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let w = sim.world.lock();
    let mut ids: Vec<u64> = keys
        .iter()
        .filter_map(|k| w.find_issue(call.site, k))
        .filter(|id| super::visible(&w, &call.user, *id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let issues: Vec<Value> = ids
        .iter()
        .filter_map(|id| w.issues.get(id))
        .map(|i| issue_json(&w, &call, i, &opts))
        .collect();
    let mut r = ok_json(200, json!({"issues": issues, "issueErrors": []}));
    r.extensions_mut().insert(BulkItems(keys.len()));
    r
}

fn highlight(summary: &str, q: &str) -> String {
    if q.is_empty() {
        return summary.to_string();
    }
    let lower = summary.to_lowercase();
    let ql = q.to_lowercase();
    match lower.find(&ql) {
        Some(pos) if summary.is_char_boundary(pos) && summary.is_char_boundary(pos + q.len()) => {
            format!(
                "{}<b>{}</b>{}",
                &summary[..pos],
                &summary[pos..pos + q.len()],
                &summary[pos + q.len()..]
            )
        }
        _ => summary.to_string(),
    }
}

pub async fn picker(State(sim): State<S>, call: Call) -> Response {
    let query = call.q.get("query").unwrap_or("").to_string();
    let show_subtasks = call.q.bool("showSubTasks", true);
    let w = sim.world.lock();
    let base = match call.q.get("currentJQL").filter(|s| !s.trim().is_empty()) {
        Some(j) => match compile(&w, &call, j) {
            Ok(c) => Some(c),
            Err(r) => return r,
        },
        None => None,
    };
    let project = call.q.get("currentProjectId").map(str::to_string);
    let ql = query.to_lowercase();
    let mut hits: Vec<&Issue> = w
        .issues
        .values()
        .filter(|i| w.site_of_issue(i) == call.site && w.can_browse(&call.user, i.project_id))
        .filter(|i| {
            project
                .as_ref()
                .is_none_or(|p| *p == i.project_id.to_string())
        })
        .filter(|i| show_subtasks || !w.issue_type(&i.issuetype).is_some_and(|t| t.subtask))
        .filter(|i| base.as_ref().is_none_or(|c| c.matches(&doc_of(&w, i))))
        .filter(|i| {
            ql.is_empty()
                || i.summary.to_lowercase().contains(&ql)
                || i.key.to_lowercase().starts_with(&ql)
        })
        .collect();
    hits.sort_by_key(|i| std::cmp::Reverse(i.updated));
    let total = hits.len();
    let shown: Vec<Value> = hits
        .iter()
        .take(50)
        .map(|i| {
            json!({
                "id": i.id,
                "key": i.key,
                "keyHtml": i.key,
                "img": w.issue_type(&i.issuetype).map(|t| format!("/secure/viewavatar?size=medium&avatarId={}&avatarType=issuetype", t.avatar_id)),
                "summary": highlight(&i.summary, &query),
                "summaryText": i.summary,
            })
        })
        .collect();
    ok_json(
        200,
        json!({"sections": [
            {"label": "History Search", "sub": "Showing 0 of 0 matching issues", "id": "hs", "issues": []},
            {"label": "Current Search", "sub": format!("Showing {} of {} matching issues", shown.len(), total), "id": "cs", "issues": shown},
        ]}),
    )
}
