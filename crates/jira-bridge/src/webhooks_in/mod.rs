//! Jira's webhooks in: verification, deduplication, asynchronous apply, per-connection
//! set-up and health.
//!
//! `POST /v1/webhooks/jira/{connection_id}` is public (Jira has no API key). A delivery
//! is accepted when one of these holds, checked in this order:
//!
//! 1. `X-Hub-Signature: sha256=<hex>` (admin webhooks with a secret) is the HMAC-SHA256
//!    of the raw body under the connection's webhook secret;
//! 2. `Authorization: Bearer <JWT>` (OAuth dynamic webhooks) is an HS256 token signed
//!    with the OAuth client secret, whose `aud` is the client id and which has not
//!    expired — only for OAuth connections;
//! 3. `?token=` equals the connection's URL token (for Jira set-ups that cannot sign).
//!
//! Comparisons are constant-time. Anything else answers 401 and is counted in the
//! connection's health. An accepted delivery is stored once per
//! `X-Atlassian-Webhook-Identifier` (a replay answers 200 and changes nothing) and
//! acknowledged at once (202); [`worker`] applies stored deliveries in batches.

pub mod api;
pub mod intake;
pub mod registration;
pub mod verify;
pub mod worker;

use jira_bridge_store::inbound::WebhookSetup;
use jira_bridge_store::{ConnectionId, StoreError, TenantId};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::crypto::SealContext;
use crate::http::AppState;

/// Where the webhook secret is sealed.
pub(crate) fn secret_context(connection: &ConnectionId) -> SealContext<'_> {
    SealContext {
        table: "jira_webhook_setups",
        row_id: connection.as_str(),
        column: "secret",
    }
}

/// Hex SHA-256 of a URL token (only the hash is stored).
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_secret() -> SecretString {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    SecretString::from(hex::encode(b))
}

/// A freshly generated secret and URL token (shown once).
pub struct NewSecrets {
    /// The set-up as stored.
    pub setup: WebhookSetup,
    /// The HMAC secret to enter in Jira.
    pub secret: SecretString,
    /// The URL token (`?token=`).
    pub token: SecretString,
}

/// Errors of the set-up functions.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// Generate (or replace) a connection's webhook secret and URL token.
pub async fn rotate_secrets(
    state: &AppState,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<NewSecrets, SetupError> {
    let secret = random_secret();
    let token = random_secret();
    let sealed = state.keys.seal_str(&secret, secret_context(connection))?;
    let setup = state
        .store
        .put_webhook_secret(
            tenant,
            connection,
            &sealed.ciphertext,
            &sealed.key_id,
            &token_hash(token.expose_secret()),
        )
        .await?;
    Ok(NewSecrets {
        setup,
        secret,
        token,
    })
}

/// The URL Jira should deliver to for a connection (`server.public_url` /
/// `JIRA_BRIDGE_PUBLIC_URL`, or a bare path when not configured).
pub fn inbound_url(state: &AppState, connection: &ConnectionId) -> String {
    let base = state.config.server.public_url.as_deref().unwrap_or("");
    format!(
        "{}/v1/webhooks/jira/{}",
        base.trim_end_matches('/'),
        connection.as_str()
    )
}

/// Cadence of the poll backstop for connections whose webhooks are not healthy (the
/// tickets module's scheduled sync, every 5 minutes, covers the healthy ones).
pub const UNHEALTHY_POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Background task: the faster poll for tenants with a connection whose webhooks are
/// not healthy (no delivery within [`api::HEALTHY_WITHIN`]).
pub async fn backstop(
    state: AppState,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(UNHEALTHY_POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                let slot = chrono::Utc::now().timestamp() / UNHEALTHY_POLL_EVERY.as_secs().max(1) as i64;
                let all = match state.store.connections_with_links().await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = ?e, "poll backstop: cannot list connections");
                        continue;
                    }
                };
                let mut tenants = std::collections::BTreeSet::new();
                for (tenant, con) in all {
                    let setup = state.store.get_webhook_setup_for_system(&con).await.ok().flatten();
                    if api::health(setup.as_ref(), (0, 0)).state != "healthy" {
                        tenants.insert(tenant);
                    }
                }
                for t in tenants {
                    let key = Some(format!("webhooks.backstop:{slot}"));
                    if let Err(e) = crate::tickets::handlers::enqueue_sync(&state, &t, None, key).await {
                        tracing::warn!(tenant = %t, error = ?e, "poll backstop: could not enqueue");
                    }
                }
            }
        }
    }
}
