//! Pacing (token bucket, per-issue write limit), fault injection, index lag, stats and
//! recording.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use jira_sim::{FaultRule, Faults, Pacing, SimConfig};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn burst_above_rate_gets_429_and_stats_count_everything() {
    let s = start(SimConfig {
        pacing: Pacing {
            rate: Some(1.0),
            burst: Some(2.0),
            ..Pacing::default()
        },
        ..SimConfig::cloud()
    })
    .await;
    let reqs = (0..20).map(|_| s.req("alice", Method::GET, "/rest/api/3/myself").send());
    let resps = futures::future::join_all(reqs).await;
    let mut ok = 0;
    let mut limited = 0;
    for r in resps {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                limited += 1;
                let h = r.headers();
                let ra: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(ra >= 1);
                assert_eq!(h["ratelimit-reason"], "jira-burst-based");
                assert_eq!(h["x-ratelimit-limit"], "1");
                assert_eq!(h["x-ratelimit-remaining"], "0");
                assert!(h.contains_key("x-ratelimit-reset"));
                let body: Value = r.json().await.unwrap();
                assert!(body["errorMessages"].is_array());
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 2, "the burst is served");
    assert!(limited >= 1, "requests above the burst are refused");
    assert_eq!(ok + limited, 20);
    let (_, st) = s.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(st["total"], 20);
    assert_eq!(st["rate_limited"], limited);
    let rows = st["requests"].as_array().unwrap();
    let count = |status: u64| {
        rows.iter()
            .filter(|r| {
                r["endpoint"] == "/rest/api/3/myself"
                    && r["method"] == "GET"
                    && r["status"] == status
            })
            .map(|r| r["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count(200), ok);
    assert_eq!(count(429), limited);
    // Control calls are neither paced nor counted; reset clears the counters.
    assert_eq!(
        s.control(Method::POST, "/_sim/stats/reset", None).await.0,
        204
    );
    let (_, st) = s.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(st["total"], 0);
}

#[tokio::test]
async fn per_issue_write_limit() {
    let s = cloud().await;
    s.control(
        Method::PUT,
        "/_sim/pacing",
        Some(json!({"per_issue_write_limit": true})),
    )
    .await;
    let mut limited = None;
    for n in 0..60 {
        let r = s
            .req("alice", Method::PUT, "/rest/api/3/issue/WEB-1/properties/p")
            .json(&json!({"n": n}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
        assert!(r.status().is_success());
    }
    let r = limited.expect("the 21st write within 2 s is refused");
    assert_eq!(r.headers()["ratelimit-reason"], "jira-per-issue-on-write");
    // Other issues are not affected.
    let r = s
        .req("alice", Method::PUT, "/rest/api/3/issue/WEB-2/properties/p")
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test]
async fn scripted_errors_and_resets() {
    let s = start(SimConfig {
        faults: Faults {
            rules: vec![
                FaultRule {
                    method: Some("GET".into()),
                    path_contains: Some("/myself".into()),
                    fault: jira_sim::pacing::FaultKind::Error,
                    status: Some(503),
                    delay_ms: None,
                    count: Some(2),
                    skip: 0,
                },
                FaultRule {
                    method: Some("GET".into()),
                    path_contains: Some("/serverInfo".into()),
                    fault: jira_sim::pacing::FaultKind::Reset,
                    status: None,
                    delay_ms: None,
                    count: Some(1),
                    skip: 1,
                },
            ],
            ..Faults::default()
        },
        ..SimConfig::cloud()
    })
    .await;
    let mut statuses = vec![];
    for _ in 0..3 {
        statuses.push(s.get("alice", "/rest/api/3/myself").await.0);
    }
    assert_eq!(statuses, [503, 503, 200]);
    let info = s.h.url("/rest/api/3/serverInfo");
    assert_eq!(s.http.get(&info).send().await.unwrap().status(), 200);
    assert!(
        s.http.get(&info).send().await.is_err(),
        "second call is reset"
    );
    assert_eq!(s.http.get(&info).send().await.unwrap().status(), 200);
    let (_, st) = s.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(st["requests"], s.h.stats()["requests"]);
    assert_eq!(st["faults"]["error"], 2);
    assert_eq!(st["faults"]["reset"], 1);
    assert_eq!(st["total"], 6);
}

async fn count_issues(s: &Sim, project: &str) -> usize {
    s.control(
        Method::GET,
        &format!("/_sim/issues?project={project}"),
        None,
    )
    .await
    .1
    .as_array()
    .unwrap()
    .len()
}

#[tokio::test]
async fn applied_but_unanswered_writes_are_committed() {
    let s = cloud().await;
    let before = count_issues(&s, "WEB").await;
    s.control(
        Method::PUT,
        "/_sim/faults",
        Some(json!({"rules": [{"method": "POST", "path_contains": "/issue", "fault": "unanswered_reset", "count": 1}]})),
    )
    .await;
    let body = json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": "once"}});
    let r = s
        .req("alice", Method::POST, "/rest/api/3/issue")
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "no answer");
    assert_eq!(
        count_issues(&s, "WEB").await,
        before + 1,
        "but the issue exists"
    );

    // Hold mode: the client gives up, the write is there.
    s.control(
        Method::PUT,
        "/_sim/faults",
        Some(json!({"rules": [{"method": "POST", "path_contains": "/issue", "fault": "unanswered_hold", "delay_ms": 3000, "count": 1}]})),
    )
    .await;
    let r = s
        .req("alice", Method::POST, "/rest/api/3/issue")
        .json(&body)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(count_issues(&s, "WEB").await, before + 2);
}

#[tokio::test]
async fn random_faults_are_deterministic_under_the_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let s = start(SimConfig {
            seed,
            faults: Faults {
                error_rate: 0.5,
                ..Faults::default()
            },
            ..SimConfig::cloud()
        })
        .await;
        let mut v = vec![];
        for _ in 0..24 {
            v.push(s.get("alice", "/rest/api/3/myself").await.0);
        }
        v
    }
    let a = run(7).await;
    // The handle switches faults off at run time.
    let s = start(SimConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..SimConfig::cloud()
    })
    .await;
    assert_eq!(s.get("alice", "/rest/api/3/myself").await.0, 503);
    s.h.set_faults(Faults::default());
    assert_eq!(s.get("alice", "/rest/api/3/myself").await.0, 200);
    assert_eq!(a, run(7).await);
    assert!(a.contains(&503) && a.contains(&200));
}

