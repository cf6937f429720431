//! Faults soak: bulk ticket creation and worklog syncs while the simulator answers
//! with 5xx, drops connections, answers slowly and throws 429 storms. Nothing is
//! lost, nothing duplicated, and the errors and retries show in `/metrics`.

use std::time::Duration;

use jira_bridge_store::test_support::TestDatabase;
use reqwest::Method;
use serde_json::{json, Value};

use crate::scale_out::Size;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workloads_under_injected_faults_lose_and_duplicate_nothing() {
    let (items, entries) = if Size::long() { (300, 300) } else { (40, 40) };
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let sim = jira_sim::spawn(jira_sim::SimConfig::cloud()).await.unwrap();
    let scenario = sim_get(&sim, "/_sim/scenario").await;
    // SQLite, or a PostgreSQL schema when the suite runs on PostgreSQL.
    let db = TestDatabase::from_env().await.unwrap();
    let env = service_env(db.url(), &sim, &scenario);
    let dir = tempfile::tempdir().unwrap();
    let mut replica = Replica::start("soak", &env, dir.path());
    let key = create_tenant(&replica.base, "soak").await;
    let rr = RoundRobin::new(vec![replica.base.clone()], &key);
    let con = connect_token(&replica.base, &key, &sim, "alice").await;
    let worklog_issues: Vec<String> = sim_get(&sim, "/_sim/issues?project=WEB")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .take(10)
        .collect();

    // From here on Jira misbehaves: random 503s, resets and slow answers, and two
    // 429 storms; reads are certain to meet a 503 and a reset.
    sim_send(&sim, Method::POST, "/_sim/stats/reset", json!({})).await;
    sim_send(
        &sim,
        Method::PUT,
        "/_sim/faults",
        json!({"error_rate": 0.08, "error_status": 503, "reset_rate": 0.04,
        "slow_rate": 0.1, "slow_ms": 300,
        "rules": [
          {"method": "GET", "fault": "error", "status": 503, "count": 2, "skip": 1},
          {"method": "GET", "fault": "reset", "count": 2, "skip": 4},
          {"fault": "rate_limit", "count": 6, "skip": 10},
          {"fault": "rate_limit", "count": 6, "skip": 60}
        ]}),
    )
    .await;

    let bulk: Vec<Value> = (0..items)
        .map(|i| {
            json!({"source": {"kind": "finding", "id": format!("soak-{i}")},
                        "summary": format!("Soak {i}")})
        })
        .collect();
    let job = rr
        .expect(
            Method::POST,
            "/v1/tickets/bulk",
            json!({"connection_id": con, "defaults": {"project_key": "OPS", "issue_type": "Task"},
                   "items": bulk}),
            Some("soak-bulk"),
            202,
        )
        .await["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::new();
    for i in 0..entries {
        let src = format!("soak-te-{i:04}");
        // Saving an entry checks the issue in Jira: a storm is passed on as 429.
        rr.expect_retrying(
            Method::PUT,
            &format!("/v1/time-entries/{src}"),
            json!({"connection_id": con, "issue_key": worklog_issues[i % worklog_issues.len()],
                   "started_at": format!("2026-05-05T{:02}:{:02}:00+02:00", 8 + (i / 60) % 10, i % 60),
                   "duration_seconds": 600 + i}),
            &[200, 201],
        )
        .await;
        ids.push(src);
    }
    rr.expect(
        Method::POST,
        "/v1/time-entries/sync",
        json!({"source_ids": ids}),
        Some("soak-sync"),
        202,
    )
    .await;

    let done = wait_job(&rr, &job, minutes(6)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["succeeded"], items as u64, "{done}");
    eventually("every time entry synced", minutes(6), || async {
        let v = rr.get("/v1/time-entries?state=synced&limit=500").await;
        (v["items"].as_array().unwrap().len() == entries).then_some(())
    })
    .await;

    // What Jira saw, before the faults are lifted for counting.
    let stats = sim_get(&sim, "/_sim/stats").await;
    sim_send(&sim, Method::PUT, "/_sim/faults", json!({})).await;

    // Nothing lost, nothing duplicated.
    let summaries = issue_summaries(&sim, "OPS").await;
    let soak: Vec<_> = summaries
        .iter()
        .filter(|(s, _)| s.starts_with("Soak "))
        .collect();
    assert_eq!(soak.len(), items, "every ticket exists");
    assert!(soak.iter().all(|(_, n)| **n == 1), "duplicates: {soak:?}");
    let per_entry = worklogs_per_entry(&sim, &worklog_issues).await;
    assert_eq!(per_entry.len(), entries, "every worklog exists");
    assert!(
        per_entry.values().all(|n| *n == 1),
        "duplicate worklogs: {per_entry:?}"
    );

    // The faults happened, and /metrics shows them as Jira sent them.
    let faults = &stats["faults"];
    assert!(faults["error"].as_u64().unwrap() >= 2, "{stats}");
    assert!(faults["reset"].as_u64().unwrap() >= 2, "{stats}");
    assert!(faults["rate_limit"].as_u64().unwrap() >= 12, "{stats}");
    let metrics = reqwest::get(replica.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let upstream = |status: &str| {
        metric_sum(
            &metrics,
            "jira_bridge_upstream_responses_total",
            &[("status", status)],
        )
    };
    let sim_status = |status: &str| stats["by_status"][status].as_f64().unwrap_or(0.0);
    assert_eq!(upstream("429"), sim_status("429"), "429s: {metrics}");
    assert_eq!(upstream("503"), sim_status("503"), "503s: {metrics}");
    let retries = |reason: &str| {
        metric_sum(
            &metrics,
            "jira_bridge_upstream_retries_total",
            &[("reason", reason)],
        )
    };
    assert!(retries("rate_limited") >= 1.0, "{metrics}");
    assert!(retries("server_error") >= 1.0, "{metrics}");
    assert!(retries("transport") >= 1.0, "{metrics}");
    assert!(
        metric_sum(&metrics, "jira_bridge_upstream_transport_errors_total", &[])
            >= faults["reset"].as_f64().unwrap().min(1.0),
        "{metrics}"
    );
    eprintln!(
        "soak: {items} tickets and {entries} worklogs through faults {faults}; retries: rate_limited {}, server_error {}, transport {}",
        retries("rate_limited"),
        retries("server_error"),
        retries("transport")
    );
    assert!(replica.running());
    assert_eq!(replica.terminate().code(), Some(0), "clean stop");
}
