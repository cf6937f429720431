//! Inbound Jira webhooks and the per-connection webhook set-up.
//!
//! A delivery is stored once per `(connection, X-Atlassian-Webhook-Identifier)`:
//! [`Store::insert_inbound`] answers `false` for a replay and changes nothing. Stored
//! deliveries are applied later, in batches ([`Store::pending_inbound`],
//! [`Store::mark_inbound_applied`]). The set-up row (`jira_webhook_setups`, id = the
//! connection id) holds the sealed webhook secret, the hash of the URL token, the
//! dynamic-webhook registrations of the connection and its health counters.
//!
//! The lookups by connection id alone are for the public inbound endpoint, which has
//! no tenant; it verifies the delivery with the connection's secret before anything
//! else is read or written.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::tx::on_tx;
use crate::{ConnectionId, Result, Store, StoreError, StoreTx, TenantId, Timestamp};

/// A stored delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboundWebhook {
    /// Arrival order.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection it was addressed to.
    pub connection_id: ConnectionId,
    /// Jira's webhook identifier (or a hash of the body when absent).
    pub identifier: String,
    /// `webhookEvent` of the payload.
    pub event: String,
    /// The raw JSON body.
    pub body: String,
    /// Arrival time.
    pub received_at: DateTime<Utc>,
}

/// A delivery to store.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    /// Owning tenant.
    pub tenant_id: &'a TenantId,
    /// Connection it was addressed to.
    pub connection_id: &'a ConnectionId,
    /// Dedup key.
    pub identifier: &'a str,
    /// `webhookEvent`.
    pub event: &'a str,
    /// Raw JSON body.
    pub body: &'a str,
}

/// The webhook set-up and health of a connection.
#[derive(Clone, sqlx::FromRow, Serialize)]
pub struct WebhookSetup {
    /// The connection id.
    pub id: ConnectionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Sealed webhook secret (admin webhooks' `X-Hub-Signature`).
    #[serde(skip)]
    pub secret: Option<Vec<u8>>,
    /// Key id the secret is sealed under.
    #[serde(skip)]
    pub secret_key_id: Option<String>,
    /// SHA-256 (hex) of the per-connection URL token.
    #[serde(skip)]
    pub token_hash: Option<String>,
    /// Jira ids of the dynamic webhooks registered for the connection (JSON array).
    pub registration_ids: String,
    /// JQL filter of the registration.
    pub registration_jql: Option<String>,
    /// When the registration expires in Jira.
    pub registration_expires_at: Option<DateTime<Utc>>,
    /// Last accepted delivery.
    pub last_received_at: Option<DateTime<Utc>>,
    /// Accepted deliveries (replays included).
    pub received_count: i64,
    /// Rejected deliveries (bad or missing signature).
    pub rejected_count: i64,
    /// Last rejection time.
    pub last_rejected_at: Option<DateTime<Utc>>,
    /// Why the last delivery was rejected.
    pub last_rejection: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebhookSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSetup")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("registration_ids", &self.registration_ids)
            .field("registration_expires_at", &self.registration_expires_at)
            .field("last_received_at", &self.last_received_at)
            .field("received_count", &self.received_count)
            .field("rejected_count", &self.rejected_count)
            .finish_non_exhaustive()
    }
}

const SETUP_COLUMNS: &str = "id, tenant_id, secret, secret_key_id, token_hash, registration_ids,
    registration_jql, registration_expires_at, last_received_at, received_count, rejected_count,
    last_rejected_at, last_rejection, created_at, updated_at";

impl Store {
    /// The set-up of a connection, by connection id alone (public inbound endpoint and
    /// background tasks).
    pub async fn get_webhook_setup_for_system(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<WebhookSetup>> {
        let sql = format!("SELECT {SETUP_COLUMNS} FROM jira_webhook_setups WHERE id = $1");
        on_pool!(self, pool => {
            sqlx::query_as::<_, WebhookSetup>(&sql)
                .bind(connection)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)
        })
    }

