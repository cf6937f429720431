//! Scale-out and faults: real `jira-bridge serve` processes (the built binary) against
//! jira-sim and a database, spoken to over HTTP.
//!
//! - `scale_out`: three replicas on one PostgreSQL schema, one killed mid-way
//!   (PostgreSQL only: skipped with a message when `JIRA_BRIDGE_TEST_POSTGRES_URL`
//!   is unset).
//! - `soak`: workloads under injected 5xx, resets, slow answers and 429 storms.
//! - `outage`: the database stopped and started under a running service (a private
//!   PostgreSQL instance started for the test).
//!
//! `JIRA_BRIDGE_SCALE=long` (or `-- --ignored`) runs the longer variants; see
//! `docs/scale-out.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod outage;
mod scale_out;
mod soak;
