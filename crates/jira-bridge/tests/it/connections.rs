//! Connections with API tokens and personal access tokens, end to end: the service on
//! a random port, jira-sim for Jira, HTTP only.

use std::time::{Duration, Instant};

use jira_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, TestTenant};

/// A running simulator and its scenario document.
pub struct Sim {
    pub h: SimHandle,
    pub scenario: Value,
}

impl Sim {
    pub async fn cloud() -> Self {
        Self::spawn(SimConfig::cloud()).await
    }

    pub async fn data_center() -> Self {
        Self::spawn(SimConfig::data_center()).await
    }

    async fn spawn(cfg: SimConfig) -> Self {
        let h = jira_sim::spawn(cfg).await.unwrap();
        let scenario = h.scenario();
        Self { h, scenario }
    }

    pub fn user(&self, name: &str) -> Value {
        self.scenario["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .cloned()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.h.url(path)
    }
}

/// Helpers on the service for connection tests.
impl TestApp {
    pub async fn post(&self, t: &TestTenant, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&t.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, t: &TestTenant, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap()
    }

    pub async fn json_ok(res: reqwest::Response, status: u16) -> Value {
        let got = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{body}");
        body
    }
}

pub fn cloud_token_body(sim: &Sim, user: &str) -> Value {
    let u = sim.user(user);
    json!({
        "kind": "cloud_token",
        "base_url": sim.h.base_url(),
        "email": u["email"],
        "token": u["api_token"],
    })
}

#[tokio::test]
async fn cloud_token_connection_verify_create_read_metadata_update_delete() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let alice = sim.user("alice");

