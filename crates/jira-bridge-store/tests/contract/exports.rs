//! Contract cases of exports and releases, on both backends.

use jira_bridge_store::connections::NewConnection;
use jira_bridge_store::exports::{ExportId, NewExport, NewRelease, ReleaseId};
use jira_bridge_store::{ConnectionId, PageRequest, Store, TenantId, Timestamp};
use serde_json::json;

async fn connection(store: &Store, tenant: &TenantId) -> ConnectionId {
    let id = ConnectionId::new();
    store
        .insert_connection(NewConnection {
            id: id.clone(),
            tenant_id: tenant.clone(),
            kind: "cloud_token".into(),
            owner: None,
            name: "Jira".into(),
            base_url: "https://example.atlassian.net".into(),
            cloud_id: None,
            site_name: None,
            account_id: None,
            secret: vec![1],
            secret_key_id: "k1".into(),
            scopes: vec![],
            token_expires_at: None,
            verification_status: "valid".into(),
            last_verified_at: Some(Timestamp::now()),
            email: None,
            account_name: None,
            deployment: Some("Cloud".into()),
            server_version: None,
        })
        .await
        .unwrap();
    id
}

pub async fn exports_follow_their_jobs_once_and_are_tenant_scoped(store: &Store) {
    let t = store.create_tenant("a").await.unwrap().id;
    let other = store.create_tenant("b").await.unwrap().id;
    let con = connection(store, &t).await;
    let id = ExportId::new();
    let e = store
        .insert_export(&NewExport {
            id: id.clone(),
            tenant_id: t.clone(),
            connection_id: con.clone(),
            project_key: "WEB".into(),
            options: json!({"update_existing": false}),
            tree: json!([{"source": "e1", "summary": "E1", "stories": []}]),
        })
        .await
        .unwrap();
    assert_eq!(e.state, "queued");
    assert_eq!(e.tree[0]["source"], "e1");
    assert!(store.get_export(&other, &id).await.unwrap().is_none());

    store.set_export_job(&t, &id, "job_1").await.unwrap();
    let e = store.get_export(&t, &id).await.unwrap().unwrap();
    assert_eq!(
        (e.state.as_str(), e.job_id.as_deref()),
        ("running", Some("job_1"))
    );

    // A state change answers true once; another job's progress changes nothing.
    let mut tx = store.begin().await.unwrap();
    assert!(!tx
        .set_export_state(&t, &id, "job_other", "succeeded", true)
        .await
        .unwrap());
    assert!(tx
        .set_export_state(&t, &id, "job_1", "succeeded", true)
        .await
        .unwrap());
    assert!(!tx
        .set_export_state(&t, &id, "job_1", "succeeded", true)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let e = store.get_export(&t, &id).await.unwrap().unwrap();
    assert!(e.finished_at.is_some());

    // One rollback job; then only its progress moves the export.
    assert!(store
        .set_export_rollback_job(&t, &id, "job_rb")
        .await
        .unwrap());
    assert!(!store
        .set_export_rollback_job(&t, &id, "job_rb2")
        .await
        .unwrap());
    let mut tx = store.begin().await.unwrap();
    assert!(!tx
        .set_export_state(&t, &id, "job_1", "failed", true)
        .await
        .unwrap());
    assert!(tx
        .set_export_state(&t, &id, "job_rb", "rolled_back", true)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let e = store.get_export(&t, &id).await.unwrap().unwrap();
    assert_eq!(e.state, "rolled_back");

    let page = store
        .list_exports(&t, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(store
        .list_exports(&other, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn releases_complete_exactly_once(store: &Store) {
    let t = store.create_tenant("a").await.unwrap().id;
    let other = store.create_tenant("b").await.unwrap().id;
    let con = connection(store, &t).await;
    let id = ReleaseId::new();
    let r = store
        .insert_release(&NewRelease {
            id: id.clone(),
            tenant_id: t.clone(),
            connection_id: con,
            config_id: "cfg_x".into(),
            version: "1.2.0".into(),
            planned_date: Some("2026-12-01".into()),
            description: None,
            platforms: json!([{"platform": "WEB"}]),
        })
        .await
        .unwrap();
    assert!(r.completed_at.is_none());
    assert_eq!(r.platforms[0]["platform"], "WEB");
    store.set_release_job(&t, &id, "job_1").await.unwrap();
    store.touch_release_checked(&t, &id).await.unwrap();
    let r = store.get_release(&t, &id).await.unwrap().unwrap();
    assert_eq!(r.job_id.as_deref(), Some("job_1"));
    assert!(r.checked_at.is_some());
    assert!(store.get_release(&other, &id).await.unwrap().is_none());

    let mut tx = store.begin().await.unwrap();
    assert!(!tx.complete_release(&other, &id).await.unwrap());
    assert!(tx.complete_release(&t, &id).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.complete_release(&t, &id).await.unwrap());
    tx.commit().await.unwrap();
    assert!(store
        .get_release(&t, &id)
        .await
        .unwrap()
        .unwrap()
        .completed_at
        .is_some());
    assert_eq!(
        store
            .list_releases(&t, &PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

crate::contract!(
    exports_follow_their_jobs_once_and_are_tenant_scoped,
    releases_complete_exactly_once,
);
