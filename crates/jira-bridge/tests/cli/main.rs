//! The command line, run as a binary against `jira-bridge demo`.
//!
//! One demo instance is shared by the tests that only add data (each uses its own
//! source kinds and ids); the tests that stop, restart or re-key a demo start their
//! own. The shared demo runs with `--stop-on-stdin-close`: it stops when this test
//! process ends and the pipe to its standard input closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod export;

const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");
const WAIT: Duration = Duration::from_secs(300);

struct Demo {
    child: Child,
    info: Value,
    _stdin: Option<ChildStdin>,
    _dir: Option<tempfile::TempDir>,
}

/// Start `jira-bridge --json demo` on `data` with extra arguments and read its line.
fn spawn_demo(data: &Path, extra: &[&str], lifeline: bool) -> (Child, Value, Option<ChildStdin>) {
    let mut child = Command::new(BIN)
        .args(["--json", "demo", "--data-dir"])
        .arg(data)
        .args(extra)
        .args(if lifeline {
            &["--stop-on-stdin-close"][..]
        } else {
            &[][..]
        })
        .env_remove("JIRA_BRIDGE_URL")
        .env_remove("JIRA_BRIDGE_API_KEY")
        .env_remove("JIRA_BRIDGE_CONNECTION")
        .stdin(if lifeline {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep reading so the demo never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let info: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the demo prints one JSON line ({e}): {line:?}"));
    let stdin = child.stdin.take();
    (child, info, stdin)
}

impl Demo {
    /// A demo of its own in a temporary folder, on free ports.
    #[allow(dead_code)]
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let (child, info, _) = spawn_demo(
            &dir.path().join("data"),
            &["--port", "0", "--sim-port", "0"],
            false,
        );
        Demo {
            child,
            info,
            _stdin: None,
            _dir: Some(dir),
        }
    }

    /// A demo on `data` with extra arguments (ports, `--fresh`).
    fn start_in(data: &Path, extra: &[&str]) -> Demo {
        let (child, info, _) = spawn_demo(data, extra, false);
        Demo {
            child,
            info,
            _stdin: None,
            _dir: None,
        }
    }

    fn s(&self, k: &str) -> String {
        self.info[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {}", self.info))
            .to_string()
    }

    fn port(&self, k: &str) -> u16 {
        let url = url::Url::parse(&self.s(k)).unwrap();
        url.port().unwrap()
    }

    /// The binary with the demo's URL, API key and connection in the environment.
    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("JIRA_BRIDGE_URL", self.s("service_url"))
            .env("JIRA_BRIDGE_API_KEY", self.s("api_key"))
            .env("JIRA_BRIDGE_CONNECTION", self.s("connection_id"))
            .env_remove("JIRA_BRIDGE_CONFIG");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Run with `--json`, expect success and answer the JSON output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Run expecting success and answer standard output as text.
    fn text(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// An operator command on the demo's database (its data folder).
    fn admin(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("JIRA_BRIDGE_DATA_DIR", self.s("data_dir"))
            .env("JIRA_BRIDGE_LOG", "warn")
            .env_remove("JIRA_BRIDGE_DATABASE_URL")
            .env_remove("JIRA_BRIDGE_DATABASE_URL_FILE")
            .env_remove("JIRA_BRIDGE_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Stop with SIGINT (Ctrl-C) and wait for a clean exit.
    fn stop(mut self) {
        sigint(&self.child);
        wait_success(&mut self.child, "demo");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sigint(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

fn wait_success(child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The demo the tests share, started once (fresh) for this test process.
fn shared() -> &'static Demo {
    static SHARED: OnceLock<Demo> = OnceLock::new();
    SHARED.get_or_init(|| {
        let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-shared-demo");
        let (child, info, stdin) =
            spawn_demo(&data, &["--fresh", "--port", "0", "--sim-port", "0"], true);
        Demo {
            child,
            info,
            _stdin: stdin,
            _dir: None,
        }
    })
}

/// A unique word for this test process, to keep the shared demo's data apart.
fn nonce(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Plain HTTP for the parts a browser or the simulator's control API would do.
fn http(method: &str, url: &str, body: Option<Value>, follow: bool) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(if follow {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    })
}

/// Lines of a child's pipe, as they come.
fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line matching `pred`, waiting up to [`WAIT`].
fn next_matching(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no {what} ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

fn wait_output(mut child: Child, what: &str) -> (std::process::ExitStatus, String) {
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, reader.join().unwrap())
}

#[test]
fn verify_cli() {
    use clap::CommandFactory;
    jira_bridge::cli::Cli::command().debug_assert();
}

#[test]
fn help_texts_are_complete() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, count: &mut usize) {
        for arg in cmd.get_arguments() {
            if arg.is_hide_set() || arg.get_id() == "help" || arg.get_id() == "version" {
                continue;
            }
            assert!(
                arg.get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "`{path}` argument {} has no help text",
                arg.get_id()
            );
            *count += 1;
        }
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_name() == "help" {
                continue;
            }
            assert!(
                sub.get_about()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "`{name}` has no help text"
            );
            walk(sub, &name, count);
        }
    }
    let mut count = 0;
    walk(&jira_bridge::cli::Cli::command(), "jira-bridge", &mut count);
    assert!(count > 50, "only {count} arguments walked");
    // And `--help` prints them: one subcommand end to end.
    let out = Command::new(BIN)
        .args(["tickets", "bulk", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--project",
        "--no-wait",
        "Default project key",
        "line",
        "--json",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn demo_prints_examples_that_work_as_printed() {
    let demo = shared();
    assert!(demo.s("api_key").starts_with("jbk_"));
    assert_eq!(
        demo.info["api_base"],
        format!("{}/v1", demo.s("service_url"))
    );
    assert_eq!(demo.info["seeded"]["tickets"].as_array().unwrap().len(), 3);
    assert_eq!(
        demo.info["seeded"]["time_entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let examples: Vec<String> = demo.info["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(examples.len(), 3);

    // The curl examples, run by a shell exactly as printed.
    let out = Command::new("sh")
        .args(["-c", &examples[0]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert!(ids.contains(&&demo.info["connection_id"]), "{v}");
    let out = Command::new("sh")
        .args(["-c", &examples[1]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summaries: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.to_lowercase().contains("checkout")),
        "{v}"
    );

    // The CLI example, with the binary on PATH as an installed one would be.
    assert!(examples[2].contains("jira-bridge tickets list"));
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", &examples[2]])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ["demo:demo-1", "demo:demo-2", "demo:demo-3"] {
        assert!(text.contains(id), "{text}");
    }
}

#[test]
fn connections_list_add_verify() {
    let demo = shared();
    let con = demo.s("connection_id");
    let v = demo.json(&["connections", "list"]);
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == con.as_str()));
    let text = demo.text(&["connections", "list"]);
    assert!(text.contains(&con) && text.contains("valid"), "{text}");

    let v = demo.json(&["connections", "verify", &con]);
    assert_eq!(v["verification_status"], "valid");
    let text = demo.text(&["connections", "verify", &con]);
    assert_eq!(text.trim(), format!("{con}  valid"));

    let name = nonce("second");
    let out = demo
        .cli(&[
            "--json",
            "connections",
            "add",
            &name,
            "--email",
            "bob@example.com",
            "--owner",
            &name,
            "--base-url",
        ])
        .arg(demo.s("sim_url"))
        .env("JIRA_TOKEN", "ATATT-bob-api-token")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ATATT-bob"));
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["verification_status"], "valid");
    assert_eq!(added["email"], "bob@example.com");
    let v = demo.json(&["connections", "list", "--owner", &name]);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], added["id"]);

    // The token from standard input works too; a wrong one is refused.
    let mut child = demo
        .cli(&[
            "connections",
            "add",
            "bad",
            "--email",
            "bob@example.com",
            "--token-stdin",
            "--base-url",
        ])
        .arg(demo.s("sim_url"))
        .env_remove("JIRA_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"wrong-token\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("wrong-token"), "{}", stderr(&out));
}

#[test]
fn connections_oauth_round_trip_through_the_simulated_consent() {
    let demo = shared();
    let sim = demo.s("sim_url");
    // The simulator's consent page answers as alice.
    let (status, body) = http("GET", &format!("{sim}/_sim/scenario"), None, false);
    assert_eq!(status, 200);
    let scenario: Value = serde_json::from_str(&body).unwrap();
    let alice = scenario["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "alice@example.com")
        .unwrap()["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = http(
        "PUT",
        &format!("{sim}/_sim/oauth/settings"),
        Some(json!({"consent_account_id": alice})),
        false,
    );
    assert!(status < 300, "{status} {body}");

    let owner = nonce("oauth");
    let mut child = demo
        .cli(&[
            "--json",
            "connections",
            "oauth",
            "--owner",
            &owner,
            "--name",
            "OAuth demo",
            "--site",
            "acme",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stderr.take().unwrap());
    let url = next_matching(&lines, "authorization URL", |l| {
        l.starts_with(&format!("{sim}/authorize?"))
    });
    // The browser: consent, the service's callback, back to the CLI.
    let (status, page) = http("GET", &url, None, true);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You can close this window"), "{page}");
    let (status, out) = wait_output(child, "connections oauth");
    assert!(status.success(), "{out}");
    let con: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(con["kind"], "cloud_oauth", "{con}");
    assert_eq!(con["account_id"], alice.as_str(), "{con}");
    assert_eq!(con["owner"], owner.as_str());
    assert_eq!(con["site_name"], "acme", "{con}");
    let v = demo.json(&["connections", "list", "--owner", &owner]);
    assert_eq!(v["items"][0]["id"], con["id"]);
    // It works: the new connection searches the simulated site.
    let v = demo.json(&[
        "issues",
        "search",
        "checkout",
        "--connection",
        con["id"].as_str().unwrap(),
    ]);
    assert!(!v["items"].as_array().unwrap().is_empty(), "{v}");

    // Without waiting, the URL alone.
    let v = demo.json(&["connections", "oauth", "--no-wait"]);
    assert!(v["authorization_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{sim}/authorize?")));
}

#[test]
fn issues_search_show_assigned() {
    let demo = shared();
    let v = demo.json(&["issues", "search", "checkout"]);
    let keys: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"WEB-3"), "{keys:?}");
    let text = demo.text(&["issues", "search", "--jql", "project = WEB", "--limit", "5"]);
    assert!(text.lines().count() <= 5 && text.contains("WEB-"), "{text}");
    let v = demo.json(&["issues", "show", "WEB-3"]);
    assert_eq!(v["key"], "WEB-3");
    let text = demo.text(&["issues", "show", "WEB-3"]);
    assert!(text.starts_with("WEB-3"), "{text}");
    let v = demo.json(&["issues", "assigned"]);
    for i in v["items"].as_array().unwrap() {
        assert!(i["key"].as_str().is_some(), "{i}");
    }
    let out = demo.run(&["issues", "show", "WEB-999999"]);
    assert_ne!(out.status.code(), Some(0));
    let out = demo.run(&["issues", "search"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no text and no JQL is a usage error"
    );
}

#[test]
fn tickets_create_list_sync() {
    let demo = shared();
    let source = nonce("cli");
    let args = [
        "tickets",
        "create",
        "From the CLI",
        "--project",
        "WEB",
        "--source-id",
        &source,
        "--label",
        "cli",
        "--description",
        "Made by **the CLI**",
    ];
    let v = demo.json(&args);
    let issue = v["issue_key"].as_str().unwrap().to_string();
    assert!(issue.starts_with("WEB-"));
    let again = demo.json(&args);
    assert_eq!(
        again["issue_key"],
        issue.as_str(),
        "same source, same ticket"
    );
    let v = demo.json(&["tickets", "list", "--source-id", &source]);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let text = demo.text(&["tickets", "list", "--source-id", &source]);
    assert!(
        text.contains(&issue) && text.contains(&format!("cli:{source}")),
        "{text}"
    );
    let v = demo.json(&["issues", "show", &issue]);
    assert_eq!(v["summary"], "From the CLI");

    let v = demo.json(&["tickets", "sync"]);
    assert_eq!(v["state"], "succeeded", "{v}");
    let out = demo.run(&["tickets", "sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("succeeded"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = demo.run(&["tickets", "sync", "--no-wait"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .starts_with("job_"));
}

/// A bulk file of `rows` tickets of `kind`, with an empty summary on the rows in `bad`
/// (0-based), as CSV, JSON (one object per line inside an array) or YAML.
fn bulk_file(path: &Path, kind: &str, rows: usize, bad: &[usize]) {
    let summary = |i: usize| {
        if bad.contains(&i) {
            String::new()
        } else {
            format!("Bulk item {i}")
        }
    };
    let ext = path.extension().unwrap().to_str().unwrap();
    let text = match ext {
        "csv" => {
            let mut t = String::from("source_kind,source_id,summary,issue_type,labels\n");
            for i in 0..rows {
                t.push_str(&format!("{kind},b-{i},{},Task,a;b\n", summary(i)));
            }
            t
        }
        "json" => {
            let items: Vec<String> = (0..rows)
                .map(|i| {
                    let mut o = json!({"source_kind": kind, "source_id": format!("b-{i}"),
                        "issue_type": "Task", "labels": ["a", "b"]});
                    if !bad.contains(&i) {
                        o["summary"] = json!(summary(i));
                    }
                    format!("  {o}")
                })
                .collect();
            format!("[\n{}\n]\n", items.join(",\n"))
        }
        "yaml" => {
            let mut t = String::from("# tickets\n");
            for i in 0..rows {
                t.push_str(&format!("- source_kind: {kind}\n  source_id: b-{i}\n"));
                if !bad.contains(&i) {
                    t.push_str(&format!("  summary: {}\n", summary(i)));
                }
                t.push_str("  issue_type: Task\n");
            }
            t
        }
        other => panic!("{other}"),
    };
    std::fs::write(path, text).unwrap();
}

/// A bulk file `name` in a temporary folder, of a source kind of its own.
fn temp_bulk(name: &str, rows: usize, bad: &[usize]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    let stem = name.split('.').next().unwrap();
    bulk_file(&file, &nonce(stem), rows, bad);
    (dir, file)
}

#[test]
fn tickets_bulk_reports_three_bad_rows_by_line_in_csv_json_and_yaml() {
    let demo = shared();
    let dir = tempfile::tempdir().unwrap();
    // Rows 2, 5 and 8 (0-based) lack a summary; the line each starts on:
    for (ext, lines) in [
        ("csv", [4u64, 7, 10]), // header on line 1
        ("json", [4, 7, 10]),   // `[` on line 1
        ("yaml", [10, 21, 32]), // a comment, then 4 lines a row (3 without a summary)
    ] {
        let kind = nonce(&format!("bulk-{ext}"));
        let file = dir.path().join(format!("items.{ext}"));
        bulk_file(&file, &kind, 10, &[2, 5, 8]);
        let out = demo.run(&[
            "--json",
            "tickets",
            "bulk",
            file.to_str().unwrap(),
            "--project",
            "WEB",
        ]);
        assert_eq!(out.status.code(), Some(1), "{ext}: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["succeeded"], 7, "{ext}: {v}");
        assert_eq!(v["failed"], 0, "{ext}: {v}");
        let got: Vec<u64> = v["invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["line"].as_u64().unwrap())
            .collect();
        assert_eq!(got, lines, "{ext}");
        let err = stderr(&out);
        for l in lines {
            assert!(
                err.contains(&format!("items.{ext}:{l}: summary is missing")),
                "{ext}: {err}"
            );
        }
        let v = demo.json(&["tickets", "list", "--source-kind", &kind, "--limit", "500"]);
        assert_eq!(v["items"].as_array().unwrap().len(), 7, "{ext}");
    }
}

#[test]
fn tickets_bulk_prints_plain_lines_when_not_a_terminal() {
    let demo = shared();
    let (_dir, file) = temp_bulk("plain.csv", 20, &[]);
    let out = demo.run(&[
        "tickets",
        "bulk",
        file.to_str().unwrap(),
        "--project",
        "WEB",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("tickets: 20/20 done, 0 failed"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no terminal codes off a terminal: {err:?}"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("succeeded: 20 succeeded, 0 failed, 0 invalid row(s)"),
        "{summary}"
    );
}

#[test]
fn tickets_bulk_shows_a_progress_bar_in_a_terminal() {
    let demo = shared();
    let (_dir, file) = temp_bulk("big.csv", 500, &[]);
    // `script` (util-linux) runs the command on a pseudo-terminal and copies what
    // it draws to its standard output.
    let cmd = format!(
        "stty cols 160 rows 24; '{BIN}' tickets bulk '{}' --project WEB; echo EXIT=$?",
        file.display()
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-f", "-c", &cmd, "/dev/null"])
        .env("JIRA_BRIDGE_URL", demo.s("service_url"))
        .env("JIRA_BRIDGE_API_KEY", demo.s("api_key"))
        .env("JIRA_BRIDGE_CONNECTION", demo.s("connection_id"))
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs the command on a terminal");
    let screen = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(screen.contains("EXIT=0"), "{screen}");
    // The bar: drawn in place with terminal codes, counting up to 500.
    assert!(screen.contains("tickets ["), "no bar: {screen}");
    assert!(screen.contains("500/500 done"), "{screen}");
    assert!(
        screen.contains('\u{1b}'),
        "a bar redraws with terminal codes"
    );
    assert!(
        !screen.contains("tickets: 500/500 done"),
        "plain lines instead of a bar: {screen}"
    );
    assert!(
        screen.contains("500 succeeded, 0 failed, 0 invalid row(s)"),
        "no summary: {screen}"
    );
    assert!(
        screen.contains("\njob job_"),
        "the summary starts on a line of its own: {screen:?}"
    );
}

#[test]
fn jobs_watch_follows_a_running_job_to_its_end() {
    let demo = shared();
    let (_dir, file) = temp_bulk("watch.csv", 100, &[]);
    let v = demo.json(&[
        "tickets",
        "bulk",
        file.to_str().unwrap(),
        "--project",
        "WEB",
        "--no-wait",
    ]);
    let job = v["job_id"].as_str().unwrap().to_string();
    assert!(job.starts_with("job_"));
    let out = demo.run(&["jobs", "watch", &job]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("job: 100/100 done, 0 failed"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("job {job} succeeded: 100 succeeded, 0 failed")),
        "{text}"
    );
    let v = demo.json(&["jobs", "watch", &job]);
    assert_eq!(v["id"], job.as_str());
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["total"], 100);
    assert_eq!(v["succeeded"], 100);
}

#[test]
fn worklogs_push_and_status() {
    let demo = shared();
    let issue = demo.info["seeded"]["tickets"][0]
        .as_str()
        .unwrap()
        .to_string();
    let owner = nonce("worker");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("time.csv");
    std::fs::write(
        &csv,
        format!(
            "source_id,issue_key,started_at,duration_seconds,comment,owner\n\
             {owner}-1,{issue},2026-01-05T09:00:00Z,3600,one,{owner}\n\
             {owner}-2,{issue},yesterday,600,bad,{owner}\n\
             {owner}-3,{issue},2026-01-06T09:00:00Z,1800,three,{owner}\n"
        ),
    )
    .unwrap();
    let out = demo.run(&["--json", "worklogs", "push", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a bad row is a partial failure");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["succeeded"], 2);
    assert_eq!(v["invalid"][0]["line"], 3);
    assert!(stderr(&out).contains("time.csv:3: started_at"));
    // Synced to Jira worklogs in the background: poll the status with a deadline.
    let deadline = Instant::now() + WAIT;
    loop {
        let v = demo.json(&["worklogs", "status", "--owner", &owner]);
        let items = v["items"].as_array().unwrap();
        let ids: Vec<&str> = items
            .iter()
            .map(|e| e["source_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(!ids.contains(&format!("{owner}-2").as_str()));
        if items
            .iter()
            .all(|e| e.get("sync_state").or_else(|| e.get("state")) == Some(&json!("synced")))
        {
            break;
        }
        assert!(Instant::now() < deadline, "not synced: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = demo.text(&["worklogs", "status", "--owner", &owner, "--state", "synced"]);
    assert!(
        text.contains(&format!("{owner}-1")) && text.contains("synced"),
        "{text}"
    );
}

#[test]
fn keys_extract_from_args_and_stdin() {
    let demo = shared();
    let v = demo.json(&["keys", "extract", "fix WEB-3 and OPS-2 in feature/WEB-3-x"]);
    assert_eq!(v["keys"], json!(["WEB-3", "OPS-2"]));
    let text = demo.text(&["keys", "extract", "GLX-1 and WEB-2", "--project", "WEB"]);
    assert_eq!(text.trim(), "WEB-2");
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
        .write_all(b"see GLX-5\nand OPS-7\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "GLX-5\nOPS-7\n");
}

#[test]
fn events_tail_and_follow() {
    let demo = shared();
    let out = demo.run(&["--json", "events", "tail"]);
    assert!(out.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["type"] == "ticket.created"),
        "{events:?}"
    );
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let last = *seqs.last().unwrap();
    let text = demo.text(&["events", "tail", "--after", &(last - 1).to_string()]);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.trim_start().starts_with(&format!("{last} ")),
        "starts after --after: {text}"
    );

    // Follow: new events arrive while it runs.
    let mut child = demo
        .cli(&[
            "--json",
            "events",
            "tail",
            "--follow",
            "--after",
            &last.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    for i in 0..2 {
        let v = demo.json(&[
            "tickets",
            "create",
            "Followed",
            "--project",
            "OPS",
            "--source-id",
            &nonce(&format!("follow-{i}")),
        ]);
        let id = v["id"].as_str().unwrap().to_string();
        let line = next_matching(&lines, "ticket.created of the new ticket", |l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|e| e["type"] == "ticket.created" && e["subject"] == id.as_str())
        });
        let e: Value = serde_json::from_str(&line).unwrap();
        assert!(e["seq"].as_i64().unwrap() > last);
    }
    sigint(&child);
    wait_success(&mut child, "events tail --follow");
    assert_eq!(
        demo.run(&["events", "tail", "--after", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn admin_tenants_and_keys_on_the_demo_database() {
    let demo = shared();
    let name = nonce("admin");
    let out = demo.admin(&[
        "--json",
        "admin",
        "create-tenant",
        &name,
        "--key-name",
        "first",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tenant = v["tenant"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["tenant"]["name"], name.as_str());
    let first = v["api_key"]["key"].as_str().unwrap().to_string();
    assert!(first.starts_with("jbk_"));

    // The running service accepts the new tenant's key: a tenant with no connection.
    let as_tenant = |key: &str, args: &[&str]| {
        demo.cli(args)
            .env("JIRA_BRIDGE_API_KEY", key)
            .env_remove("JIRA_BRIDGE_CONNECTION")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = as_tenant(&first, &["--json", "connections", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"], json!([]), "tenants are apart");
    let out = as_tenant(&first, &["issues", "assigned"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no connection"), "{}", stderr(&out));

    let out = demo.admin(&["--json", "admin", "create-key", &tenant, "--name", "second"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = v["key"].as_str().unwrap().to_string();
    let second_id = v["id"].as_str().unwrap().to_string();
    assert!(as_tenant(&second, &["tickets", "list"]).status.success());

    let out = demo.admin(&["--json", "admin", "revoke-key", &tenant, &second_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["revoked"], second_id.as_str());
    assert_eq!(
        as_tenant(&second, &["tickets", "list"]).status.code(),
        Some(3)
    );
    assert!(as_tenant(&first, &["tickets", "list"]).status.success());

    let out = demo.admin(&["admin", "create-key", "not-a-tenant"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn exit_codes() {
    let demo = shared();
    // 0
    assert_eq!(demo.run(&["tickets", "list"]).status.code(), Some(0));
    // 1: partial (a bad row) and other failures (an unknown job)
    let (_dir, file) = temp_bulk("one-bad.csv", 3, &[1]);
    let out = demo.run(&[
        "tickets",
        "bulk",
        file.to_str().unwrap(),
        "--project",
        "WEB",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        demo.run(&["jobs", "watch", "job_unknown"]).status.code(),
        Some(1)
    );
    // 2: usage
    assert_eq!(demo.run(&["tickets", "bulk"]).status.code(), Some(2));
    assert_eq!(demo.run(&["tickets", "--nope"]).status.code(), Some(2));
    let out = demo.run(&["tickets", "bulk", "/nonexistent/items.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = demo.run(&[
        "tickets",
        "bulk",
        file.with_extension("txt").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = demo.run(&[
        "tickets",
        "create",
        "x",
        "--project",
        "NOPE",
        "--source-id",
        "x",
        "--type",
        "Nope",
    ]);
    assert_ne!(out.status.code(), Some(0));
    // 3: a refused key, no key, an unreachable service
    let out = demo
        .cli(&["tickets", "list"])
        .env("JIRA_BRIDGE_API_KEY", "jbk_wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!stderr(&out).contains("jbk_wrong"));
    let out = demo
        .cli(&["tickets", "list"])
        .env("JIRA_BRIDGE_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = demo
        .cli(&["tickets", "list"])
        .env_remove("JIRA_BRIDGE_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no key at all is a usage error");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker, json_flag) in [
        ("bash", "complete -F", "--json"),
        ("zsh", "#compdef jira-bridge", "--json"),
        ("fish", "complete -c jira-bridge", "-l json"),
    ] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {marker} missing");
        for word in ["tickets", "connections", "worklogs", "bulk", json_flag] {
            assert!(text.contains(word), "{shell}: {word} missing");
        }
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Ctrl-C stops the service and the simulator (their ports are free again), a
/// re-run reuses the data folder and prints the same key, and `admin rotate-key`
/// re-seals the stored Jira token so the re-run still opens it.
#[test]
fn demo_stops_on_ctrl_c_and_reuses_its_data_folder_after_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Demo::start_in(&data, &["--port", "0", "--sim-port", "0"]);
    let (port, sim_port) = (first.port("service_url"), first.port("sim_url"));
    let a = first.info.clone();
    assert_eq!(a["reused"], false);
    first.stop();
    for p in [port, sim_port] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(),
            "port {p} is still taken after Ctrl-C"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("demo.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Rotate the master key while the demo is down.
    let out = Command::new(BIN)
        .args(["--json", "admin", "rotate-key"])
        .env("JIRA_BRIDGE_DATA_DIR", &data)
        .env("JIRA_BRIDGE_LOG", "warn")
        .env_remove("JIRA_BRIDGE_DATABASE_URL")
        .env_remove("JIRA_BRIDGE_MASTER_KEY")
        .env_remove("JIRA_BRIDGE_MASTER_KEY_FILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["resealed"].as_u64().unwrap() >= 1,
        "the connection's token is re-sealed: {v}"
    );

    // Again, on the same ports: the same key, the seeded data, the token opens.
    let (p, sp) = (port.to_string(), sim_port.to_string());
    let second = Demo::start_in(&data, &["--port", &p, "--sim-port", &sp]);
    assert_eq!(second.info["reused"], true);
    assert_eq!(a["api_key"], second.info["api_key"]);
    assert_eq!(a["tenant_id"], second.info["tenant_id"]);
    assert_eq!(a["connection_id"], second.info["connection_id"]);
    let v = second.json(&["tickets", "list", "--source-kind", "demo"]);
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "seeded once");
    let v = second.json(&["connections", "verify", &second.s("connection_id")]);
    assert_eq!(v["verification_status"], "valid");
    second.stop();

    // --fresh starts over: a new key.
    let third = Demo::start_in(&data, &["--fresh", "--port", "0", "--sim-port", "0"]);
    assert_eq!(third.info["reused"], false);
    assert_ne!(a["api_key"], third.info["api_key"]);
    third.stop();
}

#[test]
fn sim_runs_alone_and_stops_on_ctrl_c() {
    let mut child = Command::new(BIN)
        .args(["sim", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut line).unwrap();
    let drain = std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line.split_whitespace().last().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let (status, body) = http("GET", &format!("{url}/rest/api/3/serverInfo"), None, false);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["deploymentType"], "Cloud");
    sigint(&child);
    wait_success(&mut child, "sim");
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
