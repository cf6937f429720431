//! Status sync against jira-sim (acceptance 5): 5,000 links with 250 changed converge
//! in at most 5 searches; users far from UTC (Auckland, Honolulu) miss nothing and
//! repeat nothing.

use std::collections::HashSet;

use chrono::Utc;
use futures::StreamExt;
use jira_bridge::sync::{sync_connection, SyncOptions};
use jira_bridge::tickets::engine::{create_batch, CreateItem, Record};
use jira_bridge::tickets::{new_link, CreateResult, MetaCache, Source, TicketFields};
use jira_bridge_store::links::{Link, SyncState};
use serde_json::json;

use crate::tickets::{env, task, Env};

/// `n` issues in WEB created through the ticket engine, each with a link, then made
/// to look created and last updated 3 hours ago; the sync watermark is put at one hour
/// ago (as if the last sync ran then, when every link showed "To Do").
async fn seed(env: &Env, n: usize) -> Vec<Link> {
    let cache = MetaCache::new();
    let mut links = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let mut items = Vec::new();
        for i in chunk {
            let source = Source {
                kind: "story".into(),
                id: i.to_string(),
            };
            let (link, _) = env
                .store
                .reserve_link(&new_link(
                    &env.tenant,
                    &env.con,
                    &source,
                    "",
                    "WEB",
                    None,
                    None,
                    None,
                ))
                .await
                .unwrap();
            items.push(CreateItem {
                link,
                fields: TicketFields {
                    summary: format!("Story {i}"),
                    ..task("WEB")
                },
                uncertain: false,
            });
        }
        let out = create_batch(
            &env.store,
            &env.client,
            &cache,
            &env.tenant,
            &items,
            &Default::default(),
            &Record {
                claim_owner: "test",
                announce_failures: false,
            },
        )
        .await
        .unwrap();
        for r in out {
            let CreateResult::Created { link, .. } = r else {
                panic!("{r:?}")
            };
            links.push(*link);
        }
    }
    let past = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let keys: Vec<String> = links.iter().map(|l| l.issue_key.clone().unwrap()).collect();
    futures::stream::iter(keys)
        .map(|k| {
            let past = past.clone();
            async move {
                env.sim_put(
                    &format!("/_sim/issues/{k}/times"),
                    json!({"created": past, "updated": past}),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // The last sync saw every link in "To Do".
    let todo = jira_client::Status {
        id: "10000".into(),
        name: "To Do".into(),
        status_category: serde_json::from_value(json!({"id": 2, "key": "new", "name": "To Do"}))
            .ok(),
        extra: Default::default(),
    };
    let mut out = Vec::with_capacity(links.len());
    for l in &links {
        out.push(
            jira_bridge::tickets::apply_status(&env.store, l, &todo, None)
                .await
                .unwrap(),
        );
    }
    env.store
        .put_sync_state(&SyncState {
            connection_id: env.con.clone(),
            tenant_id: env.tenant.clone(),
            watermark: Some(Utc::now() - chrono::Duration::hours(1)),
            last_run_at: Some(Utc::now() - chrono::Duration::hours(1)),
            last_searches: 0,
            last_changed: 0,
        })
        .await
        .unwrap();
    out
}

async fn status_events(env: &Env) -> Vec<jira_bridge_store::events::Event> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = env
            .store
            .list_events(&env.tenant, after, 500)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| e.seq);
        all.extend(
            page.into_iter()
                .filter(|e| e.event_type == "ticket.status_changed"),
        );
    }
    all
}

async fn transition_as(env: &Env, key: &str, user: &str, to: &str) {
    let st = env
        .sim_post(
            &format!("/_sim/issues/{key}/transition"),
            json!({"as": user, "to": to}),
        )
        .await;
    assert!(st.is_success(), "{key}: {st}");
}

/// W2: 5,000 links, 250 changed since the last sync: at most 5 searches, every
/// changed link updated with one event each; a second run changes nothing.
#[tokio::test]
async fn five_thousand_links_two_hundred_fifty_changed_in_five_searches() {
    let env = env("alice").await;
    let links = seed(&env, 5000).await;
    let before_events = status_events(&env).await.len();
    let changed: Vec<&Link> = links.iter().step_by(20).collect();
    assert_eq!(changed.len(), 250);
    futures::stream::iter(changed.iter().map(|l| l.issue_key.clone().unwrap()))
        .map(|k| {
            let env = &env;
            async move { transition_as(env, &k, "bob", "In Progress").await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;

    env.reset_stats().await;
    let report = sync_connection(
        &env.store,
        &env.client,
        &env.tenant,
        &env.con,
        &SyncOptions::default(),
    )
    .await
    .unwrap();
    let searches = env.calls("POST", "search/jql").await + env.calls("GET", "search/jql").await;
    assert!(searches <= 5, "searches {searches}");
    assert_eq!(u64::from(report.searches), searches);
    assert_eq!(report.changed, 250, "{report:?}");
    assert!(report.jql.contains("updated >="), "{}", report.jql);

    let want: HashSet<_> = changed.iter().map(|l| l.id.clone()).collect();
    for l in &links {
        let now = env
            .store
            .get_link(&env.tenant, &l.id)
            .await
            .unwrap()
            .unwrap();
        if want.contains(&l.id) {
            assert_eq!(now.status.as_deref(), Some("In Progress"));
            assert_eq!(now.status_category.as_deref(), Some("indeterminate"));
        } else {
            assert_eq!(now.status.as_deref(), Some("To Do"));
        }
    }
    let events = status_events(&env).await;
    assert_eq!(events.len() - before_events, 250);

    // Nothing changed since: no event, nothing updated.
    let again = sync_connection(
        &env.store,
        &env.client,
        &env.tenant,
        &env.con,
        &SyncOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.changed, 0);
    assert_eq!(status_events(&env).await.len() - before_events, 250);
}

/// A connection user far from UTC (Auckland +13, Honolulu −10): the window is written
/// in the user's zone, so exactly the issues changed since the last sync are read —
/// none missed (Honolulu would miss them with a UTC literal) and none of the older
/// ones re-read (Auckland would re-read 13 hours) — and each change is announced once.
#[tokio::test]
async fn far_from_utc_users_miss_and_repeat_nothing() {
    for user in ["kiri", "kai"] {
        let env = env(user).await;
        let links = seed(&env, 20).await;
        let before = status_events(&env).await.len();
        for l in links.iter().take(5) {
            transition_as(&env, l.issue_key.as_deref().unwrap(), "bob", "In Progress").await;
        }
        let r1 = sync_connection(
            &env.store,
            &env.client,
            &env.tenant,
            &env.con,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            r1.seen, 5,
            "{user}: only the changed issues are in the window ({})",
            r1.jql
        );
        assert_eq!(r1.changed, 5, "{user}");
        assert_eq!(status_events(&env).await.len() - before, 5, "{user}");

        // Two more changes; the overlap re-reads the first five without repeating them.
        for l in links.iter().skip(5).take(2) {
            transition_as(&env, l.issue_key.as_deref().unwrap(), "bob", "Done").await;
        }
        let r2 = sync_connection(
            &env.store,
            &env.client,
            &env.tenant,
            &env.con,
            &SyncOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(r2.changed, 2, "{user}: {r2:?}");
        let events = status_events(&env).await;
        assert_eq!(events.len() - before, 7, "{user}: no repeated events");
        let done = env
            .store
            .get_link(&env.tenant, &links[5].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status_category.as_deref(), Some("done"));
    }
}
