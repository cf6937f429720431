//! jira-sim: a faithful Jira simulator for tests, the demo and benchmarks.

pub mod conformance;
pub mod oauth;
pub mod webhooks;
