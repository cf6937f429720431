//! Domain events out: the outbox, outbound webhooks (Standard Webhooks) and the live
//! stream (`GET /v1/events`, SSE or JSON pages).
//!
//! # Emitting an event (any module)
//!
//! Append the event in the transaction that makes the change, then commit:
//!
//! ```ignore
//! let mut tx = store.begin().await?;
//! tx.set_link_status(&tenant, &link, "Done").await?;           // the module's own write
//! events::append(&mut tx, &tenant, EventType::TicketStatusChanged,
//!     Some(link.as_str()), json!({"ticket_id": link, "from": "To Do", "to": "Done"})).await?;
//! tx.commit().await?;
//! ```
//!
//! The append fans the event out to the tenant's matching subscriptions as
//! deliveries in the same transaction. On commit, this process's SSE streams and
//! delivery worker wake; on PostgreSQL, `NOTIFY` wakes those of other replicas.
//!
//! # Following the stream (any module)
//!
//! [`Wake`] waits for "something was appended" (locally or, on PostgreSQL, on any
//! replica), with a polling fallback; re-read with
//! [`Store::list_events`](jira_bridge_store::Store::list_events) from your cursor
//! after each wake.
//!
//! # Delivery
//!
//! [`start`] runs the delivery worker: it leases
//! due deliveries, POSTs them signed, records every attempt, schedules retries by
//! [`EventsSettings::retry_schedule`] and disables a subscription that has failed
//! continuously for [`EventsSettings::disable_after`], emitting
//! `subscription.disabled`.

pub mod api;
pub mod signing;
pub mod subscriptions;
pub mod worker;

use std::sync::LazyLock;
use std::time::Duration;

use jira_bridge_store::events::{Appended, NewEvent};
use jira_bridge_store::{Result as StoreResult, StoreTx, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::app::App;

/// Every type of event jira-bridge emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// A ticket (and its Jira issue) was created.
    #[serde(rename = "ticket.created")]
    TicketCreated,
    /// A linked issue's status changed.
    #[serde(rename = "ticket.status_changed")]
    TicketStatusChanged,
    /// Creating a ticket failed for good.
    #[serde(rename = "ticket.failed")]
    TicketFailed,
    /// A time entry's worklog was created or updated.
    #[serde(rename = "worklog.synced")]
    WorklogSynced,
    /// Syncing a worklog failed.
    #[serde(rename = "worklog.failed")]
    WorklogFailed,
    /// A worklog was deleted.
    #[serde(rename = "worklog.deleted")]
    WorklogDeleted,
    /// A job made progress.
    #[serde(rename = "job.progress")]
    JobProgress,
    /// A job finished.
    #[serde(rename = "job.finished")]
    JobFinished,
    /// An export finished.
    #[serde(rename = "export.finished")]
    ExportFinished,
    /// Every platform ticket of a release reached its completed status.
    #[serde(rename = "release.completed")]
    ReleaseCompleted,
    /// A connection was verified.
    #[serde(rename = "connection.verified")]
    ConnectionVerified,
    /// A connection's credentials expired or were revoked.
    #[serde(rename = "connection.expired")]
    ConnectionExpired,
    /// A subscription was disabled after failing continuously.
    #[serde(rename = "subscription.disabled")]
    SubscriptionDisabled,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 13] = [
        Self::TicketCreated,
        Self::TicketStatusChanged,
        Self::TicketFailed,
        Self::WorklogSynced,
        Self::WorklogFailed,
        Self::WorklogDeleted,
        Self::JobProgress,
        Self::JobFinished,
        Self::ExportFinished,
        Self::ReleaseCompleted,
        Self::ConnectionVerified,
        Self::ConnectionExpired,
        Self::SubscriptionDisabled,
    ];

    /// The wire name, e.g. `ticket.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketCreated => "ticket.created",
            Self::TicketStatusChanged => "ticket.status_changed",
            Self::TicketFailed => "ticket.failed",
            Self::WorklogSynced => "worklog.synced",
            Self::WorklogFailed => "worklog.failed",
            Self::WorklogDeleted => "worklog.deleted",
            Self::JobProgress => "job.progress",
            Self::JobFinished => "job.finished",
            Self::ExportFinished => "export.finished",
            Self::ReleaseCompleted => "release.completed",
            Self::ConnectionVerified => "connection.verified",
            Self::ConnectionExpired => "connection.expired",
            Self::SubscriptionDisabled => "subscription.disabled",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Append an event inside `tx` (the transaction that makes the change it reports).
/// `subject` is the id of the thing it is about; `data` its payload (see
/// `docs/events.md`). Commit `tx` to publish it.
pub async fn append(
    tx: &mut StoreTx,
    tenant: &TenantId,
    event_type: EventType,
    subject: Option<&str>,
    data: serde_json::Value,
) -> StoreResult<Appended> {
    tx.append_event(NewEvent {
        tenant_id: tenant.clone(),
        event_type: event_type.as_str().to_owned(),
        subject: subject.map(str::to_owned),
        data,
    })
    .await
}

