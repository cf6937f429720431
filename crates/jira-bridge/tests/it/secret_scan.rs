//! The secrets scan: a reusable [`SecretScan`] (register every secret a run uses, feed
//! it logs, response bodies, pages, files and database dumps, then assert none holds
//! one), and a realistic flow scanned with it.
//!
//! The flow covers the API's answers, the console's pages (signed in with a tenant
//! key), debug logs and the database; to cover more surfaces feed them to
//! [`SecretScan::get`] / [`SecretScan::response`] / [`SecretScan::text`] below.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use jira_bridge_store::Backend;
use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{TestApp, TestAppBuilder, TestTenant, ADMIN_KEY};
use crate::oauth::{connect_one_site, oauth_env, sim_post};

/// Log output captured from the whole test process.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

/// Every log line of the process at debug level, from the first call on (the one
/// global subscriber of the test binary).
pub fn capture_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let c = Captured::default();
        let w = c.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        c
    })
    .clone()
}

/// Secrets of a run and the places searched for them.
#[derive(Default)]
pub struct SecretScan {
    secrets: Vec<(String, String)>,
    scanned: Vec<String>,
    findings: Vec<String>,
}

impl SecretScan {
    /// Register a secret by a label used in findings (never the value itself).
    /// The value is searched as is and, for long values, by its last 24 characters
    /// (a secret cut or prefixed still leaks).
    pub fn secret(&mut self, label: &str, value: &str) -> &mut Self {
        assert!(value.len() >= 12, "{label} is too short to scan for");
        self.secrets.push((label.to_owned(), value.to_owned()));
        if value.len() > 32 {
            let tail = &value[value.len() - 24..];
            self.secrets
                .push((format!("{label} (tail)"), tail.to_owned()));
        }
        self
    }

    /// Search `bytes`, named `source`.
    pub fn bytes(&mut self, source: &str, bytes: &[u8]) {
        self.scanned
            .push(format!("{source} ({} bytes)", bytes.len()));
        for (label, value) in &self.secrets {
            let needle = value.as_bytes();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                self.findings.push(format!("{label} in {source}"));
            }
        }
    }

    /// Search a text.
    pub fn text(&mut self, source: &str, text: &str) {
        self.bytes(source, text.as_bytes());
    }

    /// Search a file; a missing file is noted, not a failure.
    pub fn file(&mut self, path: &Path) {
        match std::fs::read(path) {
            Ok(b) => self.bytes(&path.display().to_string(), &b),
            Err(_) => self.scanned.push(format!("{} (absent)", path.display())),
        }
    }

    /// Search a SQLite database: the file, its WAL and shared-memory file.
    pub fn sqlite(&mut self, db: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            self.file(Path::new(&format!("{}{suffix}", db.display())));
        }
    }

    /// Search a `pg_dump` (schema and data) of one schema of a PostgreSQL database.
    pub fn postgres(&mut self, url: &str, schema: &str) {
        let out = std::process::Command::new("pg_dump")
            .args(["--no-owner", "--schema", schema, url])
            .output()
            .expect("pg_dump (the PostgreSQL client) is on PATH");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("CREATE TABLE"),
            "the dump holds the schema"
        );
        self.bytes(&format!("pg_dump of {schema}"), &out.stdout);
    }

    /// Search a response body (JSON, HTML or text) and answer it.
    pub async fn response(&mut self, source: &str, res: reqwest::Response) -> (u16, String) {
        let status = res.status().as_u16();
        let headers = format!("{:?}", res.headers());
        let body = res.text().await.unwrap_or_default();
        self.text(&format!("{source} headers"), &headers);
        self.text(source, &body);
        (status, body)
    }

    /// GET `path` with `key` and search the answer (API reads, console pages, …).
    pub async fn get(&mut self, app: &TestApp, key: &str, path: &str) -> (u16, String) {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(key)
            .header("accept", "application/json, text/html")
            .send()
            .await
            .unwrap();
        self.response(&format!("GET {path}"), res).await
    }

    /// Fail naming every secret found and where.
    pub fn assert_clean(&self) {
        assert!(self.secrets.len() >= 2, "no secrets registered");
        assert!(
            self.findings.is_empty(),
            "secrets found:\n{}\n(scanned: {})",
            self.findings.join("\n"),
            self.scanned.join(", ")
        );
    }
}

/// The search path schema of a test database URL on PostgreSQL.
fn pg_schema(url: &str) -> (String, String) {
    let (base, query) = url.split_once('?').unwrap();
    let schema = query.rsplit("search_path%3D").next().unwrap().to_owned();
    (base.to_owned(), schema)
}

