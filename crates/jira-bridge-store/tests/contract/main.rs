//! The store contract: every case runs on SQLite (a temp file per test) and, when
//! `JIRA_BRIDGE_TEST_POSTGRES_URL` is set, on PostgreSQL (a fresh schema per test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod events;
mod jobs;

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
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_db, store) = crate::sqlite().await;
                    crate::cases::$name(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_db, store)) = crate::postgres().await else {
                        eprintln!("JIRA_BRIDGE_TEST_POSTGRES_URL not set: PostgreSQL case skipped");
                        return;
                    };
                    crate::cases::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

contract!(
    migrations_are_idempotent_and_complete,
    tenants_are_unique_by_name_and_paged,
    api_keys_are_found_by_hash_revoked_and_touched,
    api_keys_are_tenant_scoped,
    audit_entries_filter_and_page,
    connections_round_trip_and_are_tenant_scoped,
    connection_secret_replacement_is_compare_and_swap,
    sealed_secrets_are_listed_and_replaced_only_if_unchanged,
);
