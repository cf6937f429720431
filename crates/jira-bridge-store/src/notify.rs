//! Coordination between replicas: change notifications and named locks.
//!
//! - **Notifications**: [`Store::notify`] signals a [`Channel`] with a short text
//!   payload; [`Store::listen`] receives the signals of every replica sharing the
//!   database. On PostgreSQL these are `NOTIFY` / `LISTEN` (delivered after the
//!   sending transaction commits; payloads under 8000 bytes). On SQLite every writer
//!   is in one process: `notify` does nothing and `listen` answers `None`; the
//!   process's own in-memory signals suffice.
//! - **Named locks**: [`Store::lock_named`] takes an exclusive lock on a name until
//!   the [`NamedLock`] is released or dropped. On PostgreSQL it is a
//!   transaction-scoped advisory lock (it holds one pooled connection while held and
//!   is freed when the holder's connection ends, e.g. when the process dies); on
//!   SQLite a lock inside this process. Use it around "look, then act" sequences that
//!   must not interleave across replicas (a token refresh, a webhook registration).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};

use crate::{Result, Store, StoreError};

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// An event was appended (payload: its `seq`). Sent by
    /// [`StoreTx::append_event`](crate::StoreTx::append_event) itself.
    Events,
    /// A job changed (payload: chosen by the job engine).
    Jobs,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 2] = [Channel::Events, Channel::Jobs];

    /// The PostgreSQL channel name.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Events => crate::events::EVENTS_CHANNEL,
            Channel::Jobs => JOBS_CHANNEL,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// PostgreSQL `NOTIFY` channel of job changes.
pub const JOBS_CHANNEL: &str = "jira_bridge_jobs";

/// One received notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Where it was sent.
    pub channel: Channel,
    /// What was sent.
    pub payload: String,
}

/// Notifications of every replica (PostgreSQL `LISTEN` on every [`Channel`]).
pub struct ChangeListener {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeListener")
    }
}

impl ChangeListener {
    /// Wait for the next notification. After a lost connection the listener
    /// reconnects and answers `Ok(None)`: notifications may have been missed, so
    /// re-read whatever they would have announced.
    pub async fn recv(&mut self) -> Result<Option<Notification>> {
        loop {
            match self.listener.try_recv().await? {
                None => return Ok(None),
                Some(n) => {
                    if let Some(channel) = Channel::from_name(n.channel()) {
                        return Ok(Some(Notification {
                            channel,
                            payload: n.payload().to_owned(),
                        }));
                    }
                }
            }
        }
    }
}

/// An exclusive lock on a name, from [`Store::lock_named`]; freed by
/// [`NamedLock::release`] or on drop (even if the holder is cancelled).
pub struct NamedLock {
    tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
    _local: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for NamedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedLock")
            .field("advisory", &self.tx.is_some())
            .finish()
    }
}

impl NamedLock {
    /// Free the lock.
    pub async fn release(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await.map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }
}

type LocalLocks = std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>;

static LOCAL_LOCKS: LazyLock<LocalLocks> = LazyLock::new(Default::default);

fn local_mutex(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut map = LOCAL_LOCKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() > 1024 {
        map.retain(|_, w| w.strong_count() > 0);
    }
    if let Some(m) = map.get(name).and_then(Weak::upgrade) {
        return m;
    }
    let m = Arc::new(tokio::sync::Mutex::new(()));
    map.insert(name.to_owned(), Arc::downgrade(&m));
    m
}

impl Store {
    /// Signal `channel` with `payload` to every replica's [`ChangeListener`]
    /// (PostgreSQL; nothing on SQLite).
    pub async fn notify(&self, channel: Channel, payload: &str) -> Result<()> {
        if let crate::Pool::Postgres(pool) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel.name())
                .bind(payload)
                .execute(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }

    /// Receive the notifications of every replica on every [`Channel`] (PostgreSQL
    /// only; `None` on SQLite, where all writers are in this process).
    pub async fn listen(&self) -> Result<Option<ChangeListener>> {
        match &self.pool {
            crate::Pool::Sqlite(_) => Ok(None),
            crate::Pool::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                let names: Vec<&str> = Channel::ALL.iter().map(|c| c.name()).collect();
                listener.listen_all(names).await?;
                Ok(Some(ChangeListener { listener }))
            }
        }
    }

    /// Take the lock named `name` (waits for it). See [`NamedLock`].
    pub async fn lock_named(&self, name: &str) -> Result<NamedLock> {
        match &self.pool {
            crate::Pool::Sqlite(_) => Ok(NamedLock {
                tx: None,
                _local: Some(local_mutex(name).lock_owned().await),
            }),
            crate::Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('jira-bridge/' || $1))")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(NamedLock {
                    tx: Some(tx),
                    _local: None,
                })
            }
        }
    }
}
