//! The delivery worker: lease due deliveries, POST them signed, record the attempt,
//! schedule the retry or give up, disable endpoints that fail for too long.
//!
//! Leases make replicas share the work without sending twice in the normal course;
//! a delivery whose worker died is leased again when its lease ends (at-least-once
//! sending, so receivers deduplicate on `webhook-id`). A delivery is *recorded* as
//! succeeded at most once: finishing requires the lease.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use jira_bridge_store::events::{AttemptResult, DeliveryTask, NewAttempt};
use jira_bridge_store::{StoreError, Timestamp};
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{signing, subscriptions, EventType, EventsSettings, Wake};
use crate::http::AppState;
use crate::net_guard::{self, UrlPolicy};

/// Bytes of a response body kept with an attempt.
pub const SNIPPET_BYTES: usize = 1024;

/// Run the delivery loop until `shutdown`.
pub async fn run(
    state: AppState,
    settings: EventsSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let policy = UrlPolicy::from_config(&state.config);
    let client = net_guard::client_builder(policy)
        .timeout(settings.request_timeout)
        .user_agent(concat!(
            "jira-bridge/",
            env!("CARGO_PKG_VERSION"),
            " (webhooks)"
        ))
        .build()?;
    let owner = format!("dw-{}", uuid::Uuid::new_v4().simple());
    let worker = Worker {
        state,
        settings,
        client,
        policy,
        owner,
    };
    let mut wake = Wake::new();
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match worker.tick().await {
            Ok(0) => {
                failures = 0;
                let wait = worker.idle_wait().await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wake.wait(wait) => {}
                }
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = ?e, "event delivery: store error; backing off");
                let wait = Duration::from_millis(100 * 2u64.pow(failures.min(7)));
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    Ok(())
}

/// One delivery worker.
pub struct Worker {
    state: AppState,
    settings: EventsSettings,
    client: reqwest::Client,
    policy: UrlPolicy,
    owner: String,
}

impl Worker {
    /// Claim and send one batch of due deliveries; answers how many were handled.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let lease_until = Timestamp::from(
            now.as_datetime() + chrono::Duration::from_std(self.settings.lease).unwrap_or_default(),
        );
        let tasks = self
            .state
            .store
            .claim_deliveries(&self.owner, now, lease_until, self.settings.batch)
            .await?;
        let n = tasks.len();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(tasks)
            .map(|t| self.deliver(t))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn idle_wait(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.state.store.next_delivery_due().await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(poll),
            _ => poll,
        }
    }

    fn secrets(
        &self,
        task: &DeliveryTask,
        secrets: &[jira_bridge_store::events::SubscriptionSecret],
    ) -> Vec<SecretString> {
        secrets
            .iter()
            .filter_map(|s| match self.state.keys.open_str(&s.secret, subscriptions::seal_context(&s.id)) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(subscription = %task.subscription_id, secret = %s.id, error = ?e, "cannot open a subscription secret");
                    None
                }
            })
            .collect()
    }

    async fn deliver(&self, task: DeliveryTask) -> Result<(), StoreError> {
        let store = &self.state.store;
        let secrets = store
            .subscription_secrets(&task.subscription_id, Timestamp::now())
            .await?;
        let secrets = self.secrets(&task, &secrets);
        let body = serde_json::to_vec(&json!({
            "id": task.event_id,
            "type": task.event_type,
            "timestamp": task.event_created_at,
            "subject": task.subject,
            "data": task.data,
        }))
        .unwrap_or_default();
        let attempted_at = Timestamp::now();
        let started = Instant::now();
        let outcome = if secrets.is_empty() {
            Err("no usable signing secret (see the service log)".to_owned())
        } else {
            self.send(&task, &secrets, body).await
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, error, snippet, ok) = match outcome {
            Ok((status, snippet)) if (200..300).contains(&status) => {
                (Some(status), None, snippet, true)
            }
            Ok((status, snippet)) => (Some(status), Some(format!("HTTP {status}")), snippet, false),
            Err(e) => (None, Some(e), None, false),
        };
        let made = task.attempts + 1;
        let result = if ok {
            AttemptResult::Succeeded
        } else {
            match self
                .settings
                .retry_schedule
                .get(usize::try_from(task.attempts).unwrap_or(usize::MAX))
            {
                Some(delay) => AttemptResult::RetryAt(Timestamp::from(
                    Utc::now() + chrono::Duration::from_std(*delay).unwrap_or_default(),
                )),
                None => AttemptResult::Exhausted,
            }
        };
        tracing::debug!(delivery = %task.delivery_id, attempt = made, status = ?status_code, ok, "webhook attempt");
        let finished = store
            .finish_delivery(
                &task.delivery_id,
                &self.owner,
                NewAttempt {
                    attempted_at,
                    status_code: status_code.map(i32::from),
                    duration_ms,
                    error,
                    response_snippet: snippet,
                },
                result,
            )
            .await?;
        if !finished.recorded {
            tracing::warn!(delivery = %task.delivery_id, "lease lost before the attempt was recorded");
            return Ok(());
        }
        if let Some(since) = finished.failing_since {
            let limit = chrono::Duration::from_std(self.settings.disable_after)
                .unwrap_or(chrono::TimeDelta::MAX);
            if Utc::now() - since >= limit {
                self.disable(&task, since).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        task: &DeliveryTask,
        secrets: &[SecretString],
        body: Vec<u8>,
    ) -> Result<(u16, Option<String>), String> {
        // IP literals bypass the guarded resolver: check them here (also catches a
        // stored URL that the operator's policy no longer allows).
        net_guard::check_url_syntax(&task.url, self.policy).map_err(|e| e.to_string())?;
        let timestamp = Utc::now().timestamp();
        let msg_id = task.event_id.as_str();
        let signature = signing::signature_header(secrets, msg_id, timestamp, &body)
            .map_err(|e| e.to_string())?;
        let res = self
            .client
            .post(&task.url)
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = res.status().as_u16();
        let snippet = read_snippet(res).await;
        Ok((status, snippet))
    }

    async fn disable(
        &self,
        task: &DeliveryTask,
        since: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let reason = format!(
            "every delivery attempt failed since {}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let mut tx = self.state.store.begin().await?;
        if tx
            .disable_subscription(&task.tenant_id, &task.subscription_id, &reason)
            .await?
        {
            super::append(
                &mut tx,
                &task.tenant_id,
                EventType::SubscriptionDisabled,
                Some(task.subscription_id.as_str()),
                json!({
                    "subscription_id": task.subscription_id,
                    "url": task.url,
                    "reason": reason,
                    "failing_since": since,
                }),
            )
            .await?;
            tracing::warn!(subscription = %task.subscription_id, %reason, "subscription disabled");
        }
        tx.commit().await
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut msg = kind.to_owned();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg.chars().take(500).collect()
}

async fn read_snippet(mut res: reqwest::Response) -> Option<String> {
    let mut buf = Vec::new();
    while buf.len() < SNIPPET_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    if buf.is_empty() {
        return None;
    }
    buf.truncate(SNIPPET_BYTES);
    Some(String::from_utf8_lossy(&buf).into_owned())
}
