//! The command line, run as a binary: `jira-bridge demo` brings up a simulated Jira
//! and the service, and every client command is run against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");

struct Demo {
    child: Child,
    info: Value,
    _dir: tempfile::TempDir,
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args([
                "--json",
                "demo",
                "--port",
                "0",
                "--sim-port",
                "0",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env_remove("JIRA_BRIDGE_URL")
            .env_remove("JIRA_BRIDGE_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line).expect("the demo prints one JSON line");
        Demo {
            child,
            info,
            _dir: dir,
        }
    }

    fn s(&self, k: &str) -> String {
        self.info[k].as_str().unwrap().to_string()
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("JIRA_BRIDGE_URL", self.s("service_url"))
            .env("JIRA_BRIDGE_API_KEY", self.s("api_key"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).stdin(Stdio::null()).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Stop with SIGINT (Ctrl-C) and wait for a clean exit.
    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "demo exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "demo did not stop on Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn verify_cli() {
    use clap::CommandFactory;
    jira_bridge::cli::Cli::command().debug_assert();
}

#[test]
fn help_texts_are_complete() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str) {
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            assert!(sub.get_about().is_some(), "`{name}` has no help text");
            for arg in sub.get_arguments() {
                if arg.is_hide_set() || arg.get_id() == "help" || arg.get_id() == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "`{name}` argument {} has no help text",
                    arg.get_id()
                );
            }
            walk(sub, &name);
        }
    }
    walk(&jira_bridge::cli::Cli::command(), "jira-bridge");
}

#[test]
fn demo_runs_the_printed_examples_and_every_client_command() {
    let demo = Demo::start();
    let key = demo.s("api_key");
    assert!(key.starts_with("jbk_"));
    assert_eq!(demo.info["seeded"]["tickets"].as_array().unwrap().len(), 3);

    // The first printed example, as printed.
    let example = demo.info["examples"][0].as_str().unwrap().to_string();
    assert!(example.starts_with("curl "));
    let out = Command::new("sh").args(["-c", &example]).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"][0]["id"], demo.info["connection_id"]);
    assert_eq!(v["items"][0]["verification_status"], "valid");

    // connections
    let v = demo.json(&["connections", "list"]);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let con = demo.s("connection_id");
    let v = demo.json(&["connections", "verify", &con]);
    assert_eq!(v["verification_status"], "valid");
    let mut add = demo.cli(&[
        "--json",
        "connections",
        "add",
        "second",
        "--email",
        "bob@example.com",
        "--base-url",
    ]);
    let out = add
        .arg(demo.s("sim_url"))
        .env("JIRA_TOKEN", "ATATT-bob-api-token")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ATATT-bob"));
    let out = demo
        .cli(&[
            "connections",
            "add",
            "bad",
            "--email",
            "bob@example.com",
            "--base-url",
        ])
        .arg(demo.s("sim_url"))
        .env("JIRA_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v = demo.json(&["connections", "oauth", "--name", "oauth demo"]);
    assert!(v["authorization_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/authorize", demo.s("sim_url"))));

    // issues (two connections now: name one)
    let v = demo.json(&["issues", "search", "checkout", "--connection", &con]);
    let keys: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"WEB-3"), "{keys:?}");
    let v = demo.json(&["issues", "show", "WEB-3", "--connection", &con]);
    assert_eq!(v["key"], "WEB-3");
    let v = demo.json(&["issues", "assigned", "--connection", &con]);
    assert!(v["items"].is_array());
    let out = demo.run(&["issues", "assigned"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "several connections is a usage error"
    );

    // tickets
    let v = demo.json(&[
        "tickets",
        "create",
        "From the CLI",
        "--project",
        "WEB",
        "--source-id",
        "cli-1",
        "--connection",
        &con,
    ]);
    let issue = v["issue_key"].as_str().unwrap().to_string();
    assert!(issue.starts_with("WEB-"));
    let again = demo.json(&[
        "tickets",
        "create",
        "From the CLI",
        "--project",
        "WEB",
        "--source-id",
        "cli-1",
        "--connection",
        &con,
    ]);
    assert_eq!(again["issue_key"], issue.as_str());
    let v = demo.json(&["tickets", "list", "--source-id", "cli-1"]);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let v = demo.json(&["tickets", "sync", "--connection", &con]);
    assert_eq!(v["state"], "succeeded");

    // keys
    let v = demo.json(&["keys", "extract", "fix WEB-3 and OPS-2 in feature/WEB-3-x"]);
    assert_eq!(v["keys"], serde_json::json!(["WEB-3", "OPS-2"]));
    let mut child = demo
        .cli(&["keys", "extract"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"see GLX-5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "GLX-5");

    // worklogs: two good rows, one bad, reported by line
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("time.csv");
    std::fs::write(
        &csv,
        format!(
            "source_id,issue_key,started_at,duration_seconds,comment\n\
             w-1,{issue},2026-01-05T09:00:00Z,3600,one\n\
             w-2,{issue},yesterday,600,bad\n\
             w-3,{issue},2026-01-06T09:00:00Z,1800,three\n"
        ),
    )
    .unwrap();
    let out = demo.run(&[
        "--json",
        "worklogs",
        "push",
        csv.to_str().unwrap(),
        "--connection",
        &con,
    ]);
    assert_eq!(out.status.code(), Some(1), "a bad row is a partial failure");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["succeeded"], 2);
    assert_eq!(v["invalid"][0]["line"], 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("time.csv:3: started_at"));
    let v = demo.json(&["worklogs", "status"]);
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"w-1") && ids.contains(&"w-3") && !ids.contains(&"w-2"),
        "{ids:?}"
    );

    // events
    let out = demo.run(&["--json", "events", "tail"]);
    assert!(out.status.success());
    let types: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(types.iter().any(|t| t == "ticket.created"), "{types:?}");

    // exit codes: bad key 3, unreachable 3, unknown job 1
    let out = demo
        .cli(&["tickets", "list"])
        .env("JIRA_BRIDGE_API_KEY", "jbk_wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("jbk_wrong"));
    let out = demo
        .cli(&["tickets", "list"])
        .env("JIRA_BRIDGE_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        demo.run(&["jobs", "watch", "job_unknown"]).status.code(),
        Some(1)
    );
    assert_eq!(demo.run(&["tickets", "bulk"]).status.code(), Some(2));

    demo.stop();
}

