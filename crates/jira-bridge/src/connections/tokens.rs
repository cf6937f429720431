//! OAuth access tokens backed by the store, refreshed single-flight.
//!
//! A refresh happens proactively (the pair's `refresh_after` has passed; it is set
//! `refresh_margin_seconds` before expiry) or when Jira answered 401 to the current
//! token. Only one refresh per connection runs at a time:
//!
//! 1. within the process, behind the connection's async mutex;
//! 2. across replicas, behind the store's refresh lock (a PostgreSQL advisory lock);
//! 3. and in any case the new pair is written with a compare-and-swap on
//!    `token_version`, so a writer that lost a race never overwrites a newer pair.
//!
//! Under the locks the row is read again: if its version moved, someone else already
//! refreshed and their access token is used. The rotated refresh token is committed
//! before the new access token is handed out. `invalid_grant` is a race when the row
//! changed meanwhile (use the new pair) and a revocation otherwise: the connection is
//! marked `expired`, `connection.expired` is emitted once, and nothing retries.

use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use jira_bridge_store::audit::Outcome;
use jira_bridge_store::connections::Connection;
use jira_bridge_store::{ConnectionId, Timestamp};
use jira_client::{TokenError, TokenSource};
use secrecy::{ExposeSecret, SecretString};

use super::oauth::{TokenCallError, TokenPair};
use super::{open_pair, seal_pair, Shared};
use crate::audit::{self, Actor};

/// A [`TokenSource`] for one `cloud_oauth` connection.
pub struct StoreTokenSource {
    shared: Shared,
    id: ConnectionId,
}

impl std::fmt::Debug for StoreTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTokenSource")
            .field("connection", &self.id)
            .finish()
    }
}

impl StoreTokenSource {
    pub(crate) fn new(shared: Shared, id: ConnectionId) -> Self {
        Self { shared, id }
    }

    async fn read(&self) -> Result<(Connection, TokenPair), TokenError> {
        let row = self
            .shared
            .store
            .get_connection_for_system(&self.id)
            .await
            .map_err(|e| TokenError::Unavailable(format!("database: {e}")))?
            .ok_or_else(|| TokenError::Revoked("the connection was deleted".into()))?;
        if row.verification_status == "expired" {
            return Err(TokenError::Revoked(
                "the connection's authorization has expired; reconnect it".into(),
            ));
        }
        let pair = open_pair(&self.shared.keys, &row)
            .map_err(|e| TokenError::Unavailable(format!("sealed tokens: {e}")))?;
        Ok((row, pair))
    }

    /// Refresh unless the row has moved past `seen_version`; return the current token.
    ///
    /// The refresh runs as a task of its own: a caller that gives up (a request
    /// timing out, a job batch cancelled) must not abandon it between Atlassian
    /// rotating the refresh token and the new pair being stored, or the stored
    /// refresh token would be one Atlassian already retired.
    pub(crate) async fn refresh(&self, seen_version: i64) -> Result<SecretString, TokenError> {
        let this = Self::new(self.shared.clone(), self.id.clone());
        tokio::spawn(async move { this.refresh_single_flight(seen_version).await })
            .await
            .map_err(|e| TokenError::Unavailable(format!("token refresh task: {e}")))?
    }

    async fn refresh_single_flight(&self, seen_version: i64) -> Result<SecretString, TokenError> {
        let local = self.shared.runtime.refresh_mutex(&self.id);
        let _in_process = local.lock().await;
        let (row, pair) = self.read().await?;
        if row.token_version != seen_version {
            return Ok(SecretString::from(pair.access_token));
        }
        let lock = self
            .shared
            .store
            .lock_connection_refresh(&self.id)
            .await
            .map_err(|e| TokenError::Unavailable(format!("refresh lock: {e}")))?;
        let result = self.refresh_locked(seen_version).await;
        if let Err(e) = lock.release().await {
            tracing::warn!(connection = %self.id, error = ?e, "could not release the refresh lock");
        }
        result
    }

