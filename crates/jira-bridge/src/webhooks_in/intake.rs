//! The fast path of the inbound endpoint: a per-connection rate limit, and a writer
//! task that stores concurrent deliveries in one transaction.
//!
//! Handlers hand a verified delivery to [`Intake::store`] and wait for its commit
//! before they answer, so an acknowledged delivery is always persisted. The writer
//! takes whatever has queued up while the previous transaction committed (up to
//! [`GROUP_MAX`]) and stores it together: under load one commit serves many
//! deliveries; when idle a delivery is stored alone at once.
//!
//! The writer and the apply worker ([`super::worker`]) take turns at writing
//! ([`WriteTurn`], first come first served): SQLite has one writer at a time, and a
//! waiting acknowledgement is worth more than an early apply, so the worker ends its
//! transaction as soon as the writer waits for its turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use jira_bridge_store::inbound::NewInbound;
use jira_bridge_store::{ConnectionId, Store, TenantId};
use tokio::sync::{mpsc, oneshot};

use crate::config::WebhooksConfig;

/// Most deliveries stored in one transaction.
pub const GROUP_MAX: usize = 512;
/// Deliveries waiting for the writer before handlers wait for room.
const QUEUE: usize = 8192;

/// A verified delivery waiting to be stored.
pub struct Delivery {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Connection it was addressed to.
    pub connection_id: ConnectionId,
    /// Dedup key.
    pub identifier: String,
    /// `webhookEvent`.
    pub event: String,
    /// Raw JSON body.
    pub body: String,
}

/// The answer to one delivery: new or not, or why it could not be stored.
type Reply = oneshot::Sender<Result<bool, String>>;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Turns at writing between the intake's writer and the apply worker, first come
/// first served; the worker asks [`WriteTurn::intake_waits`] to end its transaction
/// early.
///
/// While deliveries are arriving the intake has priority: the worker starts at most
/// one transaction per [`APPLY_YIELD`] (so applying still progresses under sustained
/// load) and catches up at full speed once the intake has been quiet for
/// [`INTAKE_QUIET`]. On two cores the apply work otherwise takes CPU and write turns
/// from the deliveries being acknowledged.
#[derive(Debug)]
pub struct WriteTurn {
    lock: tokio::sync::Mutex<()>,
    intake_waiting: AtomicUsize,
    /// When the intake last wrote, and when the worker's last transaction ended (µs
    /// since `epoch`).
    last_intake_us: std::sync::atomic::AtomicU64,
    last_worker_us: std::sync::atomic::AtomicU64,
    epoch: Instant,
}

/// How long the intake must have been quiet before the worker applies at full speed.
pub const INTAKE_QUIET: std::time::Duration = std::time::Duration::from_millis(20);
/// While the intake is busy, the worker's longest pause between transactions.
pub const APPLY_YIELD: std::time::Duration = std::time::Duration::from_millis(100);

impl Default for WriteTurn {
    fn default() -> Self {
        Self {
            lock: tokio::sync::Mutex::default(),
            intake_waiting: AtomicUsize::new(0),
            last_intake_us: std::sync::atomic::AtomicU64::new(0),
            last_worker_us: std::sync::atomic::AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// Counts the intake as waiting while it exists.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriteTurn {
    async fn intake(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.mark(&self.last_intake_us);
        self.intake_waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.intake_waiting);
        self.lock.lock().await
    }

    /// The apply worker's turn (held until dropped; then call
    /// [`WriteTurn::worker_done`]). While the intake is busy the worker first waits
    /// until [`APPLY_YIELD`] has passed since its previous transaction ended, or the
    /// intake falls quiet.
    pub async fn worker(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let until = self.at(&self.last_worker_us) + APPLY_YIELD;
        while self.epoch.elapsed() < until && self.intake_busy() {
            tokio::time::sleep(INTAKE_QUIET / 4).await;
        }
        self.lock.lock().await
    }

    /// The worker's transaction ended.
    pub fn worker_done(&self) {
        self.mark(&self.last_worker_us);
    }

    fn at(&self, a: &std::sync::atomic::AtomicU64) -> std::time::Duration {
        std::time::Duration::from_micros(a.load(Ordering::SeqCst))
    }

    fn mark(&self, a: &std::sync::atomic::AtomicU64) {
        a.store(
            u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Whether the intake waits or wrote within the last [`INTAKE_QUIET`].
    fn intake_busy(&self) -> bool {
        self.intake_waits()
            || self
                .epoch
                .elapsed()
                .saturating_sub(self.at(&self.last_intake_us))
                < INTAKE_QUIET
    }

    /// Whether the intake's writer waits for its turn.
    pub fn intake_waits(&self) -> bool {
        self.intake_waiting.load(Ordering::SeqCst) > 0
    }
}

/// Rate limiter and grouped writer of one service instance.
pub struct Intake {
    store: Store,
    rate: f64,
    burst: f64,
    buckets: parking_lot::Mutex<HashMap<ConnectionId, Bucket>>,
    writer: OnceLock<mpsc::Sender<(Delivery, Reply)>>,
    turn: Arc<WriteTurn>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// For a store and the `[webhooks]` settings.
    pub fn new(store: Store, config: &WebhooksConfig) -> Self {
        Self {
            store,
            rate: config.inbound_rate_per_second as f64,
            burst: config.inbound_burst.max(1) as f64,
            buckets: parking_lot::Mutex::default(),
            writer: OnceLock::new(),
            turn: Arc::default(),
        }
    }

    /// Turns at writing between this intake and the apply worker.
    pub fn turn(&self) -> &WriteTurn {
        &self.turn
    }

    /// Take one delivery's worth from the connection's bucket: `Err(seconds to wait)`
    /// when it is empty. Always `Ok` when the limit is off.
    pub fn admit(&self, connection: &ConnectionId) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let b = buckets.entry(connection.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / self.rate).ceil().max(1.0);
            Err(wait as u64)
        }
    }

    /// Store a delivery (grouped with concurrent ones); answers once committed whether
    /// it was new (`false`: its identifier was stored before).
    /// `Err` says why it could not be stored (the database failed; the sender should
    /// retry).
    pub async fn store(&self, delivery: Delivery) -> Result<bool, String> {
        let tx = self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(write_loop(self.store.clone(), self.turn.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        if tx.send((delivery, reply)).await.is_err() {
            return Err("the inbound writer stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the inbound writer stopped".into()))
    }
}

/// Store queued deliveries in groups until every sender is gone.
async fn write_loop(store: Store, turn: Arc<WriteTurn>, mut rx: mpsc::Receiver<(Delivery, Reply)>) {
    let mut group: Vec<(Delivery, Reply)> = Vec::with_capacity(GROUP_MAX);
    while rx.recv_many(&mut group, GROUP_MAX).await > 0 {
        let news: Vec<NewInbound<'_>> = group
            .iter()
            .map(|(d, _)| NewInbound {
                tenant_id: &d.tenant_id,
                connection_id: &d.connection_id,
                identifier: &d.identifier,
                event: &d.event,
                body: &d.body,
            })
            .collect();
        let my_turn = turn.intake().await;
        let result = store.insert_inbound_batch(&news).await;
        drop(my_turn);
        drop(news);
        match result {
            Ok(inserted) => {
                if inserted.iter().any(|n| *n) {
                    super::worker::wake();
                }
                for ((_, reply), new) in group.drain(..).zip(inserted) {
                    let _ = reply.send(Ok(new));
                }
            }
            Err(e) => {
                tracing::warn!(error = ?e, n = group.len(), "inbound webhooks: could not store a group");
                let msg = e.to_string();
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}
