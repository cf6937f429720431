//! Links: the ledger between a host object (tenant, source kind, source id, purpose)
//! and the Jira issue made for it, plus the per-connection status-sync watermark.
//!
//! A link is reserved **before** Jira is called ([`Store::reserve_link`], state
//! `pending`), so that a second request for the same source and purpose finds it and
//! never creates a second issue. Once Jira answered, [`Store::complete_link`] records
//! the issue (`created`); a definite refusal records [`Store::fail_link`] (`failed`,
//! nothing exists in Jira, a later request may try again). A link left `pending` is an
//! uncertain outcome: the caller reconciles (looks for the issue carrying the link's
//! idempotency key) before creating again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::tx::on_tx;
use crate::{
    ConnectionId, Page, PageRequest, Result, Store, StoreError, StoreTx, TenantId, Timestamp,
};

crate::define_id!(
    /// A ticket: one link between a host object and a Jira issue (`tkt_…`).
    TicketId, "tkt", "ticket"
);

/// A link row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Link {
    /// Id (`tkt_…`).
    pub id: TicketId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The connection the issue lives behind.
    pub connection_id: ConnectionId,
    /// Kind of host object (`violation`, `release`, `story`, …).
    pub source_kind: String,
    /// The host object's id.
    pub source_id: String,
    /// Why the issue exists (`""` when not given).
    pub purpose: String,
    /// Key written to the issue as an entity property at creation.
    pub idempotency_key: String,
    /// `pending`, `created` or `failed`.
    pub state: String,
    /// Project the issue is (to be) created in.
    pub project_key: String,
    /// Jira issue id.
    pub issue_id: Option<String>,
    /// Jira issue key.
    pub issue_key: Option<String>,
    /// Browse URL of the issue.
    pub url: Option<String>,
    /// Status name.
    pub status: Option<String>,
    /// Status category key (`new`, `indeterminate`, `done`).
    pub status_category: Option<String>,
    /// Jira's `updated` of the issue when its status was last read.
    pub remote_updated_at: Option<DateTime<Utc>>,
    /// When the status was last read from Jira.
    pub synced_at: Option<DateTime<Utc>>,
    /// Config the ticket was made from, if any.
    pub config_id: Option<String>,
    /// Config target name, if any.
    pub target: Option<String>,
    /// Bulk job that created it, if any.
    pub job_id: Option<String>,
    /// Why creation failed (state `failed`).
    #[sqlx(json(nullable))]
    pub last_error: Option<Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The issue's summary as Jira last reported it.
    pub summary: Option<String>,
    /// When Jira reported the issue deleted (the link is kept, marked).
    pub issue_deleted_at: Option<DateTime<Utc>>,
}

/// A link to reserve.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLink {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Source kind.
    pub source_kind: String,
    /// Source id.
    pub source_id: String,
    /// Purpose (`""` when none).
    pub purpose: String,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Project.
    pub project_key: String,
    /// Config, if any.
    pub config_id: Option<String>,
    /// Config target, if any.
    pub target: Option<String>,
    /// Creating job, if any.
    pub job_id: Option<String>,
}

/// The issue a link points at.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedIssue {
    /// Issue id.
    pub issue_id: String,
    /// Issue key.
    pub issue_key: String,
    /// Browse URL.
    pub url: String,
    /// Status name, if known.
    pub status: Option<String>,
    /// Status category key, if known.
    pub status_category: Option<String>,
    /// Jira's `updated`, if known.
    pub remote_updated_at: Option<Timestamp>,
    /// Summary, if known.
    pub summary: Option<String>,
}

/// Filters of [`Store::list_links`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkFilter {
    /// Only this source kind.
    pub source_kind: Option<String>,
    /// Only this source id.
    pub source_id: Option<String>,
    /// Only this status category key.
    pub status_category: Option<String>,
    /// Only this project.
    pub project_key: Option<String>,
    /// Only this connection.
    pub connection_id: Option<ConnectionId>,
}

/// Status-sync bookkeeping of one connection.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SyncState {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Issues updated at or after `watermark - overlap` are read by the next run.
    pub watermark: Option<DateTime<Utc>>,
    /// Last run.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Search calls of the last run.
    pub last_searches: i64,
    /// Links changed by the last run.
    pub last_changed: i64,
}

