//! Ticket configs: reusable named targets (project, issue type, priority, labels,
//! completed status, extra fields) under one connection.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::{ConnectionId, Page, PageRequest, Result, Store, StoreError, TenantId, Timestamp};

crate::define_id!(
    /// A ticket config (`cfg_…`).
    ConfigId, "cfg", "config"
);

/// A config row. `targets` is the JSON array the service validates.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TicketConfig {
    /// Id (`cfg_…`).
    pub id: ConfigId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection the targets live behind.
    pub connection_id: ConnectionId,
    /// Name, unique per tenant.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Targets.
    #[sqlx(json)]
    pub targets: Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A config to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicketConfig {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Targets.
    pub targets: Value,
}

/// Changes of [`Store::update_ticket_config`]; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketConfigPatch {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New targets.
    pub targets: Option<Value>,
    /// New connection.
    pub connection_id: Option<ConnectionId>,
}

const COLUMNS: &str =
    "id, tenant_id, connection_id, name, description, targets, created_at, updated_at";

impl Store {
    /// Insert a config. A name the tenant already uses is [`StoreError::Conflict`].
    pub async fn insert_ticket_config(&self, new: &NewTicketConfig) -> Result<TicketConfig> {
        let now = Timestamp::now();
        let id = ConfigId::new();
        on_pool!(self, pool => {
            sqlx::query_as::<_, TicketConfig>(&format!(
                "INSERT INTO ticket_configs (id, tenant_id, connection_id, name, description,
                     targets, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
            ))
            .bind(&id)
            .bind(&new.tenant_id)
            .bind(&new.connection_id)
            .bind(&new.name)
            .bind(&new.description)
            .bind(Json(&new.targets))
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's config.
    pub async fn get_ticket_config(
        &self,
        tenant: &TenantId,
        id: &ConfigId,
    ) -> Result<Option<TicketConfig>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, TicketConfig>(&format!(
                "SELECT {COLUMNS} FROM ticket_configs WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's configs, newest first.
    pub async fn list_ticket_configs(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<TicketConfig>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, TicketConfig>(&format!(
                "SELECT {COLUMNS} FROM ticket_configs
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |c| c.id.as_str()))
    }

    /// Change a config; `None` when it does not exist for the tenant.
    pub async fn update_ticket_config(
        &self,
        tenant: &TenantId,
        id: &ConfigId,
        patch: &TicketConfigPatch,
    ) -> Result<Option<TicketConfig>> {
        let Some(cur) = self.get_ticket_config(tenant, id).await? else {
            return Ok(None);
        };
        let name = patch.name.clone().unwrap_or(cur.name);
        let description = patch.description.clone().unwrap_or(cur.description);
        let targets = patch.targets.clone().unwrap_or(cur.targets);
        let connection = patch.connection_id.clone().unwrap_or(cur.connection_id);
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, TicketConfig>(&format!(
                "UPDATE ticket_configs SET name = $3, description = $4, targets = $5,
                     connection_id = $6, updated_at = $7
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&name)
            .bind(&description)
            .bind(Json(&targets))
            .bind(&connection)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Delete a config; `false` when it did not exist for the tenant.
    pub async fn delete_ticket_config(&self, tenant: &TenantId, id: &ConfigId) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM ticket_configs WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(pool)
                .await
                .map_err(StoreError::from_sqlx)?
                .rows_affected()
        });
        Ok(n == 1)
    }
}
