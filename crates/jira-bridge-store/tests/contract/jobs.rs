//! Contract cases for jobs and job items, on SQLite and (when configured) PostgreSQL.

use std::collections::HashSet;

use chrono::Duration;
use jira_bridge_store::jobs::{
    ClaimRequest, FinishOutcome, ItemError, ItemFinish, ItemState, JobItem, JobState, KindClaim,
    NewJob, NewJobItem,
};
use jira_bridge_store::{PageRequest, Store, StoreError, TenantId, Timestamp};
use serde_json::json;

crate::contract!(
    jobs_are_created_once_per_idempotency_key_and_tenant_scoped,
    job_items_page_in_order_and_filter_by_state,
    claims_take_batches_of_one_kind_in_order,
    expired_leases_are_taken_over_and_stale_workers_fenced,
    retryable_failures_wait_for_backoff_then_exhaust,
    held_children_are_released_only_when_the_parent_succeeds,
    retry_reruns_failed_items_only,
    cancel_stops_pending_and_held_items,
    heartbeat_extends_only_the_owners_leases,
    release_gives_items_back_without_counting_the_attempt,
    claims_by_group_take_one_group_at_a_time,
    concurrent_claimers_never_get_the_same_item,
);

fn at(base: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from(base.as_datetime() + Duration::seconds(secs))
}

fn items(n: usize) -> Vec<NewJobItem> {
    (0..n)
        .map(|i| NewJobItem {
            item_key: Some(format!("src-{i}")),
            ..NewJobItem::new(json!({ "n": i }))
        })
        .collect()
}

fn job(tenant: &TenantId, kind: &str, items: Vec<NewJobItem>) -> NewJob {
    NewJob {
        tenant_id: tenant.clone(),
        kind: kind.into(),
        payload: json!({"defaults": {"project": "OPS"}}),
        payload_version: 1,
        idempotency_key: None,
        connection_id: None,
        max_attempts: 3,
        items,
    }
}

fn kinds(kind: &str, limit: u32) -> Vec<KindClaim> {
    vec![KindClaim {
        kind: kind.into(),
        limit,
        same_group: false,
    }]
}

async fn claim(
    store: &Store,
    owner: &str,
    kinds: &[KindClaim],
    now: Timestamp,
) -> Option<(jira_bridge_store::jobs::Job, Vec<JobItem>)> {
    store
        .claim_job_items(&ClaimRequest {
            owner,
            kinds,
            lease_until: at(now, 30),
            now,
        })
        .await
        .unwrap()
        .map(|b| (b.job, b.items))
}

fn succeed(item: &JobItem) -> ItemFinish {
    ItemFinish {
        id: item.id.clone(),
        lease_epoch: item.lease_epoch,
        outcome: FinishOutcome::Succeeded {
            result: json!({"key": format!("OPS-{}", item.seq + 1)}),
        },
    }
}

fn fail(item: &JobItem, retry_at: Option<Timestamp>) -> ItemFinish {
    ItemFinish {
        id: item.id.clone(),
        lease_epoch: item.lease_epoch,
        outcome: FinishOutcome::Failed {
            error: ItemError::new("jira_rejected", "priority is invalid")
                .with_field("priority")
                .with_jira(json!({"errorMessages": [], "errors": {"priority": "invalid"}})),
            retry_at,
        },
    }
}

async fn tenant(store: &Store, name: &str) -> TenantId {
    store.create_tenant(name).await.unwrap().id
}

pub async fn jobs_are_created_once_per_idempotency_key_and_tenant_scoped(store: &Store) {
    let t1 = tenant(store, "one").await;
    let t2 = tenant(store, "two").await;
    let now = Timestamp::now();
    let mut new = job(&t1, "bulk", items(3));
    new.idempotency_key = Some("req-1".into());
    new.items[2].depends_on = Some(0);
    let first = store.create_job(new.clone(), now).await.unwrap();
    assert!(first.created);
    let j = &first.job;
    assert!(j.id.as_str().starts_with("job_"));
    assert_eq!(j.state, JobState::Queued);
    assert_eq!((j.counts.total, j.counts.pending, j.counts.held), (3, 2, 1));
    assert_eq!(j.payload, json!({"defaults": {"project": "OPS"}}));
    assert!(j.started_at.is_none() && j.finished_at.is_none());

    let mut again = new.clone();
    again.items = items(10);
    let second = store.create_job(again, now).await.unwrap();
    assert!(!second.created, "same key: the existing job");
    assert_eq!(second.job.id, j.id);
    assert_eq!(second.job.counts.total, 3);

    let mut other = new.clone();
    other.tenant_id = t2.clone();
    let theirs = store.create_job(other, now).await.unwrap();
    assert!(theirs.created, "idempotency keys are per tenant");
    assert_ne!(theirs.job.id, j.id);

    assert!(store.get_job(&t2, &j.id).await.unwrap().is_none());
    assert_eq!(store.get_job(&t1, &j.id).await.unwrap().unwrap().id, j.id);
    let listed = store
        .list_job_items(&t2, &j.id, None, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(
        listed.items.is_empty(),
        "another tenant's items are invisible"
    );
    assert!(store.cancel_job(&t2, &j.id, now).await.unwrap().is_none());
    assert!(store
        .retry_failed_job_items(&t2, &j.id, now)
        .await
        .unwrap()
        .is_none());

    let mut bad = job(&t1, "bulk", items(2));
    bad.items[0].depends_on = Some(1);
    let refused = store.create_job(bad, now).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );

    let empty = store
        .create_job(job(&t1, "bulk", vec![]), now)
        .await
        .unwrap();
    assert_eq!(empty.job.state, JobState::Succeeded);
    assert!(empty.job.finished_at.is_some());
}

