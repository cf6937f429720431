//! The event outbox, outbound webhook subscriptions, deliveries and attempts.
//!
//! - **Events** are appended inside the transaction that makes the change they
//!   describe ([`StoreTx::append_event`]). Each gets an `evt_…` id and a sequence
//!   number `seq` that is unique and increasing in commit order across the whole
//!   database: appends serialise on one counter row, held until commit. `seq` is the
//!   cursor of the event stream (`after=` / SSE `Last-Event-ID`).
//! - **Fan-out** happens in the same transaction: one `pending` delivery per enabled
//!   subscription of the tenant whose type filter matches (an empty filter matches
//!   all types).
//! - **Deliveries** are claimed with a lease ([`Store::claim_deliveries`]; `FOR UPDATE
//!   SKIP LOCKED` on PostgreSQL), and finished with [`Store::finish_delivery`], which
//!   records the attempt and only counts if the caller still holds the lease, so a
//!   delivery is marked succeeded at most once whatever the number of replicas.
//! - On PostgreSQL every append also sends `NOTIFY` on [`EVENTS_CHANNEL`] at commit;
//!   [`Store::listen_events`] receives them on any replica.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::tx::on_tx;
use crate::{Page, PageRequest, Result, Store, StoreError, StoreTx, TenantId, Timestamp};

crate::define_id!(
    /// A domain event.
    EventId, "evt", "event"
);
crate::define_id!(
    /// An outbound webhook subscription.
    SubscriptionId, "sub", "subscription"
);
crate::define_id!(
    /// One signing secret of a subscription.
    SubscriptionSecretId, "whk", "subscription secret"
);
crate::define_id!(
    /// The delivery of one event to one subscription.
    DeliveryId, "dlv", "delivery"
);
crate::define_id!(
    /// One attempt of a delivery.
    AttemptId, "att", "delivery attempt"
);

static LOCAL_COMMITS: std::sync::LazyLock<tokio::sync::watch::Sender<u64>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::Sender::new(0));

/// A counter bumped whenever a transaction of this process that appended events
/// commits. Waiters (SSE streams, the delivery worker) wake on a change and re-read
/// the store; a change may come from another store in the same process, so treat it
/// as a hint. Other processes are heard through [`Store::listen_events`].
pub fn local_commits() -> tokio::sync::watch::Receiver<u64> {
    LOCAL_COMMITS.subscribe()
}

/// Bump [`local_commits`] by hand, e.g. after re-queuing a delivery, so the worker
/// looks now rather than at its next poll.
pub fn signal_local_commit() {
    LOCAL_COMMITS.send_modify(|n| *n = n.wrapping_add(1));
}

/// PostgreSQL `NOTIFY` channel an append signals on (payload: the event's `seq`).
pub const EVENTS_CHANNEL: &str = "jira_bridge_events";

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Event {
    /// Id (`evt_…`).
    pub id: EventId,
    /// Position in the database-wide stream.
    pub seq: i64,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Event type, e.g. `ticket.created`.
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// Id of the thing the event is about (`tkt_…`, `job_…`, …).
    pub subject: Option<String>,
    /// The payload.
    #[sqlx(json)]
    pub data: serde_json::Value,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Event type.
    pub event_type: String,
    /// Subject id.
    pub subject: Option<String>,
    /// Payload.
    pub data: serde_json::Value,
}

/// What an append did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The stored event.
    pub event: Event,
    /// Deliveries created for it (one per matching subscription).
    pub deliveries: usize,
}

