//! Throw-away databases for tests (feature `test-support`).
//!
//! [`TestDatabase::sqlite`] makes a temp directory with a fresh SQLite file;
//! [`TestDatabase::postgres`] makes a fresh schema in the PostgreSQL database at the
//! given URL and points the connection's `search_path` at it. Both are removed when
//! the value is dropped. [`TestDatabase::from_env`] picks PostgreSQL when
//! `JIRA_BRIDGE_TEST_POSTGRES_URL` is set.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{Backend, Store, StoreError, StoreOptions};

/// Environment variable naming the PostgreSQL server tests may use.
pub const POSTGRES_URL_ENV: &str = "JIRA_BRIDGE_TEST_POSTGRES_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh SQLite file in a temp directory.
    pub fn sqlite() -> Self {
        #[allow(clippy::expect_used)]
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        Self {
            url: format!("sqlite:{}", path.display()),
            backend: Backend::Sqlite,
            dir: Some(dir),
            schema: None,
        }
    }

    /// A fresh schema in the PostgreSQL database at `admin_url`.
    pub async fn postgres(admin_url: &str) -> Result<Self, StoreError> {
        let schema = format!("jbtest_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnectOptions::from_str(admin_url)?.connect().await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        Ok(Self {
            url: format!("{admin_url}{sep}options=-c%20search_path%3D{schema}"),
            backend: Backend::Postgres,
            dir: None,
            schema: Some((admin_url.to_owned(), schema)),
        })
    }

    /// PostgreSQL when [`POSTGRES_URL_ENV`] is set, SQLite otherwise.
    pub async fn from_env() -> Result<Self, StoreError> {
        match std::env::var(POSTGRES_URL_ENV) {
            Ok(url) if !url.is_empty() => Self::postgres(&url).await,
            _ => Ok(Self::sqlite()),
        }
    }

    /// PostgreSQL if [`POSTGRES_URL_ENV`] is set, else `None`.
    pub async fn postgres_from_env() -> Option<Result<Self, StoreError>> {
        match std::env::var(POSTGRES_URL_ENV) {
            Ok(url) if !url.is_empty() => Some(Self::postgres(&url).await),
            _ => None,
        }
    }

    /// The database URL (for a service's configuration).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Directory of the SQLite file (SQLite only).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// Connect and migrate.
    pub async fn store(&self) -> Result<Store, StoreError> {
        let options = StoreOptions {
            max_connections: 5,
            ..StoreOptions::default()
        };
        let store = Store::connect(&self.url, &options).await?;
        store.migrate().await?;
        Ok(store)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, schema)) = self.schema.take() {
            // Drop may run inside an async runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(opts) = PgConnectOptions::from_str(&admin_url) {
                        if let Ok(mut conn) = opts.connect().await {
                            // A service still running in the dropping test's runtime
                            // (blocked by this very drop) can hold locks on the
                            // schema's tables: give up after a while rather than wait
                            // for ever (the schema is then left behind).
                            let _ = sqlx::query("SET lock_timeout = '15s'")
                                .execute(&mut conn)
                                .await;
                            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                                .execute(&mut conn)
                                .await;
                            let _ = conn.close().await;
                        }
                    }
                });
            })
            .join();
        }
    }
}
