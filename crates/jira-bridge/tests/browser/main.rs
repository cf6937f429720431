//! The console in a real browser: `jira-bridge demo` (service and simulated Jira) is
//! started as a process and `tests/console/console.test.mjs` drives headless Chromium
//! (`/usr/bin/chromium`, npm `playwright-core`) through it. Screenshots of every page
//! land in `tests/console/artifacts/` (not committed).
//!
//! The tools are installed by `tests/console/setup.sh`, which `scripts/test` (and so
//! `.ci/run`) runs first. Missing tools fail this test, saying what to install.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the repository root")
        .to_path_buf()
}

/// The demo as a child process; killed on drop.
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
            // Read Jira's worklog change feed every second (conflicts show up quickly).
            .env("JIRA_BRIDGE_WORKLOGS_FEED_SECONDS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // Keep draining so the demo never writes into a closed pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        let info: Value = serde_json::from_str(&line).expect("the demo prints one JSON line");
        Demo {
            child,
            info,
            _dir: dir,
        }
    }

    fn s(&self, k: &str) -> String {
        self.info[k].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn console_in_headless_chromium() {
    let root = repo_root();
    let suite = root.join("tests/console");
    let chromium =
        std::env::var("JIRA_BRIDGE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is missing at {chromium}: run `bash tests/console/setup.sh` (it installs the \
         Debian package `chromium`), or set JIRA_BRIDGE_CHROMIUM"
    );
    assert!(
        suite.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `bash tests/console/setup.sh` (scripts/test does)"
    );

    let demo = Demo::start();
    assert_eq!(
        demo.info["console_url"].as_str(),
        Some(format!("{}/console", demo.s("service_url")).as_str()),
        "the demo prints the console's address"
    );
    let artifacts = suite.join("artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let status = Command::new("node")
        .arg(suite.join("console.test.mjs"))
        .current_dir(&suite)
        .env("JB_URL", demo.s("service_url"))
        .env("JB_API_KEY", demo.s("api_key"))
        .env("JB_SIM_URL", demo.s("sim_url"))
        .env("JB_ARTIFACTS", &artifacts)
        .env("JB_CHROMIUM", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .expect("node runs (Node.js 20 or later is required)");
    assert!(
        status.success(),
        "the browser test failed ({status}); see its output above and tests/console/artifacts/"
    );
    let shots = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert!(shots >= 20, "a screenshot of every page ({shots} written)");
}
