//! Authorization matrix: every operation of the served OpenAPI document × every kind
//! of credential, so an endpoint added later is covered without touching this file.
//!
//! Columns: no key, a revoked key, another tenant's key (on tenant A's real ids), the
//! admin key, A's read-only key and A's own key. Expected: 401 for missing, revoked
//! and wrong-kind keys (tenant keys on admin routes, the admin key on tenant routes);
//! never 2xx and never A's data for another tenant; 403 `forbidden` for a read-only key
//! that writes; every 4xx a problem document; never 5xx.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{TestApp, TestTenant, ADMIN_KEY};

/// One operation of the document.
#[derive(Debug, Clone)]
struct Op {
    method: Method,
    template: String,
    security: Option<String>,
}

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    fn writes(&self) -> bool {
        !(self.method == Method::GET
            || self.method == Method::HEAD
            || jira_bridge::tenancy::READ_ONLY_POSTS.contains(&self.template.as_str()))
    }

    fn has_params(&self) -> bool {
        self.template.contains('{')
    }
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(m) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) {
                continue;
            }
            let security = op["security"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(Value::as_object)
                .and_then(|o| o.keys().next().cloned());
            ops.push(Op {
                method: m,
                template: path.clone(),
                security,
            });
        }
    }
    ops
}

/// What a request got.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// Tenant A's objects, and how to fill a path template with them.
struct World {
    app: TestApp,
    _sim: Sim,
    a: TestTenant,
    a_read: String,
    revoked: String,
    b: TestTenant,
    /// Collection segment → the id of A's object in it.
    ids: BTreeMap<&'static str, String>,
    /// Values of A that another tenant must never see.
    secrets: Vec<String>,
}

const MARKER: &str = "tenant-a-marker-51f9";

