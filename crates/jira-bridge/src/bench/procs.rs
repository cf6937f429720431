//! The two processes a benchmark runs against: the simulator (`jira-bridge sim`) and
//! the service (`jira-bridge serve`), both the current executable, on loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The simulator's pacing used by every workload except W6 (`BENCHMARKS.md`).
pub fn bench_pacing() -> Value {
    json!({"rate": 20.0, "burst": 20.0, "per_issue_write_limit": true,
           "latency_ms": 30, "latency_per_item_ms": 1})
}

/// A running `jira-bridge sim`.
pub struct SimProc {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    http: reqwest::Client,
}

impl SimProc {
    /// Start the simulator with the `empty` scenario on a free port and switch on the
    /// benchmark pacing.
    pub async fn start(exe: &Path, http: &reqwest::Client) -> anyhow::Result<Self> {
        let mut child = Command::new(exe)
            .args(["sim", "--port", "0", "--scenario", "empty", "--seed", "42"])
            .env("JIRA_BRIDGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start `jira-bridge sim`")?;
        let stdout = child
            .stdout
            .take()
            .context("the simulator's output is not readable")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the simulator did not start within 30 s")??
            .unwrap_or_default();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_string)
            .with_context(|| format!("unexpected simulator banner: {first}"))?;
        // Keep reading so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let sim = SimProc {
            child,
            url,
            http: http.clone(),
        };
        sim.put("/_sim/pacing", &bench_pacing()).await?;
        Ok(sim)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let res = req.send().await.context("the simulator did not answer")?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("simulator answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET` a control path.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    /// `POST` JSON to a control path.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body))
            .await
    }

    /// `PUT` JSON to a control path.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.put(format!("{}{path}", self.url)).json(body))
            .await
    }

    /// Zero the request counters.
    pub async fn reset_stats(&self) -> anyhow::Result<()> {
        self.post("/_sim/stats/reset", &json!({})).await.map(|_| ())
    }

    /// The counters since the last reset.
    pub async fn stats(&self) -> anyhow::Result<Calls> {
        let v = self.get("/_sim/stats").await?;
        Ok(Calls {
            total: v["total"].as_u64().unwrap_or(0),
            rate_limited: v["rate_limited"].as_u64().unwrap_or(0),
            requests: v["requests"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// The compact list of a project's issues.
    pub async fn issues(&self, project: &str) -> anyhow::Result<Vec<Value>> {
        let v = self.get(&format!("/_sim/issues?project={project}")).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Stop the simulator.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Request counts read from the simulator.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// Every REST request.
    pub total: u64,
    /// Of which answered 429 by the rate limiter.
    pub rate_limited: u64,
    /// `[{method, endpoint, status, count}]`.
    pub requests: Vec<Value>,
}

impl Calls {
    /// The share of requests answered 429, in percent.
    pub fn rate_limited_pct(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.rate_limited as f64 / self.total as f64
        }
    }

    /// `METHOD endpoint xN` lines, for notes.
    pub fn breakdown(&self) -> String {
        let mut by: std::collections::BTreeMap<String, u64> = Default::default();
        for r in &self.requests {
            let k = format!(
                "{} {}{}",
                r["method"].as_str().unwrap_or("?"),
                r["endpoint"].as_str().unwrap_or("?"),
                match r["status"].as_u64() {
                    Some(429) => " (429)",
                    _ => "",
                }
            );
            *by.entry(k).or_default() += r["count"].as_u64().unwrap_or(0);
        }
        by.iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A running `jira-bridge serve` on a fresh SQLite database.
pub struct ServiceProc {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its process id.
    pub pid: u32,
    /// The operator key it was started with.
    pub admin_key: String,
    /// From spawning the process to the first successful `/readyz` (migrations
    /// included: the database is new).
    pub startup: Duration,
}

impl ServiceProc {
    /// Start the service with its data in `data_dir` (created; must be new).
    pub async fn start(
        exe: &Path,
        config: Option<&PathBuf>,
        data_dir: &Path,
        http: &reqwest::Client,
        trace: bool,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("no free port on 127.0.0.1")?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let admin_key = hex::encode(rand::random::<[u8; 24]>());
        let log = std::fs::File::create(data_dir.join("service.log"))
            .context("cannot create the service log")?;
        let mut cmd = Command::new(exe);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("JIRA_BRIDGE_") {
                cmd.env_remove(&k);
            }
        }
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("serve")
            .env("JIRA_BRIDGE_DATA_DIR", data_dir)
            .env("JIRA_BRIDGE_BIND", format!("127.0.0.1:{port}"))
            .env("JIRA_BRIDGE_ADMIN_KEY", &admin_key)
            .env("JIRA_BRIDGE_MIGRATE_ON_START", "true")
            .env("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS", "true")
            .env(
                "JIRA_BRIDGE_LOG",
                if trace {
                    "debug,sqlx=info,hyper=info,h2=info,reqwest=info"
                } else {
                    "warn"
                },
            )
            .env(
                "JIRA_BRIDGE_LOG_FORMAT",
                if trace { "json" } else { "text" },
            )
            // Background polls that are not part of any workload stay out of the
            // counts: the worklog change feed and the scheduled status sync.
            .env("JIRA_BRIDGE_WORKLOGS_FEED_SECONDS", "0")
            .env("JIRA_BRIDGE_TICKETS_SYNC_SECONDS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().context("cannot start `jira-bridge serve`")?;
        let pid = child.id().context("the service exited at once")?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(st) = child.try_wait()? {
                bail!(
                    "the service exited ({st}) before it was ready; see {}",
                    data_dir.join("service.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("the service was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(ServiceProc {
            startup: started.elapsed(),
            child,
            url,
            pid,
            admin_key,
        })
    }

    /// Resident set size now and its peak (`VmRSS`, `VmHWM`), in bytes.
    pub fn rss(&self) -> anyhow::Result<(u64, u64)> {
        rss_of(self.pid)
    }

    /// Stop the service (SIGKILL; its data directory is thrown away).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `VmRSS` and `VmHWM` of a process, in bytes, from `/proc/<pid>/status`.
pub fn rss_of(pid: u32) -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss), Some(hwm)) => Ok((rss, hwm)),
        _ => bail!("no VmRSS / VmHWM in /proc/{pid}/status"),
    }
}
