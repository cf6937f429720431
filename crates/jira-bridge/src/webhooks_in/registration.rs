//! Dynamic webhooks of OAuth connections: registered, refreshed well before Jira's
//! 30-day expiry, re-created when lost, never duplicated.
//!
//! [`ensure`] lists the app's webhooks in Jira and matches them by delivery URL (each
//! connection has its own URL), so a restart or a lost database row never adds a
//! second registration: one matching webhook with the right JQL is kept (refreshed
//! when less than [`REFRESH_WITHIN`] is left), extra or outdated ones are deleted, and
//! a new one is registered only when none is left; replicas take turns behind the
//! connection's registration lock (a PostgreSQL advisory lock), so two never both
//! find none and register. The JQL covers the projects the
//! connection has tickets in. [`run`] does this for every OAuth connection at start
//! and then every [`UPKEEP_EVERY`].

use std::time::Duration;

use futures::TryStreamExt;
use jira_bridge_store::{ConnectionId, TenantId};
use jira_client::WebhookSpec;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::http::AppState;

/// Refresh when less than this is left before expiry.
pub const REFRESH_WITHIN: chrono::Duration = chrono::Duration::days(20);
/// Upkeep cadence.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(3600);
/// Events registered (the only issue events OAuth apps may subscribe to).
pub const EVENTS: &[&str] = &[
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
];

/// What [`ensure`] did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Registration {
    /// `registered`, `refreshed`, `kept`, `none` (no projects in use) or `unsupported`.
    pub action: &'static str,
    /// Jira id of the registered webhook.
    pub webhook_id: Option<i64>,
    /// Its JQL filter.
    pub jql: Option<String>,
    /// Its expiry in Jira.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Duplicates or outdated registrations deleted.
    pub deleted: Vec<i64>,
}

/// The JQL of the projects in use.
pub fn jql_for(projects: &[String]) -> String {
    let quoted: Vec<String> = projects
        .iter()
        .map(|p| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("project IN ({})", quoted.join(", "))
}

/// Make sure the connection has exactly one live registration (OAuth connections).
pub async fn ensure(
    state: &AppState,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> anyhow::Result<Registration> {
    let out = Registration {
        action: "unsupported",
        webhook_id: None,
        jql: None,
        expires_at: None,
        deleted: Vec::new(),
    };
    let connected = crate::connections::connect(state, tenant, connection)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if connected.connection.kind != "cloud_oauth" || state.config.server.public_url.is_none() {
        return Ok(out);
    }
    // Replicas (and the upkeep task racing an API call) take turns: listing and then
    // registering must not interleave, or two would each find none and register.
    let lock = state.store.lock_webhook_registration(connection).await?;
    let result = reconcile(state, tenant, connection, &connected.jira, out).await;
    if let Err(e) = lock.release().await {
        tracing::warn!(connection = %connection, error = ?e, "could not release the webhook registration lock");
    }
    result
}

/// [`ensure`] under the connection's registration lock.
async fn reconcile(
    state: &AppState,
    tenant: &TenantId,
    connection: &ConnectionId,
    jira: &jira_client::JiraClient,
    mut out: Registration,
) -> anyhow::Result<Registration> {
    let url = super::inbound_url(state, connection);
    let projects = state.store.linked_projects(connection).await?;
    let existing: Vec<jira_client::Webhook> = jira.webhooks().try_collect().await?;
    let ours: Vec<&jira_client::Webhook> = existing
        .iter()
        .filter(|w| w.url.as_deref() == Some(url.as_str()))
        .collect();
    if projects.is_empty() {
        let ids: Vec<i64> = ours.iter().map(|w| w.id).collect();
        if !ids.is_empty() {
            jira.delete_webhooks(&ids).await?;
        }
        state
            .store
            .put_webhook_registration(tenant, connection, &[], None, None)
            .await?;
        out.action = "none";
        out.deleted = ids;
        return Ok(out);
    }
    let jql = jql_for(&projects);
    let now = chrono::Utc::now();
    let keep = ours.iter().find(|w| {
        w.jql_filter.as_deref() == Some(jql.as_str())
            && EVENTS.iter().all(|e| w.events.iter().any(|x| x == e))
            && w.expires_at().is_none_or(|t| t > now)
    });
    let stale: Vec<i64> = ours
        .iter()
        .filter(|w| Some(w.id) != keep.map(|k| k.id))
        .map(|w| w.id)
        .collect();
    if !stale.is_empty() {
        jira.delete_webhooks(&stale).await?;
    }
    out.deleted = stale;
    let (id, expires_at) = match keep {
        Some(w) => {
            let expires = w.expires_at();
            if expires.is_none_or(|t| t - now < REFRESH_WITHIN) {
                out.action = "refreshed";
                (w.id, jira.refresh_webhooks(&[w.id]).await?.or(expires))
            } else {
                out.action = "kept";
                (w.id, expires)
            }
        }
        None => {
            let spec = WebhookSpec {
                events: EVENTS.iter().map(|e| (*e).to_owned()).collect(),
                jql_filter: jql.clone(),
                ..WebhookSpec::default()
            };
            let res = jira.register_webhooks(&url, &[spec]).await?;
            let id = match res.first() {
                Some(jira_client::WebhookRegistration::Created(id)) => *id,
                Some(jira_client::WebhookRegistration::Failed(errors)) => {
                    anyhow::bail!("Jira refused the webhook: {}", errors.join("; "))
                }
                None => anyhow::bail!("Jira answered no registration result"),
            };
            out.action = "registered";
            let listed: Vec<jira_client::Webhook> = jira.webhooks().try_collect().await?;
            (
                id,
                listed
                    .iter()
                    .find(|w| w.id == id)
                    .and_then(jira_client::Webhook::expires_at),
            )
        }
    };
    state
        .store
        .put_webhook_registration(tenant, connection, &[id], Some(&jql), expires_at)
        .await?;
    out.webhook_id = Some(id);
    out.jql = Some(jql);
    out.expires_at = expires_at;
    Ok(out)
}

/// Background task: upkeep of every OAuth connection's registration, at start and
/// then every [`UPKEEP_EVERY`].
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                if state.config.server.public_url.is_none() {
                    continue;
                }
                let all = match state.store.connections_with_links().await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = ?e, "webhook upkeep: cannot list connections");
                        continue;
                    }
                };
                for (tenant, con) in all {
                    match ensure(&state, &tenant, &con).await {
                        Ok(r) => tracing::debug!(connection = %con, action = r.action, "webhook upkeep"),
                        Err(e) => tracing::warn!(connection = %con, error = %e, "webhook upkeep failed"),
                    }
                }
            }
        }
    }
}
