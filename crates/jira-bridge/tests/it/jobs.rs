//! The job engine against a real database: leases, retries, held items, cancel,
//! idempotency, wake-ups, shutdown, and two runners sharing one database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jira_bridge::jobs::{
    Backoff, Clock, EnqueueRequest, ItemError, ItemOutcome, ItemState, JobContext, JobHandler,
    JobItem, JobRunner, JobState, Jobs, Registry, RunnerConfig,
};
use jira_bridge_store::jobs::{ClaimRequest, KindClaim, NewJobItem};
use jira_bridge_store::test_support::TestDatabase;
use jira_bridge_store::{PageRequest, Store, StoreOptions, TenantId};
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const KIND: &str = "test.record";

/// A handler that records every execution per item key, and fails items as their
/// payload asks: `{"fail_first": n, "retryable": bool}` fails the first `n` runs;
/// `{"stall": true}` waits until the runner shuts down.
#[derive(Clone, Default)]
pub struct Recorder {
    pub runs: Arc<Mutex<HashMap<String, u32>>>,
    pub order: Arc<Mutex<Vec<String>>>,
    pub batch_sizes: Arc<Mutex<Vec<usize>>>,
    pub workers: Arc<Mutex<HashMap<String, usize>>>,
    pub batch: u32,
}

impl Recorder {
    pub fn new(batch: u32) -> Self {
        Self {
            batch,
            ..Self::default()
        }
    }

    pub fn runs_of(&self, key: &str) -> u32 {
        self.runs.lock().get(key).copied().unwrap_or(0)
    }

    fn outcome(&self, item: &JobItem) -> ItemOutcome {
        let key = item.item_key.clone().unwrap_or_default();
        let n = {
            let mut runs = self.runs.lock();
            let n = runs.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.order.lock().push(key.clone());
        let fail_first = item.payload["fail_first"].as_u64().unwrap_or(0);
        if u64::from(n) <= fail_first {
            let retryable = item.payload["retryable"].as_bool().unwrap_or(false);
            let error = ItemError::new("jira_rejected", format!("refused run {n} of {key}"))
                .with_field("priority")
                .with_jira(json!({"errorMessages": [], "errors": {"priority": "invalid"}}));
            return ItemOutcome::Failed { error, retryable };
        }
        ItemOutcome::Succeeded(json!({ "key": key, "run": n }))
    }
}

impl JobHandler for Recorder {
    fn kind(&self) -> &str {
        KIND
    }

    fn batch_size(&self) -> u32 {
        self.batch
    }

    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        items: &'a [JobItem],
    ) -> BoxFuture<'a, Vec<ItemOutcome>> {
        Box::pin(async move {
            self.batch_sizes.lock().push(items.len());
            *self
                .workers
                .lock()
                .entry(ctx.worker_id.clone())
                .or_insert(0) += 1;
            if items.iter().any(|i| i.payload["stall"] == true) {
                ctx.shutdown.cancelled().await;
                // Pretend to be slow past the grace period.
                std::future::pending::<()>().await;
            }
            items.iter().map(|i| self.outcome(i)).collect()
        })
    }
}

pub fn test_config() -> RunnerConfig {
    RunnerConfig {
        concurrency: 2,
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        backoff: Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(600),
            jitter: 0.5,
        },
        shutdown_grace: Duration::from_millis(0),
        ..RunnerConfig::default()
    }
}

pub fn runner(jobs: &Jobs, recorder: &Recorder, config: RunnerConfig) -> JobRunner {
    let mut registry = Registry::new();
    registry.register(Arc::new(recorder.clone()));
    JobRunner::new(jobs.clone(), registry, config)
}

pub fn items(n: usize) -> Vec<NewJobItem> {
    (0..n)
        .map(|i| NewJobItem {
            item_key: Some(format!("src-{i}")),
            ..NewJobItem::new(json!({}))
        })
        .collect()
}

pub async fn setup() -> (TestDatabase, Store, TenantId) {
    let db = TestDatabase::from_env().await.unwrap();
    let store = db.store().await.unwrap();
    let tenant = store.create_tenant("acme").await.unwrap().id;
    (db, store, tenant)
}

fn within(
    actual: chrono::DateTime<chrono::Utc>,
    from: chrono::DateTime<chrono::Utc>,
    lo: i64,
    hi: i64,
) {
    let d = (actual - from).num_milliseconds();
    assert!(
        d >= lo * 1000 - 1000 && d <= hi * 1000 + 1000,
        "{d} ms not within {lo}..{hi} s"
    );
}

