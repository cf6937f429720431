use serde_json::json;

use crate::helpers::{assert_problem, TestApp, ADMIN_KEY};

#[tokio::test]
async fn malformed_and_unacceptable_requests_get_problem_documents() {
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_BODY_LIMIT_BYTES", "2048")
        .spawn()
        .await;
    let tenants = app.url("/v1/admin/tenants");
    let post = || app.client.post(&tenants).bearer_auth(ADMIN_KEY);

    // Malformed JSON.
    let res = post()
        .header("content-type", "application/json")
        .body(r#"{"name": "#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "bad-request").await;

    // Wrong content type, and none.
    let res = post()
        .header("content-type", "text/plain")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported-media-type").await;
    let res = post().body(r#"{"name":"x"}"#).send().await.unwrap();
    assert_problem(res, 415, "unsupported-media-type").await;

    // Well-formed JSON of the wrong shape.
    let res = post().json(&json!({"nom": "x"})).send().await.unwrap();
    assert_problem(res, 422, "validation").await;
    let res = post().json(&json!({"name": 5})).send().await.unwrap();
    assert_problem(res, 422, "validation").await;

    // Over the body limit, declared by Content-Length ...
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(4096));
    let res = post()
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 413, "payload-too-large").await;
    assert!(body["detail"].as_str().unwrap().contains("2048"), "{body}");
    // ... and streamed without a length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(512)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let res = post()
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload-too-large").await;

    // Unknown route, wrong method.
    let res = app
        .client
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    let res = app
        .client
        .get(app.url("/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    // `/` is the console's (it sends the browser to the sign-in page).
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().path(), "/console/login");
    let res = app
        .client
        .put(app.url("/v1/admin/tenants"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("allow"));
    assert_problem(res, 405, "method-not-allowed").await;
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_problem(res, 405, "method-not-allowed").await;

    // Within the limit, all is well.
    let res = post().json(&json!({"name": "fits"})).send().await.unwrap();
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let app = TestApp::spawn().await;
    assert_eq!(app.config.server.body_limit_bytes, 1024 * 1024);
    let over = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024));
    let res = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload-too-large").await;
    app.stop().await;
}

/// Text with the NUL character is refused naming the field, before any store sees it
/// (PostgreSQL cannot keep it in text; a 500 was the answer before).
#[tokio::test]
async fn text_with_a_nul_character_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("nul").await;
    let sub = TestApp::json_ok(
        app.post(
            &t,
            "/v1/subscriptions",
            json!({"url": "http://127.0.0.1:9/hook", "description": "before"}),
        )
        .await,
        201,
    )
    .await;
    let id = sub["id"].as_str().unwrap();
    let res = app
        .client
        .patch(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&t.key)
        .json(&json!({"description": "O\u{0}m"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 422, "validation").await;
    assert!(
        problem["errors"]["description"]
            .as_str()
            .is_some_and(|m| m.contains("NUL")),
        "{problem}"
    );
    // Unchanged.
    let got = TestApp::json_ok(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    assert_eq!(got["description"], "before");
}
