//! Client commands: speak to a running service over its HTTP API (`/v1/…`).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::bulk;
use super::output::{print_json, s, Progress};
use super::{Cli, Command, Exit};

/// `jira-bridge connections …`
#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List the tenant's connections (never any secret).
    List {
        /// Only connections of this owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Verify and store a connection with an API token (Cloud) or PAT (Data Center).
    ///
    /// The token is read from JIRA_TOKEN or, with --token-stdin, from standard input;
    /// it is never printed.
    Add {
        /// Display name.
        name: String,
        /// Jira base URL, e.g. `https://acme.atlassian.net`.
        #[arg(long)]
        base_url: String,
        /// Kind of credentials.
        #[arg(long, value_enum, default_value = "cloud-token")]
        kind: Kind,
        /// Atlassian account e-mail (cloud-token).
        #[arg(long)]
        email: Option<String>,
        /// Owner (the host application's user or team id).
        #[arg(long)]
        owner: Option<String>,
        /// The API token or PAT.
        #[arg(
            long = "token",
            env = "JIRA_TOKEN",
            hide_env_values = true,
            hide = true
        )]
        token: Option<String>,
        /// Read the token from standard input.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Re-verify a stored connection.
    Verify {
        /// Connection id (`con_…`).
        id: String,
    },
    /// Connect Jira Cloud with OAuth 2.0 (3LO): prints the consent URL and waits.
    ///
    /// Listens on a free loopback port, prints the URL to open (and opens it with
    /// --open), then waits until the browser comes back from Jira and prints the new
    /// connection. When the grant covers several sites, --site picks one.
    Oauth {
        /// Owner of the connection.
        #[arg(long)]
        owner: Option<String>,
        /// Display name (default: the site name).
        #[arg(long)]
        name: Option<String>,
        /// The site to connect when the grant covers several (name, URL or cloud id).
        #[arg(long, value_name = "SITE")]
        site: Option<String>,
        /// Open the URL in the default browser too.
        #[arg(long)]
        open: bool,
        /// Print the URL and exit without waiting for the browser.
        #[arg(long)]
        no_wait: bool,
        /// Send the browser here afterwards instead (allow-listed origins only;
        /// implies --no-wait).
        #[arg(long, value_name = "URL")]
        return_to: Option<String>,
    },
}

/// Credential kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Jira Cloud: e-mail + API token.
    CloudToken,
    /// Jira Data Center: personal access token.
    DcPat,
}

/// Which connection to use; when absent and the tenant has exactly one, that one.
#[derive(Debug, Args)]
pub struct ConnectionArg {
    /// Connection id (`con_…`).
    #[arg(long, env = "JIRA_BRIDGE_CONNECTION")]
    pub connection: Option<String>,
}

