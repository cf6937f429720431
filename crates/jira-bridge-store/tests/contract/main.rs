//! The store contract: every case runs on SQLite (a temp file per test) and, when
//! `JIRA_BRIDGE_TEST_POSTGRES_URL` is set, on PostgreSQL (a fresh schema per test).
//!
//! One file per store module: it defines `pub async fn case(store: &Store)` functions
//! and ends with `contract!(case, …);`, which makes `<file>::sqlite::case` and
//! `<file>::postgres::case`. Add the file with one `mod` line here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jira_bridge_store::test_support::TestDatabase;
use jira_bridge_store::Store;

pub(crate) async fn sqlite() -> (TestDatabase, Store) {
    let db = TestDatabase::sqlite();
    let store = db.store().await.expect("sqlite store");
    (db, store)
}

pub(crate) async fn postgres() -> Option<(TestDatabase, Store)> {
    let db = TestDatabase::postgres_from_env()
        .await?
        .expect("create PostgreSQL schema");
    let store = db.store().await.expect("postgres store");
    Some((db, store))
}

/// For each case `name`, a test `sqlite::name` and a test `postgres::name` (which
/// passes trivially, saying so, when no PostgreSQL is configured).
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_db, store) = $crate::sqlite().await;
                    super::$name(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_db, store)) = $crate::postgres().await else {
                        eprintln!("JIRA_BRIDGE_TEST_POSTGRES_URL not set: PostgreSQL case skipped");
                        return;
                    };
                    super::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

mod connections;
mod console_sessions;
mod events;
mod exports;
mod foundation;
mod jobs;
mod notify;
mod worklogs;

#[tokio::test]
async fn an_in_memory_sqlite_store_keeps_its_data_across_pool_use() {
    let store = Store::connect("sqlite::memory:", &Default::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let t = store.create_tenant("mem").await.unwrap();
    // Several concurrent reads all see the same database.
    let reads = (0..8).map(|_| store.get_tenant(&t.id));
    for r in futures::future::join_all(reads).await {
        assert_eq!(r.unwrap().unwrap().name, "mem");
    }
}
