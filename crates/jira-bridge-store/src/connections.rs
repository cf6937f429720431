//! Jira connections: where a tenant's Jira is and the sealed credentials to reach it.
//!
//! The secret arrives sealed (ciphertext + key id); its additional data binds it to
//! the row id, so the caller makes the id ([`ConnectionId::new`]) before sealing.
//! `token_version` supports single-flight token refresh: a refresh writes with
//! [`Store::replace_connection_secret`], which succeeds only for the version it read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::{ConnectionId, Page, PageRequest, Result, Store, StoreError, TenantId, Timestamp};

/// A connection row. `secret` is ciphertext.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Connection {
    /// Id (`con_…`).
    pub id: ConnectionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// `cloud_oauth`, `cloud_token` or `dc_pat`.
    pub kind: String,
    /// The host application's user or team id, if any.
    pub owner: Option<String>,
    /// Display name.
    pub name: String,
    /// Jira base URL.
    pub base_url: String,
    /// Atlassian cloud id (Cloud only).
    pub cloud_id: Option<String>,
    /// Site name (Cloud only).
    pub site_name: Option<String>,
    /// Account id of the connected Jira user.
    pub account_id: Option<String>,
    /// Sealed secret (ciphertext).
    #[serde(skip)]
    pub secret: Vec<u8>,
    /// Key id the secret is sealed under.
    pub secret_key_id: String,
    /// OAuth scopes granted.
    #[sqlx(json)]
    pub scopes: Vec<String>,
    /// When the access token expires (OAuth).
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Incremented on every secret replacement.
    pub token_version: i64,
    /// `not_verified`, `valid`, `invalid` or `expired`.
    pub verification_status: String,
    /// Last verification time.
    pub last_verified_at: Option<DateTime<Utc>>,
    /// Disabled connections are kept but not used.
    pub enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("secret", &"[sealed]")
            .field("secret_key_id", &self.secret_key_id)
            .field("token_version", &self.token_version)
            .field("verification_status", &self.verification_status)
            .finish_non_exhaustive()
    }
}

/// A connection to insert.
#[derive(Clone)]
pub struct NewConnection {
    /// Id, made by the caller before sealing (the seal is bound to it).
    pub id: ConnectionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Kind.
    pub kind: String,
    /// Owner.
    pub owner: Option<String>,
    /// Display name.
    pub name: String,
    /// Base URL.
    pub base_url: String,
    /// Cloud id.
    pub cloud_id: Option<String>,
    /// Site name.
    pub site_name: Option<String>,
    /// Account id.
    pub account_id: Option<String>,
    /// Sealed secret.
    pub secret: Vec<u8>,
    /// Key id it is sealed under.
    pub secret_key_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Token expiry.
    pub token_expires_at: Option<Timestamp>,
    /// Initial verification status.
    pub verification_status: String,
    /// When it was verified, if it was.
    pub last_verified_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, tenant_id, kind, owner, name, base_url, cloud_id, site_name, \
    account_id, secret, secret_key_id, scopes, token_expires_at, token_version, \
    verification_status, last_verified_at, enabled, created_at, updated_at";

impl Store {
    /// Insert a connection. An unknown tenant is [`StoreError::Conflict`] (foreign key).
    pub async fn insert_connection(&self, c: NewConnection) -> Result<Connection> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "INSERT INTO connections (id, tenant_id, kind, owner, name, base_url, cloud_id,
                     site_name, account_id, secret, secret_key_id, scopes, token_expires_at,
                     verification_status, last_verified_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
                 RETURNING {COLUMNS}"
            ))
            .bind(&c.id)
            .bind(&c.tenant_id)
            .bind(&c.kind)
            .bind(&c.owner)
            .bind(&c.name)
            .bind(&c.base_url)
            .bind(&c.cloud_id)
            .bind(&c.site_name)
            .bind(&c.account_id)
            .bind(&c.secret)
            .bind(&c.secret_key_id)
            .bind(Json(&c.scopes))
            .bind(c.token_expires_at)
            .bind(&c.verification_status)
            .bind(c.last_verified_at)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's connection.
    pub async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's connections, optionally of one owner, newest first.
    pub async fn list_connections(
        &self,
        tenant: &TenantId,
        owner: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Connection>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "SELECT {COLUMNS} FROM connections
                 WHERE tenant_id = $1 AND ($2 IS NULL OR owner = $2) AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            ))
            .bind(tenant)
            .bind(owner)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |c| c.id.as_str()))
    }

    /// Replace the sealed secret if the row is still at `expected_version`; bumps the
    /// version. `Ok(None)` when another writer got there first (re-read and retry);
    /// [`StoreError::NotFound`] when there is no such connection for the tenant.
    pub async fn replace_connection_secret(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        expected_version: i64,
        secret: &[u8],
        secret_key_id: &str,
        token_expires_at: Option<Timestamp>,
    ) -> Result<Option<Connection>> {
        let now = Timestamp::now();
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections
                 SET secret = $4, secret_key_id = $5, token_expires_at = $6,
                     token_version = token_version + 1, updated_at = $7
                 WHERE tenant_id = $1 AND id = $2 AND token_version = $3
                 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(expected_version)
            .bind(secret)
            .bind(secret_key_id)
            .bind(token_expires_at)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if row.is_none() && self.get_connection(tenant, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        Ok(row)
    }

    /// Record a verification result.
    pub async fn set_connection_verification(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        status: &str,
        at: Timestamp,
    ) -> Result<Connection> {
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections SET verification_status = $3, last_verified_at = $4,
                     updated_at = $4
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(status)
            .bind(at)
            .fetch_optional(pool)
            .await?
        });
        row.ok_or(StoreError::NotFound)
    }

    /// Delete a tenant's connection; `false` if there was none.
    pub async fn delete_connection(&self, tenant: &TenantId, id: &ConnectionId) -> Result<bool> {
        let done = on_pool!(self, pool => {
            sqlx::query("DELETE FROM connections WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }
}