/// `jira-bridge issues …`
#[derive(Debug, Subcommand)]
pub enum IssuesCommand {
    /// Search issues by text or JQL.
    Search {
        /// Free text.
        text: Option<String>,
        /// JQL instead of text.
        #[arg(long)]
        jql: Option<String>,
        /// Most results.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// Show one issue (description as Markdown).
    Show {
        /// Issue key, e.g. WEB-1.
        key: String,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// The connection user's open issues.
    Assigned {
        #[command(flatten)]
        connection: ConnectionArg,
    },
}

/// `jira-bridge tickets …`
#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Create one ticket (the same source again returns the existing one).
    Create {
        /// Summary.
        summary: String,
        /// Project key.
        #[arg(long)]
        project: String,
        /// Issue type name.
        #[arg(long = "type", default_value = "Task")]
        issue_type: String,
        /// Description (Markdown).
        #[arg(long)]
        description: Option<String>,
        /// Host object kind.
        #[arg(long, default_value = "cli")]
        source_kind: String,
        /// Host object id.
        #[arg(long)]
        source_id: String,
        /// Priority name.
        #[arg(long)]
        priority: Option<String>,
        /// Label (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// Create many tickets from a CSV, JSON or YAML file in one job.
    ///
    /// Columns / keys: source_id (required), source_kind, summary (required),
    /// project_key, issue_type, description, priority, labels (`;`-separated in CSV),
    /// assignee_email, parent_key. Invalid rows are reported by line and left out;
    /// the rest is submitted. Exit code 1 when any row or item failed.
    Bulk {
        /// The input file (.csv, .json, .jsonl, .yaml).
        file: PathBuf,
        /// Default project key for rows without one.
        #[arg(long)]
        project: Option<String>,
        /// Default issue type for rows without one.
        #[arg(long = "type")]
        issue_type: Option<String>,
        /// Queue the job and print its id without waiting.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// List linked tickets.
    List {
        /// Filter by source kind.
        #[arg(long)]
        source_kind: Option<String>,
        /// Filter by source id.
        #[arg(long)]
        source_id: Option<String>,
        /// Filter by project key.
        #[arg(long)]
        project: Option<String>,
        /// Filter by status category (todo, in_progress, done).
        #[arg(long)]
        status_category: Option<String>,
        /// Most results.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Sync ticket statuses from Jira now and wait for the job.
    Sync {
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Print the job id without waiting.
        #[arg(long)]
        no_wait: bool,
    },
}

/// `jira-bridge export FILE`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// JSON or YAML: `{project_key?, epics: [{source, summary, stories: [...]}]}`.
    pub file: PathBuf,
    /// Project key (overrides the file's).
    #[arg(long)]
    pub project: Option<String>,
    /// Preview what would be created without creating anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Also update summary and description of items that already have an issue.
    #[arg(long)]
    pub update_existing: bool,
    #[command(flatten)]
    pub connection: ConnectionArg,
}

/// `jira-bridge worklogs …`
#[derive(Debug, Subcommand)]
pub enum WorklogsCommand {
    /// Upsert time entries from a CSV file and sync them to Jira worklogs.
    ///
    /// Columns: source_id, issue_key, started_at (RFC 3339), ended_at or
    /// duration_seconds, comment, owner. Invalid rows are reported by line.
    Push {
        /// The CSV file.
        file: PathBuf,
        /// Sync mode: auto queues a sync per entry; manual only stores.
        #[arg(long, default_value = "auto", value_parser = ["auto", "manual"])]
        sync: String,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// List time entries with their sync state.
    Status {
        /// Only this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only this state (not_synced, pending, synced, failed, deleted).
        #[arg(long)]
        state: Option<String>,
        /// Most results.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `jira-bridge releases …`
#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// Create release epics, one per platform target of a config.
    #[command(disable_version_flag = true)]
    Create {
        /// Config id (`cfg_…`); `--config` names the service's configuration file.
        #[arg(long = "config-id")]
        config_id: String,
        /// Version, e.g. 2.4.0.
        #[arg(long)]
        version: String,
        /// Platform target name (repeatable).
        #[arg(long = "platform", required = true)]
        platforms: Vec<String>,
        /// Planned date (YYYY-MM-DD).
        #[arg(long)]
        planned_date: Option<String>,
        /// Text for the description template's {description}.
        #[arg(long)]
        description: Option<String>,
        /// Print the release id without waiting for its epics.
        #[arg(long)]
        no_wait: bool,
    },
    /// Refresh a release's statuses; exit 1 while it is not complete.
    Check {
        /// Release id (`rel_…`).
        id: String,
    },
}

/// `jira-bridge keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Extract issue keys from the arguments, or from standard input when none.
    Extract {
        /// Texts.
        texts: Vec<String>,
        /// Only these project keys (repeatable).
        #[arg(long = "project")]
        projects: Vec<String>,
    },
}

/// `jira-bridge jobs …`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Follow a job until it ends, with progress; exit 1 if items failed.
    Watch {
        /// Job id (`job_…`).
        id: String,
    },
}

/// `jira-bridge events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the tenant's events, oldest first.
    Tail {
        /// Start after this event seq (the number in the first column).
        #[arg(long)]
        after: Option<String>,
        /// Keep waiting for new events until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
    },
}

/// HTTP access to the service.
pub struct Api {
    base: String,
    key: Option<SecretString>,
    http: reqwest::Client,
    streaming: reqwest::Client,
}

impl Api {
    /// From `--url` and `--api-key`.
    pub fn new(url: &str, key: Option<&str>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("jira-bridge-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()?;
        let streaming = reqwest::Client::builder()
            .user_agent(concat!("jira-bridge-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            base: url.trim_end_matches('/').to_string(),
            key: key.map(|k| SecretString::from(k.to_string())),
            http,
            streaming,
        })
    }

    /// Send a request; 2xx answers the JSON body (or null). Errors carry the
    /// problem's detail and map to exit codes.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call_raw(method.clone(), path, body).await?;
        if status.is_success() {
            return Ok(v);
        }
        Err(problem(method, path, status, &v))
    }

    /// Open a server-sent event stream (no overall timeout).
    pub async fn stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let key = self.key.as_ref().ok_or_else(|| {
            Exit::Usage("no API key: pass --api-key or set JIRA_BRIDGE_API_KEY".into())
        })?;
        let resp = self
            .streaming
            .get(format!("{}{path}", self.base))
            .bearer_auth(key.expose_secret())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| {
                Exit::Connection(format!("cannot reach the service at {}: {e}", self.base))
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(problem(Method::GET, path, status, &v))
    }

    /// Send a request and answer its status and JSON body, whatever the status.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let key = self.key.as_ref().ok_or_else(|| {
            Exit::Usage("no API key: pass --api-key or set JIRA_BRIDGE_API_KEY".into())
        })?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key.expose_secret());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            Exit::Connection(format!("cannot reach the service at {}: {e}", self.base))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, v))
    }
}

