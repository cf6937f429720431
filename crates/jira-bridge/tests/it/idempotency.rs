use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, ADMIN_KEY};

async fn create(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/admin/tenants"))
        .bearer_auth(ADMIN_KEY)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn tenant_count(app: &TestApp) -> usize {
    let page: Value = app
        .client
        .get(app.url("/v1/admin/tenants?limit=500"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_retried_post_with_the_same_key_creates_once_and_replays_the_response() {
    let app = TestApp::builder().sqlite().spawn().await;
    let first = create(&app, "create-acme-1", json!({"name": "acme"})).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotency-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let again = create(&app, "create-acme-1", json!({"name": "acme"})).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again, first,
        "the same response, including the key shown once"
    );
    assert_eq!(tenant_count(&app).await, 1);

    // The kept response holds the API key: it must be sealed, not plaintext.
    let key = first["api_key"]["key"].as_str().unwrap();
    let db = jira_bridge::crypto::sqlite_path(app.db.url()).unwrap();
    for file in [db.clone(), db.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{}",
                file.display()
            );
        }
    }

    // Without the header, or with another key, requests run again.
    let other = create(&app, "create-acme-2", json!({"name": "acme"})).await;
    assert_problem(other, 409, "conflict").await;
    let conflict_again = create(&app, "create-acme-2", json!({"name": "acme"})).await;
    assert_eq!(conflict_again.headers()["idempotency-replayed"], "true");
    assert_problem(conflict_again, 409, "conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn reusing_a_key_for_another_request_or_a_malformed_key_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(
        create(&app, "k-1", json!({"name": "a"})).await.status(),
        201
    );
    let res = create(&app, "k-1", json!({"name": "b"})).await;
    let body = assert_problem(res, 422, "validation").await;
    assert!(body["errors"]["Idempotency-Key"].is_string(), "{body}");
    assert_eq!(tenant_count(&app).await, 1);

    let res = create(&app, &"x".repeat(256), json!({"name": "c"})).await;
    assert_problem(res, 400, "bad-request").await;

    // A refused credential is not remembered: the same key then works with the right one.
    let res = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .bearer_auth("wrong-admin-key")
        .header("idempotency-key", "k-2")
        .json(&json!({"name": "d"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(
        create(&app, "k-2", json!({"name": "d"})).await.status(),
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retried_connection_create_with_the_same_key_makes_one_connection() {
    let sim = crate::connections::Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("idem-connections").await;
    let mut body = crate::connections::cloud_token_body(&sim, "alice");
    body["name"] = json!("retried");
    let send = || {
        app.client
            .post(app.url("/v1/connections"))
            .bearer_auth(&t.key)
            .header("idempotency-key", "create-connection-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotency-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let list = TestApp::json_ok(app.get(&t, "/v1/connections").await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}
