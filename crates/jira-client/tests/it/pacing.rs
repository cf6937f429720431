use std::sync::Arc;

use chrono::{FixedOffset, TimeZone};
use futures::future::join_all;
use jira_client::{ClientOptions, Pacer, PacerConfig, WorklogInput};
use jira_sim::{Pacing, SimConfig};

use crate::common::*;

/// Acceptance 3: against a simulator limited to 20 req/s with burst 20, 600 concurrent
/// worklog adds all succeed with fewer than 2% of answers being 429, and the client's
/// counters agree with the simulator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_concurrent_worklogs_under_a_20_rps_limit() {
    let sim = sim_with(SimConfig {
        pacing: Pacing {
            rate: Some(20.0),
            burst: Some(20.0),
            ..Pacing::default()
        },
        ..SimConfig::default()
    })
    .await;
    let pacer: Arc<Pacer> = Pacer::new(PacerConfig::default());
    let c = client_with(site(&sim), pacer.clone(), ClientOptions::default());
    let mut keys = Vec::new();
    for i in 0..10 {
        keys.push(create_task(&c, "OPS", &format!("time sink {i}")).await.key);
    }
    let before = stats(&sim).await;
    let client_before = c.stats();
    let started = FixedOffset::east_opt(3600)
        .unwrap()
        .with_ymd_and_hms(2026, 5, 4, 9, 0, 0)
        .unwrap();
    let tasks = (0..600).map(|i| {
        let c = c.clone();
        let key = keys[i % keys.len()].clone();
        tokio::spawn(async move {
            c.add_worklog(
                &key,
                &WorklogInput {
                    started,
                    time_spent_seconds: 60 * (1 + (i as i64 % 5)),
                    comment: None,
                    properties: vec![],
                },
            )
            .await
        })
    });
    let results = join_all(tasks).await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| match r.unwrap() {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );

    let after = stats(&sim).await;
    let ep = "/rest/api/3/issue/{issueIdOrKey}/worklog";
    let created = count(&after, "POST", ep, Some(201)) - count(&before, "POST", ep, Some(201));
    let limited = count(&after, "POST", ep, Some(429)) - count(&before, "POST", ep, Some(429));
    assert_eq!(created, 600, "exactly one worklog per call");
    let total = created + limited;
    assert!(
        limited * 50 < total,
        "{limited} of {total} answers were 429 (>= 2%)"
    );

    let cs = c.stats();
    eprintln!("simulator: {created} worklogs, {limited} answers 429; client: {cs:?}");
    assert_eq!(
        cs.rate_limited - client_before.rate_limited,
        limited,
        "client counted every 429"
    );
    assert_eq!(
        cs.requests - client_before.requests,
        total,
        "client counted every attempt"
    );
    assert_eq!(
        cs.retries - client_before.retries,
        limited,
        "each 429 retried once"
    );
    assert_eq!(cs.responses, cs.requests);
    assert_eq!(cs.in_flight, 0);

    // Every worklog is in the simulator.
    let mut n = 0;
    for k in &keys {
        use futures::TryStreamExt;
        n += c.worklogs(k).try_collect::<Vec<_>>().await.unwrap().len();
    }
    assert_eq!(n, 600);
}

/// Jira's per-issue write limit (20 writes per 2 s): concurrent writes to one issue all
/// succeed, and per-issue 429s never lower the site's rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_issue_write_limit_is_absorbed_without_slowing_the_site() {
    let sim = sim_with(SimConfig {
        pacing: Pacing {
            per_issue_write_limit: true,
            ..Pacing::default()
        },
        ..SimConfig::default()
    })
    .await;
    let pacer: Arc<Pacer> = Pacer::new(PacerConfig::default());
    let c = client_with(site(&sim), pacer.clone(), ClientOptions::default());
    let key = create_task(&c, "OPS", "hot issue").await.key;
    let started = FixedOffset::east_opt(0)
        .unwrap()
        .with_ymd_and_hms(2026, 5, 4, 9, 0, 0)
        .unwrap();
    let tasks = (0..50).map(|_| {
        let c = c.clone();
        let key = key.clone();
        tokio::spawn(async move {
            c.add_worklog(
                &key,
                &WorklogInput {
                    started,
                    time_spent_seconds: 60,
                    comment: None,
                    properties: vec![],
                },
            )
            .await
        })
    });
    for r in join_all(tasks).await {
        r.unwrap().unwrap();
    }
    let s = stats(&sim).await;
    let ep = "/rest/api/3/issue/{issueIdOrKey}/worklog";
    assert_eq!(count(&s, "POST", ep, Some(201)), 50);
    let limited = count(&s, "POST", ep, Some(429));
    assert!(limited > 0, "the limit was exercised");
    let cs = c.stats();
    assert_eq!(cs.rate_limited, limited);
    assert!(
        cs.current_rate >= PacerConfig::default().initial_rate,
        "{cs:?}"
    );
}
