//! The bulk-create job (`tickets.bulk_create`): each item is one ticket; a batch of up
//! to 50 items becomes one Jira bulk create (see [`super::engine`]). Metadata and
//! e-mail look-ups are cached per job.

use std::collections::HashMap;
use std::sync::Arc;

use jira_bridge_store::jobs::{ItemError, JobItem};
use jira_bridge_store::{ConnectionId, Store, TenantId};
use jira_client::JiraClient;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::engine::{create_batch, CreateItem, CreateOptions, CreateResult, MetaCache, Record};
use super::{check_source, new_link, reserve_and_claim, Reserved, Source, TicketFields};

/// Job kind.
pub const KIND: &str = "tickets.bulk_create";

/// Items per batch: Jira's bulk-create limit.
pub const BATCH: u32 = 50;

/// The stored payload of one item: the ticket with the request's defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemPayload {
    /// The host object.
    pub source: Source,
    /// Purpose (`""` when none).
    #[serde(default)]
    pub purpose: String,
    /// What to create.
    pub fields: TicketFields,
    /// Config it came from.
    #[serde(default)]
    pub config_id: Option<String>,
    /// Config target.
    #[serde(default)]
    pub target: Option<String>,
}

/// The job payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPayload {
    /// The connection.
    pub connection_id: ConnectionId,
}

/// What happened to one item (the job engine's outcome, without its types).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done: the ticket.
    Succeeded(Value),
    /// Failed.
    Failed {
        /// Why.
        error: ItemError,
        /// Whether another attempt may help.
        retryable: bool,
    },
}

/// Per-job metadata caches (bounded; the oldest jobs' caches are dropped).
#[derive(Debug, Default)]
pub struct Caches {
    inner: Mutex<HashMap<String, Arc<MetaCache>>>,
}

impl Caches {
    /// The cache of a job.
    pub fn for_job(&self, job_id: &str) -> Arc<MetaCache> {
        let mut m = self.inner.lock();
        if m.len() > 64 && !m.contains_key(job_id) {
            m.retain(|_, c| Arc::strong_count(c) > 1);
        }
        m.entry(job_id.to_owned()).or_default().clone()
    }
}

fn jira_failure(message: &str, errors: &super::FieldErrors, status: u16) -> ItemError {
    let mut e = ItemError::new(
        "jira_rejected",
        format!("Jira refused the issue: {message}"),
    )
    .with_jira(json!({
        "status": status,
        "errorMessages": [],
        "errors": errors,
    }));
    if let Some(f) = errors.keys().next() {
        e = e.with_field(f.clone());
    }
    e
}

fn validation_failure(errors: &super::FieldErrors) -> ItemError {
    let msg = errors
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut e = ItemError::new("validation", msg).with_jira(json!({ "errors": errors }));
    if let Some(f) = errors.keys().next() {
        e = e.with_field(f.clone());
    }
    e
}

/// Run one batch of a bulk job's items: one outcome per item, in order.
#[allow(clippy::too_many_arguments)]
pub async fn run_batch(
    store: &Store,
    client: &JiraClient,
    cache: &MetaCache,
    tenant: &TenantId,
    connection: &ConnectionId,
    job_id: &str,
    items: &[JobItem],
    opts: &CreateOptions,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    let owner = format!("job:{job_id}");
    let started = std::time::Instant::now();
    // Reserve and claim the batch's links in one transaction.
    let work = match reserve_batch(
        store,
        tenant,
        connection,
        job_id,
        &owner,
        items,
        &mut outcomes,
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            // Rolled back: nothing of this batch is reserved or claimed.
            return items
                .iter()
                .map(|_| Outcome::Failed {
                    error: ItemError::new("store", e.to_string()),
                    retryable: true,
                })
                .collect();
        }
    };

    let batch: Vec<CreateItem> = work.iter().map(|(_, w)| w.clone()).collect();
    let record = Record {
        claim_owner: &owner,
        announce_failures: true,
    };
    let reserved = started.elapsed();
    let created = create_batch(store, client, cache, tenant, &batch, opts, &record).await;
    tracing::debug!(
        items = items.len(),
        reserve_ms = reserved.as_secs_f64() * 1000.0,
        create_and_record_ms = (started.elapsed() - reserved).as_secs_f64() * 1000.0,
        "bulk create batch"
    );
    match created {
        Ok(results) => {
            for ((i, _), r) in work.iter().zip(results) {
                outcomes[*i] = Some(match r {
                    CreateResult::Created {
                        link,
                        adopted,
                        summary_truncated,
                    } => Outcome::Succeeded(json!({
                        "ticket_id": link.id,
                        "issue_key": link.issue_key,
                        "issue_id": link.issue_id,
                        "url": link.url,
                        "adopted": adopted,
                        "summary_truncated": summary_truncated,
                    })),
                    CreateResult::Invalid(errs) => Outcome::Failed {
                        error: validation_failure(&errs),
                        retryable: false,
                    },
                    CreateResult::Rejected {
                        message,
                        errors,
                        status,
                    } => Outcome::Failed {
                        error: jira_failure(&message, &errors, status),
                        retryable: false,
                    },
                    CreateResult::Uncertain(m) => Outcome::Failed {
                        error: ItemError::new("jira_unavailable", m),
                        retryable: true,
                    },
                });
            }
        }
        Err(e) => {
            for (i, _) in &work {
                outcomes[*i] = Some(Outcome::Failed {
                    error: ItemError::new("store", e.to_string()),
                    retryable: true,
                });
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Failed {
                error: ItemError::new("internal", "item was not processed"),
                retryable: true,
            })
        })
        .collect()
}

