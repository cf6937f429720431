use chrono::Duration;
use jira_bridge_store::console_sessions::NewConsoleSession;
use jira_bridge_store::tenants::NewApiKey;
use jira_bridge_store::{Store, Timestamp};

fn key(hash: &str) -> NewApiKey {
    NewApiKey {
        name: "console".into(),
        prefix: format!("jbk_{}", &hash[..4]),
        key_hash: hash.into(),
        scopes: vec!["*".into()],
    }
}

pub async fn console_sessions_expire_end_and_follow_their_key(store: &Store) {
    let (tenant, k) = store
        .create_tenant_with_key("console", key("aaaa1111"))
        .await
        .unwrap();
    let now = Timestamp::now();
    let later = |mins: i64| Timestamp::from(now.as_datetime() + Duration::minutes(mins));
    let new = |id: &str, expires_at| NewConsoleSession {
        id_hash: id.into(),
        tenant_id: tenant.id.clone(),
        api_key_id: k.id.clone(),
        csrf_token: format!("csrf-{id}"),
        expires_at,
    };
    store
        .create_console_session(&new("s1", later(60)))
        .await
        .unwrap();
    store
        .create_console_session(&new("s2", later(1)))
        .await
        .unwrap();

    let got = store
        .find_console_session("s1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.tenant_id, tenant.id);
    assert_eq!(got.api_key_id, k.id);
    assert_eq!(got.csrf_token, "csrf-s1");
    assert!(store
        .find_console_session("nope", now)
        .await
        .unwrap()
        .is_none());

    // Expired at a later instant, and purged.
    assert!(store
        .find_console_session("s2", later(2))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .purge_expired_console_sessions(later(2))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .find_console_session("s2", now)
        .await
        .unwrap()
        .is_none());

    // Sign-out deletes it once.
    assert!(store.delete_console_session("s1").await.unwrap());
    assert!(!store.delete_console_session("s1").await.unwrap());

    // A revoked key ends its sessions.
    store
        .create_console_session(&new("s3", later(60)))
        .await
        .unwrap();
    store.revoke_api_key(&tenant.id, &k.id).await.unwrap();
    assert!(store
        .find_console_session("s3", now)
        .await
        .unwrap()
        .is_none());
}

crate::contract!(console_sessions_expire_end_and_follow_their_key);
