//! The built `jira-bridge` binary, run as an operator would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jira_bridge::crypto::{self, KeyRing, SealContext};
use jira_bridge_store::connections::NewConnection;
use jira_bridge_store::{ConnectionId, Store, TenantId};
use secrecy::SecretString;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_jira-bridge");

/// A command with no inherited JIRA_BRIDGE_* settings, run in `dir`.
fn jira_bridge(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("JIRA_BRIDGE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait (bounded) for a JSON log line whose message is `message`.
    fn wait_for(&mut self, message: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {message:?} log line; saw:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == message {
                    return v;
                }
            }
        }
    }

    fn terminate_and_wait(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn default_config_is_accepted_by_serve_which_starts_on_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(jira_bridge(dir.path()).arg("default-config"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("bind = \"127.0.0.1:8080\""), "{text}");
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 20,
        "commented"
    );
    let config_file = dir.path().join("jira-bridge.toml");
    std::fs::write(&config_file, &text).unwrap();

    // Port 0 instead of 8080 so tests never collide; everything else from the file.
    let mut server = Server::start(
        jira_bridge(dir.path())
            .arg("serve")
            .arg("--config")
            .arg(&config_file)
            .env("JIRA_BRIDGE_BIND", "127.0.0.1:0")
            .env("JIRA_BRIDGE_LOG_FORMAT", "json")
            .env("JIRA_BRIDGE_UNHEARD_OF", "1"),
    );
    let serving = server.wait_for("serving");
    let address = serving["fields"]["address"].as_str().unwrap().to_owned();
    assert_eq!(serving["fields"]["backend"], "Sqlite");
    assert!(
        server
            .seen
            .iter()
            .any(|l| l.contains("JIRA_BRIDGE_UNHEARD_OF")),
        "unknown variables are warned about"
    );
    assert!(server
        .seen
        .iter()
        .any(|l| l.contains("generated one in a file beside the database")));

    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{address}/healthz"))
        .header("x-request-id", "binary-test-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // SQLite file and a private key file beside it, in ./data.
    let data = dir.path().join("data");
    assert!(data.join("jira-bridge.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("master.key")), 0o600);
        assert_eq!(mode(&data.join("jira-bridge.db")), 0o600);
        assert_eq!(mode(&data), 0o700);
    }

    let status = server.terminate_and_wait();
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(server.seen.iter().any(|l| l.contains("SIGTERM received")));
    let request_line = server
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["span"]["request_id"] == "binary-test-req-1")
        .unwrap_or_else(|| {
            panic!(
                "no log line with the request id:\n{}",
                server.seen.join("\n")
            )
        });
    assert_eq!(request_line["span"]["route"], "/healthz");
}

#[test]
fn invalid_configuration_fails_with_an_actionable_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = jira_bridge(dir.path())
        .arg("serve")
        .env("JIRA_BRIDGE_BIND", "localhost")
        .env("JIRA_BRIDGE_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("JIRA_BRIDGE_LOG_FORMAT") || err.contains("format"),
        "{err}"
    );

    let out = jira_bridge(dir.path())
        .arg("serve")
        .env("JIRA_BRIDGE_BIND", "localhost")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("JIRA_BRIDGE_BIND") && err.contains("127.0.0.1:8080"),
        "{err}"
    );

    let missing = dir.path().join("nope.toml");
    let out = jira_bridge(dir.path())
        .arg("serve")
        .arg("--config")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

#[tokio::test]
async fn admin_commands_manage_tenants_and_rotate_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = run_ok(jira_bridge(dir.path()).arg("migrate"));
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("up to date"));

    let out = run_ok(jira_bridge(dir.path()).args(["admin", "create-tenant", "acme", "--json"]));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tenant_id = created["tenant"]["id"].as_str().unwrap().to_owned();
    assert!(created["api_key"]["key"]
        .as_str()
        .unwrap()
        .starts_with("jbk_"));
    let dup = jira_bridge(dir.path())
        .args(["admin", "create-tenant", "acme"])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let out = run_ok(jira_bridge(dir.path()).args([
        "admin",
        "create-key",
        &tenant_id,
        "--name",
        "ci",
        "--json",
    ]));
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key_id = key["id"].as_str().unwrap().to_owned();
    run_ok(jira_bridge(dir.path()).args(["admin", "revoke-key", &tenant_id, &key_id]));

    // Store secrets sealed with the generated key file.
    let data = dir.path().join("data");
    let url = format!("sqlite:{}", data.join("jira-bridge.db").display());
    let store = Store::connect(&url, &Default::default()).await.unwrap();
    let key_file = data.join("master.key");
    assert!(
        !key_file.exists(),
        "admin commands that seal nothing make no key"
    );
    // Load the key ring as `serve` would: this generates the key file.
    let env = [(
        "JIRA_BRIDGE_DATA_DIR".to_owned(),
        data.display().to_string(),
    )]
    .into();
    let config = jira_bridge::Config::load_with_env(None, &env)
        .unwrap()
        .config;
    let (old, source) = crypto::load_key_ring(&config).unwrap();
    assert_eq!(source, crypto::KeySource::Generated(key_file.clone()));
    let tenant: TenantId = tenant_id.parse().unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = ConnectionId::new();
        let ctx = SealContext {
            table: "connections",
            row_id: id.as_str(),
            column: "secret",
        };
        let sealed = old
            .seal_str(&SecretString::from(format!("secret-{i}")), ctx)
            .unwrap();
        store
            .insert_connection(NewConnection {
                id: id.clone(),
                tenant_id: tenant.clone(),
                kind: "cloud_token".into(),
                owner: Some("u1".into()),
                name: format!("c{i}"),
                base_url: "https://x.atlassian.net".into(),
                cloud_id: None,
                site_name: None,
                account_id: None,
                secret: sealed.ciphertext,
                secret_key_id: sealed.key_id,
                scopes: vec![],
                token_expires_at: None,
                verification_status: "not_verified".into(),
                last_verified_at: None,
                email: None,
                account_name: None,
                deployment: None,
                server_version: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }

    let out = run_ok(jira_bridge(dir.path()).args(["admin", "rotate-key"]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("re-sealed 3 secret(s)"), "{said}");

    let text = std::fs::read_to_string(&key_file).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(keys.len(), 2, "new key first, old kept");
    let new_only = KeyRing::from_keys([keys[0]]).unwrap();
    assert_ne!(new_only.current_key_id(), old.current_key_id());
    for (i, id) in ids.iter().enumerate() {
        let row = store.get_connection(&tenant, id).await.unwrap().unwrap();
        assert_eq!(row.secret_key_id, new_only.current_key_id());
        let ctx = SealContext {
            table: "connections",
            row_id: id.as_str(),
            column: "secret",
        };
        let opened = new_only.open(&row.secret, ctx).unwrap();
        assert_eq!(&*opened, format!("secret-{i}").as_bytes());
    }
    let audit = store
        .list_sealed_secrets(Some(new_only.current_key_id()))
        .await
        .unwrap();
    assert!(audit.is_empty(), "nothing left under the old key");
    store.close().await;
}
