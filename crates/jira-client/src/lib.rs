//! Typed, rate-aware async client for Jira Cloud (REST v3) and Jira Data Center (REST v2).
//!
//! - [`JiraClient`] built from a [`SiteConfig`] (base URL, [`Flavor`], [`Auth`]): Basic
//!   email + API token, Data Center PAT, or OAuth 2.0 (3LO) through a caller-owned
//!   [`TokenSource`].
//! - Every request goes through the site's [`pacer::Pacer`] (adaptive token bucket,
//!   concurrency cap, counters) and is retried with jittered back-off when that is safe;
//!   creates are never repeated after they may have reached Jira
//!   ([`Error::OutcomeUnknown`]).
//! - Lists are `futures::Stream`s ([`paging`]).
//!
//! Pure helpers (no I/O): [`adf`] (Atlassian Document Format <-> Markdown, wiki markup),
//! [`keys`] (issue-key extraction), [`jql`] (a JQL builder that quotes safely).

pub mod adf;
pub mod jql;
pub mod keys;
pub mod text_limits;
pub mod timing;

mod client;
pub mod config;
pub mod error;
pub mod issues;
pub mod meta;
pub mod models;
pub mod oauth;
pub mod pacer;
pub mod paging;
pub mod search;
pub mod transitions;
pub mod users;
pub mod webhooks;
pub mod worklogs;

pub use client::{transport, transport_with_resolver, ClientBuilder, JiraClient};
pub use config::{
    Auth, ClientOptions, Deployment, Flavor, SiteConfig, StaticToken, TokenError, TokenSource,
};
pub use error::{Error, ErrorCollection, RequestCtx, Result};
pub use issues::{GetIssue, BULK_CREATE_CHUNK};
pub use meta::ProjectQuery;
pub use models::*;
pub use pacer::{Pacer, PacerConfig, PacerRegistry, PacerStats, RetryConfig, RetryReason};
pub use search::BULK_FETCH_CHUNK;
pub use transitions::{Category, Target, TransitionOutcome};
pub use users::{AssignableScope, PermissionScope, UserPermission};
pub use webhooks::WebhookRegistration;
pub use worklogs::{format_jira_datetime, parse_jira_datetime};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