const COLUMNS: &str = "id, tenant_id, connection_id, source_kind, source_id, purpose, \
    idempotency_key, state, project_key, issue_id, issue_key, url, status, status_category, \
    remote_updated_at, synced_at, config_id, target, job_id, last_error, created_at, updated_at, \
    summary, issue_deleted_at";

/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

impl Store {
    /// Reserve the link of a source and purpose: insert it as `pending`, or answer the
    /// existing one. `(link, true)` when this call inserted it.
    pub async fn reserve_link(&self, new: &NewLink) -> Result<(Link, bool)> {
        let mut tx = self.begin().await?;
        let r = tx.reserve_link(new).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Record the issue of a link (state `created`). Answers the updated link.
    pub async fn complete_link(
        &self,
        tenant: &TenantId,
        id: &TicketId,
        issue: &LinkedIssue,
    ) -> Result<Link> {
        let mut tx = self.begin().await?;
        let link = tx.complete_link(tenant, id, issue).await?;
        tx.commit().await?;
        Ok(link)
    }

    /// Record a definite refusal (state `failed`) of a link that has no issue yet.
    /// A link that already has its issue is left alone; answers the link either way.
    pub async fn fail_link(&self, tenant: &TenantId, id: &TicketId, error: &Value) -> Result<Link> {
        let mut tx = self.begin().await?;
        let link = tx.fail_link(tenant, id, error).await?;
        tx.commit().await?;
        Ok(link)
    }

    /// Make a `failed` link `pending` again (a new request for the same source), with
    /// the new request's project, config and job. Answers the link.
    pub async fn rearm_link(
        &self,
        tenant: &TenantId,
        id: &TicketId,
        new: &NewLink,
    ) -> Result<Link> {
        let mut tx = self.begin().await?;
        let link = tx.rearm_link(tenant, id, new).await?;
        tx.commit().await?;
        Ok(link)
    }

    /// Claim the creation of a link's issue for `owner` until `until`: only one
    /// creator at a time (a second request or replica waits instead of creating a
    /// duplicate). Succeeds when the link is not created yet and unclaimed, its claim
    /// expired, or `owner` holds it already.
    pub async fn claim_link(
        &self,
        tenant: &TenantId,
        id: &TicketId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let claimed = tx.claim_link(tenant, id, owner, until, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Give up a claim taken with [`Store::claim_link`].
    pub async fn release_link(&self, tenant: &TenantId, id: &TicketId, owner: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.release_link(tenant, id, owner).await?;
        tx.commit().await
    }

    /// Forget a link (its issue was deleted in Jira, e.g. by an export rollback): a
    /// later request for the same source creates a new issue. `false` when not found.
    pub async fn delete_link(&self, tenant: &TenantId, id: &TicketId) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM links WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(pool)
                .await
                .map_err(StoreError::from_sqlx)?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// A tenant's link.
    pub async fn get_link(&self, tenant: &TenantId, id: &TicketId) -> Result<Option<Link>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// The link of a source and purpose.
    pub async fn find_link_by_source(
        &self,
        tenant: &TenantId,
        source_kind: &str,
        source_id: &str,
        purpose: &str,
    ) -> Result<Option<Link>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links
                 WHERE tenant_id = $1 AND source_kind = $2 AND source_id = $3 AND purpose = $4"
            ))
            .bind(tenant)
            .bind(source_kind)
            .bind(source_id)
            .bind(purpose)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's links, newest first.
    pub async fn list_links(
        &self,
        tenant: &TenantId,
        filter: &LinkFilter,
        page: &PageRequest,
    ) -> Result<Page<Link>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links
                 WHERE tenant_id = $1
                   AND ($2 IS NULL OR source_kind = $2)
                   AND ($3 IS NULL OR source_id = $3)
                   AND ($4 IS NULL OR status_category = $4)
                   AND ($5 IS NULL OR project_key = $5)
                   AND ($6 IS NULL OR connection_id = $6)
                   AND ($7 IS NULL OR id < $7)
                 ORDER BY id DESC LIMIT $8"
            ))
            .bind(tenant)
            .bind(&filter.source_kind)
            .bind(&filter.source_id)
            .bind(&filter.status_category)
            .bind(&filter.project_key)
            .bind(&filter.connection_id)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |l| l.id.as_str()))
    }

    /// Created links of a connection among these Jira issue ids.
    pub async fn links_by_issue_ids(
        &self,
        connection: &ConnectionId,
        issue_ids: &[String],
    ) -> Result<Vec<Link>> {
        let mut out = Vec::new();
        for chunk in issue_ids.chunks(IN_CHUNK) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {COLUMNS} FROM links
                 WHERE connection_id = $1 AND state = 'created' AND issue_id IN ({})",
                placeholders.join(", ")
            );
            let rows = on_pool!(self, pool => {
                let mut q = sqlx::query_as::<_, Link>(&sql).bind(connection);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await.map_err(StoreError::from_sqlx)?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Number of created links of a connection.
    pub async fn count_created_links(&self, connection: &ConnectionId) -> Result<i64> {
        on_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM links WHERE connection_id = $1 AND state = 'created'",
            )
            .bind(connection)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Projects of a connection's created links, sorted.
    pub async fn linked_projects(&self, connection: &ConnectionId) -> Result<Vec<String>> {
        on_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "SELECT DISTINCT project_key FROM links WHERE connection_id = $1 AND state = 'created'
                 ORDER BY project_key",
            )
            .bind(connection)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Creation time of a connection's oldest created link.
    pub async fn oldest_link_created_at(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<DateTime<Utc>>> {
        let first = on_pool!(self, pool => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links WHERE connection_id = $1 AND state = 'created'
                 ORDER BY id ASC LIMIT 1"
            ))
            .bind(connection)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)?
        });
        Ok(first.map(|l| l.created_at))
    }

    /// `(tenant, connection)` of every connection with created links (scheduled sync).
    pub async fn connections_with_links(&self) -> Result<Vec<(TenantId, ConnectionId)>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, (TenantId, ConnectionId)>(
                "SELECT DISTINCT tenant_id, connection_id FROM links WHERE state = 'created'
                 ORDER BY connection_id",
            )
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// The status-sync state of a connection.
    pub async fn get_sync_state(&self, connection: &ConnectionId) -> Result<Option<SyncState>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, SyncState>(
                "SELECT connection_id, tenant_id, watermark, last_run_at, last_searches, last_changed
                 FROM ticket_sync_state WHERE connection_id = $1",
            )
            .bind(connection)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Record a finished sync run of a connection.
    pub async fn put_sync_state(&self, state: &SyncState) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO ticket_sync_state (connection_id, tenant_id, watermark, last_run_at,
                     last_searches, last_changed)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (connection_id) DO UPDATE SET watermark = $3, last_run_at = $4,
                     last_searches = $5, last_changed = $6",
            )
            .bind(&state.connection_id)
            .bind(&state.tenant_id)
            .bind(state.watermark.map(Timestamp::from))
            .bind(state.last_run_at.map(Timestamp::from))
            .bind(state.last_searches)
            .bind(state.last_changed)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }
}

