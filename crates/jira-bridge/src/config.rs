//! Settings: embedded commented defaults (`config.default.toml`, printed by
//! `jira-bridge default-config`) → optional TOML file → `JIRA_BRIDGE_*` environment
//! variables. Secrets may come from files (`*_FILE` variables or `*_file` keys).
//! [`Config::load`] validates everything and fails with messages that say which
//! setting is wrong and how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The commented default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config.default.toml");

/// Environment variable naming a configuration file.
pub const CONFIG_FILE_ENV: &str = "JIRA_BRIDGE_CONFIG";

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// Operator access.
    pub admin: AdminConfig,
    /// Secret sealing.
    pub crypto: CryptoConfig,
    /// Logging.
    pub log: LogConfig,
    /// Outbound safety.
    pub security: SecurityConfig,
    /// Atlassian OAuth app.
    pub oauth: OAuthConfig,
    /// Jira connections.
    pub connections: ConnectionsConfig,
    /// Time entries → worklogs.
    pub worklogs: WorklogsConfig,
    /// Jira's webhooks in.
    pub webhooks: WebhooksConfig,
    /// Durable jobs.
    pub jobs: JobsConfig,
    /// Outbound event deliveries.
    pub events: EventsConfig,
    /// Linked tickets.
    pub tickets: TicketsConfig,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `address:port` to listen on.
    pub bind: String,
    /// Largest request body in bytes.
    pub body_limit_bytes: u64,
    /// Per-request timeout in seconds.
    pub request_timeout_seconds: u64,
    /// Grace period on shutdown in seconds.
    pub shutdown_grace_seconds: u64,
    /// Public base URL of this service as Jira reaches it (webhook deliveries), e.g.
    /// `https://jira-bridge.example.com`.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Directory for the SQLite file and generated key file.
    pub data_dir: PathBuf,
    /// Database URL; empty means SQLite in `data_dir`. May embed a password.
    #[serde(default)]
    pub url: Option<SecretString>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Pool size.
    pub max_connections: u32,
    /// Run migrations at start.
    pub migrate_on_start: bool,
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Operator key.
    #[serde(default)]
    pub key: Option<SecretString>,
    /// File holding the operator key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// `[crypto]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoConfig {
    /// Current master key (base64 of 32 bytes).
    #[serde(default)]
    pub master_key: Option<SecretString>,
    /// Key ring file: one base64 key per line, the first is current.
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// Earlier keys, for opening only.
    #[serde(default)]
    pub previous_master_keys: Vec<SecretString>,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// EnvFilter directives.
    pub filter: String,
    /// Output format.
    pub format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[security]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Allow private / loopback Jira hosts and plain http.
    pub allow_private_hosts: bool,
}

/// `[oauth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Client id; empty disables OAuth.
    pub client_id: String,
    /// Client secret.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// File holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Redirect URI registered with Atlassian.
    pub redirect_uri: String,
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// API gateway (accessible resources, `/ex/jira/{cloudId}`).
    pub api_url: String,
    /// Scopes asked for (must include `offline_access` for refresh tokens).
    pub scopes: Vec<String>,
    /// Origins `return_to` may point at; empty: the callback answers JSON.
    pub return_to_origins: Vec<String>,
    /// How long a started authorization (its `state`) stays usable, in seconds.
    pub state_ttl_seconds: u64,
    /// Refresh an access token this many seconds before it expires.
    pub refresh_margin_seconds: u64,
    /// Refresh grants unused for this many days (Atlassian expires them after 90).
    pub idle_refresh_days: u64,
}

/// `[connections]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Re-verify every connection this often, in seconds; 0 turns it off.
    pub reverify_interval_seconds: u64,
    /// How often the background sweep (re-verify, idle refresh) runs, in seconds.
    pub sweep_interval_seconds: u64,
    /// How long fetched Jira metadata is served from the cache, in seconds.
    pub metadata_ttl_seconds: u64,
}

