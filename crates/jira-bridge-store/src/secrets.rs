//! Every sealed secret in the database, for key rotation.
//!
//! This crate stores ciphertext only. To re-seal under a new key, the service lists
//! the secrets sealed under any other key ([`Store::list_sealed_secrets`]), opens and
//! re-seals each with the additional data of its (table, row id, column), and writes it
//! back with [`Store::replace_sealed_secret`], which only replaces the exact ciphertext
//! it read (a concurrent token refresh wins and is not overwritten).

use crate::{Result, Store};

/// A column that holds sealed secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    /// Table name.
    pub table: &'static str,
    /// Column with the ciphertext (BLOB / BYTEA).
    pub column: &'static str,
    /// Column with the key id the ciphertext is sealed under.
    pub key_id_column: &'static str,
}

/// Every sealed column. A module that adds one adds it here.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "connections",
        column: "secret",
        key_id_column: "secret_key_id",
    },
    SealedColumn {
        table: "oauth_selections",
        column: "secret",
        key_id_column: "secret_key_id",
    },
    SealedColumn {
        table: "subscription_secrets",
        column: "secret",
        key_id_column: "secret_key_id",
    },
    SealedColumn {
        table: "jira_webhook_setups",
        column: "secret",
        key_id_column: "secret_key_id",
    },
    SealedColumn {
        table: "idempotency_keys",
        column: "response",
        key_id_column: "response_key_id",
    },
];

/// One sealed value and where it lives.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Where it is stored.
    pub location: SealedColumn,
    /// The row's `id`.
    pub row_id: String,
    /// Key id it is sealed under.
    pub key_id: String,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("table", &self.location.table)
            .field("column", &self.location.column)
            .field("row_id", &self.row_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Every sealed secret, in all tables, whose key id is not `except_key_id` (all of
    /// them when `None`). Not tenant-scoped: this is an operator task.
    pub async fn list_sealed_secrets(
        &self,
        except_key_id: Option<&str>,
    ) -> Result<Vec<SealedSecret>> {
        let mut out = Vec::new();
        for loc in SEALED_COLUMNS {
            let sql = format!(
                "SELECT id, {kid}, {col} FROM {table}
                 WHERE {col} IS NOT NULL AND {kid} IS NOT NULL AND ($1 IS NULL OR {kid} <> $1)
                 ORDER BY id",
                kid = loc.key_id_column,
                col = loc.column,
                table = loc.table
            );
            let rows: Vec<(String, String, Vec<u8>)> = on_pool!(self, pool => {
                sqlx::query_as(&sql).bind(except_key_id).fetch_all(pool).await?
            });
            out.extend(
                rows.into_iter()
                    .map(|(row_id, key_id, ciphertext)| SealedSecret {
                        location: *loc,
                        row_id,
                        key_id,
                        ciphertext,
                    }),
            );
        }
        Ok(out)
    }

    /// Replace `old` with a new ciphertext under `new_key_id`, only if the row still
    /// holds exactly `old.ciphertext`. Returns whether it was replaced.
    pub async fn replace_sealed_secret(
        &self,
        old: &SealedSecret,
        new_ciphertext: &[u8],
        new_key_id: &str,
    ) -> Result<bool> {
        let loc = old.location;
        let sql = format!(
            "UPDATE {table} SET {col} = $1, {kid} = $2 WHERE id = $3 AND {col} = $4",
            table = loc.table,
            col = loc.column,
            kid = loc.key_id_column
        );
        let n = on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(new_ciphertext)
                .bind(new_key_id)
                .bind(&old.row_id)
                .bind(&old.ciphertext)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }
}
