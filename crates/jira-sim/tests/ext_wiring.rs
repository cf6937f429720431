//! OAuth bearer access through `/ex/jira/{cloudId}` and webhook delivery of changes made
//! through the control API.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{json, Value};

async fn oauth_token(s: &Sim, scope: &str) -> String {
    let o = &s.scenario["oauth"];
    let client_id = o["client_id"].as_str().unwrap();
    let redirect = format!("{}/callback", s.h.base_url());
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(s.h.url("/authorize"))
        .query(&[
            ("audience", "api.atlassian.com"),
            ("client_id", client_id),
            ("scope", scope),
            ("redirect_uri", redirect.as_str()),
            ("state", "xyz"),
            ("response_type", "code"),
            ("prompt", "consent"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let url = url::Url::parse(&loc).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let t: Value = s
        .http
        .post(s.h.url("/oauth/token"))
        .json(&json!({
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": o["client_secret"],
            "code": code,
            "redirect_uri": redirect,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn oauth_bearer_reaches_every_site_of_the_grant() {
    let s = cloud().await;
    let token = oauth_token(&s, "read:jira-user read:jira-work offline_access").await;
    let acme = s.scenario["sites"][0]["cloud_id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex = s.scenario["sites"][1]["cloud_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .http
        .get(s.h.url(&format!("/ex/jira/{acme}/rest/api/3/myself")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["accountId"], s.user("alice")["account_id"]);
    let r = s
        .http
        .get(s.h.url(&format!("/ex/jira/{globex}/rest/api/3/project/search")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["values"][0]["key"], "GLX");
    // Missing write scope: the gateway answers 401 "scope does not match".
    let r = s
        .http
        .post(s.h.url(&format!("/ex/jira/{acme}/rest/api/3/issue")))
        .bearer_auth(&token)
        .json(&json!({"fields": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("scope does not match"));
    // Garbage token.
    let r = s
        .http
        .get(s.h.url(&format!("/ex/jira/{acme}/rest/api/3/myself")))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Basic auth is not accepted on the gateway path.
    let r = s
        .req(
            "alice",
            Method::GET,
            &format!("/ex/jira/{acme}/rest/api/3/myself"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(vec![]));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let g = g.clone();
            async move {
                g.lock().push(body.0);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

async fn wait_for(got: &Arc<Mutex<Vec<Value>>>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = got.lock().clone();
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn control_api_changes_fire_admin_webhooks() {
    let s = cloud().await;
    let (url, got) = receiver().await;
    let (st, _) = s
        .post(
            "alice",
            "/rest/webhooks/1.0/webhook",
            json!({"name": "t", "url": url, "events": ["jira:issue_updated", "worklog_created"], "filters": {"issue-related-events-section": "project = OPS"}}),
        )
        .await;
    assert_eq!(st, 201);
    // Non-admins may not manage admin webhooks.
    assert_eq!(s.get("bob", "/rest/webhooks/1.0/webhook").await.0, 403);
    let (_, issues) = s
        .control(Method::GET, "/_sim/issues?project=OPS", None)
        .await;
    let todo = issues
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "To Do")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = s
        .control(
            Method::POST,
            &format!("/_sim/issues/{todo}/transition"),
            Some(json!({"as": "bob", "to": "In Progress"})),
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .control(
            Method::POST,
            &format!("/_sim/issues/{todo}/worklogs"),
            Some(json!({"as": "bob", "started": "2026-01-05T09:00:00.000+0100", "timeSpentSeconds": 3600})),
        )
        .await;
    assert_eq!(st, 201);
    // A change in WEB does not match the filter.
    let (_, web) = s
        .control(Method::GET, "/_sim/issues?project=WEB", None)
        .await;
    let web_key = web[0]["key"].as_str().unwrap().to_string();
    s.control(
        Method::POST,
        &format!("/_sim/issues/{web_key}/edit"),
        Some(json!({"fields": {"summary": "changed"}})),
    )
    .await;
    let events = wait_for(&got, 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let upd = events
        .iter()
        .find(|e| e["webhookEvent"] == "jira:issue_updated")
        .unwrap();
    assert_eq!(upd["issue"]["key"], todo.as_str());
    assert_eq!(upd["changelog"]["items"][0]["toString"], "In Progress");
    assert_eq!(upd["user"]["accountId"], s.user("bob")["account_id"]);
    let wl = events
        .iter()
        .find(|e| e["webhookEvent"] == "worklog_created")
        .unwrap();
    assert_eq!(wl["worklog"]["timeSpentSeconds"], 3600);
    let (_, stats) = s.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats["webhooks"]["acme"]["admin_webhooks"], 1);
}