async fn run_flow(builder: TestAppBuilder) {
    let logs = capture_logs();
    let cloud = Sim::cloud().await;
    let dc = Sim::data_center().await;
    let app = oauth_env(builder, &cloud).spawn().await;
    let mut scan = SecretScan::default();
    scan.secret("admin key", ADMIN_KEY);
    scan.secret(
        "OAuth client secret",
        cloud.scenario["oauth"]["client_secret"].as_str().unwrap(),
    );

    // Tenant and keys: the creating answers show a key once, by design; nothing else may.
    let t: TestTenant = app.create_tenant("secrets-scan").await;
    scan.secret("tenant API key", &t.key);
    let res = app
        .client
        .post(app.url(&format!("/v1/admin/tenants/{}/keys", t.id)))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "second", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    let second = TestApp::json_ok(res, 201).await;
    let second_key = second["key"].as_str().unwrap().to_owned();
    scan.secret("second API key", &second_key);

    // Token, PAT and OAuth connections; the OAuth one refreshes.
    let mut body = cloud_token_body(&cloud, "alice");
    scan.secret("Jira API token", body["token"].as_str().unwrap());
    body["name"] = json!("token");
    let (status, tok) = scan
        .response(
            "POST /v1/connections",
            app.post(&t, "/v1/connections", body).await,
        )
        .await;
    assert_eq!(status, 201, "{tok}");
    let tok: Value = serde_json::from_str(&tok).unwrap();
    let con = tok["id"].as_str().unwrap().to_owned();
    let pat = dc.user("alice")["pat"].as_str().unwrap().to_owned();
    scan.secret("Data Center PAT", &pat);
    let (status, _) = scan
        .response(
            "POST /v1/connections (PAT)",
            app.post(
                &t,
                "/v1/connections",
                json!({"name": "dc", "kind": "dc_pat", "base_url": dc.h.base_url(), "token": pat}),
            )
            .await,
        )
        .await;
    assert_eq!(status, 201);
    let oc = connect_one_site(&app, &t, &cloud, "scan").await;
    scan.text("OAuth callback answer", &oc.to_string());
    let oid = oc["id"].as_str().unwrap().to_owned();
    let before = stored_tokens(&app, &t, &oid).await;
    sim_post(&cloud, "/_sim/oauth/expire-access-tokens", json!({})).await;
    let (status, _) = scan
        .get(
            &app,
            &t.key,
            &format!("/v1/connections/{oid}/priorities?refresh=true"),
        )
        .await;
    assert_eq!(status, 200);
    let after = stored_tokens(&app, &t, &oid).await;
    assert_ne!(before, after, "the tokens were refreshed");
    for (i, (access, refresh)) in [before, after].iter().enumerate() {
        scan.secret(&format!("OAuth access token {i}"), access);
        scan.secret(&format!("OAuth refresh token {i}"), refresh);
    }

    // An outbound subscription: its secret is shown once, at creation.
    let res = app
        .post(
            &t,
            "/v1/subscriptions",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]}),
        )
        .await;
    let sub = TestApp::json_ok(res, 201).await;
    scan.secret("subscription secret", sub["secret"].as_str().unwrap());
    let sub_id = sub["id"].as_str().unwrap().to_owned();

    // Inbound webhooks: secret and URL token shown once; a signed delivery and one
    // authenticated by the URL token.
    let setup = TestApp::json_ok(
        app.post(
            &t,
            &format!("/v1/connections/{con}/webhook-setup"),
            json!({}),
        )
        .await,
        201,
    )
    .await;
    let hook_secret = setup["secret"].as_str().unwrap().to_owned();
    scan.secret("inbound webhook secret", &hook_secret);
    let with_token = setup["url_with_token"].as_str().unwrap().to_owned();
    let token = with_token.rsplit("token=").next().unwrap().to_owned();
    scan.secret("inbound webhook URL token", &token);
    let payload = serde_json::to_vec(&json!({
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10001", "key": "WEB-1", "fields": {"summary": "x"}}
    }))
    .unwrap();
    let res = app
        .client
        .post(app.url(&format!("/v1/webhooks/jira/{con}")))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature",
            crate::webhooks_in::sign(&hook_secret, &payload),
        )
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    let (status, body) = scan.response("signed inbound webhook", res).await;
    assert_eq!(status, 202, "{body}");
    let res = app
        .client
        .post(app.url(&with_token))
        .header("content-type", "application/json")
        .header("x-atlassian-webhook-identifier", "scan-2")
        .body(payload)
        .send()
        .await
        .unwrap();
    let (status, body) = scan.response("inbound webhook with URL token", res).await;
    assert_eq!(status, 202, "{body}");
    // A wrong signature is refused and logged; the log must not carry the secret.
    let res = app
        .client
        .post(app.url(&format!("/v1/webhooks/jira/{con}")))
        .header("content-type", "application/json")
        .header("x-hub-signature", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(scan.response("forged inbound webhook", res).await.0, 401);

    // A wrong token against Jira: the error answer must not echo it.
    let mut wrong = cloud_token_body(&cloud, "bob");
    wrong["token"] = json!("wrong-secret-token-0123456789");
    scan.secret("wrong Jira token", "wrong-secret-token-0123456789");
    scan.response(
        "POST /v1/connections/verify (wrong token)",
        app.post(&t, "/v1/connections/verify", wrong).await,
    )
    .await;

    // Every read a host application or operator makes afterwards.
    for path in [
        "/v1/me".to_owned(),
        "/v1/connections".to_owned(),
        format!("/v1/connections/{con}"),
        format!("/v1/connections/{oid}"),
        format!("/v1/connections/{con}/webhook-setup"),
        "/v1/subscriptions".to_owned(),
        format!("/v1/subscriptions/{sub_id}"),
        format!("/v1/subscriptions/{sub_id}/deliveries"),
        "/v1/audit?limit=500".to_owned(),
        "/v1/events?limit=500".to_owned(),
    ] {
        let (status, body) = scan.get(&app, &t.key, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for path in [
        "/v1/admin/tenants",
        &format!("/v1/admin/tenants/{}/keys", t.id),
    ] {
        let (status, _) = scan.get(&app, ADMIN_KEY, path).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _) = scan.get(&app, &t.key, "/metrics").await;
    assert_eq!(status, 200);

    // The console's pages, signed in with the tenant's key; the session id is a
    // secret too (the store keeps only its hash).
    let browser = crate::console::Browser::sign_in(&app, &t.key).await;
    scan.secret("console session id", &browser.session);
    for page in [
        "/console/connections".to_owned(),
        "/console/configs".to_owned(),
        "/console/configs/new".to_owned(),
        "/console/tickets".to_owned(),
        "/console/jobs".to_owned(),
        "/console/exports".to_owned(),
        "/console/releases".to_owned(),
        "/console/time-entries".to_owned(),
        "/console/sync-history".to_owned(),
        "/console/events".to_owned(),
        format!("/console/events/{sub_id}"),
        "/console/search".to_owned(),
    ] {
        let res = browser.get(&page).await;
        let (status, _) = scan.response(&format!("console page {page}"), res).await;
        assert_eq!(status, 200, "{page}");
    }

    // The master key: configured (PostgreSQL) or the generated key file (SQLite).
    let master = match app.env.get("JIRA_BRIDGE_MASTER_KEY") {
        Some(k) => k.clone(),
        None => {
            std::fs::read_to_string(jira_bridge::crypto::default_key_file(&app.config).unwrap())
                .unwrap()
        }
    };
    for key in master
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        scan.secret("master key", key);
    }

    // Everything logged at debug level while this ran.
    let logged = logs.text();
    assert!(logged.contains("DEBUG"), "debug logs were captured");
    scan.text("debug logs", &logged);

    // The database at rest.
    let store = app.store().await;
    store.close().await;
    match app.db.backend() {
        Backend::Sqlite => {
            let path = jira_bridge::crypto::sqlite_path(app.db.url()).unwrap();
            scan.sqlite(&path);
        }
        Backend::Postgres => {
            let (url, schema) = pg_schema(app.db.url());
            scan.postgres(&url, &schema);
        }
    }
    scan.assert_clean();
}

/// The access and refresh tokens stored for an OAuth connection.
async fn stored_tokens(app: &TestApp, t: &TestTenant, id: &str) -> (String, String) {
    let store = app.store().await;
    let keys = jira_bridge::app::load_keys(&app.config).unwrap();
    let tenant: jira_bridge_store::TenantId = t.id.parse().unwrap();
    let cid: jira_bridge_store::ConnectionId = id.parse().unwrap();
    let row = store.get_connection(&tenant, &cid).await.unwrap().unwrap();
    let plain = keys
        .open(
            &row.secret,
            jira_bridge::crypto::SealContext {
                table: "connections",
                row_id: cid.as_str(),
                column: "secret",
            },
        )
        .unwrap();
    let v: Value = serde_json::from_slice(&plain).unwrap();
    store.close().await;
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn no_secret_of_a_realistic_run_in_logs_answers_or_the_sqlite_database() {
    run_flow(TestApp::builder().sqlite()).await;
}

#[tokio::test]
async fn no_secret_of_a_realistic_run_in_logs_answers_or_a_postgresql_dump() {
    if std::env::var("JIRA_BRIDGE_TEST_POSTGRES_URL").is_err() {
        eprintln!("JIRA_BRIDGE_TEST_POSTGRES_URL is not set: the PostgreSQL half runs in CI");
        return;
    }
    run_flow(TestApp::builder()).await;
}
