//! Configs and tickets over HTTP: the real service (with its job runner) on a random
//! port against jira-sim.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{assert_problem, TestApp, TestTenant};

async fn connection(app: &TestApp, t: &TestTenant, sim: &Sim, user: &str) -> String {
    let mut body = cloud_token_body(sim, user);
    body["name"] = json!(format!("{user}'s Jira"));
    let c = TestApp::json_ok(app.post(t, "/v1/connections", body).await, 201).await;
    c["id"].as_str().unwrap().to_owned()
}

async fn sim_issue_count(sim: &Sim, project: &str) -> usize {
    let v: Value = reqwest::get(sim.url(&format!("/_sim/issues?project={project}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array()
        .map_or_else(|| v["issues"].as_array().unwrap().len(), Vec::len)
}

/// Poll a job until it reaches a terminal state (bounded).
pub async fn wait_job(app: &TestApp, t: &TestTenant, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = TestApp::json_ok(app.get(t, &format!("/v1/jobs/{job}")).await, 200).await;
        let state = j["state"].as_str().unwrap_or_default();
        if ["succeeded", "failed", "partially_failed", "cancelled"].contains(&state) {
            return j;
        }
        assert!(Instant::now() < deadline, "job did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn configs_crud_and_verify() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("release-manager").await;
    let con = connection(&app, &t, &sim, "alice").await;
    let body = json!({
        "name": "Frontend release",
        "connection_id": con,
        "targets": [
            {"name": "WEB", "project_key": "WEB", "issue_type": "Epic", "labels": ["release"], "completed_status": "Done"},
            {"name": "PLAY_STORE", "project_key": "OPS", "issue_type": "Task", "priority": "High"},
            {"name": "APP_STORE", "project_key": "NOPE", "issue_type": "Task", "priority": "Urgentest"}
        ]
    });
    let c = TestApp::json_ok(app.post(&t, "/v1/configs", body.clone()).await, 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cfg_"));
    assert_eq!(c["targets"].as_array().unwrap().len(), 3);
    // Same name again: 409.
    assert_problem(app.post(&t, "/v1/configs", body).await, 409, "conflict").await;
    // Bad targets: 422 naming the field.
    let bad = json!({"name": "x", "connection_id": con, "targets": [{"name": "A", "project_key": "", "issue_type": "Task"}]});
    let p = assert_problem(app.post(&t, "/v1/configs", bad).await, 422, "validation").await;
    assert!(p["errors"]["targets[0].project_key"].is_string(), "{p}");

    let v = TestApp::json_ok(
        app.post(&t, &format!("/v1/configs/{id}/verify"), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(v["ok"], false);
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets[0]["ok"], true, "{v}");
    assert_eq!(targets[1]["ok"], true, "{v}");
    assert!(targets[2]["problems"]["project_key"].is_string(), "{v}");

    let patched = TestApp::json_ok(
        app.client
            .patch(app.url(&format!("/v1/configs/{id}")))
            .bearer_auth(&t.key)
            .json(&json!({"description": "three platforms"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(patched["description"], "three platforms");
    let list = TestApp::json_ok(app.get(&t, "/v1/configs").await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let other = app.create_tenant("other").await;
    assert_problem(
        app.get(&other, &format!("/v1/configs/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let del = app
        .client
        .delete(app.url(&format!("/v1/configs/{id}")))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_problem(
        app.get(&t, &format!("/v1/configs/{id}")).await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn tickets_create_once_list_transition_refresh_bulk_and_sync() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("compliance").await;
    let con = connection(&app, &t, &sim, "alice").await;
    let cfg = TestApp::json_ok(
        app.post(
            &t,
            "/v1/configs",
            json!({"name": "c", "connection_id": con, "targets": [
                {"name": "OPS", "project_key": "OPS", "issue_type": "Bug", "priority": "High", "fields": {"Severity": "Major"}}
            ]}),
        )
        .await,
        201,
    )
    .await;
    let cfg_id = cfg["id"].as_str().unwrap();
    let before = sim_issue_count(&sim, "OPS").await;

    // From a config target: 201, then the same source and purpose: 200, same ticket.
    let body = json!({
        "config_id": cfg_id, "target": "OPS",
        "source": {"kind": "violation", "id": "v-1"},
        "summary": "Unencrypted bucket", "description": "Found by **rule 7**.",
        "assignee_email": "bob@example.com"
    });
    let first = TestApp::json_ok(app.post(&t, "/v1/tickets", body.clone()).await, 201).await;
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tkt_"));
    assert_eq!(first["state"], "created");
    assert!(first["issue_key"].as_str().unwrap().starts_with("OPS-"));
    let again = TestApp::json_ok(app.post(&t, "/v1/tickets", body).await, 200).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(sim_issue_count(&sim, "OPS").await, before + 1);

    // Validation before Jira: unknown priority and a missing required field, named.
    let p = assert_problem(
        app.post(
            &t,
            "/v1/tickets",
            json!({
                "connection_id": con, "source": {"kind": "violation", "id": "v-2"},
                "project_key": "OPS", "issue_type": "Bug", "summary": "x", "priority": "Urgentest"
            }),
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert!(
        p["errors"]["priority"]
            .as_str()
            .unwrap()
            .contains("Urgentest"),
        "{p}"
    );
    assert!(
        p["errors"]["fields.customfield_10020"]
            .as_str()
            .unwrap()
            .contains("Severity"),
        "{p}"
    );
    assert_eq!(sim_issue_count(&sim, "OPS").await, before + 1);

    // List with filters; another tenant sees nothing.
    let list = TestApp::json_ok(
        app.get(&t, "/v1/tickets?source_kind=violation&project=OPS")
            .await,
        200,
    )
    .await;
    let items = list["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["id"] == id.as_str()));
    let other = app.create_tenant("other").await;
    assert_problem(
        app.get(&other, &format!("/v1/tickets/{id}")).await,
        404,
        "not-found",
    )
    .await;

    // Someone starts work in Jira; refresh reads it.
    let key = first["issue_key"].as_str().unwrap();
    let st = reqwest::Client::new()
        .post(sim.url(&format!("/_sim/issues/{key}/transition")))
        .json(&json!({"as": "bob", "to": "In Progress"}))
        .send()
        .await
        .unwrap();
    let status = st.status();
    assert!(status.is_success(), "{}", st.text().await.unwrap());
    let r = TestApp::json_ok(
        app.post(&t, &format!("/v1/tickets/{id}/refresh"), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(r["status_category"], "indeterminate");
    assert_eq!(r["status"], "In Progress");

    // Transition by category through the strict workflow; an unknown status is 409
    // with the available transitions.
    let moved = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/tickets/{id}/transition"),
            json!({"to_category": "done"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(moved["status_category"], "done");
    assert_eq!(moved["status"], "Done");
    let res = app
        .post(
            &t,
            &format!("/v1/tickets/{id}/transition"),
            json!({"to_status": "Shipped to Mars"}),
        )
        .await;
    let p = assert_problem(res, 409, "transition-unreachable").await;
    assert!(
        !p["available_transitions"].as_array().unwrap().is_empty(),
        "{p}"
    );

    // Bulk: 120 items, 3 of them invalid; with an Idempotency-Key the same request
    // answers the same job.
    let mut items: Vec<Value> = (0..120)
        .map(|i| json!({"source": {"kind": "finding", "id": format!("f-{i}")}, "summary": format!("Finding {i}")}))
        .collect();
    items[7]["priority"] = json!("Urgentest");
    items[8]["assignee_email"] = json!("nobody@example.com");
    items[9]["fields"] = json!({"Severity": "Catastrophic"});
    let bulk = json!({"config_id": cfg_id, "target": "OPS", "items": items});
    let send = |b: Value| {
        app.client
            .post(app.url("/v1/tickets/bulk"))
            .bearer_auth(&t.key)
            .header("Idempotency-Key", "bulk-1")
            .json(&b)
            .send()
    };
    let a = TestApp::json_ok(send(bulk.clone()).await.unwrap(), 202).await;
    let b = TestApp::json_ok(send(bulk).await.unwrap(), 202).await;
    assert_eq!(a["job_id"], b["job_id"]);
    let job_id = a["job_id"].as_str().unwrap();
    let job = wait_job(&app, &t, job_id).await;
    assert_eq!(job["state"], "partially_failed", "{job}");
    assert_eq!(job["succeeded"], 117);
    assert_eq!(job["failed"], 3);
    assert_eq!(sim_issue_count(&sim, "OPS").await, before + 1 + 117);
    let failed = TestApp::json_ok(
        app.get(&t, &format!("/v1/jobs/{job_id}/items?state=failed"))
            .await,
        200,
    )
    .await;
    let fields: Vec<&str> = failed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["error"]["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["priority", "assignee_email", "fields.Severity"]
    );

    // Sync now: statuses of every ticket come back.
    let s = TestApp::json_ok(app.post(&t, "/v1/tickets/sync", json!({})).await, 202).await;
    let sj = wait_job(&app, &t, s["job_id"].as_str().unwrap()).await;
    assert_eq!(sj["state"], "succeeded", "{sj}");
    let list = TestApp::json_ok(
        app.get(
            &t,
            "/v1/tickets?source_kind=finding&status_category=new&limit=500",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 117);
}
