//! The audit log's domain API: modules record who did what to which object with what
//! outcome. Recording never fails the action it describes: a failure to write the
//! entry is logged.

pub mod api;

use jira_bridge_store::audit::{NewAuditEntry, Outcome};
use jira_bridge_store::{ApiKeyId, Store, TenantId};

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A tenant's API key.
    ApiKey(ApiKeyId),
    /// The operator through the admin API.
    Admin,
    /// The operator through the command line.
    Cli,
    /// The service itself (jobs, schedulers).
    System,
}

impl Actor {
    /// Stored form: `key:<id>`, `admin`, `cli`, `system`.
    pub fn as_string(&self) -> String {
        match self {
            Self::ApiKey(id) => format!("key:{id}"),
            Self::Admin => "admin".into(),
            Self::Cli => "cli".into(),
            Self::System => "system".into(),
        }
    }
}

/// An audit entry being built.
#[derive(Debug, Clone)]
pub struct Event(NewAuditEntry);

impl Event {
    /// `action` is dotted, `noun.verb`: `connection.verify`.
    pub fn new(actor: &Actor, action: &str, outcome: Outcome) -> Self {
        Self(NewAuditEntry {
            tenant_id: None,
            actor: actor.as_string(),
            action: action.to_owned(),
            target_kind: None,
            target_id: None,
            outcome,
            detail: serde_json::Value::Object(serde_json::Map::new()),
            request_id: None,
        })
    }

    /// The tenant concerned.
    pub fn tenant(mut self, tenant: &TenantId) -> Self {
        self.0.tenant_id = Some(tenant.clone());
        self
    }

    /// The object acted on.
    pub fn target(mut self, kind: &str, id: &str) -> Self {
        self.0.target_kind = Some(kind.to_owned());
        self.0.target_id = Some(id.to_owned());
        self
    }

    /// Structured details. Never put secrets here.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.0.detail = detail;
        self
    }

    /// The request that caused it.
    pub fn request_id(mut self, request_id: Option<String>) -> Self {
        self.0.request_id = request_id;
        self
    }
}

/// Append an entry; a failure is logged, not returned.
pub async fn record(store: &Store, event: Event) {
    let action = event.0.action.clone();
    if let Err(e) = store.record_audit(event.0).await {
        tracing::error!(error = ?e, action = %action, "could not write audit entry");
    }
}