/// Follow a job through its event stream (`/v1/jobs/{id}/events`), showing progress;
/// answers its final state. Falls back to polling when the stream breaks.
pub async fn follow_job_sse(api: &Api, id: &str, label: &str, json: bool) -> anyhow::Result<Value> {
    use futures::StreamExt;
    let path = format!("/v1/jobs/{}/events", enc(id));
    let Ok(resp) = api.stream(&path).await else {
        return follow_job(api, id, label, json).await;
    };
    let mut progress = Progress::new(label, json);
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let (mut event, mut data) = (String::new(), String::new());
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(nl) = buf.find('\n') {
            let line = buf[..nl].trim_end_matches('\r').to_owned();
            buf.drain(..=nl);
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                data.clear();
                progress.update(
                    v["succeeded"].as_u64().unwrap_or(0) + v["failed"].as_u64().unwrap_or(0),
                    v["failed"].as_u64().unwrap_or(0),
                    v["total"].as_u64().unwrap_or(0),
                );
                if event == "finished" {
                    progress.finish();
                    return Ok(v);
                }
            }
        }
    }
    progress.finish();
    follow_job(api, id, label, json).await
}

fn problem(method: Method, path: &str, status: StatusCode, v: &Value) -> anyhow::Error {
    let mut msg = v
        .get("detail")
        .and_then(Value::as_str)
        .or_else(|| v.get("title").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    if let Some(errors) = v.get("errors").and_then(Value::as_object) {
        for (k, e) in errors {
            msg.push_str(&format!(
                "\n  {k}: {}",
                e.as_str().unwrap_or(&e.to_string())
            ));
        }
    }
    if let Some(j) = v.get("jira") {
        msg.push_str(&format!("\n  Jira said: {j}"));
    }
    let text = format!("{method} {path}: {status}: {msg}");
    match status.as_u16() {
        401 | 403 => Exit::Connection(text).into(),
        400 | 422 => Exit::Usage(text).into(),
        404 if v.get("type").and_then(Value::as_str)
            == Some("urn:jira-bridge:problem:not-found")
            && msg.contains("route") =>
        {
            anyhow::anyhow!("{text} (this service does not offer this capability)")
        }
        _ => anyhow::anyhow!(text),
    }
}

fn q(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encode a path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn connection_id(api: &Api, arg: &ConnectionArg) -> anyhow::Result<String> {
    if let Some(c) = &arg.connection {
        return Ok(c.clone());
    }
    let list = api.call(Method::GET, "/v1/connections", None).await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    match items.as_slice() {
        [one] => Ok(s(one, "id").to_string()),
        [] => Err(Exit::Usage(
            "the tenant has no connection; add one with `jira-bridge connections add`".into(),
        )
        .into()),
        _ => Err(Exit::Usage(
            "several connections: pass --connection con_… (see `jira-bridge connections list`)"
                .into(),
        )
        .into()),
    }
}

/// Run a client command.
pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let api = Api::new(&cli.url, cli.api_key.as_deref())?;
    let json = cli.json;
    match &cli.command {
        Command::Connections(c) => connections(&api, c, json).await,
        Command::Issues(c) => issues(&api, c, json).await,
        Command::Tickets(c) => tickets(&api, c, json).await,
        Command::Export(a) => export(&api, a, json).await,
        Command::Worklogs(c) => worklogs(&api, c, json).await,
        Command::Releases(c) => releases(&api, c, json).await,
        Command::Keys(KeysCommand::Extract { texts, projects }) => {
            let mut texts = texts.clone();
            if texts.is_empty() {
                let mut input = String::new();
                std::io::stdin()
                    .read_to_string(&mut input)
                    .map_err(|e| Exit::Usage(format!("cannot read standard input: {e}")))?;
                texts.push(input);
            }
            let mut body = json!({"texts": texts});
            if !projects.is_empty() {
                body["project_keys"] = json!(projects);
            }
            let v = api
                .call(Method::POST, "/v1/keys/extract", Some(&body))
                .await?;
            if json {
                print_json(&v);
            } else {
                for k in v["keys"].as_array().into_iter().flatten() {
                    println!("{}", k.as_str().unwrap_or(&k.to_string()));
                }
            }
            Ok(())
        }
        Command::Jobs(JobsCommand::Watch { id }) => watch_job(&api, id, "job", json).await,
        Command::Events(EventsCommand::Tail { after, follow }) => {
            events_tail(&api, after.clone(), *follow, json).await
        }
        _ => Err(Exit::Usage("not a client command".into()).into()),
    }
}

async fn connections(api: &Api, c: &ConnectionsCommand, json: bool) -> anyhow::Result<()> {
    match c {
        ConnectionsCommand::List { owner } => {
            let v = api
                .call(
                    Method::GET,
                    &format!("/v1/connections{}", q(&[("owner", owner.clone())])),
                    None,
                )
                .await?;
            if json {
                print_json(&v);
            } else {
                for i in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<20} {:<12} {:<8} {}",
                        s(i, "id"),
                        s(i, "name"),
                        s(i, "kind"),
                        s(i, "verification_status"),
                        s(i, "base_url")
                    );
                }
            }
        }
        ConnectionsCommand::Add {
            name,
            base_url,
            kind,
            email,
            owner,
            token,
            token_stdin,
        } => {
            let token = if *token_stdin {
                let mut t = String::new();
                std::io::stdin()
                    .read_to_string(&mut t)
                    .map_err(|e| Exit::Usage(format!("cannot read the token: {e}")))?;
                t.trim().to_string()
            } else {
                token.clone().ok_or_else(|| {
                    Exit::Usage("no token: set JIRA_TOKEN or pass --token-stdin".into())
                })?
            };
            let token = SecretString::from(token);
            let kind = match kind {
                Kind::CloudToken => "cloud_token",
                Kind::DcPat => "dc_pat",
            };
            let body = json!({"name": name, "kind": kind, "base_url": base_url,
                "email": email, "owner": owner, "token": token.expose_secret()});
            let v = api
                .call(Method::POST, "/v1/connections", Some(&body))
                .await?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "{}  {}  {}",
                    s(&v, "id"),
                    s(&v, "name"),
                    s(&v, "verification_status")
                );
            }
        }
        ConnectionsCommand::Verify { id } => {
            let v = api
                .call(
                    Method::POST,
                    &format!("/v1/connections/{}/verify", enc(id)),
                    None,
                )
                .await?;
            if json {
                print_json(&v);
            } else {
                println!("{}  {}", s(&v, "id"), s(&v, "verification_status"));
            }
            if v["verification_status"] != "valid" {
                return Err(Exit::Partial(format!("connection {id} is not valid")).into());
            }
        }
        ConnectionsCommand::Oauth {
            owner,
            name,
            site,
            open,
            no_wait,
            return_to,
        } => {
            let o = super::oauth::OAuthOptions {
                owner: owner.as_deref(),
                name: name.as_deref(),
                return_to: return_to.as_deref(),
                site: site.as_deref(),
                no_wait: *no_wait,
                open: *open,
            };
            super::oauth::run(api, &o, json).await?;
        }
    }
    Ok(())
}