    // Verify without storing.
    let v = TestApp::json_ok(
        app.post(
            &t,
            "/v1/connections/verify",
            cloud_token_body(&sim, "alice"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["deployment"], "Cloud");
    assert_eq!(v["account"]["account_id"], alice["account_id"]);
    assert_eq!(v["account"]["display_name"], alice["display_name"]);
    let listed = TestApp::json_ok(app.get(&t, "/v1/connections").await, 200).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "verify stores nothing"
    );

    // Create.
    let mut body = cloud_token_body(&sim, "alice");
    body["name"] = json!("Acme Jira");
    body["owner"] = json!("team-1");
    let c = TestApp::json_ok(app.post(&t, "/v1/connections", body).await, 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("con_"));
    assert_eq!(c["verification_status"], "valid");
    assert!(c["last_verified_at"].is_string());
    assert_eq!(c["account_id"], alice["account_id"]);
    assert_eq!(c["kind"], "cloud_token");
    assert_eq!(c["owner"], "team-1");
    let token = alice["api_token"].as_str().unwrap();
    assert!(!c.to_string().contains(token));

    // A second connection of another owner; list by owner.
    let mut body = cloud_token_body(&sim, "bob");
    body["name"] = json!("Bob's");
    body["owner"] = json!("user-2");
    TestApp::json_ok(app.post(&t, "/v1/connections", body).await, 201).await;
    let mine = TestApp::json_ok(app.get(&t, "/v1/connections?owner=team-1").await, 200).await;
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    let all = TestApp::json_ok(app.get(&t, "/v1/connections").await, 200).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert!(!all.to_string().contains(token));

    // Another tenant sees nothing.
    let other = app.create_tenant("other").await;
    assert_problem(
        app.get(&other, &format!("/v1/connections/{id}")).await,
        404,
        "not-found",
    )
    .await;

    // Metadata, cached then refreshed.
    let p1 = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/projects")).await,
        200,
    )
    .await;
    assert_eq!(p1["cached"], false);
    let keys: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(!keys.is_empty());
    let p2 = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/projects")).await,
        200,
    )
    .await;
    assert_eq!(p2["cached"], true);
    assert_eq!(p2["items"], p1["items"]);
    let p3 = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/projects?refresh=true"))
            .await,
        200,
    )
    .await;
    assert_eq!(p3["cached"], false);
    let key = keys[0];
    let types = TestApp::json_ok(
        app.get(
            &t,
            &format!("/v1/connections/{id}/projects/{key}/issue-types"),
        )
        .await,
        200,
    )
    .await;
    let types = types["items"].as_array().unwrap().clone();
    let task = types.iter().find(|t| t["subtask"] == false).unwrap();
    let fields = TestApp::json_ok(
        app.get(
            &t,
            &format!(
                "/v1/connections/{id}/projects/{key}/issue-types/{}/fields",
                task["id"].as_str().unwrap()
            ),
        )
        .await,
        200,
    )
    .await;
    let fields = fields["items"].as_array().unwrap();
    let summary = fields.iter().find(|f| f["id"] == "summary").unwrap();
    assert_eq!(summary["required"], true);
    assert!(fields
        .iter()
        .any(|f| f["id"] == "priority" && !f["allowed_values"].as_array().unwrap().is_empty()));
    let prios = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/priorities"))
            .await,
        200,
    )
    .await;
    assert!(prios["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"].is_string()));
    let sts = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/statuses?project={key}"))
            .await,
        200,
    )
    .await;
    assert!(sts["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["category"] == "done"));
    let users = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/users?query=bob"))
            .await,
        200,
    )
    .await;
    assert!(users["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["account_id"] == sim.user("bob")["account_id"]));

    // Rename, disable (then operations are refused), enable.
    let r = app
        .client
        .patch(app.url(&format!("/v1/connections/{id}")))
        .bearer_auth(&t.key)
        .json(&json!({"name": "Renamed", "enabled": false}))
        .send()
        .await
        .unwrap();
    let r = TestApp::json_ok(r, 200).await;
    assert_eq!(r["name"], "Renamed");
    assert_eq!(r["enabled"], false);
    assert_problem(
        app.get(&t, &format!("/v1/connections/{id}/priorities"))
            .await,
        409,
        "connection-disabled",
    )
    .await;
    let r = app
        .client
        .patch(app.url(&format!("/v1/connections/{id}")))
        .bearer_auth(&t.key)
        .json(&json!({"enabled": true, "token": "wrong-token"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "jira-credentials-rejected").await;

    // Re-verify on demand.
    let before = c["last_verified_at"].as_str().unwrap().to_owned();
    let rv = TestApp::json_ok(
        app.post(&t, &format!("/v1/connections/{id}/verify"), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(rv["verification_status"], "valid");
    assert!(rv["last_verified_at"].as_str().unwrap() > before.as_str());

    // Audit trail of connect and verify.
    let audit = TestApp::json_ok(
        app.get(&t, "/v1/audit?action=connection.connect").await,
        200,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    let audit =
        TestApp::json_ok(app.get(&t, "/v1/audit?action=connection.verify").await, 200).await;
    assert!(audit["items"].as_array().unwrap().len() >= 2);

    // Delete.
    let r = app
        .client
        .delete(app.url(&format!("/v1/connections/{id}")))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_problem(
        app.get(&t, &format!("/v1/connections/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let audit =
        TestApp::json_ok(app.get(&t, "/v1/audit?action=connection.delete").await, 200).await;
    assert_eq!(audit["items"][0]["target_id"], id.as_str());
}

#[tokio::test]
async fn data_center_pat_connection_works_through_rest_v2() {
    let sim = Sim::data_center().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("dc").await;
    let alice = sim.user("alice");
    let c = TestApp::json_ok(
        app.post(
            &t,
            "/v1/connections",
            json!({"name": "DC", "kind": "dc_pat", "base_url": sim.h.base_url(), "token": alice["pat"]}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(c["deployment"], "DataCenter");
    assert_eq!(c["verification_status"], "valid");
    assert!(c["server_version"].is_string());
    let id = c["id"].as_str().unwrap();
    let prios = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/priorities"))
            .await,
        200,
    )
    .await;
    assert!(!prios["items"].as_array().unwrap().is_empty());
    let projects = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/projects")).await,
        200,
    )
    .await;
    assert!(!projects["items"].as_array().unwrap().is_empty());
    assert!(!c.to_string().contains(alice["pat"].as_str().unwrap()));
}

#[tokio::test]
async fn bad_inputs_get_specific_human_readable_problems() {
    let cloud = Sim::cloud().await;
    let dc = Sim::data_center().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("bad").await;

    // Wrong credentials.
    let mut body = cloud_token_body(&cloud, "alice");
    body["token"] = json!("not-the-token");
    let p = assert_problem(
        app.post(&t, "/v1/connections/verify", body.clone()).await,
        422,
        "jira-credentials-rejected",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("API token"), "{p}");
    assert_eq!(p["jira"]["status"], 401, "{p}");
    body["name"] = json!("x");
    assert_problem(
        app.post(&t, "/v1/connections", body).await,
        422,
        "jira-credentials-rejected",
    )
    .await;

    // Unreachable host: a port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut body = cloud_token_body(&cloud, "alice");
    body["base_url"] = json!(format!("http://127.0.0.1:{closed}"));
    let p = assert_problem(
        app.post(&t, "/v1/connections/verify", body).await,
        422,
        "jira-unreachable",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("127.0.0.1"), "{p}");

    // Not Jira: the service itself.
    let mut body = cloud_token_body(&cloud, "alice");
    body["base_url"] = json!(app.base);
    let p = assert_problem(
        app.post(&t, "/v1/connections/verify", body).await,
        422,
        "not-jira",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("does not look like a Jira site"),
        "{p}"
    );

    // Data Center given as Cloud, and Cloud given as Data Center.
    let mut body = cloud_token_body(&cloud, "alice");
    body["base_url"] = json!(dc.h.base_url());
    let p = assert_problem(
        app.post(&t, "/v1/connections/verify", body).await,
        422,
        "wrong-deployment",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("dc_pat"), "{p}");
    let p = assert_problem(
        app.post(
            &t,
            "/v1/connections/verify",
            json!({"kind": "dc_pat", "base_url": cloud.h.base_url(), "token": dc.user("alice")["pat"]}),
        )
        .await,
        422,
        "wrong-deployment",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("cloud_token"), "{p}");

    // A private address on a server that does not allow them.
    let strict = TestApp::builder()
        .env("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS", "false")
        .spawn()
        .await;
    let ts = strict.create_tenant("strict").await;
    let p = assert_problem(
        strict
            .post(
                &ts,
                "/v1/connections/verify",
                cloud_token_body(&cloud, "alice"),
            )
            .await,
        422,
        "private-address",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS"),
        "{p}"
    );

    // Malformed input is a validation problem naming the field.
    let p = assert_problem(
        app.post(
            &t,
            "/v1/connections/verify",
            json!({"kind": "cloud_token", "base_url": "jira", "email": "a@b.c", "token": "t"}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert!(p["errors"]["base_url"].is_string(), "{p}");

    // Nothing was stored, failures were audited.
    let listed = TestApp::json_ok(app.get(&t, "/v1/connections").await, 200).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    let audit = TestApp::json_ok(
        app.get(&t, "/v1/audit?action=connection.verify&outcome=failure")
            .await,
        200,
    )
    .await;
    assert!(audit["items"].as_array().unwrap().len() >= 5);
}

#[tokio::test]
async fn connections_are_re_verified_periodically() {
    let sim = Sim::cloud().await;
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_CONNECTIONS_REVERIFY_INTERVAL_SECONDS", "1")
        .env("JIRA_BRIDGE_CONNECTIONS_SWEEP_INTERVAL_SECONDS", "1")
        .spawn()
        .await;
    let t = app.create_tenant("periodic").await;
    let mut body = cloud_token_body(&sim, "alice");
    body["name"] = json!("p");
    let c = TestApp::json_ok(app.post(&t, "/v1/connections", body).await, 201).await;
    let id = c["id"].as_str().unwrap();
    let first = c["last_verified_at"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = TestApp::json_ok(app.get(&t, &format!("/v1/connections/{id}")).await, 200).await;
        if now["last_verified_at"].as_str().unwrap() > first.as_str() {
            assert_eq!(now["verification_status"], "valid");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no periodic verification happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = TestApp::json_ok(
        app.get(&t, "/v1/audit?action=connection.verify&actor=system")
            .await,
        200,
    )
    .await;
    assert!(!audit["items"].as_array().unwrap().is_empty());
}
