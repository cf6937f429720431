//! Contract cases of connections' refresh bookkeeping, OAuth states, site selections
//! and the metadata cache, on both backends.

use chrono::{Duration, Utc};
use jira_bridge_store::connections::{NewConnection, OAuthSelection, OAuthState};
use jira_bridge_store::{ConnectionId, Store, TenantId, Timestamp};

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_db, store) = crate::sqlite().await;
                    super::$name(&store).await;
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
                    super::$name(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

contract!(
    refreshed_tokens_are_compare_and_swap_and_status_changes_once,
    oauth_states_are_consumed_once,
    selections_are_claimed_once_and_tenant_scoped,
    metadata_cache_is_replaced_and_cleared,
);

async fn oauth_connection(store: &Store, tenant: &TenantId) -> ConnectionId {
    let id = ConnectionId::new();
    store
        .insert_connection(NewConnection {
            id: id.clone(),
            tenant_id: tenant.clone(),
            kind: "cloud_oauth".into(),
            owner: None,
            name: "c".into(),
            base_url: "https://x.atlassian.net".into(),
            cloud_id: Some("cid".into()),
            site_name: None,
            account_id: None,
            secret: vec![1, 2, 3],
            secret_key_id: "k1".into(),
            scopes: vec![],
            token_expires_at: None,
            verification_status: "valid".into(),
            last_verified_at: None,
            email: None,
            account_name: None,
            deployment: Some("Cloud".into()),
            server_version: None,
        })
        .await
        .unwrap();
    id
}

pub async fn refreshed_tokens_are_compare_and_swap_and_status_changes_once(store: &Store) {
    let tenant = store.create_tenant("t").await.unwrap().id;
    let id = oauth_connection(store, &tenant).await;
    let lock = store.lock_connection_refresh(&id).await.unwrap();
    let won = store
        .store_refreshed_tokens(
            &id,
            0,
            &[9],
            "k1",
            Some(Timestamp::now()),
            Some(&["a".to_owned()]),
        )
        .await
        .unwrap()
        .unwrap();
    lock.release().await.unwrap();
    assert_eq!(won.token_version, 1);
    assert_eq!(won.secret, vec![9]);
    assert_eq!(won.scopes, vec!["a".to_owned()]);
    assert!(won.last_refreshed_at.is_some());
    let lost = store
        .store_refreshed_tokens(&id, 0, &[8], "k1", None, None)
        .await
        .unwrap();
    assert!(
        lost.is_none(),
        "a stale version never overwrites a newer pair"
    );
    let row = store.get_connection_for_system(&id).await.unwrap().unwrap();
    assert_eq!(row.secret, vec![9]);

    let first = store
        .transition_connection_status(&id, "expired", Some("revoked"))
        .await
        .unwrap();
    assert_eq!(first.unwrap().last_error.as_deref(), Some("revoked"));
    let second = store
        .transition_connection_status(&id, "expired", Some("revoked"))
        .await
        .unwrap();
    assert!(second.is_none(), "only the first writer changes the status");
}

pub async fn oauth_states_are_consumed_once(store: &Store) {
    let tenant = store.create_tenant("t").await.unwrap().id;
    let now = Utc::now();
    store
        .insert_oauth_state(&OAuthState {
            id: "h1".into(),
            tenant_id: tenant.clone(),
            owner: Some("u".into()),
            name: None,
            return_to: None,
            created_at: now,
            expires_at: now + Duration::minutes(10),
            used_at: None,
        })
        .await
        .unwrap();
    let got = store.get_oauth_state("h1").await.unwrap().unwrap();
    assert_eq!(got.tenant_id, tenant);
    assert_eq!(got.owner.as_deref(), Some("u"));
    assert!(store.consume_oauth_state("h1").await.unwrap());
    assert!(!store.consume_oauth_state("h1").await.unwrap());
    assert!(store
        .get_oauth_state("h1")
        .await
        .unwrap()
        .unwrap()
        .used_at
        .is_some());
    assert!(!store.consume_oauth_state("unknown").await.unwrap());
    let purged = store
        .purge_expired_oauth(Timestamp::from(now + Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(store.get_oauth_state("h1").await.unwrap().is_none());
}

pub async fn selections_are_claimed_once_and_tenant_scoped(store: &Store) {
    let tenant = store.create_tenant("t").await.unwrap().id;
    let other = store.create_tenant("o").await.unwrap().id;
    let now = Utc::now();
    store
        .insert_oauth_selection(&OAuthSelection {
            id: "sel_1".into(),
            tenant_id: tenant.clone(),
            owner: None,
            name: None,
            return_to: None,
            sites: serde_json::json!([{"cloud_id": "a"}, {"cloud_id": "b"}]),
            scopes: vec!["read:jira-work".into()],
            secret: vec![7; 40],
            secret_key_id: "k1".into(),
            token_expires_at: Some(now),
            created_at: now,
            expires_at: now + Duration::minutes(10),
            used_at: None,
            connection_id: None,
        })
        .await
        .unwrap();
    assert!(store
        .get_oauth_selection(&other, "sel_1")
        .await
        .unwrap()
        .is_none());
    let got = store
        .get_oauth_selection(&tenant, "sel_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.sites[1]["cloud_id"], "b");
    assert_eq!(got.secret, vec![7; 40]);
    assert!(!store
        .complete_oauth_selection(&other, "sel_1")
        .await
        .unwrap());
    assert!(store
        .complete_oauth_selection(&tenant, "sel_1")
        .await
        .unwrap());
    assert!(!store
        .complete_oauth_selection(&tenant, "sel_1")
        .await
        .unwrap());
    assert!(store
        .get_oauth_selection(&tenant, "sel_1")
        .await
        .unwrap()
        .is_none());
}

pub async fn metadata_cache_is_replaced_and_cleared(store: &Store) {
    let tenant = store.create_tenant("t").await.unwrap().id;
    let other = store.create_tenant("o").await.unwrap().id;
    let id = oauth_connection(store, &tenant).await;
    let v1 = serde_json::json!([{"key": "A"}]);
    let v2 = serde_json::json!([{"key": "B"}]);
    store
        .put_connection_metadata(&tenant, &id, "projects:", &v1)
        .await
        .unwrap();
    store
        .put_connection_metadata(&tenant, &id, "projects:", &v2)
        .await
        .unwrap();
    let (got, _) = store
        .get_connection_metadata(&tenant, &id, "projects:")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, v2);
    assert!(store
        .get_connection_metadata(&other, &id, "projects:")
        .await
        .unwrap()
        .is_none());
    store.clear_connection_metadata(&tenant, &id).await.unwrap();
    assert!(store
        .get_connection_metadata(&tenant, &id, "projects:")
        .await
        .unwrap()
        .is_none());
    // Deleting the connection deletes its cache.
    store
        .put_connection_metadata(&tenant, &id, "k", &v1)
        .await
        .unwrap();
    assert!(store.delete_connection(&tenant, &id).await.unwrap());
    assert!(store
        .get_connection_metadata(&tenant, &id, "k")
        .await
        .unwrap()
        .is_none());
}
