//! jira-bridge-store