#[tokio::test]
async fn index_lag_hides_new_issues_until_reconciled() {
    let s = cloud().await;
    s.control(
        Method::PUT,
        "/_sim/faults",
        Some(json!({"index_lag_ms": 600000})),
    )
    .await;
    let (_, c) = s
        .post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": "lagging"}}))
        .await;
    let key = c["key"].as_str().unwrap();
    let id: u64 = c["id"].as_str().unwrap().parse().unwrap();
    let jql = format!("key = {key}");
    let (_, v) = s
        .post("alice", "/rest/api/3/search/jql", json!({"jql": jql}))
        .await;
    assert_eq!(v["issues"].as_array().unwrap().len(), 0);
    let (_, v) = s
        .post(
            "alice",
            "/rest/api/3/search/jql",
            json!({"jql": jql, "reconcileIssues": [id]}),
        )
        .await;
    assert_eq!(v["issues"][0]["id"], id.to_string());
    assert_eq!(
        s.get("alice", &format!("/rest/api/3/issue/{key}")).await.0,
        200
    );
}

#[tokio::test]
async fn recording_writes_one_line_per_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    let s = start(SimConfig {
        record: Some(path.clone()),
        ..SimConfig::cloud()
    })
    .await;
    s.get("alice", "/rest/api/3/myself").await;
    s.post(
        "alice",
        "/rest/api/3/search/jql",
        json!({"jql": "project = WEB", "maxResults": 2}),
    )
    .await;
    s.control(Method::GET, "/_sim/stats", None).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines: Vec<Value> = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let l: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if l.len() >= 2 || Instant::now() > deadline {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), 2, "control calls are not recorded");
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[0]["path"], "/rest/api/3/myself");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["flavor"], "cloud");
    assert!(lines[0]["response_body"]["accountId"].is_string());
    assert_eq!(lines[1]["request_body"]["jql"], "project = WEB");
    assert_eq!(
        lines[1]["response_body"]["issues"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
