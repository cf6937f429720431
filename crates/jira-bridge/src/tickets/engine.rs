//! Exactly-once creation of Jira issues for links, one or many at a time.
//!
//! The steps for a batch (a single create is a batch of one):
//!
//! 1. Each item's link is already reserved (`pending`) in the ledger.
//! 2. Create metadata (issue types and the create screen per project and type) and
//!    e-mail → account look-ups come from a [`MetaCache`] (one per job or request), and
//!    every item is validated before Jira is called; an invalid item fails alone.
//! 3. Items whose earlier attempt may have reached Jira (`uncertain`: a retry, an
//!    answer that never came, a crash before our commit) are **reconciled** first:
//!    one bounded `/search/jql` over the project's issues created by the connection
//!    user since shortly before the link was reserved, asking for our idempotency
//!    property inline. An issue carrying the item's key is adopted instead of creating
//!    another. Jira's search index lags writes, so when some uncertain items are not
//!    found the search is repeated once after [`CreateOptions::reconcile_lag_retry`].
//! 4. The rest go to Jira in one bulk create (≤ 50), each carrying its idempotency
//!    key as an entity property; per-element answers map back to items.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use jira_bridge_store::events::NewEvent;
use jira_bridge_store::links::{Link, LinkedIssue};
use jira_bridge_store::{Store, StoreError, TenantId, Timestamp};
use jira_client::jql::{field, user_zone, Clause, Direction, Query};
use jira_client::{BulkCreateItem, Deployment, Issue, JiraClient, SearchRequest};
use serde_json::{json, Value};
use tokio::sync::{Mutex, OnceCell};

use super::ticket_event_data;
use super::validate::{
    emails_needed, to_issue_input, CreateScreen, FieldErrors, ResolvedUsers, Target, TicketFields,
    IDEMPOTENCY_PROPERTY,
};

/// Tunables of creation.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Wait before repeating a reconciliation search that missed some items (Jira's
    /// search index lags writes by up to a few seconds).
    pub reconcile_lag_retry: Duration,
    /// How far before a link's reservation the reconciliation search starts (clock
    /// skew between this service and Jira).
    pub reconcile_slack: chrono::Duration,
    /// Most result pages one reconciliation search reads (100 issues each).
    pub reconcile_max_pages: u32,
    /// The connection's kind: on an OAuth connection a 401 is a token rotated by
    /// another replica meanwhile (see
    /// [`crate::connections::unauthorized_is_token_race`]), so the items are tried
    /// again rather than failed.
    pub connection_kind: Option<String>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            reconcile_lag_retry: Duration::from_secs(2),
            reconcile_slack: chrono::Duration::minutes(10),
            reconcile_max_pages: 20,
            connection_kind: None,
        }
    }
}

type ScreenEntry = Result<Arc<CreateScreen>, FieldErrors>;
type IssueTypes = Arc<Vec<jira_client::IssueType>>;
/// Project key (upper case) and issue type (lower case).
type ScreenKey = (String, String);

/// Metadata and user look-ups shared by the items of one job or request.
#[derive(Debug, Default)]
pub struct MetaCache {
    /// One cell per project and issue type: concurrent askers of one screen wait for
    /// one read; different screens are read at the same time.
    screens: parking_lot::Mutex<HashMap<ScreenKey, Arc<OnceCell<ScreenEntry>>>>,
    /// A project's issue types (one read per project, whatever the types asked for).
    issue_types: parking_lot::Mutex<HashMap<String, Arc<OnceCell<IssueTypes>>>>,
    users: Mutex<ResolvedUsers>,
    deployment: Mutex<Option<Deployment>>,
    zone: Mutex<Option<Tz>>,
}

/// Why metadata could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The ticket names a project or issue type that does not exist (per field).
    #[error("invalid target")]
    Invalid(FieldErrors),
    /// Jira failed.
    #[error(transparent)]
    Jira(#[from] jira_client::Error),
}

