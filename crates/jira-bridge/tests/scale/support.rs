//! Real `jira-bridge serve` processes, a round-robin client, the simulator's control
//! API, and polling with deadlines.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use jira_sim::SimHandle;
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");
pub const ADMIN_KEY: &str = "scale-admin-key-0123456789abcdef0123456789";

/// Poll `check` until it answers `Some`, failing with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Like [`eventually`], but `check` says why it is not done yet; the last reason is
/// part of the failure message.
pub async fn eventually_because<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let why = match check().await {
            Ok(v) => return v,
            Err(why) => why,
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}: {why}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `jira-bridge serve` process.
pub struct Replica {
    pub name: String,
    pub base: String,
    child: Child,
    /// Its log lines (JSON), kept for failure messages.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Start a replica with these `JIRA_BRIDGE_*` variables (nothing inherited) and wait
    /// for it to log `serving`.
    pub fn start(name: &str, env: &BTreeMap<String, String>, dir: &std::path::Path) -> Self {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("JIRA_BRIDGE_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .current_dir(dir)
            .arg("serve")
            .envs(env)
            .env("JIRA_BRIDGE_BIND", "127.0.0.1:0")
            .env("JIRA_BRIDGE_LOG_FORMAT", "json")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start jira-bridge serve");
        let stderr = child.stderr.take();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Owned from here on: dropping it (also on a failed start) kills and reaps it.
        let mut me = Self {
            name: name.to_owned(),
            base: String::new(),
            child,
            log: log.clone(),
        };
        let stderr = stderr.expect("stderr");
        let (tx, rx) = mpsc::channel::<String>();
        // `JIRA_BRIDGE_SCALE_LOG_DIR=<dir>`: every log line also goes to `<dir>/<name>.log`
        // (to read a run's logs while it runs, or after it).
        let mut file = std::env::var_os("JIRA_BRIDGE_SCALE_LOG_DIR").map(|d| {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d).expect("log directory");
            std::fs::File::create(d.join(format!("{name}.log"))).expect("log file")
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                log.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "replica {name} did not log `serving`:\n{}",
                    me.log.lock().unwrap().join("\n")
                );
            };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "serving" {
                    let addr = v["fields"]["address"].as_str().unwrap_or_default();
                    me.base = format!("http://{addr}");
                    return me;
                }
            }
        }
    }

    /// SIGKILL: no shutdown, no draining, leases left behind.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().expect("wait")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Log lines at `level` or worse (`WARN`, `ERROR`).
    pub fn log_lines(&self, levels: &[&str]) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| v["level"].as_str().map(|s| levels.contains(&s)))
                    .unwrap_or(false)
            })
            .cloned()
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let lines: Vec<String> = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| {
                    (l.contains("\"WARN\"") || l.contains("\"ERROR\"") || l.contains("refresh"))
                        && !l.contains("unknown environment variable")
                })
                .cloned()
                .collect();
            let exited = self.child.try_wait().ok().flatten();
            eprintln!(
                "---- replica {} ({}; exited: {exited:?}): last warnings and errors ----\n{}",
                self.name,
                self.base,
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every replica of one deployment shares.
pub fn service_env(db_url: &str, sim: &SimHandle, scenario: &Value) -> BTreeMap<String, String> {
    let o = &scenario["oauth"];
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    set("JIRA_BRIDGE_DATABASE_URL", db_url);
    set(
        "JIRA_BRIDGE_MASTER_KEY",
        secrecy::ExposeSecret::expose_secret(&jira_bridge::crypto::generate_key()),
    );
    set("JIRA_BRIDGE_ADMIN_KEY", ADMIN_KEY);
    set("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS", "true");
    set("JIRA_BRIDGE_DATABASE_MAX_CONNECTIONS", "12");
    set("JIRA_BRIDGE_LOG", "info");
    set(
        "JIRA_BRIDGE_OAUTH_CLIENT_ID",
        o["client_id"].as_str().unwrap(),
    );
    set(
        "JIRA_BRIDGE_OAUTH_CLIENT_SECRET",
        o["client_secret"].as_str().unwrap(),
    );
    set(
        "JIRA_BRIDGE_OAUTH_REDIRECT_URI",
        "http://127.0.0.1/callback",
    );
    set("JIRA_BRIDGE_OAUTH_AUTHORIZE_URL", &sim.url("/authorize"));
    set("JIRA_BRIDGE_OAUTH_TOKEN_URL", &sim.url("/oauth/token"));
    set("JIRA_BRIDGE_OAUTH_API_URL", sim.base_url());
    // Short leases: the work of a killed replica is taken over within seconds.
    set("JIRA_BRIDGE_JOBS_LEASE_SECONDS", "4");
    set("JIRA_BRIDGE_EVENTS_DELIVERY_LEASE_SECONDS", "16");
    set("JIRA_BRIDGE_WORKLOGS_LEASE_SECONDS", "4");
    set("JIRA_BRIDGE_WORKLOGS_POLL_MS", "100");
    set("JIRA_BRIDGE_WORKLOGS_FEED_SECONDS", "0");
    env
}

/// Sends each request to the next replica in turn (no load balancer).
#[derive(Clone)]
pub struct RoundRobin {
    bases: Arc<Mutex<Vec<String>>>,
    next: Arc<AtomicUsize>,
    pub http: reqwest::Client,
    pub key: String,
}

impl RoundRobin {
    pub fn new(bases: Vec<String>, key: &str) -> Self {
        Self {
            bases: Arc::new(Mutex::new(bases)),
            next: Arc::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            key: key.to_owned(),
        }
    }

    /// Replace the replicas requests go to.
    pub fn set_bases(&self, bases: Vec<String>) {
        *self.bases.lock().unwrap() = bases;
    }

    pub fn base(&self) -> String {
        let bases = self.bases.lock().unwrap();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % bases.len();
        bases[i].clone()
    }

    /// Send, retrying on another replica when the connection fails (a killed replica).
    /// Only for requests that are safe to repeat (reads, keyed PUTs, requests with an
    /// Idempotency-Key).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut last = None;
        for _ in 0..6 {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base()))
                .bearer_auth(&self.key);
            if let Some(b) = body {
                req = req.json(b);
            }
            if let Some(k) = idempotency_key {
                req = req.header("Idempotency-Key", k);
            }
            match req.send().await {
                Ok(r) => return r,
                Err(e) => last = Some(e),
            }
        }
        panic!("{method} {path}: no replica answered: {last:?}");
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.send(reqwest::Method::GET, path, None, None).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Send until the answer is not 429 / 503 (Jira rate limiting or failing, passed
    /// on), as a well-behaved client would; then expect one of `statuses`.
    pub async fn expect_retrying(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        statuses: &[u16],
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = self.send(method.clone(), path, Some(&body), None).await;
            let got = r.status().as_u16();
            let text = r.text().await.unwrap();
            if (got == 429 || got == 503) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert!(statuses.contains(&got), "{method} {path}: {got} {text}");
            return serde_json::from_str(&text).unwrap_or(Value::Null);
        }
    }

    /// Send and expect `status`; the JSON answer.
    pub async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        idempotency_key: Option<&str>,
        status: u16,
    ) -> Value {
        let r = self
            .send(method.clone(), path, Some(&body), idempotency_key)
            .await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// Create a tenant through the admin API; its API key.
pub async fn create_tenant(base: &str, name: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/admin/tenants"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["api_key"]["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn sim_get(sim: &SimHandle, path: &str) -> Value {
    let r = reqwest::get(sim.url(path)).await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

pub async fn sim_send(sim: &SimHandle, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, sim.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Connect the tenant to the simulator's first Cloud site with OAuth (3LO), the
/// consent given in the simulator; the connection id.
pub async fn connect_oauth(base: &str, key: &str, sim: &SimHandle, scenario: &Value) -> String {
    let site = scenario["sites"][0]["cloud_id"].as_str().unwrap();
    sim_send(
        sim,
        reqwest::Method::PUT,
        "/_sim/oauth/next-sites",
        json!({"cloud_ids": [site]}),
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/v1/oauth/start"))
        .bearer_auth(key)
        .json(&json!({"owner": "scale", "name": "Cloud via OAuth"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let start: Value = r.json().await.unwrap();
    let r = http
        .get(start["authorization_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let query = url::Url::parse(&loc)
        .unwrap()
        .query()
        .unwrap_or_default()
        .to_owned();
    let r = http
        .get(format!("{base}/v1/oauth/callback?{query}"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["connection"]["id"].as_str().unwrap().to_owned()
}

/// Connect with an API token (Basic auth) as `user` of the simulator's first site.
pub async fn connect_token(base: &str, key: &str, sim: &SimHandle, user: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/connections"))
        .bearer_auth(key)
        .json(
            &json!({"name": "jira", "kind": "cloud_token", "base_url": sim.base_url(),
            "email": format!("{user}@example.com"), "token": format!("ATATT-{user}-api-token")}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Summaries of the issues of `project` in the simulator, with how often each occurs.
pub async fn issue_summaries(sim: &SimHandle, project: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in sim_get(sim, &format!("/_sim/issues?project={project}"))
        .await
        .as_array()
        .unwrap()
    {
        let summary = i["summary"]
            .as_str()
            .or_else(|| i["fields"]["summary"].as_str())
            .unwrap_or_default()
            .to_owned();
        *out.entry(summary).or_default() += 1;
    }
    out
}

/// Our marker's time-entry id on a simulator worklog.
pub fn worklog_marker(w: &Value) -> Option<String> {
    w["properties"]
        .as_array()?
        .iter()
        .find(|p| p["key"] == "jira-bridge.time-entry")
        .and_then(|p| p["value"]["entry_id"].as_str())
        .map(str::to_owned)
}

/// How many worklogs carry each time entry's marker, over `issues`.
pub async fn worklogs_per_entry(sim: &SimHandle, issues: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for k in issues {
        let issue = sim_get(sim, &format!("/_sim/issues/{k}")).await;
        for w in issue["worklogs"].as_array().cloned().unwrap_or_default() {
            if let Some(id) = worklog_marker(&w) {
                *out.entry(id).or_default() += 1;
            }
        }
    }
    out
}

/// Requests the simulator answered for `method` on endpoints ending with `suffix`,
/// by status.
pub fn sim_requests(stats: &Value, method: &str, suffix: &str) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for r in stats["requests"].as_array().into_iter().flatten() {
        if r["method"] == method && r["endpoint"].as_str().unwrap_or("").ends_with(suffix) {
            *out.entry(r["status"].as_u64().unwrap_or(0)).or_default() +=
                r["count"].as_u64().unwrap_or(0);
        }
    }
    out
}

/// A sample of one Prometheus counter family: the sum over series whose labels
/// contain every `k="v"` of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The terminal state of a job, polled through the round-robin client.
pub async fn wait_job(rr: &RoundRobin, job: &str, limit: Duration) -> Value {
    eventually(&format!("job {job} finished"), limit, || async {
        let j = rr.get(&format!("/v1/jobs/{job}")).await;
        let state = j["state"].as_str().unwrap_or_default().to_owned();
        ["succeeded", "failed", "partially_failed", "cancelled"]
            .contains(&state.as_str())
            .then_some(j)
    })
    .await
}

/// An SSE client of one replica: every `id:` (event seq) it has seen and every
/// `finished` job event.
#[derive(Clone, Default)]
pub struct SseLog {
    pub ids: Arc<Mutex<Vec<i64>>>,
    pub events: Arc<Mutex<Vec<(String, Value)>>>,
    pub ended: Arc<std::sync::atomic::AtomicBool>,
}

impl SseLog {
    /// Follow `url` (an SSE stream) in the background until it ends.
    pub async fn follow(http: &reqwest::Client, url: String, key: &str) -> Self {
        let log = Self::default();
        let res = http
            .get(url.clone())
            .bearer_auth(key)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let me = log.clone();
        tokio::spawn(async move {
            let mut res = res;
            let mut buf = String::new();
            let (mut id, mut name, mut data) = (None::<i64>, String::new(), String::new());
            while let Ok(Some(chunk)) = res.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(pos) = buf.find('\n') {
                    let line = buf[..pos].trim_end_matches('\r').to_owned();
                    buf.drain(..=pos);
                    if line.is_empty() {
                        if let Some(i) = id.take() {
                            me.ids.lock().unwrap().push(i);
                        }
                        if !name.is_empty() || !data.is_empty() {
                            let v = serde_json::from_str(&data).unwrap_or(Value::Null);
                            me.events
                                .lock()
                                .unwrap()
                                .push((std::mem::take(&mut name), v));
                        }
                        data.clear();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
            }
            me.ended.store(true, Ordering::SeqCst);
        });
        log
    }

    pub fn ids(&self) -> Vec<i64> {
        self.ids.lock().unwrap().clone()
    }

    pub fn events(&self) -> Vec<(String, Value)> {
        self.events.lock().unwrap().clone()
    }
}

/// An outbound-webhook endpoint: answers 204 and records every `webhook-id`.
#[derive(Clone, Default)]
pub struct Receiver {
    pub ids: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Serve on 127.0.0.1:0; the receiver and its URL.
    pub async fn start() -> (Self, String) {
        let me = Self::default();
        let state = me.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let state = state.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    state.ids.lock().unwrap().push(id);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (me, url)
    }

    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }
}

/// Every delivery of a subscription (all pages).
pub async fn all_deliveries(rr: &RoundRobin, sub: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/subscriptions/{sub}/deliveries?limit=500&cursor={c}"),
            None => format!("/v1/subscriptions/{sub}/deliveries?limit=500"),
        };
        let page = rr.get(&path).await;
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Every event as `(seq, id)` (all pages of `GET /v1/events`).
pub async fn all_events(rr: &RoundRobin) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = rr.get(&format!("/v1/events?after={after}&limit=500")).await;
        for e in page["items"].as_array().cloned().unwrap_or_default() {
            out.push((
                e["seq"].as_i64().unwrap(),
                e["id"].as_str().unwrap().to_owned(),
            ));
        }
        after = page["next_after"].as_i64().unwrap();
        if page["has_more"] != true {
            return out;
        }
    }
}

/// The simulator's OAuth server counters.
pub async fn oauth_stats(sim: &SimHandle) -> Value {
    sim_get(sim, "/_sim/oauth/stats").await
}

/// HMAC-SHA256 signature of an inbound Jira webhook body (`X-Hub-Signature`).
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
