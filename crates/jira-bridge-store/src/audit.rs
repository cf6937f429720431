//! The audit log: who did what to which object, with what outcome.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::{AuditId, Page, PageRequest, Result, Store, StoreError, TenantId, Timestamp};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// Id (`aud_…`).
    pub id: AuditId,
    /// Tenant the action concerned; `None` for operator-wide actions (key rotation).
    pub tenant_id: Option<TenantId>,
    /// Who acted: `key:<key id>`, `admin`, `cli`, `system`.
    pub actor: String,
    /// What was done, dotted: `tenant.create`, `api_key.revoke`, `connection.verify`.
    pub action: String,
    /// Kind of the object acted on (`tenant`, `api_key`, `connection`, `issue`).
    pub target_kind: Option<String>,
    /// Id or key of the object acted on.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// Structured details (never secrets).
    #[sqlx(json)]
    pub detail: serde_json::Value,
    /// Request id of the API call that caused it, if any.
    pub request_id: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Success,
    /// It failed; the detail says why.
    Failure,
}

impl Outcome {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// A new audit entry.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Tenant concerned, if any.
    pub tenant_id: Option<TenantId>,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// Kind of object.
    pub target_kind: Option<String>,
    /// Object id.
    pub target_id: Option<String>,
    /// Outcome.
    pub outcome: Outcome,
    /// Details (must not contain secrets).
    pub detail: serde_json::Value,
    /// Request id, if from an API call.
    pub request_id: Option<String>,
}

/// Filters for [`Store::list_audit`]; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action.
    pub action: Option<String>,
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact target kind.
    pub target_kind: Option<String>,
    /// Exact target id.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// At or after this time.
    pub from: Option<Timestamp>,
    /// Before this time.
    pub to: Option<Timestamp>,
}

const COLUMNS: &str = "id, tenant_id, actor, action, target_kind, target_id, outcome, detail, \
                       request_id, created_at";

impl Store {
    /// Append an entry.
    pub async fn record_audit(&self, entry: NewAuditEntry) -> Result<AuditEntry> {
        let id = AuditId::new();
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, AuditEntry>(&format!(
                "INSERT INTO audit_log (id, tenant_id, actor, action, target_kind, target_id,
                                        outcome, detail, request_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
            ))
            .bind(&id)
            .bind(&entry.tenant_id)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target_kind)
            .bind(&entry.target_id)
            .bind(entry.outcome.as_str())
            .bind(Json(&entry.detail))
            .bind(&entry.request_id)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// One of a tenant's entries.
    pub async fn get_audit(&self, tenant: &TenantId, id: &AuditId) -> Result<Option<AuditEntry>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, AuditEntry>(&format!(
                "SELECT {COLUMNS} FROM audit_log WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's entries matching `filter`, newest first.
    pub async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, AuditEntry>(&format!(
                "SELECT {COLUMNS} FROM audit_log
                 WHERE tenant_id = $1
                   AND ($2 IS NULL OR id < $2)
                   AND ($3 IS NULL OR action = $3)
                   AND ($4 IS NULL OR actor = $4)
                   AND ($5 IS NULL OR target_kind = $5)
                   AND ($6 IS NULL OR target_id = $6)
                   AND ($7 IS NULL OR outcome = $7)
                   AND ($8 IS NULL OR created_at >= $8)
                   AND ($9 IS NULL OR created_at < $9)
                 ORDER BY id DESC LIMIT $10"
            ))
            .bind(tenant)
            .bind(page.after())
            .bind(&filter.action)
            .bind(&filter.actor)
            .bind(&filter.target_kind)
            .bind(&filter.target_id)
            .bind(&filter.outcome)
            .bind(filter.from)
            .bind(filter.to)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |e| e.id.as_str()))
    }
}
