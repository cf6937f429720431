//! jira-client
