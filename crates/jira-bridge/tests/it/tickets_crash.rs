//! Acceptance 2: the service process is killed (SIGKILL) in the middle of a 500-item
//! bulk job while the simulator answers slowly and holds the answer of a bulk create
//! it has applied (the window between Jira's answer and our commit). After a restart
//! the job completes and the simulator holds exactly 500 new issues.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jira_bridge_store::test_support::TestDatabase;
use jira_bridge_store::Backend;
use jira_sim::SimConfig;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");
const ADMIN: &str = "crash-admin-key-0123456789abcdef0123456789";

struct Service {
    child: Child,
    base: String,
}

impl Service {
    fn start(env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("JIRA_BRIDGE_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve").envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("no 'serving' log line");
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "serving" {
                    break format!("http://{}", v["fields"]["address"].as_str().unwrap());
                }
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Self { child, base }
    }

    fn kill(&mut self) {
        // std's Child::kill sends SIGKILL on Unix: no graceful shutdown, no commits.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn poll<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigkill_mid_bulk_job_then_restart_creates_exactly_500() {
    let sim = jira_sim::spawn(SimConfig::cloud()).await.unwrap();
    let http = reqwest::Client::new();
    let sim_issues = || async {
        let v: Value = reqwest::get(sim.url("/_sim/issues?project=WEB"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array()
            .map_or_else(|| v["issues"].as_array().unwrap().len(), Vec::len)
    };
    let before = sim_issues().await;
    // Slow answers: a bulk create of 50 takes about a second.
    let r = http
        .put(sim.url("/_sim/pacing"))
        .json(&json!({"latency_ms": 100, "latency_per_item_ms": 20}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let db = TestDatabase::from_env().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("JIRA_BRIDGE_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "JIRA_BRIDGE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("JIRA_BRIDGE_DATABASE_URL".to_owned(), db.url().to_owned()),
        ("JIRA_BRIDGE_ADMIN_KEY".to_owned(), ADMIN.to_owned()),
        (
            "JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS".to_owned(),
            "true".to_owned(),
        ),
        ("JIRA_BRIDGE_LOG_FORMAT".to_owned(), "json".to_owned()),
        ("JIRA_BRIDGE_LOG".to_owned(), "info".to_owned()),
        // Two batches at a time, so that the job is still running when a bulk create
        // is held (with more, all ten batches would be in flight at once).
        ("JIRA_BRIDGE_JOBS_CONCURRENCY".to_owned(), "2".to_owned()),
    ];
    if db.backend() == Backend::Postgres {
        env.push((
            "JIRA_BRIDGE_MASTER_KEY".to_owned(),
            jira_bridge::crypto::generate_key()
                .expose_secret()
                .to_owned(),
        ));
    }
    let mut svc = Service::start(&env);

    let t: Value = http
        .post(format!("{}/v1/admin/tenants", svc.base))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = t["api_key"]["key"].as_str().unwrap().to_owned();
    let con: Value = http
        .post(format!("{}/v1/connections", svc.base))
        .bearer_auth(&key)
        .json(
            &json!({"name": "sim", "kind": "cloud_token", "base_url": sim.base_url(),
            "email": "alice@example.com", "token": "ATATT-alice-api-token"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let con = con["id"].as_str().unwrap().to_owned();
    let items: Vec<Value> = (0..500)
        .map(|i| json!({"source": {"kind": "story", "id": format!("s-{i}")}, "summary": format!("Story {i}")}))
        .collect();
    let accepted: Value = http
        .post(format!("{}/v1/tickets/bulk", svc.base))
        .bearer_auth(&key)
        .json(&json!({"connection_id": con, "defaults": {"project_key": "WEB", "issue_type": "Task"}, "items": items}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = accepted["job_id"].as_str().unwrap().to_owned();
    let job_url = |base: &str| format!("{base}/v1/jobs/{job}");

    // Let some batches finish, then make Jira apply the next bulk create and hold its
    // answer; kill the service while it waits.
    let base = svc.base.clone();
    poll("100 items done", 120, || {
        let (http, key, url) = (http.clone(), key.clone(), job_url(&base));
        async move {
            let j: Value = http
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            j["succeeded"].as_i64().unwrap_or(0) >= 100
        }
    })
    .await;
    let r = http
        .put(sim.url("/_sim/faults"))
        .json(&json!({"rules": [{"method": "POST", "path_contains": "/issue/bulk", "fault": "unanswered_hold", "delay_ms": 600000, "count": 1}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    poll("a held bulk create", 60, || async {
        let s: Value = reqwest::get(sim.url("/_sim/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["faults"]["unanswered"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let j: Value = http
        .get(job_url(&svc.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        j["succeeded"].as_i64().unwrap() < 500,
        "killed mid-job: {j}"
    );
    svc.kill();
    let applied_unanswered = sim_issues().await - before;
    assert!(
        applied_unanswered as i64 > j["succeeded"].as_i64().unwrap(),
        "Jira holds issues we never recorded"
    );
    http.put(sim.url("/_sim/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    // Restart: the dead worker's leases expire, the items run again, reconcile, finish.
    let svc = Service::start(&env);
    let base = svc.base.clone();
    poll("the job to finish after the restart", 240, || {
        let (http, key, url) = (http.clone(), key.clone(), job_url(&base));
        async move {
            let j: Value = http
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            j["state"] == "succeeded" || j["state"] == "failed" || j["state"] == "partially_failed"
        }
    })
    .await;
    let j: Value = http
        .get(job_url(&svc.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["succeeded"], 500);
    assert_eq!(sim_issues().await - before, 500, "exactly 500 issues");
    let page: Value = http
        .get(format!("{}/v1/jobs/{job}/items?limit=500", svc.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let adopted = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"]["adopted"] == json!(true))
        .count();
    assert!(
        adopted >= 50,
        "the held batch was adopted, not created again ({adopted})"
    );
}
