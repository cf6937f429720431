//! Tickets: host objects (a violation, a release, a story) linked to Jira issues,
//! created exactly once, singly or in bulk jobs, with their status kept in sync.
//! See `docs/tickets.md`.
//!
//! - [`validate`]: create-metadata validation and custom-field coercion.
//! - [`engine`]: exactly-once creation of a batch (reconcile, then bulk create).
//! - [`bulk`]: the bulk job's batch step (`tickets.bulk_create`).
//! - [`create_one`], [`refresh`], [`transition`]: the single-ticket operations.

pub mod api;
pub mod bulk;
pub mod engine;
pub mod handlers;
pub mod validate;

use jira_bridge_store::events::NewEvent;
use jira_bridge_store::links::{Link, NewLink, StatusWrite};
use jira_bridge_store::{ConnectionId, Store, StoreError, StoreTx, TenantId, Timestamp};
use jira_client::{GetIssue, JiraClient, Target as TransitionTarget};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use engine::{CreateItem, CreateOptions, CreateResult, MetaCache};
pub use validate::{FieldErrors, TicketFields};

/// The host object a ticket is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Source {
    /// Kind of object (`violation`, `release`, `story`, …).
    pub kind: String,
    /// Its id in the host application.
    pub id: String,
}

/// The idempotency key of a creation: a hash of (tenant, source kind, source id,
/// purpose). Written on the issue as the `jira-bridge.idempotency` entity property.
pub fn idempotency_key(tenant: &TenantId, source: &Source, purpose: &str) -> String {
    let mut h = Sha256::new();
    for part in [tenant.as_str(), &source.kind, &source.id, purpose] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    format!("jb1-{}", hex::encode(&digest[..16]))
}

/// Check a source before it becomes a link.
pub fn check_source(source: &Source, purpose: &str) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::new();
    if source.kind.trim().is_empty() || source.kind.len() > 100 {
        e.insert("source.kind".into(), "must be 1 to 100 characters".into());
    }
    if source.id.trim().is_empty() || source.id.len() > 500 {
        e.insert("source.id".into(), "must be 1 to 500 characters".into());
    }
    if purpose.len() > 100 {
        e.insert("purpose".into(), "must be at most 100 characters".into());
    }
    if e.is_empty() {
        Ok(())
    } else {
        Err(e)
    }
}

/// The reservation of a link for a source, purpose and target.
#[allow(clippy::too_many_arguments)]
pub fn new_link(
    tenant: &TenantId,
    connection: &ConnectionId,
    source: &Source,
    purpose: &str,
    project_key: &str,
    config_id: Option<String>,
    target: Option<String>,
    job_id: Option<String>,
) -> NewLink {
    NewLink {
        tenant_id: tenant.clone(),
        connection_id: connection.clone(),
        source_kind: source.kind.clone(),
        source_id: source.id.clone(),
        purpose: purpose.to_owned(),
        idempotency_key: idempotency_key(tenant, source, purpose),
        project_key: project_key.to_uppercase(),
        config_id,
        target,
        job_id,
    }
}

/// What [`create_one`] answers.
#[derive(Debug, Clone)]
pub enum CreateOne {
    /// The source already had its issue: nothing was created.
    Existing(Link),
    /// Created now (or adopted after an uncertain earlier attempt).
    Created {
        /// The link.
        link: Link,
        /// The summary was shortened by the overflow policy.
        summary_truncated: bool,
    },
    /// Invalid input; nothing sent to Jira.
    Invalid(FieldErrors),
    /// Jira refused.
    Rejected {
        /// Jira's messages.
        message: String,
        /// Jira's field errors.
        errors: FieldErrors,
    },
    /// The outcome is unknown (Jira did not answer); a retry reconciles first.
    Uncertain(String),
    /// Another request is creating this source's issue right now; retry shortly.
    InProgress,
}

/// How long a single create holds its claim on a link (a crashed request's claim
/// expires after this).
pub const SINGLE_CLAIM: chrono::Duration = chrono::Duration::seconds(120);

/// What [`reserve_and_claim`] found.
pub(crate) enum Reserved {
    /// The source's issue exists already.
    Existing(Link),
    /// Another creator holds the link's claim.
    InProgress,
    /// Claimed for the caller (a `failed` link made `pending` again).
    Claimed {
        /// The link.
        link: Link,
        /// A pending link this call did not insert: an earlier attempt may have
        /// created its issue (reconcile first).
        uncertain: bool,
    },
}

/// Reserve the link of `new` and claim its creation for `owner` until `until`, inside
/// `tx`: one creator at a time per link.
pub(crate) async fn reserve_and_claim(
    tx: &mut StoreTx,
    new: &NewLink,
    owner: &str,
    until: Timestamp,
    now: Timestamp,
) -> Result<Reserved, StoreError> {
    let (mut link, inserted) = tx.reserve_link(new).await?;
    if link.state == "created" {
        return Ok(Reserved::Existing(link));
    }
    if !tx
        .claim_link(&new.tenant_id, &link.id, owner, until, now)
        .await?
    {
        return Ok(Reserved::InProgress);
    }
    let uncertain = !inserted && link.state == "pending";
    if link.state == "failed" {
        link = tx.rearm_link(&new.tenant_id, &link.id, new).await?;
    }
    Ok(Reserved::Claimed { link, uncertain })
}