/// `[worklogs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorklogsConfig {
    /// Delay between a change of an `auto` entry and its sync, in milliseconds.
    pub debounce_ms: u64,
    /// How long a worker holds an entry or job item, in seconds (renewed every third).
    pub lease_seconds: u64,
    /// Syncs in flight per process; the site's pacer sets the pace.
    pub concurrency: u64,
    /// How often an idle worker looks for due work, in milliseconds.
    pub poll_ms: u64,
    /// How often Jira's worklog change feeds are read, in seconds; 0 turns it off.
    pub feed_seconds: u64,
    /// How long an issue lookup and a work-logging permission answer are cached, in
    /// seconds.
    pub issue_cache_seconds: u64,
}

/// `[webhooks]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Deliveries accepted per second and connection on the inbound endpoint; 0 turns
    /// the limit off.
    pub inbound_rate_per_second: u64,
    /// Deliveries a connection may send at once above the rate (the bucket size).
    pub inbound_burst: u64,
    /// Largest inbound delivery body, in bytes (at most `server.body_limit_bytes`).
    pub inbound_body_limit_bytes: u64,
}

/// `[jobs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// How long a claimed job item stays leased to one replica without a heartbeat,
    /// in seconds: how soon another replica takes over the items of one that died.
    pub lease_seconds: u64,
    /// Batches this process runs at once (1–256). Each batch is one bulk call or a
    /// handful of calls to Jira; the site's pacer, not this number, sets the pace.
    pub concurrency: u64,
}

/// `[tickets]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsConfig {
    /// How often a status sync job is scheduled per tenant with tickets, in seconds;
    /// 0 turns the schedule off (`POST /v1/tickets/sync` still works).
    pub sync_seconds: u64,
}

/// `[events]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// How long a claimed delivery stays leased to one replica, in seconds; more
    /// than the 15 s request timeout.
    pub delivery_lease_seconds: u64,
}

/// Why the configuration could not be loaded. Each line names the setting, the
/// environment variable, and what to do.
#[derive(Debug)]
pub struct ConfigError {
    /// One message per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn one(msg: impl Into<String>) -> Self {
        Self {
            problems: vec![msg.into()],
        }
    }
}

/// A loaded configuration and the warnings found while loading it (to be logged once
/// logging is set up).
#[derive(Debug)]
pub struct Loaded {
    /// The settings.
    pub config: Config,
    /// Non-fatal findings, such as unknown `JIRA_BRIDGE_*` variables.
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
}

struct EnvSetting {
    var: &'static str,
    section: &'static str,
    key: &'static str,
    kind: Kind,
    /// For secrets: the `*_file` key that `<VAR>_FILE` sets.
    file_key: Option<&'static str>,
}

const fn s(var: &'static str, section: &'static str, key: &'static str, kind: Kind) -> EnvSetting {
    EnvSetting {
        var,
        section,
        key,
        kind,
        file_key: None,
    }
}

const fn secret(
    var: &'static str,
    section: &'static str,
    key: &'static str,
    file_key: &'static str,
) -> EnvSetting {
    EnvSetting {
        var,
        section,
        key,
        kind: Kind::Str,
        file_key: Some(file_key),
    }
}

