//! Kill the service (SIGKILL) in the middle of a bulk worklog sync and start it again:
//! no worklog is added twice and every entry ends synced.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jira_sim::SimConfig;
use serde_json::{json, Value};

use crate::helpers::ADMIN_KEY;
use crate::worklogs::{marker, sim_get, sim_put, sim_worklogs};

const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Service {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("JIRA_BRIDGE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .current_dir(dir)
        .arg("serve")
        .env("JIRA_BRIDGE_BIND", "127.0.0.1:0")
        .env("JIRA_BRIDGE_DATA_DIR", dir)
        .env(
            "JIRA_BRIDGE_DATABASE_URL",
            format!("sqlite:{}", dir.join("jb.db").display()),
        )
        .env("JIRA_BRIDGE_ADMIN_KEY", ADMIN_KEY)
        .env("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS", "true")
        .env("JIRA_BRIDGE_LOG_FORMAT", "json")
        .env("JIRA_BRIDGE_WORKLOGS_LEASE_SECONDS", "2")
        .env("JIRA_BRIDGE_WORKLOGS_POLL_MS", "100")
        .env("JIRA_BRIDGE_WORKLOGS_FEED_SECONDS", "0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take();
    let mut svc = Service {
        child,
        base: String::new(),
    };
    let stderr = stderr.unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the service did not log `serving`");
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["fields"]["message"] == "serving" {
                let addr = v["fields"]["address"].as_str().unwrap().to_owned();
                // Keep draining the log so the child never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                svc.base = format!("http://{addr}");
                return svc;
            }
        }
    }
}

#[tokio::test]
async fn killed_mid_bulk_sync_the_restarted_service_finishes_without_duplicates() {
    let mut cfg = SimConfig::cloud();
    cfg.pacing.worklog_feed_delay_ms = Some(0);
    let sim = jira_sim::spawn(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path());

    let r = http
        .post(format!("{}/v1/admin/tenants", svc.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "kill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key = r.json::<Value>().await.unwrap()["api_key"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{}/v1/connections", svc.base))
        .bearer_auth(&key)
        .json(
            &json!({"name": "jira", "kind": "cloud_token", "base_url": sim.base_url(),
            "email": "alice@example.com", "token": "ATATT-alice-api-token"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let con = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let issues: Vec<String> = sim_get(&http, &sim, "/_sim/issues?project=WEB")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    let n = 150;
    let mut ids = Vec::new();
    for i in 0..n {
        let src = format!("k-{i:03}");
        let r = http
            .put(format!("{}/v1/time-entries/{src}", svc.base))
            .bearer_auth(&key)
            .json(
                &json!({"connection_id": con, "issue_key": issues[i % issues.len()],
                "started_at": format!("2026-05-04T{:02}:{:02}:00+02:00", 8 + i / 60, i % 60),
                "duration_seconds": 900}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        ids.push(src);
    }
    // Slow Jira down so the kill lands mid-way.
    sim_put(
        &http,
        &sim,
        "/_sim/pacing",
        json!({"rate": 15, "burst": 5, "latency_ms": 40, "worklog_feed_delay_ms": 0}),
    )
    .await;
    // Three adds reach Jira but their answers never come back before the kill: the
    // restarted service must find them by their marker instead of adding again.
    sim_put(
        &http,
        &sim,
        "/_sim/faults",
        json!({"rules": [{"method": "POST", "path_contains": "/worklog",
        "fault": "unanswered_hold", "delay_ms": 120000, "count": 3, "skip": 20}]}),
    )
    .await;
    let r = http
        .post(format!("{}/v1/time-entries/sync", svc.base))
        .bearer_auth(&key)
        .json(&json!({"source_ids": ids}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let count = |http: reqwest::Client, sim_base: String, issues: Vec<String>| async move {
        let mut all = Vec::new();
        for k in &issues {
            let v: Value = http
                .get(format!("{sim_base}/_sim/issues/{k}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all.extend(v["worklogs"].as_array().cloned().unwrap_or_default());
        }
        all
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let made = count(http.clone(), sim.base_url().to_owned(), issues.clone())
            .await
            .len();
        if made >= 30 {
            break;
        }
        assert!(Instant::now() < deadline, "the sync did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut svc = svc;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(svc.child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    svc.child.wait().unwrap();
    let at_kill = count(http.clone(), sim.base_url().to_owned(), issues.clone())
        .await
        .len();
    assert!(
        at_kill < n,
        "the kill came after the sync finished ({at_kill})"
    );

    let mut svc = start(dir.path());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let r: Value = http
            .get(format!(
                "{}/v1/time-entries?state=synced&limit=500",
                svc.base
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["items"].as_array().unwrap().len() == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every entry was synced after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The held adds were adopted, not repeated.
    let reconciled: Value = http
        .get(format!(
            "{}/v1/sync-history?kind=worklog.reconcile&state=succeeded",
            svc.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        reconciled["items"].as_array().unwrap().len() >= 3,
        "{reconciled}"
    );
    let posts: u64 = sim_get(&http, &sim, "/_sim/stats").await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["endpoint"].as_str().unwrap_or("").ends_with("/worklog")
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    eprintln!("kill test: {at_kill} worklogs at the kill, {posts} worklog POSTs in all");
    // Exactly one worklog per entry, each with our marker.
    let mut per_entry = std::collections::HashMap::<String, usize>::new();
    for k in &issues {
        for w in sim_worklogs(&http, &sim, k).await {
            if let Some(id) = marker(&w) {
                *per_entry.entry(id).or_default() += 1;
            }
        }
    }
    assert_eq!(per_entry.len(), n);
    assert!(
        per_entry.values().all(|c| *c == 1),
        "duplicates: {per_entry:?}"
    );
    svc.child.kill().unwrap();
    svc.child.wait().unwrap();
}
