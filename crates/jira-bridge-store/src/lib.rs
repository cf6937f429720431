//! `jira-bridge-store`: the only crate of jira-bridge that speaks SQL.
//!
//! A [`Store`] is a cheap-to-clone handle on a connection pool for one of two backends:
//!
//! - **SQLite** (the embedded default): one file, WAL journal, `busy_timeout`, foreign
//!   keys on. Nothing to install.
//! - **PostgreSQL** (scale-out): any number of service replicas share one database.
//!
//! Migrations are embedded in the binary, one folder per backend
//! (`migrations/sqlite`, `migrations/postgres`), and applied by [`Store::migrate`].
//!
//! # Conventions every module follows
//!
//! - **Tenant scope.** Every function that reads or writes a tenant's rows takes the
//!   [`TenantId`] and puts it in the `WHERE` clause. Another tenant's id is simply not
//!   found ([`StoreError::NotFound`] or `None`), which the API turns into 404.
//! - **Ids** are prefixed, time-ordered strings (`ten_…`, `key_…`, `con_…`) made from
//!   UUIDv7 by the typed ids in [`ids`]. They sort by creation time, so list queries
//!   page on the id alone.
//! - **Timestamps** are UTC. Bind them as [`Timestamp`] (never a raw `DateTime`): on
//!   SQLite it is written as fixed-width text so that `<`/`>` compare correctly; on
//!   PostgreSQL it is `TIMESTAMPTZ`. Read them back as `chrono::DateTime<Utc>`.
//! - **Lists** take a [`PageRequest`] (limit + opaque cursor) and answer a [`Page`];
//!   see [`paging`].
//! - **SQL text** uses `$1, $2, …` placeholders, which both backends accept, so most
//!   queries are written once and run on either pool through the `on_pool!` macro. Where
//!   the dialects differ (locking, upserts with backend-specific syntax), match on
//!   [`Store::backend`] and write both.
//! - **SQLite write transactions** should start with a write statement, so the
//!   transaction takes the write lock at once and waits (`busy_timeout`) instead of
//!   failing later when it upgrades from reading to writing.
//! - **Secrets** arrive already sealed (`Vec<u8>` ciphertext + key id): this crate never
//!   sees plaintext. Every sealed column is listed in [`secrets::SEALED_COLUMNS`] so that
//!   key rotation can find and re-seal all of them.
//!
//! # Adding a table (jobs, links, time entries, events, …)
//!
//! 1. Add one migration per backend with the **same version** and name, e.g.
//!    `migrations/sqlite/20261201093000_jobs.sql` and
//!    `migrations/postgres/20261201093000_jobs.sql` (version = UTC date-time, so
//!    parallel branches do not collide). Never edit a migration that has been applied;
//!    change schemas by adding new ones (expand, then contract).
//! 2. Add one module file, e.g. `src/jobs.rs`, with its row types and an
//!    `impl Store { … }` block of functions, and one `pub mod jobs;` line below.
//!    New id types come from `define_id!(JobId, "job", "job");` in that file.
//!    Use `on_pool!` for shared SQL (it is in scope in every module declared below
//!    its definition in `lib.rs`; do not `use` it) and [`Store::backend`] where the
//!    dialects differ.
//!    Job claims: on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` inside an
//!    `UPDATE … RETURNING`; on SQLite an atomic `UPDATE … SET lease_owner = $1,
//!    lease_until = $2 WHERE id = (SELECT id … WHERE lease_until IS NULL OR
//!    lease_until < $3 LIMIT 1) RETURNING …` (SQLite serialises writers).
//! 3. If the table holds a sealed secret, add its column to
//!    [`secrets::SEALED_COLUMNS`].
//! 4. Add a file of cases to the contract suite (`tests/contract/<module>.rs`, one
//!    `mod` line in `tests/contract/main.rs`; see `foundation.rs`), which runs each case on
//!    SQLite and, when `JIRA_BRIDGE_TEST_POSTGRES_URL` is set, on PostgreSQL.
//!
//! # Writing a change and its event in one transaction
//!
//! A domain change and the event announcing it are committed together (the outbox
//! pattern), so no event is lost after a committed change and none is announced for a
//! change that rolled back. [`Store::begin`] opens a [`StoreTx`] on either backend;
//! inside this crate `on_tx!(tx, conn => …)` runs SQL on its connection the way
//! `on_pool!` does on the pool. A module that needs this offers a `_tx` variant of its
//! write taking `&mut StoreTx`:
//!
//! ```ignore
//! // in src/links.rs
//! impl StoreTx {
//!     pub async fn set_link_status(&mut self, tenant: &TenantId, id: &LinkId, status: &str) -> Result<bool> {
//!         let n = on_tx!(self, conn => {
//!             sqlx::query("UPDATE links SET status = $3 WHERE tenant_id = $1 AND id = $2")
//!                 .bind(tenant).bind(id).bind(status)
//!                 .execute(&mut *conn).await?.rows_affected()
//!         });
//!         Ok(n == 1)
//!     }
//! }
//!
//! // in the service
//! let mut tx = store.begin().await?;
//! tx.set_link_status(&tenant, &id, "Done").await?;
//! tx.append_event(NewEvent { tenant_id, event_type: "ticket.status_changed".into(), subject, data }).await?;
//! tx.commit().await?; // dropping `tx` instead rolls both back
//! ```
//!
//! Append the event last and keep the transaction short: appends serialise on the
//! event sequence counter until commit (that is what makes the sequence a gap-free
//! cursor). On SQLite a transaction starts with `BEGIN IMMEDIATE` (it holds the
//! single writer lock); do no network calls while one is open.

