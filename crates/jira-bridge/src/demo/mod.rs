//! `jira-bridge demo`: a simulated Jira and the service in one process, with a
//! tenant, an API key, a connection and sample data, fully offline.
//!
//! The data folder keeps the SQLite database, the generated master key file and
//! `demo.json` (mode 0600: tenant id, the demo API key, connection id) so re-runs
//! reuse them and can print the key again. The simulated Jira lives in memory and
//! starts from its `demo` scenario on every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::audit::Actor;
use crate::cli::client::Api;
use crate::cli::Cli;
use crate::config::Config;

/// Arguments of `jira-bridge demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data folder: SQLite database, master key file and the demo's credentials.
    #[arg(long, default_value = "jira-bridge-demo", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Service port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Simulated Jira port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8089)]
    pub sim_port: u16,
    /// Delete the data folder first and start from nothing.
    #[arg(long)]
    pub fresh: bool,
    /// Also stop when standard input closes (for running under a supervisor or a
    /// test harness that holds the other end of a pipe).
    #[arg(long)]
    pub stop_on_stdin_close: bool,
}

/// What re-runs reuse (`demo.json`, mode 0600).
#[derive(Debug, Default, Serialize, Deserialize)]
struct DemoState {
    tenant_id: String,
    api_key: String,
    #[serde(default)]
    connection_id: Option<String>,
    #[serde(default)]
    connection_base_url: Option<String>,
    #[serde(default)]
    seeded: bool,
}

const STATE_FILE: &str = "demo.json";
const SIM_EMAIL: &str = "alice@example.com";

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

fn save(dir: &Path, state: &DemoState) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(state)?;
    write_private(&dir.join(STATE_FILE), &text)
}