    /// The set-up of a tenant's connection.
    pub async fn get_webhook_setup(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<Option<WebhookSetup>> {
        let sql = format!(
            "SELECT {SETUP_COLUMNS} FROM jira_webhook_setups WHERE tenant_id = $1 AND id = $2"
        );
        on_pool!(self, pool => {
            sqlx::query_as::<_, WebhookSetup>(&sql)
                .bind(tenant)
                .bind(connection)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)
        })
    }

    /// Create or replace the secret and URL-token hash of a connection's set-up.
    pub async fn put_webhook_secret(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        sealed_secret: &[u8],
        key_id: &str,
        token_hash: &str,
    ) -> Result<WebhookSetup> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO jira_webhook_setups (id, tenant_id, secret, secret_key_id, token_hash,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (id) DO UPDATE SET secret = $3, secret_key_id = $4, token_hash = $5,
                     updated_at = $6",
            )
            .bind(connection)
            .bind(tenant)
            .bind(sealed_secret)
            .bind(key_id)
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        self.get_webhook_setup(tenant, connection)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Record the dynamic-webhook registration of a connection (creating the set-up row
    /// when missing).
    pub async fn put_webhook_registration(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        ids: &[i64],
        jql: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let now = Timestamp::now();
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO jira_webhook_setups (id, tenant_id, registration_ids, registration_jql,
                     registration_expires_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (id) DO UPDATE SET registration_ids = $3, registration_jql = $4,
                     registration_expires_at = $5, updated_at = $6",
            )
            .bind(connection)
            .bind(tenant)
            .bind(ids)
            .bind(jql)
            .bind(expires_at.map(Timestamp::from))
            .bind(now)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// Count a rejected delivery (the set-up row must exist; otherwise nothing).
    pub async fn record_inbound_rejection(
        &self,
        connection: &ConnectionId,
        reason: &str,
    ) -> Result<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE jira_webhook_setups SET rejected_count = rejected_count + 1,
                     last_rejected_at = $2, last_rejection = $3
                 WHERE id = $1",
            )
            .bind(connection)
            .bind(now)
            .bind(reason)
            .execute(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// Store a verified delivery; `false` when its identifier was seen before (nothing
    /// is changed but the health counters).
    pub async fn insert_inbound(&self, new: &NewInbound<'_>) -> Result<bool> {
        let inserted = self.insert_inbound_batch(std::slice::from_ref(new)).await?;
        Ok(inserted.first().copied().unwrap_or(false))
    }

    /// Store several deliveries in one transaction (one commit for a group of
    /// concurrent deliveries); answers, per delivery in order, whether it was new. Each
    /// delivery counts as received for its connection's health.
    pub async fn insert_inbound_batch(&self, news: &[NewInbound<'_>]) -> Result<Vec<bool>> {
        if news.is_empty() {
            return Ok(Vec::new());
        }
        let now = Timestamp::now();
        let mut out = Vec::with_capacity(news.len());
        let mut received: Vec<(&ConnectionId, i64)> = Vec::new();
        let mut tx = self.begin().await?;
        for new in news {
            let inserted = on_tx!(tx, conn => {
                sqlx::query(
                    "INSERT INTO inbound_webhooks (tenant_id, connection_id, identifier, event, body,
                         received_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (connection_id, identifier) DO NOTHING",
                )
                .bind(new.tenant_id)
                .bind(new.connection_id)
                .bind(new.identifier)
                .bind(new.event)
                .bind(new.body)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_sqlx)?
                .rows_affected()
            });
            out.push(inserted > 0);
            match received.iter_mut().find(|(c, _)| *c == new.connection_id) {
                Some((_, n)) => *n += 1,
                None => received.push((new.connection_id, 1)),
            }
        }
        for (connection, n) in received {
            on_tx!(tx, conn => {
                sqlx::query(
                    "UPDATE jira_webhook_setups SET received_count = received_count + $3,
                         last_received_at = $2
                     WHERE id = $1",
                )
                .bind(connection)
                .bind(now)
                .bind(n)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_sqlx)?;
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The oldest deliveries not applied yet.
    pub async fn pending_inbound(&self, limit: i64) -> Result<Vec<InboundWebhook>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, InboundWebhook>(
                "SELECT seq, tenant_id, connection_id, identifier, event, body, received_at
                 FROM inbound_webhooks WHERE applied_at IS NULL ORDER BY seq LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Mark deliveries applied with an outcome (`applied`, `ignored`, `failed: …`).
    pub async fn mark_inbound_applied(&self, done: &[(i64, String)]) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        tx.mark_inbound_applied(done).await?;
        tx.commit().await
    }

    /// Deliveries of a connection: `(stored, applied)`.
    pub async fn count_inbound(&self, connection: &ConnectionId) -> Result<(i64, i64)> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT COUNT(*), COUNT(applied_at) FROM inbound_webhooks WHERE connection_id = $1",
            )
            .bind(connection)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Set-ups of all connections (registration upkeep, cadence of the poll backstop).
    pub async fn list_webhook_setups_for_system(&self) -> Result<Vec<WebhookSetup>> {
        let sql = format!("SELECT {SETUP_COLUMNS} FROM jira_webhook_setups ORDER BY id");
        on_pool!(self, pool => {
            sqlx::query_as::<_, WebhookSetup>(&sql)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from_sqlx)
        })
    }
}

impl StoreTx {
    /// [`Store::mark_inbound_applied`] inside this transaction (with the writes that
    /// applied them).
    pub async fn mark_inbound_applied(&mut self, done: &[(i64, String)]) -> Result<()> {
        let now = Timestamp::now();
        for (seq, outcome) in done {
            on_tx!(self, conn => {
                sqlx::query("UPDATE inbound_webhooks SET applied_at = $2, outcome = $3 WHERE seq = $1")
                    .bind(seq)
                    .bind(now)
                    .bind(outcome)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::from_sqlx)?;
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_support::TestDatabase;

    async fn exercise(store: Store) {
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
        store
            .put_webhook_secret(&tenant, &con, &[1, 2, 3], "k", "hash")
            .await
            .unwrap();
        let new = |identifier: &'static str| NewInbound {
            tenant_id: &tenant,
            connection_id: &con,
            identifier,
            event: "jira:issue_updated",
            body: "{}",
        };
        assert!(store.insert_inbound(&new("a")).await.unwrap());
        // One group: a replay of a stored one, two new ones, and a replay within the
        // group itself.
        let got = store
            .insert_inbound_batch(&[new("a"), new("b"), new("c"), new("b")])
            .await
            .unwrap();
        assert_eq!(got, vec![false, true, true, false]);
        assert!(store.insert_inbound_batch(&[]).await.unwrap().is_empty());
        assert_eq!(store.count_inbound(&con).await.unwrap(), (3, 0));
        let setup = store
            .get_webhook_setup_for_system(&con)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(setup.received_count, 5, "replays count as received");
        let pending = store.pending_inbound(10).await.unwrap();
        let ids: Vec<&str> = pending.iter().map(|d| d.identifier.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "in arrival order");
        let done: Vec<(i64, String)> = pending.iter().map(|d| (d.seq, "applied".into())).collect();
        store.mark_inbound_applied(&done).await.unwrap();
        assert_eq!(store.count_inbound(&con).await.unwrap(), (3, 3));
    }

    #[tokio::test]
    async fn inbound_on_sqlite() {
        let db = TestDatabase::sqlite();
        exercise(db.store().await.unwrap()).await;
    }

    #[tokio::test]
    async fn inbound_on_postgres() {
        if let Some(db) = TestDatabase::postgres_from_env().await {
            exercise(db.unwrap().store().await.unwrap()).await;
        }
    }
}