// Run the same expression on whichever pool the store holds. The expression is
// type-checked once per backend, so SQL written with `$n` placeholders and types
// that both drivers know (`String`, `i64`, `bool`, `Vec<u8>`, `Timestamp`,
// `sqlx::types::Json`) is written once.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            crate::Pool::Sqlite($pool) => $body,
            crate::Pool::Postgres($pool) => $body,
        }
    };
}

mod error;
pub mod ids;
pub mod paging;
mod time;

pub mod audit;
pub mod configs;
pub mod connections;
pub mod console_sessions;
pub mod events;
pub mod exports;
pub mod idempotency;
pub mod inbound;
pub mod jobs;
pub mod links;
pub mod notify;
pub mod secrets;
pub mod sync_history;
pub mod tenants;
pub mod time_entries;
pub mod tx;

#[cfg(feature = "test-support")]
pub mod test_support;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use error::StoreError;
pub use ids::{ApiKeyId, AuditId, ConnectionId, TenantId};
pub use paging::{Page, PageRequest};
pub use time::Timestamp;
pub use tx::StoreTx;

/// Result of every store function.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (WAL).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a database URL names (`sqlite:…` or `postgres://…` /
    /// `postgresql://…`), or `None`.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Pool settings for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest number of pooled connections (PostgreSQL; SQLite uses it for readers).
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for the lock before failing with "busy".
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle on the database. Clone it freely: clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connect to `url` (`sqlite:PATH` — the file is created if missing —,
    /// `sqlite::memory:` for a throw-away database, or `postgres://…`). Does not run
    /// migrations; see [`Store::migrate`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        match Backend::from_url(url) {
            Some(Backend::Sqlite) => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(StoreError::from_sqlx)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(options.busy_timeout)
                    .foreign_keys(true);
                // An in-memory database lives as long as its one connection: keep
                // exactly one, forever.
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let pool = if in_memory {
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    SqlitePoolOptions::new().max_connections(options.max_connections.max(1))
                };
                let pool = pool
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(Self {
                    pool: Pool::Sqlite(pool),
                })
            }
            Some(Backend::Postgres) => {
                let connect = PgConnectOptions::from_str(url).map_err(StoreError::from_sqlx)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(Self {
                    pool: Pool::Postgres(pool),
                })
            }
            None => Err(StoreError::InvalidUrl(
                "database URL must start with sqlite: or postgres://".into(),
            )),
        }
    }

    /// Which backend this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Apply every embedded migration that is not applied yet. Safe to call from
    /// several replicas at once (PostgreSQL takes an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Versions of the embedded migrations for this backend that the database has not
    /// applied yet (empty when up to date).
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        const SQL: &str = "SELECT version FROM _sqlx_migrations WHERE success = TRUE";
        let (migrator, applied) = match &self.pool {
            Pool::Sqlite(pool) => (
                &SQLITE_MIGRATOR,
                sqlx::query_scalar::<_, i64>(SQL).fetch_all(pool).await,
            ),
            Pool::Postgres(pool) => (
                &POSTGRES_MIGRATOR,
                sqlx::query_scalar::<_, i64>(SQL).fetch_all(pool).await,
            ),
        };
        let applied = match applied {
            Ok(v) => v,
            // No migration table yet: nothing applied.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(StoreError::from_sqlx(e)),
        };
        Ok(migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// A trivial round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await.map_err(StoreError::from_sqlx)?;
        });
        Ok(())
    }

    /// Close the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}