impl World {
    async fn build() -> Self {
        let sim = Sim::cloud().await;
        let app = TestApp::spawn().await;
        let a = app.create_tenant(&format!("{MARKER}-a")).await;
        let b = app.create_tenant("tenant-b").await;
        let key = |name: &str, scopes: Value| {
            let app = &app;
            let a = &a;
            let name = name.to_owned();
            async move {
                let res = app
                    .client
                    .post(app.url(&format!("/v1/admin/tenants/{}/keys", a.id)))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"name": name, "scopes": scopes}))
                    .send()
                    .await
                    .unwrap();
                TestApp::json_ok(res, 201).await
            }
        };
        let a_read = key("reader", json!(["read"])).await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let revoked_key = key("revoked", json!(["*"])).await;
        let revoked = revoked_key["key"].as_str().unwrap().to_owned();
        let res = app
            .client
            .delete(app.url(&format!(
                "/v1/admin/tenants/{}/keys/{}",
                a.id,
                revoked_key["id"].as_str().unwrap()
            )))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // The key the admin column may revoke.
        let spare = key("spare", json!(["*"])).await["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let mut body = cloud_token_body(&sim, "alice");
        body["name"] = json!(format!("{MARKER} connection"));
        let con = TestApp::json_ok(app.post(&a, "/v1/connections", body).await, 201).await;
        let con = con["id"].as_str().unwrap().to_owned();
        let cfg = TestApp::json_ok(
            app.post(
                &a,
                "/v1/configs",
                json!({"name": format!("{MARKER} config"), "connection_id": con, "targets": [
                    {"name": "WEB", "project_key": "WEB", "issue_type": "Task"}
                ]}),
            )
            .await,
            201,
        )
        .await;
        let ticket = TestApp::json_ok(
            app.post(
                &a,
                "/v1/tickets",
                json!({"connection_id": con, "source": {"kind": "authz", "id": "1"},
                       "project_key": "WEB", "issue_type": "Task",
                       "summary": format!("{MARKER} ticket")}),
            )
            .await,
            201,
        )
        .await;
        let sub = TestApp::json_ok(
            app.post(
                &a,
                "/v1/subscriptions",
                json!({"url": "http://127.0.0.1:9/hook", "description": MARKER}),
            )
            .await,
            201,
        )
        .await;
        let job = TestApp::json_ok(
            app.post(
                &a,
                "/v1/code-links/backfill",
                json!({"connection_id": con, "source_kind": "time_record",
                       "records": [{"id": "r1", "title": "WEB-1 fix"}]}),
            )
            .await,
            202,
        )
        .await;
        let job = job["job_id"].as_str().unwrap().to_owned();
        let entry = app
            .client
            .put(app.url("/v1/time-entries/authz-entry"))
            .bearer_auth(&a.key)
            .json(&json!({"connection_id": con, "issue_key": "WEB-1",
                          "started_at": "2026-01-05T09:00:00Z", "duration_seconds": 600,
                          "comment": MARKER, "sync": "manual"}))
            .send()
            .await
            .unwrap();
        assert!(entry.status().is_success(), "{}", entry.status());
        let export = TestApp::json_ok(
            app.post(
                &a,
                "/v1/exports",
                json!({"connection_id": con, "project_key": "WEB", "epics": [
                    {"source": "authz-epic", "summary": format!("{MARKER} epic"),
                     "stories": [{"source": "authz-story", "summary": "a story"}]}
                ]}),
            )
            .await,
            202,
        )
        .await;
        let export = export["export_id"].as_str().unwrap().to_owned();
        let release = TestApp::json_ok(
            app.post(
                &a,
                "/v1/releases",
                json!({"config_id": cfg["id"], "version": "9.9.9", "platforms": ["WEB"]}),
            )
            .await,
            202,
        )
        .await;
        let release = release["id"].as_str().unwrap().to_owned();
        let audit = TestApp::json_ok(app.get(&a, "/v1/audit?limit=1").await, 200).await;
        let audit = audit["items"][0]["id"].as_str().unwrap().to_owned();

        let ids = BTreeMap::from([
            ("tenants", a.id.clone()),
            ("keys", spare),
            ("connections", con.clone()),
            ("configs", cfg["id"].as_str().unwrap().to_owned()),
            ("tickets", ticket["id"].as_str().unwrap().to_owned()),
            ("subscriptions", sub["id"].as_str().unwrap().to_owned()),
            ("jobs", job.clone()),
            ("backfill", job),
            ("audit", audit),
            ("exports", export),
            ("releases", release),
            ("time-entries", "authz-entry".to_owned()),
            ("projects", "WEB".to_owned()),
            ("issue-types", "10001".to_owned()),
            ("issues", "WEB-1".to_owned()),
            (
                "deliveries",
                "dlv_0190f0f0f0f07000800000000000000".to_owned(),
            ),
            (
                "selections",
                "sel_0190f0f0f0f07000800000000000000".to_owned(),
            ),
        ]);
        let mut secrets: Vec<String> = ids
            .iter()
            .filter(|(k, _)| {
                ![
                    "projects",
                    "issue-types",
                    "issues",
                    "deliveries",
                    "selections",
                    "time-entries",
                ]
                .contains(k)
            })
            .map(|(_, v)| v.clone())
            .collect();
        secrets.push(MARKER.to_owned());
        secrets.push(a.key_id.clone());
        Self {
            app,
            _sim: sim,
            a,
            a_read,
            revoked,
            b,
            ids,
            secrets,
        }
    }

    /// The path with every `{param}` replaced by A's object of the segment before it.
    fn path(&self, template: &str) -> String {
        let segments: Vec<&str> = template.split('/').collect();
        let mut out = Vec::with_capacity(segments.len());
        for (i, s) in segments.iter().enumerate() {
            if s.starts_with('{') {
                let collection = segments[i - 1];
                let id = self
                    .ids
                    .get(collection)
                    .unwrap_or_else(|| panic!("no object for {{…}} after {collection:?} in {template}: add one to World::build"));
                out.push(id.as_str());
            } else {
                out.push(s);
            }
        }
        out.join("/")
    }

    async fn call(&self, op: &Op, key: Option<&str>) -> Answer {
        let mut req = self
            .app
            .client
            .request(op.method.clone(), self.app.url(&self.path(&op.template)))
            .header("accept", "application/json");
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if [Method::POST, Method::PUT, Method::PATCH].contains(&op.method) {
            req = req.json(&json!({}));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // Event streams never end: judge them by their head.
        let body = if content_type.starts_with("text/event-stream") {
            String::new()
        } else {
            res.text().await.unwrap()
        };
        Answer {
            status,
            content_type,
            body,
        }
    }
}

fn check_problem(op: &Op, who: &str, a: &Answer) {
    assert!(
        a.status < 500,
        "{who} {}: {} {}",
        op.name(),
        a.status,
        a.body
    );
    if a.status >= 400 {
        assert_eq!(
            a.content_type,
            "application/problem+json",
            "{who} {}: {}",
            op.name(),
            a.body
        );
        let p: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(p["status"], a.status, "{who} {}: {p}", op.name());
        assert!(
            p["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:jira-bridge:problem:"))
                && p["title"].is_string()
                && p["detail"].is_string(),
            "{who} {}: {p}",
            op.name()
        );
    }
}

