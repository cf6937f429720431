use std::time::Duration;

use futures::TryStreamExt;
use jira_client::{ClientOptions, Error, GetIssue, IssueInput, SearchRequest};
use jira_sim::pacing::{FaultKind, FaultRule};
use jira_sim::{Faults, SimConfig};

use crate::common::*;

fn rule(
    method: &str,
    path: &str,
    fault: FaultKind,
    status: Option<u16>,
    delay_ms: Option<u64>,
    count: u64,
) -> FaultRule {
    FaultRule {
        method: Some(method.into()),
        path_contains: Some(path.into()),
        fault,
        status,
        delay_ms,
        count: Some(count),
        skip: 0,
    }
}

async fn sim_with_rules(rules: Vec<FaultRule>) -> jira_sim::SimHandle {
    sim_with(SimConfig {
        faults: Faults {
            rules,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await
}

/// Poll `f` until it returns true or the deadline passes.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met in time: {what}");
}

#[tokio::test]
async fn create_applied_but_unanswered_is_outcome_unknown_and_not_retried() {
    for mode in [FaultKind::UnansweredHold, FaultKind::UnansweredReset] {
        let sim = sim_with_rules(vec![rule(
            "POST",
            "/rest/api/3/issue",
            mode,
            None,
            Some(3_000),
            1,
        )])
        .await;
        let options = ClientOptions {
            request_timeout: Duration::from_millis(800),
            ..ClientOptions::default()
        };
        let c = client_with(site(&sim), test_pacer(), options);
        let input = IssueInput::new()
            .project_key("OPS")
            .issue_type_name("Task")
            .summary("maybe created")
            .labels(["outcome-unknown"]);
        match c.create_issue(&input).await {
            Err(e @ Error::OutcomeUnknown { .. }) => {
                assert!(e.is_outcome_unknown());
                assert_eq!(e.request().unwrap().path, "/rest/api/3/issue");
            }
            other => panic!("{mode:?}: expected OutcomeUnknown, got {other:?}"),
        }
        let cs = c.stats();
        assert_eq!(cs.requests, 1, "{mode:?}: the create was sent once");
        assert_eq!(cs.retries, 0);

        // The simulator applied it exactly once.
        let search =
            SearchRequest::new("project = OPS AND labels = outcome-unknown").fields(["summary"]);
        eventually("the issue exists", || {
            let c = c.clone();
            let search = search.clone();
            async move {
                let found: Vec<_> = c.search(search).try_collect().await.unwrap();
                found.len() == 1
            }
        })
        .await;
        // The simulator saw the create once and applied its fault once. (A held answer
        // whose client went away is not counted by endpoint, a reset one is, with 0.)
        let s = stats(&sim).await;
        assert_eq!(s["faults"]["unanswered"], 1, "{mode:?}: {s}");
        let creates = count(&s, "POST", "/rest/api/3/issue", None);
        assert!(creates <= 1, "{mode:?}: {creates} creates counted");
        let found: Vec<_> = c.search(search.clone()).try_collect().await.unwrap();
        assert_eq!(found.len(), 1, "{mode:?}: no duplicate");
    }
}

#[tokio::test]
async fn get_with_two_503s_then_200_succeeds() {
    let sim = sim_with_rules(vec![rule(
        "GET",
        "/issue/OPS-1",
        FaultKind::Error,
        Some(503),
        None,
        2,
    )])
    .await;
    let c = client(&sim);
    let issue = c
        .get_issue(
            "OPS-1",
            &GetIssue {
                fields: vec!["summary".into()],
                ..GetIssue::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(issue.key, "OPS-1");
    let s = stats(&sim).await;
    let ep = "/rest/api/3/issue/{issueIdOrKey}";
    assert_eq!(count(&s, "GET", ep, Some(503)), 2);
    assert_eq!(count(&s, "GET", ep, Some(200)), 1);
    let cs = c.stats();
    assert_eq!(cs.retries, 2);
    assert_eq!(cs.server_errors, 2);
    assert_eq!(cs.requests, 3);
}

#[tokio::test]
async fn create_is_not_retried_on_5xx_but_is_on_429() {
    let sim = sim_with_rules(vec![rule(
        "POST",
        "/rest/api/3/issue",
        FaultKind::Error,
        Some(500),
        None,
        1,
    )])
    .await;
    let c = client(&sim);
    let r = c
        .create_issue(
            &IssueInput::new()
                .project_key("OPS")
                .issue_type_name("Task")
                .summary("x"),
        )
        .await;
    assert!(matches!(r, Err(Error::Server { status: 500, .. })), "{r:?}");
    assert!(r.unwrap_err().write_may_have_applied());
    assert_eq!(
        count(&stats(&sim).await, "POST", "/rest/api/3/issue", None),
        1
    );

    // A 429 means Jira did not execute it: repeated, and created once.
    let sim = sim_with_rules(vec![rule(
        "POST",
        "/rest/api/3/issue",
        FaultKind::RateLimit,
        None,
        None,
        1,
    )])
    .await;
    let c = client(&sim);
    let created = c
        .create_issue(
            &IssueInput::new()
                .project_key("OPS")
                .issue_type_name("Task")
                .summary("after 429"),
        )
        .await
        .unwrap();
    assert!(created.key.starts_with("OPS-"));
    let s = stats(&sim).await;
    assert_eq!(count(&s, "POST", "/rest/api/3/issue", Some(429)), 1);
    assert_eq!(count(&s, "POST", "/rest/api/3/issue", Some(201)), 1);
    assert_eq!(c.stats().rate_limited, 1);
}

#[tokio::test]
async fn idempotent_edit_is_retried_after_a_reset() {
    let sim = sim_with_rules(vec![rule(
        "PUT",
        "/issue/OPS-1",
        FaultKind::Reset,
        None,
        None,
        1,
    )])
    .await;
    let c = client(&sim);
    c.edit_issue("OPS-1", &IssueInput::new().summary("renamed"), true)
        .await
        .unwrap();
    let issue = c
        .get_issue(
            "OPS-1",
            &GetIssue {
                fields: vec!["summary".into()],
                ..GetIssue::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(issue.summary().as_deref(), Some("renamed"));
    assert_eq!(c.stats().retries, 1);
}