pub async fn job_items_page_in_order_and_filter_by_state(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let j = store
        .create_job(job(&t, "bulk", items(5)), now)
        .await
        .unwrap()
        .job;
    let mut seqs = Vec::new();
    let mut page = PageRequest::new(Some(2), None).unwrap();
    loop {
        let p = store.list_job_items(&t, &j.id, None, &page).await.unwrap();
        assert!(p.items.len() <= 2);
        seqs.extend(p.items.iter().map(|i| i.seq));
        match p.next_cursor {
            Some(c) => page = PageRequest::new(Some(2), Some(&c)).unwrap(),
            None => break,
        }
    }
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);

    let (_, claimed) = claim(store, "w1", &kinds("bulk", 2), now).await.unwrap();
    let running = store
        .list_job_items(&t, &j.id, Some(ItemState::Running), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        running
            .items
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>(),
        claimed.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
    );
    let pending = store
        .list_job_items(&t, &j.id, Some(ItemState::Pending), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        pending.items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(pending.items[0].item_key.as_deref(), Some("src-2"));
    assert_eq!(pending.items[0].payload, json!({"n": 2}));
    let bogus = PageRequest::new(Some(2), Some("djE6eHl6")); // "v1:xyz"
    let listed = store.list_job_items(&t, &j.id, None, &bogus.unwrap()).await;
    assert!(
        matches!(listed, Err(StoreError::InvalidCursor)),
        "{listed:?}"
    );
}