const ENV_SETTINGS: &[EnvSetting] = &[
    s("JIRA_BRIDGE_BIND", "server", "bind", Kind::Str),
    s("JIRA_BRIDGE_PUBLIC_URL", "server", "public_url", Kind::Str),
    s(
        "JIRA_BRIDGE_BODY_LIMIT_BYTES",
        "server",
        "body_limit_bytes",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_REQUEST_TIMEOUT_SECONDS",
        "server",
        "request_timeout_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_SHUTDOWN_GRACE_SECONDS",
        "server",
        "shutdown_grace_seconds",
        Kind::Int,
    ),
    s("JIRA_BRIDGE_DATA_DIR", "database", "data_dir", Kind::Str),
    secret("JIRA_BRIDGE_DATABASE_URL", "database", "url", "url_file"),
    s(
        "JIRA_BRIDGE_DATABASE_MAX_CONNECTIONS",
        "database",
        "max_connections",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_MIGRATE_ON_START",
        "database",
        "migrate_on_start",
        Kind::Bool,
    ),
    secret("JIRA_BRIDGE_ADMIN_KEY", "admin", "key", "key_file"),
    secret(
        "JIRA_BRIDGE_MASTER_KEY",
        "crypto",
        "master_key",
        "master_key_file",
    ),
    s(
        "JIRA_BRIDGE_PREVIOUS_MASTER_KEYS",
        "crypto",
        "previous_master_keys",
        Kind::List,
    ),
    s("JIRA_BRIDGE_LOG", "log", "filter", Kind::Str),
    s("JIRA_BRIDGE_LOG_FORMAT", "log", "format", Kind::Str),
    s(
        "JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS",
        "security",
        "allow_private_hosts",
        Kind::Bool,
    ),
    s(
        "JIRA_BRIDGE_OAUTH_CLIENT_ID",
        "oauth",
        "client_id",
        Kind::Str,
    ),
    secret(
        "JIRA_BRIDGE_OAUTH_CLIENT_SECRET",
        "oauth",
        "client_secret",
        "client_secret_file",
    ),
    s(
        "JIRA_BRIDGE_OAUTH_REDIRECT_URI",
        "oauth",
        "redirect_uri",
        Kind::Str,
    ),
    s(
        "JIRA_BRIDGE_OAUTH_AUTHORIZE_URL",
        "oauth",
        "authorize_url",
        Kind::Str,
    ),
    s(
        "JIRA_BRIDGE_OAUTH_TOKEN_URL",
        "oauth",
        "token_url",
        Kind::Str,
    ),
    s("JIRA_BRIDGE_OAUTH_API_URL", "oauth", "api_url", Kind::Str),
    s("JIRA_BRIDGE_OAUTH_SCOPES", "oauth", "scopes", Kind::List),
    s(
        "JIRA_BRIDGE_OAUTH_RETURN_TO_ORIGINS",
        "oauth",
        "return_to_origins",
        Kind::List,
    ),
    s(
        "JIRA_BRIDGE_OAUTH_STATE_TTL_SECONDS",
        "oauth",
        "state_ttl_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_OAUTH_REFRESH_MARGIN_SECONDS",
        "oauth",
        "refresh_margin_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_OAUTH_IDLE_REFRESH_DAYS",
        "oauth",
        "idle_refresh_days",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_CONNECTIONS_REVERIFY_INTERVAL_SECONDS",
        "connections",
        "reverify_interval_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_CONNECTIONS_SWEEP_INTERVAL_SECONDS",
        "connections",
        "sweep_interval_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_CONNECTIONS_METADATA_TTL_SECONDS",
        "connections",
        "metadata_ttl_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WORKLOGS_DEBOUNCE_MS",
        "worklogs",
        "debounce_ms",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WORKLOGS_LEASE_SECONDS",
        "worklogs",
        "lease_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_JOBS_LEASE_SECONDS",
        "jobs",
        "lease_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_JOBS_CONCURRENCY",
        "jobs",
        "concurrency",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WORKLOGS_CONCURRENCY",
        "worklogs",
        "concurrency",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WORKLOGS_POLL_MS",
        "worklogs",
        "poll_ms",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WORKLOGS_FEED_SECONDS",
        "worklogs",
        "feed_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WORKLOGS_ISSUE_CACHE_SECONDS",
        "worklogs",
        "issue_cache_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WEBHOOKS_INBOUND_RATE_PER_SECOND",
        "webhooks",
        "inbound_rate_per_second",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WEBHOOKS_INBOUND_BURST",
        "webhooks",
        "inbound_burst",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_WEBHOOKS_INBOUND_BODY_LIMIT_BYTES",
        "webhooks",
        "inbound_body_limit_bytes",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_EVENTS_DELIVERY_LEASE_SECONDS",
        "events",
        "delivery_lease_seconds",
        Kind::Int,
    ),
    s(
        "JIRA_BRIDGE_TICKETS_SYNC_SECONDS",
        "tickets",
        "sync_seconds",
        Kind::Int,
    ),
];

