//! Contract cases of the events outbox, subscriptions and deliveries, on both backends.

use chrono::Duration;
use jira_bridge_store::events::{
    AttemptResult, DeliveryState, NewAttempt, NewEvent, NewSubscription, NewSubscriptionSecret,
    SubscriptionId, SubscriptionPatch, SubscriptionSecretId,
};
use jira_bridge_store::{Backend, PageRequest, Store, StoreError, TenantId, Timestamp};

contract!(
    events_get_increasing_seq_and_page_per_tenant,
    rolled_back_transaction_leaves_no_event_and_no_change,
    append_fans_out_to_matching_enabled_subscriptions,
    subscriptions_round_trip_patch_and_are_tenant_scoped,
    secret_rotation_keeps_previous_until_grace_ends,
    claims_are_exclusive_and_finish_needs_the_lease,
    failures_retry_then_exhaust_and_track_failing_streak,
    disabling_exhausts_outstanding_deliveries_and_retry_requeues,
    concurrent_appends_commit_in_seq_order,
    sealed_subscription_secrets_are_listed_for_rotation,
    commits_of_appends_are_announced,
);

fn event(tenant: &TenantId, ty: &str, n: i64) -> NewEvent {
    NewEvent {
        tenant_id: tenant.clone(),
        event_type: ty.into(),
        subject: Some(format!("tkt_{n}")),
        data: serde_json::json!({"n": n}),
    }
}

fn secret(bytes: &[u8]) -> NewSubscriptionSecret {
    NewSubscriptionSecret {
        id: SubscriptionSecretId::new(),
        secret: bytes.to_vec(),
        secret_key_id: "k1".into(),
    }
}

async fn subscribe(store: &Store, tenant: &TenantId, types: &[&str]) -> SubscriptionId {
    let id = SubscriptionId::new();
    store
        .create_subscription(NewSubscription {
            id: id.clone(),
            tenant_id: tenant.clone(),
            url: "https://hooks.example.com/in".into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            description: Some("test".into()),
            secret: secret(b"sealed-1"),
        })
        .await
        .unwrap();
    id
}

fn attempt(status: Option<i32>, error: Option<&str>) -> NewAttempt {
    NewAttempt {
        attempted_at: Timestamp::now(),
        status_code: status,
        duration_ms: 3,
        error: error.map(str::to_owned),
        response_snippet: Some("body".into()),
    }
}

fn later(secs: i64) -> Timestamp {
    Timestamp::from(Timestamp::now().as_datetime() + Duration::seconds(secs))
}

pub async fn events_get_increasing_seq_and_page_per_tenant(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let b = store.create_tenant("b").await.unwrap().id;
    let mut seqs = Vec::new();
    for i in 0..5 {
        let t = if i % 2 == 0 { &a } else { &b };
        seqs.push(
            store
                .append_event(event(t, "ticket.created", i))
                .await
                .unwrap()
                .event
                .seq,
        );
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(store.last_event_seq().await.unwrap(), seqs[4]);

    let all_a = store.list_events(&a, None, 100).await.unwrap();
    assert_eq!(
        all_a.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[0], seqs[2], seqs[4]]
    );
    assert!(all_a.iter().all(|e| e.tenant_id == a));
    assert_eq!(all_a[1].data, serde_json::json!({"n": 2}));
    assert_eq!(all_a[1].subject.as_deref(), Some("tkt_2"));
    assert!(all_a[0].id.as_str().starts_with("evt_"));

    let page = store.list_events(&a, Some(seqs[0]), 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, seqs[2]);
    let rest = store.list_events(&a, Some(seqs[2]), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[4]]
    );

    let got = store.get_event(&a, &all_a[0].id).await.unwrap().unwrap();
    assert_eq!(got, all_a[0]);
    assert!(
        store.get_event(&b, &all_a[0].id).await.unwrap().is_none(),
        "other tenant"
    );
}

