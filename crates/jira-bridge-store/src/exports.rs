//! Exports (epic → story hierarchies created in Jira by a job) and releases (one epic
//! per platform target of a config). The issues themselves are links
//! ([`crate::links`]); per-item progress lives in the jobs' items ([`crate::jobs`]).
//! These rows tie a run together: the tree as posted, its jobs, its state.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::tx::on_tx;
use crate::{
    ConnectionId, Page, PageRequest, Result, Store, StoreError, StoreTx, TenantId, Timestamp,
};

crate::define_id!(
    /// An export run (`exp_…`).
    ExportId, "exp", "export"
);
crate::define_id!(
    /// A release (`rel_…`).
    ReleaseId, "rel", "release"
);

/// An export row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Export {
    /// Id (`exp_…`).
    pub id: ExportId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Project the tree goes to.
    pub project_key: String,
    /// `queued`, `running`, `succeeded`, `partially_failed`, `failed`, `cancelled`,
    /// `rolling_back`, `rolled_back`.
    pub state: String,
    /// The creating job.
    pub job_id: Option<String>,
    /// The rollback job, once asked for.
    pub rollback_job_id: Option<String>,
    /// Options of the run (`update_existing`, …).
    #[sqlx(json)]
    pub options: Value,
    /// The tree as posted (normalised by the service).
    #[sqlx(json)]
    pub tree: Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When the creating (or rollback) job last finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// An export to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExport {
    /// Its id (chosen by the caller, so the job payload can name it).
    pub id: ExportId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Project.
    pub project_key: String,
    /// Options.
    pub options: Value,
    /// Tree.
    pub tree: Value,
}

/// A release row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Release {
    /// Id (`rel_…`).
    pub id: ReleaseId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Config the platforms come from.
    pub config_id: String,
    /// Version, e.g. `1.2.0`.
    pub version: String,
    /// Planned date (`YYYY-MM-DD`).
    pub planned_date: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Per platform: `{platform, project_key, completed_status, source_id}`.
    #[sqlx(json)]
    pub platforms: Value,
    /// The creating job.
    pub job_id: Option<String>,
    /// Set once, when every platform's epic reached its completed status.
    pub completed_at: Option<DateTime<Utc>>,
    /// Last check.
    pub checked_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A release to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRelease {
    /// Its id (chosen by the caller, so the links' sources can name it).
    pub id: ReleaseId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Config.
    pub config_id: String,
    /// Version.
    pub version: String,
    /// Planned date.
    pub planned_date: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Platforms.
    pub platforms: Value,
}

const EXPORT_COLUMNS: &str = "id, tenant_id, connection_id, project_key, state, job_id, \
    rollback_job_id, options, tree, created_at, updated_at, finished_at";

const RELEASE_COLUMNS: &str = "id, tenant_id, connection_id, config_id, version, planned_date, \
    description, platforms, job_id, completed_at, checked_at, created_at, updated_at";

impl Store {
    /// Insert an export (state `queued`, no job yet).
    pub async fn insert_export(&self, new: &NewExport) -> Result<Export> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, Export>(&format!(
                "INSERT INTO exports (id, tenant_id, connection_id, project_key, state, options,
                     tree, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7) RETURNING {EXPORT_COLUMNS}"
            ))
            .bind(&new.id)
            .bind(&new.tenant_id)
            .bind(&new.connection_id)
            .bind(&new.project_key)
            .bind(Json(&new.options))
            .bind(Json(&new.tree))
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's export.
    pub async fn get_export(&self, tenant: &TenantId, id: &ExportId) -> Result<Option<Export>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Export>(&format!(
                "SELECT {EXPORT_COLUMNS} FROM exports WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's exports, newest first.
    pub async fn list_exports(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Export>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Export>(&format!(
                "SELECT {EXPORT_COLUMNS} FROM exports
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |e| e.id.as_str()))
    }

    /// Record the creating job of an export (state `running`).
    pub async fn set_export_job(
        &self,
        tenant: &TenantId,
        id: &ExportId,
        job_id: &str,
    ) -> Result<()> {
        let now = Timestamp::now();
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE exports SET job_id = $3, state = CASE WHEN state = 'queued' THEN 'running'
                     ELSE state END, updated_at = $4
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Record the rollback job of an export (state `rolling_back`). `false` when the
    /// export already has one.
    pub async fn set_export_rollback_job(
        &self,
        tenant: &TenantId,
        id: &ExportId,
        job_id: &str,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE exports SET rollback_job_id = $3, state = 'rolling_back', updated_at = $4,
                     finished_at = NULL
                 WHERE tenant_id = $1 AND id = $2 AND rollback_job_id IS NULL",
            )
            .bind(tenant)
            .bind(id)
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Insert a release.
    pub async fn insert_release(&self, new: &NewRelease) -> Result<Release> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, Release>(&format!(
                "INSERT INTO releases (id, tenant_id, connection_id, config_id, version,
                     planned_date, description, platforms, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {RELEASE_COLUMNS}"
            ))
            .bind(&new.id)
            .bind(&new.tenant_id)
            .bind(&new.connection_id)
            .bind(&new.config_id)
            .bind(&new.version)
            .bind(&new.planned_date)
            .bind(&new.description)
            .bind(Json(&new.platforms))
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Record the creating job of a release.
    pub async fn set_release_job(
        &self,
        tenant: &TenantId,
        id: &ReleaseId,
        job_id: &str,
    ) -> Result<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE releases SET job_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// A tenant's release.
    pub async fn get_release(&self, tenant: &TenantId, id: &ReleaseId) -> Result<Option<Release>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Release>(&format!(
                "SELECT {RELEASE_COLUMNS} FROM releases WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's releases, newest first.
    pub async fn list_releases(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Release>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Release>(&format!(
                "SELECT {RELEASE_COLUMNS} FROM releases
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |r| r.id.as_str()))
    }

    /// Record that a release was checked now.
    pub async fn touch_release_checked(&self, tenant: &TenantId, id: &ReleaseId) -> Result<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE releases SET checked_at = $3, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }
}

impl StoreTx {
    /// Move an export to `state` when the job it is waiting for (`job_id`: its
    /// creating or rollback job) changed. `true` when the state changed (the caller
    /// appends the event in the same transaction); `finished` sets `finished_at`.
    pub async fn set_export_state(
        &mut self,
        tenant: &TenantId,
        id: &ExportId,
        job_id: &str,
        state: &str,
        finished: bool,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let finished_at = finished.then_some(now);
        let n = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE exports SET state = $4, finished_at = $5, updated_at = $6
                 WHERE tenant_id = $1 AND id = $2 AND state <> $4
                   AND (($3 = job_id AND rollback_job_id IS NULL) OR $3 = rollback_job_id)",
            )
            .bind(tenant)
            .bind(id)
            .bind(job_id)
            .bind(state)
            .bind(finished_at)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Mark a release complete, once: `true` only for the call that set it (the
    /// caller appends `release.completed` in the same transaction).
    pub async fn complete_release(&mut self, tenant: &TenantId, id: &ReleaseId) -> Result<bool> {
        let now = Timestamp::now();
        let n = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE releases SET completed_at = $3, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND completed_at IS NULL",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