fn issue_line(i: &Value) -> String {
    let status = i
        .get("status")
        .map(|st| {
            st.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| s(st, "name").to_string())
        })
        .unwrap_or_else(|| "-".into());
    format!("{:<10} {:<14} {}", s(i, "key"), status, s(i, "summary"))
}

async fn issues(api: &Api, c: &IssuesCommand, json: bool) -> anyhow::Result<()> {
    let (path, list) = match c {
        IssuesCommand::Search {
            text,
            jql,
            limit,
            connection,
        } => {
            let con = connection_id(api, connection).await?;
            if text.is_none() && jql.is_none() {
                return Err(Exit::Usage("give search text or --jql".into()).into());
            }
            (
                format!(
                    "/v1/connections/{}/issues/search{}",
                    enc(&con),
                    q(&[
                        ("q", text.clone()),
                        ("jql", jql.clone()),
                        ("limit", Some(limit.to_string()))
                    ])
                ),
                true,
            )
        }
        IssuesCommand::Assigned { connection } => {
            let con = connection_id(api, connection).await?;
            (
                format!("/v1/connections/{}/issues/assigned", enc(&con)),
                true,
            )
        }
        IssuesCommand::Show { key, connection } => {
            let con = connection_id(api, connection).await?;
            (
                format!("/v1/connections/{}/issues/{}", enc(&con), enc(key)),
                false,
            )
        }
    };
    let v = api.call(Method::GET, &path, None).await?;
    if json {
        print_json(&v);
    } else if list {
        for i in v["items"].as_array().into_iter().flatten() {
            println!("{}", issue_line(i));
        }
    } else {
        println!("{}", issue_line(&v));
        for k in ["issue_type", "assignee", "url"] {
            if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
                let text = x.as_str().map(str::to_string).unwrap_or_else(|| {
                    x.get("display_name")
                        .or_else(|| x.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                });
                println!("{k}: {text}");
            }
        }
        if let Some(d) = v
            .get("description_markdown")
            .or_else(|| v.get("description"))
            .and_then(Value::as_str)
        {
            println!("\n{d}");
        }
    }
    Ok(())
}

