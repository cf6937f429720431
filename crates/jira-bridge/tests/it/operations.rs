use crate::helpers::TestApp;

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        !generated.is_empty(),
        "an id is generated when none is sent"
    );
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let res = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "my-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-request-id"],
        "my-req-42",
        "a given id is echoed"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route_and_status() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("metrics").await;
    for _ in 0..3 {
        let r = app
            .client
            .get(app.url("/v1/audit"))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = app
        .client
        .get(app.url("/v1/audit/aud_nope"))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.client
        .get(app.url("/no/such/path/123"))
        .send()
        .await
        .unwrap();

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"jira_bridge_http_requests_total{route="/v1/audit",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"jira_bridge_http_requests_total{route="/v1/audit/{id}",method="GET",status="404"} 1"#
        ),
        "matched route, not the raw path: {text}"
    );
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        !text.contains("/no/such/path"),
        "raw paths never become labels"
    );
    assert!(
        text.contains("jira_bridge_http_request_duration_seconds_bucket"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn served_openapi_document_is_the_generated_one() {
    let app = TestApp::spawn().await;
    let served: serde_json::Value = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&jira_bridge::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_cancels_background_tasks_and_waits_for_them() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (_db, _dir, _env, config) = TestApp::builder().prepare().await;
    let app = jira_bridge::App::build(config).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Arc::new(tokio::sync::Notify::new());
    let finished = Arc::new(AtomicBool::new(false));
    {
        let (started, finished) = (started.clone(), finished.clone());
        app.spawn_background("test-worker", &shutdown, move |state, token| async move {
            started.notify_one();
            token.cancelled().await;
            // Work that must complete during shutdown: a database round trip.
            state.store.ping().await?;
            finished.store(true, Ordering::SeqCst);
            Ok(())
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(app.serve(listener, shutdown.clone()));
    started.notified().await;
    let res = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!finished.load(Ordering::SeqCst));

    shutdown.cancel();
    server.await.unwrap().unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "serve returned only after the task finished"
    );
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_failing_background_task_stops_the_service() {
    let (_db, _dir, _env, config) = TestApp::builder().prepare().await;
    let app = jira_bridge::App::build(config).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    app.spawn_background("doomed", &shutdown, |_state, _token| async move {
        anyhow::bail!("worker cannot continue")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        app.serve(listener, shutdown.clone()),
    )
    .await
    .expect("serve returns once the failing task cancelled the token");
    let err = served.expect_err("a failed task makes serve fail");
    assert!(err.to_string().contains("doomed"), "{err}");
    assert!(shutdown.is_cancelled());
}

#[tokio::test]
async fn readiness_and_requests_answer_503_problems_when_the_database_is_gone() {
    let (_db, _dir, _env, config) = TestApp::builder().prepare().await;
    let app = jira_bridge::App::build(config).await.unwrap();
    let store = app.state().store.clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(app.serve(listener, shutdown.clone()));

    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    store.close().await; // the service's own pool: every query now fails
    let res = reqwest::get(format!("{base}/readyz")).await.unwrap();
    crate::helpers::assert_problem(res, 503, "unavailable").await;
    let res = reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth("jbk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(res, 503, "unavailable").await;
    let live = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(
        live.status(),
        200,
        "liveness does not depend on the database"
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// The operator's guide's commands (docs/operations.md), run by `scripts/ops-check`
/// against the built binary: migrate, CLI tenants and keys, online SQLite backup,
/// master and API key rotation, restore, and PostgreSQL dump and restore.
#[test]
fn the_operators_guide_commands_work() {
    let script = crate::helpers::repo_root().join("scripts/ops-check");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_jira-bridge"))
        .output()
        .expect("run scripts/ops-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/ops-check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ops-check: passed"), "{stdout}");
}
