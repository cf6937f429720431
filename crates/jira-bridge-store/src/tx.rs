//! Transactions that span modules.
//!
//! [`Store::begin`] opens a [`StoreTx`] on whichever backend the store holds. Store
//! functions that take `&mut StoreTx` (their names end in `_tx`, or they live on
//! `StoreTx` itself) run inside it; nothing is visible to others until
//! [`StoreTx::commit`]. Dropping the transaction without committing rolls it back.
//!
//! The reason it exists: a module changes its rows **and** appends the domain event
//! that describes the change in one transaction (the transactional outbox), so an
//! event is never lost after a committed change and never announced for a change that
//! rolled back.
//!
//! Inside this crate, `on_tx!(tx, conn => body)` runs `body` with `conn` bound to the
//! backend's connection (`&mut SqliteConnection` or `&mut PgConnection`), mirroring
//! `on_pool!`.
//!
//! On SQLite the transaction starts with `BEGIN IMMEDIATE`: it takes the write lock
//! up front, so the busy timeout applies instead of a late "database is locked" when
//! a read is upgraded to a write.

use crate::{Backend, Pool, Result, Store, StoreError};

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// An open transaction on either backend. Commit with [`StoreTx::commit`]; dropping
/// it rolls back.
pub struct StoreTx {
    pub(crate) inner: TxInner,
    /// Set when an event was appended: commit then wakes this process's listeners
    /// (see [`crate::events::local_commits`]).
    pub(crate) appended_events: bool,
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTx")
            .field("backend", &self.backend())
            .finish()
    }
}

// Run the same expression on the transaction's connection, whichever backend it is.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            crate::tx::TxInner::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            crate::tx::TxInner::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Store {
    /// Open a transaction. Write what you change through `_tx` functions, then
    /// [`StoreTx::commit`].
    pub async fn begin(&self) -> Result<StoreTx> {
        let inner = match &self.pool {
            Pool::Sqlite(pool) => TxInner::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(StoreError::from_sqlx)?,
            ),
            Pool::Postgres(pool) => {
                TxInner::Postgres(pool.begin().await.map_err(StoreError::from_sqlx)?)
            }
        };
        Ok(StoreTx {
            inner,
            appended_events: false,
        })
    }
}

impl StoreTx {
    /// Which backend the transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Make everything written in the transaction visible, atomically.
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await.map_err(StoreError::from_sqlx)?,
            TxInner::Postgres(t) => t.commit().await.map_err(StoreError::from_sqlx)?,
        }
        if self.appended_events {
            crate::events::signal_local_commit();
        }
        Ok(())
    }

    /// Discard everything written in the transaction (dropping it does the same).
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await.map_err(StoreError::from_sqlx),
            TxInner::Postgres(t) => t.rollback().await.map_err(StoreError::from_sqlx),
        }
    }
}
