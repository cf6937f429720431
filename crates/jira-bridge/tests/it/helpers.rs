use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jira_bridge::config::Config;
use jira_bridge_store::test_support::TestDatabase;
use jira_bridge_store::{Backend, Store};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";

/// Builds a [`TestApp`].
#[derive(Default)]
pub struct TestAppBuilder {
    env: BTreeMap<String, String>,
    sqlite_only: bool,
}

impl TestAppBuilder {
    /// Set a `JIRA_BRIDGE_*` variable for the service's configuration.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Use SQLite even when PostgreSQL is configured (tests that read the file).
    pub fn sqlite(mut self) -> Self {
        self.sqlite_only = true;
        self
    }

    /// The database, data directory, environment and configuration a test service
    /// would get, without starting it.
    pub async fn prepare(
        self,
    ) -> (
        TestDatabase,
        tempfile::TempDir,
        BTreeMap<String, String>,
        Config,
    ) {
        let db = if self.sqlite_only {
            TestDatabase::sqlite()
        } else {
            TestDatabase::from_env().await.expect("test database")
        };
        let data_dir = tempfile::tempdir().unwrap();
        let mut env = BTreeMap::from([
            ("JIRA_BRIDGE_BIND".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "JIRA_BRIDGE_DATA_DIR".to_owned(),
                data_dir.path().display().to_string(),
            ),
            ("JIRA_BRIDGE_DATABASE_URL".to_owned(), db.url().to_owned()),
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
        if db.backend() == Backend::Postgres {
            // No generated key file next to a server database: configure one.
            env.insert(
                "JIRA_BRIDGE_MASTER_KEY".to_owned(),
                jira_bridge::crypto::generate_key()
                    .expose_secret()
                    .to_owned(),
            );
        }
        env.extend(self.env);
        let config = Config::load_with_env(None, &env)
            .expect("test config")
            .config;
        (db, data_dir, env, config)
    }

    pub async fn spawn(self) -> TestApp {
        let (db, data_dir, env, config) = self.prepare().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(jira_bridge::run(config.clone(), listener, shutdown.clone()));
        let app = TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            config,
            env,
            db,
            _data_dir: data_dir,
            shutdown,
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }
}

/// A running service and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub env: BTreeMap<String, String>,
    pub db: TestDatabase,
    /// Kept alive for the service's data directory.
    pub _data_dir: tempfile::TempDir,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A tenant made through the admin API.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: String,
    pub key_id: String,
    pub key: String,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "service did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A second handle on the service's database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(self.db.url(), &Default::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    pub async fn create_tenant(&self, name: &str) -> TestTenant {
        let res = self
            .client
            .post(self.url("/v1/admin/tenants"))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        TestTenant {
            id: body["tenant"]["id"].as_str().unwrap().to_owned(),
            key_id: body["api_key"]["id"].as_str().unwrap().to_owned(),
            key: body["api_key"]["key"].as_str().unwrap().to_owned(),
        }
    }

    /// Stop the service and wait for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Assert `res` is a problem document with `status` and type slug; return its body.
pub async fn assert_problem(res: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json", "content type");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("urn:jira-bridge:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The repository's root folder.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv of a pinned Python tool folder under `tests/` (`webhooks`, `api-fuzz`),
/// installed by its `setup.sh` once per test process.
pub fn python_tool(folder: &'static str) -> std::path::PathBuf {
    static DONE: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let dir = repo_root().join("tests").join(folder);
    let mut done = DONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !done.contains(&folder) {
        let status = std::process::Command::new("bash")
            .arg(dir.join("setup.sh"))
            .status()
            .unwrap_or_else(|e| panic!("run tests/{folder}/setup.sh: {e}"));
        assert!(status.success(), "tests/{folder}/setup.sh failed");
        done.push(folder);
    }
    dir.join(".venv")
}