fn bulk_csv(path: &Path, rows: usize, bad: &[usize]) {
    let mut text = String::from("source_id,summary,issue_type,labels\n");
    for i in 0..rows {
        if bad.contains(&i) {
            text.push_str(&format!("bulk-{i},,Task,a;b\n"));
        } else {
            text.push_str(&format!("bulk-{i},Bulk item {i},Task,a;b\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn tickets_bulk_reports_bad_rows_by_line_and_creates_the_rest() {
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("items.csv");
    bulk_csv(&csv, 30, &[3, 10, 20]);
    let out = demo.run(&[
        "--json",
        "tickets",
        "bulk",
        csv.to_str().unwrap(),
        "--project",
        "WEB",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["succeeded"], 27);
    assert_eq!(v["failed"], 0);
    let lines: Vec<u64> = v["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![5, 12, 22]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in [5, 12, 22] {
        assert!(
            stderr.contains(&format!("items.csv:{l}: summary is missing")),
            "{stderr}"
        );
    }
    let v = demo.json(&["tickets", "list", "--source-kind", "cli", "--limit", "500"]);
    assert_eq!(v["items"].as_array().unwrap().len(), 27);
    demo.stop();
}

#[test]
fn tickets_bulk_shows_a_progress_bar_in_a_terminal() {
    let demo = Demo::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    bulk_csv(&csv, 500, &[]);
    let session = format!("jbcli{}", std::process::id());
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        format!(
            "JIRA_BRIDGE_URL={} JIRA_BRIDGE_API_KEY={} {BIN} tickets bulk {} --project WEB; echo EXIT=$?; sleep 600\n",
            demo.s("service_url"),
            demo.s("api_key"),
            csv.display()
        ),
    )
    .unwrap();
    let ok = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "20",
            "-s",
            &session,
            "sh",
        ])
        .arg(&script)
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut saw_bar = false;
    let screen = loop {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).to_string();
        if screen.contains("tickets [") && screen.contains("/500 done") {
            saw_bar = true;
        }
        if screen.contains("EXIT=") {
            break screen;
        }
        assert!(Instant::now() < deadline, "bulk did not finish:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    assert!(saw_bar, "no progress bar seen:\n{screen}");
    assert!(screen.contains("500/500 done"), "{screen}");
    assert!(screen.contains("500 succeeded, 0 failed"), "{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    demo.stop();
}

#[test]
fn demo_reuses_its_data_folder_and_prints_the_key_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = || {
        let mut child = Command::new(BIN)
            .args([
                "--json",
                "demo",
                "--port",
                "0",
                "--sim-port",
                "0",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line).unwrap();
        (
            Demo {
                child,
                info: info.clone(),
                _dir: tempfile::tempdir().unwrap(),
            },
            info,
        )
    };
    let (first, a) = start();
    first.stop();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("demo.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (second, b) = start();
    assert_eq!(a["api_key"], b["api_key"]);
    assert_eq!(a["tenant_id"], b["tenant_id"]);
    assert_eq!(b["reused"], true);
    let v = second.json(&["tickets", "list", "--source-kind", "demo"]);
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        3,
        "seeded once, not again"
    );
    second.stop();
}

#[test]
fn sim_and_completions() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("jira-bridge"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tickets"));
    let out = Command::new(BIN)
        .args(["tickets", "--nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let mut child = Command::new(BIN)
        .args(["sim", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Keep reading to the end so the simulator never writes into a closed pipe.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut line).unwrap();
    let drain = std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line.split_whitespace().last().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let v: Value = rt.block_on(async {
        reqwest::get(format!("{url}/rest/api/3/serverInfo"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(v["deploymentType"], "Cloud");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    drain.join().unwrap().unwrap();
}

/// `jira-bridge bench --smoke`: every workload runs end to end with tiny sizes, the
/// JSON report has the table's figures, and nothing is lost or duplicated.
#[test]
fn bench_smoke_runs_every_workload_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.json");
    let out = Command::new(BIN)
        .args(["bench", "--smoke", "--workload", "all", "--json"])
        .arg(&report)
        .env_remove("JIRA_BRIDGE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The table.
    for head in [
        "C_min", "calls", "T_floor", "time", "t/floor", "429 %", "lost", "dup",
    ] {
        assert!(stdout.contains(head), "{head} missing:\n{stdout}");
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["smoke"], true);
    assert!(v["machine"]["cpus"].is_string(), "{}", v["machine"]);
    let rows = v["workloads"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["W1", "W2", "W3", "W4", "W5", "W6", "W7"]);
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
    for r in rows {
        assert!(r["error"].is_null(), "{r}");
        assert!(
            stdout.contains(&format!("\n{} ", r["id"].as_str().unwrap())),
            "{stdout}"
        );
    }
    // Call-bound workloads: counted at the simulator, against their floor.
    for id in ["W1", "W2", "W3"] {
        let r = row(id);
        assert!(r["c_min"].as_u64().unwrap() > 0, "{r}");
        assert!(
            r["calls"].as_u64().unwrap() >= r["c_min"].as_u64().unwrap(),
            "{r}"
        );
        assert!(r["t_floor_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["time_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["rate_limited_pct"].is_number(), "{r}");
        assert_eq!(r["lost"], 0, "{r}");
        assert_eq!(r["duplicated"], 0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert!(r["met"].is_boolean(), "{r}");
    }
    // W4 runs where the exports API exists; then it is exact too.
    let w4 = row("W4");
    if w4["calls"].is_number() {
        assert_eq!(w4["lost"], 0, "{w4}");
        assert_eq!(w4["duplicated"], 0, "{w4}");
    }
    let w5 = row("W5");
    assert_eq!(w5["lost"], 0, "{w5}");
    assert_eq!(w5["duplicated"], 0, "{w5}");
    assert_eq!(
        w5["figures"]["applied"].as_f64(),
        w5["items"].as_f64(),
        "{w5}"
    );
    for k in ["events_per_s", "ack_p50_ms", "ack_p99_ms"] {
        assert!(w5["figures"][k].as_f64().unwrap() > 0.0, "{k}: {w5}");
    }
    let w6 = row("W6");
    for k in [
        "service_p50_ms",
        "direct_p50_ms",
        "added_p50_ms",
        "added_p99_ms",
    ] {
        assert!(w6["figures"][k].is_number(), "{k}: {w6}");
    }
    let w7 = &row("W7")["figures"];
    assert!(w7["startup_ms"].as_f64().unwrap() > 0.0, "{w7}");
    let idle = w7["idle_rss_mb"].as_f64().unwrap();
    assert!(
        idle > 0.0 && w7["peak_rss_mb"].as_f64().unwrap() >= idle,
        "{w7}"
    );
}

/// Without a Python that has the `jira` library the baseline is skipped with the
/// reason, and the benchmark itself still runs.
#[test]
fn bench_skips_the_baseline_without_python_and_says_why() {
    let out = Command::new(BIN)
        .args(["bench", "--smoke", "--workload", "W1", "--baseline"])
        .env("JIRA_BRIDGE_BENCH_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("baseline skipped") && stderr.contains("/nonexistent/python3"),
        "{stderr}"
    );
    assert!(stdout.contains("baseline: skipped"), "{stdout}");
    assert!(stdout.contains("\nW1 "), "{stdout}");
}
