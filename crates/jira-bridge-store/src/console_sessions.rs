//! Console sessions: one row per signed-in browser, keyed by the SHA-256 of the
//! cookie's random id (the id itself is never stored). A session belongs to a tenant
//! and to the API key it was opened with; it ends when it expires, when it is
//! deleted (sign-out), or when that key is revoked.

use chrono::{DateTime, Utc};

use crate::{ApiKeyId, Result, Store, TenantId, Timestamp};

/// A session to store.
#[derive(Clone)]
pub struct NewConsoleSession {
    /// SHA-256 (hex) of the cookie's id.
    pub id_hash: String,
    /// The tenant signed in.
    pub tenant_id: TenantId,
    /// The key used to sign in.
    pub api_key_id: ApiKeyId,
    /// The synchronizer token state-changing requests must echo.
    pub csrf_token: String,
    /// When the session stops working.
    pub expires_at: Timestamp,
}

/// A live session (its key not revoked, not expired).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSession {
    /// SHA-256 (hex) of the cookie's id.
    pub id_hash: String,
    /// The tenant signed in.
    pub tenant_id: TenantId,
    /// The key used to sign in.
    pub api_key_id: ApiKeyId,
    /// The synchronizer token.
    pub csrf_token: String,
    /// When the session was opened.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("tenant_id", &self.tenant_id)
            .field("api_key_id", &self.api_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Store a new session.
    pub async fn create_console_session(&self, s: &NewConsoleSession) -> Result<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO console_sessions
                     (id_hash, tenant_id, api_key_id, csrf_token, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.id_hash)
            .bind(&s.tenant_id)
            .bind(&s.api_key_id)
            .bind(&s.csrf_token)
            .bind(now)
            .bind(s.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The live session with this id hash: not expired at `now`, its key not revoked.
    pub async fn find_console_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<ConsoleSession>> {
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, ConsoleSession>(
                "SELECT s.id_hash, s.tenant_id, s.api_key_id, s.csrf_token, s.created_at,
                        s.expires_at
                 FROM console_sessions s
                 JOIN api_keys k ON k.id = s.api_key_id AND k.tenant_id = s.tenant_id
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// End a session (sign-out). Returns whether it existed.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Delete sessions expired before `now`; returns how many.
    pub async fn purge_expired_console_sessions(&self, now: Timestamp) -> Result<u64> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