#[tokio::test]
async fn crashed_workers_items_are_resumed_after_their_lease_expires() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::with_clock(store.clone(), Clock::default());
    let rec = Recorder::new(10);
    let runner = runner(&jobs, &rec, test_config());
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, items(3)))
        .await
        .unwrap()
        .job;
    // A worker claims two items with a short lease, then dies.
    let crashed = store
        .claim_job_items(&ClaimRequest {
            owner: "crashed-worker",
            kinds: &[KindClaim {
                kind: KIND.into(),
                limit: 2,
                same_group: false,
            }],
            lease_until: jobs.clock().after(Duration::from_secs(1)),
            now: jobs.clock().now(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crashed.items.len(), 2);

    let report = runner.drain_until_idle().await.unwrap();
    assert_eq!(
        report.items, 1,
        "leased items are not taken while the lease holds"
    );
    assert_eq!(rec.runs_of("src-2"), 1);
    assert_eq!(
        jobs.get(&tenant, &job.id).await.unwrap().state,
        JobState::Running
    );

    jobs.clock().advance(Duration::from_secs(2));
    let report = runner.drain_until_idle().await.unwrap();
    assert_eq!(report.items, 2);
    let done = jobs.get(&tenant, &job.id).await.unwrap();
    assert_eq!(
        (done.state, done.counts.succeeded),
        (JobState::Succeeded, 3)
    );
    for key in ["src-0", "src-1", "src-2"] {
        assert_eq!(rec.runs_of(key), 1, "{key} ran once in this process");
    }
    let resumed = store
        .get_job_item(&tenant, &crashed.items[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.attempts, 2, "the crashed attempt counts");
    assert_eq!(resumed.lease_owner, None);
}

#[tokio::test]
async fn retryable_failures_back_off_exponentially_then_succeed() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(1);
    let runner = runner(&jobs, &rec, test_config());
    let mut list = items(1);
    list[0].payload = json!({"fail_first": 2, "retryable": true});
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, list).max_attempts(3))
        .await
        .unwrap()
        .job;

    runner.drain_until_idle().await.unwrap();
    let page = store
        .list_job_items(&tenant, &job.id, None, &PageRequest::first(10))
        .await
        .unwrap();
    let item = &page.items[0];
    assert_eq!((item.state, item.attempts), (ItemState::Pending, 1));
    within(
        item.next_attempt_at,
        jobs.clock().now().as_datetime(),
        5,
        10,
    );
    assert_eq!(item.error.as_ref().unwrap().code, "jira_rejected");

    assert_eq!(
        runner.drain_until_idle().await.unwrap().items,
        0,
        "not due during backoff"
    );
    jobs.clock().advance(Duration::from_secs(10));
    runner.drain_until_idle().await.unwrap();
    let item = store
        .get_job_item(&tenant, &item.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((item.state, item.attempts), (ItemState::Pending, 2));
    within(
        item.next_attempt_at,
        jobs.clock().now().as_datetime(),
        10,
        20,
    );

    jobs.clock().advance(Duration::from_secs(20));
    runner.drain_until_idle().await.unwrap();
    let item = store
        .get_job_item(&tenant, &item.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((item.state, item.attempts), (ItemState::Succeeded, 3));
    assert_eq!(item.result, Some(json!({"key": "src-0", "run": 3})));
    assert_eq!(item.error, None);
    assert_eq!(rec.runs_of("src-0"), 3);
    assert_eq!(
        jobs.get(&tenant, &job.id).await.unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn exhausted_and_permanent_failures_are_recorded_with_their_reason() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(5);
    let runner = runner(&jobs, &rec, test_config());
    let mut list = items(3);
    list[1].payload = json!({"fail_first": 9, "retryable": false});
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, list))
        .await
        .unwrap()
        .job;
    runner.drain_until_idle().await.unwrap();
    let done = jobs.get(&tenant, &job.id).await.unwrap();
    assert_eq!(done.state, JobState::PartiallyFailed);
    assert_eq!((done.counts.succeeded, done.counts.failed), (2, 1));
    assert!(done.finished_at.is_some());
    assert_eq!(
        rec.runs_of("src-1"),
        1,
        "a permanent failure is not retried"
    );
    let failed = store
        .list_job_items(
            &tenant,
            &job.id,
            Some(ItemState::Failed),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    let error = failed.items[0].error.clone().unwrap();
    assert_eq!(failed.items[0].item_key.as_deref(), Some("src-1"));
    assert_eq!(error.code, "jira_rejected");
    assert_eq!(error.message, "refused run 1 of src-1");
    assert_eq!(error.field.as_deref(), Some("priority"));
    assert_eq!(error.jira.unwrap()["errors"]["priority"], "invalid");

    // Out of attempts: retryable failures end as failed too.
    let mut list = items(1);
    list[0].item_key = Some("flaky".into());
    list[0].payload = json!({"fail_first": 9, "retryable": true});
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, list).max_attempts(2))
        .await
        .unwrap()
        .job;
    runner.drain_until_idle().await.unwrap();
    jobs.clock().advance(Duration::from_secs(3600));
    runner.drain_until_idle().await.unwrap();
    jobs.clock().advance(Duration::from_secs(3600));
    runner.drain_until_idle().await.unwrap();
    let done = jobs.get(&tenant, &job.id).await.unwrap();
    assert_eq!((done.state, done.counts.failed), (JobState::Failed, 1));
    assert_eq!(rec.runs_of("flaky"), 2);
}