/// Create the issue of one source and purpose, exactly once: an existing link answers
/// as is; a pending link left by an uncertain earlier attempt is reconciled first.
pub async fn create_one(
    store: &Store,
    client: &JiraClient,
    new: NewLink,
    fields: TicketFields,
    opts: &CreateOptions,
) -> Result<CreateOne, StoreError> {
    let tenant = new.tenant_id.clone();
    let owner = format!("req_{}", uuid::Uuid::now_v7().simple());
    let now = Timestamp::now();
    let until = Timestamp::from(now.as_datetime() + SINGLE_CLAIM);
    let mut tx = store.begin().await?;
    let reserved = reserve_and_claim(&mut tx, &new, &owner, until, now).await?;
    tx.commit().await?;
    let (link, uncertain) = match reserved {
        Reserved::Existing(link) => return Ok(CreateOne::Existing(link)),
        Reserved::InProgress => return Ok(CreateOne::InProgress),
        Reserved::Claimed { link, uncertain } => (link, uncertain),
    };
    let cache = MetaCache::new();
    let item = CreateItem {
        link,
        fields,
        uncertain,
    };
    let record = engine::Record {
        claim_owner: &owner,
        announce_failures: false,
    };
    let mut results = engine::create_batch(store, client, &cache, &tenant, &[item], opts, &record)
        .await
        .map_err(|e| e.0)?;
    let result = results
        .pop()
        .unwrap_or_else(|| CreateResult::Uncertain("no result".into()));
    Ok(match result {
        CreateResult::Created {
            link,
            summary_truncated,
            ..
        } => CreateOne::Created {
            link: *link,
            summary_truncated,
        },
        CreateResult::Invalid(e) => CreateOne::Invalid(e),
        CreateResult::Rejected {
            message, errors, ..
        } => CreateOne::Rejected { message, errors },
        CreateResult::Uncertain(m) => CreateOne::Uncertain(m),
    })
}

/// The data of ticket events.
pub fn ticket_event_data(link: &Link) -> serde_json::Value {
    json!({
        "ticket_id": link.id,
        "source": {"kind": link.source_kind, "id": link.source_id},
        "purpose": link.purpose,
        "connection_id": link.connection_id,
        "issue_key": link.issue_key,
        "issue_id": link.issue_id,
        "url": link.url,
        "status": link.status,
        "status_category": link.status_category,
    })
}

