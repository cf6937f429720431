//! Acceptance: every endpoint the simulator serves answers like Jira's OpenAPI documents say.
//!
//! Each test starts a simulator with recording on, walks every REST endpoint with plain
//! HTTP (success paths and error paths: 400 validation, 401, 404, 410 on the removed
//! search), then validates the recording with `tests/conformance/validate_exchanges.py`
//! against the Cloud (or Data Center) document. It asserts that:
//! - every exchange conforms (status documented, body matches the operation's schema,
//!   error bodies in Jira's `{"errorMessages":[],"errors":{}}` shape);
//! - every step of the walk got the status Jira gives;
//! - the operations covered are all the operations the simulator routes, found by reading
//!   its router source, so a new endpoint without a walk fails here.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jira_sim::conformance::{map_routes, validate_adf, validate_exchanges};
use jira_sim::{Flavor, SimConfig};
use reqwest::Method;
use serde_json::{json, Value};

const CLOUD_EMAIL: &str = "alice@example.com";
const CLOUD_TOKEN: &str = "ATATT-alice-api-token";
const DC_PAT: &str = "PAT-alice-personal-access-token";

/// Reads the simulator's router source and lists `(METHOD, path)` of every Jira REST
/// route (control and OAuth-server routes are not Jira REST and are left out).
fn served_routes(flavor: Flavor) -> Vec<(String, String)> {
    let version = match flavor {
        Flavor::Cloud => "3",
        Flavor::DataCenter => "2",
    };
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        if file.ends_with("conformance.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            let args_start = at + ".route(".len();
            let args = balanced(&rest[args_start..]);
            rest = &rest[args_start + args.len()..];
            let Some(q1) = args.find('"') else { continue };
            let Some(q2) = args[q1 + 1..].find('"') else {
                continue;
            };
            let literal = &args[q1 + 1..q1 + 1 + q2];
            let before = args[..q1].trim_end();
            let path = if before.ends_with("p(") {
                format!("/rest/api/{version}{literal}")
            } else if literal.starts_with("/rest/") {
                literal.replace("{v}", version)
            } else {
                continue;
            };
            let handlers = &args[q1 + 1 + q2..];
            for method in ["get", "post", "put", "delete", "patch"] {
                let token = format!("{method}(");
                let mut from = 0;
                while let Some(i) = handlers[from..].find(&token) {
                    let pos = from + i;
                    let prev = handlers[..pos].chars().last();
                    if !prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        routes.insert((method.to_uppercase(), path.clone()));
                    }
                    from = pos + token.len();
                }
            }
        }
    }
    routes.into_iter().collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text up to (not including) the parenthesis closing an argument list.
fn balanced(s: &str) -> &str {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut prev = '\0';
    for (i, c) in s.char_indices() {
        if in_str {
            if c == '"' && prev != '\\' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '(' {
            depth += 1;
        } else if c == ')' {
            if depth == 0 {
                return &s[..i];
            }
            depth -= 1;
        }
        prev = c;
    }
    s
}

/// Plain HTTP walker that records unexpected statuses instead of stopping at the first.
struct Walker {
    http: reqwest::Client,
    base: String,
    api: String,
    flavor: Flavor,
    auth: String,
    failures: Vec<String>,
    steps: usize,
}

impl Walker {
    fn new(base: &str, flavor: Flavor) -> Self {
        let (api, auth) = match flavor {
            Flavor::Cloud => {
                use base64_like::encode;
                (
                    "/rest/api/3".to_string(),
                    format!("Basic {}", encode(&format!("{CLOUD_EMAIL}:{CLOUD_TOKEN}"))),
                )
            }
            Flavor::DataCenter => ("/rest/api/2".to_string(), format!("Bearer {DC_PAT}")),
        };
        Walker {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            api,
            flavor,
            auth,
            failures: Vec::new(),
            steps: 0,
        }
    }

    fn cloud(&self) -> bool {
        self.flavor == Flavor::Cloud
    }

    /// Sends a request to `path` (relative to the API root when it starts with `~`).
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
    ) -> (u16, Value) {
        let path = match path.strip_prefix('~') {
            Some(p) => format!("{}{}", self.api, p),
            None => path.to_string(),
        };
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.steps += 1;
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                (status, value)
            }
            Err(err) => {
                self.failures
                    .push(format!("{method} {path}: transport error {err}"));
                (0, Value::Null)
            }
        }
    }

    /// Authenticated call that must answer `want`; returns the body.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let auth = self.auth.clone();
        self.expect_as(method, path, body, want, Some(&auth)).await
    }

    async fn expect_as(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
        auth: Option<&str>,
    ) -> Value {
        let (status, value) = self.send(method.clone(), path, body, auth).await;
        if status != want {
            let mut shown = value.to_string();
            shown.truncate(300);
            self.failures.push(format!(
                "{method} {path}: expected {want}, got {status}: {shown}"
            ));
        }
        value
    }

    fn get(&self, v: &Value, pointer: &str) -> String {
        match v.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }

    fn rich(&self, text: &str) -> Value {
        if self.cloud() {
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": text}]}]})
        } else {
            json!(text)
        }
    }
}

