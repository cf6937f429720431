//! Subscriptions: outbound webhook endpoints of a tenant and their signing secrets.

use chrono::Utc;
use jira_bridge_store::events::{
    Delivery, DeliveryAttempt, DeliveryId, NewSubscription, NewSubscriptionSecret, Subscription,
    SubscriptionId, SubscriptionPatch, SubscriptionSecretId,
};
use jira_bridge_store::{Page, PageRequest, Store, TenantId, Timestamp};
use secrecy::SecretString;

use super::{signing, EventType, ROTATION_GRACE};
use crate::crypto::{KeyRing, SealContext};
use crate::http::ApiError;
use crate::net_guard::{self, UrlPolicy};

const MAX_DESCRIPTION: usize = 1000;
const MAX_URL: usize = 2000;

/// Where a subscription secret's seal is bound.
pub fn seal_context(secret_id: &SubscriptionSecretId) -> SealContext<'_> {
    SealContext {
        table: "subscription_secrets",
        row_id: secret_id.as_str(),
        column: "secret",
    }
}

/// Validate event type names; an empty list means all types.
pub fn parse_event_types(names: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let t = EventType::parse(n).ok_or_else(|| {
            ApiError::invalid_field(
                "events",
                format!(
                    "unknown event type {n:?}; known types: {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )
        })?;
        if !out.iter().any(|o| o == t.as_str()) {
            out.push(t.as_str().to_owned());
        }
    }
    Ok(out)
}

async fn check_url(raw: &str, policy: UrlPolicy) -> Result<String, ApiError> {
    if raw.len() > MAX_URL {
        return Err(ApiError::invalid_field(
            "url",
            format!("at most {MAX_URL} characters"),
        ));
    }
    net_guard::check_url(raw, policy)
        .await
        .map(|u| u.to_string())
        .map_err(|e| ApiError::invalid_field("url", e.to_string()))
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ApiError::invalid_field(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        )),
        _ => Ok(()),
    }
}

fn new_secret(keys: &KeyRing) -> Result<(NewSubscriptionSecret, SecretString), ApiError> {
    let plain = signing::generate_secret();
    let id = SubscriptionSecretId::new();
    let sealed = keys
        .seal_str(&plain, seal_context(&id))
        .map_err(ApiError::internal)?;
    Ok((
        NewSubscriptionSecret {
            id,
            secret: sealed.ciphertext,
            secret_key_id: sealed.key_id,
        },
        plain,
    ))
}

/// What a client asks for when subscribing.
#[derive(Debug, Clone)]
pub struct SubscriptionInput {
    /// Endpoint URL.
    pub url: String,
    /// Event types (empty = all).
    pub events: Vec<String>,
    /// Free text.
    pub description: Option<String>,
}

/// Create a subscription; answers it and its secret (to be shown once).
pub async fn create(
    store: &Store,
    keys: &KeyRing,
    policy: UrlPolicy,
    tenant: &TenantId,
    input: SubscriptionInput,
) -> Result<(Subscription, SecretString), ApiError> {
    let url = check_url(&input.url, policy).await?;
    let event_types = parse_event_types(&input.events)?;
    check_description(&input.description)?;
    let (secret, plain) = new_secret(keys)?;
    let sub = store
        .create_subscription(NewSubscription {
            id: SubscriptionId::new(),
            tenant_id: tenant.clone(),
            url,
            event_types,
            description: input.description,
            secret,
        })
        .await?;
    Ok((sub, plain))
}

/// Changes asked for with PATCH.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    /// New URL.
    pub url: Option<String>,
    /// New filter.
    pub events: Option<Vec<String>>,
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Issue a new secret; the old one stays valid for [`ROTATION_GRACE`].
    pub rotate_secret: bool,
}

/// Change a subscription; answers it and, when rotated, the new secret.
pub async fn update(
    store: &Store,
    keys: &KeyRing,
    policy: UrlPolicy,
    tenant: &TenantId,
    id: &SubscriptionId,
    change: SubscriptionChange,
) -> Result<(Subscription, Option<SecretString>), ApiError> {
    let url = match &change.url {
        Some(u) => Some(check_url(u, policy).await?),
        None => None,
    };
    let event_types = change
        .events
        .as_deref()
        .map(parse_event_types)
        .transpose()?;
    if let Some(d) = &change.description {
        check_description(d)?;
    }
    let sub = store
        .update_subscription(
            tenant,
            id,
            SubscriptionPatch {
                url,
                event_types,
                description: change.description,
                enabled: change.enabled,
            },
        )
        .await?
        .ok_or_else(not_found)?;
    let mut new_plain = None;
    if change.rotate_secret {
        let (secret, plain) = new_secret(keys)?;
        let until = Timestamp::from(
            Utc::now() + chrono::Duration::from_std(ROTATION_GRACE).unwrap_or_default(),
        );
        if !store
            .rotate_subscription_secret(tenant, id, &secret, until)
            .await?
        {
            return Err(not_found());
        }
        new_plain = Some(plain);
    }
    Ok((sub, new_plain))
}

/// The 404 of this module.
pub fn not_found() -> ApiError {
    ApiError::NotFound("no such subscription".into())
}

/// A tenant's subscription or 404.
pub async fn get(
    store: &Store,
    tenant: &TenantId,
    id: &SubscriptionId,
) -> Result<Subscription, ApiError> {
    store
        .get_subscription(tenant, id)
        .await?
        .ok_or_else(not_found)
}

/// Delete a tenant's subscription (and its deliveries).
pub async fn delete(store: &Store, tenant: &TenantId, id: &SubscriptionId) -> Result<(), ApiError> {
    if store.delete_subscription(tenant, id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// A subscription's deliveries with their attempts, newest first.
pub async fn deliveries(
    store: &Store,
    tenant: &TenantId,
    id: &SubscriptionId,
    page: &PageRequest,
) -> Result<Page<(Delivery, Vec<DeliveryAttempt>)>, ApiError> {
    get(store, tenant, id).await?;
    Ok(store.list_deliveries(tenant, id, page).await?)
}

/// Queue one more attempt of a delivery now. 409 while the subscription is disabled.
pub async fn retry(
    store: &Store,
    tenant: &TenantId,
    id: &SubscriptionId,
    delivery: &DeliveryId,
) -> Result<(Delivery, Vec<DeliveryAttempt>), ApiError> {
    let sub = get(store, tenant, id).await?;
    if !sub.enabled {
        return Err(ApiError::Conflict(
            "the subscription is disabled; enable it (PATCH {\"enabled\": true}) before retrying"
                .into(),
        ));
    }
    let d = store
        .retry_delivery(tenant, id, delivery)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such delivery".into()))?;
    jira_bridge_store::events::signal_local_commit();
    let attempts = store.list_delivery_attempts(tenant, &d.id).await?;
    Ok((d, attempts))
}
