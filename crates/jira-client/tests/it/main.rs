//! Integration tests of jira-client against jira-sim (spawned in-process on 127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod errors;
mod faults;
mod issues;
mod logs;
mod metadata;
mod oauth;
mod pacing;
mod redirects;
mod search;
mod transitions;
mod worklogs;
