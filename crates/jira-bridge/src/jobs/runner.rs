//! Workers: claim due items, run their handler, record outcomes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use jira_bridge_store::jobs::{
    ClaimRequest, ClaimedBatch, FinishOutcome, ItemError, ItemFinish, JobItem, KindClaim,
};
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::handler::{ItemOutcome, JobContext, JobHandler, Registry};
use super::{JobError, Jobs};

/// Delay before a retryable failure runs again: `base · 2^(attempt−1)`, capped at
/// `max`, then reduced by a random fraction of up to `jitter` (0.0–1.0) so that items
/// that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first attempt.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Fraction of the delay that is random (0 = exact, 0.5 = between 50% and 100%).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay after attempt number `attempt` (1-based) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return full;
        }
        let cut: f64 = rand::thread_rng().gen_range(0.0..=jitter);
        full.mul_f64(1.0 - cut)
    }
}

/// How a [`JobRunner`] works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This runner's id, written as the lease owner. Unique per process.
    pub worker_id: String,
    /// Batches run at once.
    pub concurrency: usize,
    /// How long a claim is leased; a worker that stops heart-beating loses its items
    /// this long after its last heartbeat.
    pub lease: Duration,
    /// How often running items' leases are extended (well under `lease`).
    pub heartbeat: Duration,
    /// How often an idle worker looks for due items without being woken (finds items
    /// enqueued by other replicas and retries whose backoff ended).
    pub poll_interval: Duration,
    /// Backoff between attempts.
    pub backoff: Backoff,
    /// On shutdown, how long running batches may still take before their items are
    /// released for another worker.
    pub shutdown_grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("wrk_{}", uuid::Uuid::now_v7().simple()),
            concurrency: 2,
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            poll_interval: Duration::from_secs(2),
            backoff: Backoff::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What [`JobRunner::drain_until_idle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Batches run.
    pub batches: usize,
    /// Items run.
    pub items: usize,
}

/// Claims due items of the kinds in its [`Registry`] and runs them.
#[derive(Clone)]
pub struct JobRunner {
    jobs: Jobs,
    registry: Arc<Registry>,
    claims: Arc<Vec<KindClaim>>,
    config: Arc<RunnerConfig>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("worker_id", &self.config.worker_id)
            .field("kinds", &self.registry.kinds())
            .finish()
    }
}

enum BatchEnd {
    Done(Vec<ItemOutcome>),
    /// Shutdown came and the grace period ended first.
    Abandoned,
}

impl JobRunner {
    /// A runner over `jobs` for the handlers in `registry`.
    pub fn new(jobs: Jobs, registry: Registry, config: RunnerConfig) -> Self {
        let mut claims: Vec<KindClaim> = registry
            .handlers()
            .map(|h| KindClaim {
                kind: h.kind().to_owned(),
                limit: h.batch_size().max(1),
                same_group: h.group_batches(),
            })
            .collect();
        claims.sort_by(|a, b| a.kind.cmp(&b.kind));
        Self {
            jobs,
            registry: Arc::new(registry),
            claims: Arc::new(claims),
            config: Arc::new(config),
        }
    }

    /// This runner's worker id.
    pub fn worker_id(&self) -> &str {
        &self.config.worker_id
    }

    /// The engine handle.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Run claims inline, one batch after another, until nothing is due now (by the
    /// engine's clock). Items waiting for a backoff stay pending. For tests and
    /// one-shot commands; does not heartbeat.
    pub async fn drain_until_idle(&self) -> Result<DrainReport, JobError> {
        let mut report = DrainReport::default();
        let never = CancellationToken::new();
        while let Some(batch) = self.claim().await? {
            report.batches += 1;
            report.items += batch.items.len();
            self.process(batch, &never).await?;
        }
        Ok(report)
    }

    /// Work until `shutdown` is cancelled: `concurrency` workers, each claiming a batch,
    /// running it and claiming again; idle workers wait for an enqueue in this process
    /// or the poll interval. On shutdown no new batch is claimed; running batches get
    /// `shutdown_grace` to finish, after which their items are released (pending again,
    /// the attempt not counted) for another worker. Items of a process that dies
    /// without this are taken over when their lease expires.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.claims.is_empty() {
            tracing::info!("no job handlers registered; job runner idle");
            shutdown.cancelled().await;
            return;
        }
        tracing::info!(worker_id = %self.config.worker_id, kinds = ?self.registry.kinds(),
            concurrency = self.config.concurrency, "job runner started");
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(self.clone().heartbeat(heartbeat_stop.clone()));
        let workers: Vec<_> = (0..self.config.concurrency.max(1))
            .map(|slot| tokio::spawn(self.clone().worker(slot, shutdown.clone())))
            .collect();
        for w in workers {
            if let Err(e) = w.await {
                tracing::error!(error = ?e, "job worker panicked");
            }
        }
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        tracing::info!(worker_id = %self.config.worker_id, "job runner stopped");
    }

    async fn worker(self, slot: usize, shutdown: CancellationToken) {
        let wake = self.jobs.wake_signal();
        loop {
            // Register for a wake-up before looking, so an enqueue in between is not lost.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shutdown.is_cancelled() {
                break;
            }
            match self.claim().await {
                Ok(Some(batch)) => {
                    // More may be due: let idle workers look too.
                    self.jobs.wake();
                    if let Err(e) = self.process(batch, &shutdown).await {
                        tracing::warn!(slot, error = ?e, "recording job outcomes failed; the leases will expire and the items run again");
                        self.pause(&shutdown).await;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(slot, error = ?e, "claiming job items failed");
                }
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
    }

    async fn pause(&self, shutdown: &CancellationToken) {
        tokio::select! {
            _ = tokio::time::sleep(self.config.poll_interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    async fn heartbeat(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.heartbeat.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let store = self.jobs.store();
            let now = self.jobs.now();
            let until = self.jobs.clock().after(self.config.lease);
            if let Err(e) = store
                .heartbeat_job_items(&self.config.worker_id, until, now)
                .await
            {
                tracing::warn!(error = ?e, "extending job leases failed");
            }
        }
    }

    async fn claim(&self) -> Result<Option<ClaimedBatch>, JobError> {
        if self.claims.is_empty() {
            return Ok(None);
        }
        let req = ClaimRequest {
            owner: &self.config.worker_id,
            kinds: &self.claims,
            lease_until: self.jobs.clock().after(self.config.lease),
            now: self.jobs.now(),
        };
        let batch = self.jobs.store().claim_job_items(&req).await?;
        if let Some(b) = &batch {
            self.jobs.publish(&b.job).await;
        }
        Ok(batch)
    }

    async fn process(
        &self,
        batch: ClaimedBatch,
        shutdown: &CancellationToken,
    ) -> Result<(), JobError> {
        let ClaimedBatch { job, items } = batch;
        let job_id = job.id.clone();
        let Some(handler) = self.registry.get(&job.kind).cloned() else {
            // Cannot happen: we only claim registered kinds. Give the items back.
            let at = self.jobs.now();
            let finishes = items
                .iter()
                .map(|i| {
                    finish(
                        i,
                        FinishOutcome::Release {
                            at,
                            count_attempt: false,
                        },
                    )
                })
                .collect::<Vec<_>>();
            self.record(&job_id, &finishes).await?;
            return Ok(());
        };
        let span = tracing::info_span!("job_batch", job_id = %job_id, kind = %job.kind, items = items.len());
        let ctx = JobContext {
            job,
            store: self.jobs.store().clone(),
            worker_id: self.config.worker_id.clone(),
            shutdown: shutdown.clone(),
        };
        let end = self
            .run_handler(handler.as_ref(), &ctx, &items, shutdown)
            .instrument(span)
            .await;
        let finishes: Vec<ItemFinish> = match end {
            BatchEnd::Abandoned => {
                let at = self.jobs.now();
                tracing::info!(job_id = %job_id, "shutdown: releasing unfinished items");
                items
                    .iter()
                    .map(|i| {
                        finish(
                            i,
                            FinishOutcome::Release {
                                at,
                                count_attempt: false,
                            },
                        )
                    })
                    .collect()
            }
            BatchEnd::Done(outcomes) => {
                if outcomes.len() != items.len() {
                    tracing::error!(job_id = %job_id, expected = items.len(), got = outcomes.len(),
                        "job handler returned the wrong number of outcomes");
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let outcome = outcomes.get(i).cloned().unwrap_or_else(|| {
                            ItemOutcome::retryable(ItemError::new(
                                "no_outcome",
                                "the handler reported no outcome for this item",
                            ))
                        });
                        finish(item, self.to_finish(item, outcome))
                    })
                    .collect()
            }
        };
        self.record(&job_id, &finishes).await
    }

    async fn run_handler(
        &self,
        handler: &dyn JobHandler,
        ctx: &JobContext,
        items: &[JobItem],
        shutdown: &CancellationToken,
    ) -> BatchEnd {
        let timeout = handler.timeout();
        let fut =
            AssertUnwindSafe(tokio::time::timeout(timeout, handler.run(ctx, items))).catch_unwind();
        tokio::pin!(fut);
        let result = tokio::select! {
            r = &mut fut => r,
            _ = shutdown.cancelled() => {
                match tokio::time::timeout(self.config.shutdown_grace, &mut fut).await {
                    Ok(r) => r,
                    Err(_) => return BatchEnd::Abandoned,
                }
            }
        };
        let all = |code: &str, message: String| {
            BatchEnd::Done(
                items
                    .iter()
                    .map(|_| ItemOutcome::retryable(ItemError::new(code, message.clone())))
                    .collect(),
            )
        };
        match result {
            Ok(Ok(outcomes)) => BatchEnd::Done(outcomes),
            Ok(Err(_)) => all(
                "timeout",
                format!("the batch did not finish within {} s", timeout.as_secs()),
            ),
            Err(_) => {
                tracing::error!(job_id = %ctx.job.id, kind = %ctx.job.kind, "job handler panicked");
                all(
                    "handler_panicked",
                    "the job handler failed unexpectedly".into(),
                )
            }
        }
    }

    fn to_finish(&self, item: &JobItem, outcome: ItemOutcome) -> FinishOutcome {
        match outcome {
            ItemOutcome::Succeeded(result) => FinishOutcome::Succeeded { result },
            ItemOutcome::Failed { error, retryable } => {
                let retry_at = retryable.then(|| {
                    let attempt = u32::try_from(item.attempts).unwrap_or(u32::MAX);
                    self.jobs.clock().after(self.config.backoff.delay(attempt))
                });
                FinishOutcome::Failed { error, retry_at }
            }
            ItemOutcome::RetryAfter(d) => FinishOutcome::Release {
                at: self.jobs.clock().after(d),
                count_attempt: false,
            },
        }
    }

    async fn record(&self, job_id: &super::JobId, finishes: &[ItemFinish]) -> Result<(), JobError> {
        let result = self
            .jobs
            .store()
            .finish_job_items(job_id, &self.config.worker_id, finishes, self.jobs.now())
            .await?;
        if !result.lost.is_empty() {
            tracing::warn!(job_id = %job_id, lost = result.lost.len(),
                "leases lost before outcomes were recorded; another worker owns those items now");
        }
        self.jobs.publish(&result.job).await;
        // Released children or retries may be due now.
        self.jobs.wake();
        Ok(())
    }
}

fn finish(item: &JobItem, outcome: FinishOutcome) -> ItemFinish {
    ItemFinish {
        id: item.id.clone(),
        lease_epoch: item.lease_epoch,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_only_shortens() {
        let exact = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            jitter: 0.0,
        };
        assert_eq!(exact.delay(1), Duration::from_secs(2));
        assert_eq!(exact.delay(2), Duration::from_secs(4));
        assert_eq!(exact.delay(4), Duration::from_secs(16));
        assert_eq!(exact.delay(10), Duration::from_secs(60));
        assert_eq!(exact.delay(u32::MAX), Duration::from_secs(60));
        let jittered = Backoff {
            jitter: 0.5,
            ..exact
        };
        for attempt in 1..8 {
            let d = jittered.delay(attempt);
            let full = exact.delay(attempt);
            assert!(d <= full && d >= full / 2, "{d:?} vs {full:?}");
        }
    }
}
