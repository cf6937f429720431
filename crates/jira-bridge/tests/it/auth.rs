use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, ADMIN_KEY};

#[tokio::test]
async fn requests_without_a_valid_key_get_401_problems() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;

    let res = app.client.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body = assert_problem(res, 401, "unauthorized").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );

    for bad in ["jbk_notakey", "garbage", &t.key[..t.key.len() - 1]] {
        let res = app
            .client
            .get(app.url("/v1/me"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "unauthorized").await;
    }
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", format!("Basic {}", t.key))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;

    // The admin key is not a tenant key, and a tenant key is not the admin key.
    let res = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .bearer_auth(&t.key)
        .json(&json!({"name": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;

    let me: Value = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant_id"], t.id);
    assert_eq!(me["tenant_name"], "acme");
    assert_eq!(me["key_id"], t.key_id);
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_key_gets_401_and_other_keys_keep_working() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let res = app
        .client
        .post(app.url(&format!("/v1/admin/tenants/{}/keys", t.id)))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "ci", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let second: Value = res.json().await.unwrap();
    let second_key = second["key"].as_str().unwrap().to_owned();
    assert_eq!(second["scopes"], json!(["read"]));
    assert_eq!(second["prefix"].as_str().unwrap(), &second_key[..12]);

    let ok = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let res = app
        .client
        .delete(app.url(&format!("/v1/admin/tenants/{}/keys/{}", t.id, t.key_id)))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());
    assert!(
        revoked.get("key").is_none(),
        "the key itself is never shown again"
    );

    let res = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 401, "unauthorized").await;
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    let res = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&second_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Listing shows both keys, with last use recorded for the used ones.
    let keys: Value = app
        .client
        .get(app.url(&format!("/v1/admin/tenants/{}/keys", t.id)))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = keys["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|k| k["last_used_at"].is_string()),
        "{keys}"
    );
    assert!(items
        .iter()
        .all(|k| k.get("key").is_none() && k.get("key_hash").is_none()));
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_ids_answer_404() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;

    // A's audit entry, looked up by B.
    let a_entries: Value = app
        .client
        .get(app.url("/v1/audit"))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a_entry = a_entries["items"][0]["id"].as_str().unwrap().to_owned();
    let own = app
        .client
        .get(app.url(&format!("/v1/audit/{a_entry}")))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let res = app
        .client
        .get(app.url(&format!("/v1/audit/{a_entry}")))
        .bearer_auth(&b.key)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;

    // Revoking A's key under B's tenant id: 404, and A's key still works.
    let res = app
        .client
        .delete(app.url(&format!("/v1/admin/tenants/{}/keys/{}", b.id, a.key_id)))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Unknown and malformed ids are 404 too.
    for path in ["/v1/audit/aud_0123", "/v1/audit/not-an-id"] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(&b.key)
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not-found").await;
    }
    let res = app
        .client
        .post(app.url("/v1/admin/tenants/ten_0000000000000000000000000000000a/keys"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn admin_endpoints_are_closed_without_a_configured_admin_key() {
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_ADMIN_KEY", "")
        .spawn()
        .await;
    assert!(app.config.admin.key.is_none());
    let res = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 401, "unauthorized").await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("JIRA_BRIDGE_ADMIN_KEY"));
    app.stop().await;
}

#[tokio::test]
async fn tenant_names_are_unique_and_validated() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let post = |body: Value| {
        app.client
            .post(app.url("/v1/admin/tenants"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    assert_problem(
        post(json!({"name": "acme"})).await.unwrap(),
        409,
        "conflict",
    )
    .await;
    let body = assert_problem(
        post(json!({"name": "  "})).await.unwrap(),
        422,
        "validation",
    )
    .await;
    assert!(body["errors"]["name"].is_string(), "{body}");
    let body = assert_problem(
        post(json!({"name": "ok", "scopes": ["Not A Scope"]}))
            .await
            .unwrap(),
        422,
        "validation",
    )
    .await;
    assert!(body["errors"]["scopes"].is_string(), "{body}");
    app.stop().await;
}
