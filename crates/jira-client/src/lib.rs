//! Typed, rate-aware async client for Jira Cloud (REST v3) and Jira Data Center (REST v2).
//!
//! Pure helpers (no I/O): [`adf`] (Atlassian Document Format <-> Markdown, wiki markup),
//! [`keys`] (issue-key extraction), [`jql`] (a JQL builder that quotes safely).

pub mod adf;
pub mod jql;
pub mod keys;
pub mod text_limits;