pub async fn claims_take_batches_of_one_kind_in_order(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let a = store
        .create_job(job(&t, "a", items(5)), now)
        .await
        .unwrap()
        .job;
    let b = store
        .create_job(job(&t, "b", items(2)), now)
        .await
        .unwrap()
        .job;

    let (ja, first) = claim(store, "w1", &kinds("a", 3), now).await.unwrap();
    assert_eq!(ja.id, a.id);
    assert_eq!(
        first.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for i in &first {
        assert_eq!(i.state, ItemState::Running);
        assert_eq!(i.attempts, 1);
        assert_eq!(i.lease_epoch, 1);
        assert_eq!(i.lease_owner.as_deref(), Some("w1"));
        assert_eq!(i.lease_until, Some(at(now, 30).as_datetime()));
    }
    assert_eq!(ja.state, JobState::Running);
    assert_eq!((ja.counts.running, ja.counts.pending), (3, 2));
    assert!(ja.started_at.is_some());

    let (_, second) = claim(store, "w2", &kinds("a", 3), now).await.unwrap();
    assert_eq!(second.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![3, 4]);
    assert!(claim(store, "w1", &kinds("a", 3), now).await.is_none());
    assert!(claim(store, "w1", &kinds("c", 3), now).await.is_none());

    let (jb, bs) = claim(store, "w1", &kinds("b", 10), now).await.unwrap();
    assert_eq!((jb.id, bs.len()), (b.id, 2));

    // Finish all of a: counts and state follow, atomically with the items.
    let all: Vec<_> = first.iter().chain(second.iter()).map(succeed).collect();
    let done = store
        .finish_job_items(&a.id, "w1", &all[..3], now)
        .await
        .unwrap();
    assert!(done.lost.is_empty());
    assert_eq!((done.job.counts.succeeded, done.job.counts.running), (3, 2));
    let lost = store
        .finish_job_items(&a.id, "w1", &all[3..], now)
        .await
        .unwrap();
    assert_eq!(lost.lost.len(), 2, "w2's items cannot be finished by w1");
    let done = store
        .finish_job_items(&a.id, "w2", &all[3..], now)
        .await
        .unwrap();
    assert_eq!(done.job.state, JobState::Succeeded);
    assert_eq!(done.job.counts.succeeded, 5);
    assert!(done.job.finished_at.is_some());
    assert_eq!(
        store.count_job_items(&t, &a.id).await.unwrap(),
        done.job.counts
    );
    let item = store.get_job_item(&t, &first[0].id).await.unwrap().unwrap();
    assert_eq!(item.result, Some(json!({"key": "OPS-1"})));
    assert!(item.lease_owner.is_none());
}

pub async fn expired_leases_are_taken_over_and_stale_workers_fenced(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let j = store
        .create_job(job(&t, "a", items(2)), now)
        .await
        .unwrap()
        .job;
    let (_, crashed) = claim(store, "dead", &kinds("a", 10), now).await.unwrap();
    assert_eq!(crashed.len(), 2);
    assert!(claim(store, "w2", &kinds("a", 10), at(now, 29))
        .await
        .is_none());

    let expired = store.expired_job_leases(at(now, 31), 10).await.unwrap();
    assert_eq!(expired.len(), 2);

    let (_, resumed) = claim(store, "w2", &kinds("a", 10), at(now, 31))
        .await
        .unwrap();
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0].lease_epoch, 2);
    assert_eq!(resumed[0].attempts, 2);
    assert_eq!(resumed[0].lease_owner.as_deref(), Some("w2"));

    // The dead worker wakes up: its outcome is refused.
    let stale: Vec<_> = crashed.iter().map(succeed).collect();
    let r = store
        .finish_job_items(&j.id, "dead", &stale, at(now, 32))
        .await
        .unwrap();
    assert_eq!(r.lost.len(), 2);
    assert_eq!(r.job.counts.running, 2);

    // Out of attempts: a lease that expires again fails the item.
    let (_, third) = claim(store, "w3", &kinds("a", 10), at(now, 70))
        .await
        .unwrap();
    assert_eq!(third[0].attempts, 3);
    assert!(claim(store, "w4", &kinds("a", 10), at(now, 110))
        .await
        .is_none());
    let after = store.get_job(&t, &j.id).await.unwrap().unwrap();
    // The claim that found them exhausted failed them (in its own transaction).
    let failed = store
        .list_job_items(&t, &j.id, Some(ItemState::Failed), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 2, "{after:?}");
    assert_eq!(
        failed.items[0].error.as_ref().unwrap().code,
        "lease_expired"
    );
    assert_eq!(after.state, JobState::Failed);
}

pub async fn retryable_failures_wait_for_backoff_then_exhaust(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let mut new = job(&t, "a", items(1));
    new.max_attempts = 2;
    let j = store.create_job(new, now).await.unwrap().job;
    let (_, got) = claim(store, "w", &kinds("a", 1), now).await.unwrap();
    let r = store
        .finish_job_items(&j.id, "w", &[fail(&got[0], Some(at(now, 10)))], now)
        .await
        .unwrap();
    assert_eq!((r.job.counts.pending, r.job.state), (1, JobState::Running));
    let item = store.get_job_item(&t, &got[0].id).await.unwrap().unwrap();
    assert_eq!(item.state, ItemState::Pending);
    assert_eq!(item.next_attempt_at, at(now, 10).as_datetime());
    assert_eq!(
        item.error.as_ref().unwrap().field.as_deref(),
        Some("priority")
    );

    assert!(claim(store, "w", &kinds("a", 1), at(now, 9))
        .await
        .is_none());
    let (_, again) = claim(store, "w", &kinds("a", 1), at(now, 10))
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    let r = store
        .finish_job_items(
            &j.id,
            "w",
            &[fail(&again[0], Some(at(now, 20)))],
            at(now, 10),
        )
        .await
        .unwrap();
    assert_eq!(r.job.state, JobState::Failed, "no attempts left");
    assert_eq!(r.job.counts.failed, 1);
    let item = store.get_job_item(&t, &got[0].id).await.unwrap().unwrap();
    assert_eq!(item.state, ItemState::Failed);
    let error = item.error.unwrap();
    assert_eq!(error.code, "jira_rejected");
    assert_eq!(error.jira.unwrap()["errors"]["priority"], "invalid");

    // A permanent failure (no retry_at) fails at once even with attempts left.
    let j2 = store
        .create_job(job(&t, "b", items(1)), now)
        .await
        .unwrap()
        .job;
    let (_, got) = claim(store, "w", &kinds("b", 1), now).await.unwrap();
    let r = store
        .finish_job_items(&j2.id, "w", &[fail(&got[0], None)], now)
        .await
        .unwrap();
    assert_eq!((r.job.state, r.job.counts.failed), (JobState::Failed, 1));
}