/// A subscription as stored (its secrets are in [`SubscriptionSecret`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Subscription {
    /// Id (`sub_…`).
    pub id: SubscriptionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Event types delivered; empty means all.
    #[sqlx(json)]
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Disabled subscriptions get no new deliveries.
    pub enabled: bool,
    /// Why it was disabled, if it was disabled automatically or with a reason.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (`None` after a success).
    pub failing_since: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// Whether events of `event_type` go to this subscription.
    pub fn matches(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// A sealed signing secret of a subscription.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionSecret {
    /// Id; the seal's additional data is bound to it.
    pub id: SubscriptionSecretId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Ciphertext.
    pub secret: Vec<u8>,
    /// Key id it is sealed under.
    pub secret_key_id: String,
    /// `None` for the current secret; the end of the grace period for a rotated one.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for SubscriptionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionSecret")
            .field("id", &self.id)
            .field("subscription_id", &self.subscription_id)
            .field("secret", &"[sealed]")
            .field("secret_key_id", &self.secret_key_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A sealed secret to store; the caller makes `id` first and seals against it.
#[derive(Clone)]
pub struct NewSubscriptionSecret {
    /// Id the seal is bound to.
    pub id: SubscriptionSecretId,
    /// Ciphertext.
    pub secret: Vec<u8>,
    /// Key id.
    pub secret_key_id: String,
}

impl std::fmt::Debug for NewSubscriptionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscriptionSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A subscription to insert.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Id.
    pub id: SubscriptionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Target URL (already checked by the caller).
    pub url: String,
    /// Event type filter; empty = all.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Its first signing secret.
    pub secret: NewSubscriptionSecret,
}

/// Changes to a subscription; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    /// New URL.
    pub url: Option<String>,
    /// New filter.
    pub event_types: Option<Vec<String>>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Enable (clears the disabled reason and the failing streak) or disable.
    pub enabled: Option<bool>,
}

/// State of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not attempted yet.
    Pending,
    /// Delivered (a 2xx answer in time).
    Succeeded,
    /// The last attempt failed; another is scheduled at `next_attempt_at`.
    Failed,
    /// Every scheduled attempt failed, or the subscription was disabled.
    Exhausted,
}

impl DeliveryState {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Exhausted => "exhausted",
        }
    }

    /// From stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "exhausted" => Self::Exhausted,
            _ => return None,
        })
    }
}

/// A delivery as stored, with its event's type.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Delivery {
    /// Id (`dlv_…`).
    pub id: DeliveryId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The event.
    pub event_id: EventId,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `succeeded`, `failed` or `exhausted` (see [`DeliveryState`]).
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending / failed).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last attempt, if it got an answer.
    pub last_status: Option<i32>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    /// The state as an enum.
    pub fn state(&self) -> Result<DeliveryState> {
        DeliveryState::parse(&self.state)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery state {:?}", self.state)))
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct DeliveryAttempt {
    /// Id (`att_…`).
    pub id: AttemptId,
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// When it started.
    pub attempted_at: DateTime<Utc>,
    /// HTTP status, if an answer came.
    pub status_code: Option<i32>,
    /// How long it took.
    pub duration_ms: i64,
    /// Transport error, timeout or non-2xx summary.
    pub error: Option<String>,
    /// The start of the response body.
    pub response_snippet: Option<String>,
}

/// An attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// When it started.
    pub attempted_at: Timestamp,
    /// HTTP status, if an answer came.
    pub status_code: Option<i32>,
    /// How long it took.
    pub duration_ms: i64,
    /// Error summary (`None` on success).
    pub error: Option<String>,
    /// The start of the response body.
    pub response_snippet: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// It succeeded.
    Succeeded,
    /// It failed; try again at this time.
    RetryAt(Timestamp),
    /// It failed and no attempt is left.
    Exhausted,
}

/// A claimed delivery with what is needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryTask {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Where to POST.
    pub url: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The event id (the `webhook-id`).
    pub event_id: EventId,
    /// The event's sequence number.
    pub event_seq: i64,
    /// The event's type.
    pub event_type: String,
    /// The event's subject.
    pub subject: Option<String>,
    /// The event's payload.
    #[sqlx(json)]
    pub data: serde_json::Value,
    /// When the event was appended.
    pub event_created_at: DateTime<Utc>,
}

/// Result of [`Store::finish_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// False when the lease was lost (another worker owns the delivery now): nothing
    /// was recorded.
    pub recorded: bool,
    /// The subscription's failing streak start after this attempt.
    pub failing_since: Option<DateTime<Utc>>,
}

const EVENT_COLUMNS: &str = "id, seq, tenant_id, type, subject, data, created_at";
const SUBSCRIPTION_COLUMNS: &str = "id, tenant_id, url, event_types, description, enabled, \
    disabled_reason, failing_since, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "d.id, d.tenant_id, d.subscription_id, d.event_id, \
    e.type AS event_type, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, \
    d.created_at, d.updated_at";
const ATTEMPT_COLUMNS: &str =
    "a.id, a.delivery_id, a.attempt, a.attempted_at, a.status_code, a.duration_ms, a.error, \
    a.response_snippet";
