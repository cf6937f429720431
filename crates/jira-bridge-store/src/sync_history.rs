//! Sync history: one row per attempt to bring something in line with Jira (a worklog
//! create, update, move, delete, a refused validation, a conflict found), whatever its
//! outcome. Append-only; read newest first, filtered by kind, state, subject and time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::tx::on_tx;
use crate::{ConnectionId, Page, PageRequest, Result, Store, StoreTx, TenantId, Timestamp};

crate::define_id!(
    /// A sync history entry's id (`syh_…`).
    SyncHistoryId,
    "syh",
    "sync history entry"
);

/// One attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct SyncAttempt {
    /// Id (`syh_…`).
    pub id: SyncHistoryId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// What was attempted, e.g. `worklog.create`.
    pub kind: String,
    /// `succeeded`, `failed`, `conflict` or `skipped`.
    pub state: String,
    /// Kind of the subject, e.g. `time_entry`.
    pub subject_kind: String,
    /// The subject's host id (a time entry's `source_id`).
    pub subject_id: String,
    /// Connection used.
    pub connection_id: Option<ConnectionId>,
    /// Issue concerned.
    pub issue_key: Option<String>,
    /// Jira object id (worklog id).
    pub remote_id: Option<String>,
    /// Job the attempt ran in.
    pub job_id: Option<String>,
    /// Stable error code.
    pub error_code: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Anything else (Jira's messages, field errors).
    #[sqlx(json)]
    pub detail: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// An attempt to record.
#[derive(Debug, Clone)]
pub struct NewSyncAttempt {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: String,
    /// Subject kind.
    pub subject_kind: String,
    /// Subject id.
    pub subject_id: String,
    /// Connection.
    pub connection_id: Option<ConnectionId>,
    /// Issue.
    pub issue_key: Option<String>,
    /// Remote id.
    pub remote_id: Option<String>,
    /// Job.
    pub job_id: Option<String>,
    /// Error code.
    pub error_code: Option<String>,
    /// Error.
    pub error: Option<String>,
    /// Detail.
    pub detail: serde_json::Value,
}

/// Filters of [`Store::list_sync_history`].
#[derive(Debug, Clone, Default)]
pub struct SyncHistoryFilter {
    /// Kind (exact) or kind prefix ending in `.` (e.g. `worklog.`).
    pub kind: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Subject kind and id.
    pub subject: Option<(String, String)>,
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
}

const COLUMNS: &str = "id, tenant_id, kind, state, subject_kind, subject_id, connection_id, \
    issue_key, remote_id, job_id, error_code, error, detail, at";

impl StoreTx {
    /// Record an attempt inside a transaction.
    pub async fn record_sync_attempt(&mut self, a: &NewSyncAttempt) -> Result<SyncHistoryId> {
        let id = SyncHistoryId::new();
        let now = Timestamp::now();
        on_tx!(self, conn => {
            sqlx::query(&format!(
                "INSERT INTO sync_history ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(&id)
            .bind(&a.tenant_id)
            .bind(&a.kind)
            .bind(&a.state)
            .bind(&a.subject_kind)
            .bind(&a.subject_id)
            .bind(a.connection_id.as_ref())
            .bind(a.issue_key.as_deref())
            .bind(a.remote_id.as_deref())
            .bind(a.job_id.as_deref())
            .bind(a.error_code.as_deref())
            .bind(a.error.as_deref())
            .bind(Json(&a.detail))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(id)
    }
}

impl Store {
    /// Record an attempt.
    pub async fn record_sync_attempt(&self, a: &NewSyncAttempt) -> Result<SyncHistoryId> {
        let mut tx = self.begin().await?;
        let id = tx.record_sync_attempt(a).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A tenant's attempts, newest first.
    pub async fn list_sync_history(
        &self,
        tenant: &TenantId,
        filter: &SyncHistoryFilter,
        page: &PageRequest,
    ) -> Result<Page<SyncAttempt>> {
        let (kind_exact, kind_prefix) = match filter.kind.as_deref() {
            Some(k) if k.ends_with('.') => (None, Some(format!("{k}%"))),
            Some(k) => (Some(k.to_owned()), None),
            None => (None, None),
        };
        let (subject_kind, subject_id) = match &filter.subject {
            Some((k, i)) => (Some(k.as_str()), Some(i.as_str())),
            None => (None, None),
        };
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, SyncAttempt>(&format!(
                "SELECT {COLUMNS} FROM sync_history
                 WHERE tenant_id = $1 AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR kind LIKE $3)
                   AND ($4 IS NULL OR state = $4) AND ($5 IS NULL OR subject_kind = $5)
                   AND ($6 IS NULL OR subject_id = $6) AND ($7 IS NULL OR at >= $7)
                   AND ($8 IS NULL OR at < $8) AND ($9 IS NULL OR id < $9)
                 ORDER BY id DESC LIMIT $10"
            ))
            .bind(tenant)
            .bind(kind_exact.as_deref())
            .bind(kind_prefix.as_deref())
            .bind(filter.state.as_deref())
            .bind(subject_kind)
            .bind(subject_id)
            .bind(filter.from)
            .bind(filter.to)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |a| a.id.as_str()))
    }
}
