//! `jira-bridge export` and `jira-bridge releases` against the demo: YAML and JSON
//! input, dry run, summary, exit codes.

use std::process::Command;

use serde_json::{json, Value};

use super::Demo;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// POST to the simulator's control API (curl, like the demo's printed examples);
/// answers whether it succeeded.
fn sim_post(demo: &Demo, path: &str, body: &Value) -> bool {
    Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(body.to_string())
        .arg(format!("{}{path}", demo.s("sim_url")))
        .output()
        .unwrap()
        .status
        .success()
}

const PLAN: &str = "\
project_key: WEB
epics:
  - source: cli-e1
    summary: Checkout revamp
    labels: [cli]
    stories:
      - source: cli-e1-s1
        summary: Pay with a saved card
        acceptance_criteria: [Card is offered, Payment succeeds]
        story_points: 3
      - source: cli-e1-s2
        summary: Guest checkout
  - source: cli-e2
    summary: Search
    stories:
      - source: cli-e2-s1
        summary: Typo tolerance
";

#[test]
fn export_and_releases_commands() {
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(dir.path(), "plan.yaml", PLAN);

    // Dry run: the plan, nothing created.
    let plan = demo.json(&["export", &yaml, "--dry-run"]);
    assert_eq!(plan["counts"]["create"], 5, "{plan}");
    assert_eq!(plan["project_style"], "team-managed");
    let out = demo.run(&["export", &yaml, "--dry-run"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("5 to create"), "{text}");
    assert!(text.contains("cli-e1-s2"), "{text}");

    // The export, with its summary.
    let out = demo.run(&["export", &yaml]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("succeeded: 5 created, 0 existing"), "{text}");

    // Again: nothing new.
    let v = demo.json(&["export", &yaml]);
    assert_eq!(v["counts"]["existing"], 5, "{v}");
    assert_eq!(v["counts"]["created"], 0);
    assert_eq!(v["job"]["state"], "succeeded");
    let e1 = v["epics"][0]["issue_key"].as_str().unwrap().to_owned();
    assert!(e1.starts_with("WEB-"));

    // JSON input (a list of epics) with an invalid epic: exit 1, its story held.
    let bad = json!([{"source": "cli-e3", "summary": "Broken", "labels": ["bad label"],
        "stories": [{"source": "cli-e3-s1", "summary": "Waits"}]}]);
    let file = write(dir.path(), "bad.json", &bad.to_string());
    let out = demo.run(&["export", &file, "--project", "WEB"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("held story:cli-e3-s1"), "{text}");
    assert!(
        text.contains("0 created, 0 existing, 1 failed, 1 held"),
        "{text}"
    );

    // Usage errors: exit 2.
    let out = demo.run(&["export", "/nonexistent/plan.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let broken = write(dir.path(), "broken.yaml", "epics: [unclosed");
    let out = demo.run(&["export", &broken, "--project", "WEB"]);
    assert_eq!(out.status.code(), Some(2));

    // Releases: the demo's config has targets `web` and `ops`.
    let cfg = demo.info["seeded"]["release"]["config_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = demo.json(&[
        "releases",
        "create",
        "--config-id",
        &cfg,
        "--version",
        "2.0.0",
        "--platform",
        "web",
        "--platform",
        "ops",
        "--planned-date",
        "2026-12-24",
    ]);
    let id = r["id"].as_str().unwrap().to_owned();
    let keys: Vec<String> = r["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["issue_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{r}");
    let out = demo.run(&["releases", "check", &id]);
    assert_eq!(out.status.code(), Some(1), "not complete yet");
    for k in &keys {
        // Walk the workflow (the strict one has no shortcut to Done).
        let moved: Vec<bool> = ["In Progress", "In Review", "Done"]
            .iter()
            .map(|to| {
                sim_post(
                    &demo,
                    &format!("/_sim/issues/{k}/transition"),
                    &json!({"as": "alice", "to": to}),
                )
            })
            .collect();
        assert_eq!(moved.last(), Some(&true), "{k} reached Done");
    }
    let out = demo.run(&["releases", "check", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("complete: true"), "{text}");
    demo.stop();
}
