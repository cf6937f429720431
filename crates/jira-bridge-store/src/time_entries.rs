//! Time entries: a host's time records that become Jira worklogs.
//!
//! One row per `(tenant, source_id)`. The row holds the entry's content (issue key,
//! start, duration, comment), a hash of that content, and the sync side: the worklog
//! it became (`worklog_id` on `worklog_issue_key`), the hash of the content last
//! written to Jira (`synced_hash`), the state, the last error, the remote version on a
//! conflict, and a lease for the worker that syncs it. `intent` records a Jira write
//! about to be sent (`add`, `move`): a row found with an intent after a crash or an
//! ambiguous failure is reconciled against Jira before anything is written again.
//!
//! Due entries (`next_sync_at <= now`, no live lease) are claimed with
//! [`Store::claim_due_time_entries`]; finishing a sync with
//! [`StoreTx::finish_time_entry_sync`] sets `synced` only if the content did not change
//! meanwhile (else the entry stays `pending`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::tx::on_tx;
use crate::{ConnectionId, Page, PageRequest, Result, Store, StoreTx, TenantId, Timestamp};

crate::define_id!(
    /// A time entry's id (`tme_…`).
    TimeEntryId,
    "tme",
    "time entry"
);

/// A time entry row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct TimeEntry {
    /// Id (`tme_…`).
    pub id: TimeEntryId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection the worklog is written through.
    pub connection_id: ConnectionId,
    /// The host's id for the entry.
    pub source_id: String,
    /// The host's user.
    pub owner: Option<String>,
    /// Issue the entry is logged on.
    pub issue_key: String,
    /// Start (UTC).
    pub started_at: DateTime<Utc>,
    /// The offset (seconds east of UTC) `started` is written with.
    pub started_offset_s: i64,
    /// IANA zone the entry was given in, if any.
    pub time_zone: Option<String>,
    /// Duration in seconds, as the host gave it.
    pub duration_s: i64,
    /// Comment (Markdown).
    pub comment: Option<String>,
    /// `auto` or `manual`.
    pub sync_mode: String,
    /// `not_synced`, `pending`, `synced`, `failed`, `deleted` or `conflict`.
    pub state: String,
    /// Hash of the current content.
    pub content_hash: String,
    /// Hash of the content last written to Jira.
    pub synced_hash: Option<String>,
    /// Jira worklog id.
    pub worklog_id: Option<String>,
    /// Issue the worklog lives on (differs from `issue_key` until a move is synced).
    pub worklog_issue_key: Option<String>,
    /// The worklog's `updated` (ms since epoch) after our last write.
    pub remote_updated_ms: Option<i64>,
    /// The worklog as Jira has it, on a conflict (`{"deleted": true}` when deleted).
    #[sqlx(json(nullable))]
    pub remote: Option<serde_json::Value>,
    /// Why the last sync failed.
    pub last_error: Option<String>,
    /// Sync attempts since the last success.
    pub attempts: i64,
    /// When the entry is due to sync (auto mode, bulk syncs, retries).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Worker holding the entry.
    pub lease_owner: Option<String>,
    /// Until when.
    pub lease_until: Option<DateTime<Utc>>,
    /// A Jira write that was about to be sent (`add`, `move`), cleared on success.
    pub intent: Option<String>,
    /// Last successful sync.
    pub synced_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Content of an entry to upsert, and the sync fields the caller decided on.
#[derive(Debug, Clone)]
pub struct UpsertTimeEntry {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Host id.
    pub source_id: String,
    /// Owner.
    pub owner: Option<String>,
    /// Issue key.
    pub issue_key: String,
    /// Start.
    pub started_at: Timestamp,
    /// Offset to write `started` with.
    pub started_offset_s: i64,
    /// Zone, if given.
    pub time_zone: Option<String>,
    /// Duration.
    pub duration_s: i64,
    /// Comment.
    pub comment: Option<String>,
    /// `auto` or `manual`.
    pub sync_mode: String,
    /// Content hash.
    pub content_hash: String,
    /// State to set.
    pub state: String,
    /// When to sync (auto), `None` to leave it unscheduled.
    pub next_sync_at: Option<Timestamp>,
}

