//! Tickets against jira-sim: bulk creation exactly once (acceptance 1), crash windows
//! between Jira's answer and our commit (2), faults (3), per-item validation (4).
//!
//! These run the ticket domain (`jira_bridge::tickets`) with the real store, the real
//! Jira client and the simulator; bulk jobs are driven through the store's job tables
//! (claim with a lease, run the batch step, finish), item by item as the job engine
//! does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jira_bridge::tickets::bulk::{self, BulkItem, Outcome};
use jira_bridge::tickets::{CreateOptions, MetaCache, Source, TicketFields};
use jira_bridge_store::connections::NewConnection;
use jira_bridge_store::jobs::{
    ClaimRequest, FinishOutcome, ItemFinish, JobId, JobState, KindClaim, NewJob,
};
use jira_bridge_store::test_support::TestDatabase;
use jira_bridge_store::{ConnectionId, Store, TenantId, Timestamp};
use jira_client::{JiraClient, SiteConfig};
use jira_sim::{SimConfig, SimHandle};
use secrecy::SecretString;
use serde_json::{json, Value};

pub struct Env {
    pub sim: SimHandle,
    pub store: Store,
    pub client: JiraClient,
    pub tenant: TenantId,
    pub con: ConnectionId,
    pub http: reqwest::Client,
    _db: TestDatabase,
}

/// A simulator, a fresh database with a tenant and a connection row, and a client
/// acting as `user` (`alice`, `kiri`, …).
pub async fn env(user: &str) -> Env {
    let sim = jira_sim::spawn(SimConfig::cloud()).await.unwrap();
    let db = TestDatabase::from_env().await.unwrap();
    let store = db.store().await.unwrap();
    let tenant = store.create_tenant("tickets").await.unwrap().id;
    let con = ConnectionId::new();
    store
        .insert_connection(NewConnection {
            id: con.clone(),
            tenant_id: tenant.clone(),
            kind: "cloud_token".into(),
            owner: None,
            name: "sim".into(),
            base_url: sim.base_url().to_owned(),
            cloud_id: None,
            site_name: None,
            account_id: None,
            secret: vec![0],
            secret_key_id: "k".into(),
            scopes: vec![],
            token_expires_at: None,
            verification_status: "valid".into(),
            last_verified_at: None,
            email: Some(format!("{user}@example.com")),
            account_name: None,
            deployment: Some("Cloud".into()),
            server_version: None,
        })
        .await
        .unwrap();
    let client = JiraClient::new(SiteConfig::cloud_basic(
        sim.base_url().parse().unwrap(),
        format!("{user}@example.com"),
        SecretString::from(format!("ATATT-{user}-api-token")),
    ))
    .unwrap();
    Env {
        sim,
        store,
        client,
        tenant,
        con,
        http: reqwest::Client::new(),
        _db: db,
    }
}

