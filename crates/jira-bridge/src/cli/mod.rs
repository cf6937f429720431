//! The command line: one binary, a subcommand per role and admin task.
//!
//! Operator commands (`serve`, `migrate`, `admin …`, `sim`, `demo`, `bench`) work on the local
//! database or start processes; client commands (`connections`, `issues`, `tickets`,
//! …) speak to a running service over HTTP ([`client`]).

pub mod bulk;
pub mod client;
pub mod oauth;
pub mod output;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use jira_bridge_store::audit::Outcome;
use jira_bridge_store::{ApiKeyId, TenantId};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, Actor};
use crate::config::{Config, Loaded, CONFIG_FILE_ENV, DEFAULT_CONFIG};
use crate::{app, crypto, tenancy};

/// jira-bridge: Jira integration as a service.
#[derive(Debug, Parser)]
#[command(name = "jira-bridge", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML); see `jira-bridge default-config`.
    #[arg(long, short = 'c', global = true, env = CONFIG_FILE_ENV, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Service URL for client commands.
    #[arg(
        long,
        global = true,
        env = "JIRA_BRIDGE_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,

    /// Tenant API key for client commands (never printed).
    #[arg(
        long,
        global = true,
        env = "JIRA_BRIDGE_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Why the command line failed, mapped to the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum Exit {
    /// Some items failed (exit 1).
    #[error("{0}")]
    Partial(String),
    /// The command line or an input file was unusable (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The service could not be reached or refused the credentials (exit 3).
    #[error("{0}")]
    Connection(String),
}

/// The process exit code for an error of [`run`]: 1 partial failure or other error,
/// 2 usage, 3 connection or authentication.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Exit>() {
        Some(Exit::Usage(_)) => 2,
        Some(Exit::Connection(_)) => 3,
        Some(Exit::Partial(_)) | None => 1,
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the commented default configuration.
    DefaultConfig,
    /// Print the OpenAPI document (JSON).
    Openapi,
    /// Operator tasks on the database (no running service needed).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run the Jira simulator alone (for trying clients against a fake Jira).
    Sim(jira_sim::SimArgs),
    /// Start a simulated Jira and the service with sample data, fully offline.
    ///
    /// Creates (or on re-runs reuses) a tenant, an API key and a connection to the
    /// simulated site, seeds linked tickets and time entries, and prints the URLs,
    /// the API key and examples. Ctrl-C stops both.
    Demo(crate::demo::DemoArgs),
    /// Benchmark against a simulated Jira with Jira's rate limit and latency.
    ///
    /// Starts the simulator and the service as separate processes on loopback, runs
    /// the workloads W1-W7 through the public API, counts Jira calls at the
    /// simulator and prints one table (`--json FILE` also writes it as JSON).
    Bench(crate::bench::BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Jira connections of the tenant.
    #[command(subcommand)]
    Connections(client::ConnectionsCommand),
    /// Search and read Jira issues through a connection.
    #[command(subcommand)]
    Issues(client::IssuesCommand),
    /// Host objects linked to Jira issues.
    #[command(subcommand)]
    Tickets(client::TicketsCommand),
    /// Create epic -> story hierarchies from a file (`POST /v1/exports`).
    Export(client::ExportArgs),
    /// Time entries synced to Jira worklogs.
    #[command(subcommand)]
    Worklogs(client::WorklogsCommand),
    /// Release epics per platform.
    #[command(subcommand)]
    Releases(client::ReleasesCommand),
    /// Issue keys in text.
    #[command(subcommand)]
    Keys(client::KeysCommand),
    /// Long-running work.
    #[command(subcommand)]
    Jobs(client::JobsCommand),
    /// The tenant's event stream.
    #[command(subcommand)]
    Events(client::EventsCommand),
}

/// `jira-bridge admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant and print its first API key (shown once).
    CreateTenant(CreateTenantArgs),
    /// Create another API key for a tenant (shown once).
    CreateKey(CreateKeyArgs),
    /// Revoke an API key.
    RevokeKey {
        /// Tenant id (`ten_…`).
        tenant_id: String,
        /// Key id (`key_…`).
        key_id: String,
    },
    /// Re-seal every stored secret under a new master key.
    ///
    /// With a key file (generated or JIRA_BRIDGE_MASTER_KEY_FILE), a new key is added
    /// at its head and the old ones are kept for opening. With JIRA_BRIDGE_MASTER_KEY,
    /// set it to the new key and JIRA_BRIDGE_PREVIOUS_MASTER_KEYS to the old one first.
    RotateKey,
}

