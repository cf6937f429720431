//! Atlassian Document Format conversion.