/// Tunables of delivery. The defaults are the production schedule.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    /// Delay before each retry after a failed attempt; the first attempt is
    /// immediate, so attempts = 1 + `retry_schedule.len()`. Default: 5 s, 5 min,
    /// 30 min, 2 h, 5 h, 10 h, 10 h.
    pub retry_schedule: Vec<Duration>,
    /// An attempt succeeds only with a 2xx answer within this time. Default 15 s.
    pub request_timeout: Duration,
    /// A subscription whose attempts have all failed for this long is disabled.
    /// Default 5 days.
    pub disable_after: Duration,
    /// How long a claimed delivery stays leased to one worker (longer than the
    /// request timeout). Default 60 s.
    pub lease: Duration,
    /// Longest wait between looks at the outbox when no wake-up arrives. Default 1 s.
    pub poll_interval: Duration,
    /// Deliveries claimed per look. Default 32.
    pub batch: u32,
    /// Deliveries sent at once. Default 8.
    pub concurrency: usize,
}

impl Default for EventsSettings {
    fn default() -> Self {
        let min = 60;
        let hour = 60 * min;
        Self {
            retry_schedule: [
                5,
                5 * min,
                30 * min,
                2 * hour,
                5 * hour,
                10 * hour,
                10 * hour,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            request_timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(5 * 24 * hour),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            batch: 32,
            concurrency: 8,
        }
    }
}

/// How long a rotated-out secret keeps signing deliveries alongside the new one.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest an SSE stream waits before looking at the outbox again without a wake-up.
pub const STREAM_POLL: Duration = Duration::from_secs(2);

/// Interval of SSE heartbeat comments.
pub const STREAM_HEARTBEAT: Duration = Duration::from_secs(15);

static REMOTE_APPENDS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

pub(crate) fn signal_remote_append() {
    REMOTE_APPENDS.send_modify(|n| *n = n.wrapping_add(1));
}

/// Waits for "an event may have been appended": a commit in this process, a
/// PostgreSQL notification from any replica (while [`crate::changes`] listens), or
/// the end of a polling interval. Create it before the first read so no append
/// between the read and the wait is missed.
#[derive(Debug)]
pub struct Wake {
    local: watch::Receiver<u64>,
    remote: watch::Receiver<u64>,
}

impl Default for Wake {
    fn default() -> Self {
        Self::new()
    }
}

impl Wake {
    /// Start watching.
    pub fn new() -> Self {
        Self {
            local: jira_bridge_store::events::local_commits(),
            remote: REMOTE_APPENDS.subscribe(),
        }
    }

    /// Return at the next wake-up, or after `at_most`.
    pub async fn wait(&mut self, at_most: Duration) {
        tokio::select! {
            _ = self.local.changed() => {}
            _ = self.remote.changed() => {}
            _ = tokio::time::sleep(at_most) => {}
        }
    }
}

// SSE streams run until the client leaves; on shutdown they must end so that the
// server can drain. Handlers only see `AppState`, so the shutdown token of each
// running service is found by the identity of its shared configuration.
static STREAM_SHUTDOWN: LazyLock<std::sync::Mutex<Vec<(usize, CancellationToken)>>> =
    LazyLock::new(Default::default);

fn state_key(state: &crate::http::AppState) -> usize {
    std::sync::Arc::as_ptr(&state.config) as usize
}

/// The token that ends this service's streams (a never-cancelled one when [`start`]
/// was not called).
pub(crate) fn stream_shutdown(state: &crate::http::AppState) -> CancellationToken {
    let key = state_key(state);
    STREAM_SHUTDOWN
        .lock()
        .ok()
        .and_then(|l| l.iter().find(|(k, _)| *k == key).map(|(_, t)| t.clone()))
        .unwrap_or_default()
}

/// Start event delivery as a background task of `app`, until `shutdown`; on
/// shutdown, end its SSE streams. Other replicas' appends are heard through
/// [`crate::changes::start`].
pub fn start(app: &App, settings: EventsSettings, shutdown: &CancellationToken) {
    let key = state_key(app.state());
    if let Ok(mut l) = STREAM_SHUTDOWN.lock() {
        // An entry left by a stopped service whose runtime ended before it could
        // remove it (several services in one process, as in tests) must not be taken
        // for this one's when the allocator hands out the same address again: its
        // token is cancelled and would end every new stream at once.
        l.retain(|(k, t)| *k != key && !t.is_cancelled());
        l.push((key, shutdown.clone()));
    }
    app.spawn_background("events-streams", shutdown, move |_, token| async move {
        token.cancelled().await;
        if let Ok(mut l) = STREAM_SHUTDOWN.lock() {
            l.retain(|(k, _)| *k != key);
        }
        Ok(())
    });
    app.spawn_background("events-delivery", shutdown, move |state, token| {
        worker::run(state, settings, token)
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn event_types_round_trip_and_match_serde() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(EventType::parse("ticket.nope"), None);
    }

    #[test]
    fn default_schedule_is_the_documented_one() {
        let s = EventsSettings::default();
        let secs: Vec<u64> = s.retry_schedule.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert!(s.lease > s.request_timeout);
    }
}