impl Env {
    pub async fn sim_get(&self, path: &str) -> Value {
        self.http
            .get(self.sim.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn sim_put(&self, path: &str, body: Value) {
        let r = self
            .http
            .put(self.sim.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> reqwest::StatusCode {
        self.http
            .post(self.sim.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn reset_stats(&self) {
        assert!(self
            .sim_post("/_sim/stats/reset", json!({}))
            .await
            .is_success());
    }

    /// Calls the simulator answered, by method and a fragment of the route.
    pub async fn calls(&self, method: &str, route_contains: &str) -> u64 {
        let s = self.sim_get("/_sim/stats").await;
        s["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == method && r["endpoint"].as_str().unwrap().contains(route_contains)
            })
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    }

    pub async fn total_calls(&self) -> u64 {
        self.sim_get("/_sim/stats").await["total"].as_u64().unwrap()
    }

    /// Keys of the simulator's issues in a project.
    pub async fn sim_issue_keys(&self, project: &str) -> HashSet<String> {
        let v = self
            .sim_get(&format!("/_sim/issues?project={project}"))
            .await;
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v["issues"].as_array().cloned())
            .unwrap();
        list.iter()
            .map(|i| i["key"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Enqueue a bulk job.
    pub async fn enqueue(&self, defaults: &TicketFields, items: Vec<BulkItem>) -> JobId {
        let items = bulk::job_items(defaults, items).unwrap();
        self.store
            .create_job(
                NewJob {
                    tenant_id: self.tenant.clone(),
                    kind: bulk::KIND.into(),
                    payload: json!({"connection_id": self.con}),
                    payload_version: 1,
                    idempotency_key: None,
                    connection_id: Some(self.con.clone()),
                    max_attempts: 8,
                    items,
                },
                Timestamp::now(),
            )
            .await
            .unwrap()
            .job
            .id
    }

    /// Run a job's batches to the end as one worker: claim up to 50 due items with a
    /// lease, run the batch step, record the outcomes. Retryable failures are due
    /// again at once.
    pub async fn drain(&self, job: &JobId, opts: &CreateOptions) -> jira_bridge_store::jobs::Job {
        let cache = MetaCache::new();
        self.drain_with(job, opts, &cache, "w1", None).await
    }

    pub async fn drain_with(
        &self,
        job: &JobId,
        opts: &CreateOptions,
        cache: &MetaCache,
        worker: &str,
        stop_after: Option<usize>,
    ) -> jira_bridge_store::jobs::Job {
        let kinds = [KindClaim {
            kind: bulk::KIND.into(),
            limit: bulk::BATCH,
            same_group: false,
        }];
        let mut batches = 0;
        loop {
            if stop_after.is_some_and(|n| batches >= n) {
                break;
            }
            let now = Timestamp::now();
            let claim = self
                .store
                .claim_job_items(&ClaimRequest {
                    owner: worker,
                    kinds: &kinds,
                    lease_until: Timestamp::from(
                        now.as_datetime() + chrono::Duration::seconds(300),
                    ),
                    now,
                })
                .await
                .unwrap();
            let Some(batch) = claim else { break };
            batches += 1;
            let outcomes = bulk::run_batch(
                &self.store,
                &self.client,
                cache,
                &self.tenant,
                &self.con,
                job.as_str(),
                &batch.items,
                opts,
            )
            .await;
            assert_eq!(outcomes.len(), batch.items.len());
            let finishes: Vec<ItemFinish> = batch
                .items
                .iter()
                .zip(outcomes)
                .map(|(item, o)| ItemFinish {
                    id: item.id.clone(),
                    lease_epoch: item.lease_epoch,
                    outcome: match o {
                        Outcome::Succeeded(v) => FinishOutcome::Succeeded { result: v },
                        Outcome::Failed { error, retryable } => FinishOutcome::Failed {
                            error,
                            retry_at: retryable.then(Timestamp::now),
                        },
                    },
                })
                .collect();
            self.store
                .finish_job_items(&batch.job.id, worker, &finishes, Timestamp::now())
                .await
                .unwrap();
        }
        self.store
            .get_job(&self.tenant, job)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn items(&self, job: &JobId) -> Vec<jira_bridge_store::jobs::JobItem> {
        let mut out = Vec::new();
        let mut page = jira_bridge_store::PageRequest::first(500);
        loop {
            let p = self
                .store
                .list_job_items(&self.tenant, job, None, &page)
                .await
                .unwrap();
            out.extend(p.items);
            match p.next_cursor {
                Some(c) => page = jira_bridge_store::PageRequest::new(Some(500), Some(&c)).unwrap(),
                None => break,
            }
        }
        out
    }
}

pub fn task(project: &str) -> TicketFields {
    TicketFields {
        project_key: project.into(),
        issue_type: "Task".into(),
        ..Default::default()
    }
}

pub fn item(kind: &str, id: usize, summary: &str) -> BulkItem {
    BulkItem {
        source: Source {
            kind: kind.into(),
            id: id.to_string(),
        },
        purpose: None,
        fields: TicketFields {
            summary: summary.into(),
            ..Default::default()
        },
    }
}

fn fast() -> CreateOptions {
    CreateOptions {
        reconcile_lag_retry: Duration::from_millis(300),
        ..CreateOptions::default()
    }
}

/// Acceptance 1: 1,000 items become exactly 1,000 issues in at most 20 bulk calls plus
/// metadata and 5 user look-ups; the same request again creates nothing.
#[tokio::test]
async fn bulk_thousand_items_exactly_once_in_twenty_bulk_calls() {
    let env = env("alice").await;
    let before = env.sim_issue_keys("WEB").await;
    let emails = ["alice", "bob", "kiri", "kai", "vera"];
    let make = || {
        (0..1000)
            .map(|i| {
                let mut it = item("violation", i, &format!("Violation {i}"));
                if i % 10 == 0 {
                    it.fields.assignee_email =
                        Some(format!("{}@example.com", emails[(i / 10) % 5]));
                }
                it
            })
            .collect::<Vec<_>>()
    };
    env.reset_stats().await;
    let job = env.enqueue(&task("WEB"), make()).await;
    let done = env.drain(&job, &fast()).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.counts);
    assert_eq!(done.counts.succeeded, 1000);

    let after = env.sim_issue_keys("WEB").await;
    assert_eq!(after.len() - before.len(), 1000);
    let bulk_calls = env.calls("POST", "issue/bulk").await;
    let user_calls = env.calls("GET", "user/search").await;
    let total = env.total_calls().await;
    assert!(bulk_calls <= 20, "bulk calls {bulk_calls}");
    assert_eq!(user_calls, 5, "one look-up per distinct e-mail");
    // 20 bulk + 5 users + metadata (server info, issue types, create screen).
    assert!(total <= 20 + 5 + 4, "total calls {total}");

    // Every item's ticket points at a distinct new issue.
    let items = env.items(&job).await;
    let keys: HashSet<String> = items
        .iter()
        .map(|i| {
            i.result.as_ref().unwrap()["issue_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 1000);
    assert!(keys
        .iter()
        .all(|k| after.contains(k) && !before.contains(k)));
    // The assignee was resolved from the e-mail.
    let sample = items.iter().find(|i| i.seq == 10).unwrap();
    let key = sample.result.as_ref().unwrap()["issue_key"]
        .as_str()
        .unwrap();
    let issue = env.sim_get(&format!("/_sim/issues/{key}")).await;
    let assignee = issue["fields"]["assignee"]["accountId"]
        .as_str()
        .unwrap_or_default();
    assert!(!assignee.is_empty(), "{}", issue["fields"]["assignee"]);
    assert!(issue["properties"]["jira-bridge.idempotency"]["key"]
        .as_str()
        .unwrap()
        .starts_with("jb1-"));

    // The same request again: every item answers the existing ticket, no issue made.
    env.reset_stats().await;
    let again = env.enqueue(&task("WEB"), make()).await;
    let done = env.drain(&again, &fast()).await;
    assert_eq!(done.counts.succeeded, 1000);
    assert_eq!(env.sim_issue_keys("WEB").await.len(), after.len());
    assert_eq!(env.calls("POST", "issue/bulk").await, 0);
    let items = env.items(&again).await;
    assert!(items
        .iter()
        .all(|i| i.result.as_ref().unwrap()["existing"] == json!(true)));
}

/// Acceptance 4: bad priority, missing required custom field, unknown assignee e-mail
/// fail alone with errors naming the field; an overlong summary follows the policy;
/// the rest of the batch is created.
#[tokio::test]
async fn bulk_invalid_items_fail_alone_with_named_fields() {
    let env = env("alice").await;
    let defaults = TicketFields {
        project_key: "OPS".into(),
        issue_type: "Bug".into(),
        fields: [("Severity".to_owned(), json!("Major"))]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let mut items: Vec<BulkItem> = (0..10)
        .map(|i| item("finding", i, &format!("Finding {i}")))
        .collect();
    items[1].fields.priority = Some("Urgentest".into());
    items[2]
        .fields
        .fields
        .insert("Region".into(), json!("EU / DE"));
    items[3].fields.assignee_email = Some("nobody@example.com".into());
    items[4].fields.summary = "S".repeat(400);
    items[5]
        .fields
        .fields
        .insert("Platforms".into(), json!(["Web", "Toaster"]));
    items[6].fields.priority = Some("high".into());
    items[6].fields.assignee_email = Some("bob@example.com".into());
    items[6]
        .fields
        .fields
        .insert("Region".into(), json!({"parent": "US", "child": "North"}));
    items[6]
        .fields
        .fields
        .insert("Reviewer".into(), json!("kiri@example.com"));
    let job = env.enqueue(&defaults, items).await;

    // A required custom field missing: an OPS Bug without Severity.
    let missing = env
        .enqueue(
            &TicketFields {
                project_key: "OPS".into(),
                issue_type: "Bug".into(),
                ..Default::default()
            },
            vec![item("finding", 100, "No severity")],
        )
        .await;

    env.reset_stats().await;
    let done = env.drain(&job, &fast()).await;
    let items = env.items(&job).await;
    let err = |seq: i64| items.iter().find(|i| i.seq == seq).unwrap().error.clone();
    assert_eq!(done.state, JobState::PartiallyFailed);
    let e1 = err(1).unwrap();
    assert_eq!(e1.code, "validation");
    assert_eq!(e1.field.as_deref(), Some("priority"));
    assert!(e1.message.contains("Urgentest"), "{}", e1.message);
    let e3 = err(3).unwrap();
    assert_eq!(e3.field.as_deref(), Some("assignee_email"));
    assert!(e3.message.contains("nobody@example.com"));
    let e5 = err(5).unwrap();
    assert_eq!(e5.field.as_deref(), Some("fields.Platforms"));
    assert!(e5.message.contains("Toaster"));
    // A cascading child that does not exist under its parent is named with the
    // allowed children; the item's other fields were valid.
    let e6 = err(6).unwrap();
    assert_eq!(e6.field.as_deref(), Some("fields.Region"), "{e6:?}");
    assert!(
        e6.message.contains("North") && e6.message.contains("East"),
        "{}",
        e6.message
    );
    assert!(
        !e6.message.contains("Reviewer") && !e6.message.contains("priority"),
        "only Region is wrong: {}",
        e6.message
    );
    for seq in [0, 2, 4, 7, 8, 9] {
        let it = items.iter().find(|i| i.seq == seq).unwrap();
        assert!(
            it.result.is_some(),
            "item {seq} not created: {:?}",
            it.error
        );
    }
    // The cascading value was sent as ids.
    let r2 = items
        .iter()
        .find(|i| i.seq == 2)
        .unwrap()
        .result
        .clone()
        .unwrap();
    let issue2 = env
        .sim_get(&format!(
            "/_sim/issues/{}",
            r2["issue_key"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        issue2["fields"]["customfield_10024"]["child"]["value"],
        json!("DE"),
        "{}",
        issue2["fields"]["customfield_10024"]
    );
    // The overlong summary was cut to 255 and kept in full in the description.
    let r4 = items
        .iter()
        .find(|i| i.seq == 4)
        .unwrap()
        .result
        .clone()
        .unwrap();
    assert_eq!(r4["summary_truncated"], json!(true));
    let issue = env
        .sim_get(&format!(
            "/_sim/issues/{}",
            r4["issue_key"].as_str().unwrap()
        ))
        .await;
    let summary = issue["fields"]["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), 255);
    assert!(issue["fields"]["description"]
        .to_string()
        .contains(&"S".repeat(400)));
    // One bulk call for the valid items; nothing invalid reached Jira.
    assert_eq!(env.calls("POST", "issue/bulk").await, 1);

    let done = env.drain(&missing, &fast()).await;
    assert_eq!(done.state, JobState::Failed);
    let e = env.items(&missing).await[0].error.clone().unwrap();
    assert_eq!(e.field.as_deref(), Some("fields.customfield_10020"));
    assert!(e.message.contains("Severity"), "{}", e.message);
}

/// Acceptance 3: 10% 5xx, some 429s, and some writes applied but never answered: every
/// item is created once or failed with a reason; nothing lost, nothing duplicated.
#[tokio::test]
async fn bulk_under_faults_creates_each_item_once() {
    let env = env("alice").await;
    let before = env.sim_issue_keys("WEB").await;
    env.sim_put(
        "/_sim/faults",
        json!({
            "error_rate": 0.1, "error_status": 503,
            "rules": [
                {"method": "POST", "path_contains": "/issue/bulk", "fault": "rate_limit", "count": 2},
                {"method": "POST", "path_contains": "/issue/bulk", "fault": "unanswered_reset", "count": 2, "skip": 3}
            ]
        }),
    )
    .await;
    let items: Vec<BulkItem> = (0..400)
        .map(|i| item("alert", i, &format!("Alert {i}")))
        .collect();
    let job = env.enqueue(&task("WEB"), items).await;
    let done = env.drain(&job, &fast()).await;
    env.sim_put("/_sim/faults", json!({})).await;
    assert!(done.state.is_terminal());
    assert_eq!(done.counts.pending + done.counts.running, 0);

    let items = env.items(&job).await;
    let mut created: Vec<String> = Vec::new();
    for it in &items {
        match (&it.result, &it.error) {
            (Some(r), _) => created.push(r["issue_key"].as_str().unwrap().to_owned()),
            (None, Some(e)) => assert!(!e.message.is_empty(), "failure without a reason"),
            (None, None) => panic!("item {} has neither result nor error", it.seq),
        }
    }
    let after = env.sim_issue_keys("WEB").await;
    let new: HashSet<String> = after.difference(&before).cloned().collect();
    let distinct: HashSet<String> = created.iter().cloned().collect();
    assert_eq!(distinct.len(), created.len(), "two items share an issue");
    assert_eq!(
        new, distinct,
        "issues in Jira = issues of succeeded items (no duplicates, none lost)"
    );
    // Unanswered writes were adopted by reconciliation, not created twice.
    let adopted = items
        .iter()
        .filter(|i| {
            i.result
                .as_ref()
                .is_some_and(|r| r["adopted"] == json!(true))
        })
        .count();
    assert!(adopted >= 50, "adopted {adopted}");
    assert!(done.counts.succeeded >= 390, "{:?}", done.counts);
}

/// Acceptance 2 (in process): the worker dies while Jira holds the answer of a bulk
/// create it has applied; its lease expires, another worker claims the items, finds
/// the issues by their idempotency property (after the search index caught up) and
/// adopts them. Exactly 100 issues.
#[tokio::test]
async fn crash_between_jira_answer_and_commit_is_reconciled() {
    let env = env("alice").await;
    let before = env.sim_issue_keys("WEB").await;
    let items: Vec<BulkItem> = (0..100)
        .map(|i| item("story", i, &format!("Story {i}")))
        .collect();
    let job = env.enqueue(&task("WEB"), items).await;
    env.sim_put(
        "/_sim/faults",
        json!({
            "index_lag_ms": 1500,
            "rules": [{"method": "POST", "path_contains": "/issue/bulk", "fault": "unanswered_hold", "delay_ms": 60000, "count": 1}]
        }),
    )
    .await;
    // Worker 1 claims the first batch and dies while waiting for Jira's answer.
    let cache = Arc::new(MetaCache::new());
    let kinds = [KindClaim {
        kind: bulk::KIND.into(),
        limit: 50,
        same_group: false,
    }];
    let now = Timestamp::now();
    let batch = env
        .store
        .claim_job_items(&ClaimRequest {
            owner: "w1",
            kinds: &kinds,
            lease_until: Timestamp::from(now.as_datetime() + chrono::Duration::milliseconds(200)),
            now,
        })
        .await
        .unwrap()
        .unwrap();
    let opts = fast();
    let run = bulk::run_batch(
        &env.store,
        &env.client,
        &cache,
        &env.tenant,
        &env.con,
        job.as_str(),
        &batch.items,
        &opts,
    );
    let died = tokio::time::timeout(Duration::from_secs(2), run).await;
    assert!(died.is_err(), "the held answer must outlast the worker");
    // Jira applied the write: 50 issues exist, no link knows them.
    let mid = env.sim_issue_keys("WEB").await;
    assert_eq!(mid.len() - before.len(), 50);

    // Worker 2 takes over once the lease expired (the claim sees it as due).
    let fresh = MetaCache::new();
    let done = env.drain_with(&job, &fast(), &fresh, "w2", None).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.counts);
    let after = env.sim_issue_keys("WEB").await;
    assert_eq!(after.len() - before.len(), 100, "exactly 100 issues");
    let items = env.items(&job).await;
    let adopted = items
        .iter()
        .filter(|i| {
            i.result
                .as_ref()
                .is_some_and(|r| r["adopted"] == json!(true))
        })
        .count();
    assert_eq!(adopted, 50);
    let keys: HashSet<&str> = items
        .iter()
        .map(|i| i.result.as_ref().unwrap()["issue_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 100);
    env.sim_put("/_sim/faults", json!({})).await;
}

/// A single create: the same source and purpose again answers the existing ticket; an
/// unanswered create is reconciled by the next request instead of duplicated.
#[tokio::test]
async fn single_create_is_idempotent_and_reconciles_unknown_outcomes() {
    let env = env("alice").await;
    let before = env.sim_issue_keys("WEB").await;
    let source = Source {
        kind: "release".into(),
        id: "1.2.3".into(),
    };
    let fields = TicketFields {
        summary: "Release 1.2.3".into(),
        ..task("WEB")
    };
    let new = || {
        jira_bridge::tickets::new_link(
            &env.tenant,
            &env.con,
            &source,
            "release",
            "WEB",
            None,
            None,
            None,
        )
    };

    env.sim_put(
        "/_sim/faults",
        json!({"rules": [{"method": "POST", "path_contains": "/issue/bulk", "fault": "unanswered_reset", "count": 1}]}),
    )
    .await;
    let first =
        jira_bridge::tickets::create_one(&env.store, &env.client, new(), fields.clone(), &fast())
            .await
            .unwrap();
    assert!(
        matches!(first, jira_bridge::tickets::CreateOne::Uncertain(_)),
        "{first:?}"
    );
    assert_eq!(
        env.sim_issue_keys("WEB").await.len(),
        before.len() + 1,
        "applied but unanswered"
    );

    let second =
        jira_bridge::tickets::create_one(&env.store, &env.client, new(), fields.clone(), &fast())
            .await
            .unwrap();
    let jira_bridge::tickets::CreateOne::Created { link, .. } = second else {
        panic!("{second:?}")
    };
    assert_eq!(link.state, "created");
    let third = jira_bridge::tickets::create_one(&env.store, &env.client, new(), fields, &fast())
        .await
        .unwrap();
    let jira_bridge::tickets::CreateOne::Existing(existing) = third else {
        panic!("{third:?}")
    };
    assert_eq!(existing.issue_key, link.issue_key);
    assert_eq!(env.sim_issue_keys("WEB").await.len(), before.len() + 1);

    // Transition to a category, then refresh.
    let moved = jira_bridge::tickets::transition(
        &env.store,
        &env.client,
        &existing,
        &jira_client::Target::Category(jira_client::Category::Done),
    )
    .await
    .unwrap();
    assert_eq!(moved.status_category.as_deref(), Some("done"));
    let events = env.store.list_events(&env.tenant, None, 100).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"ticket.created"), "{types:?}");
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "ticket.status_changed")
            .count(),
        1
    );
    let _ = HashMap::<String, String>::new();
    let _ = futures::stream::iter([0]).boxed();
}