/// Run the demo until Ctrl-C / SIGTERM.
pub async fn run(cli: &Cli, args: &DemoArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if args.fresh && dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove {} (--fresh)", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| {
            crate::cli::Exit::Usage(format!(
                "cannot listen on 127.0.0.1:{} ({e}); pick another with --port",
                args.port
            ))
        })?;
    let service_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let redirect_uri = format!("{service_url}/v1/oauth/callback");

    let sim = jira_sim::spawn(jira_sim::SimConfig {
        port: args.sim_port,
        oauth_redirect_uris: vec![redirect_uri.clone()],
        ..jira_sim::SimConfig::cloud()
    })
    .await
    .map_err(|e| {
        crate::cli::Exit::Usage(format!(
            "simulated Jira: {e}; pick another port with --sim-port"
        ))
    })?;
    let sim_url = sim.base_url().to_string();
    let scenario = sim.scenario();
    let alice = scenario["users"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["email"] == SIM_EMAIL)
        .cloned()
        .unwrap_or(Value::Null);
    let alice_token = alice["api_token"].as_str().unwrap_or("").to_string();

    // Configuration: the usual layers, then the demo's settings on top.
    let mut env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("JIRA_BRIDGE_"))
        .collect();
    for k in [
        "JIRA_BRIDGE_DATABASE_URL",
        "JIRA_BRIDGE_DATABASE_URL_FILE",
        "JIRA_BRIDGE_URL",
        "JIRA_BRIDGE_API_KEY",
    ] {
        env.remove(k);
    }
    env.entry("JIRA_BRIDGE_LOG".into())
        .or_insert_with(|| "warn".into());
    let o = &scenario["oauth"];
    let overrides = [
        ("JIRA_BRIDGE_DATA_DIR", dir.display().to_string()),
        ("JIRA_BRIDGE_BIND", listener.local_addr()?.to_string()),
        ("JIRA_BRIDGE_MIGRATE_ON_START", "true".into()),
        ("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS", "true".into()),
        (
            "JIRA_BRIDGE_OAUTH_CLIENT_ID",
            o["client_id"].as_str().unwrap_or("").into(),
        ),
        (
            "JIRA_BRIDGE_OAUTH_CLIENT_SECRET",
            o["client_secret"].as_str().unwrap_or("").into(),
        ),
        ("JIRA_BRIDGE_OAUTH_REDIRECT_URI", redirect_uri.clone()),
        (
            "JIRA_BRIDGE_OAUTH_AUTHORIZE_URL",
            format!("{sim_url}/authorize"),
        ),
        (
            "JIRA_BRIDGE_OAUTH_TOKEN_URL",
            format!("{sim_url}/oauth/token"),
        ),
        ("JIRA_BRIDGE_OAUTH_API_URL", sim_url.clone()),
        (
            "JIRA_BRIDGE_OAUTH_RETURN_TO_ORIGINS",
            format!("{service_url},http://127.0.0.1"),
        ),
    ];
    for (k, v) in overrides {
        env.insert(k.into(), v);
    }
    let crate::config::Loaded { config, warnings } =
        Config::load_with_env(cli.config.as_deref(), &env).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Err(e) = crate::telemetry::init(&config.log) {
        eprintln!("logging could not be set up: {e}");
    }
    for w in warnings {
        tracing::warn!("{w}");
    }

    // Tenant and API key: created once, kept in demo.json.
    let state_path = dir.join(STATE_FILE);
    let mut state: DemoState = match std::fs::read_to_string(&state_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged; run with --fresh", state_path.display()))?,
        Err(_) => DemoState::default(),
    };
    let reused = !state.api_key.is_empty();
    if !reused {
        let store = crate::app::connect_store(&config).await?;
        store.migrate().await.context("applying migrations")?;
        let made =
            crate::tenancy::create_tenant(&store, &Actor::Cli, "demo", "demo", Vec::new(), None)
                .await;
        store.close().await;
        let (tenant, _key, secret) = made.map_err(|e| {
            anyhow::anyhow!(
                "cannot create the demo tenant: {} (run with --fresh)",
                e.problem().detail
            )
        })?;
        state = DemoState {
            tenant_id: tenant.id.to_string(),
            api_key: secret.expose_secret().to_string(),
            ..DemoState::default()
        };
        save(&dir, &state)?;
    }

    // The service.
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::cli::cancel_on_signal(shutdown.clone()));
    if args.stop_on_stdin_close {
        // A plain thread: a blocked read must not hold up the runtime's shutdown.
        let token = shutdown.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            token.cancel();
        });
    }
    let mut service = tokio::spawn(crate::app::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();
    let ready = async {
        loop {
            if let Ok(r) = http.get(format!("{service_url}/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = ready => {}
        ended = &mut service => {
            sim.shutdown().await;
            return match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("the service stopped before it was ready")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(anyhow::anyhow!("the service task failed: {e}")),
            };
        }
        _ = tokio::time::sleep(Duration::from_secs(60)) => {
            shutdown.cancel();
            anyhow::bail!("the service did not become ready within 60 s");
        }
    }

    let api = Api::new(&service_url, Some(&state.api_key))?;
    let mut notes: Vec<String> = Vec::new();
    let mut seeded = json!({});

    // The connection to the simulated site (again when the simulator moved).
    let connection_ok = match (&state.connection_id, &state.connection_base_url) {
        (Some(id), Some(base)) if *base == sim_url => api
            .call(Method::GET, &format!("/v1/connections/{id}"), None)
            .await
            .is_ok(),
        _ => false,
    };
    if !connection_ok {
        let body = json!({"name": "Acme (simulated)", "kind": "cloud_token", "base_url": sim_url,
            "email": SIM_EMAIL, "token": alice_token});
        let v = api
            .call(Method::POST, "/v1/connections", Some(&body))
            .await
            .context("creating the connection to the simulated Jira")?;
        state.connection_id = v["id"].as_str().map(str::to_string);
        state.connection_base_url = Some(sim_url.clone());
        state.seeded = false;
        save(&dir, &state)?;
    }
    let connection_id = state.connection_id.clone().unwrap_or_default();

    // Sample data, for the capabilities this build serves.
    let paths: Vec<String> = match http
        .get(format!("{service_url}/v1/openapi.json"))
        .send()
        .await
    {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|d| d["paths"].as_object().map(|m| m.keys().cloned().collect()))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let has = |p: &str| paths.iter().any(|x| x == p);
    if state.seeded {
        notes.push("sample data was seeded on the first run (the simulated Jira starts from its scenario on every run; --fresh starts over)".into());
    } else {
        seed(&api, &connection_id, &has, &mut notes, &mut seeded).await;
        state.seeded = true;
        save(&dir, &state)?;
    }

    let console = match http.get(format!("{service_url}/console")).send().await {
        Ok(r) if r.status().is_success() => Some(format!("{service_url}/console")),
        _ => None,
    };
    let key = &state.api_key;
    let examples = vec![
        format!("curl -s -H 'Authorization: Bearer {key}' {service_url}/v1/connections"),
        format!(
            "curl -s -H 'Authorization: Bearer {key}' '{service_url}/v1/connections/{connection_id}/issues/search?q=checkout'"
        ),
        format!(
            "JIRA_BRIDGE_URL={service_url} JIRA_BRIDGE_API_KEY={key} jira-bridge tickets list"
        ),
    ];
    if cli.json {
        println!(
            "{}",
            json!({
                "service_url": service_url,
                "api_base": format!("{service_url}/v1"),
                "console_url": console,
                "api_key": key,
                "tenant_id": state.tenant_id,
                "connection_id": connection_id,
                "sim_url": sim_url,
                "data_dir": dir,
                "reused": reused,
                "seeded": seeded,
                "notes": notes,
                "examples": examples,
            })
        );
    } else {
        println!("jira-bridge demo is running; Ctrl-C stops it.\n");
        match &console {
            Some(c) => println!("  console     {c}   (sign in with the API key)"),
            None => println!("  console     (not part of this build)"),
        }
        println!("  API base    {service_url}/v1   (OpenAPI: {service_url}/v1/openapi.json)");
        println!("  API key     {key}");
        println!("  Jira (sim)  {sim_url}   user {SIM_EMAIL}, API token {alice_token}");
        println!("  connection  {connection_id}");
        println!(
            "  data        {}{}",
            dir.display(),
            if reused {
                "  (reused; --fresh starts over)"
            } else {
                ""
            }
        );
        if let Some(obj) = seeded.as_object().filter(|o| !o.is_empty()) {
            println!("\nSeeded:");
            for (k, v) in obj {
                println!("  {k}: {v}");
            }
        }
        for n in &notes {
            println!("  note: {n}");
        }
        println!("\nTry:");
        for e in &examples {
            println!("  {e}");
        }
        println!();
    }

    let result = match service.await {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("the service task failed: {e}")),
    };
    sim.shutdown().await;
    if !cli.json {
        eprintln!("demo stopped");
    }
    result
}

async fn seed(
    api: &Api,
    connection_id: &str,
    has: &dyn Fn(&str) -> bool,
    notes: &mut Vec<String>,
    seeded: &mut Value,
) {
    let mut keys: Vec<String> = Vec::new();
    if has("/v1/tickets") {
        let samples = [
            (
                "demo-1",
                "Checkout button does not respond on Safari",
                "Bug",
            ),
            ("demo-2", "Add Apple Pay to the checkout", "Story"),
            ("demo-3", "Rotate the storefront TLS certificate", "Task"),
        ];
        for (id, summary, kind) in samples {
            let body = json!({"connection_id": connection_id, "source": {"kind": "demo", "id": id},
                "project_key": "WEB", "issue_type": kind, "summary": summary,
                "description": format!("Created by the **jira-bridge demo** for `{id}`."),
                "labels": ["demo"]});
            match api.call(Method::POST, "/v1/tickets", Some(&body)).await {
                Ok(v) => keys.push(v["issue_key"].as_str().unwrap_or("?").to_string()),
                Err(e) => notes.push(format!("ticket {id} not created: {e:#}")),
            }
        }
        seeded["tickets"] = json!(keys);
    } else {
        notes.push("tickets: not seeded (this build has no /v1/tickets)".into());
    }
    if has("/v1/time-entries/{source_id}") {
        let issue = keys.first().cloned().unwrap_or_else(|| "WEB-1".into());
        let today = chrono::Utc::now().date_naive();
        let mut done = Vec::new();
        for (i, hours) in [(1, 2u64), (2, 1)] {
            let start = today - chrono::Days::new(i);
            let body = json!({"connection_id": connection_id, "issue_key": issue,
                "started_at": format!("{start}T09:00:00Z"), "duration_seconds": hours * 3600,
                "comment": "demo time entry", "sync": "auto"});
            let source = format!("demo-time-{i}");
            match api
                .call(
                    Method::PUT,
                    &format!("/v1/time-entries/{source}"),
                    Some(&body),
                )
                .await
            {
                Ok(_) => done.push(source),
                Err(e) => notes.push(format!("time entry {source} not stored: {e:#}")),
            }
        }
        seeded["time_entries"] = json!(done);
    } else {
        notes.push("time entries: not seeded (this build has no /v1/time-entries)".into());
    }
    if has("/v1/releases") && has("/v1/configs") {
        let cfg = json!({"name": "demo-release", "connection_id": connection_id,
            "targets": [
                {"name": "web", "project_key": "WEB", "issue_type": "Epic", "completed_status": "Done"},
                {"name": "ops", "project_key": "OPS", "issue_type": "Epic",
                 "summary_template": "Roll out {version} ({planned_date})"}]});
        let made = match api.call(Method::POST, "/v1/configs", Some(&cfg)).await {
            Ok(c) => {
                let body = json!({"config_id": c["id"], "version": "1.0.0",
                    "platforms": ["web", "ops"], "planned_date": "2026-12-31",
                    "description": "The demo's first release."});
                api.call(Method::POST, "/v1/releases", Some(&body)).await
            }
            Err(e) => Err(e),
        };
        match made {
            Ok(v) => seeded["release"] = v,
            Err(e) => notes.push(format!("release not created: {e:#}")),
        }
    } else {
        notes.push("release: not seeded (this build has no /v1/releases)".into());
    }
}