fn slug(a: &Answer) -> String {
    serde_json::from_str::<Value>(&a.body)
        .ok()
        .and_then(|p| p["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test]
async fn every_operation_answers_every_kind_of_credential_as_designed() {
    let w = World::build().await;
    let doc: Value = TestApp::json_ok(
        w.app
            .client
            .get(w.app.url("/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let ops = operations(&doc);
    assert!(ops.len() > 50, "{} operations", ops.len());
    let secured: Vec<&Op> = ops.iter().filter(|o| o.security.is_some()).collect();
    // Public operations are few and named: anything else must declare a key.
    let public: Vec<String> = ops
        .iter()
        .filter(|o| o.security.is_none())
        .map(Op::name)
        .collect();
    assert_eq!(
        public,
        [
            "GET /healthz",
            "GET /metrics",
            "GET /readyz",
            "GET /v1/oauth/callback",
            "POST /v1/webhooks/jira/{connection_id}"
        ],
        "operations without security"
    );

    let mut failures = Vec::new();
    let mut expect = |cond: bool, msg: String| {
        if !cond {
            failures.push(msg);
        }
    };
    let unauthorized = "urn:jira-bridge:problem:unauthorized";
    let forbidden = "urn:jira-bridge:problem:forbidden";
    for op in &secured {
        let admin_op = op.security.as_deref() == Some("admin_key");
        let name = op.name();

        let none = w.call(op, None).await;
        check_problem(op, "no key", &none);
        expect(
            none.status == 401 && slug(&none) == unauthorized,
            format!("no key {name}: {} {}", none.status, none.body),
        );

        let revoked = w.call(op, Some(&w.revoked)).await;
        check_problem(op, "revoked key", &revoked);
        expect(
            revoked.status == 401,
            format!("revoked key {name}: {} {}", revoked.status, revoked.body),
        );

        let other = w.call(op, Some(&w.b.key)).await;
        check_problem(op, "other tenant", &other);
        if admin_op {
            expect(
                other.status == 401,
                format!("tenant key on admin {name}: {}", other.status),
            );
        } else {
            if op.has_params() {
                expect(
                    !(200..300).contains(&other.status),
                    format!(
                        "other tenant got {} on A's {name}: {}",
                        other.status, other.body
                    ),
                );
            }
            let path = w.path(&op.template);
            for s in w.secrets.iter().filter(|s| !path.contains(s.as_str())) {
                expect(
                    !other.body.contains(s.as_str()),
                    format!("other tenant saw {s:?} in {name}: {}", other.body),
                );
            }
        }

        let read = w.call(op, Some(&w.a_read)).await;
        check_problem(op, "read-only key", &read);
        if admin_op {
            expect(
                read.status == 401,
                format!("read key on admin {name}: {}", read.status),
            );
        } else if op.writes() {
            expect(
                read.status == 403 && slug(&read) == forbidden,
                format!(
                    "read-only key writing {name}: {} {}",
                    read.status, read.body
                ),
            );
        } else {
            expect(
                read.status != 401 && read.status != 403,
                format!(
                    "read-only key reading {name}: {} {}",
                    read.status, read.body
                ),
            );
        }

        if !admin_op && !op.writes() {
            let own = w.call(op, Some(&w.a.key)).await;
            check_problem(op, "own key", &own);
            expect(
                own.status != 401 && own.status != 403,
                format!("own key {name}: {} {}", own.status, own.body),
            );
        }

        // Last: the admin column may change state (it revokes the spare key).
        let admin = w.call(op, Some(ADMIN_KEY)).await;
        check_problem(op, "admin key", &admin);
        if admin_op {
            expect(
                admin.status != 401 && admin.status != 403,
                format!("admin key on {name}: {} {}", admin.status, admin.body),
            );
        } else {
            expect(
                admin.status == 401,
                format!("admin key on tenant {name}: {}", admin.status),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // A's full key still works after the read-only key was refused everywhere.
    let me = TestApp::json_ok(w.app.get(&w.a, "/v1/me").await, 200).await;
    assert_eq!(me["tenant_id"], w.a.id);
}

#[tokio::test]
async fn scopes_are_validated_and_a_read_only_key_changes_nothing() {
    let w = World::build().await;
    let res = w
        .app
        .client
        .post(w.app.url(&format!("/v1/admin/tenants/{}/keys", w.a.id)))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "x", "scopes": ["tickets:write"]}))
        .send()
        .await
        .unwrap();
    let p = crate::helpers::assert_problem(res, 422, "validation").await;
    assert!(p["errors"]["scopes"].is_string(), "{p}");

    let con = &w.ids["connections"];
    let res = w
        .app
        .client
        .delete(w.app.url(&format!("/v1/connections/{con}")))
        .bearer_auth(&w.a_read)
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(res, 403, "forbidden").await;
    // Still there, and readable with the same key.
    let res = w
        .app
        .client
        .get(w.app.url(&format!("/v1/connections/{con}")))
        .bearer_auth(&w.a_read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The computing POST is open to it.
    let res = w
        .app
        .client
        .post(w.app.url("/v1/keys/extract"))
        .bearer_auth(&w.a_read)
        .json(&json!({"texts": ["fixes WEB-12"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
