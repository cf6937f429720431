//! Events: subscriptions, signed deliveries with retries, the SSE stream and JSON
//! pages, tenant isolation, the SSRF guard. Deliveries go to a real HTTP receiver on
//! 127.0.0.1:0; signatures are checked by the `standardwebhooks` package from PyPI
//! (tests/webhooks/verify.py), an implementation independent of ours.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use futures::StreamExt;
use jira_bridge::events::{self, EventType, EventsSettings};
use jira_bridge_store::test_support::TestDatabase;
use jira_bridge_store::{Store, TenantId};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{assert_problem, TestApp, TestTenant, ADMIN_KEY};

// ---------------------------------------------------------------------------------
// Harness

/// The service with chosen delivery settings (the shared `TestApp` runs the
/// production schedule).
struct EventsApp {
    base: String,
    client: reqwest::Client,
    db: TestDatabase,
    db_url: String,
    master_key: Option<String>,
    shared: bool,
    _data_dir: tempfile::TempDir,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl EventsApp {
    async fn spawn(settings: EventsSettings) -> Self {
        let db = TestDatabase::from_env().await.unwrap();
        Self::spawn_on(settings, db, None).await
    }

    /// A second replica on the same database (and the same master key).
    async fn replica(&self, settings: EventsSettings) -> Self {
        // The database is owned (and dropped) by the first instance; this one only
        // uses its URL (its own TestDatabase is an unused placeholder).
        let placeholder = TestDatabase::sqlite();
        let mut me = Self::spawn_on(
            settings,
            placeholder,
            Some((self.db_url.clone(), self.master_key.clone())),
        )
        .await;
        me.shared = true;
        me
    }

    async fn spawn_on(
        settings: EventsSettings,
        db: TestDatabase,
        shared: Option<(String, Option<String>)>,
    ) -> Self {
        let url = shared
            .as_ref()
            .map_or_else(|| db.url().to_owned(), |(u, _)| u.clone());
        let data_dir = tempfile::tempdir().unwrap();
        let mut env = BTreeMap::from([
            ("JIRA_BRIDGE_BIND".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "JIRA_BRIDGE_DATA_DIR".to_owned(),
                data_dir.path().display().to_string(),
            ),
            ("JIRA_BRIDGE_DATABASE_URL".to_owned(), url.clone()),
            ("JIRA_BRIDGE_ADMIN_KEY".to_owned(), ADMIN_KEY.to_owned()),
            (
                "JIRA_BRIDGE_DATABASE_MAX_CONNECTIONS".to_owned(),
                "4".to_owned(),
            ),
            (
                "JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS".to_owned(),
                "true".to_owned(),
            ),
        ]);
        // Always configure the master key, so that replicas share it.
        let master_key = match &shared {
            Some((_, key)) => key.clone(),
            None => Some(
                jira_bridge::crypto::generate_key()
                    .expose_secret()
                    .to_owned(),
            ),
        };
        if let Some(k) = &master_key {
            env.insert("JIRA_BRIDGE_MASTER_KEY".to_owned(), k.clone());
        }
        let config = jira_bridge::Config::load_with_env(None, &env)
            .unwrap()
            .config;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let app = jira_bridge::App::build(config).await.unwrap();
        events::start(&app, settings, &shutdown);
        jira_bridge::changes::start(&app, &shutdown);
        let server = tokio::spawn(app.serve(listener, shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let me = Self {
            base,
            client,
            db,
            db_url: url,
            master_key,
            shared: false,
            _data_dir: data_dir,
            shutdown,
            server: Some(server),
        };
        eventually("service ready", || async {
            me.client
                .get(me.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        me
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn create_tenant(&self, name: &str) -> TestTenant {
        let body: Value = self
            .client
            .post(self.url("/v1/admin/tenants"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        TestTenant {
            id: body["tenant"]["id"].as_str().unwrap().to_owned(),
            key_id: body["api_key"]["id"].as_str().unwrap().to_owned(),
            key: body["api_key"]["key"].as_str().unwrap().to_owned(),
        }
    }

    async fn store(&self) -> Store {
        Store::connect(self.db.url(), &Default::default())
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
    }
}

impl Drop for EventsApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Poll `cond` until it holds, for at most 30 s.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_settings() -> EventsSettings {
    EventsSettings {
        retry_schedule: vec![Duration::from_millis(20); 7],
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(100),
        ..EventsSettings::default()
    }
}

/// Append an event the way a domain module does: in a transaction, then commit.
async fn emit(store: &Store, tenant: &str, ty: EventType, n: i64) -> i64 {
    let tenant: TenantId = tenant.parse().unwrap();
    let mut tx = store.begin().await.unwrap();
    let appended = events::append(
        &mut tx,
        &tenant,
        ty,
        Some(&format!("tkt_{n}")),
        json!({"n": n}),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    appended.event.seq
}

// ---------------------------------------------------------------------------------
// A webhook receiver

#[derive(Debug, Clone)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicUsize>,
}

impl Receiver {
    /// Serve on 127.0.0.1:0: the first `fail_first` requests get 500, the rest 204.
    async fn start(fail_first: usize) -> (Self, String, tokio::task::JoinHandle<()>) {
        let me = Self {
            got: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
        };
        let state = me.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let fail = state
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    let headers = headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_owned(),
                                v.to_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                    state.got.lock().unwrap().push(Received {
                        headers,
                        body: body.to_vec(),
                        answered: status.as_u16(),
                    });
                    (status, if fail { "try again later" } else { "" })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (me, url, task)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------
// The independent verifier

/// Verify a delivery with `standardwebhooks` (PyPI). True when it verifies.
fn python_verifies(secret: &str, r: &Received) -> bool {
    let venv = crate::helpers::python_tool("webhooks");
    let dir = crate::helpers::repo_root().join("tests/webhooks");
    let input = json!({
        "secret": secret,
        "headers": r.headers,
        "body_base64": base64::engine::general_purpose::STANDARD.encode(&r.body),
    });
    let mut child = std::process::Command::new(venv.join("bin/python"))
        .arg(dir.join("verify.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run verify.py");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(0) => {
            // The verifier parsed the body: it must be what we sent.
            let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(parsed, serde_json::from_slice::<Value>(&r.body).unwrap());
            true
        }
        Some(1) => false,
        other => panic!(
            "verify.py failed ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

// ---------------------------------------------------------------------------------
// API helpers

async fn subscribe(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_json(client: &reqwest::Client, url: String, key: &str) -> Value {
    let res = client.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn deliveries(client: &reqwest::Client, base: &str, key: &str, sub: &str) -> Vec<Value> {
    let v = get_json(
        client,
        format!("{base}/v1/subscriptions/{sub}/deliveries"),
        key,
    )
    .await;
    v["items"].as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_event_once_with_four_attempts_recorded() {
    let app = EventsApp::spawn(fast_settings()).await;
    let t = app.create_tenant("acme").await;
    let (receiver, url, server) = Receiver::start(3).await;
    let res = subscribe(
        &app.client,
        &app.base,
        &t.key,
        json!({"url": url, "events": ["ticket.created"]}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let sub: Value = res.json().await.unwrap();
    let secret = sub["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let sub_id = sub["id"].as_str().unwrap().to_owned();

    let store = app.store().await;
    emit(&store, &t.id, EventType::JobFinished, 0).await; // filtered out
    emit(&store, &t.id, EventType::TicketCreated, 1).await;

    eventually("the delivery succeeds", || async {
        deliveries(&app.client, &app.base, &t.key, &sub_id)
            .await
            .first()
            .is_some_and(|d| d["state"] == "succeeded")
    })
    .await;
    let ds = deliveries(&app.client, &app.base, &t.key, &sub_id).await;
    assert_eq!(ds.len(), 1, "only the subscribed type: {ds:?}");
    let d = &ds[0];
    assert_eq!(d["event_type"], "ticket.created");
    assert_eq!(d["attempts"], 4);
    assert_eq!(d["last_status"], 204);
    let log = d["attempt_log"].as_array().unwrap();
    assert_eq!(
        log.iter()
            .map(|a| a["attempt"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        log.iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![500, 500, 500, 204]
    );
    assert_eq!(log[0]["error"], "HTTP 500");
    assert_eq!(log[0]["response_snippet"], "try again later");
    assert!(log[3]["error"].is_null());

    // Nothing is left to send: the success is final.
    assert_eq!(store.next_delivery_due().await.unwrap(), None);
    let got = receiver.received();
    assert_eq!(got.len(), 4, "four requests reached the receiver");
    assert_eq!(
        got.iter().filter(|r| r.answered == 204).count(),
        1,
        "exactly one success"
    );
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same webhook-id on every attempt: {ids:?}"
    );
    assert_eq!(ids[0], d["event_id"].as_str().unwrap());

    let body: Value = serde_json::from_slice(&got[3].body).unwrap();
    assert_eq!(body["type"], "ticket.created");
    assert_eq!(body["data"], json!({"n": 1}));
    assert_eq!(body["subject"], "tkt_1");
    assert_eq!(got[3].headers["content-type"], "application/json");

    // Every attempt is signed and verifies with the independent implementation; a
    // tampered body, a different secret or a changed id does not.
    for r in &got {
        assert!(
            python_verifies(&secret, r),
            "attempt verifies: {:?}",
            r.headers
        );
    }
    let mut tampered = got[3].clone();
    tampered.body =
        serde_json::to_vec(&json!({"type": "ticket.created", "data": {"n": 2}})).unwrap();
    assert!(
        !python_verifies(&secret, &tampered),
        "tampered body must fail"
    );
    let mut other_id = got[3].clone();
    other_id
        .headers
        .insert("webhook-id".into(), "evt_forged".into());
    assert!(!python_verifies(&secret, &other_id), "another id must fail");
    let other_secret = jira_bridge::events::signing::generate_secret();
    assert!(
        !python_verifies(other_secret.expose_secret(), &got[3]),
        "another secret must fail"
    );

    server.abort();
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_new_one() {
    let app = EventsApp::spawn(fast_settings()).await;
    let t = app.create_tenant("acme").await;
    let (receiver, url, server) = Receiver::start(0).await;
    let sub: Value = subscribe(&app.client, &app.base, &t.key, json!({"url": url}))
        .await
        .json()
        .await
        .unwrap();
    let old = sub["secret"].as_str().unwrap().to_owned();
    let id = sub["id"].as_str().unwrap();

    let fetched = get_json(
        &app.client,
        app.url(&format!("/v1/subscriptions/{id}")),
        &t.key,
    )
    .await;
    assert!(
        fetched.get("secret").is_none(),
        "the secret is shown once: {fetched}"
    );

    let res = app
        .client
        .patch(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&t.key)
        .json(&json!({"rotate_secret": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let store = app.store().await;
    emit(&store, &t.id, EventType::TicketStatusChanged, 7).await;
    eventually("delivered", || async { !receiver.received().is_empty() }).await;
    let r = &receiver.received()[0];
    let sigs: Vec<_> = r.headers["webhook-signature"].split(' ').collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(sigs.iter().all(|s| s.starts_with("v1,")));
    assert!(python_verifies(&new, r), "verifies with the new secret");
    assert!(
        python_verifies(&old, r),
        "and, during the grace period, with the old one"
    );
    server.abort();
    app.stop().await;
}

#[tokio::test]
async fn failing_endpoint_is_disabled_with_an_event_and_can_be_retried_after_enabling() {
    let settings = EventsSettings {
        retry_schedule: vec![],
        disable_after: Duration::ZERO,
        ..fast_settings()
    };
    let app = EventsApp::spawn(settings).await;
    let t = app.create_tenant("acme").await;
    let (receiver, url, server) = Receiver::start(1).await;
    let sub: Value = subscribe(
        &app.client,
        &app.base,
        &t.key,
        json!({"url": url, "events": ["worklog.failed"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = sub["id"].as_str().unwrap().to_owned();
    let store = app.store().await;
    emit(&store, &t.id, EventType::WorklogFailed, 1).await;

    eventually("disabled", || async {
        get_json(
            &app.client,
            app.url(&format!("/v1/subscriptions/{id}")),
            &t.key,
        )
        .await["enabled"]
            == false
    })
    .await;
    let s = get_json(
        &app.client,
        app.url(&format!("/v1/subscriptions/{id}")),
        &t.key,
    )
    .await;
    assert!(
        s["disabled_reason"].as_str().unwrap().contains("failed"),
        "{s}"
    );
    let d = deliveries(&app.client, &app.base, &t.key, &id)
        .await
        .remove(0);
    assert_eq!(d["state"], "exhausted");
    assert_eq!(d["attempts"], 1);

    let page = get_json(&app.client, app.url("/v1/events"), &t.key).await;
    let disabled: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "subscription.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{page}");
    assert_eq!(disabled[0]["subject"], id.as_str());
    assert_eq!(disabled[0]["data"]["subscription_id"], id.as_str());

    // Retry is refused while disabled, accepted once enabled, and delivers.
    let retry_url = app.url(&format!(
        "/v1/subscriptions/{id}/deliveries/{}/retry",
        d["id"].as_str().unwrap()
    ));
    let res = app
        .client
        .post(&retry_url)
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "conflict").await;
    let res = app
        .client
        .patch(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&t.key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let enabled: Value = res.json().await.unwrap();
    assert_eq!(enabled["enabled"], true);
    assert!(enabled["disabled_reason"].is_null() && enabled["failing_since"].is_null());
    let res = app
        .client
        .post(&retry_url)
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    eventually("retried delivery succeeds", || async {
        deliveries(&app.client, &app.base, &t.key, &id).await[0]["state"] == "succeeded"
    })
    .await;
    let d = deliveries(&app.client, &app.base, &t.key, &id)
        .await
        .remove(0);
    assert_eq!(d["attempts"], 2);
    assert_eq!(receiver.received().len(), 2);
    server.abort();
    app.stop().await;
}

/// Minimal SSE reader: yields (id, event, data) per event; comments are skipped.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
    comments: usize,
}

impl SseReader {
    async fn connect(
        client: &reqwest::Client,
        url: String,
        key: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut req = client
            .get(url)
            .bearer_auth(key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            stream: res.bytes_stream().boxed(),
            buf: String::new(),
            comments: 0,
        }
    }

    async fn next(&mut self) -> (String, String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    } else if line.starts_with(':') {
                        self.comments += 1;
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return (id, event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("an SSE event within 30 s")
                .expect("stream open")
                .unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn sse_resumes_after_a_disconnect_without_gaps_or_repeats_and_never_shows_other_tenants() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let store = app.store().await;
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(emit(&store, &a.id, EventType::JobProgress, i).await);
        emit(&store, &b.id, EventType::JobProgress, 100 + i).await;
    }

    // From the start of the stream.
    let mut seen = Vec::new();
    let mut sse = SseReader::connect(&app.client, app.url("/v1/events"), &a.key, Some("0")).await;
    for _ in 0..3 {
        let (id, event, data) = sse.next().await;
        assert_eq!(event, "job.progress");
        assert_eq!(data["seq"].as_i64().unwrap().to_string(), id);
        seen.push(data["seq"].as_i64().unwrap());
    }
    // Live: appended while connected.
    emit(&store, &b.id, EventType::JobProgress, 200).await;
    expected.push(emit(&store, &a.id, EventType::JobFinished, 3).await);
    let (id, event, data) = sse.next().await;
    assert_eq!(event, "job.finished");
    assert_eq!(data["data"], json!({"n": 3}));
    seen.push(id.parse().unwrap());
    drop(sse); // disconnect

    // Appended while nobody listens.
    for i in 4..7 {
        expected.push(emit(&store, &a.id, EventType::TicketCreated, i).await);
        emit(&store, &b.id, EventType::TicketCreated, 100 + i).await;
    }
    let last = seen.last().unwrap().to_string();
    let mut sse = SseReader::connect(&app.client, app.url("/v1/events"), &a.key, Some(&last)).await;
    for _ in 4..7 {
        let (_, _, data) = sse.next().await;
        assert_eq!(data["id"].as_str().unwrap().len(), 36);
        seen.push(data["seq"].as_i64().unwrap());
    }
    expected.push(emit(&store, &a.id, EventType::TicketCreated, 7).await);
    let (_, _, data) = sse.next().await;
    seen.push(data["seq"].as_i64().unwrap());
    assert_eq!(
        seen, expected,
        "every event of tenant a once, in order, none of b's"
    );
    drop(sse);

    // Without Last-Event-ID the stream starts now.
    let mut live = SseReader::connect(&app.client, app.url("/v1/events"), &a.key, None).await;
    let fresh = emit(&store, &a.id, EventType::ReleaseCompleted, 8).await;
    let (id, _, _) = live.next().await;
    assert_eq!(id, fresh.to_string());
    drop(live);

    let res = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(&a.key)
        .header("accept", "text/event-stream")
        .header("last-event-id", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "bad-request").await;
    app.stop().await;
}

#[tokio::test]
async fn json_pages_follow_after_and_are_tenant_scoped() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let store = app.store().await;
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(emit(&store, &a.id, EventType::WorklogSynced, i).await);
        emit(&store, &b.id, EventType::WorklogSynced, i).await;
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = get_json(
            &app.client,
            app.url(&format!("/v1/events?after={after}&limit=2")),
            &a.key,
        )
        .await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for e in items {
            assert_eq!(e["type"], "worklog.synced");
            seen.push(e["seq"].as_i64().unwrap());
        }
        after = page["next_after"].as_i64().unwrap();
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen, expected);
    // Polling again at the end answers nothing new and keeps the cursor.
    let empty = get_json(
        &app.client,
        app.url(&format!("/v1/events?after={after}")),
        &a.key,
    )
    .await;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["next_after"], after);

    let res = app
        .client
        .get(app.url("/v1/events?after=-1"))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "bad-request").await;
    let res = app.client.get(app.url("/v1/events")).send().await.unwrap();
    assert_problem(res, 401, "unauthorized").await;
    app.stop().await;
}

#[tokio::test]
async fn subscriptions_are_validated_paged_and_tenant_isolated() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let res = subscribe(
        &app.client,
        &app.base,
        &a.key,
        json!({"url": "https://hooks.example.com/x", "events": ["ticket.nope"]}),
    )
    .await;
    let p = assert_problem(res, 422, "validation").await;
    assert!(
        p["errors"]["events"]
            .as_str()
            .unwrap()
            .contains("ticket.nope"),
        "{p}"
    );
    let res = subscribe(
        &app.client,
        &app.base,
        &a.key,
        json!({"url": "ftp://hooks.example.com/x"}),
    )
    .await;
    assert_problem(res, 422, "validation").await;
    let res = subscribe(&app.client, &app.base, &a.key, json!({"events": []})).await;
    assert_problem(res, 422, "validation").await;

    let mut ids = Vec::new();
    for i in 0..3 {
        let res = subscribe(
            &app.client,
            &app.base,
            &a.key,
            json!({"url": format!("http://127.0.0.1:9/{i}"), "events": ["job.finished", "job.finished"], "description": "d"}),
        )
        .await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["events"], json!(["job.finished"]), "deduplicated");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let first = get_json(&app.client, app.url("/v1/subscriptions?limit=2"), &a.key).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert!(first["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s.get("secret").is_none()));
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get_json(
        &app.client,
        app.url(&format!("/v1/subscriptions?limit=2&cursor={cursor}")),
        &a.key,
    )
    .await;
    assert_eq!(second["items"][0]["id"], ids[0].as_str());
    assert!(second["next_cursor"].is_null());
    let none = get_json(&app.client, app.url("/v1/subscriptions"), &b.key).await;
    assert_eq!(none["items"], json!([]));

    // Another tenant's id answers 404 everywhere.
    let id = &ids[1];
    let c = &app.client;
    for res in [
        c.get(app.url(&format!("/v1/subscriptions/{id}")))
            .bearer_auth(&b.key)
            .send()
            .await
            .unwrap(),
        c.patch(app.url(&format!("/v1/subscriptions/{id}")))
            .bearer_auth(&b.key)
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap(),
        c.delete(app.url(&format!("/v1/subscriptions/{id}")))
            .bearer_auth(&b.key)
            .send()
            .await
            .unwrap(),
        c.get(app.url(&format!("/v1/subscriptions/{id}/deliveries")))
            .bearer_auth(&b.key)
            .send()
            .await
            .unwrap(),
        c.post(app.url(&format!(
            "/v1/subscriptions/{id}/deliveries/dlv_0190f0f0f0f0f0f0f0f0f0f0f0f0f0f0/retry"
        )))
        .bearer_auth(&b.key)
        .send()
        .await
        .unwrap(),
        c.get(app.url("/v1/subscriptions/sub_nonsense"))
            .bearer_auth(&a.key)
            .send()
            .await
            .unwrap(),
    ] {
        assert_problem(res, 404, "not-found").await;
    }
    let still = get_json(
        &app.client,
        app.url(&format!("/v1/subscriptions/{id}")),
        &a.key,
    )
    .await;
    assert_eq!(still["enabled"], true);

    let res = c
        .patch(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&a.key)
        .json(&json!({"events": [], "description": null, "url": "http://127.0.0.1:9/new"}))
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["events"], json!([]));
    assert!(v["description"].is_null());
    assert_eq!(v["url"], "http://127.0.0.1:9/new");
    assert!(v.get("secret").is_none(), "no rotation asked: no secret");

    let res = c
        .delete(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    // Changes are audited, never with the secret.
    let audit = get_json(c, app.url(&format!("/v1/audit?target_id={id}")), &a.key).await;
    let mut actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        vec![
            "subscription.create",
            "subscription.delete",
            "subscription.update"
        ],
        "{audit}"
    );
    assert!(!audit.to_string().contains("whsec_"));
    let other = get_json(c, app.url(&format!("/v1/audit?target_id={id}")), &b.key).await;
    assert_eq!(other["items"], json!([]));
    let res = c
        .get(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn subscription_urls_to_private_hosts_are_refused_unless_the_operator_allows_them() {
    let strict = TestApp::builder()
        .env("JIRA_BRIDGE_ALLOW_PRIVATE_HOSTS", "false")
        .spawn()
        .await;
    let t = strict.create_tenant("a").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.1.1/",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://localhost/hook",
        "https://user:pass@hooks.example.com/hook",
    ] {
        let res = subscribe(&strict.client, &strict.base, &t.key, json!({"url": url})).await;
        let p = assert_problem(res, 422, "validation").await;
        assert!(p["errors"]["url"].is_string(), "{url}: {p}");
    }
    let none = get_json(&strict.client, strict.url("/v1/subscriptions"), &t.key).await;
    assert_eq!(none["items"], json!([]), "nothing was stored");
    strict.stop().await;

    let open = TestApp::spawn().await; // tests allow private hosts
    let t = open.create_tenant("a").await;
    let res = subscribe(
        &open.client,
        &open.base,
        &t.key,
        json!({"url": "http://127.0.0.1:8080/hook"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    open.stop().await;
}

#[tokio::test]
async fn two_replicas_share_the_outbox_and_each_event_is_delivered_once() {
    let first = EventsApp::spawn(fast_settings()).await;
    let second = first.replica(fast_settings()).await;
    assert!(second.shared && second.db_url == first.db_url);
    let t = first.create_tenant("acme").await;
    let (receiver, url, server) = Receiver::start(0).await;
    let res = subscribe(&second.client, &second.base, &t.key, json!({"url": url})).await;
    assert_eq!(
        res.status(),
        201,
        "the tenant's key works on either replica"
    );
    let store = first.store().await;
    let total = 40;
    for i in 0..total {
        emit(&store, &t.id, EventType::JobProgress, i).await;
    }
    eventually("every event delivered", || async {
        receiver.received().len() >= total as usize
    })
    .await;
    let sub_id = get_json(&first.client, first.url("/v1/subscriptions"), &t.key).await["items"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("every delivery recorded", || async {
        let v = get_json(
            &first.client,
            first.url(&format!("/v1/subscriptions/{sub_id}/deliveries?limit=500")),
            &t.key,
        )
        .await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "succeeded")
    })
    .await;
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), total as usize, "every event arrived");
    assert_eq!(before, total as usize, "and none twice");
    let ds = get_json(
        &second.client,
        second.url(&format!("/v1/subscriptions/{sub_id}/deliveries?limit=500")),
        &t.key,
    )
    .await;
    let ds = ds["items"].as_array().unwrap();
    assert_eq!(ds.len(), total as usize);
    assert!(ds.iter().all(|d| d["attempts"] == 1), "one attempt each");
    server.abort();
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn open_event_streams_end_on_shutdown_so_the_service_can_stop() {
    // A grace period far longer than the test's deadline: the service only stops in
    // time if the stream ends by itself when shutdown begins.
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_SHUTDOWN_GRACE_SECONDS", "600")
        .spawn()
        .await;
    let t = app.create_tenant("a").await;
    let mut sse = SseReader::connect(&app.client, app.url("/v1/events"), &t.key, Some("0")).await;
    let store = app.store().await;
    emit(&store, &t.id, EventType::JobFinished, 1).await;
    let (_, event, _) = sse.next().await;
    assert_eq!(event, "job.finished");
    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("the service stops while a client is still connected");
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = sse.stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "the stream was closed by the server");
}

#[tokio::test]
async fn an_answer_after_the_timeout_is_a_failed_attempt() {
    let settings = EventsSettings {
        retry_schedule: vec![],
        request_timeout: Duration::from_millis(300),
        ..fast_settings()
    };
    let app = EventsApp::spawn(settings).await;
    let t = app.create_tenant("acme").await;
    // An endpoint that answers 204, but only after an hour.
    let release = Arc::new(tokio::sync::Notify::new());
    let hold = release.clone();
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::post(move || {
            let hold = hold.clone();
            async move {
                tokio::select! {
                    _ = hold.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, slow).await;
    });
    let sub: Value = subscribe(&app.client, &app.base, &t.key, json!({"url": url}))
        .await
        .json()
        .await
        .unwrap();
    let id = sub["id"].as_str().unwrap().to_owned();
    emit(&app.store().await, &t.id, EventType::ExportFinished, 1).await;
    eventually("the attempt is recorded", || async {
        deliveries(&app.client, &app.base, &t.key, &id)
            .await
            .first()
            .is_some_and(|d| d["state"] == "exhausted")
    })
    .await;
    let d = deliveries(&app.client, &app.base, &t.key, &id)
        .await
        .remove(0);
    assert_eq!(d["attempts"], 1);
    let attempt = &d["attempt_log"][0];
    assert!(attempt["status_code"].is_null(), "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("timed out"),
        "{attempt}"
    );
    release.notify_waiters();
    server.abort();
    app.stop().await;
}
