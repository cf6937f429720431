use std::sync::Arc;
use std::time::Duration;

use jira_client::{ClientOptions, Flavor, JiraClient, Pacer, PacerConfig, RetryConfig, SiteConfig};
use jira_sim::{SimConfig, SimHandle};
use secrecy::SecretString;
use serde_json::Value;

pub const EMAIL: &str = "alice@example.com";
pub const API_TOKEN: &str = "ATATT-alice-api-token";
pub const PAT: &str = "PAT-alice-personal-access-token";

pub async fn sim(flavor: jira_sim::Flavor) -> SimHandle {
    sim_with(SimConfig {
        flavor,
        ..SimConfig::default()
    })
    .await
}

pub async fn sim_with(cfg: SimConfig) -> SimHandle {
    jira_sim::spawn(cfg).await.expect("simulator starts")
}

/// Fast retries so fault tests stay quick; everything else as shipped.
pub fn test_pacer() -> Arc<Pacer> {
    Pacer::new(PacerConfig {
        retry: RetryConfig {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryConfig::default()
        },
        ..PacerConfig::default()
    })
}

pub fn site(sim: &SimHandle) -> SiteConfig {
    // The tests act as the scenario's first user (an admin); fail clearly if it changes.
    let scenario = sim.scenario();
    let user = &scenario["users"][0];
    assert_eq!(user["email"], EMAIL, "scenario user changed: {user}");
    assert_eq!(
        user["api_token"], API_TOKEN,
        "scenario user changed: {user}"
    );
    assert_eq!(user["pat"], PAT, "scenario user changed: {user}");
    let base = sim.base_url().parse().unwrap();
    match sim.flavor() {
        jira_sim::Flavor::Cloud => {
            SiteConfig::cloud_basic(base, EMAIL, SecretString::from(API_TOKEN))
        }
        jira_sim::Flavor::DataCenter => SiteConfig::data_center_pat(base, SecretString::from(PAT)),
    }
}

pub fn client(sim: &SimHandle) -> JiraClient {
    client_with(site(sim), test_pacer(), ClientOptions::default())
}

pub fn client_with(site: SiteConfig, pacer: Arc<Pacer>, options: ClientOptions) -> JiraClient {
    JiraClient::builder(site)
        .pacer(pacer)
        .options(options)
        .build()
        .unwrap()
}

pub fn auto_client(sim: &SimHandle) -> JiraClient {
    let mut s = site(sim);
    s.flavor = Flavor::Auto;
    client_with(s, test_pacer(), ClientOptions::default())
}

pub fn is_cloud(sim: &SimHandle) -> bool {
    sim.flavor() == jira_sim::Flavor::Cloud
}

pub fn flavors() -> [jira_sim::Flavor; 2] {
    [jira_sim::Flavor::Cloud, jira_sim::Flavor::DataCenter]
}

pub fn api(sim: &SimHandle) -> &'static str {
    if is_cloud(sim) {
        "/rest/api/3"
    } else {
        "/rest/api/2"
    }
}

pub async fn control(
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let http = reqwest::Client::new();
    let mut rb = http.request(method, sim.url(path));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

pub async fn stats(sim: &SimHandle) -> Value {
    control(sim, reqwest::Method::GET, "/_sim/stats", None).await
}

/// Requests counted by the simulator for `method` + matched endpoint (and status).
pub fn count(stats: &Value, method: &str, endpoint: &str, status: Option<u64>) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["endpoint"] == endpoint)
        .filter(|r| status.is_none_or(|s| r["status"] == s))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// A description in the flavor's format.
pub fn text_body(sim: &SimHandle, text: &str) -> Value {
    if is_cloud(sim) {
        serde_json::json!({
            "type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]
        })
    } else {
        Value::String(text.to_string())
    }
}

pub async fn create_task(
    c: &JiraClient,
    project: &str,
    summary: &str,
) -> jira_client::CreatedIssue {
    c.create_issue(
        &jira_client::IssueInput::new()
            .project_key(project)
            .issue_type_name("Task")
            .summary(summary),
    )
    .await
    .unwrap()
}
