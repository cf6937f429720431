//! Acceptance: a widely used client written by others, the PyPI `jira` library
//! (pycontribs), works unchanged against the simulator.
//!
//! Each test starts a simulator on a free port with recording on and runs
//! `tests/conformance/pyjira_smoke.py` from the conformance venv against it. The script
//! asserts keys, counts and statuses itself; the test asserts its exit status (printing
//! its output on failure) and checks from the recording which endpoints the library used.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jira_sim::conformance::{conformance_dir, ensure_setup, venv_python};
use jira_sim::SimConfig;
use serde_json::Value;

const CLOUD_EMAIL: &str = "alice@example.com";
const CLOUD_TOKEN: &str = "ATATT-alice-api-token";
const DC_PAT: &str = "PAT-alice-personal-access-token";

/// Runs the smoke script; returns the recorded exchanges.
async fn run_smoke(cfg: SimConfig, args: &[&str]) -> Vec<Value> {
    ensure_setup().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("exchanges.jsonl");
    let sim = jira_sim::spawn(SimConfig {
        record: Some(record.clone()),
        ..cfg
    })
    .await
    .unwrap();
    let mut cmd = tokio::process::Command::new(venv_python());
    cmd.arg(conformance_dir().join("pyjira_smoke.py"))
        .arg("--server")
        .arg(sim.base_url())
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("pyjira_smoke.py did not finish within 300 s")
        .unwrap();
    sim.shutdown().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pyjira_smoke.py {args:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    println!("{stdout}");
    std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn requests(exchanges: &[Value]) -> Vec<(String, String, u64)> {
    exchanges
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("").to_string(),
                e["path"].as_str().unwrap_or("").to_string(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_jira_library_works_against_cloud() {
    let exchanges = run_smoke(
        SimConfig::cloud(),
        &[
            "--flavor",
            "cloud",
            "--user",
            CLOUD_EMAIL,
            "--token",
            CLOUD_TOKEN,
        ],
    )
    .await;
    let reqs = requests(&exchanges);
    let hit = |method: &str, path: &str| {
        reqs.iter()
            .filter(|(m, p, _)| m == method && p == path)
            .count()
    };
    // Searches went to /search/jql; the removed /search was never called.
    assert!(hit("GET", "/rest/api/2/search/jql") >= 4, "{reqs:?}");
    let old_search = [
        "/rest/api/2/search",
        "/rest/api/3/search",
        "/rest/api/latest/search",
    ];
    assert_eq!(
        reqs.iter()
            .filter(|(_, p, _)| old_search.contains(&p.as_str()))
            .count(),
        0,
        "{reqs:?}"
    );
    assert_eq!(hit("POST", "/rest/api/2/issue/bulk"), 1, "{reqs:?}");
    assert!(hit("POST", "/rest/api/2/issue") >= 1, "{reqs:?}");
    // Every call the library made succeeded, except a deliberate 404 for a missing
    // issue (the bulk create's partial failure answers 201) and, if the simulator treats
    // it as removed, the deprecated global createmeta.
    let failures: Vec<_> = reqs.iter().filter(|(_, _, s)| *s >= 400).collect();
    let allowed = [
        "/rest/api/2/issue/createmeta",
        "/rest/api/2/issue/OPS-999999",
    ];
    assert!(
        failures
            .iter()
            .any(|(_, p, s)| *s == 404 && p == "/rest/api/2/issue/OPS-999999")
            && failures
                .iter()
                .all(|(_, p, s)| *s == 404 && allowed.contains(&p.as_str())),
        "unexpected failures: {failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_jira_library_works_against_data_center_with_a_pat() {
    let exchanges = run_smoke(
        SimConfig::data_center(),
        &["--flavor", "dc", "--pat", DC_PAT],
    )
    .await;
    let reqs = requests(&exchanges);
    assert!(
        reqs.iter()
            .any(|(m, p, s)| m == "GET" && p == "/rest/api/2/search" && *s == 200),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|(_, p, _)| p.starts_with("/rest/api/2/issue/createmeta/OPS/issuetypes/")),
        "{reqs:?}"
    );
    let failures: Vec<_> = reqs.iter().filter(|(_, _, s)| *s >= 400).collect();
    assert_eq!(failures.len(), 1, "unexpected failures: {failures:?}");
}
