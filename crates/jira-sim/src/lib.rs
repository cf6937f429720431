//! jira-sim: a faithful Jira simulator for tests, the demo and benchmarks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jira_sim::SimError> {
//! let sim = jira_sim::spawn(jira_sim::SimConfig::default()).await?;
//! println!("Jira at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See the crate README for routes, the control API and the scenario contents.

// Handlers return ready Jira error responses as their `Err` side.
#![allow(clippy::result_large_err)]

pub mod adf;
pub mod conformance;
mod control;
mod ext;
pub mod jql;
pub mod model;
pub mod oauth;
pub mod pacing;
mod record;
mod rest;
pub mod scenario;
mod server;
mod util;
pub mod webhooks;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

pub use model::Flavor;
pub use pacing::{FaultRule, Faults, Pacing};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: Flavor,
    /// `demo` or `empty`.
    pub scenario: String,
    /// Seeds ids, scenario content and every random fault decision.
    pub seed: u64,
    /// 0 picks a free port. The simulator binds 127.0.0.1 only.
    pub port: u16,
    /// Append one JSON line per REST exchange to this file.
    pub record: Option<PathBuf>,
    pub pacing: Pacing,
    pub faults: Faults,
    /// Extra redirect URIs registered for the simulator's OAuth app (exact match).
    pub oauth_redirect_uris: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            flavor: Flavor::Cloud,
            scenario: "demo".into(),
            seed: 42,
            port: 0,
            record: None,
            pacing: Pacing::default(),
            faults: Faults::default(),
            oauth_redirect_uris: Vec::new(),
        }
    }
}

impl SimConfig {
    pub fn cloud() -> Self {
        Self::default()
    }

    pub fn data_center() -> Self {
        SimConfig {
            flavor: Flavor::DataCenter,
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown scenario '{0}' (known: demo, empty)")]
    UnknownScenario(String),
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the record file {path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Shared state of one running simulator.
pub(crate) struct Sim {
    pub cfg: SimConfig,
    pub base_url: String,
    pub world: Mutex<model::World>,
    pub pacing: pacing::PacingState,
    pub recorder: Option<record::Recorder>,
    pub ext: ext::Ext,
}

impl Sim {
    /// Base URL of a site as seen through a given route prefix.
    pub fn site_url(&self, world: &model::World, site: usize) -> String {
        if world.flavor == Flavor::DataCenter || site == 0 {
            self.base_url.clone()
        } else {
            let slug = world.sites.get(site).map(|s| s.slug.as_str()).unwrap_or("");
            format!("{}/site/{}", self.base_url, slug)
        }
    }

    pub fn reset(&self) {
        let fresh = scenario::build(
            &self.cfg.scenario,
            self.cfg.flavor,
            self.cfg.seed,
            Utc::now(),
        );
        if let Some(w) = fresh {
            *self.world.lock() = w;
        }
        self.pacing.reset(&self.cfg);
        self.ext.reset();
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    base_url: String,
    sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url()` joined with a path such as `/rest/api/3/myself`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn flavor(&self) -> Flavor {
        self.sim.cfg.flavor
    }

    /// The same document as `GET /_sim/scenario`.
    pub fn scenario(&self) -> Value {
        control::scenario_json(&self.sim)
    }

    /// The same document as `GET /_sim/stats`.
    pub fn stats(&self) -> Value {
        control::stats_json(&self.sim)
    }

    /// Same as `PUT /_sim/pacing`.
    pub fn set_pacing(&self, pacing: Pacing) {
        self.sim.pacing.set_pacing(pacing);
    }

    /// Same as `PUT /_sim/faults`.
    pub fn set_faults(&self, faults: Faults) {
        self.sim.pacing.set_faults(faults);
    }

    /// Same as `POST /_sim/reset`.
    pub fn reset(&self) {
        self.sim.reset();
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts a simulator on 127.0.0.1.
pub async fn spawn(cfg: SimConfig) -> Result<SimHandle, SimError> {
    let world = scenario::build(&cfg.scenario, cfg.flavor, cfg.seed, Utc::now())
        .ok_or_else(|| SimError::UnknownScenario(cfg.scenario.clone()))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port))
        .await
        .map_err(|source| SimError::Bind {
            port: cfg.port,
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| SimError::Bind {
            port: cfg.port,
            source,
        })?
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    let recorder = match &cfg.record {
        Some(p) => Some(
            record::Recorder::open(p).map_err(|source| SimError::Record {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let ext = ext::Ext::new(&cfg, &world, &base_url);
    let sim = Arc::new(Sim {
        pacing: pacing::PacingState::new(&cfg),
        cfg,
        base_url: base_url.clone(),
        world: Mutex::new(world),
        recorder,
        ext,
    });
    let (stop, stop_rx) = watch::channel(false);
    let app = server::app(sim.clone());
    let task = tokio::spawn(server::serve(listener, app, sim.clone(), stop_rx));
    Ok(SimHandle {
        base_url,
        sim,
        stop,
        task: Some(task),
    })
}

/// Command-line arguments of `jira-bridge sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Scenario: demo or empty.
    #[arg(long, default_value = "demo")]
    pub scenario: String,
    /// cloud or dc.
    #[arg(long, default_value = "cloud", value_parser = ["cloud", "dc"])]
    pub flavor: String,
    /// Seed for ids, content and fault decisions.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Append every REST exchange as a JSON line to this file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Token-bucket rate in requests per second per site (off when absent).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Token-bucket burst size (defaults to the rate).
    #[arg(long)]
    pub burst: Option<f64>,
    /// Added latency per request in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra OAuth redirect URI to register (repeatable).
    #[arg(long = "oauth-redirect-uri")]
    pub oauth_redirect_uris: Vec<String>,
}

impl SimArgs {
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            flavor: if self.flavor == "dc" {
                Flavor::DataCenter
            } else {
                Flavor::Cloud
            },
            scenario: self.scenario.clone(),
            seed: self.seed,
            port: self.port,
            record: self.record.clone(),
            pacing: Pacing {
                rate: self.rate,
                burst: self.burst,
                latency_ms: self.latency_ms,
                ..Pacing::default()
            },
            faults: Faults::default(),
            oauth_redirect_uris: self.oauth_redirect_uris.clone(),
        }
    }
}

/// Runs a simulator until `shutdown` completes, printing the scenario summary first.
pub async fn run_standalone(
    args: SimArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let handle = spawn(args.to_config()).await?;
    println!("{}", control::summary_text(&handle.sim));
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}