#[tokio::test]
async fn held_children_run_only_after_their_parent_succeeds() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(10);
    let runner = runner(&jobs, &rec, test_config());
    let mut list = items(4);
    list[0].payload = json!({"fail_first": 1, "retryable": false});
    list[1].depends_on = Some(0);
    list[2].depends_on = Some(0);
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, list))
        .await
        .unwrap()
        .job;
    assert_eq!((job.counts.held, job.counts.pending), (2, 2));
    runner.drain_until_idle().await.unwrap();
    let j = jobs.get(&tenant, &job.id).await.unwrap();
    assert_eq!(j.state, JobState::PartiallyFailed, "{:?}", j.counts);
    assert_eq!(
        (j.counts.failed, j.counts.held, j.counts.succeeded),
        (1, 2, 1)
    );
    assert_eq!(
        rec.runs_of("src-1") + rec.runs_of("src-2"),
        0,
        "children wait"
    );

    let (_, n) = jobs.retry_failed(&tenant, &job.id).await.unwrap();
    assert_eq!(n, 1);
    runner.drain_until_idle().await.unwrap();
    let j = jobs.get(&tenant, &job.id).await.unwrap();
    assert_eq!((j.state, j.counts.succeeded), (JobState::Succeeded, 4));
    let order = rec.order.lock().clone();
    let parent_ok = order.iter().rposition(|k| k == "src-0").unwrap();
    let first_child = order
        .iter()
        .position(|k| k == "src-1" || k == "src-2")
        .unwrap();
    assert!(parent_ok < first_child, "{order:?}");
    assert_eq!(rec.runs_of("src-3"), 1, "the unrelated item is not re-run");
}

#[tokio::test]
async fn cancel_stops_pending_items_and_enqueue_is_idempotent() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(10);
    let runner = runner(&jobs, &rec, test_config());
    let req = EnqueueRequest::new(tenant.clone(), KIND, items(5)).idempotency_key("bulk-1");
    let first = jobs.enqueue(req.clone()).await.unwrap();
    let again = jobs.enqueue(req).await.unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.job.id, again.job.id);

    let (job, n) = jobs.cancel(&tenant, &first.job.id).await.unwrap();
    assert_eq!(
        (n, job.state, job.counts.cancelled),
        (5, JobState::Cancelled, 5)
    );
    assert_eq!(runner.drain_until_idle().await.unwrap().items, 0);
    assert!(rec.runs.lock().is_empty(), "nothing ran");

    let other = store.create_tenant("other").await.unwrap().id;
    assert!(matches!(
        jobs.cancel(&other, &first.job.id).await,
        Err(jira_bridge::jobs::JobError::NotFound)
    ));
}

#[tokio::test]
async fn progress_is_published_for_every_change_and_ends_finished() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(2);
    let runner = runner(&jobs, &rec, test_config());
    let mut rx = jobs.subscribe();
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, items(5)))
        .await
        .unwrap()
        .job;
    runner.drain_until_idle().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(p) = rx.try_recv() {
        assert_eq!(p.job_id, job.id);
        seen.push(p);
    }
    // enqueue + 3 batches × (claim + finish)
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen[0].state, JobState::Queued);
    let succeeded: Vec<i64> = seen.iter().map(|p| p.counts.succeeded).collect();
    assert!(succeeded.windows(2).all(|w| w[0] <= w[1]), "{succeeded:?}");
    let last = seen.last().unwrap();
    assert!(last.is_finished());
    assert_eq!(
        (last.state, last.counts.succeeded),
        (JobState::Succeeded, 5)
    );
    assert_eq!(*rec.batch_sizes.lock(), vec![2, 2, 1]);
}