/// `JIRA_BRIDGE_*` variables that are not settings but are known (no warning).
const OTHER_KNOWN_VARS: &[&str] = &[CONFIG_FILE_ENV, "JIRA_BRIDGE_TEST_POSTGRES_URL"];

/// The environment variable for a setting (`section.key`), if it has one.
pub fn env_var_for(section: &str, key: &str) -> Option<&'static str> {
    ENV_SETTINGS
        .iter()
        .find(|e| e.section == section && (e.key == key || e.file_key == Some(key)))
        .map(|e| e.var)
}

impl Config {
    /// Load from the defaults, `file` (if any) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("JIRA_BRIDGE_"))
            .collect();
        Self::load_with_env(file, &env)
    }

    /// Load from the defaults, `file` (if any) and the given `JIRA_BRIDGE_*` variables.
    pub fn load_with_env(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let mut root: toml::Table = DEFAULT_CONFIG
            .parse()
            .map_err(|e| ConfigError::one(format!("embedded default configuration: {e}")))?;

        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::one(format!("cannot read config file {}: {e}", path.display()))
            })?;
            let overlay: toml::Table = text.parse().map_err(|e| {
                ConfigError::one(format!(
                    "config file {} is not valid TOML: {e}",
                    path.display()
                ))
            })?;
            merge(&mut root, overlay);
        }

        let mut problems = Vec::new();
        for (name, value) in env {
            if !name.starts_with("JIRA_BRIDGE_") {
                continue;
            }
            if let Some(setting) = ENV_SETTINGS.iter().find(|e| e.var == name) {
                match env_value(setting, value) {
                    Ok(v) => {
                        let table = section(&mut root, setting.section);
                        table.insert(setting.key.into(), v);
                        if let Some(fk) = setting.file_key {
                            table.remove(fk);
                        }
                    }
                    Err(msg) => problems.push(msg),
                }
            } else if let Some(setting) = name.strip_suffix("_FILE").and_then(|base| {
                ENV_SETTINGS
                    .iter()
                    .find(|e| e.var == base && e.file_key.is_some())
            }) {
                if env.contains_key(setting.var) {
                    problems.push(format!(
                        "{} and {name} are both set: set only one of them",
                        setting.var
                    ));
                    continue;
                }
                let table = section(&mut root, setting.section);
                if let Some(fk) = setting.file_key {
                    table.insert(fk.into(), toml::Value::String(value.clone()));
                }
                table.remove(setting.key);
            } else if !OTHER_KNOWN_VARS.contains(&name.as_str()) {
                warnings.push(format!(
                    "unknown environment variable {name} ignored (see `jira-bridge default-config` for the known ones)"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }

        // Empty strings mean "unset" for optional secrets.
        for (sec, key) in [
            ("database", "url"),
            ("admin", "key"),
            ("crypto", "master_key"),
            ("oauth", "client_secret"),
        ] {
            let table = section(&mut root, sec);
            if table.get(key).and_then(|v| v.as_str()) == Some("") {
                table.remove(key);
            }
        }

        let mut config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::one(format!("{e}")))?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        read_secret_file(
            &mut self.database.url,
            &self.database.url_file,
            "database.url",
            &mut problems,
        );
        read_secret_file(
            &mut self.admin.key,
            &self.admin.key_file,
            "admin.key",
            &mut problems,
        );
        read_secret_file(
            &mut self.oauth.client_secret,
            &self.oauth.client_secret_file,
            "oauth.client_secret",
            &mut problems,
        );
        if self.crypto.master_key.is_some() && self.crypto.master_key_file.is_some() {
            problems.push(
                "crypto.master_key and crypto.master_key_file are both set (JIRA_BRIDGE_MASTER_KEY / JIRA_BRIDGE_MASTER_KEY_FILE): set only one".into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Check every setting; all problems are reported at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        if self.server.bind.parse::<SocketAddr>().is_err() {
            p.push(format!(
                "server.bind (JIRA_BRIDGE_BIND) = {:?} is not an address:port; use e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
                self.server.bind
            ));
        }
        if self.server.body_limit_bytes == 0 {
            p.push("server.body_limit_bytes (JIRA_BRIDGE_BODY_LIMIT_BYTES) must be at least 1; the default is 1048576 (1 MiB)".into());
        }
        if self.server.request_timeout_seconds == 0 {
            p.push("server.request_timeout_seconds (JIRA_BRIDGE_REQUEST_TIMEOUT_SECONDS) must be at least 1".into());
        }
        if self.database.max_connections == 0 {
            p.push("database.max_connections (JIRA_BRIDGE_DATABASE_MAX_CONNECTIONS) must be at least 1".into());
        }
        if let Some(url) = &self.database.url {
            let u = url.expose_secret();
            if jira_bridge_store::Backend::from_url(u).is_none() {
                p.push("database.url (JIRA_BRIDGE_DATABASE_URL) must start with sqlite: or postgres:// (or be empty for the SQLite file in data_dir)".into());
            }
        }
        if let Some(key) = &self.admin.key {
            if key.expose_secret().trim().len() < 32 {
                p.push("admin.key (JIRA_BRIDGE_ADMIN_KEY) is shorter than 32 characters; generate one with `openssl rand -hex 32`".into());
            }
        }
        if let Some(key) = &self.crypto.master_key {
            if let Err(e) = crate::crypto::parse_key(key.expose_secret()) {
                p.push(format!("crypto.master_key (JIRA_BRIDGE_MASTER_KEY): {e}"));
            }
        }
        for (i, key) in self.crypto.previous_master_keys.iter().enumerate() {
            if let Err(e) = crate::crypto::parse_key(key.expose_secret()) {
                p.push(format!(
                    "crypto.previous_master_keys[{i}] (JIRA_BRIDGE_PREVIOUS_MASTER_KEYS): {e}"
                ));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            p.push(format!(
                "log.filter (JIRA_BRIDGE_LOG) = {:?} is not a valid filter ({e}); use e.g. `info` or `jira_bridge=debug,info`",
                self.log.filter
            ));
        }
        for (key, value) in [
            ("authorize_url", &self.oauth.authorize_url),
            ("token_url", &self.oauth.token_url),
            ("api_url", &self.oauth.api_url),
        ] {
            if url::Url::parse(value).is_err() {
                p.push(format!(
                    "oauth.{key} ({}) = {value:?} is not an absolute URL",
                    env_var_for("oauth", key).unwrap_or("")
                ));
            }
        }
        if !self.oauth.redirect_uri.is_empty() && url::Url::parse(&self.oauth.redirect_uri).is_err()
        {
            p.push("oauth.redirect_uri (JIRA_BRIDGE_OAUTH_REDIRECT_URI) is not an absolute URL; use https://<your host>/v1/oauth/callback".into());
        }
        for origin in &self.oauth.return_to_origins {
            let ok = url::Url::parse(origin).is_ok_and(|u| {
                u.has_host() && u.origin().ascii_serialization() == origin.trim_end_matches('/')
            });
            if !ok {
                p.push(format!(
                    "oauth.return_to_origins (JIRA_BRIDGE_OAUTH_RETURN_TO_ORIGINS): {origin:?} is not an origin; use scheme://host[:port], e.g. https://app.example.com"
                ));
            }
        }
        if !self.oauth.client_id.is_empty()
            && !self.oauth.scopes.iter().any(|s| s == "offline_access")
        {
            p.push("oauth.scopes (JIRA_BRIDGE_OAUTH_SCOPES) must include offline_access, or connections stop working when the first access token expires".into());
        }
        if self.worklogs.concurrency == 0 || self.worklogs.concurrency > 256 {
            p.push("worklogs.concurrency (JIRA_BRIDGE_WORKLOGS_CONCURRENCY) must be between 1 and 256; the default is 16".into());
        }
        if self.worklogs.lease_seconds == 0 {
            p.push("worklogs.lease_seconds (JIRA_BRIDGE_WORKLOGS_LEASE_SECONDS) must be at least 1; the default is 60".into());
        }
        if self.worklogs.poll_ms < 10 {
            p.push("worklogs.poll_ms (JIRA_BRIDGE_WORKLOGS_POLL_MS) must be at least 10; the default is 500".into());
        }
        if self.webhooks.inbound_rate_per_second > 0 && self.webhooks.inbound_burst == 0 {
            p.push("webhooks.inbound_burst (JIRA_BRIDGE_WEBHOOKS_INBOUND_BURST) must be at least 1 while the rate limit is on".into());
        }
        if self.webhooks.inbound_body_limit_bytes == 0 {
            p.push("webhooks.inbound_body_limit_bytes (JIRA_BRIDGE_WEBHOOKS_INBOUND_BODY_LIMIT_BYTES) must be at least 1; the default is 1048576 (1 MiB)".into());
        }
        if self.jobs.lease_seconds < 2 {
            p.push("jobs.lease_seconds (JIRA_BRIDGE_JOBS_LEASE_SECONDS) must be at least 2".into());
        }
        if self.jobs.concurrency == 0 || self.jobs.concurrency > 256 {
            p.push("jobs.concurrency (JIRA_BRIDGE_JOBS_CONCURRENCY) must be between 1 and 256; the default is 16".into());
        }
        if self.events.delivery_lease_seconds <= 15 {
            p.push("events.delivery_lease_seconds (JIRA_BRIDGE_EVENTS_DELIVERY_LEASE_SECONDS) must be more than the 15 s delivery timeout".into());
        }
        if self.connections.sweep_interval_seconds == 0 {
            p.push("connections.sweep_interval_seconds (JIRA_BRIDGE_CONNECTIONS_SWEEP_INTERVAL_SECONDS) must be at least 1".into());
        }
        if !self.oauth.client_id.is_empty() && self.oauth.client_secret.is_none() {
            p.push("oauth.client_id is set but oauth.client_secret is not (JIRA_BRIDGE_OAUTH_CLIENT_SECRET or JIRA_BRIDGE_OAUTH_CLIENT_SECRET_FILE)".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: p })
        }
    }

    /// The listen address (validated by [`Config::load`]).
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            ConfigError::one(format!(
                "server.bind = {:?} is not an address:port",
                self.server.bind
            ))
        })
    }

    /// The database URL to connect to: the configured one, or the SQLite file in
    /// `data_dir`.
    pub fn database_url(&self) -> SecretString {
        match &self.database.url {
            Some(url) => url.clone(),
            None => SecretString::from(format!(
                "sqlite:{}",
                self.database.data_dir.join("jira-bridge.db").display()
            )),
        }
    }
}

