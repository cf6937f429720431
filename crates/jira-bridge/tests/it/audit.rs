use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, ADMIN_KEY};

async fn list(app: &TestApp, key: &str, query: &str) -> Value {
    let res = app
        .client
        .get(app.url(&format!("/v1/audit{query}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn admin_actions_are_audited_with_request_ids_filtered_and_paged() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    for i in 0..4 {
        let res = app
            .client
            .post(app.url(&format!("/v1/admin/tenants/{}/keys", t.id)))
            .bearer_auth(ADMIN_KEY)
            .header("x-request-id", format!("req-key-{i}"))
            .json(&json!({"name": format!("k{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    let all = list(&app, &t.key, "").await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "tenant.create + 4 api_key.create: {all}");
    assert_eq!(items[0]["action"], "api_key.create", "newest first");
    assert_eq!(items[0]["request_id"], "req-key-3");
    assert_eq!(items[0]["actor"], "admin");
    assert_eq!(items[0]["outcome"], "success");
    assert_eq!(items[4]["action"], "tenant.create");
    assert!(all["next_cursor"].is_null());
    let serialized = all.to_string();
    assert!(!serialized.contains(&t.key), "no key in the audit log");

    let creates = list(&app, &t.key, "?action=api_key.create").await;
    assert_eq!(creates["items"].as_array().unwrap().len(), 4);
    let none = list(&app, &t.key, "?outcome=failure").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let future = list(&app, &t.key, "?from=2999-01-01T00:00:00%2B02:00").await;
    assert!(future["items"].as_array().unwrap().is_empty());

    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = list(&app, &t.key, &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "pages continue where the last one ended");

    let theirs = list(&app, &other.key, "").await;
    assert_eq!(
        theirs["items"].as_array().unwrap().len(),
        1,
        "only their own entries"
    );

    // Bad filters are problems, not 500s.
    let get = |q: &str| {
        app.client
            .get(app.url(&format!("/v1/audit{q}")))
            .bearer_auth(&t.key)
            .send()
    };
    let body = assert_problem(get("?cursor=bogus").await.unwrap(), 400, "bad-request").await;
    assert!(body["errors"]["cursor"].is_string(), "{body}");
    assert_problem(get("?limit=abc").await.unwrap(), 400, "bad-request").await;
    assert_problem(get("?from=yesterday").await.unwrap(), 400, "bad-request").await;
    let body = assert_problem(get("?outcome=maybe").await.unwrap(), 422, "validation").await;
    assert!(body["errors"]["outcome"].is_string(), "{body}");
    app.stop().await;
}