async fn tickets(api: &Api, c: &TicketsCommand, json: bool) -> anyhow::Result<()> {
    match c {
        TicketsCommand::Create {
            summary,
            project,
            issue_type,
            description,
            source_kind,
            source_id,
            priority,
            labels,
            connection,
        } => {
            let con = connection_id(api, connection).await?;
            let mut body = json!({"connection_id": con, "source": {"kind": source_kind, "id": source_id},
                "project_key": project, "issue_type": issue_type, "summary": summary});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(p) = priority {
                body["priority"] = json!(p);
            }
            if !labels.is_empty() {
                body["labels"] = json!(labels);
            }
            let v = api.call(Method::POST, "/v1/tickets", Some(&body)).await?;
            if json {
                print_json(&v);
            } else {
                println!("{}  {}  {}", s(&v, "id"), s(&v, "issue_key"), s(&v, "url"));
            }
            Ok(())
        }
        TicketsCommand::Bulk {
            file,
            project,
            issue_type,
            no_wait,
            connection,
        } => {
            let (records, mut bad) = bulk::read(file).map_err(Exit::Usage)?;
            let (items, invalid) =
                bulk::ticket_items(records, project.is_some(), issue_type.is_some());
            bad.extend(invalid);
            bad.sort_by_key(|b| b.line);
            for b in &bad {
                eprintln!("{}:{}: {}", file.display(), b.line, b.message);
            }
            if items.is_empty() {
                return Err(Exit::Usage(format!("{}: no valid rows", file.display())).into());
            }
            let con = connection_id(api, connection).await?;
            let mut defaults = json!({});
            if let Some(p) = project {
                defaults["project_key"] = json!(p);
            }
            if let Some(t) = issue_type {
                defaults["issue_type"] = json!(t);
            }
            let body = json!({"connection_id": con, "defaults": defaults,
                "items": items.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()});
            let v = api
                .call(Method::POST, "/v1/tickets/bulk", Some(&body))
                .await?;
            let job = s(&v, "job_id").to_string();
            if !json {
                eprintln!(
                    "{} valid row(s) submitted, {} invalid; job {job}",
                    items.len(),
                    bad.len()
                );
            }
            if *no_wait {
                if json {
                    print_json(&json!({"job_id": job, "invalid": invalid_json(&bad)}));
                } else {
                    println!("{job}");
                }
                return if bad.is_empty() {
                    Ok(())
                } else {
                    Err(Exit::Partial(format!("{} invalid row(s)", bad.len())).into())
                };
            }
            let result = follow_job(api, &job, "tickets", json).await?;
            finish_job(&result, &bad, json)
        }
        TicketsCommand::List {
            source_kind,
            source_id,
            project,
            status_category,
            limit,
        } => {
            let path = format!(
                "/v1/tickets{}",
                q(&[
                    ("source_kind", source_kind.clone()),
                    ("source_id", source_id.clone()),
                    ("project", project.clone()),
                    ("status_category", status_category.clone()),
                    ("limit", Some(limit.to_string())),
                ])
            );
            let v = api.call(Method::GET, &path, None).await?;
            if json {
                print_json(&v);
            } else {
                for t in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<10} {:<14} {}:{}",
                        s(t, "id"),
                        s(t, "issue_key"),
                        s(t, "status"),
                        t["source"]["kind"].as_str().unwrap_or("-"),
                        t["source"]["id"].as_str().unwrap_or("-"),
                    );
                }
            }
            Ok(())
        }
        TicketsCommand::Sync {
            connection,
            no_wait,
        } => {
            let body = match connection {
                Some(c) => json!({"connection_id": c}),
                None => json!({}),
            };
            let v = api
                .call(Method::POST, "/v1/tickets/sync", Some(&body))
                .await?;
            let job = s(&v, "job_id").to_string();
            if *no_wait {
                if json {
                    print_json(&v)
                } else {
                    println!("{job}")
                }
                return Ok(());
            }
            let result = follow_job(api, &job, "sync", json).await?;
            finish_job(&result, &[], json)
        }
    }
}

fn invalid_json(bad: &[bulk::Invalid]) -> Value {
    Value::Array(
        bad.iter()
            .map(|b| json!({"line": b.line, "message": b.message}))
            .collect(),
    )
}

fn finish_job(job: &Value, bad: &[bulk::Invalid], json: bool) -> anyhow::Result<()> {
    let failed = job["failed"].as_i64().unwrap_or(0);
    if json {
        let mut out = job.clone();
        out["invalid"] = invalid_json(bad);
        print_json(&out);
    } else {
        println!(
            "job {} {}: {} succeeded, {} failed, {} invalid row(s)",
            s(job, "id"),
            s(job, "state"),
            job["succeeded"].as_i64().unwrap_or(0),
            failed,
            bad.len()
        );
    }
    if failed > 0 || !bad.is_empty() || job["state"] != "succeeded" {
        return Err(Exit::Partial(format!(
            "{failed} item(s) failed, {} invalid row(s)",
            bad.len()
        ))
        .into());
    }
    Ok(())
}

