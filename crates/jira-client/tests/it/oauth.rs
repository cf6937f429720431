use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use jira_client::oauth::{MemoryTokenSource, OAuthApp};
use jira_client::{ClientOptions, Error, SiteConfig, WebhookRegistration, WebhookSpec};
use secrecy::SecretString;
use serde_json::Value;

use crate::common::*;

/// Authorize → code → tokens through the simulator's OAuth server.
async fn connect(
    sim: &jira_sim::SimHandle,
) -> (OAuthApp, jira_client::oauth::TokenResponse, Value) {
    let scenario = control(sim, reqwest::Method::GET, "/_sim/scenario", None).await;
    let o = &scenario["oauth"];
    let base: url::Url = sim.base_url().parse().unwrap();
    let app = OAuthApp::new(
        base.clone(),
        base,
        o["client_id"].as_str().unwrap(),
        SecretString::from(o["client_secret"].as_str().unwrap()),
        o["redirect_uris"][0].as_str().unwrap(),
    )
    .unwrap();
    let url = app.authorize_url(
        &[
            "read:jira-work",
            "write:jira-work",
            "read:jira-user",
            "manage:jira-webhook",
            "offline_access",
        ],
        "state-123",
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location: url::Url = resp.headers()["location"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "state-123");
    let tokens = app.exchange_code(&q["code"]).await.unwrap();
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    (app, tokens, scenario)
}

#[tokio::test]
async fn oauth_client_refreshes_once_on_401_and_retries() {
    let sim = sim(jira_sim::Flavor::Cloud).await;
    let (app, tokens, _) = connect(&sim).await;
    let sites = app
        .accessible_resources(&tokens.access_token)
        .await
        .unwrap();
    assert!(!sites.is_empty());
    let site = sites[0].clone();

    let rotations = Arc::new(AtomicUsize::new(0));
    let r = rotations.clone();
    let source = Arc::new(
        MemoryTokenSource::new(
            app,
            tokens.access_token.clone(),
            tokens.refresh_token.clone().unwrap(),
            None,
        )
        .on_rotate(Arc::new(move |_t| {
            r.fetch_add(1, Ordering::SeqCst);
        })),
    );
    let c = client_with(
        SiteConfig::cloud_oauth(
            site.url.parse().unwrap(),
            sim.base_url().parse().unwrap(),
            site.id.clone(),
            source,
        ),
        test_pacer(),
        ClientOptions::default(),
    );
    let me = c.myself().await.unwrap();
    assert!(me.account_id.is_some());

    // Expire every access token: the next call gets 401, refreshes once, repeats once.
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/oauth/expire-access-tokens",
        Some(serde_json::json!({})),
    )
    .await;
    let again = c.myself().await.unwrap();
    assert_eq!(again.account_id, me.account_id);
    assert_eq!(rotations.load(Ordering::SeqCst), 1);
    let oauth_stats = control(&sim, reqwest::Method::GET, "/_sim/oauth/stats", None).await;
    assert_eq!(oauth_stats["refreshes"], 1);

    // Concurrent 401s trigger one refresh between them.
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/oauth/expire-access-tokens",
        Some(serde_json::json!({})),
    )
    .await;
    let results = futures::future::join_all((0..8).map(|_| c.myself())).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(rotations.load(Ordering::SeqCst), 2);

    // A revoked grant is a token error, not a retry loop.
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/oauth/revoke",
        Some(serde_json::json!({ "account_id": me.account_id.clone().unwrap() })),
    )
    .await;
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/oauth/expire-access-tokens",
        Some(serde_json::json!({})),
    )
    .await;
    match c.myself().await {
        Err(Error::Token {
            source: jira_client::TokenError::Revoked(_),
            ..
        }) => {}
        other => panic!("expected a revoked token error, got {other:?}"),
    }
    let oauth_stats = control(&sim, reqwest::Method::GET, "/_sim/oauth/stats", None).await;
    assert_eq!(
        oauth_stats["refresh_rejected"], 1,
        "one refresh attempt, no loop"
    );
    assert_eq!(rotations.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dynamic_webhooks_register_list_refresh_delete() {
    let sim = sim(jira_sim::Flavor::Cloud).await;
    let (app, tokens, _) = connect(&sim).await;
    let site = app
        .accessible_resources(&tokens.access_token)
        .await
        .unwrap()[0]
        .clone();
    let source = Arc::new(MemoryTokenSource::new(
        app,
        tokens.access_token,
        tokens.refresh_token.unwrap(),
        None,
    ));
    let c = client_with(
        SiteConfig::cloud_oauth(
            site.url.parse().unwrap(),
            sim.base_url().parse().unwrap(),
            site.id,
            source,
        ),
        test_pacer(),
        ClientOptions::default(),
    );
    let specs = vec![
        WebhookSpec {
            events: vec!["jira:issue_created".into(), "jira:issue_updated".into()],
            jql_filter: "project = OPS".into(),
            ..WebhookSpec::default()
        },
        WebhookSpec {
            events: vec!["comment_created".into()],
            jql_filter: "project IN (OPS, WEB)".into(),
            ..WebhookSpec::default()
        },
    ];
    let reg = c
        .register_webhooks("https://app.example/webhooks", &specs)
        .await
        .unwrap();
    let ids: Vec<i64> = reg
        .iter()
        .map(|r| match r {
            WebhookRegistration::Created(id) => *id,
            WebhookRegistration::Failed(e) => panic!("registration failed: {e:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    let listed: Vec<_> = c.webhooks().try_collect().await.unwrap();
    let mut listed_ids: Vec<i64> = listed.iter().map(|w| w.id).collect();
    listed_ids.sort();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(listed_ids, sorted);
    assert!(listed.iter().all(|w| w.expires_at().is_some()));

    let expiry = c.refresh_webhooks(&ids).await.unwrap().expect("new expiry");
    assert!(expiry > chrono::Utc::now() + chrono::Duration::days(29));

    c.delete_webhooks(&ids[..1]).await.unwrap();
    let listed: Vec<_> = c.webhooks().try_collect().await.unwrap();
    assert_eq!(
        listed.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
}
