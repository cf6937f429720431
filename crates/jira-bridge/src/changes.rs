//! Hearing other replicas: one PostgreSQL `LISTEN` connection per process forwards
//! what other replicas announce to this process's waiters.
//!
//! - An appended event wakes the `/v1/events` streams and the delivery worker
//!   ([`crate::events::Wake`]).
//! - A job change (sent by [`crate::jobs::Jobs`] after each change it commits) reaches
//!   the job's `/v1/jobs/{id}/events` streams and wakes the job runner.
//!
//! After the listening connection is lost and re-established, everything is woken
//! once (anything announced meanwhile is re-read from the store). On SQLite there is
//! nothing to listen to: all writers are in this process, whose own signals suffice.

use std::sync::LazyLock;
use std::time::Duration;

use jira_bridge_store::notify::Channel;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::http::AppState;
use crate::jobs::JobProgress;

/// Identifies this process in what it sends, so that it ignores its own echo.
static ORIGIN: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

#[derive(Serialize, Deserialize)]
struct JobChange {
    origin: String,
    progress: JobProgress,
}

/// The payload announcing a job change to other replicas.
pub(crate) fn job_payload(progress: &JobProgress) -> serde_json::Result<String> {
    serde_json::to_string(&JobChange {
        origin: ORIGIN.clone(),
        progress: progress.clone(),
    })
}

/// Start the listener as a background task of `app`, until `shutdown`.
pub fn start(app: &App, shutdown: &CancellationToken) {
    app.spawn_background("change-listener", shutdown, listen);
}

fn dispatch(state: &AppState, channel: Channel, payload: &str) {
    match channel {
        Channel::Events => crate::events::signal_remote_append(),
        Channel::Jobs => match serde_json::from_str::<JobChange>(payload) {
            Ok(change) if change.origin == *ORIGIN => {}
            Ok(change) => state.jobs.remote_change(change.progress),
            Err(e) => tracing::debug!(error = %e, "ignoring an unreadable job notification"),
        },
    }
}

/// Forward notifications until shutdown; reconnect with back-off on failure.
async fn listen(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let listener = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            l = state.store.listen() => l,
        };
        match listener {
            Ok(None) => return Ok(()), // SQLite: every writer is in this process.
            Ok(Some(mut listener)) => {
                backoff = Duration::from_millis(200);
                // Anything announced while we were not listening is picked up now.
                crate::events::signal_remote_append();
                state.jobs.wake();
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        got = listener.recv() => match got {
                            Ok(Some(n)) => dispatch(&state, n.channel, &n.payload),
                            Ok(None) => {
                                // Reconnected after a loss: re-read everything.
                                crate::events::signal_remote_append();
                                state.jobs.wake();
                            }
                            Err(e) => {
                                tracing::warn!(error = ?e, "change listener lost its connection; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = ?e, "cannot listen for changes of other replicas; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