const FINAL: [&str; 4] = ["succeeded", "failed", "partially_failed", "cancelled"];

/// Poll a job until it ends, showing progress; answers its last state.
pub async fn follow_job(api: &Api, id: &str, label: &str, json: bool) -> anyhow::Result<Value> {
    let mut progress = Progress::new(label, json);
    loop {
        let v = api
            .call(Method::GET, &format!("/v1/jobs/{}", enc(id)), None)
            .await?;
        let succeeded = v["succeeded"].as_u64().unwrap_or(0);
        let failed = v["failed"].as_u64().unwrap_or(0);
        let total = v["total"].as_u64().unwrap_or(0);
        progress.update(succeeded + failed, failed, total);
        if FINAL.contains(&v["state"].as_str().unwrap_or("")) {
            progress.finish();
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn watch_job(api: &Api, id: &str, label: &str, json: bool) -> anyhow::Result<()> {
    let v = follow_job(api, id, label, json).await?;
    finish_job(&v, &[], json)
}

async fn export(api: &Api, a: &ExportArgs, json: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| Exit::Usage(format!("cannot read {}: {e}", a.file.display())))?;
    let mut body: Value = if a
        .file
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml")
    {
        serde_yaml::from_str(&text).map_err(|e| {
            Exit::Usage(format!(
                "{}:{}: not valid YAML: {e}",
                a.file.display(),
                e.location().map(|l| l.line()).unwrap_or(0)
            ))
        })?
    } else {
        serde_json::from_str(&text).map_err(|e| {
            Exit::Usage(format!(
                "{}:{}: not valid JSON: {e}",
                a.file.display(),
                e.line()
            ))
        })?
    };
    if body.is_array() {
        body = json!({"epics": body});
    }
    if !body.is_object() || !body["epics"].is_array() {
        return Err(Exit::Usage(format!(
            "{}: expected {{project_key?, epics: [...]}} or a list of epics",
            a.file.display()
        ))
        .into());
    }
    let con = connection_id(api, &a.connection).await?;
    body["connection_id"] = json!(con);
    if let Some(p) = &a.project {
        body["project_key"] = json!(p);
    }
    if body["project_key"].as_str().is_none_or(str::is_empty) {
        return Err(
            Exit::Usage("no project: give --project or project_key in the file".into()).into(),
        );
    }
    body["dry_run"] = json!(a.dry_run);
    if a.update_existing {
        body["update_existing"] = json!(true);
    }
    let v = api.call(Method::POST, "/v1/exports", Some(&body)).await?;
    if a.dry_run {
        let c = &v["counts"];
        if json {
            print_json(&v);
        } else {
            println!(
                "plan for {} ({}, stories linked by {}): {} to create, {} existing, {} to update, {} invalid, {} blocked",
                s(&v, "project_key"),
                s(&v, "project_style"),
                s(&v["flavor"], "link_field"),
                c["create"], c["existing"], c["update"], c["invalid"], c["blocked"]
            );
            for e in v["epics"].as_array().into_iter().flatten() {
                print_plan_item(e, "");
                for st in e["stories"].as_array().into_iter().flatten() {
                    print_plan_item(st, "  ");
                }
            }
        }
        let bad = c["invalid"].as_u64().unwrap_or(0) + c["blocked"].as_u64().unwrap_or(0);
        if bad > 0 {
            return Err(Exit::Partial(format!("{bad} item(s) would not be created")).into());
        }
        return Ok(());
    }
    let exp = s(&v, "export_id").to_string();
    let job = s(&v, "job_id").to_string();
    if !json {
        eprintln!("export {exp}, job {job}");
    }
    let result = follow_job_sse(api, &job, "export", json).await?;
    let e = api
        .call(Method::GET, &format!("/v1/exports/{}", enc(&exp)), None)
        .await?;
    let c = &e["counts"];
    if json {
        let mut out = e.clone();
        out["job"] = result.clone();
        print_json(&out);
    } else {
        for ep in e["epics"].as_array().into_iter().flatten() {
            for n in std::iter::once(ep).chain(ep["stories"].as_array().into_iter().flatten()) {
                if n["state"] == "failed" || n["state"] == "held" {
                    println!(
                        "{} {}:{} {}",
                        s(n, "state"),
                        s(&n["source"], "kind"),
                        s(&n["source"], "id"),
                        n["error"]["message"]
                            .as_str()
                            .unwrap_or("waits for its epic")
                    );
                }
            }
        }
        println!(
            "export {exp} {}: {} created, {} existing, {} failed, {} held",
            s(&e, "state"),
            c["created"],
            c["existing"],
            c["failed"],
            c["held"]
        );
    }
    let bad = c["failed"].as_u64().unwrap_or(0) + c["held"].as_u64().unwrap_or(0);
    if bad > 0 || result["state"] != "succeeded" {
        return Err(Exit::Partial(format!(
            "{} item(s) failed, {} held; fix the input and export again, or retry job {job}",
            c["failed"], c["held"]
        ))
        .into());
    }
    Ok(())
}

fn print_plan_item(v: &Value, indent: &str) {
    let mut line = format!(
        "{indent}{:<8} {}:{} {}",
        s(v, "action"),
        s(&v["source"], "kind"),
        s(&v["source"], "id"),
        s(v, "summary")
    );
    if let Some(k) = v["issue_key"].as_str() {
        line.push_str(&format!(" ({k})"));
    }
    for (f, m) in v["errors"].as_object().into_iter().flatten() {
        line.push_str(&format!(
            "\n{indent}         {f}: {}",
            m.as_str().unwrap_or("")
        ));
    }
    println!("{line}");
}

async fn worklogs(api: &Api, c: &WorklogsCommand, json: bool) -> anyhow::Result<()> {
    match c {
        WorklogsCommand::Push {
            file,
            sync,
            connection,
        } => {
            let (records, mut bad) = bulk::read(file).map_err(Exit::Usage)?;
            let mut valid = Vec::new();
            for r in records {
                let m = &r.value;
                let mut problems = Vec::new();
                for k in ["source_id", "issue_key", "started_at"] {
                    if bulk::str_field(m, k).is_none() {
                        problems.push(format!("{k} is missing"));
                    }
                }
                if let Some(t) = bulk::str_field(m, "started_at") {
                    if chrono::DateTime::parse_from_rfc3339(t).is_err() {
                        problems.push(format!("started_at '{t}' is not RFC 3339"));
                    }
                }
                if bulk::str_field(m, "ended_at").is_none()
                    && bulk::str_field(m, "duration_seconds").is_none()
                {
                    problems.push("ended_at or duration_seconds is missing".into());
                }
                if let Some(d) = bulk::str_field(m, "duration_seconds") {
                    if d.parse::<u64>().is_err() {
                        problems.push(format!("duration_seconds '{d}' is not a number"));
                    }
                }
                if problems.is_empty() {
                    valid.push(r);
                } else {
                    bad.push(bulk::Invalid {
                        line: r.line,
                        message: problems.join("; "),
                    });
                }
            }
            for b in &bad {
                eprintln!("{}:{}: {}", file.display(), b.line, b.message);
            }
            let con = connection_id(api, connection).await?;
            let mut progress = Progress::new("worklogs", json);
            let total = valid.len() as u64;
            let (mut done, mut failed) = (0u64, 0u64);
            let mut results = Vec::new();
            for r in valid {
                let m = &r.value;
                let source = bulk::str_field(m, "source_id")
                    .unwrap_or_default()
                    .to_string();
                let mut body = json!({"connection_id": con, "sync": sync,
                    "issue_key": bulk::str_field(m, "issue_key"),
                    "started_at": bulk::str_field(m, "started_at")});
                for k in ["ended_at", "comment", "owner"] {
                    if let Some(v) = bulk::str_field(m, k) {
                        body[k] = json!(v);
                    }
                }
                if let Some(d) =
                    bulk::str_field(m, "duration_seconds").and_then(|d| d.parse::<u64>().ok())
                {
                    body["duration_seconds"] = json!(d);
                }
                let out = api
                    .call(
                        Method::PUT,
                        &format!("/v1/time-entries/{}", enc(&source)),
                        Some(&body),
                    )
                    .await;
                done += 1;
                match out {
                    Ok(v) => results
                        .push(json!({"line": r.line, "source_id": source, "ok": true, "entry": v})),
                    Err(e)
                        if e.downcast_ref::<Exit>()
                            .is_some_and(|x| matches!(x, Exit::Connection(_))) =>
                    {
                        return Err(e)
                    }
                    Err(e) => {
                        failed += 1;
                        if !json {
                            eprintln!("{}:{}: {e:#}", file.display(), r.line);
                        }
                        results.push(json!({"line": r.line, "source_id": source, "ok": false, "error": format!("{e:#}")}));
                    }
                }
                progress.update(done, failed, total);
            }
            progress.finish();
            if json {
                print_json(
                    &json!({"total": total, "succeeded": done - failed, "failed": failed,
                    "invalid": invalid_json(&bad), "results": results}),
                );
            } else {
                println!(
                    "{} time entr(ies) pushed, {failed} failed, {} invalid row(s)",
                    done - failed,
                    bad.len()
                );
            }
            if failed > 0 || !bad.is_empty() {
                return Err(Exit::Partial(format!(
                    "{failed} failed, {} invalid row(s)",
                    bad.len()
                ))
                .into());
            }
            Ok(())
        }
        WorklogsCommand::Status {
            owner,
            state,
            limit,
        } => {
            let path = format!(
                "/v1/time-entries{}",
                q(&[
                    ("owner", owner.clone()),
                    ("state", state.clone()),
                    ("limit", Some(limit.to_string()))
                ])
            );
            let v = api.call(Method::GET, &path, None).await?;
            if json {
                print_json(&v);
            } else {
                for e in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "{:<20} {:<10} {:<10} {}",
                        s(e, "source_id"),
                        s(e, "issue_key"),
                        e.get("sync_state")
                            .or_else(|| e.get("state"))
                            .and_then(Value::as_str)
                            .unwrap_or("-"),
                        e.get("last_error").and_then(Value::as_str).unwrap_or("")
                    );
                }
            }
            Ok(())
        }
    }
}

