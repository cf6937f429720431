//! Shared helpers for the simulator's HTTP tests.
#![allow(dead_code, clippy::unwrap_used)]

use jira_sim::{SimConfig, SimHandle};
use serde_json::Value;

pub struct Sim {
    pub h: SimHandle,
    pub http: reqwest::Client,
    pub scenario: Value,
}

pub async fn start(cfg: SimConfig) -> Sim {
    let h = jira_sim::spawn(cfg).await.unwrap();
    let scenario = h.scenario();
    Sim {
        h,
        http: reqwest::Client::new(),
        scenario,
    }
}

pub async fn cloud() -> Sim {
    start(SimConfig::cloud()).await
}

impl Sim {
    pub fn user(&self, name: &str) -> Value {
        self.scenario["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .cloned()
            .unwrap()
    }

    /// A request authenticated as a scenario user (basic email:token on Cloud, PAT on DC).
    pub fn req(
        &self,
        as_user: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let u = self.user(as_user);
        let rb = self.http.request(method, self.h.url(path));
        if self.scenario["flavor"] == "dc" {
            rb.bearer_auth(u["pat"].as_str().unwrap())
        } else {
            rb.basic_auth(
                u["email"].as_str().unwrap(),
                Some(u["api_token"].as_str().unwrap()),
            )
        }
    }

    pub async fn get(&self, as_user: &str, path: &str) -> (u16, Value) {
        let r = self
            .req(as_user, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(
        &self,
        as_user: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .req(as_user, method, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, as_user: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(as_user, reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, as_user: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(as_user, reqwest::Method::PUT, path, body).await
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method, self.h.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

pub fn adf(text: &str) -> Value {
    serde_json::json!({"version":1,"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":text}]}]})
}