pub async fn rolled_back_transaction_leaves_no_event_and_no_change(store: &Store) {
    let t = store.create_tenant("a").await.unwrap().id;
    let sub = subscribe(store, &t, &[]).await;

    let mut tx = store.begin().await.unwrap();
    tx.disable_subscription(&t, &sub, "testing").await.unwrap();
    tx.append_event(event(&t, "subscription.disabled", 1))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(store.list_events(&t, None, 10).await.unwrap().is_empty());
    assert!(
        store
            .get_subscription(&t, &sub)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // Dropped without commit: rolled back as well.
    {
        let mut tx = store.begin().await.unwrap();
        tx.append_event(event(&t, "ticket.created", 2))
            .await
            .unwrap();
    }
    assert!(store.list_events(&t, None, 10).await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    assert!(tx.disable_subscription(&t, &sub, "testing").await.unwrap());
    tx.append_event(event(&t, "subscription.disabled", 3))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.list_events(&t, None, 10).await.unwrap().len(), 1);
    let s = store.get_subscription(&t, &sub).await.unwrap().unwrap();
    assert!(!s.enabled);
    assert_eq!(s.disabled_reason.as_deref(), Some("testing"));
}

pub async fn append_fans_out_to_matching_enabled_subscriptions(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let b = store.create_tenant("b").await.unwrap().id;
    let all = subscribe(store, &a, &[]).await;
    let only_jobs = subscribe(store, &a, &["job.finished"]).await;
    let disabled = subscribe(store, &a, &[]).await;
    let other_tenant = subscribe(store, &b, &[]).await;
    store
        .update_subscription(
            &a,
            &disabled,
            SubscriptionPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let first = store
        .append_event(event(&a, "ticket.created", 1))
        .await
        .unwrap();
    assert_eq!(first.deliveries, 1);
    let second = store
        .append_event(event(&a, "job.finished", 2))
        .await
        .unwrap();
    assert_eq!(second.deliveries, 2);

    let p = PageRequest::first(10);
    let to_all = store.list_deliveries(&a, &all, &p).await.unwrap().items;
    assert_eq!(to_all.len(), 2);
    assert_eq!(to_all[0].0.event_id, second.event.id, "newest first");
    assert_eq!(to_all[0].0.event_type, "job.finished");
    assert_eq!(to_all[0].0.state().unwrap(), DeliveryState::Pending);
    assert!(to_all[0].1.is_empty(), "no attempts yet");
    let to_jobs = store
        .list_deliveries(&a, &only_jobs, &p)
        .await
        .unwrap()
        .items;
    assert_eq!(to_jobs.len(), 1);
    assert!(store
        .list_deliveries(&a, &disabled, &p)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_deliveries(&b, &other_tenant, &p)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(
        store
            .list_deliveries(&b, &all, &p)
            .await
            .unwrap()
            .items
            .is_empty(),
        "another tenant sees none of them"
    );
}

pub async fn subscriptions_round_trip_patch_and_are_tenant_scoped(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let b = store.create_tenant("b").await.unwrap().id;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(subscribe(store, &a, &["ticket.created"]).await);
    }
    let s = store.get_subscription(&a, &made[0]).await.unwrap().unwrap();
    assert_eq!(s.event_types, vec!["ticket.created"]);
    assert!(s.enabled && s.failing_since.is_none());
    assert!(store
        .get_subscription(&b, &made[0])
        .await
        .unwrap()
        .is_none());

    let p1 = store
        .list_subscriptions(&a, &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(
        p1.items.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![made[2].clone(), made[1].clone()]
    );
    let next = PageRequest::new(Some(2), p1.next_cursor.as_deref()).unwrap();
    let p2 = store.list_subscriptions(&a, &next).await.unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_cursor.is_none());
    assert!(store
        .list_subscriptions(&b, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());

    let patched = store
        .update_subscription(
            &a,
            &made[0],
            SubscriptionPatch {
                url: Some("https://other.example.com/x".into()),
                event_types: Some(vec![]),
                description: Some(None),
                enabled: Some(false),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(patched.url, "https://other.example.com/x");
    assert!(patched.event_types.is_empty() && patched.description.is_none() && !patched.enabled);
    let untouched = store
        .update_subscription(&a, &made[0], SubscriptionPatch::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched.url, patched.url);
    assert!(!untouched.enabled);
    assert!(store
        .update_subscription(
            &b,
            &made[0],
            SubscriptionPatch {
                enabled: Some(true),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .is_none());

    assert!(!store.delete_subscription(&b, &made[0]).await.unwrap());
    assert!(store.delete_subscription(&a, &made[0]).await.unwrap());
    assert!(store
        .get_subscription(&a, &made[0])
        .await
        .unwrap()
        .is_none());
}

pub async fn secret_rotation_keeps_previous_until_grace_ends(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let b = store.create_tenant("b").await.unwrap().id;
    let sub = subscribe(store, &a, &[]).await;
    let now = Timestamp::now();
    let first = store.subscription_secrets(&sub, now).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].expires_at.is_none());
    assert!(
        !format!("{:?}", first[0]).contains("sealed-1"),
        "Debug redacts"
    );

    let new = secret(b"sealed-2");
    assert!(!store
        .rotate_subscription_secret(&b, &sub, &new, later(60))
        .await
        .unwrap());
    assert!(store
        .rotate_subscription_secret(&a, &sub, &new, later(60))
        .await
        .unwrap());
    let both = store
        .subscription_secrets(&sub, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].secret, b"sealed-2", "current first");
    assert!(both[0].expires_at.is_none());
    assert_eq!(both[1].secret, b"sealed-1");
    assert!(both[1].expires_at.is_some());

    // After the grace period only the new one is valid.
    let after = store.subscription_secrets(&sub, later(120)).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].secret, b"sealed-2");
}

pub async fn claims_are_exclusive_and_finish_needs_the_lease(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let sub = subscribe(store, &a, &[]).await;
    for i in 0..4 {
        store
            .append_event(event(&a, "ticket.created", i))
            .await
            .unwrap();
    }
    let now = Timestamp::now();
    let w1 = store
        .claim_deliveries("w1", now, later(30), 3)
        .await
        .unwrap();
    let w2 = store
        .claim_deliveries("w2", now, later(30), 3)
        .await
        .unwrap();
    assert_eq!(w1.len(), 3);
    assert_eq!(w2.len(), 1, "only the unclaimed one");
    assert!(w1
        .iter()
        .all(|t| !w2.iter().any(|u| u.delivery_id == t.delivery_id)));
    assert!(
        w1.windows(2).all(|w| w[0].event_seq < w[1].event_seq),
        "in event order"
    );
    assert_eq!(w1[0].url, "https://hooks.example.com/in");
    assert_eq!(w1[0].subscription_id, sub);
    assert_eq!(w1[0].data, serde_json::json!({"n": 0}));
    assert!(store
        .claim_deliveries("w3", now, later(30), 10)
        .await
        .unwrap()
        .is_empty());

    // Someone else's lease: nothing recorded.
    let t = &w1[0];
    let lost = store
        .finish_delivery(
            &t.delivery_id,
            "w2",
            attempt(Some(200), None),
            AttemptResult::Succeeded,
        )
        .await
        .unwrap();
    assert!(!lost.recorded);
    let ok = store
        .finish_delivery(
            &t.delivery_id,
            "w1",
            attempt(Some(204), None),
            AttemptResult::Succeeded,
        )
        .await
        .unwrap();
    assert!(ok.recorded && ok.failing_since.is_none());
    let again = store
        .finish_delivery(
            &t.delivery_id,
            "w1",
            attempt(Some(204), None),
            AttemptResult::Succeeded,
        )
        .await
        .unwrap();
    assert!(!again.recorded, "a delivery succeeds once");
    let d = store
        .get_delivery(&a, &t.delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state().unwrap(), DeliveryState::Succeeded);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_status, Some(204));
    let attempts = store
        .list_delivery_attempts(&a, &t.delivery_id)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].attempt, 1);
    assert_eq!(attempts[0].response_snippet.as_deref(), Some("body"));

    // An expired lease makes the delivery claimable by another worker, and the first
    // worker can no longer finish it.
    let stale = &w1[1];
    let much_later = later(60);
    let taken = store
        .claim_deliveries(
            "w4",
            much_later,
            Timestamp::from(much_later.as_datetime() + Duration::seconds(30)),
            10,
        )
        .await
        .unwrap();
    assert!(
        taken.iter().any(|t| t.delivery_id == stale.delivery_id),
        "{taken:?}"
    );
    let late = store
        .finish_delivery(
            &stale.delivery_id,
            "w1",
            attempt(Some(200), None),
            AttemptResult::Succeeded,
        )
        .await
        .unwrap();
    assert!(!late.recorded);
    store
        .release_delivery(&stale.delivery_id, "w4")
        .await
        .unwrap();
    assert!(store
        .claim_deliveries("w5", Timestamp::now(), later(30), 10)
        .await
        .unwrap()
        .iter()
        .any(|t| t.delivery_id == stale.delivery_id));
}

