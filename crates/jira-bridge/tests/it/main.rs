//! Integration tests: the real service on a random port, spoken to over HTTP.
//! Each test has its own database: a temp SQLite file, or a fresh PostgreSQL schema
//! when `JIRA_BRIDGE_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod api_fuzz;
mod audit;
mod auth;
mod authz;
mod binary;
mod code_links;
mod connections;
mod console;
mod errors;
mod events;
mod exports;
mod idempotency;
mod jobs;
mod jobs_api;
mod keys;
mod oauth;
mod operations;
mod search;
mod secret_scan;
mod secrets;
mod sync;
mod tickets;
mod tickets_api;
mod tickets_crash;
mod webhooks_in;
mod worklogs;
mod worklogs_kill;