fn read_secret_file(
    value: &mut Option<SecretString>,
    file: &Option<PathBuf>,
    name: &str,
    problems: &mut Vec<String>,
) {
    let Some(path) = file else { return };
    let (section, key) = name.split_once('.').unwrap_or(("", name));
    let var = env_var_for(section, key).unwrap_or("");
    if value.is_some() {
        problems.push(format!(
            "{name} and {name}_file are both set ({var} / {var}_FILE): set only one"
        ));
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => *value = Some(SecretString::from(text.trim().to_owned())),
        Err(e) => problems.push(format!(
            "{name}_file ({var}_FILE): cannot read {}: {e}",
            path.display()
        )),
    }
}

fn section<'a>(root: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    let entry = root
        .entry(name.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    match entry {
        toml::Value::Table(t) => t,
        _ => unreachable!("replaced by a table above"),
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn env_value(setting: &EnvSetting, raw: &str) -> Result<toml::Value, String> {
    let var = setting.var;
    match setting.kind {
        Kind::Str => Ok(toml::Value::String(raw.to_owned())),
        Kind::Int => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(toml::Value::Integer)
            .ok_or_else(|| format!("{var} = {raw:?} is not a non-negative whole number")),
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "0" | "false" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!(
                "{var} = {raw:?} is not a boolean; use true or false"
            )),
        },
        Kind::List => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_match_the_documented_values() {
        let loaded = Config::load_with_env(None, &env(&[])).unwrap();
        let c = loaded.config;
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.server.body_limit_bytes, 1024 * 1024);
        assert!(c.database.url.is_none());
        assert!(c.admin.key.is_none());
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(c.database.migrate_on_start);
        assert!(c.database_url().expose_secret().ends_with("jira-bridge.db"));
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn file_then_env_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nbind = \"127.0.0.1:9000\"\nbody_limit_bytes = 10\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&path), &env(&[("JIRA_BRIDGE_BIND", "0.0.0.0:7000")]))
            .unwrap()
            .config;
        assert_eq!(c.server.bind, "0.0.0.0:7000", "env beats file");
        assert_eq!(c.server.body_limit_bytes, 10, "file beats default");
    }

    #[test]
    fn secrets_come_from_files_and_conflicts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin");
        std::fs::write(&path, "a".repeat(40) + "\n").unwrap();
        let c = Config::load_with_env(
            None,
            &env(&[("JIRA_BRIDGE_ADMIN_KEY_FILE", path.to_str().unwrap())]),
        )
        .unwrap()
        .config;
        assert_eq!(c.admin.key.unwrap().expose_secret(), "a".repeat(40));

        let both = Config::load_with_env(
            None,
            &env(&[
                ("JIRA_BRIDGE_ADMIN_KEY_FILE", path.to_str().unwrap()),
                ("JIRA_BRIDGE_ADMIN_KEY", &"b".repeat(40)),
            ]),
        )
        .unwrap_err();
        assert!(both.to_string().contains("both set"), "{both}");
    }

    #[test]
    fn invalid_values_give_actionable_messages_all_at_once() {
        let err = Config::load_with_env(
            None,
            &env(&[
                ("JIRA_BRIDGE_BIND", "localhost"),
                ("JIRA_BRIDGE_DATABASE_URL", "mysql://x"),
                ("JIRA_BRIDGE_ADMIN_KEY", "short"),
                ("JIRA_BRIDGE_MASTER_KEY", "not base64!"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("JIRA_BRIDGE_BIND") && text.contains("127.0.0.1:8080"),
            "{text}"
        );
        assert!(text.contains("openssl rand"), "{text}");

        let bad_int = Config::load_with_env(None, &env(&[("JIRA_BRIDGE_BODY_LIMIT_BYTES", "big")]))
            .unwrap_err();
        assert!(bad_int.to_string().contains("JIRA_BRIDGE_BODY_LIMIT_BYTES"));
        let bad_format = Config::load_with_env(None, &env(&[("JIRA_BRIDGE_LOG_FORMAT", "xml")]));
        assert!(bad_format.is_err());
    }

    #[test]
    fn unknown_variables_and_keys() {
        let loaded = Config::load_with_env(
            None,
            &env(&[("JIRA_BRIDGE_BINDD", "x"), ("JIRA_BRIDGE_CONFIG", "/x")]),
        )
        .unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("JIRA_BRIDGE_BINDD"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nbnd = \"x\"\n").unwrap();
        let err = Config::load_with_env(Some(&path), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("bnd"), "{err}");
    }

    #[test]
    fn every_env_setting_names_an_existing_key_of_the_defaults() {
        let root: toml::Table = DEFAULT_CONFIG.parse().unwrap();
        for e in ENV_SETTINGS {
            let sec = root[e.section].as_table().unwrap();
            assert!(
                sec.contains_key(e.key) || DEFAULT_CONFIG.contains(&format!("# {} =", e.key)),
                "{} -> {}.{}",
                e.var,
                e.section,
                e.key
            );
            assert!(
                DEFAULT_CONFIG.contains(e.var),
                "{} documented in the defaults",
                e.var
            );
        }
    }
}
