//! Time entries → worklogs, against jira-sim: what Jira holds after each step, time
//! zones, bulk sync at the site's pace, validation, conflicts. The restart-after-kill
//! case is in `worklogs_kill.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jira_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestTenant};

/// Settings every worklog test runs with.
pub fn worklog_env(b: crate::helpers::TestAppBuilder) -> crate::helpers::TestAppBuilder {
    b.env("JIRA_BRIDGE_WORKLOGS_DEBOUNCE_MS", "200")
        .env("JIRA_BRIDGE_WORKLOGS_FEED_SECONDS", "1")
        .env("JIRA_BRIDGE_WORKLOGS_POLL_MS", "100")
        .env("JIRA_BRIDGE_WORKLOGS_LEASE_SECONDS", "5")
        .env("JIRA_BRIDGE_WORKLOGS_ISSUE_CACHE_SECONDS", "300")
}

pub struct Ctx {
    pub app: TestApp,
    pub sim: SimHandle,
    pub t: TestTenant,
    pub con: String,
    pub http: reqwest::Client,
}

pub async fn sim_put(http: &reqwest::Client, sim: &SimHandle, path: &str, body: Value) -> Value {
    let r = http
        .put(format!("{}{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

pub async fn sim_get(http: &reqwest::Client, sim: &SimHandle, path: &str) -> Value {
    let r = http
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Worklogs of an issue as the simulator holds them.
pub async fn sim_worklogs(http: &reqwest::Client, sim: &SimHandle, key: &str) -> Vec<Value> {
    sim_get(http, sim, &format!("/_sim/issues/{key}")).await["worklogs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Our marker's entry id on a worklog.
pub fn marker(w: &Value) -> Option<String> {
    w["properties"]
        .as_array()?
        .iter()
        .find(|p| p["key"] == "jira-bridge.time-entry")
        .and_then(|p| p["value"]["entry_id"].as_str())
        .map(str::to_owned)
}

/// Requests the simulator answered, by (method, endpoint template, status).
pub async fn sim_count(
    http: &reqwest::Client,
    sim: &SimHandle,
    method: &str,
    contains: &str,
    status: Option<u64>,
) -> u64 {
    let stats = sim_get(http, sim, "/_sim/stats").await;
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == method && r["endpoint"].as_str().unwrap_or("").contains(contains)
        })
        .filter(|r| status.is_none_or(|s| r["status"].as_u64() == Some(s)))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

impl Ctx {
    pub async fn new(user: &str) -> Self {
        Self::with_sim(user, SimConfig::cloud()).await
    }

    pub async fn with_sim(user: &str, mut cfg: SimConfig) -> Self {
        cfg.pacing.worklog_feed_delay_ms = Some(0);
        let sim = jira_sim::spawn(cfg).await.unwrap();
        let app = worklog_env(TestApp::builder()).spawn().await;
        let t = app.create_tenant("wl").await;
        let http = reqwest::Client::new();
        let body = if sim.flavor() == jira_sim::Flavor::DataCenter {
            let scenario = sim.scenario();
            let pat = scenario["users"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["email"] == format!("{user}@example.com"))
                .map(|u| u["pat"].clone())
                .unwrap();
            json!({"name": "jira", "kind": "dc_pat", "base_url": sim.base_url(), "token": pat})
        } else {
            json!({
                "name": "jira", "kind": "cloud_token", "base_url": sim.base_url(),
                "email": format!("{user}@example.com"), "token": format!("ATATT-{user}-api-token"),
            })
        };
        let r = http
            .post(app.url("/v1/connections"))
            .bearer_auth(&t.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let con = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            app,
            sim,
            t,
            con,
            http,
        }
    }

    pub async fn put(&self, source: &str, body: Value) -> reqwest::Response {
        let mut body = body;
        body["connection_id"] = json!(self.con);
        self.http
            .put(self.app.url(&format!("/v1/time-entries/{source}")))
            .bearer_auth(&self.t.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_ok(&self, source: &str, body: Value) -> Value {
        let r = self.put(source, body).await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.app.url(path))
            .bearer_auth(&self.t.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn sync(&self, source: &str) -> Value {
        let r = self
            .post(&format!("/v1/time-entries/{source}/sync"), json!({}))
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.app.url(path))
            .bearer_auth(&self.t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// Poll the entry until `pred` holds (bounded).
    pub async fn wait_entry(&self, source: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = self.get(&format!("/v1/time-entries/{source}")).await;
            if pred(&e) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "entry never reached the state: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn issue_keys(&self, project: &str) -> Vec<String> {
        let v = sim_get(
            &self.http,
            &self.sim,
            &format!("/_sim/issues?project={project}"),
        )
        .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The worklogs carrying our marker on `keys`, by entry id.
async fn ours(ctx: &Ctx, keys: &[&str]) -> HashMap<String, Vec<(String, Value)>> {
    let mut out: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    for k in keys {
        for w in sim_worklogs(&ctx.http, &ctx.sim, k).await {
            if let Some(id) = marker(&w) {
                out.entry(id).or_default().push(((*k).to_owned(), w));
            }
        }
    }
    out
}

fn started_instant(w: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    jira_client::parse_jira_datetime(w["started"].as_str().unwrap()).unwrap()
}

fn comment_text(w: &Value) -> String {
    jira_client::JiraClient::rich_text_to_markdown(&w["comment"])
}

#[tokio::test]
async fn create_edit_move_and_delete_are_mirrored_in_jira() {
    let ctx = Ctx::new("alice").await;
    let keys = ctx.issue_keys("WEB").await;
    let (a, b) = (keys[0].as_str(), keys[1].as_str());

    // Create (manual): nothing is sent until asked.
    let e = ctx
        .put_ok(
            "tr-1",
            json!({"issue_key": a, "started_at": "2026-03-02T09:00:00+01:00",
            "duration_seconds": 5400, "comment": "Pairing on **checkout**"}),
        )
        .await;
    assert_eq!(e["state"], "not_synced");
    assert!(ours(&ctx, &[a, b]).await.is_empty());
    let e = ctx.sync("tr-1").await;
    assert_eq!(e["state"], "synced");
    let id = e["id"].as_str().unwrap().to_owned();
    let wid = e["worklog_id"].as_str().unwrap().to_owned();
    let check =
        |expected_issue: &'static str, secs: i64, started: &'static str, comment: &'static str| {
            let ctx = &ctx;
            let id = id.clone();
            let (a, b) = (a.to_owned(), b.to_owned());
            async move {
                let found = ours(ctx, &[&a, &b]).await;
                assert_eq!(found.len(), 1, "{found:?}");
                let wl = &found[&id];
                assert_eq!(wl.len(), 1, "exactly one worklog for the entry");
                let (issue, w) = &wl[0];
                let want_issue = if expected_issue == "a" { &a } else { &b };
                assert_eq!(issue, want_issue);
                assert_eq!(w["timeSpentSeconds"], secs);
                assert_eq!(
                    started_instant(w),
                    chrono::DateTime::parse_from_rfc3339(started).unwrap()
                );
                assert_eq!(comment_text(w).trim(), comment);
                w["id"].as_str().unwrap().to_owned()
            }
        };
    assert_eq!(
        check(
            "a",
            5400,
            "2026-03-02T09:00:00+01:00",
            "Pairing on **checkout**"
        )
        .await,
        wid
    );

    // Edit the duration: the same worklog is updated (rounded to the minute).
    ctx.put_ok(
        "tr-1",
        json!({"issue_key": a, "started_at": "2026-03-02T09:00:00+01:00",
        "duration_seconds": 3629, "comment": "Pairing on **checkout**"}),
    )
    .await;
    let e = ctx.sync("tr-1").await;
    assert_eq!(e["worklog_id"], wid.as_str());
    assert_eq!(
        check(
            "a",
            3600,
            "2026-03-02T09:00:00+01:00",
            "Pairing on **checkout**"
        )
        .await,
        wid
    );

    // Edit the comment.
    ctx.put_ok(
        "tr-1",
        json!({"issue_key": a, "started_at": "2026-03-02T09:00:00+01:00",
        "duration_seconds": 3629, "comment": "Review of the cart"}),
    )
    .await;
    ctx.sync("tr-1").await;
    assert_eq!(
        check("a", 3600, "2026-03-02T09:00:00+01:00", "Review of the cart").await,
        wid
    );

    // Edit the date.
    ctx.put_ok(
        "tr-1",
        json!({"issue_key": a, "started_at": "2026-03-05T14:15:00+01:00",
        "ended_at": "2026-03-05T15:15:00+01:00", "comment": "Review of the cart"}),
    )
    .await;
    ctx.sync("tr-1").await;
    assert_eq!(
        check("a", 3600, "2026-03-05T14:15:00+01:00", "Review of the cart").await,
        wid
    );

    // Change the issue key: the worklog moves (deleted on A, added on B).
    ctx.put_ok(
        "tr-1",
        json!({"issue_key": b, "started_at": "2026-03-05T14:15:00+01:00",
        "ended_at": "2026-03-05T15:15:00+01:00", "comment": "Review of the cart"}),
    )
    .await;
    let e = ctx.sync("tr-1").await;
    assert_eq!(e["worklog_issue_key"], b);
    let moved = check("b", 3600, "2026-03-05T14:15:00+01:00", "Review of the cart").await;
    assert_ne!(moved, wid);
    assert!(sim_worklogs(&ctx.http, &ctx.sim, a)
        .await
        .iter()
        .all(|w| w["id"] != wid.as_str()));

    // Delete with the worklog.
    let r = ctx
        .http
        .delete(ctx.app.url("/v1/time-entries/tr-1?delete_worklog=true"))
        .bearer_auth(&ctx.t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["state"], "deleted");
    assert!(ours(&ctx, &[a, b]).await.is_empty());

    // Every step is in the entry's history.
    let e = ctx.get("/v1/time-entries/tr-1").await;
    let kinds: Vec<&str> = e["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "worklog.delete",
            "worklog.move",
            "worklog.update",
            "worklog.update",
            "worklog.update",
            "worklog.create"
        ]
    );
    let hist = ctx
        .get("/v1/sync-history?kind=worklog.&state=succeeded")
        .await;
    assert_eq!(hist["items"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn auto_mode_syncs_after_a_change_without_being_asked() {
    let ctx = Ctx::new("alice").await;
    let keys = ctx.issue_keys("WEB").await;
    let a = keys[2].as_str();
    ctx.put_ok(
        "auto-1",
        json!({"issue_key": a, "started_at": "2026-04-01T08:00:00Z",
        "duration_seconds": 1800, "sync": "auto"}),
    )
    .await;
    let e = ctx.wait_entry("auto-1", |e| e["state"] == "synced").await;
    let wid = e["worklog_id"].as_str().unwrap().to_owned();
    ctx.put_ok(
        "auto-1",
        json!({"issue_key": a, "started_at": "2026-04-01T08:00:00Z",
        "duration_seconds": 2700, "sync": "auto"}),
    )
    .await;
    ctx.wait_entry("auto-1", |e| {
        e["state"] == "synced" && e["jira_seconds"] == 2700
    })
    .await;
    let found = ours(&ctx, &[a]).await;
    let (_, w) = &found[e["id"].as_str().unwrap()][0];
    assert_eq!(w["id"], wid.as_str());
    assert_eq!(w["timeSpentSeconds"], 2700);
}

#[tokio::test]
async fn time_zones_land_on_the_right_date_and_minute() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("exchanges.jsonl");
    let mut cfg = SimConfig::cloud();
    cfg.record = Some(record.clone());
    let ctx = Ctx::with_sim("alice", cfg).await;
    let keys = ctx.issue_keys("WEB").await;
    let a = keys[3].as_str();
    // (entry, started_at, time_zone, the instant Jira must hold, `started` as sent)
    let cases = [
        (
            "tz-p13",
            "2026-03-01T23:30:00+13:00",
            None,
            "2026-03-01T10:30:00Z",
            "2026-03-01T23:30:00.000+1300",
        ),
        (
            "tz-m10",
            "2026-03-01T23:30:00-10:00",
            None,
            "2026-03-02T09:30:00Z",
            "2026-03-01T23:30:00.000-1000",
        ),
        (
            "tz-ber-before",
            "2026-03-28T23:30:00",
            Some("Europe/Berlin"),
            "2026-03-28T22:30:00Z",
            "2026-03-28T23:30:00.000+0100",
        ),
        (
            "tz-ber-after",
            "2026-03-29T23:30:00",
            Some("Europe/Berlin"),
            "2026-03-29T21:30:00Z",
            "2026-03-29T23:30:00.000+0200",
        ),
        (
            "tz-ny-before",
            "2026-03-07T23:30:00",
            Some("America/New_York"),
            "2026-03-08T04:30:00Z",
            "2026-03-07T23:30:00.000-0500",
        ),
        (
            "tz-ny-after",
            "2026-03-08T23:30:00",
            Some("America/New_York"),
            "2026-03-09T03:30:00Z",
            "2026-03-08T23:30:00.000-0400",
        ),
        (
            "tz-ny-fall",
            "2026-11-01T23:30:00",
            Some("America/New_York"),
            "2026-11-02T04:30:00Z",
            "2026-11-01T23:30:00.000-0500",
        ),
    ];
    for (src, started, zone, _, _) in &cases {
        let mut body = json!({"issue_key": a, "started_at": started, "duration_seconds": 900});
        if let Some(z) = zone {
            body["time_zone"] = json!(z);
        }
        ctx.put_ok(src, body).await;
        assert_eq!(ctx.sync(src).await["state"], "synced");
    }
    let found = ours(&ctx, &[a]).await;
    let sent: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|x: &Value| {
            x["method"] == "POST" && x["path"].as_str().unwrap().ends_with("/worklog")
        })
        .collect();
    assert_eq!(sent.len(), cases.len());
    for (src, _, _, instant, as_sent) in &cases {
        let e = ctx.get(&format!("/v1/time-entries/{src}")).await;
        let (_, w) = &found[e["id"].as_str().unwrap()][0];
        // Jira holds the right instant …
        assert_eq!(
            started_instant(w),
            chrono::DateTime::parse_from_rfc3339(instant).unwrap(),
            "{src}"
        );
        // … because `started` went out in the entry's own offset for that date.
        let body = sent.iter().find(|x| {
            let b = &x["request_body"];
            let b: Value = b
                .as_str()
                .map_or(b.clone(), |s| serde_json::from_str(s).unwrap());
            b["started"] == *as_sent
        });
        assert!(body.is_some(), "{src}: no POST with started {as_sent}");
        assert_eq!(
            e["started_at"].as_str().unwrap()[..16],
            as_sent[..16],
            "{src}"
        );
    }
}

#[tokio::test]
async fn invalid_entries_are_refused_recorded_and_never_sent() {
    let ctx = Ctx::new("alice").await;
    let keys = ctx.issue_keys("WEB").await;
    let a = keys[0].as_str();
    let cases = [
        (
            "bad-key",
            json!({"issue_key": "web-1", "started_at": "2026-03-01T10:00:00Z", "duration_seconds": 600}),
            "issue_key",
        ),
        (
            "no-issue",
            json!({"issue_key": "WEB-9999", "started_at": "2026-03-01T10:00:00Z", "duration_seconds": 600}),
            "issue_key",
        ),
        (
            "zero",
            json!({"issue_key": a, "started_at": "2026-03-01T10:00:00Z", "duration_seconds": 0}),
            "duration_seconds",
        ),
        (
            "negative",
            json!({"issue_key": a, "started_at": "2026-03-01T10:00:00Z", "duration_seconds": -60}),
            "duration_seconds",
        ),
        (
            "backwards",
            json!({"issue_key": a, "started_at": "2026-03-01T10:00:00Z", "ended_at": "2026-03-01T09:00:00Z"}),
            "ended_at",
        ),
    ];
    for (src, body, field) in &cases {
        let r = ctx.put(src, body.clone()).await;
        let p = crate::helpers::assert_problem(r, 422, "validation").await;
        assert!(p["errors"][field].is_string(), "{src}: {p}");
        // Nothing stored.
        let r = ctx
            .http
            .get(ctx.app.url(&format!("/v1/time-entries/{src}")))
            .bearer_auth(&ctx.t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let hist = ctx
        .get("/v1/sync-history?kind=worklog.validate&state=failed")
        .await;
    let mut subjects: Vec<&str> = hist["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["subject_id"].as_str().unwrap())
        .collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        ["backwards", "bad-key", "negative", "no-issue", "zero"]
    );
    assert_eq!(
        sim_count(&ctx.http, &ctx.sim, "POST", "worklog", None).await,
        0
    );
    assert_eq!(
        sim_count(&ctx.http, &ctx.sim, "PUT", "worklog", None).await,
        0
    );
}

#[tokio::test]
async fn a_user_without_work_logging_is_refused_before_anything_is_sent() {
    // vera may browse WEB but not log work.
    let ctx = Ctx::new("vera").await;
    let keys = ctx.issue_keys("WEB").await;
    for (src, key) in [("p-1", &keys[0]), ("p-2", &keys[1])] {
        let r = ctx
            .put(src, json!({"issue_key": key, "started_at": "2026-03-01T10:00:00Z", "duration_seconds": 600}))
            .await;
        let p = crate::helpers::assert_problem(r, 422, "validation").await;
        let msg = p["errors"]["issue_key"].as_str().unwrap();
        assert!(
            msg.contains("may not log work") && msg.contains(key.as_str()),
            "{p}"
        );
        // Nothing stored …
        let r = ctx
            .http
            .get(ctx.app.url(&format!("/v1/time-entries/{src}")))
            .bearer_auth(&ctx.t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    // … the refusal recorded …
    let hist = ctx
        .get("/v1/sync-history?kind=worklog.validate&state=failed")
        .await;
    let items = hist["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{hist}");
    assert!(items
        .iter()
        .all(|h| h["error"].as_str().unwrap().contains("may not log work")));
    // … Jira asked once per issue (cached), and no worklog ever sent.
    let again = ctx
        .put("p-1", json!({"issue_key": keys[0], "started_at": "2026-03-01T10:00:00Z", "duration_seconds": 900}))
        .await;
    crate::helpers::assert_problem(again, 422, "validation").await;
    assert_eq!(
        sim_count(&ctx.http, &ctx.sim, "GET", "mypermissions", Some(200)).await,
        2
    );
    assert_eq!(
        sim_count(&ctx.http, &ctx.sim, "POST", "worklog", None).await,
        0
    );
}

#[tokio::test]
async fn on_data_center_the_comment_goes_out_as_wiki_markup() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("exchanges.jsonl");
    let mut cfg = SimConfig::data_center();
    cfg.record = Some(record.clone());
    let ctx = Ctx::with_sim("alice", cfg).await;
    let keys = ctx.issue_keys("WEB").await;
    let a = keys[0].as_str();
    ctx.put_ok(
        "dc-1",
        json!({"issue_key": a, "started_at": "2026-03-29T23:30:00", "time_zone": "Europe/Berlin",
               "duration_seconds": 5400, "comment": "Pairing on **checkout** and `cart`"}),
    )
    .await;
    let e = ctx.sync("dc-1").await;
    assert_eq!(e["state"], "synced", "{e}");
    let sent: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|x| x["method"] == "POST" && x["path"].as_str().unwrap().ends_with("/worklog"))
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0]["path"]
        .as_str()
        .unwrap()
        .starts_with("/rest/api/2/"));
    let b = &sent[0]["request_body"];
    let b: Value = b
        .as_str()
        .map_or(b.clone(), |s| serde_json::from_str(s).unwrap());
    // Wiki markup, a plain string: *bold* and {{monospace}}.
    assert_eq!(
        b["comment"].as_str().map(str::trim_end),
        Some("Pairing on *checkout* and {{cart}}"),
        "{b}"
    );
    assert_eq!(b["started"], "2026-03-29T23:30:00.000+0200");
    let w = sim_worklogs(&ctx.http, &ctx.sim, a).await;
    let w = w
        .iter()
        .find(|w| w["id"] == e["worklog_id"])
        .unwrap_or_else(|| panic!("{w:?}"));
    assert_eq!(w["timeSpentSeconds"], 5400);
    assert_eq!(
        w["comment"].as_str().map(str::trim_end),
        Some("Pairing on *checkout* and {{cart}}"),
        "{w}"
    );
}

#[tokio::test]
async fn a_worklog_changed_in_jira_is_a_conflict_settled_either_way() {
    let ctx = Ctx::new("alice").await;
    let keys = ctx.issue_keys("WEB").await;
    let a = keys[4].as_str();
    ctx.put_ok("c-1", json!({"issue_key": a, "started_at": "2026-03-03T09:00:00Z", "duration_seconds": 3600, "comment": "ours"}))
        .await;
    let e = ctx.sync("c-1").await;
    let wid = e["worklog_id"].as_str().unwrap().to_owned();

    // Someone edits the worklog in Jira.
    sim_put(
        &ctx.http,
        &ctx.sim,
        &format!("/_sim/issues/{a}/worklogs/{wid}"),
        json!({"as": "alice", "timeSpentSeconds": 7200, "started": "2026-03-03T10:00:00.000+0000"}),
    )
    .await;
    let e = ctx.wait_entry("c-1", |e| e["state"] == "conflict").await;
    assert_eq!(e["remote"]["time_spent_seconds"], 7200);
    assert_eq!(e["duration_seconds"], 3600, "our version is kept beside it");
    // A plain sync refuses to pick a side.
    let r = ctx.post("/v1/time-entries/c-1/sync", json!({})).await;
    crate::helpers::assert_problem(r, 409, "conflict").await;

    // prefer=local: ours goes back to Jira.
    let r = ctx
        .post("/v1/time-entries/c-1/sync?prefer=local", json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let w = sim_worklogs(&ctx.http, &ctx.sim, a).await;
    let w = w.iter().find(|w| w["id"] == wid.as_str()).unwrap();
    assert_eq!(w["timeSpentSeconds"], 3600);
    assert_eq!(
        started_instant(w),
        chrono::DateTime::parse_from_rfc3339("2026-03-03T09:00:00Z").unwrap()
    );
    let e = ctx.get("/v1/time-entries/c-1").await;
    assert_eq!(e["state"], "synced");

    // Changed again in Jira; prefer=remote: the entry takes Jira's version.
    sim_put(
        &ctx.http,
        &ctx.sim,
        &format!("/_sim/issues/{a}/worklogs/{wid}"),
        json!({"as": "alice", "timeSpentSeconds": 5400}),
    )
    .await;
    ctx.wait_entry("c-1", |e| e["state"] == "conflict").await;
    let writes_before = sim_count(&ctx.http, &ctx.sim, "PUT", "worklog", None).await;
    let r = ctx
        .post("/v1/time-entries/c-1/sync?prefer=remote", json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["state"], "synced");
    assert_eq!(e["duration_seconds"], 5400);
    assert_eq!(
        sim_count(&ctx.http, &ctx.sim, "PUT", "worklog", None).await,
        writes_before,
        "nothing written to Jira"
    );

    // Deleted in Jira; prefer=local adds it again.
    let r = ctx
        .http
        .delete(format!(
            "{}/_sim/issues/{a}/worklogs/{wid}?as=alice",
            ctx.sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let e = ctx.wait_entry("c-1", |e| e["state"] == "conflict").await;
    assert_eq!(e["remote"]["deleted"], true);
    let e: Value = ctx
        .post("/v1/time-entries/c-1/sync?prefer=local", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["state"], "synced");
    let found = ours(&ctx, &[a]).await;
    let wl = &found[e["id"].as_str().unwrap()];
    assert_eq!(wl.len(), 1);
    assert_eq!(wl[0].1["timeSpentSeconds"], 5400);
    let conflicts = ctx.get("/v1/sync-history?state=conflict").await;
    assert_eq!(conflicts["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn bulk_sync_of_600_entries_at_20_requests_a_second() {
    let ctx = Ctx::new("alice").await;
    let mut keys = ctx.issue_keys("WEB").await;
    keys.extend(ctx.issue_keys("OPS").await);
    let base = chrono::DateTime::parse_from_rfc3339("2026-02-02T08:00:00+01:00").unwrap();
    let mut sources = Vec::new();
    for i in 0..600_i64 {
        let src = format!("bulk-{i:03}");
        let started = base + chrono::Duration::minutes(i * 20);
        ctx.put_ok(
            &src,
            json!({"issue_key": keys[usize::try_from(i).unwrap() % keys.len()],
            "owner": "u-1", "started_at": started.to_rfc3339(), "duration_seconds": 600 + i}),
        )
        .await;
        sources.push(src);
    }
    sim_put(
        &ctx.http,
        &ctx.sim,
        "/_sim/pacing",
        json!({"rate": 20, "burst": 20, "per_issue_write_limit": true, "worklog_feed_delay_ms": 0}),
    )
    .await;
    ctx.http
        .post(format!("{}/_sim/stats/reset", ctx.sim.base_url()))
        .send()
        .await
        .unwrap();

    let r = ctx
        .post(
            "/v1/time-entries/sync",
            json!({"owner": "u-1",
        "from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["total"], 600);
    let job_id: jira_bridge_store::jobs::JobId = job["job_id"].as_str().unwrap().parse().unwrap();
    let store = ctx.app.store().await;
    let tenant: jira_bridge_store::TenantId = ctx.t.id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let job = loop {
        let j = store.get_job(&tenant, &job_id).await.unwrap().unwrap();
        if j.state.is_terminal() {
            break j;
        }
        assert!(Instant::now() < deadline, "job did not finish: {j:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(job.counts.total, 600);
    assert_eq!(job.counts.succeeded, 600, "{job:?}");
    assert_eq!(job.counts.failed, 0);

    // Every entry synced, exactly one worklog each.
    let mut synced = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/time-entries?state=synced&limit=500&cursor={c}"),
            None => "/v1/time-entries?state=synced&limit=500".into(),
        };
        let page = ctx.get(&path).await;
        synced += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(synced, 600);
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found = ours(&ctx, &key_refs).await;
    assert_eq!(found.len(), 600);
    assert!(found.values().all(|w| w.len() == 1), "duplicates");

    let posts = sim_count(&ctx.http, &ctx.sim, "POST", "worklog", Some(201)).await;
    assert_eq!(posts, 600);
    let stats = sim_get(&ctx.http, &ctx.sim, "/_sim/stats").await;
    let total = stats["total"].as_u64().unwrap();
    let limited = stats["rate_limited"].as_u64().unwrap();
    eprintln!("bulk: {total} calls, {limited} answered 429, {posts} worklogs created");
    assert!(
        limited * 50 < total,
        "{limited} of {total} calls answered 429"
    );
}

#[tokio::test]
async fn concurrent_syncs_of_one_entry_in_one_process_send_one_worklog() {
    let ctx = Ctx::new("alice").await;
    let keys = ctx.issue_keys("WEB").await;
    let key = keys[0].as_str();
    // Slow answers, so that the syncs overlap while the first one waits for Jira.
    sim_put(
        &ctx.http,
        &ctx.sim,
        "/_sim/pacing",
        json!({"latency_ms": 300}),
    )
    .await;
    ctx.put_ok(
        "dup-1",
        json!({"issue_key": key, "started_at": "2026-03-02T09:00:00+01:00",
        "duration_seconds": 1800}),
    )
    .await;
    let answers = futures::future::join_all(
        (0..4).map(|_| ctx.post("/v1/time-entries/dup-1/sync", json!({}))),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    // The first sync does the work; the others are told it is under way.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let e = ctx.get("/v1/time-entries/dup-1").await;
    assert_eq!(e["state"], "synced");
    let found = ours(&ctx, &[key]).await;
    let id = e["id"].as_str().unwrap();
    assert_eq!(found[id].len(), 1, "exactly one worklog: {found:?}");
}
