//! Jira connections: where a tenant's Jira is and the sealed credentials to reach it.
//!
//! The secret arrives sealed (ciphertext + key id); its additional data binds it to
//! the row id, so the caller makes the id ([`ConnectionId::new`]) before sealing.
//! `token_version` supports single-flight token refresh: a refresh writes with
//! [`Store::replace_connection_secret`], which succeeds only for the version it read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::tx::on_tx;
use crate::{
    ConnectionId, Page, PageRequest, Result, Store, StoreError, StoreTx, TenantId, Timestamp,
};

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
    /// Email of the Jira account (Cloud API tokens: the Basic-auth user).
    pub email: Option<String>,
    /// Display name of the connected Jira user.
    pub account_name: Option<String>,
    /// `Cloud` or `DataCenter`, as the site reported it.
    pub deployment: Option<String>,
    /// Jira version the site reported.
    pub server_version: Option<String>,
    /// Why the last verification or token refresh failed (never a secret).
    pub last_error: Option<String>,
    /// When the OAuth tokens were last refreshed.
    pub last_refreshed_at: Option<DateTime<Utc>>,
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
    /// Account email (Cloud API tokens).
    pub email: Option<String>,
    /// Display name of the Jira user.
    pub account_name: Option<String>,
    /// `Cloud` or `DataCenter`.
    pub deployment: Option<String>,
    /// Jira version.
    pub server_version: Option<String>,
}

/// What a verification found, written with [`Store::record_connection_verification`].
#[derive(Debug, Clone, Default)]
pub struct VerificationRecord {
    /// `valid`, `invalid` or `expired`.
    pub status: String,
    /// Account id (kept when `None`).
    pub account_id: Option<String>,
    /// Display name (kept when `None`).
    pub account_name: Option<String>,
    /// Deployment (kept when `None`).
    pub deployment: Option<String>,
    /// Version (kept when `None`).
    pub server_version: Option<String>,
    /// Why it failed; `None` clears it.
    pub last_error: Option<String>,
}

/// Changes to a connection's plain fields; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct ConnectionUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New owner (`Some(None)` clears it).
    pub owner: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// The cross-replica refresh lock of one connection, from
/// [`Store::lock_connection_refresh`]: a [`NamedLock`](crate::notify::NamedLock)
/// (on PostgreSQL a transaction-scoped advisory lock).
pub type RefreshLock = crate::notify::NamedLock;

/// An OAuth authorization in progress (one `state`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OAuthState {
    /// SHA-256 (hex) of the state's nonce.
    pub id: String,
    /// Tenant that started it.
    pub tenant_id: TenantId,
    /// Owner the connection will have.
    pub owner: Option<String>,
    /// Display name the connection will have.
    pub name: Option<String>,
    /// Where to send the browser afterwards (already checked against the allow-list).
    pub return_to: Option<String>,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Unusable after.
    pub expires_at: DateTime<Utc>,
    /// When the callback consumed it.
    pub used_at: Option<DateTime<Utc>>,
}

/// A grant with several sites waiting for the user's choice. `secret` is the sealed
/// token pair.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OAuthSelection {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Owner the connection will have.
    pub owner: Option<String>,
    /// Display name the connection will have.
    pub name: Option<String>,
    /// Where to send the browser afterwards.
    pub return_to: Option<String>,
    /// The sites (`[{cloud_id, name, url, scopes}]`).
    #[sqlx(json)]
    pub sites: serde_json::Value,
    /// Granted scopes.
    #[sqlx(json)]
    pub scopes: Vec<String>,
    /// Sealed token pair.
    pub secret: Vec<u8>,
    /// Key id.
    pub secret_key_id: String,
    /// Access token expiry.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Unusable after.
    pub expires_at: DateTime<Utc>,
    /// When a site was picked.
    pub used_at: Option<DateTime<Utc>>,
    /// The connection made from it.
    pub connection_id: Option<String>,
}

impl std::fmt::Debug for OAuthSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSelection")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("secret", &"[sealed]")
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, tenant_id, kind, owner, name, base_url, cloud_id, site_name, \
    account_id, secret, secret_key_id, scopes, token_expires_at, token_version, \
    verification_status, last_verified_at, enabled, created_at, updated_at, email, \
    account_name, deployment, server_version, last_error, last_refreshed_at";

const SELECTION_COLUMNS: &str = "id, tenant_id, owner, name, return_to, sites, scopes, secret, \
    secret_key_id, token_expires_at, created_at, expires_at, used_at, connection_id";

