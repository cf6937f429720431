//! Property-based API fuzzing with schemathesis (PyPI, pinned in
//! `tests/api-fuzz/requirements.txt`) against the service's own OpenAPI document, on a
//! live service and simulator, with a tenant key.
//!
//! Checks: no 5xx (`not_a_server_error`), every 4xx a problem document of ours, no
//! response carrying another tenant's ids or names, no response echoing a Jira token or
//! the admin key (the last three in `tests/api-fuzz/hooks.py`). Bounded by
//! `JB_FUZZ_EXAMPLES` (examples per operation, default 8) and `JB_FUZZ_MAX_TIME`
//! (seconds, default 120); `JB_FUZZ_SEED` fixes the seed (default 1). For a longer run:
//! `JB_FUZZ_EXAMPLES=200 JB_FUZZ_MAX_TIME=1800 cargo test -p jira-bridge --test it api_fuzz`.

use std::process::Stdio;

use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{python_tool, repo_root, TestApp, ADMIN_KEY};

const MARKER: &str = "foreign-tenant-marker-c0ffee";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_bad_problem_or_leak() {
    let venv = python_tool("api-fuzz");
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;

    // The other tenant: objects whose ids and names must never show up.
    let other = app.create_tenant(&format!("{MARKER}-tenant")).await;
    let mut body = cloud_token_body(&sim, "bob");
    body["name"] = json!(format!("{MARKER} connection"));
    let con_b = TestApp::json_ok(app.post(&other, "/v1/connections", body).await, 201).await;
    let con_b = con_b["id"].as_str().unwrap().to_owned();
    let cfg_b = TestApp::json_ok(
        app.post(
            &other,
            "/v1/configs",
            json!({"name": format!("{MARKER} config"), "connection_id": con_b,
                   "targets": [{"name": "WEB", "project_key": "WEB", "issue_type": "Task"}]}),
        )
        .await,
        201,
    )
    .await;
    let sub_b = TestApp::json_ok(
        app.post(
            &other,
            "/v1/subscriptions",
            json!({"url": "http://127.0.0.1:9/hook", "description": MARKER}),
        )
        .await,
        201,
    )
    .await;
    let foreign = [
        other.id.clone(),
        other.key_id.clone(),
        con_b.clone(),
        cfg_b["id"].as_str().unwrap().to_owned(),
        sub_b["id"].as_str().unwrap().to_owned(),
        MARKER.to_owned(),
    ];

    // The fuzzing tenant, with a connection so reads that reach Jira have one.
    let me = app.create_tenant("fuzzer").await;
    let mut body = cloud_token_body(&sim, "alice");
    body["name"] = json!("fuzz connection");
    TestApp::json_ok(app.post(&me, "/v1/connections", body).await, 201).await;

    let secrets = [
        sim.user("alice")["api_token"].as_str().unwrap().to_owned(),
        sim.user("bob")["api_token"].as_str().unwrap().to_owned(),
        ADMIN_KEY.to_owned(),
        other.key.clone(),
    ];

    let report = tempfile::tempdir().unwrap();
    let fuzz_dir = repo_root().join("tests/api-fuzz");
    let out = tokio::process::Command::new(venv.join("bin/st"))
        .current_dir(report.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &fuzz_dir)
        .env("JB_FUZZ_FOREIGN", foreign.join(","))
        .env("JB_FUZZ_SECRETS", secrets.join(","))
        .env("NO_COLOR", "1")
        .args(["run", "--no-color"])
        .arg(repo_root().join("crates/jira-bridge/openapi.json"))
        .args(["--url", &app.base])
        .args(["-H", &format!("Authorization: Bearer {}", me.key)])
        .args([
            "--checks",
            "not_a_server_error,problem_json_errors,no_foreign_tenant_data,no_secret_echo",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &env_or("JB_FUZZ_EXAMPLES", "8")])
        .args(["--max-time", &env_or("JB_FUZZ_MAX_TIME", "120")])
        .args(["--seed", &env_or("JB_FUZZ_SEED", "1")])
        // One worker: hypothesis' lambda-source cache is not thread-safe in this version.
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--output-sanitize", "false"])
        .arg("--report-dir")
        .arg(report.path())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run schemathesis (tests/api-fuzz/setup.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis reported findings (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    // It did test: every operation of the document was exercised.
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("crates/jira-bridge/openapi.json")).unwrap(),
    )
    .unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert!(
        stdout.contains(&format!("Tested: {operations}")),
        "not every one of the {operations} operations was tested:\n{stdout}"
    );
    // The other tenant's objects are intact.
    let res = app.get(&other, &format!("/v1/connections/{con_b}")).await;
    assert_eq!(res.status(), 200);
}