impl MetaCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the site is Data Center.
    pub async fn data_center(&self, client: &JiraClient) -> Result<bool, jira_client::Error> {
        let mut d = self.deployment.lock().await;
        if let Some(d) = *d {
            return Ok(d == Deployment::DataCenter);
        }
        let got = client.deployment().await?;
        *d = Some(got);
        Ok(got == Deployment::DataCenter)
    }

    /// The connection user's time zone (UTC when Jira does not say).
    pub async fn zone(&self, client: &JiraClient) -> Result<Tz, jira_client::Error> {
        let mut z = self.zone.lock().await;
        if let Some(z) = *z {
            return Ok(z);
        }
        let me = client.myself().await?;
        let tz = me
            .time_zone
            .as_deref()
            .and_then(|n| user_zone(n).ok())
            .unwrap_or(chrono_tz::UTC);
        *z = Some(tz);
        Ok(tz)
    }

    /// The create screen of a project and issue type (name or id).
    pub async fn screen(
        &self,
        client: &JiraClient,
        project: &str,
        issue_type: &str,
    ) -> Result<Arc<CreateScreen>, MetaError> {
        let key = (project.to_uppercase(), issue_type.to_lowercase());
        let cell = self.screens.lock().entry(key).or_default().clone();
        // A refusal (no such project or type) is kept; a failure of Jira is not.
        let entry = cell
            .get_or_try_init(|| async {
                match self.fetch_screen(client, project, issue_type).await {
                    Ok(s) => Ok(Ok(Arc::new(s))),
                    Err(MetaError::Invalid(e)) => Ok(Err(e)),
                    Err(MetaError::Jira(e)) => Err(e),
                }
            })
            .await?;
        entry.clone().map_err(MetaError::Invalid)
    }

    /// Read the create screens of these projects and issue types at once (each read
    /// once per cache), so that later batches find them ready. Failures are left for
    /// the items that need the screen to report.
    pub async fn warm(&self, client: &JiraClient, screens: &[(String, String)]) {
        futures::future::join_all(
            screens
                .iter()
                .map(|(project, issue_type)| self.screen(client, project, issue_type)),
        )
        .await;
    }

    /// Resolve e-mail addresses not resolved yet (one look-up per address per cache).
    pub async fn resolve_emails(
        &self,
        client: &JiraClient,
        emails: &[String],
    ) -> Result<(), jira_client::Error> {
        let dc = self.data_center(client).await?;
        // Held across the look-ups: a concurrent batch asking for the same addresses
        // waits for these answers instead of asking Jira again.
        let mut users = self.users.lock().await;
        let missing: Vec<&String> = emails.iter().filter(|e| !users.contains_key(*e)).collect();
        // The addresses are independent: ask for them at once (the site's pacer
        // paces them).
        let found =
            futures::future::join_all(missing.iter().map(|e| client.user_by_email(e))).await;
        for (e, found) in missing.into_iter().zip(found) {
            let id = found?.and_then(|u| {
                if u.active == Some(false) {
                    return None;
                }
                if dc {
                    u.name.or(u.key)
                } else {
                    u.account_id
                }
            });
            users.insert(e.clone(), id);
        }
        Ok(())
    }

    async fn users(&self) -> ResolvedUsers {
        self.users.lock().await.clone()
    }
}

impl MetaCache {
    /// A project's issue types, read once per cache.
    async fn issue_types(
        &self,
        client: &JiraClient,
        project: &str,
    ) -> Result<Arc<Vec<jira_client::IssueType>>, jira_client::Error> {
        let cell = self
            .issue_types
            .lock()
            .entry(project.to_uppercase())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            Ok(Arc::new(client.create_meta_issue_types(project).await?))
        })
        .await
        .cloned()
    }

    async fn fetch_screen(
        &self,
        client: &JiraClient,
        project: &str,
        issue_type: &str,
    ) -> Result<CreateScreen, MetaError> {
        let types = match self.issue_types(client, project).await {
            Ok(t) => t,
            Err(jira_client::Error::NotFound { .. })
            | Err(jira_client::Error::Validation { .. }) => {
                return Err(MetaError::Invalid(FieldErrors::from([(
                "project_key".to_owned(),
                format!("project {project:?} does not exist or the connection user cannot create issues in it"),
            )])));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(it) = types
            .iter()
            .find(|t| t.id == issue_type || t.name.eq_ignore_ascii_case(issue_type))
        else {
            let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
            return Err(MetaError::Invalid(FieldErrors::from([(
                "issue_type".to_owned(),
                format!(
                "issue type {issue_type:?} is not available in project {project}; available: {}",
                names.join(", ")
            ),
            )])));
        };
        let fields = client.create_meta_fields(project, &it.id).await?;
        Ok(CreateScreen {
            issue_type_id: it.id.clone(),
            issue_type_name: it.name.clone(),
            fields,
        })
    }
}

/// One item to create.
#[derive(Debug, Clone)]
pub struct CreateItem {
    /// Its reserved link.
    pub link: Link,
    /// What to create.
    pub fields: TicketFields,
    /// Whether an earlier attempt may have reached Jira (reconcile first).
    pub uncertain: bool,
}

/// What happened to one item.
#[derive(Debug, Clone)]
pub enum CreateResult {
    /// Created now, or found by reconciliation (`adopted`).
    Created {
        /// The completed link.
        link: Box<Link>,
        /// Found in Jira by its idempotency key instead of created.
        adopted: bool,
        /// The summary was shortened by the overflow policy.
        summary_truncated: bool,
    },
    /// Invalid input: nothing was sent to Jira (link failed).
    Invalid(FieldErrors),
    /// Jira refused it (link failed).
    Rejected {
        /// Jira's messages.
        message: String,
        /// Field errors Jira named.
        errors: FieldErrors,
        /// Jira's status for the element.
        status: u16,
    },
    /// May or may not exist in Jira: the link stays pending and the next attempt
    /// reconciles first.
    Uncertain(String),
}

impl CreateResult {
    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        matches!(self, CreateResult::Uncertain(_))
    }
}

