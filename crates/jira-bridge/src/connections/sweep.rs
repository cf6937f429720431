//! The background sweep: re-verifies connections every
//! `connections.reverify_interval_seconds`, refreshes OAuth grants left idle for
//! `oauth.idle_refresh_days` (Atlassian drops refresh tokens unused for 90 days), and
//! forgets expired OAuth states and selections. Every replica runs it; the refresh
//! itself is single-flight across replicas and a re-verification twice is harmless.

use chrono::Utc;
use jira_bridge_store::{ConnectionId, Timestamp};
use tokio_util::sync::CancellationToken;

use super::{reverify_row, secs, Shared};
use crate::audit::Actor;
use crate::http::AppState;

const PAGE: i64 = 200;

/// Run until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let shared = Shared::from(&state);
    let every = secs(state.config.connections.sweep_interval_seconds);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = sweep_once(&shared) => if let Err(e) = r {
                tracing::warn!(error = ?e, "connections sweep failed; trying again next time");
            }
        }
    }
}

/// One pass over every enabled connection.
pub(crate) async fn sweep_once(shared: &Shared) -> anyhow::Result<()> {
    let now = Utc::now();
    shared
        .store
        .purge_expired_oauth(Timestamp::from(now - chrono::Duration::hours(1)))
        .await?;
    let reverify = shared.config.connections.reverify_interval_seconds;
    let idle_days = i64::try_from(shared.config.oauth.idle_refresh_days).unwrap_or(30);
    let mut after: Option<ConnectionId> = None;
    loop {
        let rows = shared
            .store
            .list_enabled_connections_for_system(after.as_ref(), PAGE)
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            if row.verification_status == "expired" {
                continue;
            }
            if row.kind == "cloud_oauth" && shared.runtime.oauth.is_some() {
                let last_refresh = row.last_refreshed_at.unwrap_or(row.created_at);
                if last_refresh + chrono::Duration::days(idle_days) <= now {
                    let source =
                        super::tokens::StoreTokenSource::new(shared.clone(), row.id.clone());
                    if let Err(e) = source.refresh(row.token_version).await {
                        tracing::warn!(connection = %row.id, error = %e, "refresh of an idle grant failed");
                    }
                    continue;
                }
            }
            if reverify > 0 {
                let due = row
                    .last_verified_at
                    .is_none_or(|t| t + chrono::Duration::seconds(reverify as i64) <= now);
                if due {
                    let id = row.id.clone();
                    if let Err(e) = reverify_row(shared, row, &Actor::System, None).await {
                        tracing::warn!(connection = %id, problem = e.slug(), "periodic verification failed");
                    }
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(())
}