/// Tiny standard base64 (the test avoids extra dependencies).
mod base64_like {
    pub fn encode(input: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes = input.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// Walks the REST surface shared by both flavors (paths relative to the API root).
async fn walk_common(w: &mut Walker) {
    use Method as M;
    let cloud = w.cloud();

    // Server info and identity.
    w.expect_as(M::GET, "~/serverInfo", None, 200, None).await;
    let me = w.expect(M::GET, "~/myself", None, 200).await;
    w.expect_as(M::GET, "~/myself", None, 401, None).await;
    let wrong = if cloud {
        format!(
            "Basic {}",
            base64_like::encode("alice@example.com:wrong-token")
        )
    } else {
        "Bearer not-a-valid-token".to_string()
    };
    w.expect_as(M::GET, "~/myself", None, 401, Some(&wrong))
        .await;

    // My permissions, plain and in the context of a project and an issue.
    w.expect(
        M::GET,
        "~/mypermissions?permissions=WORK_ON_ISSUES,BROWSE_PROJECTS",
        None,
        200,
    )
    .await;
    w.expect(
        M::GET,
        "~/mypermissions?permissions=WORK_ON_ISSUES&projectKey=OPS",
        None,
        200,
    )
    .await;
    w.expect(
        M::GET,
        "~/mypermissions?permissions=WORK_ON_ISSUES&issueKey=OPS-1",
        None,
        200,
    )
    .await;
    w.expect(
        M::GET,
        "~/mypermissions?permissions=WORK_ON_ISSUES&issueKey=NOPE-999",
        None,
        404,
    )
    .await;
    if cloud {
        w.expect(M::GET, "~/mypermissions", None, 400).await;
        w.expect(
            M::GET,
            "~/mypermissions?permissions=NO_SUCH_THING",
            None,
            400,
        )
        .await;
    } else {
        w.expect(M::GET, "~/mypermissions", None, 200).await;
    }

    // Projects.
    if cloud {
        w.expect(M::GET, "~/project/search?maxResults=1", None, 200)
            .await;
        w.expect_as(M::GET, "~/project/search", None, 401, None)
            .await;
    } else {
        // Data Center has no project search: the path is read as a project key.
        w.expect(M::GET, "~/project/search", None, 404).await;
    }
    w.expect(M::GET, "~/project", None, 200).await;
    let project = w.expect(M::GET, "~/project/OPS", None, 200).await;
    let project_id = w.get(&project, "/id");
    w.expect(M::GET, "~/project/NOPE", None, 404).await;
    w.expect(M::GET, "~/project/OPS/statuses", None, 200).await;
    w.expect(M::GET, "~/project/NOPE/statuses", None, 404).await;

    // Issue types and create metadata.
    let types = w.expect(M::GET, "~/issuetype", None, 200).await;
    let any_type = w.get(&types, "/0/id");
    if cloud {
        w.expect(
            M::GET,
            &format!("~/issuetype/project?projectId={project_id}"),
            None,
            200,
        )
        .await;
        w.expect(M::GET, "~/issuetype/project", None, 400).await;
    } else {
        w.expect(M::GET, "~/issuetype/project", None, 404).await;
    }
    w.expect(M::GET, &format!("~/issuetype/{any_type}"), None, 200)
        .await;
    w.expect(M::GET, "~/issuetype/999999", None, 404).await;
    let meta = w
        .expect(M::GET, "~/issue/createmeta/OPS/issuetypes", None, 200)
        .await;
    let list_key = if meta.get("issueTypes").is_some() {
        "issueTypes"
    } else {
        "values"
    };
    let task_type = meta
        .get(list_key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|t| t["name"] == "Task"))
        .and_then(|t| t["id"].as_str())
        .unwrap_or("")
        .to_string();
    assert!(
        !task_type.is_empty(),
        "no Task type in create metadata: {meta}"
    );
    w.expect(
        M::GET,
        &format!("~/issue/createmeta/OPS/issuetypes/{task_type}"),
        None,
        200,
    )
    .await;
    w.expect_as(M::GET, "~/issue/createmeta/OPS/issuetypes", None, 401, None)
        .await;
    // The global createmeta: deprecated on Cloud (CHANGE-1304) but still documented;
    // removed in Data Center 9.0, where the path then reads as an issue key.
    let legacy = "~/issue/createmeta?projectKeys=OPS&expand=projects.issuetypes.fields";
    w.expect(M::GET, legacy, None, if cloud { 200 } else { 404 })
        .await;

    // Fields, priorities, statuses.
    w.expect(M::GET, "~/field", None, 200).await;
    w.expect(M::GET, "~/priority", None, 200).await;
    if cloud {
        w.expect(M::GET, "~/priority/search", None, 200).await;
    } else {
        w.expect(M::GET, "~/priority/search", None, 404).await;
    }
    w.expect(M::GET, "~/priority/3", None, 200).await;
    w.expect(M::GET, "~/priority/99999", None, 404).await;
    let statuses = w.expect(M::GET, "~/status", None, 200).await;
    let status_id = w.get(&statuses, "/0/id");
    w.expect(M::GET, &format!("~/status/{status_id}"), None, 200)
        .await;
    w.expect(M::GET, "~/status/No%20Such%20Status", None, 404)
        .await;
    w.expect(M::GET, "~/statuscategory", None, 200).await;

    // Users.
    let user_ref = if cloud {
        format!("accountId={}", w.get(&me, "/accountId"))
    } else {
        format!("username={}", w.get(&me, "/name"))
    };
    let search_param = if cloud { "query" } else { "username" };
    w.expect(
        M::GET,
        &format!("~/user/search?{search_param}=alice"),
        None,
        200,
    )
    .await;
    w.expect(M::GET, "~/user/search", None, 400).await;
    w.expect(M::GET, &format!("~/user?{user_ref}"), None, 200)
        .await;
    let missing_user = if cloud {
        "accountId=000000:no-such-user"
    } else {
        "username=nosuchuser"
    };
    w.expect(M::GET, &format!("~/user?{missing_user}"), None, 404)
        .await;
    w.expect(M::GET, "~/user/assignable/search?project=OPS", None, 200)
        .await;
    w.expect(M::GET, "~/user/assignable/search", None, 400)
        .await;

    // Create: single, invalid, bulk.
    let fields = |summary: &str, w: &Walker| {
        json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"id": task_type},
                          "summary": summary, "description": w.rich("Walked by the conformance suite.")}})
    };
    let created = w
        .expect(M::POST, "~/issue", Some(fields("Conformance one", w)), 201)
        .await;
    let key = w.get(&created, "/key");
    assert!(!key.is_empty(), "create answered no key: {created}");
    w.expect(
        M::POST,
        "~/issue",
        Some(json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"id": task_type}}})),
        400,
    )
    .await;
    w.expect(M::POST, "~/issue", Some(fields(&"x".repeat(256), w)), 400)
        .await;
    w.expect(M::POST, "~/issue", None, 400).await;
    let bulk = w
        .expect(
            M::POST,
            "~/issue/bulk",
            Some(json!({"issueUpdates": [fields("Conformance bulk 1", w), fields("Conformance bulk 2", w)]})),
            201,
        )
        .await;
    let key2 = w.get(&bulk, "/issues/0/key");
    let partial = w
        .expect(
            M::POST,
            "~/issue/bulk",
            Some(json!({"issueUpdates": [fields("Conformance bulk 3", w),
                {"fields": {"project": {"key": "OPS"}, "issuetype": {"id": task_type}}}]})),
            201,
        )
        .await;
    assert_eq!(
        partial["errors"].as_array().map(Vec::len),
        Some(1),
        "bulk create with one bad element must report it: {partial}"
    );
    w.expect(
        M::POST,
        "~/issue/bulk",
        Some(json!({"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}]})),
        400,
    )
    .await;

    // Read, picker, edit.
    if cloud {
        w.expect(
            M::POST,
            "~/issue/bulkfetch",
            Some(json!({"issueIdsOrKeys": [key, key2], "fields": ["summary", "status"]})),
            200,
        )
        .await;
        w.expect(
            M::POST,
            "~/issue/bulkfetch",
            Some(json!({"fields": ["summary"]})),
            400,
        )
        .await;
    }
    w.expect(M::GET, "~/issue/picker?query=Conformance", None, 200)
        .await;
    w.expect(M::GET, &format!("~/issue/{key}"), None, 200).await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}?fields=summary,status"),
        None,
        200,
    )
    .await;
    w.expect(M::GET, "~/issue/OPS-999999", None, 404).await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}"),
        Some(json!({"fields": {"summary": "Conformance one, edited"}})),
        204,
    )
    .await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}"),
        Some(json!({"fields": {"summary": ""}})),
        400,
    )
    .await;
    w.expect(
        M::PUT,
        "~/issue/OPS-999999",
        Some(json!({"fields": {"summary": "x"}})),
        404,
    )
    .await;
    if cloud {
        w.expect(M::GET, &format!("~/issue/{key}/changelog"), None, 200)
            .await;
        w.expect(M::GET, "~/issue/OPS-999999/changelog", None, 404)
            .await;
    }

    // Issue entity properties.
    w.expect(M::GET, &format!("~/issue/{key}/properties"), None, 200)
        .await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}/properties/sync.state"),
        Some(json!({"rev": 1})),
        201,
    )
    .await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}/properties/sync.state"),
        Some(json!({"rev": 2})),
        200,
    )
    .await;
    let prop = w
        .expect(
            M::GET,
            &format!("~/issue/{key}/properties/sync.state"),
            None,
            200,
        )
        .await;
    assert_eq!(prop["value"], json!({"rev": 2}), "property value: {prop}");
    w.expect(
        M::GET,
        &format!("~/issue/{key}/properties/no.such"),
        None,
        404,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/properties/sync.state"),
        None,
        204,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/properties/sync.state"),
        None,
        404,
    )
    .await;

    // Transitions.
    let transitions = w
        .expect(M::GET, &format!("~/issue/{key}/transitions"), None, 200)
        .await;
    let transition = w.get(&transitions, "/transitions/0/id");
    w.expect(
        M::POST,
        &format!("~/issue/{key}/transitions"),
        Some(json!({"transition": {"id": transition}})),
        204,
    )
    .await;
    w.expect(
        M::POST,
        &format!("~/issue/{key}/transitions"),
        Some(json!({"transition": {"id": "999999"}})),
        400,
    )
    .await;
    w.expect(M::GET, "~/issue/OPS-999999/transitions", None, 404)
        .await;

    // Remote links, upserted by globalId.
    let link = json!({"globalId": "conformance:1", "object":
        {"url": "https://example.com/1", "title": "One"}});
    let made = w
        .expect(
            M::POST,
            &format!("~/issue/{key}/remotelink"),
            Some(link.clone()),
            201,
        )
        .await;
    let link_id = w.get(&made, "/id");
    w.expect(
        M::POST,
        &format!("~/issue/{key}/remotelink"),
        Some(link),
        200,
    )
    .await;
    w.expect(
        M::POST,
        &format!("~/issue/{key}/remotelink"),
        Some(json!({"globalId": "x"})),
        400,
    )
    .await;
    w.expect(M::GET, &format!("~/issue/{key}/remotelink"), None, 200)
        .await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}/remotelink/{link_id}"),
        None,
        200,
    )
    .await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}/remotelink/999999"),
        None,
        404,
    )
    .await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}/remotelink/{link_id}"),
        Some(json!({"object": {"url": "https://example.com/1b", "title": "One b"}})),
        204,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/remotelink/{link_id}"),
        None,
        204,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/remotelink/{link_id}"),
        None,
        404,
    )
    .await;
    w.expect(
        M::POST,
        &format!("~/issue/{key}/remotelink"),
        Some(json!({"globalId": "conformance:2", "object": {"url": "https://example.com/2", "title": "Two"}})),
        201,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/remotelink?globalId=conformance%3A2"),
        None,
        204,
    )
    .await;

    // Comments.
    w.expect(M::GET, &format!("~/issue/{key}/comment"), None, 200)
        .await;
    let comment = w
        .expect(
            M::POST,
            &format!("~/issue/{key}/comment"),
            Some(json!({"body": w.rich("A comment.")})),
            201,
        )
        .await;
    let comment_id = w.get(&comment, "/id");
    w.expect(
        M::POST,
        &format!("~/issue/{key}/comment"),
        Some(json!({})),
        400,
    )
    .await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}/comment/{comment_id}"),
        None,
        200,
    )
    .await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}/comment/{comment_id}"),
        Some(json!({"body": w.rich("An edited comment.")})),
        200,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/comment/{comment_id}"),
        None,
        204,
    )
    .await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}/comment/{comment_id}"),
        None,
        404,
    )
    .await;
    w.expect(M::GET, "~/issue/OPS-999999/comment", None, 404)
        .await;

    // Worklogs.
    w.expect(M::GET, &format!("~/issue/{key}/worklog"), None, 200)
        .await;
    let worklog = w
        .expect(
            M::POST,
            &format!("~/issue/{key}/worklog"),
            Some(
                json!({"timeSpentSeconds": 3600, "started": "2026-11-20T09:30:00.000+0000",
                        "comment": w.rich("Work.")}),
            ),
            201,
        )
        .await;
    let worklog_id = w.get(&worklog, "/id");
    w.expect(
        M::POST,
        &format!("~/issue/{key}/worklog"),
        Some(json!({"timeSpentSeconds": 3600, "started": "2026-11-20 09:30"})),
        400,
    )
    .await;
    w.expect(
        M::POST,
        &format!("~/issue/{key}/worklog"),
        Some(json!({"started": "2026-11-20T09:30:00.000+0000"})),
        400,
    )
    .await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}/worklog/{worklog_id}"),
        None,
        200,
    )
    .await;
    w.expect(
        M::PUT,
        &format!("~/issue/{key}/worklog/{worklog_id}"),
        Some(json!({"timeSpentSeconds": 7200})),
        200,
    )
    .await;
    if cloud {
        let wp = format!("~/issue/{key}/worklog/{worklog_id}/properties");
        w.expect(M::GET, &wp, None, 200).await;
        w.expect(
            M::PUT,
            &format!("{wp}/sync.state"),
            Some(json!({"rev": 1})),
            201,
        )
        .await;
        w.expect(M::GET, &format!("{wp}/sync.state"), None, 200)
            .await;
        w.expect(M::GET, &format!("{wp}/no.such"), None, 404).await;
        w.expect(M::DELETE, &format!("{wp}/sync.state"), None, 204)
            .await;
    }
    w.expect(M::GET, "~/worklog/updated?since=0", None, 200)
        .await;
    w.expect(
        M::POST,
        "~/worklog/list",
        Some(json!({"ids": [worklog_id.parse::<u64>().unwrap_or(0)]})),
        200,
    )
    .await;
    w.expect(
        M::POST,
        "~/worklog/list",
        Some(json!({"ids": (1..=1001).collect::<Vec<u64>>()})),
        400,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("~/issue/{key}/worklog/{worklog_id}"),
        None,
        204,
    )
    .await;
    w.expect(
        M::GET,
        &format!("~/issue/{key}/worklog/{worklog_id}"),
        None,
        404,
    )
    .await;
    w.expect(M::GET, "~/worklog/deleted?since=0", None, 200)
        .await;

    // Search.
    if cloud {
        w.expect(M::GET, "~/search?jql=project%3DOPS", None, 410)
            .await;
        w.expect(
            M::POST,
            "~/search",
            Some(json!({"jql": "project = OPS"})),
            410,
        )
        .await;
        let page = w
            .expect(
                M::GET,
                "~/search/jql?jql=project%3DOPS&maxResults=2&fields=summary",
                None,
                200,
            )
            .await;
        if let Some(token) = page.get("nextPageToken").and_then(Value::as_str) {
            let token = urlencode(token);
            w.expect(
                M::GET,
                &format!("~/search/jql?jql=project%3DOPS&maxResults=2&nextPageToken={token}"),
                None,
                200,
            )
            .await;
        }
        w.expect(M::GET, "~/search/jql?jql=project%20%3D%3D%3D", None, 400)
            .await;
        w.expect(
            M::POST,
            "~/search/jql",
            Some(json!({"jql": "project = OPS ORDER BY key", "maxResults": 5, "fields": ["summary", "status"]})),
            200,
        )
        .await;
        w.expect(
            M::POST,
            "~/search/jql",
            Some(json!({"jql": "nosuchfield = 1"})),
            400,
        )
        .await;
        w.expect(
            M::POST,
            "~/search/approximate-count",
            Some(json!({"jql": "project = OPS"})),
            200,
        )
        .await;
        w.expect(
            M::POST,
            "~/search/approximate-count",
            Some(json!({"jql": "project ="})),
            400,
        )
        .await;
        w.expect(
            M::POST,
            "~/jql/parse?validation=strict",
            Some(json!({"queries": ["project = OPS", "summary ~ \"x\" ORDER BY key"]})),
            200,
        )
        .await;
        w.expect(
            M::POST,
            "~/jql/parse?validation=strict",
            Some(json!({})),
            400,
        )
        .await;
    } else {
        w.expect(
            M::GET,
            "~/search?jql=project%3DOPS&startAt=0&maxResults=2&fields=summary",
            None,
            200,
        )
        .await;
        w.expect(M::GET, "~/search?jql=project%20%3D%3D%3D", None, 400)
            .await;
        w.expect(
            M::POST,
            "~/search",
            Some(json!({"jql": "project = OPS", "startAt": 1, "maxResults": 5, "fields": ["summary"]})),
            200,
        )
        .await;
        w.expect(
            M::POST,
            "~/search",
            Some(json!({"jql": "nosuchfield = 1"})),
            400,
        )
        .await;
    }

    // Admin webhooks (Jira's webhooks REST API, outside the platform documents).
    let hook = w
        .expect(
            M::POST,
            "/rest/webhooks/1.0/webhook",
            Some(
                json!({"name": "conformance", "url": "https://example.com/admin-hook",
                        "events": ["jira:issue_created", "jira:issue_updated"],
                        "filters": {"issue-related-events-section": "project = OPS"},
                        "excludeBody": false}),
            ),
            201,
        )
        .await;
    let hook_id = hook["self"]
        .as_str()
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or("0")
        .to_string();
    w.expect(
        M::POST,
        "/rest/webhooks/1.0/webhook",
        Some(json!({"name": "no url", "events": ["jira:issue_created"]})),
        400,
    )
    .await;
    w.expect(M::GET, "/rest/webhooks/1.0/webhook", None, 200)
        .await;
    w.expect(
        M::GET,
        &format!("/rest/webhooks/1.0/webhook/{hook_id}"),
        None,
        200,
    )
    .await;
    w.expect(
        M::PUT,
        &format!("/rest/webhooks/1.0/webhook/{hook_id}"),
        Some(json!({"name": "conformance renamed"})),
        200,
    )
    .await;
    w.expect(
        M::DELETE,
        &format!("/rest/webhooks/1.0/webhook/{hook_id}"),
        None,
        204,
    )
    .await;
    w.expect(
        M::GET,
        &format!("/rest/webhooks/1.0/webhook/{hook_id}"),
        None,
        404,
    )
    .await;

    // Delete.
    w.expect(M::DELETE, &format!("~/issue/{key2}"), None, 204)
        .await;
    w.expect(M::DELETE, &format!("~/issue/{key2}"), None, 404)
        .await;
    w.expect(M::GET, &format!("~/issue/{key2}"), None, 404)
        .await;
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Cloud only: other sites, REST v2 on Cloud, the OAuth gateway and dynamic webhooks.
async fn walk_cloud_extras(w: &mut Walker, scenario: &Value) {
    use Method as M;
    let auth = w.auth.clone();
    // The second site through its path prefix, and REST v2 on Cloud.
    let sites = scenario["sites"].as_array().cloned().unwrap_or_default();
    let slug = sites
        .get(1)
        .and_then(|s| s["slug"].as_str())
        .unwrap_or("globex")
        .to_string();
    w.expect_as(
        M::GET,
        &format!("/site/{slug}/rest/api/3/myself"),
        None,
        200,
        Some(&auth),
    )
    .await;
    w.expect_as(M::GET, "/rest/api/2/myself", None, 200, Some(&auth))
        .await;
    w.expect_as(M::GET, "/rest/api/2/issue/OPS-1", None, 200, Some(&auth))
        .await;

    // The OAuth gateway path refuses a bogus bearer token.
    let cloud_id = sites
        .first()
        .and_then(|s| s["cloud_id"].as_str().or_else(|| s["cloudId"].as_str()))
        .or_else(|| {
            scenario
                .pointer("/oauth/sites/0/id")
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_string();
    w.expect_as(
        M::GET,
        &format!("/ex/jira/{cloud_id}/rest/api/3/myself"),
        None,
        401,
        Some("Bearer not-a-token"),
    )
    .await;

    // OAuth 3LO: authorize -> code -> token, then dynamic webhooks through the gateway.
    let Some(token) = oauth_token(w, scenario).await else {
        return;
    };
    let bearer = format!("Bearer {token}");
    let gw = format!("/ex/jira/{cloud_id}/rest/api/3");
    w.expect_as(M::GET, &format!("{gw}/myself"), None, 200, Some(&bearer))
        .await;
    let registered = w
        .expect_as(
            M::POST,
            &format!("{gw}/webhook"),
            Some(json!({"url": "https://example.com/hook", "webhooks": [
                {"events": ["jira:issue_created", "jira:issue_updated"], "jqlFilter": "project = OPS"}]})),
            200,
            Some(&bearer),
        )
        .await;
    let hook_id = registered
        .pointer("/webhookRegistrationResult/0/createdWebhookId")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    w.expect_as(
        M::POST,
        &format!("{gw}/webhook"),
        Some(json!({"url": "https://example.com/hook"})),
        400,
        Some(&bearer),
    )
    .await;
    w.expect_as(M::GET, &format!("{gw}/webhook"), None, 200, Some(&bearer))
        .await;
    w.expect_as(
        M::PUT,
        &format!("{gw}/webhook/refresh"),
        Some(json!({"webhookIds": [hook_id]})),
        200,
        Some(&bearer),
    )
    .await;
    w.expect_as(
        M::GET,
        &format!("{gw}/webhook/failed"),
        None,
        200,
        Some(&bearer),
    )
    .await;
    w.expect_as(
        M::DELETE,
        &format!("{gw}/webhook"),
        Some(json!({"webhookIds": [hook_id]})),
        202,
        Some(&bearer),
    )
    .await;
    w.expect_as(
        M::DELETE,
        &format!("{gw}/webhook"),
        Some(json!({})),
        400,
        Some(&bearer),
    )
    .await;
}

/// Drives the simulator's OAuth server to an access token (failures are recorded).
async fn oauth_token(w: &mut Walker, scenario: &Value) -> Option<String> {
    let oauth = &scenario["oauth"];
    let pick = |v: &Value, a: &str, b: &str| {
        v.get(a)
            .or_else(|| v.get(b))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let client_id = pick(oauth, "client_id", "clientId");
    let secret = pick(oauth, "client_secret", "clientSecret");
    let redirect = oauth
        .get("redirect_uris")
        .or_else(|| oauth.get("redirectUris"))
        .and_then(|r| r.get(0))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let url = format!(
        "{}/authorize?audience=api.atlassian.com&client_id={}&scope={}&redirect_uri={}&state=walk&response_type=code&prompt=consent",
        w.base,
        urlencode(&client_id),
        urlencode("read:jira-user read:jira-work write:jira-work manage:jira-webhook offline_access"),
        urlencode(&redirect)
    );
    let resp = match w.http.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            w.failures.push(format!("GET /authorize: {e}"));
            return None;
        }
    };
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or("")
        .to_string();
    let code = location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("code="))
        .unwrap_or("")
        .to_string();
    if code.is_empty() {
        w.failures.push(format!(
            "GET /authorize: expected a redirect with a code, got {} location {location:?} (scenario oauth: {oauth})",
            resp.status()
        ));
        return None;
    }
    let token = w
        .expect_as(
            Method::POST,
            "/oauth/token",
            Some(
                json!({"grant_type": "authorization_code", "client_id": client_id,
                        "client_secret": secret, "code": code, "redirect_uri": redirect}),
            ),
            200,
            None,
        )
        .await;
    token["access_token"].as_str().map(str::to_string)
}

