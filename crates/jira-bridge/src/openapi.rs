//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! Served at `/v1/openapi.json` and committed at `crates/jira-bridge/openapi.json`;
//! a test fails when the two differ. Regenerate the committed copy with
//! `cargo run -p jira-bridge -- openapi > crates/jira-bridge/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jira-bridge",
        description = "Jira integration as a service: connections, tickets, worklogs, status sync, search. Errors are RFC 9457 problem documents (`application/problem+json`). Every POST honours an `Idempotency-Key` header (kept 24 hours; a replay carries `Idempotency-Replayed: true`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "admin", description = "Operator endpoints (admin key)"),
        (name = "tenancy", description = "The calling tenant"),
        (name = "audit", description = "Who did what, when, with what outcome"),
        (name = "connections", description = "Jira connections (API tokens, PATs, OAuth 3LO) and Jira metadata through them"),
        (name = "jobs", description = "Long-running work: state, items, progress, retry, cancel"),
        (name = "events", description = "Outbound webhooks (Standard Webhooks) and the event stream"),
        (name = "worklogs", description = "Time entries synced to Jira worklogs, and the sync history"),
        (name = "configs", description = "Reusable ticket targets (project, issue type, priority, labels, completed status)"),
        (name = "tickets", description = "Host objects linked to Jira issues: create once, bulk, status, transitions, sync"),
        (name = "exports", description = "Epic -> story hierarchies: preview, create in bulk with the right parent link, re-export, rollback"),
        (name = "releases", description = "One release epic per platform target of a config, and whether each is done"),
        (name = "search", description = "Finding issues: text or JQL search, autosuggest, the connection user's open issues, issue details"),
        (name = "keys", description = "Issue keys in text, code links (pull requests, commits) and their backfill"),
        (name = "webhooks", description = "Jira's webhooks in: delivery endpoint, per-connection set-up, registration and health"),
    ),
    components(schemas(crate::http::Problem))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A tenant's API key (`jbk_…`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's admin key (JIRA_BRIDGE_ADMIN_KEY)"))
                    .build(),
            ),
        );
    }
}

/// The base document the routers add their paths to.
pub fn base() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The complete document.
pub fn document() -> Document {
    crate::http::api_routes().split_for_parts().1
}

/// The complete document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn committed_openapi_document_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = super::document_json();
        assert!(
            committed == generated,
            "{} is out of date; regenerate it with\n  cargo run -p jira-bridge -- openapi > crates/jira-bridge/openapi.json",
            path.display()
        );
    }

    /// Every `$ref` of the document resolves (a schema used only in query parameters
    /// is not collected into `components` by itself).
    #[test]
    fn every_reference_resolves() {
        fn walk(v: &serde_json::Value, doc: &serde_json::Value, bad: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        let target = r.strip_prefix('#').and_then(|ptr| doc.pointer(ptr));
                        if target.is_none() {
                            bad.push(r.to_owned());
                        }
                    }
                    m.values().for_each(|x| walk(x, doc, bad));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, doc, bad)),
                _ => {}
            }
        }
        let doc: serde_json::Value = serde_json::from_str(&super::document_json()).unwrap();
        let mut bad = Vec::new();
        walk(&doc, &doc, &mut bad);
        assert!(bad.is_empty(), "unresolvable references: {bad:?}");
    }

    #[test]
    fn document_is_openapi_3_1_with_the_admin_paths() {
        let doc: serde_json::Value = serde_json::from_str(&super::document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for p in [
            "/v1/admin/tenants",
            "/v1/admin/tenants/{id}/keys",
            "/v1/admin/tenants/{id}/keys/{key_id}",
            "/v1/audit",
            "/healthz",
        ] {
            assert!(doc["paths"][p].is_object(), "missing {p}");
        }
    }
}