impl Store {
    /// Insert a connection. An unknown tenant is [`StoreError::Conflict`] (foreign key).
    pub async fn insert_connection(&self, c: NewConnection) -> Result<Connection> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "INSERT INTO connections (id, tenant_id, kind, owner, name, base_url, cloud_id,
                     site_name, account_id, secret, secret_key_id, scopes, token_expires_at,
                     verification_status, last_verified_at, created_at, updated_at, email,
                     account_name, deployment, server_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16,
                     $17, $18, $19, $20)
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
            .bind(&c.email)
            .bind(&c.account_name)
            .bind(&c.deployment)
            .bind(&c.server_version)
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

    /// Any tenant's connection, for background tasks (re-verification, refresh of
    /// idle grants). API handlers use [`Store::get_connection`].
    pub async fn get_connection_for_system(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "SELECT {COLUMNS} FROM connections WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Enabled connections of every tenant, oldest first, after `after` (exclusive),
    /// at most `limit`: the background tasks walk them page by page.
    pub async fn list_enabled_connections_for_system(
        &self,
        after: Option<&ConnectionId>,
        limit: i64,
    ) -> Result<Vec<Connection>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "SELECT {COLUMNS} FROM connections
                 WHERE enabled = TRUE AND ($1 IS NULL OR id > $1)
                 ORDER BY id LIMIT $2"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Change a connection's name, owner or enabled flag.
    pub async fn update_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        update: &ConnectionUpdate,
    ) -> Result<Connection> {
        let now = Timestamp::now();
        let (set_owner, owner) = match &update.owner {
            Some(o) => (true, o.clone()),
            None => (false, None),
        };
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections
                 SET name = COALESCE($3, name),
                     owner = CASE WHEN $4 THEN $5 ELSE owner END,
                     enabled = COALESCE($6, enabled),
                     updated_at = $7
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&update.name)
            .bind(set_owner)
            .bind(owner)
            .bind(update.enabled)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.ok_or(StoreError::NotFound)
    }

    /// Replace the credentials after the user supplied new ones (and they verified):
    /// secret, email and what verification found; compare-and-swap on the version.
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_connection_credentials(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        expected_version: i64,
        secret: &[u8],
        secret_key_id: &str,
        email: Option<&str>,
        verified: &VerificationRecord,
        at: Timestamp,
    ) -> Result<Option<Connection>> {
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections
                 SET secret = $4, secret_key_id = $5, email = $6,
                     token_version = token_version + 1,
                     verification_status = $7, last_verified_at = $8,
                     account_id = COALESCE($9, account_id),
                     account_name = COALESCE($10, account_name),
                     deployment = COALESCE($11, deployment),
                     server_version = COALESCE($12, server_version),
                     last_error = $13, updated_at = $8
                 WHERE tenant_id = $1 AND id = $2 AND token_version = $3
                 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(expected_version)
            .bind(secret)
            .bind(secret_key_id)
            .bind(email)
            .bind(&verified.status)
            .bind(at)
            .bind(&verified.account_id)
            .bind(&verified.account_name)
            .bind(&verified.deployment)
            .bind(&verified.server_version)
            .bind(&verified.last_error)
            .fetch_optional(pool)
            .await?
        });
        if row.is_none() && self.get_connection(tenant, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        Ok(row)
    }

    /// Store a refreshed OAuth token pair if the row is still at `expected_version`
    /// (compare-and-swap); bumps the version and sets `last_refreshed_at`. `Ok(None)`:
    /// another refresher won (re-read the row).
    pub async fn store_refreshed_tokens(
        &self,
        id: &ConnectionId,
        expected_version: i64,
        secret: &[u8],
        secret_key_id: &str,
        token_expires_at: Option<Timestamp>,
        scopes: Option<&[String]>,
    ) -> Result<Option<Connection>> {
        let now = Timestamp::now();
        let scopes = scopes.map(Json);
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections
                 SET secret = $3, secret_key_id = $4, token_expires_at = $5,
                     token_version = token_version + 1, last_refreshed_at = $6,
                     scopes = COALESCE($7, scopes), updated_at = $6
                 WHERE id = $1 AND token_version = $2
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(expected_version)
            .bind(secret)
            .bind(secret_key_id)
            .bind(token_expires_at)
            .bind(now)
            .bind(scopes)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Record a verification result and what it learned.
    pub async fn record_connection_verification(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        record: &VerificationRecord,
        at: Timestamp,
    ) -> Result<Connection> {
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections
                 SET verification_status = $3, last_verified_at = $4,
                     account_id = COALESCE($5, account_id),
                     account_name = COALESCE($6, account_name),
                     deployment = COALESCE($7, deployment),
                     server_version = COALESCE($8, server_version),
                     last_error = $9, updated_at = $4
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&record.status)
            .bind(at)
            .bind(&record.account_id)
            .bind(&record.account_name)
            .bind(&record.deployment)
            .bind(&record.server_version)
            .bind(&record.last_error)
            .fetch_optional(pool)
            .await?
        });
        row.ok_or(StoreError::NotFound)
    }

    /// Set the status (e.g. `expired` after Jira answered 401 or the grant was
    /// revoked) only if it is different; `Ok(Some(row))` when this call changed it —
    /// so that exactly one of several replicas announces the change.
    pub async fn transition_connection_status(
        &self,
        id: &ConnectionId,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<Option<Connection>> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections SET verification_status = $2, last_error = $3,
                     updated_at = $4
                 WHERE id = $1 AND verification_status <> $2 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(status)
            .bind(last_error)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Take the cross-replica refresh lock of a connection (waits for it). See
    /// [`RefreshLock`].
    pub async fn lock_connection_refresh(&self, id: &ConnectionId) -> Result<RefreshLock> {
        self.lock_named(&format!("refresh/{id}")).await
    }

    /// Take the cross-replica lock of a connection's dynamic webhook registration
    /// (waits for it), so that replicas never register it twice.
    pub async fn lock_webhook_registration(&self, id: &ConnectionId) -> Result<RefreshLock> {
        self.lock_named(&format!("webhook-registration/{id}")).await
    }

    // ---- OAuth states ----

    /// Remember a started authorization.
    pub async fn insert_oauth_state(&self, state: &OAuthState) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO oauth_states (id, tenant_id, owner, name, return_to, created_at,
                     expires_at, used_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
            )
            .bind(&state.id)
            .bind(&state.tenant_id)
            .bind(&state.owner)
            .bind(&state.name)
            .bind(&state.return_to)
            .bind(Timestamp::from(state.created_at))
            .bind(Timestamp::from(state.expires_at))
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// A started authorization by id (the callback is not tenant-authenticated: the
    /// state names the tenant).
    pub async fn get_oauth_state(&self, id: &str) -> Result<Option<OAuthState>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, OAuthState>(
                "SELECT id, tenant_id, owner, name, return_to, created_at, expires_at, used_at
                 FROM oauth_states WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Mark a state used; `false` if it was already used (replay) or does not exist.
    pub async fn consume_oauth_state(&self, id: &str) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("UPDATE oauth_states SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(Timestamp::now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Forget states and selections that expired before `before`.
    pub async fn purge_expired_oauth(&self, before: Timestamp) -> Result<u64> {
        let a = on_pool!(self, pool => {
            sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        let b = on_pool!(self, pool => {
            sqlx::query("DELETE FROM oauth_selections WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(a + b)
    }

    // ---- OAuth site selections ----

    /// Store a pending selection (the caller sealed the token pair bound to `id`).
    pub async fn insert_oauth_selection(&self, sel: &OAuthSelection) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO oauth_selections (id, tenant_id, owner, name, return_to, sites,
                     scopes, secret, secret_key_id, token_expires_at, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&sel.id)
            .bind(&sel.tenant_id)
            .bind(&sel.owner)
            .bind(&sel.name)
            .bind(&sel.return_to)
            .bind(Json(&sel.sites))
            .bind(Json(&sel.scopes))
            .bind(&sel.secret)
            .bind(&sel.secret_key_id)
            .bind(sel.token_expires_at.map(Timestamp::from))
            .bind(Timestamp::from(sel.created_at))
            .bind(Timestamp::from(sel.expires_at))
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// A tenant's pending selection.
    pub async fn get_oauth_selection(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<OAuthSelection>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, OAuthSelection>(&format!(
                "SELECT {SELECTION_COLUMNS} FROM oauth_selections WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Claim a selection for the connection about to be created: the row (and the
    /// sealed token pair in it) is deleted. `false` if someone else claimed it first.
    pub async fn complete_oauth_selection(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM oauth_selections WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    // ---- metadata cache ----

    /// A cached metadata value and when it was fetched.
    pub async fn get_connection_metadata(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        key: &str,
    ) -> Result<Option<(serde_json::Value, DateTime<Utc>)>> {
        let row: Option<(Json<serde_json::Value>, DateTime<Utc>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT value, fetched_at FROM connection_metadata
                 WHERE tenant_id = $1 AND connection_id = $2 AND cache_key = $3",
            )
            .bind(tenant)
            .bind(connection)
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(v, t)| (v.0, t)))
    }

    /// Store (or replace) a cached metadata value.
    pub async fn put_connection_metadata(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO connection_metadata (connection_id, tenant_id, cache_key, value, fetched_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (connection_id, cache_key)
                 DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at",
            )
            .bind(connection)
            .bind(tenant)
            .bind(key)
            .bind(Json(value))
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// Drop a connection's cached metadata.
    pub async fn clear_connection_metadata(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM connection_metadata WHERE tenant_id = $1 AND connection_id = $2")
                .bind(tenant)
                .bind(connection)
                .execute(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }
}

impl StoreTx {
    /// [`Store::transition_connection_status`] inside a transaction (to append the
    /// event that announces it in the same commit).
    pub async fn transition_connection_status(
        &mut self,
        id: &ConnectionId,
        status: &str,
        last_error: Option<&str>,
    ) -> Result<Option<Connection>> {
        let now = Timestamp::now();
        on_tx!(self, conn => {
            sqlx::query_as::<_, Connection>(&format!(
                "UPDATE connections SET verification_status = $2, last_error = $3,
                     updated_at = $4
                 WHERE id = $1 AND verification_status <> $2 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(status)
            .bind(last_error)
            .bind(now)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }
}
