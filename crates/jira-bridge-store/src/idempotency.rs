//! `Idempotency-Key` records: the first request with a key runs and its response is
//! kept (sealed by the caller); a retry with the same key gets the same response.
//!
//! The scope is chosen by the caller (the service uses a hash of the credential), so
//! one client's keys never collide with another's and nobody can replay a response
//! without the credential that produced it.

use chrono::{DateTime, Utc};

use crate::{define_id, Result, Store, StoreError, Timestamp};

define_id!(
    /// An idempotency record.
    IdempotencyId, "idk", "idempotency record"
);

/// A stored record.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdempotencyRecord {
    /// Id (`idk_…`); the sealed response is bound to it.
    pub id: IdempotencyId,
    /// Hash of the request (method, path, body) that used the key first.
    pub request_hash: String,
    /// Sealed response, once the first request has completed.
    pub response: Option<Vec<u8>>,
    /// Key id of the sealed response.
    pub response_key_id: Option<String>,
    /// When the first request started.
    pub created_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for IdempotencyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyRecord")
            .field("id", &self.id)
            .field("request_hash", &self.request_hash)
            .field("completed_at", &self.completed_at)
            .finish_non_exhaustive()
    }
}

/// Outcome of [`Store::begin_idempotent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This request is the first: run it, then complete or abandon the record.
    Started(IdempotencyId),
    /// A request with this key was seen (completed or still running).
    Existing(IdempotencyRecord),
}

const COLUMNS: &str = "id, request_hash, response, response_key_id, created_at, completed_at";

impl Store {
    /// Claim `(scope, key)` for a request, or return the record of an earlier one. An
    /// expired record is replaced.
    pub async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Begin> {
        for _ in 0..3 {
            let id = IdempotencyId::new();
            let inserted: Option<IdempotencyId> = on_pool!(self, pool => {
                sqlx::query_scalar(
                    "INSERT INTO idempotency_keys
                         (id, scope, idempotency_key, request_hash, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (scope, idempotency_key) DO NOTHING
                     RETURNING id",
                )
                .bind(&id)
                .bind(scope)
                .bind(key)
                .bind(request_hash)
                .bind(now)
                .bind(expires_at)
                .fetch_optional(pool)
                .await?
            });
            if let Some(id) = inserted {
                return Ok(Begin::Started(id));
            }
            let existing: Option<(IdempotencyRecord, DateTime<Utc>)> = on_pool!(self, pool => {
                let row: Option<IdempotencyRecordWithExpiry> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS}, expires_at FROM idempotency_keys
                     WHERE scope = $1 AND idempotency_key = $2"
                ))
                .bind(scope)
                .bind(key)
                .fetch_optional(pool)
                .await?;
                row.map(IdempotencyRecordWithExpiry::split)
            });
            match existing {
                Some((record, expires)) if expires > now.as_datetime() => {
                    return Ok(Begin::Existing(record))
                }
                Some((record, _)) => {
                    // Expired: remove it and try again.
                    on_pool!(self, pool => {
                        sqlx::query("DELETE FROM idempotency_keys WHERE id = $1")
                            .bind(&record.id)
                            .execute(pool)
                            .await?;
                    });
                }
                // Deleted between our insert and select: try again.
                None => {}
            }
        }
        Err(StoreError::Conflict {
            constraint: "idempotency_keys (scope, idempotency_key)".into(),
        })
    }

    /// Store the sealed response of a started request.
    pub async fn complete_idempotent(
        &self,
        id: &IdempotencyId,
        response: &[u8],
        response_key_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE idempotency_keys SET response = $2, response_key_id = $3, completed_at = $4
                 WHERE id = $1",
            )
            .bind(id)
            .bind(response)
            .bind(response_key_id)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forget a started request (it failed in a way a retry should repeat).
    pub async fn abandon_idempotent(&self, id: &IdempotencyId) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE id = $1 AND completed_at IS NULL")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Delete expired records; returns how many.
    pub async fn purge_expired_idempotency(&self, now: Timestamp) -> Result<u64> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}

#[derive(sqlx::FromRow)]
struct IdempotencyRecordWithExpiry {
    #[sqlx(flatten)]
    record: IdempotencyRecord,
    expires_at: DateTime<Utc>,
}

impl IdempotencyRecordWithExpiry {
    fn split(self) -> (IdempotencyRecord, DateTime<Utc>) {
        (self.record, self.expires_at)
    }
}