async fn wait_finished(
    jobs: &Jobs,
    tenant: &TenantId,
    id: &jira_bridge::jobs::JobId,
) -> jira_bridge_store::jobs::Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rx = jobs.subscribe();
    loop {
        let job = jobs.get(tenant, id).await.unwrap();
        if job.state.is_terminal() {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job did not finish: {:?}",
            job.counts
        );
        // Woken by progress in this process, or re-check after a short while for
        // progress made by another process.
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
    }
}

#[tokio::test]
async fn an_enqueue_wakes_an_idle_runner_without_waiting_for_the_poll() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(10);
    let config = RunnerConfig {
        poll_interval: Duration::from_secs(3600),
        ..test_config()
    };
    let runner = runner(&jobs, &rec, config);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(runner.run(shutdown.clone()));
    let mut rx = jobs.subscribe();
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, items(3)))
        .await
        .unwrap()
        .job;
    // Only the wake-up can get this done before the deadline: the poll is an hour.
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let p = rx.recv().await.unwrap();
            if p.is_finished() {
                return p;
            }
        }
    })
    .await
    .expect("the runner was not woken");
    assert_eq!(
        (finished.job_id, finished.state),
        (job.id, JobState::Succeeded)
    );
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn shutdown_releases_unfinished_items_for_another_worker() {
    let (_db, store, tenant) = setup().await;
    let jobs = Jobs::new(store.clone());
    let rec = Recorder::new(10);
    let runner = runner(&jobs, &rec, test_config());
    let mut list = items(2);
    list[0].payload = json!({"stall": true});
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, list))
        .await
        .unwrap()
        .job;
    let mut rx = jobs.subscribe();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(runner.run(shutdown.clone()));
    // Wait until the batch is claimed.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if rx.recv().await.unwrap().counts.running == 2 {
                return;
            }
        }
    })
    .await
    .unwrap();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("runner stops on shutdown")
        .unwrap();
    let j = jobs.get(&tenant, &job.id).await.unwrap();
    assert_eq!((j.counts.pending, j.counts.running), (2, 0));
    let page = store
        .list_job_items(&tenant, &job.id, None, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(page
        .items
        .iter()
        .all(|i| i.attempts == 0 && i.lease_owner.is_none()));
}

#[tokio::test]
async fn two_runners_sharing_one_database_process_each_item_exactly_once() {
    let db = TestDatabase::from_env().await.unwrap();
    if db.backend() != jira_bridge_store::Backend::Postgres {
        eprintln!(
            "JIRA_BRIDGE_TEST_POSTGRES_URL not set: running the two runners on one SQLite file"
        );
    }
    let store_a = db.store().await.unwrap();
    let options = StoreOptions {
        max_connections: 5,
        ..StoreOptions::default()
    };
    let store_b = Store::connect(db.url(), &options).await.unwrap();
    let tenant = store_a.create_tenant("acme").await.unwrap().id;
    let jobs_a = Jobs::new(store_a.clone());
    let jobs_b = Jobs::new(store_b.clone());
    // One recorder shared by both "replicas", so executions are counted across them.
    let rec = Recorder::new(25);
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    for (name, jobs) in [("replica-a", &jobs_a), ("replica-b", &jobs_b)] {
        let config = RunnerConfig {
            worker_id: name.into(),
            ..test_config()
        };
        handles.push(tokio::spawn(
            runner(jobs, &rec, config).run(shutdown.clone()),
        ));
    }
    let job = jobs_a
        .enqueue(EnqueueRequest::new(tenant.clone(), KIND, items(500)))
        .await
        .unwrap()
        .job;
    let done = wait_finished(&jobs_a, &tenant, &job.id).await;
    shutdown.cancel();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(
        (done.state, done.counts.succeeded),
        (JobState::Succeeded, 500)
    );
    let runs = rec.runs.lock().clone();
    assert_eq!(runs.len(), 500, "every item ran");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "items run more than once: {twice:?}");
    assert_eq!(
        store_a.count_job_items(&tenant, &job.id).await.unwrap(),
        done.counts
    );
    let sizes = rec.batch_sizes.lock().clone();
    assert!(sizes.iter().all(|s| *s <= 25), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 500);
    eprintln!("batches per worker: {:?}", rec.workers.lock());
}
