//! Jira's webhooks in: the real service on a random port, jira-sim firing admin
//! webhooks at it, HTTP only.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{assert_problem, TestApp, TestTenant};
use crate::tickets_api::wait_job;

struct Setup {
    con: String,
    secret: String,
    path: String,
}

async fn connect(app: &TestApp, t: &TestTenant, sim: &Sim) -> Setup {
    let mut body = cloud_token_body(sim, "alice");
    body["name"] = json!("Jira");
    let c = TestApp::json_ok(app.post(t, "/v1/connections", body).await, 201).await;
    let con = c["id"].as_str().unwrap().to_owned();
    let s = TestApp::json_ok(
        app.post(
            t,
            &format!("/v1/connections/{con}/webhook-setup"),
            json!({}),
        )
        .await,
        201,
    )
    .await;
    let secret = s["secret"].as_str().unwrap().to_owned();
    assert_eq!(s["url"], format!("/v1/webhooks/jira/{con}"));
    assert!(s["url_with_token"].as_str().unwrap().contains("?token="));
    // Shown once: a later read has no secret.
    let again = TestApp::json_ok(
        app.get(t, &format!("/v1/connections/{con}/webhook-setup"))
            .await,
        200,
    )
    .await;
    assert!(again.get("secret").is_none(), "{again}");
    assert_eq!(again["secret_set"], true);
    assert_eq!(again["health"]["state"], "never");
    Setup {
        path: format!("/v1/webhooks/jira/{con}"),
        con,
        secret,
    }
}

