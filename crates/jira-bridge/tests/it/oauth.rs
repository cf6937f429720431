//! OAuth 2.0 (3LO) connections end to end against jira-sim's authorization server:
//! one and several sites, consent denied, replayed / forged / expired state, return_to,
//! refresh single-flight under 50 concurrent operations (SQLite, and PostgreSQL with
//! two service instances), revocation, and secrets that never leave the seal.

use std::collections::HashSet;

use jira_bridge::crypto::SealContext;
use jira_bridge_store::{Backend, ConnectionId, Store, TenantId};
use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{assert_problem, TestApp, TestAppBuilder, TestTenant};
use crate::secret_scan::capture_logs;

pub fn oauth_env(b: TestAppBuilder, sim: &Sim) -> TestAppBuilder {
    let o = &sim.scenario["oauth"];
    b.env(
        "JIRA_BRIDGE_OAUTH_CLIENT_ID",
        o["client_id"].as_str().unwrap(),
    )
    .env(
        "JIRA_BRIDGE_OAUTH_CLIENT_SECRET",
        o["client_secret"].as_str().unwrap(),
    )
    .env(
        "JIRA_BRIDGE_OAUTH_REDIRECT_URI",
        "http://127.0.0.1/callback",
    )
    .env("JIRA_BRIDGE_OAUTH_AUTHORIZE_URL", &sim.url("/authorize"))
    .env("JIRA_BRIDGE_OAUTH_TOKEN_URL", &sim.url("/oauth/token"))
    .env("JIRA_BRIDGE_OAUTH_API_URL", sim.h.base_url())
    .env("JIRA_BRIDGE_OAUTH_RETURN_TO_ORIGINS", "https://app.example")
}

