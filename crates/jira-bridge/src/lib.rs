//! jira-bridge service