/// Reserve and claim the links of a batch's items in one transaction. Items decided
/// here (bad payload, invalid source, created already, claimed by another creator) get
/// their outcome; the rest are answered, in order, with their claimed link.
async fn reserve_batch(
    store: &Store,
    tenant: &TenantId,
    connection: &ConnectionId,
    job_id: &str,
    owner: &str,
    items: &[JobItem],
    outcomes: &mut [Option<Outcome>],
) -> Result<Vec<(usize, CreateItem)>, jira_bridge_store::StoreError> {
    let mut work: Vec<(usize, CreateItem)> = Vec::new();
    let now = jira_bridge_store::Timestamp::now();
    // One creator at a time per link: the job holds it while its items run.
    let until =
        jira_bridge_store::Timestamp::from(now.as_datetime() + chrono::Duration::minutes(15));
    let mut tx = store.begin().await?;
    for (i, item) in items.iter().enumerate() {
        let payload: ItemPayload = match serde_json::from_value(item.payload.clone()) {
            Ok(p) => p,
            Err(e) => {
                outcomes[i] = Some(Outcome::Failed {
                    error: ItemError::new("invalid_payload", e.to_string()),
                    retryable: false,
                });
                continue;
            }
        };
        if let Err(errs) = check_source(&payload.source, &payload.purpose) {
            outcomes[i] = Some(Outcome::Failed {
                error: validation_failure(&errs),
                retryable: false,
            });
            continue;
        }
        let new = new_link(
            tenant,
            connection,
            &payload.source,
            &payload.purpose,
            &payload.fields.project_key,
            payload.config_id.clone(),
            payload.target.clone(),
            Some(job_id.to_owned()),
        );
        let (link, uncertain) = match reserve_and_claim(&mut tx, &new, owner, until, now).await? {
            Reserved::Existing(link) => {
                outcomes[i] = Some(Outcome::Succeeded(json!({
                    "ticket_id": link.id,
                    "issue_key": link.issue_key,
                    "issue_id": link.issue_id,
                    "url": link.url,
                    "existing": true,
                })));
                continue;
            }
            Reserved::InProgress => {
                outcomes[i] = Some(Outcome::Failed {
                    error: ItemError::new(
                        "in_progress",
                        "another request is creating this source's issue right now",
                    ),
                    retryable: true,
                });
                continue;
            }
            // An item run before may have reached Jira too.
            Reserved::Claimed { link, uncertain } => (link, uncertain || item.attempts > 1),
        };
        work.push((
            i,
            CreateItem {
                link,
                fields: payload.fields,
                uncertain,
            },
        ));
    }
    tx.commit().await?;
    Ok(work)
}

/// One item of a bulk request: a source and the ticket's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkItem {
    /// The host object.
    pub source: Source,
    /// Purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The ticket (fields left empty come from the request's defaults).
    #[serde(flatten)]
    pub fields: TicketFields,
}

/// The job items of a bulk request: defaults applied, one item per ticket, keyed by
/// source. Items naming the same source and purpose twice are refused (by index).
pub fn job_items(
    defaults: &TicketFields,
    items: Vec<BulkItem>,
) -> Result<Vec<jira_bridge_store::jobs::NewJobItem>, super::FieldErrors> {
    let mut errors = super::FieldErrors::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let purpose = item.purpose.unwrap_or_default();
        if let Err(e) = check_source(&item.source, &purpose) {
            for (k, v) in e {
                errors.insert(format!("items[{i}].{k}"), v);
            }
            continue;
        }
        if !seen.insert((
            item.source.kind.clone(),
            item.source.id.clone(),
            purpose.clone(),
        )) {
            errors.insert(
                format!("items[{i}].source"),
                "the same source and purpose appear twice in this request".into(),
            );
            continue;
        }
        let payload = ItemPayload {
            source: item.source.clone(),
            purpose,
            fields: item.fields.with_defaults(defaults),
            config_id: None,
            target: None,
        };
        let mut ni = jira_bridge_store::jobs::NewJobItem::new(json!(payload));
        ni.item_key = Some(format!("{}:{}", item.source.kind, item.source.id));
        out.push(ni);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