async fn spawn_oauth(sim: &Sim) -> TestApp {
    oauth_env(TestApp::builder(), sim).spawn().await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The user's browser: start, consent at the simulator, come back with the query.
pub async fn consent(app: &TestApp, t: &TestTenant, start: Value) -> String {
    let s = TestApp::json_ok(app.post(t, "/v1/oauth/start", start).await, 201).await;
    let auth = s["authorization_url"].as_str().unwrap();
    let q: std::collections::HashMap<String, String> = url::Url::parse(auth)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(
        q["scope"].split(' ').any(|s| s == "offline_access"),
        "{auth}"
    );
    assert_eq!(q["prompt"], "consent");
    let r = no_redirects().get(auth).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let back = url::Url::parse(&loc).unwrap();
    assert_eq!(back.path(), "/callback");
    back.query().unwrap_or_default().to_owned()
}

pub async fn callback(app: &TestApp, query: &str) -> reqwest::Response {
    no_redirects()
        .get(app.url(&format!("/v1/oauth/callback?{query}")))
        .send()
        .await
        .unwrap()
}

pub async fn sim_post(sim: &Sim, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(
            if path.ends_with("next-sites") || path.ends_with("settings") {
                reqwest::Method::PUT
            } else {
                reqwest::Method::POST
            },
            sim.url(path),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

async fn oauth_stats(sim: &Sim) -> Value {
    reqwest::get(sim.url("/_sim/oauth/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn site(sim: &Sim, i: usize) -> String {
    sim.scenario["sites"][i]["cloud_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn consent_account(sim: &Sim) -> String {
    sim.scenario["oauth"]["consent_account_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Connect with exactly one site; the new connection.
pub async fn connect_one_site(app: &TestApp, t: &TestTenant, sim: &Sim, owner: &str) -> Value {
    sim_post(
        sim,
        "/_sim/oauth/next-sites",
        json!({"cloud_ids": [site(sim, 0)]}),
    )
    .await;
    let q = consent(app, t, json!({"owner": owner, "name": "Cloud via OAuth"})).await;
    let body = TestApp::json_ok(callback(app, &q).await, 201).await;
    assert_eq!(body["status"], "connected", "{body}");
    body["connection"].clone()
}

#[tokio::test]
async fn oauth_with_one_site_connects_and_calls_jira_through_the_gateway() {
    let sim = Sim::cloud().await;
    let app = spawn_oauth(&sim).await;
    let t = app.create_tenant("one-site").await;
    let c = connect_one_site(&app, &t, &sim, "u-1").await;
    assert_eq!(c["kind"], "cloud_oauth");
    assert_eq!(c["cloud_id"], site(&sim, 0).as_str());
    assert_eq!(c["owner"], "u-1");
    assert_eq!(c["name"], "Cloud via OAuth");
    assert_eq!(c["verification_status"], "valid");
    assert_eq!(c["account_id"], consent_account(&sim).as_str());
    assert!(c["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "read:jira-work"));
    assert!(c["token_expires_at"].is_string());
    let id = c["id"].as_str().unwrap();
    let p = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/projects")).await,
        200,
    )
    .await;
    assert!(!p["items"].as_array().unwrap().is_empty());
    let audit = TestApp::json_ok(
        app.get(&t, "/v1/audit?action=connection.connect").await,
        200,
    )
    .await;
    assert_eq!(audit["items"][0]["outcome"], "success");
    // Token connections' endpoint refuses the OAuth kind.
    let mut body = cloud_token_body(&sim, "alice");
    body["kind"] = json!("cloud_oauth");
    assert_problem(
        app.post(&t, "/v1/connections/verify", body).await,
        422,
        "validation",
    )
    .await;
}

#[tokio::test]
async fn oauth_with_several_sites_asks_which_one_and_never_picks_the_first() {
    let sim = Sim::cloud().await;
    let app = spawn_oauth(&sim).await;
    let t = app.create_tenant("multi").await;
    let q = consent(&app, &t, json!({"owner": "u-7"})).await;
    let body = TestApp::json_ok(callback(&app, &q).await, 200).await;
    assert_eq!(body["status"], "selection_required");
    assert!(body["connection"].is_null());
    let sel = &body["selection"];
    let sel_id = sel["id"].as_str().unwrap();
    let sites: HashSet<String> = sel["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cloud_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sites, HashSet::from([site(&sim, 0), site(&sim, 1)]));
    // Nothing connected yet.
    let listed = TestApp::json_ok(app.get(&t, "/v1/connections").await, 200).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    // Another tenant cannot see or complete it.
    let other = app.create_tenant("other").await;
    assert_problem(
        app.get(&other, &format!("/v1/oauth/selections/{sel_id}"))
            .await,
        404,
        "not-found",
    )
    .await;
    let got = TestApp::json_ok(
        app.get(&t, &format!("/v1/oauth/selections/{sel_id}")).await,
        200,
    )
    .await;
    assert_eq!(got["sites"].as_array().unwrap().len(), 2);
    assert_problem(
        app.post(
            &t,
            &format!("/v1/oauth/selections/{sel_id}"),
            json!({"cloud_id": "nope"}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let second = site(&sim, 1);
    let c = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/oauth/selections/{sel_id}"),
            json!({"cloud_id": second}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(c["cloud_id"], second.as_str());
    assert_eq!(c["owner"], "u-7");
    assert_eq!(c["verification_status"], "valid");
    let id = c["id"].as_str().unwrap();
    TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{id}/priorities"))
            .await,
        200,
    )
    .await;
    // Completed selections are gone.
    assert_problem(
        app.post(
            &t,
            &format!("/v1/oauth/selections/{sel_id}"),
            json!({"cloud_id": site(&sim, 0)}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn oauth_denied_replayed_forged_and_expired_states_are_refused() {
    let sim = Sim::cloud().await;
    let app = spawn_oauth(&sim).await;
    let t = app.create_tenant("states").await;

    // The user declines.
    sim_post(&sim, "/_sim/oauth/deny-next", json!({})).await;
    let q = consent(&app, &t, json!({})).await;
    assert!(q.contains("error=access_denied"), "{q}");
    let p = assert_problem(callback(&app, &q).await, 403, "oauth-access-denied").await;
    assert!(p["detail"].as_str().unwrap().contains("declined"), "{p}");

    // A state works once.
    sim_post(
        &sim,
        "/_sim/oauth/next-sites",
        json!({"cloud_ids": [site(&sim, 0)]}),
    )
    .await;
    let q = consent(&app, &t, json!({})).await;
    TestApp::json_ok(callback(&app, &q).await, 201).await;
    assert_problem(callback(&app, &q).await, 400, "oauth-state-replayed").await;

    // A forged or missing state.
    let q = consent(&app, &t, json!({})).await;
    let forged = q.replace("state=", "state=x");
    assert_problem(callback(&app, &forged).await, 400, "oauth-state-invalid").await;
    assert_problem(callback(&app, "code=abc").await, 400, "oauth-state-invalid").await;

    // return_to: only allow-listed origins; then the browser is redirected.
    assert_problem(
        app.post(
            &t,
            "/v1/oauth/start",
            json!({"return_to": "https://evil.example/x"}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    sim_post(
        &sim,
        "/_sim/oauth/next-sites",
        json!({"cloud_ids": [site(&sim, 0)]}),
    )
    .await;
    let q = consent(&app, &t, json!({"return_to": "https://app.example/done"})).await;
    let r = callback(&app, &q).await;
    assert_eq!(r.status(), 303);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(loc.origin().ascii_serialization(), "https://app.example");
    let cid = loc
        .query_pairs()
        .find(|(k, _)| k == "connection_id")
        .unwrap()
        .1
        .to_string();
    TestApp::json_ok(app.get(&t, &format!("/v1/connections/{cid}")).await, 200).await;

    // An expired state (a server whose states live zero seconds).
    let quick = oauth_env(TestApp::builder(), &sim)
        .env("JIRA_BRIDGE_OAUTH_STATE_TTL_SECONDS", "0")
        .spawn()
        .await;
    let tq = quick.create_tenant("quick").await;
    let q = consent(&quick, &tq, json!({})).await;
    let p = assert_problem(callback(&quick, &q).await, 400, "oauth-state-expired").await;
    assert!(p["detail"].as_str().unwrap().contains("start again"), "{p}");
    let listed = TestApp::json_ok(quick.get(&tq, "/v1/connections").await, 200).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
}

/// The stored token pair of a connection, opened with the service's key ring.
async fn stored_pair(app: &TestApp, store: &Store, tenant: &str, id: &str) -> (Value, i64) {
    let keys = jira_bridge::app::load_keys(&app.config).unwrap();
    let tenant: TenantId = tenant.parse().unwrap();
    let id: ConnectionId = id.parse().unwrap();
    let row = store.get_connection(&tenant, &id).await.unwrap().unwrap();
    let plain = keys
        .open(
            &row.secret,
            SealContext {
                table: "connections",
                row_id: id.as_str(),
                column: "secret",
            },
        )
        .unwrap();
    (serde_json::from_slice(&plain).unwrap(), row.token_version)
}

async fn fifty_at_expiry(apps: &[&TestApp], sim: &Sim) {
    let t = apps[0].create_tenant("burst").await;
    let c = connect_one_site(apps[0], &t, sim, "burst").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let store = apps[0].store().await;
    let (before, v0) = stored_pair(apps[0], &store, &t.id, &id).await;
    // No reuse leeway: a stale refresh token would now revoke the whole grant.
    sim_post(
        sim,
        "/_sim/oauth/settings",
        json!({"refresh_grace_secs": 0}),
    )
    .await;
    let s0 = oauth_stats(sim).await;
    sim_post(sim, "/_sim/oauth/expire-access-tokens", json!({})).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let app = apps[i % apps.len()];
        let url = app.url(&format!("/v1/connections/{id}/priorities?refresh=true"));
        let client = app.client.clone();
        let key = t.key.clone();
        tasks.push(tokio::spawn(async move {
            let r = client.get(url).bearer_auth(key).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }));
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let s1 = oauth_stats(sim).await;
    let delta = |k: &str| s1[k].as_u64().unwrap() - s0[k].as_u64().unwrap();
    assert_eq!(delta("refresh_requests"), 1, "{s0} -> {s1}");
    assert_eq!(delta("refreshes"), 1, "{s0} -> {s1}");
    let (after, v1) = stored_pair(apps[0], &store, &t.id, &id).await;
    assert_eq!(v1, v0 + 1);
    assert_ne!(after["refresh_token"], before["refresh_token"]);
    assert_ne!(after["access_token"], before["access_token"]);
    // The stored refresh token is the newest: with no leeway, refreshing again works
    // (an older one would have been refused and revoked the grant).
    sim_post(sim, "/_sim/oauth/expire-access-tokens", json!({})).await;
    TestApp::json_ok(
        apps[apps.len() - 1]
            .get(&t, &format!("/v1/connections/{id}/priorities?refresh=true"))
            .await,
        200,
    )
    .await;
    let s2 = oauth_stats(sim).await;
    assert_eq!(
        s2["refreshes"].as_u64().unwrap(),
        s1["refreshes"].as_u64().unwrap() + 1
    );
    assert_eq!(s2["refresh_rejected"], s1["refresh_rejected"]);
    let c = TestApp::json_ok(apps[0].get(&t, &format!("/v1/connections/{id}")).await, 200).await;
    assert_eq!(c["verification_status"], "valid");
    assert!(c["last_refreshed_at"].is_string());
    let audit = TestApp::json_ok(
        apps[0].get(&t, "/v1/audit?action=connection.refresh").await,
        200,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn fifty_concurrent_operations_at_token_expiry_refresh_exactly_once() {
    let sim = Sim::cloud().await;
    let app = oauth_env(TestApp::builder(), &sim)
        .env("JIRA_BRIDGE_DATABASE_MAX_CONNECTIONS", "8")
        .spawn()
        .await;
    fifty_at_expiry(&[&app], &sim).await;
}

#[tokio::test]
async fn two_instances_on_postgres_refresh_exactly_once() {
    let Ok(_) = std::env::var("JIRA_BRIDGE_TEST_POSTGRES_URL") else {
        eprintln!(
            "JIRA_BRIDGE_TEST_POSTGRES_URL not set: the two-replica case runs on PostgreSQL only"
        );
        return;
    };
    let sim = Sim::cloud().await;
    let a = spawn_oauth(&sim).await;
    assert_eq!(a.db.backend(), Backend::Postgres);
    let b = oauth_env(TestApp::builder(), &sim)
        .env("JIRA_BRIDGE_DATABASE_URL", a.db.url())
        .env("JIRA_BRIDGE_MASTER_KEY", &a.env["JIRA_BRIDGE_MASTER_KEY"])
        .spawn()
        .await;
    fifty_at_expiry(&[&a, &b], &sim).await;
}

#[tokio::test]
async fn a_revoked_grant_expires_the_connection_once_and_nothing_retries() {
    let sim = Sim::cloud().await;
    let app = spawn_oauth(&sim).await;
    let t = app.create_tenant("revoked").await;
    let c = connect_one_site(&app, &t, &sim, "rv").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let s0 = oauth_stats(&sim).await;
    sim_post(
        &sim,
        "/_sim/oauth/revoke",
        json!({"account_id": consent_account(&sim)}),
    )
    .await;
    let p = assert_problem(
        app.get(&t, &format!("/v1/connections/{id}/priorities?refresh=true"))
            .await,
        409,
        "connection-expired",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("connect"), "{p}");
    for _ in 0..5 {
        assert_problem(
            app.get(&t, &format!("/v1/connections/{id}/projects?refresh=true"))
                .await,
            409,
            "connection-expired",
        )
        .await;
    }
    let s1 = oauth_stats(&sim).await;
    assert_eq!(
        s1["refresh_requests"].as_u64().unwrap() - s0["refresh_requests"].as_u64().unwrap(),
        1,
        "one refresh attempt, no retry loop: {s0} -> {s1}"
    );
    let c = TestApp::json_ok(app.get(&t, &format!("/v1/connections/{id}")).await, 200).await;
    assert_eq!(c["verification_status"], "expired");
    assert!(
        c["last_error"].as_str().unwrap().contains("refresh token"),
        "{c}"
    );
    let store = app.store().await;
    let events = store
        .list_events(&t.id.parse().unwrap(), None, 100)
        .await
        .unwrap();
    let expired: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "connection.expired")
        .collect();
    assert_eq!(expired.len(), 1, "{events:?}");
    assert_eq!(expired[0].subject.as_deref(), Some(id.as_str()));
    assert_eq!(expired[0].data["connection_id"], id.as_str());
    // Re-verification does not try either, and keeps it expired.
    let rv = TestApp::json_ok(
        app.post(&t, &format!("/v1/connections/{id}/verify"), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(rv["verification_status"], "expired");
    let s2 = oauth_stats(&sim).await;
    assert_eq!(s2["refresh_requests"], s1["refresh_requests"]);
}

// ---- secrets ----

#[tokio::test]
async fn no_secret_in_responses_logs_or_the_database_file() {
    let logs = capture_logs();
    let cloud = Sim::cloud().await;
    let dc = Sim::data_center().await;
    let app = oauth_env(TestApp::builder().sqlite(), &cloud).spawn().await;
    let t = app.create_tenant("secrets").await;
    let mut responses = String::new();
    let mut keep = |v: &Value| responses.push_str(&v.to_string());

    let mut body = cloud_token_body(&cloud, "alice");
    keep(
        &TestApp::json_ok(
            app.post(&t, "/v1/connections/verify", body.clone()).await,
            200,
        )
        .await,
    );
    body["name"] = json!("token");
    let tok = TestApp::json_ok(app.post(&t, "/v1/connections", body).await, 201).await;
    keep(&tok);
    let pat = dc.user("alice")["pat"].as_str().unwrap().to_owned();
    let dcc = TestApp::json_ok(
        app.post(
            &t,
            "/v1/connections",
            json!({"name": "dc", "kind": "dc_pat", "base_url": dc.h.base_url(), "token": pat}),
        )
        .await,
        201,
    )
    .await;
    keep(&dcc);
    let mut wrong = cloud_token_body(&cloud, "bob");
    wrong["token"] = json!("wrong-secret-token-123");
    let r = app.post(&t, "/v1/connections/verify", wrong).await;
    keep(&r.json().await.unwrap());
    let oc = connect_one_site(&app, &t, &cloud, "s").await;
    keep(&oc);
    let oid = oc["id"].as_str().unwrap().to_owned();
    sim_post(&cloud, "/_sim/oauth/expire-access-tokens", json!({})).await;
    keep(
        &TestApp::json_ok(
            app.get(
                &t,
                &format!("/v1/connections/{oid}/priorities?refresh=true"),
            )
            .await,
            200,
        )
        .await,
    );
    for path in [
        "/v1/connections".to_owned(),
        format!("/v1/connections/{oid}"),
        "/v1/audit".to_owned(),
    ] {
        keep(&TestApp::json_ok(app.get(&t, &path).await, 200).await);
    }
    sim_post(
        &cloud,
        "/_sim/oauth/next-sites",
        json!({"cloud_ids": [site(&cloud, 0), site(&cloud, 1)]}),
    )
    .await;
    let q = consent(&app, &t, json!({})).await;
    let sel = TestApp::json_ok(callback(&app, &q).await, 200).await;
    keep(&sel);

    let store = app.store().await;
    let (pair, _) = stored_pair(&app, &store, &t.id, &oid).await;
    let mut secrets = vec![
        cloud.user("alice")["api_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        pat,
        "wrong-secret-token-123".to_owned(),
        pair["access_token"].as_str().unwrap().to_owned(),
        pair["refresh_token"].as_str().unwrap().to_owned(),
        cloud.scenario["oauth"]["client_secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    secrets.retain(|s| s.len() >= 8);
    assert_eq!(secrets.len(), 6);

    let logs = logs.text();
    assert!(
        logs.contains("OAuth tokens refreshed"),
        "debug logs were captured"
    );
    let db_path = app.db.url().trim_start_matches("sqlite:").to_owned();
    store.close().await;
    let mut raw = std::fs::read(&db_path).unwrap();
    raw.extend(std::fs::read(format!("{db_path}-wal")).unwrap_or_default());
    let raw = String::from_utf8_lossy(&raw).into_owned();
    for s in &secrets {
        assert!(
            !responses.contains(s.as_str()),
            "a secret is in an API response"
        );
        assert!(!logs.contains(s.as_str()), "a secret is in the logs");
        assert!(
            !raw.contains(s.as_str()),
            "a secret is in the database file"
        );
    }
}
