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
