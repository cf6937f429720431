//! Tenants and their API keys. Keys are stored as a hash (the caller hashes; this
//! crate never sees a key) with a short display prefix.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::{ApiKeyId, Page, PageRequest, Result, Store, StoreError, TenantId, Timestamp};

/// A tenant row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Tenant {
    /// Id (`ten_…`).
    pub id: TenantId,
    /// Unique display name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An API key row (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    /// Id (`key_…`).
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Display name given at creation.
    pub name: String,
    /// The first characters of the key, for recognising it in lists.
    pub prefix: String,
    /// Scopes granted to the key.
    #[sqlx(json)]
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last successful use (updated at most once per minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key has been revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// What is stored for a new API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Display name.
    pub name: String,
    /// Display prefix of the key.
    pub prefix: String,
    /// Hash of the full key (hex).
    pub key_hash: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

const KEY_COLUMNS: &str =
    "id, tenant_id, name, prefix, scopes, created_at, revoked_at, last_used_at";

impl Store {
    /// Create a tenant. A duplicate name is [`StoreError::Conflict`].
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let id = TenantId::new();
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, Tenant>(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)
                 RETURNING id, name, created_at",
            )
            .bind(&id)
            .bind(name)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Create a tenant and its first API key in one transaction.
    pub async fn create_tenant_with_key(
        &self,
        name: &str,
        key: NewApiKey,
    ) -> Result<(Tenant, ApiKey)> {
        let id = TenantId::new();
        let key_id = ApiKeyId::new();
        let now = Timestamp::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let tenant = sqlx::query_as::<_, Tenant>(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)
                 RETURNING id, name, created_at",
            )
            .bind(&id)
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let api_key = sqlx::query_as::<_, ApiKey>(&format!(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
            ))
            .bind(&key_id)
            .bind(&id)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.key_hash)
            .bind(Json(&key.scopes))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok((tenant, api_key))
        })
    }

    /// A tenant by id (operator view: not tenant-scoped).
    pub async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Tenant>("SELECT id, name, created_at FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)
        })
    }

    /// All tenants, newest first (operator view).
    pub async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Tenant>(
                "SELECT id, name, created_at FROM tenants
                 WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |t| t.id.as_str()))
    }

    /// Add an API key to an existing tenant; [`StoreError::NotFound`] if there is none.
    pub async fn create_api_key(&self, tenant: &TenantId, key: NewApiKey) -> Result<ApiKey> {
        let id = ApiKeyId::new();
        let now = Timestamp::now();
        let inserted = on_pool!(self, pool => {
            sqlx::query_as::<_, ApiKey>(&format!(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at)
                 SELECT $1, id, $3, $4, $5, $6, $7 FROM tenants WHERE id = $2
                 RETURNING {KEY_COLUMNS}"
            ))
            .bind(&id)
            .bind(tenant)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.key_hash)
            .bind(Json(&key.scopes))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        inserted.ok_or(StoreError::NotFound)
    }

    /// The key with this hash, revoked or not (the caller decides), with its tenant.
    pub async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, ApiKey>(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
            ))
            .bind(key_hash)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Record a use of the key, unless one was recorded after `not_since` (keeps
    /// writes to at most one per key per interval).
    pub async fn touch_api_key(
        &self,
        id: &ApiKeyId,
        now: Timestamp,
        not_since: Timestamp,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(id)
            .bind(now)
            .bind(not_since)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// One key of a tenant.
    pub async fn get_api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKey>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, ApiKey>(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's keys, newest first.
    pub async fn list_api_keys(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, ApiKey>(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |k| k.id.as_str()))
    }

    /// Revoke a tenant's key. Revoking twice keeps the first time. Another tenant's
    /// key is [`StoreError::NotFound`].
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<ApiKey> {
        let now = Timestamp::now();
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, ApiKey>(&format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
                 WHERE tenant_id = $1 AND id = $2 RETURNING {KEY_COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.ok_or(StoreError::NotFound)
    }
}