pub async fn held_children_are_released_only_when_the_parent_succeeds(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    // 0: epic A, 1-2: its stories; 3: epic B, 4: its story.
    let mut list = items(5);
    list[1].depends_on = Some(0);
    list[2].depends_on = Some(0);
    list[4].depends_on = Some(3);
    let j = store
        .create_job(job(&t, "export", list), now)
        .await
        .unwrap()
        .job;
    assert_eq!((j.counts.pending, j.counts.held), (2, 3));

    let (_, epics) = claim(store, "w", &kinds("export", 10), now).await.unwrap();
    assert_eq!(epics.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![0, 3]);
    let r = store
        .finish_job_items(
            &j.id,
            "w",
            &[succeed(&epics[0]), fail(&epics[1], None)],
            now,
        )
        .await
        .unwrap();
    assert_eq!((r.job.counts.pending, r.job.counts.held), (2, 1));

    let (_, stories) = claim(store, "w", &kinds("export", 10), now).await.unwrap();
    assert_eq!(
        stories.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let fin: Vec<_> = stories.iter().map(succeed).collect();
    let r = store.finish_job_items(&j.id, "w", &fin, now).await.unwrap();
    assert_eq!(r.job.state, JobState::PartiallyFailed, "{:?}", r.job.counts);
    assert_eq!((r.job.counts.failed, r.job.counts.held), (1, 1));

    // Retry the failed epic: its story stays held until it succeeds.
    let (retried, n) = store
        .retry_failed_job_items(&t, &j.id, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(retried.state, JobState::Running);
    assert!(retried.finished_at.is_none());
    let (_, epic_b) = claim(store, "w", &kinds("export", 10), now).await.unwrap();
    assert_eq!(epic_b.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![3]);
    store
        .finish_job_items(&j.id, "w", &[succeed(&epic_b[0])], now)
        .await
        .unwrap();
    let (_, story) = claim(store, "w", &kinds("export", 10), now).await.unwrap();
    assert_eq!(story[0].seq, 4);
    let r = store
        .finish_job_items(&j.id, "w", &[succeed(&story[0])], now)
        .await
        .unwrap();
    assert_eq!(
        (r.job.state, r.job.counts.succeeded),
        (JobState::Succeeded, 5)
    );
}

pub async fn retry_reruns_failed_items_only(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let j = store
        .create_job(job(&t, "a", items(3)), now)
        .await
        .unwrap()
        .job;
    let (_, got) = claim(store, "w", &kinds("a", 3), now).await.unwrap();
    let r = store
        .finish_job_items(
            &j.id,
            "w",
            &[succeed(&got[0]), fail(&got[1], None), fail(&got[2], None)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.job.state, JobState::PartiallyFailed);
    let (job, n) = store
        .retry_failed_job_items(&t, &j.id, at(now, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!((job.counts.pending, job.counts.succeeded), (2, 1));
    let (_, again) = claim(store, "w", &kinds("a", 3), at(now, 1)).await.unwrap();
    assert_eq!(again.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(again.iter().all(|i| i.attempts == 1), "attempts reset");
    let fin: Vec<_> = again.iter().map(succeed).collect();
    let r = store
        .finish_job_items(&j.id, "w", &fin, at(now, 1))
        .await
        .unwrap();
    assert_eq!(r.job.state, JobState::Succeeded);
    let first = store.get_job_item(&t, &got[0].id).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1, "the succeeded item never ran again");
    // Nothing failed: retry changes nothing.
    let (same, n) = store
        .retry_failed_job_items(&t, &j.id, at(now, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, same.state), (0, JobState::Succeeded));
}

pub async fn cancel_stops_pending_and_held_items(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let mut list = items(4);
    list[3].depends_on = Some(2);
    let j = store.create_job(job(&t, "a", list), now).await.unwrap().job;
    let (_, running) = claim(store, "w", &kinds("a", 1), now).await.unwrap();
    let (job, n) = store.cancel_job(&t, &j.id, now).await.unwrap().unwrap();
    assert_eq!(n, 3, "two pending and one held");
    assert_eq!(job.state, JobState::Running, "one item is still running");
    assert!(job.cancel_requested_at.is_some());
    assert!(claim(store, "w", &kinds("a", 10), now).await.is_none());
    // A retryable failure after cancel cancels the item.
    let r = store
        .finish_job_items(&j.id, "w", &[fail(&running[0], Some(now))], now)
        .await
        .unwrap();
    assert_eq!(r.job.state, JobState::Cancelled);
    assert_eq!(r.job.counts.cancelled, 4);
    assert!(r.job.finished_at.is_some());
    // Cancelling a finished job changes nothing.
    let (again, n) = store.cancel_job(&t, &j.id, now).await.unwrap().unwrap();
    assert_eq!((n, again.state), (0, JobState::Cancelled));
}

pub async fn heartbeat_extends_only_the_owners_leases(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let j = store
        .create_job(job(&t, "a", items(4)), now)
        .await
        .unwrap()
        .job;
    let (_, mine) = claim(store, "w1", &kinds("a", 2), now).await.unwrap();
    let (_, theirs) = claim(store, "w2", &kinds("a", 2), now).await.unwrap();
    let n = store
        .heartbeat_job_items("w1", at(now, 300), at(now, 10))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let expired = store.expired_job_leases(at(now, 60), 10).await.unwrap();
    let ids: HashSet<_> = expired.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, theirs.iter().map(|i| i.id.clone()).collect());
    assert!(mine.iter().all(|i| !ids.contains(&i.id)));
    let (_, taken) = claim(store, "w3", &kinds("a", 10), at(now, 60))
        .await
        .unwrap();
    assert_eq!(taken.len(), 2, "only w2's expired items are taken over");
    let _ = j;
}

pub async fn release_gives_items_back_without_counting_the_attempt(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let j = store
        .create_job(job(&t, "a", items(2)), now)
        .await
        .unwrap()
        .job;
    let (_, got) = claim(store, "w", &kinds("a", 2), now).await.unwrap();
    let fin = vec![
        ItemFinish {
            id: got[0].id.clone(),
            lease_epoch: got[0].lease_epoch,
            outcome: FinishOutcome::Release {
                at: at(now, 5),
                count_attempt: false,
            },
        },
        ItemFinish {
            id: got[1].id.clone(),
            lease_epoch: got[1].lease_epoch,
            outcome: FinishOutcome::Release {
                at: now,
                count_attempt: true,
            },
        },
    ];
    let r = store.finish_job_items(&j.id, "w", &fin, now).await.unwrap();
    assert_eq!(r.job.counts.pending, 2);
    let (_, next) = claim(store, "w", &kinds("a", 2), now).await.unwrap();
    assert_eq!(next.len(), 1, "the first is not due before its time");
    assert_eq!((next[0].seq, next[0].attempts), (1, 2));
    let (_, later) = claim(store, "w", &kinds("a", 2), at(now, 5)).await.unwrap();
    assert_eq!((later[0].seq, later[0].attempts), (0, 1));
}

pub async fn claims_by_group_take_one_group_at_a_time(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let mut list = items(5);
    for (i, item) in list.iter_mut().enumerate() {
        item.group_key = Some(if i % 2 == 0 { "OPS/Task" } else { "WEB/Bug" }.into());
    }
    store.create_job(job(&t, "bulk", list), now).await.unwrap();
    let spec = vec![KindClaim {
        kind: "bulk".into(),
        limit: 50,
        same_group: true,
    }];
    let (_, first) = claim(store, "w", &spec, now).await.unwrap();
    assert_eq!(
        first.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    let (_, second) = claim(store, "w", &spec, now).await.unwrap();
    assert_eq!(second.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![1, 3]);
}

pub async fn concurrent_claimers_never_get_the_same_item(store: &Store) {
    let t = tenant(store, "acme").await;
    let now = Timestamp::now();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let j = store
            .create_job(job(&t, "bulk", items(60)), now)
            .await
            .unwrap()
            .job;
        ids.push(j.id);
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let spec = kinds("bulk", 7);
            let mut seen = Vec::new();
            while let Some((job, batch)) = claim(&store, &owner, &spec, Timestamp::now()).await {
                seen.extend(batch.iter().map(|i| i.id.clone()));
                let fin: Vec<_> = batch.iter().map(succeed).collect();
                let r = store
                    .finish_job_items(&job.id, &owner, &fin, Timestamp::now())
                    .await
                    .unwrap();
                assert!(r.lost.is_empty());
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 120, "each item claimed exactly once");
    assert_eq!(unique.len(), 120);
    for id in &ids {
        let j = store.get_job(&t, id).await.unwrap().unwrap();
        assert_eq!((j.state, j.counts.succeeded), (JobState::Succeeded, 60));
        assert_eq!(store.count_job_items(&t, id).await.unwrap(), j.counts);
    }
}