/// Arguments of `admin create-tenant`.
#[derive(Debug, Args)]
pub struct CreateTenantArgs {
    /// Unique tenant name.
    pub name: String,
    /// Name of the first key.
    #[arg(long, default_value = "default")]
    pub key_name: String,
    /// Scopes of the first key (repeatable): `*` (default), `write`, `read` (read only).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

/// Arguments of `admin create-key`.
#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// Tenant id (`ten_…`).
    pub tenant_id: String,
    /// Key name.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Scopes (repeatable): `*` (default), `write`, `read` (read only).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

pub(crate) fn load(cli: &Cli) -> anyhow::Result<Config> {
    let Loaded { config, warnings } =
        Config::load(cli.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Err(e) = crate::telemetry::init(&config.log) {
        eprintln!("logging could not be set up: {e}");
    }
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// Wait for SIGTERM or ctrl-c, then cancel `token`.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received"),
        _ = term => tracing::info!("SIGTERM received"),
        _ = token.cancelled() => {}
    }
    token.cancel();
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::DefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
            Ok(())
        }
        Command::Serve => {
            let config = load(&cli)?;
            let addr = config.bind_addr().map_err(|e| anyhow::anyhow!("{e}"))?;
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} (server.bind / JIRA_BRIDGE_BIND)")
            })?;
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            app::run(config, listener, shutdown).await
        }
        Command::Migrate => {
            let config = load(&cli)?;
            let store = app::connect_store(&config).await?;
            let pending = store.pending_migrations().await?;
            store.migrate().await.context("applying migrations")?;
            if cli.json {
                println!("{}", serde_json::json!({"applied": pending.len()}));
            } else {
                println!(
                    "applied {} migration(s); the database is up to date",
                    pending.len()
                );
            }
            store.close().await;
            Ok(())
        }
        Command::Admin(cmd) => {
            let config = load(&cli)?;
            let store = app::connect_store(&config).await?;
            store.migrate().await.context("applying migrations")?;
            let result = admin(&config, &store, cmd, cli.json).await;
            store.close().await;
            result
        }
        Command::Sim(args) => {
            let token = CancellationToken::new();
            tokio::spawn(cancel_on_signal(token.clone()));
            jira_sim::run_standalone(args.clone(), token.cancelled_owned())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        Command::Demo(args) => crate::demo::run(&cli, args).await,
        Command::Bench(args) => crate::bench::run(&cli, args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "jira-bridge", &mut std::io::stdout());
            Ok(())
        }
        _ => client::run(&cli).await,
    }
}

async fn admin(
    config: &Config,
    store: &jira_bridge_store::Store,
    cmd: &AdminCommand,
    json: bool,
) -> anyhow::Result<()> {
    let api_err = |e: crate::http::ApiError| anyhow::anyhow!("{}", e.problem().detail);
    match cmd {
        AdminCommand::CreateTenant(a) => {
            let (tenant, key, secret) = tenancy::create_tenant(
                store,
                &Actor::Cli,
                &a.name,
                &a.key_name,
                a.scopes.clone(),
                None,
            )
            .await
            .map_err(api_err)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "tenant": {"id": tenant.id, "name": tenant.name},
                        "api_key": {"id": key.id, "prefix": key.prefix, "key": secret.expose_secret()},
                    })
                );
            } else {
                println!("tenant   {}  {}", tenant.id, tenant.name);
                println!("api key  {}  (shown once; store it now)", key.id);
                println!("{}", secret.expose_secret());
            }
        }
        AdminCommand::CreateKey(a) => {
            let tenant: TenantId = a.tenant_id.parse().context("tenant id")?;
            let (key, secret) =
                tenancy::create_key(store, &Actor::Cli, &tenant, &a.name, a.scopes.clone(), None)
                    .await
                    .map_err(api_err)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": key.id, "prefix": key.prefix, "key": secret.expose_secret()})
                );
            } else {
                println!("api key  {}  (shown once; store it now)", key.id);
                println!("{}", secret.expose_secret());
            }
        }
        AdminCommand::RevokeKey { tenant_id, key_id } => {
            let tenant: TenantId = tenant_id.parse().context("tenant id")?;
            let key: ApiKeyId = key_id.parse().context("key id")?;
            tenancy::revoke_key(store, &Actor::Cli, &tenant, &key, None)
                .await
                .map_err(api_err)?;
            if json {
                println!("{}", serde_json::json!({"revoked": key}));
            } else {
                println!("revoked {key}");
            }
        }
        AdminCommand::RotateKey => {
            let (ring, source) = crypto::load_key_ring(config)?;
            let previous: Vec<&str> = config
                .crypto
                .previous_master_keys
                .iter()
                .map(|k| k.expose_secret())
                .collect();
            let ring = match &source {
                crypto::KeySource::File(path) | crypto::KeySource::Generated(path) => {
                    let new = crypto::add_key_to_file(path, &previous)?;
                    if !json {
                        println!(
                            "added key {} to {} (old keys kept for opening)",
                            new.current_key_id(),
                            path.display()
                        );
                    }
                    new
                }
                crypto::KeySource::Configured => {
                    if !json {
                        println!(
                        "re-sealing under the configured key {} (to rotate, set JIRA_BRIDGE_MASTER_KEY to a new key and JIRA_BRIDGE_PREVIOUS_MASTER_KEYS to the old one)",
                        ring.current_key_id()
                    );
                    }
                    ring
                }
            };
            let outcome = crypto::reseal_all(store, &ring).await;
            let (result, detail) = match &outcome {
                Ok(r) => (
                    Outcome::Success,
                    serde_json::json!({"key_id": ring.current_key_id(), "resealed": r.resealed}),
                ),
                Err(e) => (
                    Outcome::Failure,
                    serde_json::json!({"key_id": ring.current_key_id(), "error": e.to_string()}),
                ),
            };
            audit::record(
                store,
                audit::Event::new(&Actor::Cli, "crypto.rotate_key", result).detail(detail),
            )
            .await;
            let report = outcome?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"key_id": ring.current_key_id(),
                        "resealed": report.resealed, "already_current": report.already_current})
                );
            } else {
                println!(
                    "re-sealed {} secret(s) under key {}; {} were already under it",
                    report.resealed,
                    ring.current_key_id(),
                    report.already_current
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