/// What [`StoreTx::write_link_status`] found and did.
#[derive(Debug, Clone)]
pub enum StatusWrite {
    /// No such link.
    NotFound,
    /// The report is older than the stored one (Jira's `updated`): nothing was
    /// written. The link as stored.
    Older(Link),
    /// Status, read time and Jira's `updated` were written. The link as it was
    /// before; `changed` when the status name or category differ from it.
    Written {
        /// The row before the write.
        before: Link,
        /// The status name or category changed.
        changed: bool,
    },
}

impl StoreTx {
    /// [`Store::reserve_link`] inside this transaction (a batch reserves all its
    /// links in one).
    pub async fn reserve_link(&mut self, new: &NewLink) -> Result<(Link, bool)> {
        let now = Timestamp::now();
        let id = TicketId::new();
        let inserted = on_tx!(self, conn => {
            sqlx::query(
                "INSERT INTO links (id, tenant_id, connection_id, source_kind, source_id, purpose,
                     idempotency_key, state, project_key, config_id, target, job_id, created_at,
                     updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $12, $12)
                 ON CONFLICT (tenant_id, source_kind, source_id, purpose) DO NOTHING",
            )
            .bind(&id)
            .bind(&new.tenant_id)
            .bind(&new.connection_id)
            .bind(&new.source_kind)
            .bind(&new.source_id)
            .bind(&new.purpose)
            .bind(&new.idempotency_key)
            .bind(&new.project_key)
            .bind(&new.config_id)
            .bind(&new.target)
            .bind(&new.job_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        let link = on_tx!(self, conn => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links
                 WHERE tenant_id = $1 AND source_kind = $2 AND source_id = $3 AND purpose = $4"
            ))
            .bind(&new.tenant_id)
            .bind(&new.source_kind)
            .bind(&new.source_id)
            .bind(&new.purpose)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
        })
        .ok_or(StoreError::NotFound)?;
        Ok((link, inserted == 1))
    }

    /// [`Store::complete_link`] inside this transaction.
    pub async fn complete_link(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        issue: &LinkedIssue,
    ) -> Result<Link> {
        let now = Timestamp::now();
        on_tx!(self, conn => {
            sqlx::query_as::<_, Link>(&format!(
                "UPDATE links SET state = 'created', issue_id = $3, issue_key = $4, url = $5,
                     status = COALESCE($6, status), status_category = COALESCE($7, status_category),
                     remote_updated_at = COALESCE($8, remote_updated_at), synced_at = $9,
                     last_error = NULL, updated_at = $9, summary = COALESCE($10, summary)
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&issue.issue_id)
            .bind(&issue.issue_key)
            .bind(&issue.url)
            .bind(&issue.status)
            .bind(&issue.status_category)
            .bind(issue.remote_updated_at)
            .bind(now)
            .bind(&issue.summary)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .ok_or(StoreError::NotFound)
        })
    }

    /// [`Store::fail_link`] inside this transaction.
    pub async fn fail_link(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        error: &Value,
    ) -> Result<Link> {
        let now = Timestamp::now();
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET state = 'failed', last_error = $3, updated_at = $4
                 WHERE tenant_id = $1 AND id = $2 AND state <> 'created'",
            )
            .bind(tenant)
            .bind(id)
            .bind(Json(error))
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        self.link(tenant, id).await?.ok_or(StoreError::NotFound)
    }

    /// [`Store::rearm_link`] inside this transaction.
    pub async fn rearm_link(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        new: &NewLink,
    ) -> Result<Link> {
        let now = Timestamp::now();
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET state = 'pending', project_key = $3, config_id = $4, target = $5,
                     job_id = $6, connection_id = $7, last_error = NULL, updated_at = $8
                 WHERE tenant_id = $1 AND id = $2 AND state = 'failed'",
            )
            .bind(tenant)
            .bind(id)
            .bind(&new.project_key)
            .bind(&new.config_id)
            .bind(&new.target)
            .bind(&new.job_id)
            .bind(&new.connection_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        self.link(tenant, id).await?.ok_or(StoreError::NotFound)
    }

    /// [`Store::claim_link`] inside this transaction.
    pub async fn claim_link(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let n = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET claimed_by = $3, claimed_until = $4
                 WHERE tenant_id = $1 AND id = $2 AND state <> 'created'
                   AND (claimed_until IS NULL OR claimed_until < $5 OR claimed_by = $3)",
            )
            .bind(tenant)
            .bind(id)
            .bind(owner)
            .bind(until)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// [`Store::release_link`] inside this transaction.
    pub async fn release_link(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        owner: &str,
    ) -> Result<()> {
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET claimed_by = NULL, claimed_until = NULL
                 WHERE tenant_id = $1 AND id = $2 AND claimed_by = $3",
            )
            .bind(tenant)
            .bind(id)
            .bind(owner)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// A tenant's link, as this transaction sees it.
    pub async fn link(&mut self, tenant: &TenantId, id: &TicketId) -> Result<Option<Link>> {
        on_tx!(self, conn => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Set a link's status as read from Jira. Answers the link as it was before the
    /// change when the status name or category changed (`None` when unchanged or not
    /// found); the read time and Jira's `updated` are recorded either way. A read whose
    /// `updated` is older than the stored one changes nothing.
    pub async fn set_link_status(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        status: &str,
        status_category: Option<&str>,
        remote_updated_at: Option<Timestamp>,
        synced_at: Timestamp,
    ) -> Result<Option<Link>> {
        let written = self
            .write_link_status(
                tenant,
                id,
                status,
                status_category,
                remote_updated_at,
                synced_at,
            )
            .await?;
        Ok(match written {
            StatusWrite::Written {
                before,
                changed: true,
            } => Some(before),
            _ => None,
        })
    }

    /// [`StoreTx::set_link_status`], answering what it found and did (the row as read
    /// in this transaction), so a caller can know the link as stored afterwards
    /// without reading it again.
    pub async fn write_link_status(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        status: &str,
        status_category: Option<&str>,
        remote_updated_at: Option<Timestamp>,
        synced_at: Timestamp,
    ) -> Result<StatusWrite> {
        // Lock the row first (PostgreSQL; SQLite transactions hold the writer lock)
        // so that the read below and the update see the same row: concurrent reports
        // of one issue (a webhook and a read-back) are ordered by Jira's `updated`.
        on_tx!(self, conn => {
            sqlx::query("UPDATE links SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_sqlx)?;
        });
        let before = on_tx!(self, conn => {
            sqlx::query_as::<_, Link>(&format!(
                "SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
        });
        let Some(before) = before else {
            return Ok(StatusWrite::NotFound);
        };
        if let (Some(stored), Some(new)) = (before.remote_updated_at, remote_updated_at) {
            if new.as_datetime() < stored {
                // Older than what is stored (a late delivery): nothing changes.
                return Ok(StatusWrite::Older(before));
            }
        }
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET status = $3, status_category = COALESCE($4, status_category),
                     remote_updated_at = COALESCE($5, remote_updated_at), synced_at = $6,
                     updated_at = $6
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(status)
            .bind(status_category)
            .bind(remote_updated_at)
            .bind(synced_at)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        let changed = before.status.as_deref() != Some(status)
            || (status_category.is_some() && before.status_category.as_deref() != status_category);
        Ok(StatusWrite::Written { before, changed })
    }

    /// Set a link's summary as Jira reported it at `remote_updated_at` (Jira's
    /// `updated`; a report older than the stored one changes nothing). Answers whether
    /// it changed.
    pub async fn set_link_summary(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        summary: &str,
        remote_updated_at: Option<Timestamp>,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let n = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET summary = $3, updated_at = $4,
                     remote_updated_at = COALESCE($5, remote_updated_at)
                 WHERE tenant_id = $1 AND id = $2 AND (summary IS NULL OR summary <> $3)
                   AND ($5 IS NULL OR remote_updated_at IS NULL OR remote_updated_at <= $5)",
            )
            .bind(tenant)
            .bind(id)
            .bind(summary)
            .bind(now)
            .bind(remote_updated_at)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Mark a link's issue deleted in Jira (first report wins). Answers whether this
    /// call marked it.
    pub async fn mark_link_issue_deleted(
        &mut self,
        tenant: &TenantId,
        id: &TicketId,
        at: Timestamp,
    ) -> Result<bool> {
        let n = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE links SET issue_deleted_at = $3, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND issue_deleted_at IS NULL",
            )
            .bind(tenant)
            .bind(id)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_support::TestDatabase;

    async fn setup(store: &Store) -> (TenantId, ConnectionId) {
        let tenant = TenantId::new();
        let con = ConnectionId::new();
        let now = Timestamp::now();
        on_pool!(store, pool => {
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $1, $2)")
                .bind(&tenant).bind(now).execute(pool).await.unwrap();
            sqlx::query(
                "INSERT INTO connections (id, tenant_id, kind, name, base_url, secret, secret_key_id,
                     verification_status, created_at, updated_at)
                 VALUES ($1, $2, 'cloud_token', 'c', 'http://x', $3, 'k', 'valid', $4, $4)",
            )
            .bind(&con).bind(&tenant).bind(vec![1u8]).bind(now).execute(pool).await.unwrap();
        });
        (tenant, con)
    }

    fn new_link(tenant: &TenantId, con: &ConnectionId, source: &str) -> NewLink {
        NewLink {
            tenant_id: tenant.clone(),
            connection_id: con.clone(),
            source_kind: "violation".into(),
            source_id: source.into(),
            purpose: String::new(),
            idempotency_key: format!("key-{source}"),
            project_key: "OPS".into(),
            config_id: None,
            target: None,
            job_id: None,
        }
    }

    async fn exercise(store: Store) {
        let (tenant, con) = setup(&store).await;
        let (a, created) = store
            .reserve_link(&new_link(&tenant, &con, "v1"))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(a.state, "pending");
        let (again, created) = store
            .reserve_link(&new_link(&tenant, &con, "v1"))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again.id, a.id);
        let now = Timestamp::now();
        let later = Timestamp::from(now.as_datetime() + chrono::Duration::seconds(60));
        assert!(store
            .claim_link(&tenant, &a.id, "r1", later, now)
            .await
            .unwrap());
        assert!(
            !store
                .claim_link(&tenant, &a.id, "r2", later, now)
                .await
                .unwrap(),
            "one creator at a time"
        );
        assert!(
            store
                .claim_link(&tenant, &a.id, "r1", later, now)
                .await
                .unwrap(),
            "the holder again"
        );
        let after = Timestamp::from(now.as_datetime() + chrono::Duration::seconds(61));
        assert!(
            store
                .claim_link(&tenant, &a.id, "r2", later, after)
                .await
                .unwrap(),
            "expired claim"
        );
        store.release_link(&tenant, &a.id, "r2").await.unwrap();
        assert!(
            store
                .claim_link(&tenant, &a.id, "r3", later, now)
                .await
                .unwrap(),
            "released"
        );

        let done = store
            .complete_link(
                &tenant,
                &a.id,
                &LinkedIssue {
                    issue_id: "10001".into(),
                    issue_key: "OPS-1".into(),
                    url: "http://x/browse/OPS-1".into(),
                    status: Some("To Do".into()),
                    status_category: Some("new".into()),
                    remote_updated_at: None,
                    summary: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(done.state, "created");
        // A refusal after creation does not undo the link.
        let still = store
            .fail_link(&tenant, &a.id, &serde_json::json!({"x": 1}))
            .await
            .unwrap();
        assert_eq!(still.state, "created");

        let found = store
            .links_by_issue_ids(&con, &["10001".into(), "999".into()])
            .await
            .unwrap();
        assert_eq!(found.len(), 1);

        let mut tx = store.begin().await.unwrap();
        let changed = tx
            .set_link_status(&tenant, &a.id, "Done", Some("done"), None, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(changed.unwrap().status.as_deref(), Some("To Do"));
        let unchanged = tx
            .set_link_status(&tenant, &a.id, "Done", Some("done"), None, Timestamp::now())
            .await
            .unwrap();
        assert!(unchanged.is_none());
        // Summary: set once, unchanged the second time.
        let t1 = Timestamp::now();
        let t0 = Timestamp::from(t1.as_datetime() - chrono::Duration::seconds(5));
        assert!(tx
            .set_link_summary(&tenant, &a.id, "Renamed", Some(t1))
            .await
            .unwrap());
        assert!(!tx
            .set_link_summary(&tenant, &a.id, "Renamed", None)
            .await
            .unwrap());
        assert!(
            !tx.set_link_summary(&tenant, &a.id, "Older", Some(t0))
                .await
                .unwrap(),
            "an older report changes nothing"
        );
        assert!(
            tx.set_link_status(
                &tenant,
                &a.id,
                "To Do",
                Some("new"),
                Some(t0),
                Timestamp::now()
            )
            .await
            .unwrap()
            .is_none(),
            "an older status changes nothing"
        );
        // Issue deleted in Jira: the first report marks, later ones change nothing.
        let gone = Timestamp::now();
        assert!(tx
            .mark_link_issue_deleted(&tenant, &a.id, gone)
            .await
            .unwrap());
        assert!(!tx
            .mark_link_issue_deleted(&tenant, &a.id, Timestamp::now())
            .await
            .unwrap());
        tx.commit().await.unwrap();
        let marked = store.get_link(&tenant, &a.id).await.unwrap().unwrap();
        assert_eq!(marked.summary.as_deref(), Some("Renamed"));
        assert_eq!(marked.issue_deleted_at, Some(gone.as_datetime()));
        assert_eq!(marked.state, "created", "kept, marked");

        // Another tenant sees nothing.
        let (other, _) = setup(&store).await;
        assert!(store.get_link(&other, &a.id).await.unwrap().is_none());

        let page = store
            .list_links(
                &tenant,
                &LinkFilter {
                    status_category: Some("done".into()),
                    ..Default::default()
                },
                &PageRequest::first(10),
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(store.count_created_links(&con).await.unwrap(), 1);

        let st = SyncState {
            connection_id: con.clone(),
            tenant_id: tenant.clone(),
            watermark: Some(Utc::now()),
            last_run_at: Some(Utc::now()),
            last_searches: 3,
            last_changed: 1,
        };
        store.put_sync_state(&st).await.unwrap();
        store.put_sync_state(&st).await.unwrap();
        assert_eq!(
            store
                .get_sync_state(&con)
                .await
                .unwrap()
                .unwrap()
                .last_searches,
            3
        );
    }

    #[tokio::test]
    async fn links_on_sqlite() {
        let db = TestDatabase::sqlite();
        exercise(db.store().await.unwrap()).await;
    }

    #[tokio::test]
    async fn links_on_postgres() {
        if let Some(db) = TestDatabase::postgres_from_env().await {
            exercise(db.unwrap().store().await.unwrap()).await;
        }
    }
}