/// Filters of [`Store::list_time_entries`].
#[derive(Debug, Clone, Default)]
pub struct TimeEntryFilter {
    /// Owner.
    pub owner: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub to: Option<Timestamp>,
}

/// What a finished sync wrote.
#[derive(Debug, Clone)]
pub struct SyncedWorklog {
    /// Worklog id (`None` after a delete).
    pub worklog_id: Option<String>,
    /// Issue it lives on.
    pub worklog_issue_key: Option<String>,
    /// Hash of the content written.
    pub synced_hash: Option<String>,
    /// The worklog's `updated` after the write (ms).
    pub remote_updated_ms: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, connection_id, source_id, owner, issue_key, started_at, \
    started_offset_s, time_zone, duration_s, comment, sync_mode, state, content_hash, synced_hash, \
    worklog_id, worklog_issue_key, remote_updated_ms, remote, last_error, attempts, next_sync_at, \
    lease_owner, lease_until, intent, synced_at, created_at, updated_at";

impl Store {
    /// One entry by the host's id.
    pub async fn get_time_entry(
        &self,
        tenant: &TenantId,
        source_id: &str,
    ) -> Result<Option<TimeEntry>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "SELECT {COLUMNS} FROM time_entries WHERE tenant_id = $1 AND source_id = $2"
            ))
            .bind(tenant)
            .bind(source_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// One entry by id.
    pub async fn get_time_entry_by_id(
        &self,
        tenant: &TenantId,
        id: &TimeEntryId,
    ) -> Result<Option<TimeEntry>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "SELECT {COLUMNS} FROM time_entries WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// A tenant's entries, newest first.
    pub async fn list_time_entries(
        &self,
        tenant: &TenantId,
        filter: &TimeEntryFilter,
        page: &PageRequest,
    ) -> Result<Page<TimeEntry>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "SELECT {COLUMNS} FROM time_entries
                 WHERE tenant_id = $1 AND ($2 IS NULL OR owner = $2) AND ($3 IS NULL OR state = $3)
                   AND ($4 IS NULL OR started_at >= $4) AND ($5 IS NULL OR started_at < $5)
                   AND ($6 IS NULL OR id < $6)
                 ORDER BY id DESC LIMIT $7"
            ))
            .bind(tenant)
            .bind(filter.owner.as_deref())
            .bind(filter.state.as_deref())
            .bind(filter.from)
            .bind(filter.to)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |e| e.id.as_str()))
    }

    /// Ids of an owner's entries that started in `[from, to)` (not deleted), oldest first.
    pub async fn time_entry_sources_in_range(
        &self,
        tenant: &TenantId,
        owner: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<String>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "SELECT source_id FROM time_entries
                 WHERE tenant_id = $1 AND ($2 IS NULL OR owner = $2) AND started_at >= $3
                   AND started_at < $4 AND state <> 'deleted'
                 ORDER BY started_at, id LIMIT $5",
            )
            .bind(tenant)
            .bind(owner)
            .bind(from)
            .bind(to)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Entries of a connection that carry one of these worklog ids.
    pub async fn time_entries_by_worklog(
        &self,
        connection: &ConnectionId,
        worklog_ids: &[String],
    ) -> Result<Vec<TimeEntry>> {
        if worklog_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..worklog_ids.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM time_entries WHERE connection_id = $1 AND worklog_id IN ({})",
            placeholders.join(", ")
        );
        Ok(on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, TimeEntry>(&sql).bind(connection);
            for id in worklog_ids {
                q = q.bind(id);
            }
            q.fetch_all(pool).await?
        }))
    }

    /// Connections that have synced worklogs (for change-feed polling).
    pub async fn connections_with_worklogs(&self) -> Result<Vec<(TenantId, ConnectionId)>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, (TenantId, ConnectionId)>(
                "SELECT DISTINCT tenant_id, connection_id FROM time_entries WHERE worklog_id IS NOT NULL",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Schedule entries to sync at `at` (bulk syncs, retries).
    pub async fn schedule_time_entry(
        &self,
        tenant: &TenantId,
        id: &TimeEntryId,
        at: Timestamp,
    ) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE time_entries SET next_sync_at = $3,
                   state = CASE WHEN state IN ('not_synced', 'failed') THEN 'pending' ELSE state END,
                   updated_at = $3
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Claim up to `limit` due entries (`next_sync_at <= now`, no live lease) for
    /// `owner` until `lease_until`; each gets one more attempt.
    pub async fn claim_due_time_entries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<TimeEntry>> {
        let lock = match self.backend() {
            crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE time_entries SET lease_owner = $1, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM time_entries
                          WHERE next_sync_at IS NOT NULL AND next_sync_at <= $2
                            AND (lease_until IS NULL OR lease_until < $2)
                          ORDER BY next_sync_at, id LIMIT $4 {lock})
             RETURNING {COLUMNS}"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, TimeEntry>(&sql)
                .bind(owner)
                .bind(now)
                .bind(lease_until)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Lease one entry for an immediate sync (fails when another worker holds it).
    pub async fn lease_time_entry(
        &self,
        tenant: &TenantId,
        id: &TimeEntryId,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<TimeEntry>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "UPDATE time_entries SET lease_owner = $3, lease_until = $5, attempts = attempts + 1
                 WHERE tenant_id = $1 AND id = $2 AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $3)
                 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(owner)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Extend the leases of `ids` held by `owner`.
    pub async fn extend_time_entry_leases(
        &self,
        owner: &str,
        ids: &[TimeEntryId],
        lease_until: Timestamp,
    ) -> Result<u64> {
        let mut n = 0;
        for id in ids {
            n += on_pool!(self, pool => {
                sqlx::query("UPDATE time_entries SET lease_until = $3 WHERE id = $1 AND lease_owner = $2")
                    .bind(id)
                    .bind(owner)
                    .bind(lease_until)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(n)
    }

    /// Record that a Jira write is about to be sent for the entry (`None` clears it).
    pub async fn set_time_entry_intent(
        &self,
        id: &TimeEntryId,
        intent: Option<&str>,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE time_entries SET intent = $2 WHERE id = $1")
                .bind(id)
                .bind(intent)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Mark entries of a connection whose worklog changed in Jira as conflicts.
    pub async fn mark_time_entry_conflict(
        &self,
        id: &TimeEntryId,
        remote: &serde_json::Value,
        message: &str,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE time_entries SET state = 'conflict', remote = $2, last_error = $3,
                   next_sync_at = NULL, updated_at = $4
                 WHERE id = $1 AND state <> 'deleted'",
            )
            .bind(id)
            .bind(Json(remote))
            .bind(message)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

impl StoreTx {
    /// Insert or update an entry's content (by tenant + source id), with the sync state
    /// the caller decided on. Sync fields (worklog id, hashes, lease) are kept.
    pub async fn upsert_time_entry(&mut self, e: &UpsertTimeEntry) -> Result<TimeEntry> {
        let now = Timestamp::now();
        let id = TimeEntryId::new();
        Ok(on_tx!(self, conn => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "INSERT INTO time_entries (id, tenant_id, connection_id, source_id, owner, issue_key,
                    started_at, started_offset_s, time_zone, duration_s, comment, sync_mode, state,
                    content_hash, next_sync_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
                 ON CONFLICT (tenant_id, source_id) DO UPDATE SET
                    connection_id = excluded.connection_id, owner = excluded.owner,
                    issue_key = excluded.issue_key, started_at = excluded.started_at,
                    started_offset_s = excluded.started_offset_s, time_zone = excluded.time_zone,
                    duration_s = excluded.duration_s, comment = excluded.comment,
                    sync_mode = excluded.sync_mode, state = excluded.state,
                    content_hash = excluded.content_hash, next_sync_at = excluded.next_sync_at,
                    last_error = NULL, remote = NULL, updated_at = excluded.updated_at
                 RETURNING {COLUMNS}"
            ))
            .bind(&id)
            .bind(&e.tenant_id)
            .bind(&e.connection_id)
            .bind(&e.source_id)
            .bind(e.owner.as_deref())
            .bind(&e.issue_key)
            .bind(e.started_at)
            .bind(e.started_offset_s)
            .bind(e.time_zone.as_deref())
            .bind(e.duration_s)
            .bind(e.comment.as_deref())
            .bind(&e.sync_mode)
            .bind(&e.state)
            .bind(&e.content_hash)
            .bind(e.next_sync_at)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
        }))
    }

    /// A sync succeeded: store what was written. The entry becomes `synced` when its
    /// content still hashes to `synced_hash` (else `pending` again, due at once when
    /// it is in auto mode), or `deleted` when `deleted` is set. Frees the lease.
    pub async fn finish_time_entry_sync(
        &mut self,
        id: &TimeEntryId,
        w: &SyncedWorklog,
        deleted: bool,
    ) -> Result<Option<TimeEntry>> {
        let now = Timestamp::now();
        Ok(on_tx!(self, conn => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "UPDATE time_entries SET worklog_id = $2, worklog_issue_key = $3, synced_hash = $4,
                    remote_updated_ms = $5,
                    state = CASE WHEN $6 THEN 'deleted'
                                 WHEN content_hash = $4 THEN 'synced' ELSE 'pending' END,
                    next_sync_at = CASE WHEN $6 THEN NULL
                                        WHEN content_hash = $4 THEN NULL
                                        WHEN sync_mode = 'auto' THEN $7 ELSE NULL END,
                    last_error = NULL, remote = NULL, attempts = 0, intent = NULL,
                    lease_owner = NULL, lease_until = NULL, synced_at = $7, updated_at = $7
                 WHERE id = $1
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(w.worklog_id.as_deref())
            .bind(w.worklog_issue_key.as_deref())
            .bind(w.synced_hash.as_deref())
            .bind(w.remote_updated_ms)
            .bind(deleted)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        }))
    }

    /// A sync failed: record why and set `state` (`pending`, `failed` or `conflict`);
    /// `retry_at` makes it due again then. `conflict` stores the remote version. Frees
    /// the lease. `keep_intent` keeps a recorded intent (the write may have happened).
    pub async fn fail_time_entry_sync(
        &mut self,
        id: &TimeEntryId,
        state: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        conflict: Option<&serde_json::Value>,
        keep_intent: bool,
    ) -> Result<Option<TimeEntry>> {
        let now = Timestamp::now();
        Ok(on_tx!(self, conn => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "UPDATE time_entries SET state = $2, last_error = $3, next_sync_at = $4,
                    remote = COALESCE($5, remote),
                    intent = CASE WHEN $6 THEN intent ELSE NULL END,
                    lease_owner = NULL, lease_until = NULL, updated_at = $7
                 WHERE id = $1
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(state)
            .bind(error)
            .bind(retry_at)
            .bind(conflict.map(Json))
            .bind(keep_intent)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        }))
    }

    /// Mark an entry deleted without a Jira write (its worklog kept, or never made).
    pub async fn forget_time_entry(&mut self, id: &TimeEntryId) -> Result<Option<TimeEntry>> {
        let now = Timestamp::now();
        Ok(on_tx!(self, conn => {
            sqlx::query_as::<_, TimeEntry>(&format!(
                "UPDATE time_entries SET state = 'deleted', next_sync_at = NULL, remote = NULL,
                    lease_owner = NULL, lease_until = NULL, updated_at = $2
                 WHERE id = $1 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        }))
    }
}

/// Position of one connection in Jira's worklog change feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedCursor {
    /// `since` for `/worklog/updated` (ms).
    pub updated_since: i64,
    /// `since` for `/worklog/deleted` (ms).
    pub deleted_since: i64,
}

impl Store {
    /// The feed position of a connection (`None` before the first poll).
    pub async fn worklog_feed_cursor(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<FeedCursor>> {
        let row: Option<(i64, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT updated_since, deleted_since FROM worklog_feed_cursors WHERE connection_id = $1",
            )
            .bind(connection)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(u, d)| FeedCursor {
            updated_since: u,
            deleted_since: d,
        }))
    }

    /// Store the feed position of a connection.
    pub async fn set_worklog_feed_cursor(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        cursor: FeedCursor,
    ) -> Result<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO worklog_feed_cursors (connection_id, tenant_id, updated_since, deleted_since, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (connection_id) DO UPDATE SET updated_since = excluded.updated_since,
                    deleted_since = excluded.deleted_since, updated_at = excluded.updated_at",
            )
            .bind(connection)
            .bind(tenant)
            .bind(cursor.updated_since)
            .bind(cursor.deleted_since)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}