async fn releases(api: &Api, c: &ReleasesCommand, json: bool) -> anyhow::Result<()> {
    match c {
        ReleasesCommand::Create {
            config_id: config,
            version,
            platforms,
            planned_date,
            description,
            no_wait,
        } => {
            let mut body = json!({"config_id": config, "version": version, "platforms": platforms});
            if let Some(d) = planned_date {
                body["planned_date"] = json!(d);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v = api.call(Method::POST, "/v1/releases", Some(&body)).await?;
            let id = v
                .get("id")
                .or_else(|| v.get("release_id"))
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string();
            if *no_wait {
                if json {
                    print_json(&v);
                } else {
                    println!("{id}");
                }
                return Ok(());
            }
            let job = s(&v, "job_id").to_string();
            let result = follow_job_sse(api, &job, "release", json).await?;
            let r = api
                .call(Method::GET, &format!("/v1/releases/{}", enc(&id)), None)
                .await?;
            print_release(&r, json);
            if result["state"] != "succeeded" {
                return Err(Exit::Partial(format!(
                    "some release epics were not created (job {job})"
                ))
                .into());
            }
            Ok(())
        }
        ReleasesCommand::Check { id } => {
            let v = api
                .call(
                    Method::POST,
                    &format!("/v1/releases/{}/check", enc(id)),
                    None,
                )
                .await?;
            print_release(&v, json);
            if v["complete"] != true {
                return Err(Exit::Partial(format!("release {id} is not complete")).into());
            }
            Ok(())
        }
    }
}

fn print_release(v: &Value, json: bool) {
    if json {
        print_json(v);
        return;
    }
    println!(
        "{} {} complete: {}",
        s(v, "id"),
        s(v, "version"),
        v["complete"]
    );
    for p in v["platforms"].as_array().into_iter().flatten() {
        println!(
            "  {:<12} {:<10} {:<14} {}",
            s(p, "platform"),
            p["issue_key"].as_str().unwrap_or(s(p, "state")),
            p["status"].as_str().unwrap_or("-"),
            if p["complete"] == true {
                "done"
            } else {
                "open"
            }
        );
    }
}

async fn events_tail(
    api: &Api,
    after: Option<String>,
    follow: bool,
    json: bool,
) -> anyhow::Result<()> {
    let mut after: i64 = match after {
        Some(a) => a
            .parse()
            .map_err(|_| Exit::Usage(format!("--after '{a}' is not an event seq (a number)")))?,
        None => 0,
    };
    // The history, page by page.
    loop {
        let path = format!("/v1/events?after={after}&limit=100");
        let v = api.call(Method::GET, &path, None).await?;
        for e in v["items"].as_array().into_iter().flatten() {
            print_event(e, json);
        }
        after = v["next_after"].as_i64().unwrap_or(after);
        if v["has_more"] != true {
            break;
        }
    }
    if !follow {
        return Ok(());
    }
    // Then new events as the service pushes them (server-sent events), resuming
    // after the last one seen when the stream breaks.
    use futures::StreamExt;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(super::cancel_on_signal(stop.clone()));
    loop {
        let path = format!("/v1/events?after={after}");
        let resp = tokio::select! {
            r = api.stream(&path) => r?,
            _ = stop.cancelled() => return Ok(()),
        };
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        loop {
            let chunk = tokio::select! {
                c = body.next() => c,
                _ = stop.cancelled() => return Ok(()),
            };
            let Some(Ok(chunk)) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Ok(e) = serde_json::from_str::<Value>(&data) {
                    if let Some(seq) = e["seq"].as_i64() {
                        after = after.max(seq);
                    }
                    print_event(&e, json);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

fn print_event(e: &Value, json: bool) {
    if json {
        print_json(e);
    } else {
        println!(
            "{:>6}  {}  {:<22} {}",
            e["seq"],
            s(e, "created_at"),
            e.get("type")
                .or_else(|| e.get("event_type"))
                .and_then(Value::as_str)
                .unwrap_or("-"),
            s(e, "subject")
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
