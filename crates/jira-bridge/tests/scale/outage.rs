//! The database goes away under a running service and comes back: the service says
//! it is not ready meanwhile, keeps running, and finishes the work it had
//! acknowledged, once. The PostgreSQL stopped is a private instance started for this
//! test (never the machine's shared server).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

/// `id <args>` as a number.
fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A throw-away PostgreSQL server: its own data directory and port.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the server programs as this user (they refuse to run as root).
    run_as: Option<&'static str>,
}

impl PrivatePostgres {
    /// The newest `/usr/lib/postgresql/<version>/bin` with the server programs.
    fn find_bin() -> Option<PathBuf> {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|p| bin.join(p).exists())
                    .then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    }

    /// initdb a fresh cluster on a free port; `None` (with the reason printed) when
    /// the server programs are missing.
    fn create() -> Option<Self> {
        let Some(bin) = Self::find_bin() else {
            eprintln!(
                "\n\n*** SKIPPED PostgreSQL outage test: no PostgreSQL server programs (initdb, pg_ctl, postgres) under /usr/lib/postgresql/*/bin ***\n\n"
            );
            return None;
        };
        let root = id(&["-u"]) == Some(0);
        let dir = tempfile::tempdir().unwrap();
        let run_as = if root {
            let (Some(uid), Some(gid)) = (id(&["-u", "postgres"]), id(&["-g", "postgres"])) else {
                panic!("running as root: a `postgres` user is needed to run the server");
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            Some("postgres")
        } else {
            None
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self {
            bin,
            dir,
            port,
            run_as,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .output();
        // As root the server runs as its own user: ask as that user too.
        if let Some(user) = self.run_as {
            let _ = Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
                .output();
        }
    }
}

async fn readyz(base: &str) -> Option<u16> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_reports_not_ready_and_loses_nothing_acknowledged() {
    let Some(pg) = PrivatePostgres::create() else {
        return;
    };
    pg.start();
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let sim = jira_sim::spawn(jira_sim::SimConfig::cloud()).await.unwrap();
    let scenario = sim_get(&sim, "/_sim/scenario").await;
    // Slow Jira: the outage lands while the work is under way.
    sim_send(
        &sim,
        Method::PUT,
        "/_sim/pacing",
        json!({"rate": 8, "burst": 4, "latency_ms": 20, "worklog_feed_delay_ms": 0}),
    )
    .await;
    let env = service_env(&pg.url(), &sim, &scenario);
    let work_dir = tempfile::tempdir().unwrap();
    let mut replica = Replica::start("outage", &env, work_dir.path());
    let key = create_tenant(&replica.base, "outage").await;
    let rr = RoundRobin::new(vec![replica.base.clone()], &key);
    let con = connect_token(&replica.base, &key, &sim, "alice").await;
    let worklog_issues: Vec<String> = sim_get(&sim, "/_sim/issues?project=WEB")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .take(6)
        .collect();

    // Acknowledged work: a bulk job (one ticket per Jira call, so it takes a while),
    // and time entries with their sync.
    let items = 30;
    let mut jobs = Vec::new();
    for i in 0..items {
        let accepted = rr
            .expect(
                Method::POST,
                "/v1/tickets/bulk",
                json!({"connection_id": con, "defaults": {"project_key": "OPS", "issue_type": "Task"},
                       "items": [{"source": {"kind": "finding", "id": format!("out-{i}")},
                                  "summary": format!("Outage {i}")}]}),
                Some(&format!("outage-{i}")),
                202,
            )
            .await;
        jobs.push(accepted["job_id"].as_str().unwrap().to_owned());
    }
    let entries = 20;
    let mut ids = Vec::new();
    for i in 0..entries {
        let src = format!("out-te-{i:03}");
        rr.expect(
            Method::PUT,
            &format!("/v1/time-entries/{src}"),
            json!({"connection_id": con, "issue_key": worklog_issues[i % worklog_issues.len()],
                   "started_at": format!("2026-05-06T09:{:02}:00+02:00", i),
                   "duration_seconds": 700 + i}),
            None,
            201,
        )
        .await;
        ids.push(src);
    }
    rr.expect(
        Method::POST,
        "/v1/time-entries/sync",
        json!({"source_ids": ids}),
        Some("outage-sync"),
        202,
    )
    .await;
    let count = || async {
        issue_summaries(&sim, "OPS")
            .await
            .keys()
            .filter(|s| s.starts_with("Outage "))
            .count()
    };
    eventually("the work under way", minutes(2), || async {
        (count().await >= 3).then_some(())
    })
    .await;

    // The database goes away.
    pg.stop();
    let at_stop = count().await;
    eventually("/readyz reports not ready", minutes(1), || async {
        (readyz(&replica.base).await == Some(503)).then_some(())
    })
    .await;
    assert!(
        replica.running(),
        "the service keeps running without its database"
    );
    assert_eq!(readyz(&replica.base).await, Some(503));
    let r = rr
        .send(Method::GET, &format!("/v1/jobs/{}", jobs[0]), None, None)
        .await;
    assert!(
        r.status().is_server_error(),
        "a request needing the database fails cleanly: {}",
        r.status()
    );

    // It comes back.
    pg.start();
    eventually("/readyz reports ready again", minutes(1), || async {
        (readyz(&replica.base).await == Some(200)).then_some(())
    })
    .await;
    for job in &jobs {
        let done = wait_job(&rr, job, minutes(3)).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    eventually("every time entry synced", minutes(3), || async {
        let v: Value = rr.get("/v1/time-entries?state=synced&limit=500").await;
        (v["items"].as_array().unwrap().len() == entries).then_some(())
    })
    .await;

    // Nothing acknowledged was lost or done twice.
    let summaries = issue_summaries(&sim, "OPS").await;
    let outage: Vec<_> = summaries
        .iter()
        .filter(|(s, _)| s.starts_with("Outage "))
        .collect();
    assert_eq!(outage.len(), items, "every ticket exists");
    assert!(
        outage.iter().all(|(_, n)| **n == 1),
        "duplicates: {outage:?}"
    );
    let per_entry = worklogs_per_entry(&sim, &worklog_issues).await;
    assert_eq!(per_entry.len(), entries);
    assert!(per_entry.values().all(|n| *n == 1), "{per_entry:?}");
    eprintln!("outage: {at_stop}/{items} tickets created when the database stopped; all done after it returned");
    assert!(replica.running());
    assert_eq!(replica.terminate().code(), Some(0), "clean stop");
}