/// Rich text in REST v3 responses (descriptions, comment bodies, worklog comments) must be
/// valid ADF: the OpenAPI document leaves those values free-form.
fn invalid_adf_in_responses(record: &Path) -> Vec<String> {
    fn collect(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{path}/{k}");
                    let rich = matches!(k.as_str(), "description" | "body" | "comment")
                        && child.is_object()
                        && child.get("type").is_some();
                    if rich {
                        out.push((here, child.clone()));
                    } else {
                        collect(child, &here, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    collect(child, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let text = std::fs::read_to_string(record).unwrap();
    let mut found = Vec::new();
    for line in text.lines() {
        let ex: Value = serde_json::from_str(line).unwrap();
        let path = ex["path"].as_str().unwrap_or("");
        let status = ex["status"].as_u64().unwrap_or(0);
        if (200..300).contains(&status) && path.contains("/rest/api/3/") {
            let mut docs = Vec::new();
            collect(&ex["response_body"], "", &mut docs);
            found.extend(
                docs.into_iter()
                    .map(|(at, doc)| (format!("{path} {at}"), doc)),
            );
        }
    }
    assert!(
        !found.is_empty(),
        "the walk read no rich text through REST v3"
    );
    let docs: Vec<Value> = found.iter().map(|(_, d)| d.clone()).collect();
    let verdicts = validate_adf(&docs).unwrap();
    found
        .iter()
        .zip(verdicts)
        .filter_map(|((at, _), verdict)| {
            verdict.err().map(|why| format!("{at}: invalid ADF: {why}"))
        })
        .collect()
}

async fn run_walk(flavor: Flavor) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("exchanges.jsonl");
    let cfg = SimConfig {
        record: Some(record.clone()),
        ..match flavor {
            Flavor::Cloud => SimConfig::cloud(),
            Flavor::DataCenter => SimConfig::data_center(),
        }
    };
    let sim = jira_sim::spawn(cfg).await.unwrap();
    let scenario = sim.scenario();
    let mut w = Walker::new(sim.base_url(), flavor);
    walk_common(&mut w).await;
    if flavor == Flavor::Cloud {
        walk_cloud_extras(&mut w, &scenario).await;
    }
    let steps = w.steps;
    let mut failures = std::mem::take(&mut w.failures);
    sim.shutdown().await;
    if flavor == Flavor::Cloud {
        failures.extend(invalid_adf_in_responses(&record));
    }

    let flavor_name = match flavor {
        Flavor::Cloud => "cloud",
        Flavor::DataCenter => "dc",
    };
    // JIRA_CONFORMANCE_KEEP=DIR keeps the recording for a closer look
    // (validate_exchanges.py DIR/cloud-exchanges.jsonl --flavor cloud).
    if let Some(keep) = std::env::var_os("JIRA_CONFORMANCE_KEEP") {
        let kept = PathBuf::from(keep).join(format!("{flavor_name}-exchanges.jsonl"));
        std::fs::copy(&record, &kept).unwrap();
        println!("recording kept at {}", kept.display());
    }
    let report = validate_exchanges(&record, flavor_name).unwrap();

    // Coverage: every documented operation the simulator routes was walked.
    let routes = served_routes(flavor);
    assert!(
        !routes.is_empty(),
        "no routes found in the simulator's source"
    );
    let mapped = map_routes(&routes, flavor_name).unwrap();
    let expected: BTreeSet<String> = mapped.values().flatten().cloned().collect();
    let covered = report.covered();
    let not_walked: Vec<&String> = expected.difference(&covered).collect();
    let undocumented: Vec<String> = mapped
        .iter()
        .filter(|(_, op)| op.is_none())
        .map(|((m, p), _)| format!("{m} {p}"))
        .collect();

    let mut problems = String::new();
    if !failures.is_empty() {
        let _ = writeln!(
            problems,
            "{} unexpected statuses in {steps} steps:",
            failures.len()
        );
        for f in &failures {
            let _ = writeln!(problems, "  {f}");
        }
    }
    if !report.is_clean() {
        let _ = writeln!(
            problems,
            "{} violations:\n{}",
            report.violations.len(),
            report.text
        );
    }
    if !not_walked.is_empty() {
        let _ = writeln!(
            problems,
            "routed operations the walk does not cover: {not_walked:?}"
        );
    }
    if flavor == Flavor::Cloud && !undocumented.is_empty() {
        let _ = writeln!(
            problems,
            "routes with no operation in the Cloud document: {undocumented:?}"
        );
    }
    let statuses: BTreeMap<u16, u64> =
        report
            .operations
            .iter()
            .fold(BTreeMap::new(), |mut acc, op| {
                for (s, n) in &op.statuses {
                    *acc.entry(*s).or_default() += n;
                }
                acc
            });
    println!(
        "{flavor_name}: {steps} steps, {} exchanges, {} operations covered, statuses {statuses:?}",
        report.exchanges,
        covered.len()
    );
    assert!(
        problems.is_empty(),
        "{flavor_name} conformance walk:\n{problems}"
    );
    // The walk exercised error paths, not only successes.
    for status in [200, 400, 401, 404] {
        assert!(
            statuses.contains_key(&status),
            "no {status} in the walk: {statuses:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_walk_conforms_to_the_cloud_document() {
    run_walk(Flavor::Cloud).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dc_walk_conforms_to_the_dc_document() {
    run_walk(Flavor::DataCenter).await;
}

/// Routes the simulator shares with Cloud but Jira Data Center 10 does not have answer
/// 404 on the Data Center flavor, as Jira does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dc_answers_404_where_data_center_has_no_operation() {
    let routes = served_routes(Flavor::DataCenter);
    let mapped = map_routes(&routes, "dc").unwrap();
    let sim = jira_sim::spawn(SimConfig::data_center()).await.unwrap();
    let mut w = Walker::new(sim.base_url(), Flavor::DataCenter);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for ((method, path), op) in &mapped {
        if op.is_some() {
            continue;
        }
        // Fill path parameters with values that exist in the demo scenario.
        let concrete = path
            .replace("{issueIdOrKey}", "OPS-1")
            .replace("{worklogId}", "10000")
            .replace("{propertyKey}", "p")
            .replace("{id}", "1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST || method == Method::PUT).then(|| json!({}));
        let auth = format!("Bearer {DC_PAT}");
        let (status, value) = w.send(method.clone(), &concrete, body, Some(&auth)).await;
        if status != 404 || value.get("errorMessages").is_none() {
            wrong.push(format!("{method} {concrete}: {status} {value}"));
        }
        checked += 1;
    }
    sim.shutdown().await;
    assert!(checked > 0, "no Cloud-only routes found");
    assert!(
        wrong.is_empty(),
        "Cloud-only routes that do not answer Jira's 404 on Data Center:\n{}",
        wrong.join("\n")
    );
}