/// Errors of [`refresh`] and [`transition`].
#[derive(Debug, thiserror::Error)]
pub enum TicketOpError {
    /// The ticket has no issue yet.
    #[error("the ticket has no Jira issue yet (state {0})")]
    NotCreated(String),
    /// Jira failed.
    #[error(transparent)]
    Jira(#[from] jira_client::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Record a status read from Jira; `ticket.status_changed` in the same transaction
/// when it changed. Answers the link after the change (read back).
pub async fn apply_status(
    store: &Store,
    link: &Link,
    status: &jira_client::Status,
    remote_updated_at: Option<Timestamp>,
) -> Result<Link, StoreError> {
    let mut tx = store.begin().await?;
    apply_status_in(&mut tx, link, status, remote_updated_at).await?;
    tx.commit().await?;
    store
        .get_link(&link.tenant_id, &link.id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// [`apply_status`] inside the caller's transaction. Answers the link as stored after
/// it, computed from the row read in the transaction (no read back), and whether the
/// status changed (`ticket.status_changed` appended); `None` when there is no such
/// link. A report older than the stored one changes nothing.
pub async fn apply_status_in(
    tx: &mut StoreTx,
    link: &Link,
    status: &jira_client::Status,
    remote_updated_at: Option<Timestamp>,
) -> Result<Option<(Link, bool)>, StoreError> {
    let now = Timestamp::now();
    let written = tx
        .write_link_status(
            &link.tenant_id,
            &link.id,
            &status.name,
            status.category_key(),
            remote_updated_at,
            now,
        )
        .await?;
    let (before, changed) = match written {
        StatusWrite::NotFound => return Ok(None),
        StatusWrite::Older(stored) => return Ok(Some((stored, false))),
        StatusWrite::Written { before, changed } => (before, changed),
    };
    let mut after = before.clone();
    after.status = Some(status.name.clone());
    after.status_category = status
        .category_key()
        .map(str::to_owned)
        .or(before.status_category.clone());
    after.remote_updated_at = remote_updated_at
        .map(|t| t.as_datetime())
        .or(before.remote_updated_at);
    after.synced_at = Some(now.as_datetime());
    after.updated_at = now.as_datetime();
    if changed {
        let mut data = ticket_event_data(&after);
        data["previous_status"] = json!(before.status);
        data["previous_status_category"] = json!(before.status_category);
        tx.append_event(NewEvent {
            tenant_id: link.tenant_id.clone(),
            event_type: "ticket.status_changed".into(),
            subject: Some(link.id.to_string()),
            data,
        })
        .await?;
    }
    Ok(Some((after, changed)))
}

/// Record a summary Jira reported for a linked issue (as of Jira's `updated`; an older
/// report changes nothing); `ticket.summary_changed` in the same transaction when it
/// changed. Answers whether it changed.
pub async fn apply_summary(
    store: &Store,
    link: &Link,
    summary: &str,
    remote_updated_at: Option<Timestamp>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let changed = apply_summary_in(&mut tx, link, summary, remote_updated_at).await?;
    tx.commit().await?;
    Ok(changed)
}

/// [`apply_summary`] inside the caller's transaction.
pub async fn apply_summary_in(
    tx: &mut StoreTx,
    link: &Link,
    summary: &str,
    remote_updated_at: Option<Timestamp>,
) -> Result<bool, StoreError> {
    let changed = tx
        .set_link_summary(&link.tenant_id, &link.id, summary, remote_updated_at)
        .await?;
    if changed {
        tx.append_event(NewEvent {
            tenant_id: link.tenant_id.clone(),
            event_type: "ticket.summary_changed".into(),
            subject: Some(link.id.to_string()),
            data: json!({
                "ticket_id": link.id,
                "issue_key": link.issue_key,
                "summary": summary,
                "previous_summary": link.summary,
            }),
        })
        .await?;
    }
    Ok(changed)
}

/// Mark a linked issue deleted in Jira; `ticket.issue_deleted` in the same
/// transaction the first time. Answers whether this call marked it.
pub async fn mark_issue_deleted(
    store: &Store,
    link: &Link,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let marked = mark_issue_deleted_in(&mut tx, link, at).await?;
    tx.commit().await?;
    Ok(marked)
}

/// [`mark_issue_deleted`] inside the caller's transaction.
pub async fn mark_issue_deleted_in(
    tx: &mut StoreTx,
    link: &Link,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let marked = tx
        .mark_link_issue_deleted(&link.tenant_id, &link.id, Timestamp::from(at))
        .await?;
    if marked {
        tx.append_event(NewEvent {
            tenant_id: link.tenant_id.clone(),
            event_type: "ticket.issue_deleted".into(),
            subject: Some(link.id.to_string()),
            data: json!({
                "ticket_id": link.id,
                "issue_key": link.issue_key,
                "issue_id": link.issue_id,
                "deleted_at": at,
            }),
        })
        .await?;
    }
    Ok(marked)
}

/// Read the issue's status now and record it.
pub async fn refresh(
    store: &Store,
    client: &JiraClient,
    link: &Link,
) -> Result<Link, TicketOpError> {
    let Some(key) = link.issue_key.as_deref() else {
        return Err(TicketOpError::NotCreated(link.state.clone()));
    };
    let issue = client
        .get_issue(
            key,
            &GetIssue {
                fields: vec!["status".into(), "updated".into()],
                ..GetIssue::default()
            },
        )
        .await?;
    let status: Option<jira_client::Status> = issue.field("status");
    let updated = issue
        .fields
        .get("updated")
        .and_then(serde_json::Value::as_str)
        .and_then(jira_client::parse_jira_datetime)
        .map(|t| Timestamp::from(t.with_timezone(&chrono::Utc)));
    match status {
        Some(s) => Ok(apply_status(store, link, &s, updated).await?),
        None => Ok(link.clone()),
    }
}

/// Move the issue to a status or category (finding a path through the workflow) and
/// record the status reached. [`jira_client::Error::NoTransitionPath`] lists the
/// available transitions when the target cannot be reached.
pub async fn transition(
    store: &Store,
    client: &JiraClient,
    link: &Link,
    target: &TransitionTarget,
) -> Result<Link, TicketOpError> {
    let Some(key) = link.issue_key.as_deref() else {
        return Err(TicketOpError::NotCreated(link.state.clone()));
    };
    let outcome = client.transition_to(key, target).await?;
    // Read the issue back for Jira's `updated` of the status reached: webhooks of the
    // intermediate steps that arrive later are older and are then not applied over it.
    match refresh(store, client, link).await {
        Ok(after) => Ok(after),
        Err(_) => Ok(apply_status(store, link, &outcome.status, None).await?),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn idempotency_key_is_stable_and_unambiguous() {
        let t: TenantId = "ten_0190f0f0f0f07000800000000000000a"
            .parse()
            .unwrap_or_else(|_| TenantId::new());
        let a = Source {
            kind: "a".into(),
            id: "bc".into(),
        };
        let b = Source {
            kind: "ab".into(),
            id: "c".into(),
        };
        assert_eq!(idempotency_key(&t, &a, ""), idempotency_key(&t, &a, ""));
        assert_ne!(idempotency_key(&t, &a, ""), idempotency_key(&t, &b, ""));
        assert_ne!(
            idempotency_key(&t, &a, ""),
            idempotency_key(&t, &a, "release")
        );
        assert!(idempotency_key(&t, &a, "").starts_with("jb1-"));
    }
}
