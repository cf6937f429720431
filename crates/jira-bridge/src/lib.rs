//! jira-bridge: the service and its command line.
//!
//! Module map (see `ARCHITECTURE.md`):
//! - [`bench`](mod@bench): `jira-bridge bench`, the benchmark workloads of `BENCHMARKS.md`.
//! - [`demo`]: `jira-bridge demo`, a simulated Jira and the service with sample data.
//! - [`config`]: layered settings and validation.
//! - [`crypto`]: the secret box (AES-256-GCM, key ring, rotation).
//! - [`tenancy`]: tenants, API keys, authentication extractors, admin API.
//! - [`connections`]: Jira connections (API tokens, PATs, OAuth 3LO), the client
//!   factory every Jira-facing module uses, token refresh, metadata.
//! - [`audit`]: recording actions; `GET /v1/audit`.
//! - [`events`]: the event outbox, outbound webhooks, `GET /v1/events`.
//! - [`net_guard`]: SSRF checks for user-supplied URLs.
//! - [`http`]: router, middleware, problem+json errors, extractors, metrics.
//! - [`jobs`]: the durable job engine; `/v1/jobs`.
//! - [`search`]: issue search, picker, assigned issues, issue details.
//! - [`keys`]: issue keys in text (`/v1/keys/extract`).
//! - [`code_links`]: code links and their backfill job.
//! - [`openapi`]: the generated OpenAPI 3.1 document.
//! - [`app`]: building and running the service ([`app::run`]).
//! - [`cli`]: the `jira-bridge` command line.

pub mod app;
pub mod audit;
pub mod bench;
pub mod cli;
pub mod code_links;
pub mod config;
pub mod configs;
pub mod connections;
pub mod crypto;
pub mod demo;
pub mod events;
pub mod exports;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod net_guard;
pub mod openapi;
pub mod releases;
pub mod search;
pub mod sync;
pub mod telemetry;
pub mod tenancy;
pub mod tickets;
pub mod webhooks_in;
pub mod worklogs;

pub use app::{run, App};
pub use config::Config;