/// Register an admin webhook with the secret in the simulator, as its administrator.
async fn register_admin_webhook(sim: &Sim, app: &TestApp, setup: &Setup) {
    let admin = sim.scenario["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["admin"] == true)
        .cloned()
        .unwrap();
    let res = reqwest::Client::new()
        .post(sim.url("/rest/webhooks/1.0/webhook"))
        .basic_auth(
            admin["email"].as_str().unwrap(),
            admin["api_token"].as_str(),
        )
        .json(&json!({
            "name": "jira-bridge",
            "url": app.url(&setup.path),
            "events": ["jira:issue_updated", "jira:issue_deleted"],
            "filters": {"issue-related-events-section": "project = OPS"},
            "excludeBody": false,
            "secret": setup.secret,
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        res.text().await.unwrap()
    );
}

async fn ticket(app: &TestApp, t: &TestTenant, con: &str, n: usize) -> (String, String) {
    let v = TestApp::json_ok(
        app.post(
            t,
            "/v1/tickets",
            json!({
                "connection_id": con, "source": {"kind": "finding", "id": format!("f-{n}")},
                "project_key": "OPS", "issue_type": "Task", "summary": format!("Finding {n}")
            }),
        )
        .await,
        201,
    )
    .await;
    (
        v["id"].as_str().unwrap().to_owned(),
        v["issue_key"].as_str().unwrap().to_owned(),
    )
}

async fn sim_post(sim: &Sim, path: &str, body: Value) {
    let res = reqwest::Client::new()
        .post(sim.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert!(
        status.is_success(),
        "{path}: {status}: {}",
        res.text().await.unwrap()
    );
}

async fn sim_get(sim: &Sim, path: &str) -> Value {
    reqwest::get(sim.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Poll a ticket until `pred` holds (bounded).
async fn wait_ticket(
    app: &TestApp,
    t: &TestTenant,
    id: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = TestApp::json_ok(app.get(t, &format!("/v1/tickets/{id}")).await, 200).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "ticket never matched: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn health(app: &TestApp, t: &TestTenant, con: &str) -> Value {
    let v = TestApp::json_ok(
        app.get(t, &format!("/v1/connections/{con}/webhook-setup"))
            .await,
        200,
    )
    .await;
    v["health"].clone()
}

fn search_calls(stats: &Value) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["endpoint"]
                .as_str()
                .unwrap_or_default()
                .contains("search")
        })
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn changes_in_jira_arrive_by_webhook_without_any_search() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    register_admin_webhook(&sim, &app, &setup).await;
    let (id, key) = ticket(&app, &t, &setup.con, 1).await;
    let before = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    assert_ne!(before["status"], "In Progress");
    sim_post(&sim, "/_sim/stats/reset", json!({})).await;

    sim_post(
        &sim,
        &format!("/_sim/issues/{key}/transition"),
        json!({"as": "bob", "to": "In Progress"}),
    )
    .await;
    let after = wait_ticket(&app, &t, &id, |v| v["status"] == "In Progress").await;
    assert_eq!(after["status_category"], "indeterminate");

    // The change came by webhook: Jira was not searched (nor asked at all).
    let stats = sim_get(&sim, "/_sim/stats").await;
    assert_eq!(search_calls(&stats), 0, "{stats}");
    let h = health(&app, &t, &setup.con).await;
    assert_eq!(h["state"], "healthy", "{h}");
    assert!(h["received"].as_i64().unwrap() >= 1, "{h}");
    assert_eq!(h["rejected"], 0, "{h}");

    // The change is an event for host apps.
    let events = TestApp::json_ok(app.get(&t, "/v1/events?after=0").await, 200).await;
    let text = events.to_string();
    assert!(
        text.contains("ticket.status_changed") && text.contains(&id),
        "{events}"
    );
}

#[tokio::test]
async fn refused_and_replayed_deliveries_change_nothing() {
    let sim = Sim::cloud().await;
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_WEBHOOKS_INBOUND_BODY_LIMIT_BYTES", "65536")
        .spawn()
        .await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    let (id, key) = ticket(&app, &t, &setup.con, 1).await;
    let issue = sim_get(&sim, &format!("/_sim/issues/{key}")).await;
    let issue_id = issue["id"].as_str().unwrap().to_owned();
    let start = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    let updated = (chrono::Utc::now() + chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let payload = |status: &str, cat: &str| {
        serde_json::to_vec(&json!({
            "timestamp": 1_711_814_400_000_i64, "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": {"id": issue_id, "key": key, "fields": {
                "summary": "Finding 1", "updated": updated,
                "status": {"id": "10001", "name": status, "statusCategory": {"id": 3, "key": cat, "name": "Done"}}
            }},
            "changelog": {"id": "1", "items": [{"field": "status", "fieldtype": "jira", "from": "1", "fromString": "To Do", "to": "10001", "toString": status}]}
        }))
        .unwrap()
    };
    let url = app.url(&setup.path);
    let send = |body: Vec<u8>, sig: Option<String>, ident: &str| {
        let mut req = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-atlassian-webhook-identifier", ident)
            .body(body);
        if let Some(s) = sig {
            req = req.header("x-hub-signature", s);
        }
        req.send()
    };
    let done = payload("Done", "done");

    // Wrong signature, missing signature, wrong URL token: 401, recorded.
    assert_problem(
        send(done.clone(), Some(sign("not-the-secret", &done)), "a-1")
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        send(done.clone(), None, "a-1").await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let bad_token = app
        .client
        .post(format!("{url}?token=guess"))
        .header("content-type", "application/json")
        .body(done.clone())
        .send()
        .await
        .unwrap();
    assert_problem(bad_token, 401, "unauthorized").await;
    // Oversized (signed correctly) and malformed JSON (signed correctly).
    let mut big = done.clone();
    big.truncate(big.len() - 1);
    big.extend_from_slice(format!(",\"pad\":\"{}\"}}", "x".repeat(70_000)).as_bytes());
    let res = send(big.clone(), Some(sign(&setup.secret, &big)), "a-2")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let broken = b"{\"webhookEvent\": \"jira:issue_updated\", ".to_vec();
    assert_problem(
        send(broken.clone(), Some(sign(&setup.secret, &broken)), "a-3")
            .await
            .unwrap(),
        400,
        "bad-request",
    )
    .await;

    let h = health(&app, &t, &setup.con).await;
    assert_eq!(h["rejected"], 3, "{h}");
    assert_eq!(h["stored"], 0, "{h}");
    assert_eq!(h["last_rejection"], "wrong URL token", "{h}");
    let now = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    assert_eq!(now["status"], start["status"]);

    // A good delivery is applied; its replay (even with another body) changes nothing.
    let res = send(done.clone(), Some(sign(&setup.secret, &done)), "a-1")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    wait_ticket(&app, &t, &id, |v| v["status"] == "Done").await;
    let other = payload("Reopened", "indeterminate");
    let res = send(other.clone(), Some(sign(&setup.secret, &other)), "a-1")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ack: Value = res.json().await.unwrap();
    assert_eq!(ack["status"], "duplicate");
    // Every stored delivery is applied; the replay was not stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(&app, &t, &setup.con).await;
        if h["applied"] == 1 {
            assert_eq!(h["stored"], 1, "{h}");
            break;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let now = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    assert_eq!(now["status"], "Done");

    // The URL token works where nothing can sign.
    let s = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{}/webhook-setup", setup.con),
            json!({}),
        )
        .await,
        201,
    )
    .await;
    let with_token = app.url(s["url_with_token"].as_str().unwrap());
    let reopened = payload("In Progress", "indeterminate");
    let res = app
        .client
        .post(with_token)
        .header("x-atlassian-webhook-identifier", "a-9")
        .body(reopened)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    wait_ticket(&app, &t, &id, |v| v["status"] == "In Progress").await;
    // The rotated secret replaced the old one.
    let res = send(done.clone(), Some(sign(&setup.secret, &done)), "a-10")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn poll_backstop_converges_when_webhooks_are_off_and_a_burst_is_applied_in_full() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    register_admin_webhook(&sim, &app, &setup).await;
    let mut tickets = Vec::new();
    for n in 0..20 {
        tickets.push(ticket(&app, &t, &setup.con, n).await);
    }

    // Webhooks off: the poll converges every change.
    let put = reqwest::Client::new()
        .put(sim.url("/_sim/webhooks/settings"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    for (_, key) in &tickets[..5] {
        sim_post(
            &sim,
            &format!("/_sim/issues/{key}/transition"),
            json!({"as": "bob", "to": "In Progress"}),
        )
        .await;
    }
    let s = TestApp::json_ok(app.post(&t, "/v1/tickets/sync", json!({})).await, 202).await;
    let job = wait_job(&app, &t, s["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    for (id, _) in &tickets[..5] {
        let v = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
        assert_eq!(v["status"], "In Progress", "{v}");
    }
    assert_eq!(health(&app, &t, &setup.con).await["stored"], 0);

    // Webhooks on: a burst of 2,000 changes, none lost.
    let put = reqwest::Client::new()
        .put(sim.url("/_sim/webhooks/settings"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let per_issue = 100;
    let mut tasks = Vec::new();
    for (i, (_, key)) in tickets.iter().enumerate() {
        let key = key.clone();
        let url = sim.url(&format!("/_sim/issues/{key}/edit"));
        let transition = sim.url(&format!("/_sim/issues/{key}/transition"));
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            for n in 0..per_issue - 1 {
                let r = c
                    .post(&url)
                    .json(&json!({"as": "bob", "fields": {"summary": format!("Finding {i} rev {n}")}}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            }
            // The last change of each issue: a transition.
            let to = if i < 5 { "In Review" } else { "In Progress" };
            let r = c.post(&transition).json(&json!({"as": "bob", "to": to})).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let idle = sim_get(&sim, "/_sim/webhooks/pending?wait_ms=120000").await;
    assert_eq!(idle["idle"], true, "{idle}");
    let delivered = sim_get(&sim, "/_sim/webhooks/deliveries?state=delivered").await;
    let delivered = delivered.as_array().map_or_else(
        || delivered["deliveries"].as_array().unwrap().len(),
        Vec::len,
    );
    let failed = sim_get(&sim, "/_sim/webhooks/deliveries?state=failed").await;
    let failed = failed
        .as_array()
        .map_or_else(|| failed["deliveries"].as_array().unwrap().len(), Vec::len);
    assert_eq!(failed, 0);
    assert!(delivered >= 2000, "{delivered}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let h = health(&app, &t, &setup.con).await;
        if h["applied"].as_u64() == Some(delivered as u64) {
            assert_eq!(h["stored"].as_u64(), Some(delivered as u64), "{h}");
            break;
        }
        assert!(Instant::now() < deadline, "{h} vs {delivered} delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, (id, _)) in tickets.iter().enumerate() {
        let want = if i < 5 { "In Review" } else { "In Progress" };
        let v = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
        assert_eq!(v["status"], want, "{v}");
    }
}

async fn dynamic_hooks(sim: &Sim) -> Vec<Value> {
    sim_get(sim, "/_sim/webhooks/dynamic")
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn expires_at(app: &TestApp, t: &TestTenant, con: &str) -> String {
    health(app, t, con).await["registration_expires_at"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn dynamic_webhook_is_registered_once_across_restarts_refreshed_and_recreated() {
    let sim = Sim::cloud().await;
    let put = reqwest::Client::new()
        .put(sim.url("/_sim/webhooks/settings"))
        .json(&json!({"dynamic_expiry_secs": 600}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    // Deliveries go nowhere in this test (a closed loopback port); registrations are
    // what is looked at.
    let app = crate::oauth::oauth_env(TestApp::builder(), &sim)
        .env("JIRA_BRIDGE_PUBLIC_URL", "http://127.0.0.1:1")
        .spawn()
        .await;
    let t = app.create_tenant("acme").await;
    let c = crate::oauth::connect_one_site(&app, &t, &sim, "team-a").await;
    let con = c["id"].as_str().unwrap().to_owned();
    ticket(&app, &t, &con, 1).await;

    let r = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{con}/webhook-registration"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(r["action"], "registered", "{r}");
    assert_eq!(r["jql"], "project IN (\"OPS\")");
    let id1 = r["webhook_id"].as_i64().unwrap();
    let hooks = dynamic_hooks(&sim).await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(hooks[0]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/webhooks/jira/{con}")));
    assert_eq!(
        health(&app, &t, &con).await["registration_ids"],
        json!([id1])
    );

    // Two restarts: each start's upkeep finds the registration and refreshes it (the
    // expiry is short), never registering a second one.
    for _ in 0..2 {
        let before = expires_at(&app, &t, &con).await;
        let adv = reqwest::Client::new()
            .post(sim.url("/_sim/webhooks/advance"))
            .json(&json!({"seconds": 60}))
            .send()
            .await
            .unwrap();
        assert!(adv.status().is_success());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(jira_bridge::run(app.config.clone(), listener, stop.clone()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while expires_at(&app, &t, &con).await <= before {
            assert!(
                Instant::now() < deadline,
                "the restarted service did not refresh the webhook"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        server.await.unwrap().unwrap();
        let hooks = dynamic_hooks(&sim).await;
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        assert_eq!(hooks[0]["id"].as_i64(), Some(id1));
        assert_eq!(hooks[0]["expired"], false);
    }

    // Lost in Jira (expired): re-created, still one live registration.
    let exp = reqwest::Client::new()
        .post(sim.url("/_sim/webhooks/dynamic/expire"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(exp.status().is_success());
    let r = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{con}/webhook-registration"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(r["action"], "registered", "{r}");
    let id2 = r["webhook_id"].as_i64().unwrap();
    assert_ne!(id1, id2);
    let live: Vec<Value> = dynamic_hooks(&sim)
        .await
        .into_iter()
        .filter(|h| h["expired"] == false)
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["id"].as_i64(), Some(id2));
    // Asked again: kept or refreshed, never a second one.
    let r = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{con}/webhook-registration"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(r["webhook_id"].as_i64(), Some(id2), "{r}");
    let live: Vec<Value> = dynamic_hooks(&sim)
        .await
        .into_iter()
        .filter(|h| h["expired"] == false)
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
}

async fn events_of(app: &TestApp, t: &TestTenant, ty: &str) -> Vec<Value> {
    let page = TestApp::json_ok(app.get(t, "/v1/events?after=0&limit=500").await, 200).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == ty)
        .cloned()
        .collect()
}

#[tokio::test]
async fn summary_changes_and_deleted_issues_arrive_by_webhook() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    register_admin_webhook(&sim, &app, &setup).await;
    let (id, key) = ticket(&app, &t, &setup.con, 1).await;
    let (other, _) = ticket(&app, &t, &setup.con, 2).await;
    let created = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    assert_eq!(created["summary"], "Finding 1", "the summary as created");

    // Our own transition comes back by webhook and is not echoed: one status change.
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
    let idle = sim_get(&sim, "/_sim/webhooks/pending?wait_ms=60000").await;
    assert_eq!(idle["idle"], true, "{idle}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(&app, &t, &setup.con).await;
        if h["stored"].as_i64() >= Some(1) && h["applied"] == h["stored"] {
            break;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let changes: Vec<Value> = events_of(&app, &t, "ticket.status_changed")
        .await
        .into_iter()
        .filter(|e| e["subject"] == id.as_str())
        .collect();
    // The strict workflow went through its steps; each change is announced once
    // (by whichever came first, the webhook or our own write), none twice, and no
    // late webhook of a step moves the ticket back.
    let seen: Vec<(Value, Value)> = changes
        .iter()
        .map(|e| {
            (
                e["data"]["previous_status"].clone(),
                e["data"]["status"].clone(),
            )
        })
        .collect();
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|(_, to)| to == "Done").count(),
        1,
        "{seen:?}"
    );
    assert_eq!(seen.last().map(|(_, to)| to.clone()), Some(json!("Done")));
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    assert_eq!(v["status"], "Done", "{v}");

    sim_post(
        &sim,
        &format!("/_sim/issues/{key}/edit"),
        json!({"as": "bob", "fields": {"summary": "Renamed in Jira"}}),
    )
    .await;
    let v = wait_ticket(&app, &t, &id, |v| v["summary"] == "Renamed in Jira").await;
    assert!(v["issue_deleted_at"].is_null(), "{v}");
    let changed = events_of(&app, &t, "ticket.summary_changed").await;
    assert!(
        changed
            .iter()
            .any(|e| e["subject"] == id.as_str() && e["data"]["summary"] == "Renamed in Jira"),
        "{changed:?}"
    );

    let res = reqwest::Client::new()
        .delete(sim.url(&format!("/_sim/issues/{key}?as=alice")))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let v = wait_ticket(&app, &t, &id, |v| v["issue_deleted_at"].is_string()).await;
    // The ticket is kept (marked), with what was known.
    assert_eq!(v["issue_key"], key.as_str());
    assert_eq!(v["summary"], "Renamed in Jira");
    let deleted = events_of(&app, &t, "ticket.issue_deleted").await;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["subject"], id.as_str());
    // The other ticket is untouched.
    let o = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{other}")).await, 200).await;
    assert!(o["issue_deleted_at"].is_null(), "{o}");
}

#[tokio::test]
async fn worklog_webhooks_mark_conflicts_and_our_own_writes_are_not_echoed() {
    let sim = Sim::cloud().await;
    // The worklog feed poll is off: conflicts can only come by webhook.
    let app = crate::worklogs::worklog_env(TestApp::builder())
        .env("JIRA_BRIDGE_WORKLOGS_FEED_SECONDS", "0")
        .spawn()
        .await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    let admin = sim.scenario["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["admin"] == true)
        .cloned()
        .unwrap();
    let res = reqwest::Client::new()
        .post(sim.url("/rest/webhooks/1.0/webhook"))
        .basic_auth(
            admin["email"].as_str().unwrap(),
            admin["api_token"].as_str(),
        )
        .json(&json!({
            "name": "jira-bridge worklogs",
            "url": app.url(&setup.path),
            "events": ["worklog_created", "worklog_updated", "worklog_deleted"],
            "filters": {"issue-related-events-section": "project = OPS"},
            "excludeBody": false,
            "secret": setup.secret,
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (_, key) = ticket(&app, &t, &setup.con, 1).await;
    let put = |src: &'static str, body: Value| {
        let mut body = body;
        body["connection_id"] = json!(setup.con);
        app.client
            .put(app.url(&format!("/v1/time-entries/{src}")))
            .bearer_auth(&t.key)
            .json(&body)
            .send()
    };
    let sync = |src: &'static str, q: &'static str| {
        app.client
            .post(app.url(&format!("/v1/time-entries/{src}/sync{q}")))
            .bearer_auth(&t.key)
            .json(&json!({}))
            .send()
    };
    let entry = |src: &'static str| {
        app.client
            .get(app.url(&format!("/v1/time-entries/{src}")))
            .bearer_auth(&t.key)
            .send()
    };
    let settled = || async {
        // Every delivery the simulator made has been applied.
        let idle = sim_get(&sim, "/_sim/webhooks/pending?wait_ms=60000").await;
        assert_eq!(idle["idle"], true, "{idle}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let h = health(&app, &t, &setup.con).await;
            if h["applied"] == h["stored"] {
                return h;
            }
            assert!(Instant::now() < deadline, "{h}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let r = put(
        "w-1",
        json!({"issue_key": key, "started_at": "2026-03-03T09:00:00Z", "duration_seconds": 3600, "comment": "ours"}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let e: Value = sync("w-1", "").await.unwrap().json().await.unwrap();
    assert_eq!(e["state"], "synced", "{e}");
    let wid = e["worklog_id"].as_str().unwrap().to_owned();
    // Our own add and edit come back as webhooks and are no conflict.
    let r = put(
        "w-1",
        json!({"issue_key": key, "started_at": "2026-03-03T09:00:00Z", "duration_seconds": 1800, "comment": "ours, shorter"}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success());
    let e: Value = sync("w-1", "").await.unwrap().json().await.unwrap();
    assert_eq!(e["state"], "synced", "{e}");
    let h = settled().await;
    assert!(h["stored"].as_i64().unwrap() >= 2, "{h}");
    let e: Value = entry("w-1").await.unwrap().json().await.unwrap();
    assert_eq!(e["state"], "synced", "{e}");

    // Someone edits the worklog in Jira: a conflict, by webhook.
    let r = reqwest::Client::new()
        .put(sim.url(&format!("/_sim/issues/{key}/worklogs/{wid}")))
        .json(&json!({"as": "alice", "timeSpentSeconds": 7200}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + Duration::from_secs(30);
    let e = loop {
        let e: Value = entry("w-1").await.unwrap().json().await.unwrap();
        if e["state"] == "conflict" {
            break e;
        }
        assert!(Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(e["remote"]["time_spent_seconds"], 7200, "{e}");
    // Settled with prefer=local: our write is echoed and is no new conflict.
    let e: Value = sync("w-1", "?prefer=local")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["state"], "synced", "{e}");
    settled().await;
    let e: Value = entry("w-1").await.unwrap().json().await.unwrap();
    assert_eq!(e["state"], "synced", "{e}");

    // Deleted in Jira: a conflict with Jira's side deleted.
    let r = reqwest::Client::new()
        .delete(sim.url(&format!("/_sim/issues/{key}/worklogs/{wid}?as=alice")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let e: Value = entry("w-1").await.unwrap().json().await.unwrap();
        if e["state"] == "conflict" {
            assert_eq!(e["remote"]["deleted"], true, "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn deliveries_over_the_connection_rate_get_429_with_retry_after_and_are_not_stored() {
    let sim = Sim::cloud().await;
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_WEBHOOKS_INBOUND_RATE_PER_SECOND", "1")
        .env("JIRA_BRIDGE_WEBHOOKS_INBOUND_BURST", "3")
        .spawn()
        .await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    let url = app.url(&setup.path);
    // Twenty deliveries at once against a bucket of three refilled once a second.
    let mut sends = Vec::new();
    for n in 0..20 {
        let body =
            serde_json::to_vec(&json!({"webhookEvent": "jira:issue_updated", "n": n})).unwrap();
        let sig = sign(&setup.secret, &body);
        sends.push(
            app.client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-atlassian-webhook-identifier", format!("r-{n}"))
                .header("x-hub-signature", sig)
                .body(body)
                .send(),
        );
    }
    let mut accepted = 0;
    let mut limited = 0;
    for res in futures::future::join_all(sends).await {
        let res = res.unwrap();
        match res.status().as_u16() {
            202 => accepted += 1,
            429 => {
                let wait: u64 = res.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
                assert_problem(res, 429, "rate-limited").await;
                limited += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(
        limited > 0 && accepted >= 3,
        "{accepted} accepted, {limited} limited"
    );
    assert_eq!(accepted + limited, 20);
    let h = health(&app, &t, &setup.con).await;
    assert_eq!(h["stored"], accepted, "{h}");
    // Another connection has its own bucket.
    let mut body = cloud_token_body(&sim, "alice");
    body["name"] = json!("Second");
    let c = TestApp::json_ok(app.post(&t, "/v1/connections", body).await, 201).await;
    let con2 = c["id"].as_str().unwrap();
    let s = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{con2}/webhook-setup"),
            json!({}),
        )
        .await,
        201,
    )
    .await;
    let body = br#"{"webhookEvent":"jira:issue_updated"}"#.to_vec();
    let res = app
        .client
        .post(app.url(&format!("/v1/webhooks/jira/{con2}")))
        .header(
            "x-hub-signature",
            sign(s["secret"].as_str().unwrap(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
}

#[tokio::test]
async fn a_dynamic_webhook_delivered_with_its_jwt_is_accepted_and_a_wrong_jwt_refused() {
    let sim = Sim::cloud().await;
    // The service answers Jira at a second listener on the same database; its address
    // is the public URL the dynamic webhook is registered with.
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", public.local_addr().unwrap());
    let app = crate::oauth::oauth_env(TestApp::builder(), &sim)
        .env("JIRA_BRIDGE_PUBLIC_URL", &public_url)
        .spawn()
        .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let replica = tokio::spawn(jira_bridge::run(app.config.clone(), public, stop.clone()));
    let t = app.create_tenant("acme").await;
    let c = crate::oauth::connect_one_site(&app, &t, &sim, "team-a").await;
    let con = c["id"].as_str().unwrap().to_owned();
    let (id, key) = ticket(&app, &t, &con, 1).await;
    let r = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{con}/webhook-registration"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert!(
        r["action"] == "registered" || r["action"] == "kept" || r["action"] == "refreshed",
        "{r}"
    );

    sim_post(
        &sim,
        &format!("/_sim/issues/{key}/transition"),
        json!({"as": "alice", "to": "In Progress"}),
    )
    .await;
    wait_ticket(&app, &t, &id, |v| v["status"] == "In Progress").await;
    let idle = sim_get(&sim, "/_sim/webhooks/pending?wait_ms=60000").await;
    assert_eq!(idle["idle"], true, "{idle}");
    let delivered = sim_get(&sim, "/_sim/webhooks/deliveries?state=delivered").await;
    let list = delivered
        .as_array()
        .cloned()
        .unwrap_or_else(|| delivered["deliveries"].as_array().unwrap().clone());
    assert!(
        list.iter()
            .any(|d| d["kind"] == "dynamic" && d["signed"] == true),
        "{delivered}"
    );
    let h = health(&app, &t, &con).await;
    assert_eq!(h["rejected"], 0, "{h}");

    // A JWT signed with another secret is refused and changes nothing.
    let o = &sim.scenario["oauth"];
    let now = chrono::Utc::now().timestamp();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"aud": o["client_id"], "exp": now + 180, "iat": now}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-client-secret"),
    )
    .unwrap();
    let issue = sim_get(&sim, &format!("/_sim/issues/{key}")).await;
    let body = json!({
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": issue["id"], "key": key, "fields": {
            "status": {"id": "10001", "name": "Done", "statusCategory": {"id": 3, "key": "done", "name": "Done"}}
        }}
    });
    let res = app
        .client
        .post(format!("{public_url}/v1/webhooks/jira/{con}"))
        .bearer_auth(&forged)
        .header("x-atlassian-webhook-identifier", "forged-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let h = health(&app, &t, &con).await;
    assert_eq!(h["rejected"], 1, "{h}");
    assert_eq!(h["last_rejection"], "invalid bearer token", "{h}");
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/tickets/{id}")).await, 200).await;
    assert_eq!(v["status"], "In Progress");
    stop.cancel();
    replica.await.unwrap().unwrap();
}

/// The summary the database of the next test refuses to store (a trigger), standing
/// for any write that fails for one delivery alone.
const REFUSED: &str = "refused by the database";

/// A trigger that makes the database refuse [`REFUSED`] as a link's summary.
async fn refuse_summary(app: &TestApp) {
    use sqlx::Connection;
    match app.db.backend() {
        jira_bridge_store::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(app.db.url()).await.unwrap();
            sqlx::query(&format!(
                "CREATE TRIGGER refuse_summary BEFORE UPDATE OF summary ON links
                 WHEN NEW.summary = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'summary refused'); END"
            ))
            .execute(&mut c)
            .await
            .unwrap();
        }
        jira_bridge_store::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(app.db.url()).await.unwrap();
            sqlx::query(&format!(
                "CREATE FUNCTION refuse_summary() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.summary = '{REFUSED}' THEN RAISE EXCEPTION 'summary refused'; END IF;
                     RETURN NEW;
                 END $$"
            ))
            .execute(&mut c)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_summary BEFORE UPDATE ON links
                 FOR EACH ROW EXECUTE FUNCTION refuse_summary()",
            )
            .execute(&mut c)
            .await
            .unwrap();
        }
    }
}

/// Deliveries stored together are applied together; one the database refuses is
/// recorded as failed and the others of its batch are applied all the same. (The
/// deliveries are stored straight into the service's database, in one transaction,
/// so that the worker takes them as one batch.)
#[tokio::test]
async fn a_delivery_that_cannot_be_applied_does_not_hold_back_its_batch() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let setup = connect(&app, &t, &sim).await;
    let mut tickets = Vec::new();
    for n in 0..3 {
        let (id, key) = ticket(&app, &t, &setup.con, n).await;
        let issue = sim_get(&sim, &format!("/_sim/issues/{key}")).await;
        tickets.push((id, key, issue["id"].as_str().unwrap().to_owned()));
    }
    refuse_summary(&app).await;

    let at = |s: i64| {
        (chrono::Utc::now() + chrono::Duration::minutes(1) + chrono::Duration::seconds(s))
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string()
    };
    let body = |n: usize, summary: &str, status: &str, cat: &str, updated: String| {
        let (_, key, issue_id) = &tickets[n];
        json!({
            "timestamp": 1_711_814_400_000_i64, "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": {"id": issue_id, "key": key, "fields": {
                "summary": summary, "updated": updated,
                "status": {"id": "3", "name": status,
                           "statusCategory": {"id": 4, "key": cat, "name": status}}}}
        })
        .to_string()
    };
    let bodies = [
        body(0, "First, renamed", "In Progress", "indeterminate", at(1)),
        body(1, REFUSED, "In Progress", "indeterminate", at(2)),
        body(2, "Third, renamed", "In Progress", "indeterminate", at(3)),
        body(
            0,
            "First, renamed again",
            "In Review",
            "indeterminate",
            at(4),
        ),
    ];
    let tenant: jira_bridge_store::TenantId = t.id.parse().unwrap();
    let con: jira_bridge_store::ConnectionId = setup.con.parse().unwrap();
    let idents: Vec<String> = (0..bodies.len()).map(|i| format!("batch-{i}")).collect();
    let news: Vec<jira_bridge_store::inbound::NewInbound<'_>> = bodies
        .iter()
        .zip(&idents)
        .map(|(b, i)| jira_bridge_store::inbound::NewInbound {
            tenant_id: &tenant,
            connection_id: &con,
            identifier: i,
            event: "jira:issue_updated",
            body: b,
        })
        .collect();
    let store = app.store().await;
    let stored = store.insert_inbound_batch(&news).await.unwrap();
    assert_eq!(stored, vec![true; 4]);

    // Every delivery is applied (the refused one with its failure recorded).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(&app, &t, &setup.con).await;
        if h["applied"] == 4 {
            assert_eq!(h["stored"], 4, "{h}");
            break;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ticket_now = |id: String| {
        let (app, t) = (&app, &t);
        async move { TestApp::json_ok(app.get(t, &format!("/v1/tickets/{id}")).await, 200).await }
    };
    let first = ticket_now(tickets[0].0.clone()).await;
    assert_eq!(first["summary"], "First, renamed again", "{first}");
    assert_eq!(first["status"], "In Review", "{first}");
    let third = ticket_now(tickets[2].0.clone()).await;
    assert_eq!(third["summary"], "Third, renamed", "{third}");
    assert_eq!(third["status"], "In Progress", "{third}");
    // The refused delivery changed nothing at all: not its status either.
    let second = ticket_now(tickets[1].0.clone()).await;
    assert_eq!(second["summary"], "Finding 1", "{second}");
    assert_ne!(second["status"], "In Progress", "{second}");

    // Each applied change is announced once; the refused one not at all.
    let renamed: Vec<Value> = events_of(&app, &t, "ticket.summary_changed").await;
    let subjects: Vec<&str> = renamed
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        vec![
            tickets[0].0.as_str(),
            tickets[2].0.as_str(),
            tickets[0].0.as_str()
        ],
        "{renamed:?}"
    );
    let moved = events_of(&app, &t, "ticket.status_changed").await;
    assert!(
        moved.iter().all(|e| e["subject"] != tickets[1].0.as_str()),
        "{moved:?}"
    );
    assert_eq!(moved.len(), 3, "{moved:?}");
}