/// A store failure during creation: the whole batch is retried (links stay pending).
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct BatchStoreError(#[from] pub StoreError);

/// The idempotency property value written on the issue.
pub fn property_value(link: &Link) -> Value {
    json!({ "key": link.idempotency_key, "ticket": link.id })
}

fn linked(client: &JiraClient, id: &str, key: &str, issue: Option<&Issue>) -> LinkedIssue {
    let status: Option<jira_client::Status> = issue.and_then(|i| i.field("status"));
    let updated = issue
        .and_then(|i| i.fields.get("updated"))
        .and_then(Value::as_str)
        .and_then(jira_client::parse_jira_datetime);
    LinkedIssue {
        issue_id: id.to_owned(),
        issue_key: key.to_owned(),
        url: client.browse_url(key),
        status_category: status
            .as_ref()
            .and_then(|s| s.category_key().map(str::to_owned)),
        status: status.map(|s| s.name),
        remote_updated_at: updated.map(|t| Timestamp::from(t.with_timezone(&Utc))),
        summary: issue
            .and_then(|i| i.fields.get("summary"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Create (or adopt) the issues of a batch of reserved links. One result per item,
/// in order. Jira failures become per-item results; only a store failure fails the
/// whole batch.
pub async fn create_batch(
    store: &Store,
    client: &JiraClient,
    cache: &MetaCache,
    tenant: &TenantId,
    items: &[CreateItem],
    opts: &CreateOptions,
    record: &Record<'_>,
) -> Result<Vec<CreateResult>, BatchStoreError> {
    let mut results: Vec<Option<CreateResult>> = vec![None; items.len()];
    // Issues found or created, recorded on their links at the end.
    let mut made: Vec<Option<Made>> = vec![None; items.len()];

    // Metadata and users.
    let mut screens: Vec<Option<Arc<CreateScreen>>> = vec![None; items.len()];
    for (i, item) in items.iter().enumerate() {
        match cache
            .screen(client, &item.fields.project_key, &item.fields.issue_type)
            .await
        {
            Ok(s) => screens[i] = Some(s),
            Err(MetaError::Invalid(e)) => results[i] = Some(CreateResult::Invalid(e)),
            Err(MetaError::Jira(e)) => results[i] = Some(from_jira_error(&e, opts)),
        }
    }
    let mut emails: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if results[i].is_none() {
            emails.extend(emails_needed(&item.fields, screens[i].as_deref()));
        }
    }
    emails.sort();
    emails.dedup();
    if let Err(e) = cache.resolve_emails(client, &emails).await {
        let r = from_jira_error(&e, opts);
        for slot in results.iter_mut().filter(|r| r.is_none()) {
            *slot = Some(r.clone());
        }
    }
    let data_center = match cache.data_center(client).await {
        Ok(dc) => dc,
        Err(e) => {
            let r = from_jira_error(&e, opts);
            for slot in results.iter_mut().filter(|r| r.is_none()) {
                *slot = Some(r.clone());
            }
            false
        }
    };
    let users = cache.users().await;

    // Validate and build the inputs.
    let mut prepared = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        let Some(screen) = screens[i].as_deref() else {
            continue;
        };
        let target = Target {
            screen,
            users: &users,
            data_center,
        };
        match to_issue_input(&item.fields, target, &property_value(&item.link)) {
            Ok(p) => prepared.push((i, p)),
            Err(e) => results[i] = Some(CreateResult::Invalid(e)),
        }
    }

    // Reconcile the uncertain ones, per project.
    let uncertain: Vec<usize> = prepared
        .iter()
        .map(|(i, _)| *i)
        .filter(|i| items[*i].uncertain)
        .collect();
    if !uncertain.is_empty() {
        let mut by_project: HashMap<String, Vec<usize>> = HashMap::new();
        for i in &uncertain {
            by_project
                .entry(items[*i].fields.project_key.to_uppercase())
                .or_default()
                .push(*i);
        }
        for (project, idx) in by_project {
            let since = idx
                .iter()
                .map(|i| items[*i].link.created_at)
                .min()
                .unwrap_or_else(Utc::now);
            let keys: HashSet<String> = idx
                .iter()
                .map(|i| items[*i].link.idempotency_key.clone())
                .collect();
            match reconcile(client, cache, &project, since, &keys, opts).await {
                Ok(found) => {
                    for i in idx {
                        if let Some(issue) = found.get(&items[i].link.idempotency_key) {
                            tracing::info!(ticket = %items[i].link.id, issue = %issue.key, "adopted an issue created by an earlier attempt");
                            made[i] = Some(Made {
                                issue: linked(client, &issue.id, &issue.key, Some(issue)),
                                adopted: true,
                                summary_truncated: false,
                            });
                        }
                    }
                }
                Err(e) => {
                    let r = CreateResult::Uncertain(format!(
                        "could not check whether an earlier attempt created the issue: {e}"
                    ));
                    for i in idx {
                        results[i] = Some(r.clone());
                    }
                }
            }
        }
    }

    // Create the rest in one bulk call.
    let to_create: Vec<(usize, super::validate::Prepared)> = prepared
        .into_iter()
        .filter(|(i, _)| results[*i].is_none() && made[*i].is_none())
        .collect();
    if !to_create.is_empty() {
        let inputs: Vec<jira_client::IssueInput> =
            to_create.iter().map(|(_, p)| p.input.clone()).collect();
        let answers = client.bulk_create(&inputs).await;
        for ((i, p), answer) in to_create.iter().zip(answers) {
            results[*i] = Some(match answer {
                BulkCreateItem::Created(c) => {
                    let mut l = linked(client, &c.id, &c.key, None);
                    // The summary as sent (after the overflow policy) is Jira's.
                    l.summary = p
                        .input
                        .fields
                        .get("summary")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    made[*i] = Some(Made {
                        issue: l,
                        adopted: false,
                        summary_truncated: p.summary_truncated,
                    });
                    continue;
                }
                BulkCreateItem::Rejected {
                    status,
                    messages,
                    field_errors,
                } => {
                    let mut parts = messages.clone();
                    parts.extend(field_errors.iter().map(|(k, v)| format!("{k}: {v}")));
                    CreateResult::Rejected {
                        message: parts.join("; "),
                        errors: field_errors,
                        status,
                    }
                }
                BulkCreateItem::Failed(e) => from_jira_error(&e, opts),
            });
        }
    }

    record_outcomes(store, tenant, items, results, made, record).await
}

/// An issue created or adopted for an item, not recorded on its link yet.
#[derive(Debug, Clone)]
struct Made {
    issue: LinkedIssue,
    adopted: bool,
    summary_truncated: bool,
}

/// How [`create_batch`] records what happened.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The claim the caller holds on the items' links, released with the outcome.
    pub claim_owner: &'a str,
    /// Announce definite failures (`ticket.failed`) as well as creations.
    pub announce_failures: bool,
}

/// Record a batch's outcomes in one transaction: created links completed, definite
/// failures recorded, claims released, then `ticket.created` / `ticket.failed`
/// (the outbox: a link and its event commit together). When that transaction fails
/// the links stay `pending` (a retry reconciles) and the claims are released one by
/// one so that the retry is not locked out.
async fn record_outcomes(
    store: &Store,
    tenant: &TenantId,
    items: &[CreateItem],
    results: Vec<Option<CreateResult>>,
    made: Vec<Option<Made>>,
    record: &Record<'_>,
) -> Result<Vec<CreateResult>, BatchStoreError> {
    let started = std::time::Instant::now();
    let written = async {
        let mut tx = store.begin().await?;
        let mut out = Vec::with_capacity(items.len());
        let mut events = Vec::new();
        for ((item, r), m) in items.iter().zip(results).zip(made) {
            let r = match (m, r) {
                (Some(m), _) => {
                    let link = tx.complete_link(tenant, &item.link.id, &m.issue).await?;
                    events.push(created_event(&link));
                    CreateResult::Created {
                        link: Box::new(link),
                        adopted: m.adopted,
                        summary_truncated: m.summary_truncated,
                    }
                }
                (None, r) => r.unwrap_or_else(|| CreateResult::Uncertain("not processed".into())),
            };
            let failure = match &r {
                CreateResult::Invalid(errors) => Some((
                    "validation",
                    json!({"code": "validation", "errors": errors}),
                )),
                CreateResult::Rejected {
                    message,
                    errors,
                    status,
                } => Some((
                    "jira_rejected",
                    json!({"code": "jira_rejected", "message": message, "errors": errors, "status": status}),
                )),
                _ => None,
            };
            if let Some((code, error)) = failure {
                let link = tx.fail_link(tenant, &item.link.id, &error).await?;
                if record.announce_failures {
                    events.push(failed_event(&link, code));
                }
            }
            tx.release_link(tenant, &item.link.id, record.claim_owner)
                .await?;
            out.push(r);
        }
        for ev in events {
            tx.append_event(ev).await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>(out)
    }
    .await;
    tracing::debug!(
        items = items.len(),
        record_ms = started.elapsed().as_secs_f64() * 1000.0,
        "creation outcomes recorded"
    );
    match written {
        Ok(out) => Ok(out),
        Err(e) => {
            for item in items {
                if let Err(e) = store
                    .release_link(tenant, &item.link.id, record.claim_owner)
                    .await
                {
                    tracing::warn!(ticket = %item.link.id, error = ?e, "could not release the link claim");
                }
            }
            Err(BatchStoreError(e))
        }
    }
}

/// `ticket.created` for a created (or adopted) link.
pub fn created_event(link: &Link) -> NewEvent {
    NewEvent {
        tenant_id: link.tenant_id.clone(),
        event_type: "ticket.created".into(),
        subject: Some(link.id.to_string()),
        data: ticket_event_data(link),
    }
}

/// `ticket.failed` for a link whose creation failed for good (`code` says why).
fn failed_event(link: &Link, code: &str) -> NewEvent {
    let mut data = ticket_event_data(link);
    data["code"] = json!(code);
    NewEvent {
        tenant_id: link.tenant_id.clone(),
        event_type: "ticket.failed".into(),
        subject: Some(link.id.to_string()),
        data,
    }
}

fn from_jira_error(e: &jira_client::Error, opts: &CreateOptions) -> CreateResult {
    let token_race = opts
        .connection_kind
        .as_deref()
        .is_some_and(|k| crate::connections::unauthorized_is_token_race_for(k, e));
    if token_race
        || e.is_outcome_unknown()
        || e.is_transient()
        || e.status().is_some_and(|s| s >= 500)
    {
        return CreateResult::Uncertain(e.to_string());
    }
    let mut errors = FieldErrors::new();
    if let jira_client::Error::Validation { field_errors, .. } = e {
        errors.extend(field_errors.clone());
    }
    let msgs = e.jira_messages();
    CreateResult::Rejected {
        message: if msgs.is_empty() {
            e.to_string()
        } else {
            msgs.join("; ")
        },
        errors,
        status: e.status().unwrap_or(0),
    }
}

/// Find issues carrying any of `keys` as their idempotency property: recent issues of
/// `project` created by the connection user since `since` (minus the slack). One
/// bounded search (paged); repeated once after the lag wait when some are missing.
pub async fn reconcile(
    client: &JiraClient,
    cache: &MetaCache,
    project: &str,
    since: DateTime<Utc>,
    keys: &HashSet<String>,
    opts: &CreateOptions,
) -> Result<HashMap<String, Issue>, jira_client::Error> {
    let zone = cache.zone(client).await?;
    let jql = Query::new(
        Clause::project_in([project])
            .and(field("creator").eq(jira_client::jql::Value::Function("currentUser()".into())))
            .and(field("created").since(since - opts.reconcile_slack, zone)),
    )
    .order_by("created", Direction::Desc)
    .build()
    .map_err(|e| jira_client::Error::Config(e.to_string()))?;
    let mut found = HashMap::new();
    for round in 0..2 {
        if round == 1 {
            if opts.reconcile_lag_retry.is_zero() {
                break;
            }
            tokio::time::sleep(opts.reconcile_lag_retry).await;
        }
        let req = SearchRequest {
            jql: jql.clone(),
            fields: vec!["status".into(), "updated".into()],
            properties: vec![IDEMPOTENCY_PROPERTY.into()],
            page_size: Some(100),
            ..SearchRequest::default()
        };
        let mut cursor: Option<String> = None;
        for _ in 0..opts.reconcile_max_pages {
            let page = client.search_page(&req, cursor.as_deref()).await?;
            for issue in page.issues {
                let k = issue
                    .properties
                    .get(IDEMPOTENCY_PROPERTY)
                    .and_then(|v| v.get("key"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Some(k) = k {
                    if keys.contains(&k) {
                        found.insert(k, issue);
                    }
                }
            }
            if found.len() == keys.len() {
                return Ok(found);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(found)
}