    async fn refresh_locked(&self, seen_version: i64) -> Result<SecretString, TokenError> {
        let (row, pair) = self.read().await?;
        if row.token_version != seen_version {
            return Ok(SecretString::from(pair.access_token));
        }
        let Some(app) = self.shared.runtime.oauth.as_ref() else {
            return Err(TokenError::Unavailable(
                "OAuth is not configured on this server".into(),
            ));
        };
        let margin = self.shared.runtime.refresh_margin;
        match app.refresh(&pair.refresh_token).await {
            Ok(granted) => {
                let new_refresh = match &granted.refresh_token {
                    Some(r) => r.expose_secret().to_owned(),
                    None => {
                        tracing::warn!(connection = %self.id, "token endpoint sent no new refresh token; keeping the current one");
                        pair.refresh_token.clone()
                    }
                };
                let now = Utc::now();
                let lifetime = granted.expires_in.map(|d| d.as_secs() as i64);
                let new_pair = TokenPair {
                    access_token: granted.access_token.expose_secret().to_owned(),
                    refresh_token: new_refresh,
                    refresh_after: lifetime.map(|l| now.timestamp() + refresh_delay(l, margin)),
                };
                let expires_at =
                    lifetime.map(|l| Timestamp::from(now + chrono::Duration::seconds(l)));
                let sealed = seal_pair(&self.shared.keys, &self.id, &new_pair)
                    .map_err(|e| TokenError::Unavailable(format!("sealing: {e}")))?;
                let stored = self
                    .shared
                    .store
                    .store_refreshed_tokens(
                        &self.id,
                        seen_version,
                        &sealed.ciphertext,
                        &sealed.key_id,
                        expires_at,
                        granted.scopes.as_deref(),
                    )
                    .await
                    .map_err(|e| {
                        TokenError::Unavailable(format!("storing refreshed tokens: {e}"))
                    })?;
                match stored {
                    Some(_) => {
                        tracing::info!(connection = %self.id, version = seen_version + 1, "OAuth tokens refreshed");
                        audit::record(
                            &self.shared.store,
                            audit::Event::new(
                                &Actor::System,
                                "connection.refresh",
                                Outcome::Success,
                            )
                            .tenant(&row.tenant_id)
                            .target("connection", self.id.as_str())
                            .detail(serde_json::json!({"token_version": seen_version + 1})),
                        )
                        .await;
                        Ok(SecretString::from(new_pair.access_token))
                    }
                    None => {
                        // Another writer got there first (only possible without the
                        // advisory lock): theirs is the pair of record.
                        tracing::warn!(connection = %self.id, "refreshed tokens lost a compare-and-swap; using the stored pair");
                        let (_, current) = self.read().await?;
                        Ok(SecretString::from(current.access_token))
                    }
                }
            }
            Err(TokenCallError::InvalidGrant(desc)) => {
                let (row, current) = self.read().await?;
                if row.token_version != seen_version {
                    tracing::info!(connection = %self.id, "invalid_grant after a concurrent refresh: using the new tokens");
                    return Ok(SecretString::from(current.access_token));
                }
                let reason = format!("Atlassian refused the refresh token ({desc}): the grant was revoked or expired; connect again");
                super::mark_expired(&self.shared, &row, &reason, "refresh").await;
                Err(TokenError::Revoked(reason))
            }
            Err(e) => {
                tracing::warn!(connection = %self.id, error = %e, "OAuth token refresh failed");
                audit::record(
                    &self.shared.store,
                    audit::Event::new(&Actor::System, "connection.refresh", Outcome::Failure)
                        .tenant(&row.tenant_id)
                        .target("connection", self.id.as_str())
                        .detail(serde_json::json!({"error": e.to_string()})),
                )
                .await;
                Err(TokenError::Unavailable(e.to_string()))
            }
        }
    }
}

/// Seconds after issue at which a token of `lifetime` seconds is refreshed: `margin`
/// before expiry, but never sooner than half its lifetime (a token shorter-lived than
/// the margin would otherwise be refreshed on every use).
pub fn refresh_delay(lifetime: i64, margin: i64) -> i64 {
    (lifetime - margin).max(lifetime / 2).max(0)
}

impl TokenSource for StoreTokenSource {
    fn access_token(&self) -> BoxFuture<'_, Result<SecretString, TokenError>> {
        Box::pin(async move {
            let (row, pair) = self.read().await?;
            let due = pair
                .refresh_after
                .is_some_and(|t| Utc::now().timestamp() >= t);
            if due {
                return self.refresh(row.token_version).await;
            }
            Ok(SecretString::from(pair.access_token))
        })
    }

    fn on_unauthorized<'a>(
        &'a self,
        rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<SecretString, TokenError>> {
        Box::pin(async move {
            let (row, pair) = self.read().await?;
            if pair.access_token != rejected.expose_secret() {
                // Refreshed while this request was in flight.
                return Ok(SecretString::from(pair.access_token));
            }
            self.refresh(row.token_version).await
        })
    }
}

/// A token source as the client wants it.
pub(crate) fn source(shared: Shared, id: ConnectionId) -> Arc<dyn TokenSource> {
    Arc::new(StoreTokenSource::new(shared, id))
}

#[cfg(test)]
mod tests {
    use super::refresh_delay;

    #[test]
    fn refresh_delay_keeps_a_margin_but_never_refreshes_on_every_use() {
        assert_eq!(refresh_delay(3600, 300), 3300);
        assert_eq!(refresh_delay(400, 300), 200);
        assert_eq!(refresh_delay(0, 300), 0);
    }
}