pub async fn failures_retry_then_exhaust_and_track_failing_streak(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let sub = subscribe(store, &a, &[]).await;
    store
        .append_event(event(&a, "ticket.created", 1))
        .await
        .unwrap();
    let task = store
        .claim_deliveries("w", Timestamp::now(), later(30), 1)
        .await
        .unwrap()
        .remove(0);
    let first_fail = attempt(Some(500), Some("HTTP 500"));
    let started = first_fail.attempted_at;
    let f = store
        .finish_delivery(
            &task.delivery_id,
            "w",
            first_fail,
            AttemptResult::RetryAt(later(10)),
        )
        .await
        .unwrap();
    assert!(f.recorded);
    assert_eq!(f.failing_since, Some(started.as_datetime()));
    let d = store
        .get_delivery(&a, &task.delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state().unwrap(), DeliveryState::Failed);
    assert!(d.next_attempt_at.is_some());
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(
        store.next_delivery_due().await.unwrap(),
        d.next_attempt_at,
        "the worker knows when to wake"
    );

    // Not due yet.
    assert!(store
        .claim_deliveries("w", Timestamp::now(), later(30), 1)
        .await
        .unwrap()
        .is_empty());
    let t2 = store
        .claim_deliveries("w", later(11), later(60), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(t2.attempts, 1);
    let f2 = store
        .finish_delivery(
            &t2.delivery_id,
            "w",
            attempt(None, Some("timed out")),
            AttemptResult::Exhausted,
        )
        .await
        .unwrap();
    assert_eq!(
        f2.failing_since,
        Some(started.as_datetime()),
        "the streak keeps its start"
    );
    let d = store
        .get_delivery(&a, &task.delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state().unwrap(), DeliveryState::Exhausted);
    assert_eq!(d.attempts, 2);
    assert!(store.next_delivery_due().await.unwrap().is_none());
    assert!(store
        .claim_deliveries("w", later(1000), later(2000), 1)
        .await
        .unwrap()
        .is_empty());

    let listed = store
        .list_deliveries(&a, &sub, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    let attempts = &listed[0].1;
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(attempts[0].status_code, Some(500));
    assert_eq!(attempts[1].status_code, None);
    assert_eq!(attempts[1].error.as_deref(), Some("timed out"));
    let s = store.get_subscription(&a, &sub).await.unwrap().unwrap();
    assert_eq!(s.failing_since, Some(started.as_datetime()));

    // A success ends the streak.
    store
        .append_event(event(&a, "ticket.created", 2))
        .await
        .unwrap();
    let t3 = store
        .claim_deliveries("w", Timestamp::now(), later(30), 1)
        .await
        .unwrap()
        .remove(0);
    let f3 = store
        .finish_delivery(
            &t3.delivery_id,
            "w",
            attempt(Some(200), None),
            AttemptResult::Succeeded,
        )
        .await
        .unwrap();
    assert!(f3.failing_since.is_none());
    assert!(store
        .get_subscription(&a, &sub)
        .await
        .unwrap()
        .unwrap()
        .failing_since
        .is_none());
}

pub async fn disabling_exhausts_outstanding_deliveries_and_retry_requeues(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let b = store.create_tenant("b").await.unwrap().id;
    let sub = subscribe(store, &a, &[]).await;
    store
        .append_event(event(&a, "ticket.created", 1))
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(tx
        .disable_subscription(&a, &sub, "failing for 5 days")
        .await
        .unwrap());
    assert!(!tx.disable_subscription(&a, &sub, "again").await.unwrap());
    assert!(!tx
        .disable_subscription(&b, &sub, "other tenant")
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let d = &store
        .list_deliveries(&a, &sub, &PageRequest::first(10))
        .await
        .unwrap()
        .items[0]
        .0;
    assert_eq!(d.state().unwrap(), DeliveryState::Exhausted);
    assert!(d
        .last_error
        .as_deref()
        .unwrap()
        .contains("failing for 5 days"));
    assert!(store
        .claim_deliveries("w", later(1), later(30), 10)
        .await
        .unwrap()
        .is_empty());

    // Manual retry: re-queued, but not sent while the subscription is disabled.
    assert!(
        store
            .retry_delivery(&b, &sub, &d.id)
            .await
            .unwrap()
            .is_none(),
        "other tenant"
    );
    let r = store
        .retry_delivery(&a, &sub, &d.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.state().unwrap(), DeliveryState::Pending);
    assert!(store
        .claim_deliveries("w", later(1), later(30), 10)
        .await
        .unwrap()
        .is_empty());
    let s = store
        .update_subscription(
            &a,
            &sub,
            SubscriptionPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(s.enabled && s.disabled_reason.is_none());
    let claimed = store
        .claim_deliveries("w", later(1), later(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_id, d.id);
}

pub async fn concurrent_appends_commit_in_seq_order(store: &Store) {
    // Readers page by `seq > cursor`. For that to never skip an event, an event with
    // a smaller seq must never become visible after one with a larger seq. Run
    // appenders concurrently while a reader follows the stream with a cursor; the
    // reader must end up with every event exactly once.
    let a = store.create_tenant("a").await.unwrap().id;
    let writers = 4;
    let per_writer = 25;
    let mut handles = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let a = a.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let mut tx = store.begin().await.unwrap();
                tx.append_event(event(&a, "job.progress", w * 1000 + i))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
                tx.commit().await.unwrap();
            }
        }));
    }
    let reader = {
        let store = store.clone();
        let a = a.clone();
        tokio::spawn(async move {
            let total = (writers * per_writer) as usize;
            let mut seen = Vec::new();
            let mut cursor = None;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while seen.len() < total && std::time::Instant::now() < deadline {
                let page = store.list_events(&a, cursor, 7).await.unwrap();
                if let Some(last) = page.last() {
                    cursor = Some(last.seq);
                }
                seen.extend(page.into_iter().map(|e| e.seq));
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    for h in handles {
        h.await.unwrap();
    }
    let seen = reader.await.unwrap();
    let all: Vec<i64> = store
        .list_events(&a, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all.len(), (writers * per_writer) as usize);
    assert_eq!(
        seen, all,
        "the cursor reader saw every event once, in order"
    );
}

pub async fn sealed_subscription_secrets_are_listed_for_rotation(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let sub = subscribe(store, &a, &[]).await;
    let listed = store.list_sealed_secrets(None).await.unwrap();
    let mine: Vec<_> = listed
        .iter()
        .filter(|s| s.location.table == "subscription_secrets")
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].ciphertext, b"sealed-1");
    let current = &store
        .subscription_secrets(&sub, Timestamp::now())
        .await
        .unwrap()[0];
    assert_eq!(mine[0].row_id, current.id.as_str());
    assert!(store
        .replace_sealed_secret(mine[0], b"resealed", "k2")
        .await
        .unwrap());
    let after = &store
        .subscription_secrets(&sub, Timestamp::now())
        .await
        .unwrap()[0];
    assert_eq!(after.secret, b"resealed");
    assert_eq!(after.secret_key_id, "k2");
    let none: Result<_, StoreError> = store.list_sealed_secrets(Some("k2")).await;
    assert!(none
        .unwrap()
        .iter()
        .all(|s| s.location.table != "subscription_secrets"));
}

pub async fn commits_of_appends_are_announced(store: &Store) {
    let a = store.create_tenant("a").await.unwrap().id;
    let mut local = jira_bridge_store::events::local_commits();
    local.borrow_and_update();
    let listener = store.listen_events().await.unwrap();
    assert_eq!(listener.is_some(), store.backend() == Backend::Postgres);

    let mut tx = store.begin().await.unwrap();
    let appended = tx
        .append_event(event(&a, "ticket.created", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        local.has_changed().unwrap(),
        "this process's waiters are woken"
    );

    if let Some(mut listener) = listener {
        // Other replicas hear of it through NOTIFY, sent at commit. (Other tests'
        // schemas share the database, so skip their notifications.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let got = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv())
                .await
                .expect("a notification")
                .unwrap();
            if got == Some(appended.event.seq) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no notification for our append"
            );
        }
    }
}