const TASK_SELECT: &str = "SELECT d.id AS delivery_id, d.tenant_id, d.subscription_id, s.url, \
    d.attempts, e.id AS event_id, e.seq AS event_seq, e.type AS event_type, e.subject, e.data, \
    e.created_at AS event_created_at
    FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
    JOIN events e ON e.id = d.event_id";

impl StoreTx {
    /// Append an event and fan it out to the tenant's matching, enabled
    /// subscriptions, inside this transaction. Appends serialise on the sequence
    /// counter until commit, so append late in a transaction and keep it short.
    pub async fn append_event(&mut self, new: NewEvent) -> Result<Appended> {
        let now = Timestamp::now();
        let id = EventId::new();
        let event = on_tx!(self, conn => {
            let seq: i64 = sqlx::query_scalar(
                "UPDATE event_sequence SET last = last + 1 WHERE id = 1 RETURNING last",
            )
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query_as::<_, Event>(&format!(
                "INSERT INTO events (id, seq, tenant_id, type, subject, data, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EVENT_COLUMNS}"
            ))
            .bind(&id)
            .bind(seq)
            .bind(&new.tenant_id)
            .bind(&new.event_type)
            .bind(&new.subject)
            .bind(Json(&new.data))
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
        });
        let subs = on_tx!(self, conn => {
            sqlx::query_as::<_, Subscription>(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions
                 WHERE tenant_id = $1 AND enabled = TRUE ORDER BY id"
            ))
            .bind(&new.tenant_id)
            .fetch_all(&mut *conn)
            .await?
        });
        let mut deliveries = 0;
        for sub in subs.iter().filter(|s| s.matches(&event.event_type)) {
            on_tx!(self, conn => {
                sqlx::query(
                    "INSERT INTO deliveries (id, tenant_id, subscription_id, event_id, state,
                         next_attempt_at, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
                )
                .bind(DeliveryId::new())
                .bind(&event.tenant_id)
                .bind(&sub.id)
                .bind(&event.id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            });
            deliveries += 1;
        }
        self.appended_events = true;
        if let crate::tx::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(EVENTS_CHANNEL)
                .bind(event.seq.to_string())
                .execute(&mut **t)
                .await?;
        }
        Ok(Appended { event, deliveries })
    }

    /// Disable a tenant's subscription with a reason; its outstanding deliveries
    /// become `exhausted`. `false` if there is no such subscription or it was already
    /// disabled.
    pub async fn disable_subscription(
        &mut self,
        tenant: &TenantId,
        id: &SubscriptionId,
        reason: &str,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let n = on_tx!(self, conn => {
            sqlx::query(
                "UPDATE subscriptions SET enabled = FALSE, disabled_reason = $3, updated_at = $4
                 WHERE tenant_id = $1 AND id = $2 AND enabled = TRUE",
            )
            .bind(tenant)
            .bind(id)
            .bind(reason)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Ok(false);
        }
        on_tx!(self, conn => {
            sqlx::query(
                "UPDATE deliveries SET state = 'exhausted', next_attempt_at = NULL,
                     lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = $3
                 WHERE subscription_id = $1 AND state IN ('pending', 'failed')",
            )
            .bind(id)
            .bind(format!("subscription disabled: {reason}"))
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(true)
    }
}

impl Store {
    /// Append an event in a transaction of its own (for events that describe no
    /// other write). See [`StoreTx::append_event`].
    pub async fn append_event(&self, new: NewEvent) -> Result<Appended> {
        let mut tx = self.begin().await?;
        let appended = tx.append_event(new).await?;
        tx.commit().await?;
        Ok(appended)
    }

    /// A tenant's events with `seq > after` (all when `None`), oldest first, at most
    /// `limit`.
    pub async fn list_events(
        &self,
        tenant: &TenantId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Event>(&format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ))
            .bind(tenant)
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's event.
    pub async fn get_event(&self, tenant: &TenantId, id: &EventId) -> Result<Option<Event>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Event>(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// The highest sequence number committed so far (0 when there is none).
    pub async fn last_event_seq(&self) -> Result<i64> {
        on_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(pool)
                .await
                .map_err(StoreError::from_sqlx)
        })
    }

    /// Create a subscription with its first secret.
    pub async fn create_subscription(&self, new: NewSubscription) -> Result<Subscription> {
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let sub = on_tx!(tx, conn => {
            sqlx::query_as::<_, Subscription>(&format!(
                "INSERT INTO subscriptions (id, tenant_id, url, event_types, description,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {SUBSCRIPTION_COLUMNS}"
            ))
            .bind(&new.id)
            .bind(&new.tenant_id)
            .bind(&new.url)
            .bind(Json(&new.event_types))
            .bind(&new.description)
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?
        });
        insert_secret(&mut tx, &new.id, &new.secret, now).await?;
        tx.commit().await?;
        Ok(sub)
    }

    /// A tenant's subscription.
    pub async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Subscription>(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A tenant's subscriptions, newest first.
    pub async fn list_subscriptions(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<Subscription>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Subscription>(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
            ))
            .bind(tenant)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, page, |s| s.id.as_str()))
    }

    /// Change a tenant's subscription. Re-enabling clears the disabled reason and the
    /// failing streak. `None` if there is no such subscription.
    pub async fn update_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        patch: SubscriptionPatch,
    ) -> Result<Option<Subscription>> {
        let now = Timestamp::now();
        let (set_desc, desc) = match patch.description {
            None => (false, None),
            Some(d) => (true, d),
        };
        on_pool!(self, pool => {
            sqlx::query_as::<_, Subscription>(&format!(
                "UPDATE subscriptions SET
                     url = COALESCE($3, url),
                     event_types = COALESCE($4, event_types),
                     description = CASE WHEN $5 THEN $6 ELSE description END,
                     enabled = COALESCE($7, enabled),
                     disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                                            WHEN $7 THEN NULL ELSE disabled_reason END,
                     failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END,
                     updated_at = $8
                 WHERE tenant_id = $1 AND id = $2 RETURNING {SUBSCRIPTION_COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(patch.url)
            .bind(patch.event_types.map(Json))
            .bind(set_desc)
            .bind(desc)
            .bind(patch.enabled)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Delete a tenant's subscription with its deliveries; `false` if there was none.
    pub async fn delete_subscription(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
    ) -> Result<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM subscriptions WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Rotate a subscription's secret: the current secret(s) stay valid until
    /// `previous_valid_until`, `new` becomes current. `false` if there is no such
    /// subscription for the tenant.
    pub async fn rotate_subscription_secret(
        &self,
        tenant: &TenantId,
        id: &SubscriptionId,
        new: &NewSubscriptionSecret,
        previous_valid_until: Timestamp,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, conn => {
            sqlx::query("UPDATE subscriptions SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Ok(false);
        }
        on_tx!(tx, conn => {
            sqlx::query(
                "UPDATE subscription_secrets SET expires_at = $2
                 WHERE subscription_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(id)
            .bind(previous_valid_until)
            .execute(&mut *conn)
            .await?;
            // Secrets past their grace period are of no use any more.
            sqlx::query("DELETE FROM subscription_secrets WHERE subscription_id = $1 AND expires_at <= $2")
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        });
        insert_secret(&mut tx, id, new, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The secrets valid at `at` (current first, then rotated ones still in their
    /// grace period). Callers have checked the tenant owns `subscription`.
    pub async fn subscription_secrets(
        &self,
        subscription: &SubscriptionId,
        at: Timestamp,
    ) -> Result<Vec<SubscriptionSecret>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, SubscriptionSecret>(
                "SELECT id, subscription_id, secret, secret_key_id, expires_at, created_at
                 FROM subscription_secrets
                 WHERE subscription_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                 ORDER BY (expires_at IS NULL) DESC, id DESC",
            )
            .bind(subscription)
            .bind(at)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Lease up to `limit` due deliveries of enabled subscriptions to `owner` until
    /// `lease_until`. A delivery whose lease expired (its worker died) is due again.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DeliveryTask>> {
        const DUE: &str = "SELECT d.id FROM deliveries d
            JOIN subscriptions s ON s.id = d.subscription_id
            WHERE d.state IN ('pending', 'failed') AND d.next_attempt_at <= $3
              AND (d.lease_until IS NULL OR d.lease_until < $3) AND s.enabled = TRUE
            ORDER BY d.next_attempt_at, d.id LIMIT $4";
        let ids: Vec<DeliveryId> = match &self.pool {
            crate::Pool::Postgres(pool) => {
                sqlx::query_scalar(&format!(
                    "UPDATE deliveries SET lease_owner = $1, lease_until = $2
                     WHERE id IN ({DUE} FOR UPDATE OF d SKIP LOCKED) RETURNING id"
                ))
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
            }
            crate::Pool::Sqlite(pool) => {
                sqlx::query_scalar(&format!(
                    "UPDATE deliveries SET lease_owner = $1, lease_until = $2
                     WHERE id IN ({DUE}) RETURNING id"
                ))
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
            }
        };
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let task = on_pool!(self, pool => {
                sqlx::query_as::<_, DeliveryTask>(&format!(
                    "{TASK_SELECT} WHERE d.id = $1 AND d.lease_owner = $2"
                ))
                .bind(&id)
                .bind(owner)
                .fetch_optional(pool)
                .await?
            });
            tasks.extend(task);
        }
        tasks.sort_by_key(|t| t.event_seq);
        Ok(tasks)
    }

    /// Record an attempt and the delivery's new state, if `owner` still holds the
    /// lease (otherwise nothing is written and `recorded` is false). Also updates the
    /// subscription's failing streak: cleared on success, started on failure.
    pub async fn finish_delivery(
        &self,
        delivery: &DeliveryId,
        owner: &str,
        attempt: NewAttempt,
        result: AttemptResult,
    ) -> Result<Finished> {
        let now = Timestamp::now();
        let (state, next) = match result {
            AttemptResult::Succeeded => (DeliveryState::Succeeded, None),
            AttemptResult::RetryAt(at) => (DeliveryState::Failed, Some(at)),
            AttemptResult::Exhausted => (DeliveryState::Exhausted, None),
        };
        let mut tx = self.begin().await?;
        let updated: Option<(i32, SubscriptionId)> = on_tx!(tx, conn => {
            sqlx::query_as(
                "UPDATE deliveries SET state = $3, attempts = attempts + 1, next_attempt_at = $4,
                     lease_owner = NULL, lease_until = NULL, last_status = $5, last_error = $6,
                     updated_at = $7
                 WHERE id = $1 AND lease_owner = $2 AND state IN ('pending', 'failed')
                 RETURNING attempts, subscription_id",
            )
            .bind(delivery)
            .bind(owner)
            .bind(state.as_str())
            .bind(next)
            .bind(attempt.status_code)
            .bind(&attempt.error)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        });
        let Some((number, subscription)) = updated else {
            return Ok(Finished {
                recorded: false,
                failing_since: None,
            });
        };
        let failing_since: Option<DateTime<Utc>> = on_tx!(tx, conn => {
            sqlx::query(
                "INSERT INTO delivery_attempts (id, delivery_id, attempt, attempted_at,
                     status_code, duration_ms, error, response_snippet)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(AttemptId::new())
            .bind(delivery)
            .bind(number)
            .bind(attempt.attempted_at)
            .bind(attempt.status_code)
            .bind(attempt.duration_ms)
            .bind(&attempt.error)
            .bind(&attempt.response_snippet)
            .execute(&mut *conn)
            .await?;
            sqlx::query_scalar(
                "UPDATE subscriptions SET failing_since = CASE WHEN $2 THEN NULL
                     ELSE COALESCE(failing_since, $3) END
                 WHERE id = $1 RETURNING failing_since",
            )
            .bind(&subscription)
            .bind(result == AttemptResult::Succeeded)
            .bind(attempt.attempted_at)
            .fetch_one(&mut *conn)
            .await?
        });
        tx.commit().await?;
        Ok(Finished {
            recorded: true,
            failing_since,
        })
    }

    /// Give a claimed delivery back without an attempt (e.g. on shutdown).
    pub async fn release_delivery(&self, delivery: &DeliveryId, owner: &str) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(delivery)
            .bind(owner)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Queue a tenant's delivery for one more attempt now (whatever its state). `None`
    /// if there is no such delivery of that subscription for the tenant.
    pub async fn retry_delivery(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        delivery: &DeliveryId,
    ) -> Result<Option<Delivery>> {
        let now = Timestamp::now();
        let n = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = $4,
                     lease_owner = NULL, lease_until = NULL, updated_at = $4
                 WHERE tenant_id = $1 AND subscription_id = $2 AND id = $3",
            )
            .bind(tenant)
            .bind(subscription)
            .bind(delivery)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Ok(None);
        }
        self.get_delivery(tenant, delivery).await
    }

    /// A tenant's delivery.
    pub async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, Delivery>(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.tenant_id = $1 AND d.id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// A subscription's deliveries, newest first, each with its attempts (oldest
    /// first).
    pub async fn list_deliveries(
        &self,
        tenant: &TenantId,
        subscription: &SubscriptionId,
        page: &PageRequest,
    ) -> Result<Page<(Delivery, Vec<DeliveryAttempt>)>> {
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, Delivery>(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.tenant_id = $1 AND d.subscription_id = $2 AND ($3 IS NULL OR d.id < $3)
                 ORDER BY d.id DESC LIMIT $4"
            ))
            .bind(tenant)
            .bind(subscription)
            .bind(page.after())
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await?
        });
        let page = Page::from_overfetch(rows, page, |d| d.id.as_str());
        let (Some(newest), Some(oldest)) = (page.items.first(), page.items.last()) else {
            return Ok(page.map(|d| (d, Vec::new())));
        };
        let attempts = on_pool!(self, pool => {
            sqlx::query_as::<_, DeliveryAttempt>(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts a
                 JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.tenant_id = $1 AND d.subscription_id = $2 AND d.id >= $3 AND d.id <= $4
                 ORDER BY a.delivery_id, a.attempt"
            ))
            .bind(tenant)
            .bind(subscription)
            .bind(&oldest.id)
            .bind(&newest.id)
            .fetch_all(pool)
            .await?
        });
        Ok(page.map(|d| {
            let mine = attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .cloned()
                .collect();
            (d, mine)
        }))
    }

    /// A tenant's delivery's attempts, oldest first.
    pub async fn list_delivery_attempts(
        &self,
        tenant: &TenantId,
        delivery: &DeliveryId,
    ) -> Result<Vec<DeliveryAttempt>> {
        on_pool!(self, pool => {
            sqlx::query_as::<_, DeliveryAttempt>(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts a
                 JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.tenant_id = $1 AND d.id = $2 ORDER BY a.attempt"
            ))
            .bind(tenant)
            .bind(delivery)
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// When the earliest unleased delivery of an enabled subscription is due, if any
    /// (the delivery worker sleeps until then).
    pub async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>> {
        on_pool!(self, pool => {
            sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
                "SELECT MIN(d.next_attempt_at) FROM deliveries d
                 JOIN subscriptions s ON s.id = d.subscription_id
                 WHERE d.state IN ('pending', 'failed') AND s.enabled = TRUE",
            )
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)
        })
    }

    /// Receive the `NOTIFY` of every append on any replica (PostgreSQL only; `None`
    /// on SQLite, where all writers are in this process). To hear other channels too,
    /// use [`Store::listen`].
    pub async fn listen_events(&self) -> Result<Option<EventListener>> {
        Ok(self.listen().await?.map(|inner| EventListener { inner }))
    }
}

async fn insert_secret(
    tx: &mut StoreTx,
    subscription: &SubscriptionId,
    secret: &NewSubscriptionSecret,
    now: Timestamp,
) -> Result<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO subscription_secrets (id, subscription_id, secret, secret_key_id,
                 created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&secret.id)
        .bind(subscription)
        .bind(&secret.secret)
        .bind(&secret.secret_key_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// Notifications of appended events (PostgreSQL `LISTEN`).
pub struct EventListener {
    inner: crate::notify::ChangeListener,
}

impl std::fmt::Debug for EventListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventListener")
    }
}

impl EventListener {
    /// Wait for the next notification; its `seq` if the payload is one. After a lost
    /// connection the listener reconnects and answers `Ok(None)`: events may have been
    /// missed, so re-read from the store.
    pub async fn recv(&mut self) -> Result<Option<i64>> {
        loop {
            match self.inner.recv().await? {
                None => return Ok(None),
                Some(n) if n.channel == crate::notify::Channel::Events => {
                    return Ok(n.payload.parse().ok())
                }
                Some(_) => {}
            }
        }
    }
}
