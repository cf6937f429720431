//! Contract cases of time entries and the sync history, on both backends.

use chrono::Duration;
use jira_bridge_store::sync_history::{NewSyncAttempt, SyncHistoryFilter};
use jira_bridge_store::time_entries::{SyncedWorklog, TimeEntryFilter, UpsertTimeEntry};
use jira_bridge_store::{ConnectionId, PageRequest, Store, TenantId, Timestamp};

fn entry(
    tenant: &TenantId,
    con: &ConnectionId,
    source: &str,
    hash: &str,
    next: Option<Timestamp>,
) -> UpsertTimeEntry {
    UpsertTimeEntry {
        tenant_id: tenant.clone(),
        connection_id: con.clone(),
        source_id: source.into(),
        owner: Some("u1".into()),
        issue_key: "WEB-1".into(),
        started_at: Timestamp::now(),
        started_offset_s: 3600,
        time_zone: Some("Europe/Berlin".into()),
        duration_s: 600,
        comment: Some("c".into()),
        sync_mode: "auto".into(),
        content_hash: hash.into(),
        state: if next.is_some() {
            "pending"
        } else {
            "not_synced"
        }
        .into(),
        next_sync_at: next,
    }
}

pub async fn time_entries_upsert_claim_and_finish(store: &Store) {
    let t = store.create_tenant("a").await.unwrap().id;
    let other = store.create_tenant("b").await.unwrap().id;
    let con = ConnectionId::new();
    let past = Timestamp::from(chrono::Utc::now() - Duration::seconds(5));
    let mut tx = store.begin().await.unwrap();
    let a = tx
        .upsert_time_entry(&entry(&t, &con, "s1", "h1", Some(past)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Upsert by source id keeps the row.
    let mut tx = store.begin().await.unwrap();
    let a2 = tx
        .upsert_time_entry(&entry(&t, &con, "s1", "h2", Some(past)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(a.id, a2.id);
    assert_eq!(a2.content_hash, "h2");
    // Tenant scope.
    assert!(store.get_time_entry(&other, "s1").await.unwrap().is_none());
    // Claim once; a live lease is not claimed again.
    let now = Timestamp::now();
    let until = Timestamp::from(chrono::Utc::now() + Duration::seconds(60));
    let claimed = store
        .claim_due_time_entries("w1", now, until, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    assert!(store
        .claim_due_time_entries("w2", now, until, 10)
        .await
        .unwrap()
        .is_empty());
    // Finishing with a stale hash leaves it pending (content changed meanwhile).
    let mut tx = store.begin().await.unwrap();
    let w = SyncedWorklog {
        worklog_id: Some("100".into()),
        worklog_issue_key: Some("WEB-1".into()),
        synced_hash: Some("h1".into()),
        remote_updated_ms: Some(1),
    };
    let row = tx
        .finish_time_entry_sync(&a.id, &w, false)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(row.state, "pending");
    assert!(row.lease_owner.is_none());
    let mut tx = store.begin().await.unwrap();
    let w = SyncedWorklog {
        synced_hash: Some("h2".into()),
        ..w
    };
    let row = tx
        .finish_time_entry_sync(&a.id, &w, false)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(row.state, "synced");
    assert_eq!(row.worklog_id.as_deref(), Some("100"));
    assert_eq!(
        store
            .time_entries_by_worklog(&con, &["100".into()])
            .await
            .unwrap()
            .len(),
        1
    );
    let synced = store
        .list_time_entries(
            &t,
            &TimeEntryFilter {
                state: Some("synced".into()),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(synced.items.len(), 1);
    // A conflict keeps the remote version.
    assert!(store
        .mark_time_entry_conflict(&a.id, &serde_json::json!({"deleted": true}), "gone")
        .await
        .unwrap());
    let row = store.get_time_entry(&t, "s1").await.unwrap().unwrap();
    assert_eq!(row.state, "conflict");
    assert_eq!(row.remote, Some(serde_json::json!({"deleted": true})));
}

pub async fn sync_history_filters_and_pages(store: &Store) {
    let t = store.create_tenant("a").await.unwrap().id;
    let other = store.create_tenant("b").await.unwrap().id;
    for (kind, state) in [
        ("worklog.create", "succeeded"),
        ("worklog.update", "failed"),
        ("worklog.validate", "failed"),
    ] {
        store
            .record_sync_attempt(&NewSyncAttempt {
                tenant_id: t.clone(),
                kind: kind.into(),
                state: state.into(),
                subject_kind: "time_entry".into(),
                subject_id: "s1".into(),
                connection_id: None,
                issue_key: Some("WEB-1".into()),
                remote_id: None,
                job_id: None,
                error_code: None,
                error: None,
                detail: serde_json::json!({"n": 1}),
            })
            .await
            .unwrap();
    }
    let all = |f: SyncHistoryFilter, tenant: TenantId| async move {
        store
            .list_sync_history(&tenant, &f, &PageRequest::first(2))
            .await
            .unwrap()
    };
    let p = all(SyncHistoryFilter::default(), t.clone()).await;
    assert_eq!(p.items.len(), 2);
    assert!(p.next_cursor.is_some());
    assert_eq!(p.items[0].kind, "worklog.validate", "newest first");
    let p = all(
        SyncHistoryFilter {
            state: Some("failed".into()),
            ..Default::default()
        },
        t.clone(),
    )
    .await;
    assert_eq!(p.items.len(), 2);
    let p = all(
        SyncHistoryFilter {
            kind: Some("worklog.".into()),
            state: Some("succeeded".into()),
            ..Default::default()
        },
        t.clone(),
    )
    .await;
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.items[0].detail, serde_json::json!({"n": 1}));
    let p = all(
        SyncHistoryFilter {
            from: Some(Timestamp::from(chrono::Utc::now() + Duration::hours(1))),
            ..Default::default()
        },
        t.clone(),
    )
    .await;
    assert!(p.items.is_empty());
    assert!(all(SyncHistoryFilter::default(), other)
        .await
        .items
        .is_empty());
}

contract!(
    time_entries_upsert_claim_and_finish,
    sync_history_filters_and_pages
);
