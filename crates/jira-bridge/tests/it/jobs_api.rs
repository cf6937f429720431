//! `/v1/jobs`: snapshots, items, retry, cancel, SSE, tenant isolation. The jobs are
//! worked by a runner in the test process on the service's database, as another
//! replica would.

use std::time::Duration;

use futures::StreamExt;
use jira_bridge::jobs::{EnqueueRequest, Jobs};
use jira_bridge_store::TenantId;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, TestTenant};
use crate::jobs::{items, runner, test_config, Recorder, KIND};

async fn engine(app: &TestApp) -> (Jobs, Recorder, jira_bridge::jobs::JobRunner) {
    let jobs = Jobs::new(app.store().await);
    let rec = Recorder::new(10);
    let runner = runner(&jobs, &rec, test_config());
    (jobs, rec, runner)
}

fn tenant_id(t: &TestTenant) -> TenantId {
    t.id.parse().unwrap()
}

async fn get(app: &TestApp, t: &TestTenant, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, t: &TestTenant, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn job_snapshot_and_items_are_tenant_scoped() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let (jobs, _rec, runner) = engine(&app).await;
    let mut list = items(3);
    list[1].payload = json!({"fail_first": 1, "retryable": false});
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant_id(&acme), KIND, list))
        .await
        .unwrap()
        .job;
    let path = format!("/v1/jobs/{}", job.id);

    let res = get(&app, &acme, &path).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], job.id.to_string());
    assert_eq!(body["kind"], KIND);
    assert_eq!(body["state"], "queued");
    assert_eq!(
        (body["total"].as_i64(), body["pending"].as_i64()),
        (Some(3), Some(3))
    );
    assert!(body["started_at"].is_null() && body["finished_at"].is_null());

    runner.drain_until_idle().await.unwrap();
    let body: Value = get(&app, &acme, &path).await.json().await.unwrap();
    assert_eq!(body["state"], "partially_failed");
    assert_eq!(
        (body["succeeded"].as_i64(), body["failed"].as_i64()),
        (Some(2), Some(1))
    );
    assert!(body["finished_at"].is_string());

    let res = get(&app, &acme, &format!("{path}/items?state=failed")).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let failed = page["items"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["key"], "src-1");
    assert_eq!(failed[0]["attempts"], 1);
    assert_eq!(failed[0]["error"]["code"], "jira_rejected");
    assert_eq!(failed[0]["error"]["field"], "priority");
    assert_eq!(failed[0]["error"]["jira"]["errors"]["priority"], "invalid");

    // Paging in job order.
    let page: Value = get(&app, &acme, &format!("{path}/items?limit=2"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["items"][0]["result"],
        json!({"key": "src-0", "run": 1})
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = get(
        &app,
        &acme,
        &format!("{path}/items?limit=2&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["items"][0]["seq"], 2);
    assert!(rest["next_cursor"].is_null());

    assert_problem(
        get(&app, &acme, &format!("{path}/items?state=bogus")).await,
        422,
        "validation",
    )
    .await;
    assert_problem(
        get(&app, &acme, &format!("{path}/items?cursor=nope")).await,
        400,
        "bad-request",
    )
    .await;
    for p in [
        path.clone(),
        format!("{path}/items"),
        format!("{path}/events"),
    ] {
        assert_problem(get(&app, &other, &p).await, 404, "not-found").await;
    }
    for p in [format!("{path}/retry"), format!("{path}/cancel")] {
        assert_problem(post(&app, &other, &p).await, 404, "not-found").await;
    }
    assert_problem(
        get(&app, &acme, "/v1/jobs/job_nope").await,
        404,
        "not-found",
    )
    .await;
    let anon = app.client.get(app.url(&path)).send().await.unwrap();
    assert_problem(anon, 401, "unauthorized").await;
    // Nothing changed for the owner.
    let body: Value = get(&app, &acme, &path).await.json().await.unwrap();
    assert_eq!(body["failed"], 1);
}

#[tokio::test]
async fn retry_endpoint_reruns_failed_items_only() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let (jobs, rec, runner) = engine(&app).await;
    let mut list = items(3);
    list[1].payload = json!({"fail_first": 1, "retryable": false});
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant_id(&acme), KIND, list))
        .await
        .unwrap()
        .job;
    runner.drain_until_idle().await.unwrap();

    let res = post(&app, &acme, &format!("/v1/jobs/{}/retry", job.id)).await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["state"], "running");
    assert_eq!(
        (body["failed"].as_i64(), body["pending"].as_i64()),
        (Some(0), Some(1))
    );
    assert!(body["finished_at"].is_null());

    runner.drain_until_idle().await.unwrap();
    assert_eq!(
        (
            rec.runs_of("src-0"),
            rec.runs_of("src-1"),
            rec.runs_of("src-2")
        ),
        (1, 2, 1)
    );
    let body: Value = get(&app, &acme, &format!("/v1/jobs/{}", job.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["state"], "succeeded");
    assert_eq!(body["succeeded"], 3);
}

#[tokio::test]
async fn cancel_endpoint_cancels_pending_items() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let (jobs, rec, runner) = engine(&app).await;
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant_id(&acme), KIND, items(4)))
        .await
        .unwrap()
        .job;
    let res = post(&app, &acme, &format!("/v1/jobs/{}/cancel", job.id)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["state"], "cancelled");
    assert_eq!(
        (body["cancelled"].as_i64(), body["pending"].as_i64()),
        (Some(4), Some(0))
    );
    assert_eq!(runner.drain_until_idle().await.unwrap().items, 0);
    assert!(rec.runs.lock().is_empty());
}

/// Read server-sent events until `finished`, as (event, data) pairs.
async fn read_events(
    res: reqwest::Response,
    after_first: impl std::future::Future<Output = ()>,
) -> Vec<(String, Value)> {
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let mut after_first = Some(Box::pin(after_first));
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            let Some(name) = name else { continue }; // keep-alive comment
            let finished = name == "finished";
            events.push((name, serde_json::from_str(&data).unwrap()));
            if let Some(f) = after_first.take() {
                f.await;
            }
            if finished {
                return events;
            }
        }
    }
    events
}

#[tokio::test]
async fn event_stream_sends_the_snapshot_progress_and_finished() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let (jobs, _rec, runner) = engine(&app).await;
    let job = jobs
        .enqueue(EnqueueRequest::new(tenant_id(&acme), KIND, items(25)))
        .await
        .unwrap()
        .job;
    let res = get(&app, &acme, &format!("/v1/jobs/{}/events", job.id)).await;
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // Work the job only once the stream has delivered its first snapshot.
    let work = async {
        runner.drain_until_idle().await.unwrap();
    };
    let events = tokio::time::timeout(Duration::from_secs(60), read_events(res, work))
        .await
        .expect("stream finished in time");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"progress"));
    assert_eq!(events[0].1["state"], "queued");
    assert_eq!(names.last(), Some(&"finished"));
    assert!(names.len() >= 3, "{names:?}");
    let (_, last) = events.last().unwrap();
    assert_eq!(
        (last["state"].as_str(), last["succeeded"].as_i64()),
        (Some("succeeded"), Some(25))
    );
    let (name, before_last) = &events[events.len() - 2];
    assert_eq!((name.as_str(), before_last), ("progress", last));

    // A finished job's stream answers its snapshot and ends at once.
    let res = get(&app, &acme, &format!("/v1/jobs/{}/events", job.id)).await;
    let events = tokio::time::timeout(Duration::from_secs(30), read_events(res, async {}))
        .await
        .unwrap();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["progress", "finished"]);
}
