//! Exports and releases over HTTP: the real service (with its job runner) against
//! jira-sim, checked through the simulator's state and call counters.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{assert_problem, TestApp, TestTenant};
use crate::tickets_api::wait_job;

async fn sim_get(sim: &Sim, path: &str) -> Value {
    reqwest::get(sim.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sim_post(sim: &Sim, path: &str, body: Value) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(sim.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn reset_stats(sim: &Sim) {
    assert!(sim_post(sim, "/_sim/stats/reset", json!({}))
        .await
        .is_success());
}

/// Calls the simulator answered with `method` on routes ending in `suffix`.
async fn calls(sim: &Sim, method: &str, suffix: &str) -> u64 {
    let s = sim_get(sim, "/_sim/stats").await;
    s["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["endpoint"].as_str().unwrap().ends_with(suffix))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// Calls other than GET (writes; the only POST reads are searches and bulk fetch).
async fn writes(sim: &Sim) -> Vec<Value> {
    let s = sim_get(sim, "/_sim/stats").await;
    s["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let e = r["endpoint"].as_str().unwrap();
            r["method"] != "GET" && !e.contains("/search") && !e.ends_with("/bulkfetch")
        })
        .cloned()
        .collect()
}

/// The simulator's issues of a project carrying `label`, by summary.
async fn issues_labelled(sim: &Sim, project: &str, label: &str) -> HashMap<String, Value> {
    let v = sim_get(sim, &format!("/_sim/issues?project={project}")).await;
    v.as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == label))
        })
        .map(|i| (i["summary"].as_str().unwrap().to_owned(), i.clone()))
        .collect()
}

async fn connection(app: &TestApp, t: &TestTenant, sim: &Sim, dc: bool) -> String {
    let body = if dc {
        json!({"name": "DC", "kind": "dc_pat", "base_url": sim.h.base_url(), "token": sim.user("alice")["pat"]})
    } else {
        let mut b = cloud_token_body(sim, "alice");
        b["name"] = json!("Cloud");
        b
    };
    let c = TestApp::json_ok(app.post(t, "/v1/connections", body).await, 201).await;
    c["id"].as_str().unwrap().to_owned()
}

/// A tree of `epics` × `stories`, every item labelled `tag`.
fn tree(tag: &str, epics: usize, stories: usize) -> Value {
    let list: Vec<Value> = (0..epics)
        .map(|e| {
            json!({
                "source": format!("{tag}-e{e}"),
                "summary": format!("{tag} epic {e}"),
                "description": format!("Epic **{e}** of the {tag} plan."),
                "labels": [tag],
                "stories": (0..stories).map(|s| json!({
                    "source": format!("{tag}-e{e}-s{s}"),
                    "summary": format!("{tag} story {e}.{s}"),
                    "description": "As a shopper I want this.",
                    "acceptance_criteria": ["It works", "It is fast"],
                    "labels": [tag, "story"],
                    "story_points": (s % 5) + 1,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(list)
}

fn export_body(con: &str, project: &str, epics: Value, dry_run: bool) -> Value {
    json!({"connection_id": con, "project_key": project, "dry_run": dry_run, "epics": epics})
}

async fn run_export(app: &TestApp, t: &TestTenant, body: Value) -> (String, Value) {
    let a = TestApp::json_ok(app.post(t, "/v1/exports", body).await, 202).await;
    let exp = a["export_id"].as_str().unwrap().to_owned();
    assert!(exp.starts_with("exp_"), "{a}");
    let job = wait_job(app, t, a["job_id"].as_str().unwrap()).await;
    (exp, job)
}

/// Every event of a type (all pages).
async fn events_of(app: &TestApp, t: &TestTenant, kind: &str) -> Vec<Value> {
    let mut after = 0;
    let mut out = Vec::new();
    loop {
        let p = TestApp::json_ok(
            app.get(t, &format!("/v1/events?after={after}&limit=500"))
                .await,
            200,
        )
        .await;
        for e in p["items"].as_array().unwrap() {
            if e["type"] == kind {
                out.push(e.clone());
            }
        }
        after = p["next_after"].as_i64().unwrap();
        if p["has_more"] != true {
            return out;
        }
    }
}

/// Poll until `f` holds (bounded).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn big_export(dc: bool, project: &str) {
    let sim = if dc {
        Sim::data_center().await
    } else {
        Sim::cloud().await
    };
    let app = TestApp::spawn().await;
    let t = app.create_tenant("stories").await;
    let con = connection(&app, &t, &sim, dc).await;
    let epics = tree("big", 20, 25);

    // Dry run: the exact plan, no write call.
    reset_stats(&sim).await;
    let plan = TestApp::json_ok(
        app.post(
            &t,
            "/v1/exports",
            export_body(&con, project, epics.clone(), true),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(plan["counts"]["create"], 520, "{}", plan["counts"]);
    assert_eq!(plan["counts"]["invalid"], 0, "{plan}");
    assert_eq!(plan["epics"].as_array().unwrap().len(), 20);
    assert_eq!(plan["epics"][3]["stories"].as_array().unwrap().len(), 25);
    assert_eq!(plan["epics"][3]["stories"][7]["action"], "create");
    let style = if dc {
        "data-center"
    } else if project == "WEB" {
        "team-managed"
    } else {
        "company-managed"
    };
    assert_eq!(plan["project_style"], style);
    let link_field = if dc { "customfield_10100" } else { "parent" };
    assert_eq!(plan["flavor"]["link_field"], link_field);
    assert!(writes(&sim).await.is_empty(), "{:?}", writes(&sim).await);
    assert_eq!(issues_labelled(&sim, project, "big").await.len(), 0);

    // The export: epics first, then stories, ≤ 50 per bulk create.
    reset_stats(&sim).await;
    let (exp, job) = run_export(&app, &t, export_body(&con, project, epics, false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["succeeded"], 520);
    let bulk = calls(&sim, "POST", "/issue/bulk").await;
    assert!(bulk <= 11, "{bulk} bulk creates");
    assert_eq!(calls(&sim, "POST", "/issue").await, 0, "no single creates");
    let non_bulk_writes: Vec<Value> = writes(&sim)
        .await
        .into_iter()
        .filter(|r| !r["endpoint"].as_str().unwrap().ends_with("/issue/bulk"))
        .collect();
    assert!(non_bulk_writes.is_empty(), "{non_bulk_writes:?}");

    let issues = issues_labelled(&sim, project, "big").await;
    assert_eq!(issues.len(), 520);
    for e in 0..20 {
        let epic = &issues[&format!("big epic {e}")];
        assert_eq!(epic["issuetype"], "Epic");
        let epic_key = epic["key"].as_str().unwrap();
        if dc {
            let full = sim_get(&sim, &format!("/_sim/issues/{epic_key}")).await;
            assert_eq!(full["fields"]["customfield_10101"], format!("big epic {e}"));
        }
        for s in 0..25 {
            let story = &issues[&format!("big story {e}.{s}")];
            assert_eq!(story["issuetype"], "Story");
            if dc {
                if s % 8 != 0 {
                    continue; // a sample per epic: one full read each
                }
                let full = sim_get(
                    &sim,
                    &format!("/_sim/issues/{}", story["key"].as_str().unwrap()),
                )
                .await;
                let link = &full["fields"]["customfield_10100"];
                let got = link
                    .as_str()
                    .or_else(|| link["key"].as_str())
                    .unwrap_or_default();
                assert_eq!(got, epic_key, "{}", full["fields"]);
                assert_eq!(
                    full["fields"]["customfield_10016"].as_f64(),
                    Some(((s % 5) + 1) as f64)
                );
            } else {
                assert_eq!(story["parent"], epic_key, "{story}");
            }
        }
    }
    if !dc {
        // Acceptance criteria: a task list in the description.
        let key = issues["big story 0.0"]["key"].as_str().unwrap().to_owned();
        let full = sim_get(&sim, &format!("/_sim/issues/{key}")).await;
        let text = full["fields"]["description"].to_string();
        assert!(text.contains("taskList"), "{text}");
        assert!(text.contains("Acceptance criteria"), "{text}");
        assert_eq!(full["fields"]["customfield_10016"].as_f64(), Some(1.0));
    }

    let v = TestApp::json_ok(app.get(&t, &format!("/v1/exports/{exp}")).await, 200).await;
    assert_eq!(v["state"], "succeeded", "{}", v["state"]);
    assert_eq!(v["counts"]["created"], 520);
    let e0 = &v["epics"][0];
    assert_eq!(e0["issue_key"], issues["big epic 0"]["key"]);
    assert_eq!(e0["stories"][24]["state"], "succeeded");
    assert_eq!(e0["stories"][24]["outcome"], "created");
    assert_eq!(
        e0["stories"][24]["issue_key"],
        issues["big story 0.24"]["key"]
    );
    eventually("export.finished", || async {
        events_of(&app, &t, "export.finished").await.len() == 1
    })
    .await;
    let ev = &events_of(&app, &t, "export.finished").await[0];
    assert_eq!(ev["subject"], exp.as_str(), "{ev}");
    assert_eq!(ev["data"]["created"], 520, "{ev}");
    assert_eq!(ev["data"]["state"], "succeeded", "{ev}");
    let list = TestApp::json_ok(app.get(&t, "/v1/exports").await, 200).await;
    assert_eq!(list["items"][0]["id"], exp.as_str());
}

#[tokio::test]
async fn export_520_issues_team_managed() {
    Box::pin(big_export(false, "WEB")).await;
}

#[tokio::test]
async fn export_520_issues_company_managed() {
    Box::pin(big_export(false, "OPS")).await;
}

#[tokio::test]
async fn export_520_issues_data_center_epic_link() {
    Box::pin(big_export(true, "OPS")).await;
}

#[tokio::test]
async fn reexport_creates_only_new_items_updates_on_request_and_rolls_back_its_own() {
    // Boxed: the test future is too large for the test thread's stack.
    Box::pin(reexport_creates_only_new_items_updates_on_request_and_rolls_back_its_own_body())
        .await;
}

async fn reexport_creates_only_new_items_updates_on_request_and_rolls_back_its_own_body() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("stories").await;
    let con = connection(&app, &t, &sim, false).await;
    let epics = tree("re", 3, 4);
    let (_, job) = run_export(&app, &t, export_body(&con, "WEB", epics.clone(), false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(issues_labelled(&sim, "WEB", "re").await.len(), 15);

    // The same tree again: nothing is created.
    reset_stats(&sim).await;
    let (second, job) = run_export(&app, &t, export_body(&con, "WEB", epics.clone(), false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(calls(&sim, "POST", "/issue/bulk").await, 0);
    assert!(writes(&sim).await.is_empty());
    assert_eq!(issues_labelled(&sim, "WEB", "re").await.len(), 15);
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/exports/{second}")).await, 200).await;
    assert_eq!(v["counts"]["existing"], 15);
    assert_eq!(v["counts"]["created"], 0);
    assert_eq!(v["epics"][1]["outcome"], "existing");

    // Two more stories: the preview says so, the export creates exactly two.
    let mut grown = epics.clone();
    for (e, s) in [(0, 4), (2, 4)] {
        grown[e]["stories"].as_array_mut().unwrap().push(json!({
            "source": format!("re-e{e}-s{s}"), "summary": format!("re story {e}.{s}"), "labels": ["re"]
        }));
    }
    let plan = TestApp::json_ok(
        app.post(
            &t,
            "/v1/exports",
            export_body(&con, "WEB", grown.clone(), true),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(plan["counts"]["create"], 2, "{}", plan["counts"]);
    assert_eq!(plan["counts"]["existing"], 15);
    assert_eq!(plan["epics"][0]["stories"][4]["action"], "create");
    assert_eq!(plan["epics"][0]["action"], "existing");
    assert!(plan["epics"][0]["issue_key"].is_string());
    reset_stats(&sim).await;
    let (third, job) = run_export(&app, &t, export_body(&con, "WEB", grown.clone(), false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(calls(&sim, "POST", "/issue/bulk").await, 1);
    let issues = issues_labelled(&sim, "WEB", "re").await;
    assert_eq!(issues.len(), 17);
    assert_eq!(issues["re story 0.4"]["parent"], issues["re epic 0"]["key"]);
    assert_eq!(issues["re story 2.4"]["parent"], issues["re epic 2"]["key"]);

    // Update of already-linked items, on request.
    let mut renamed = grown.clone();
    renamed[1]["summary"] = json!("re epic 1 (renamed)");
    let mut body = export_body(&con, "WEB", renamed, false);
    body["update_existing"] = json!(true);
    let (_, job) = run_export(&app, &t, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let issues = issues_labelled(&sim, "WEB", "re").await;
    assert_eq!(issues.len(), 17);
    assert!(
        issues.contains_key("re epic 1 (renamed)"),
        "{:?}",
        issues.keys()
    );

    // Rolling back the third export deletes only the two stories it created.
    let rb = TestApp::json_ok(
        app.post(&t, &format!("/v1/exports/{third}/rollback"), json!({}))
            .await,
        202,
    )
    .await;
    let job = wait_job(&app, &t, rb["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let issues = issues_labelled(&sim, "WEB", "re").await;
    assert_eq!(issues.len(), 15);
    assert!(!issues.contains_key("re story 0.4"));
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/exports/{third}")).await, 200).await;
    assert_eq!(v["state"], "rolled_back", "{}", v["state"]);
    assert_eq!(v["counts"]["deleted"], 2);
    assert_eq!(
        v["epics"][0]["stories"][4]["rollback"]["outcome"],
        "deleted"
    );
    // Nothing to roll back in an export that created nothing.
    assert_problem(
        app.post(&t, &format!("/v1/exports/{second}/rollback"), json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn an_invalid_epic_holds_its_stories_until_fixed() {
    // Boxed: the test future is too large for the test thread's stack.
    Box::pin(an_invalid_epic_holds_its_stories_until_fixed_body()).await;
}

async fn an_invalid_epic_holds_its_stories_until_fixed_body() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("stories").await;
    let con = connection(&app, &t, &sim, false).await;
    let mut epics = tree("hold", 3, 3);
    epics[1]["labels"] = json!(["hold", "bad label"]);

    let plan = TestApp::json_ok(
        app.post(
            &t,
            "/v1/exports",
            export_body(&con, "OPS", epics.clone(), true),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(plan["epics"][1]["action"], "invalid");
    assert!(plan["epics"][1]["errors"]["labels"].is_string(), "{plan}");
    assert_eq!(plan["epics"][1]["stories"][0]["action"], "blocked");
    assert_eq!(plan["counts"]["create"], 8);
    assert_eq!(plan["counts"]["blocked"], 3);

    let (exp, job) = run_export(&app, &t, export_body(&con, "OPS", epics.clone(), false)).await;
    assert_eq!(job["state"], "partially_failed", "{job}");
    assert_eq!(job["failed"], 1);
    assert_eq!(job["held"], 3);
    assert_eq!(job["succeeded"], 8);
    assert_eq!(issues_labelled(&sim, "OPS", "hold").await.len(), 8);
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/exports/{exp}")).await, 200).await;
    assert_eq!(v["state"], "partially_failed");
    assert_eq!(v["epics"][1]["state"], "failed");
    assert_eq!(
        v["epics"][1]["error"]["field"], "labels",
        "{}",
        v["epics"][1]
    );
    assert_eq!(v["epics"][1]["stories"][2]["state"], "held");
    assert_eq!(v["counts"]["held"], 3);

    // Fix the input and post it again: the epic and its held stories are created
    // under it, nothing else.
    epics[1]["labels"] = json!(["hold"]);
    reset_stats(&sim).await;
    let (_, job) = run_export(&app, &t, export_body(&con, "OPS", epics, false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(calls(&sim, "POST", "/issue/bulk").await, 2);
    let issues = issues_labelled(&sim, "OPS", "hold").await;
    assert_eq!(issues.len(), 12);
    for s in 0..3 {
        assert_eq!(
            issues[&format!("hold story 1.{s}")]["parent"],
            issues["hold epic 1"]["key"]
        );
    }

    // Retrying the first job now finds everything linked: it finishes, nothing new.
    let old_job = v["job_id"].as_str().unwrap();
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{old_job}/retry")))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job = wait_job(&app, &t, old_job).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(issues_labelled(&sim, "OPS", "hold").await.len(), 12);
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/exports/{exp}")).await, 200).await;
    assert_eq!(v["epics"][1]["stories"][2]["state"], "succeeded");
    assert_eq!(v["epics"][1]["stories"][2]["outcome"], "existing");
}

#[tokio::test]
async fn rollback_deletes_what_it_created_and_keeps_what_changed_in_jira() {
    // Boxed: the test future is too large for the test thread's stack.
    Box::pin(rollback_deletes_what_it_created_and_keeps_what_changed_in_jira_body()).await;
}

async fn rollback_deletes_what_it_created_and_keeps_what_changed_in_jira_body() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("stories").await;
    let con = connection(&app, &t, &sim, false).await;
    let (exp, job) = run_export(&app, &t, export_body(&con, "WEB", tree("rb", 2, 3), false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let before = issues_labelled(&sim, "WEB", "rb").await;
    assert_eq!(before.len(), 8);
    let all_web = sim_get(&sim, "/_sim/issues?project=WEB").await;
    let total_before = all_web.as_array().unwrap().len();

    // In Jira meanwhile: bob edits one story's summary and moves another to the
    // other epic.
    let edited = before["rb story 0.0"]["key"].as_str().unwrap().to_owned();
    let moved = before["rb story 1.0"]["key"].as_str().unwrap().to_owned();
    let epic0 = before["rb epic 0"]["key"].as_str().unwrap().to_owned();
    assert!(sim_post(
        &sim,
        &format!("/_sim/issues/{edited}/edit"),
        json!({"as": "bob", "fields": {"summary": "rb story 0.0 (edited by bob)"}})
    )
    .await
    .is_success());
    assert!(sim_post(
        &sim,
        &format!("/_sim/issues/{moved}/edit"),
        json!({"as": "bob", "fields": {"parent": {"key": epic0}}})
    )
    .await
    .is_success());

    let rb = TestApp::json_ok(
        app.post(&t, &format!("/v1/exports/{exp}/rollback"), json!({}))
            .await,
        202,
    )
    .await;
    // Asking again answers the same job.
    let again = TestApp::json_ok(
        app.post(&t, &format!("/v1/exports/{exp}/rollback"), json!({}))
            .await,
        202,
    )
    .await;
    assert_eq!(again["job_id"], rb["job_id"]);
    let job = wait_job(&app, &t, rb["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    // Kept: the edited story, the moved story, and epic 0 which still has them.
    let after = sim_get(&sim, "/_sim/issues?project=WEB").await;
    let keys: Vec<&str> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    let v = TestApp::json_ok(app.get(&t, &format!("/v1/exports/{exp}")).await, 200).await;
    assert_eq!(keys.len(), total_before - 5, "{v}");
    for k in [&edited, &moved, &epic0] {
        assert!(keys.contains(&k.as_str()), "{k} should be kept");
    }
    for s in [
        "rb epic 1",
        "rb story 0.1",
        "rb story 0.2",
        "rb story 1.1",
        "rb story 1.2",
    ] {
        let k = before[s]["key"].as_str().unwrap();
        assert!(!keys.contains(&k), "{s} ({k}) should be deleted");
    }
    assert_eq!(v["state"], "rolled_back");
    assert_eq!(v["counts"]["deleted"], 5);
    assert_eq!(v["counts"]["kept"], 3);
    let e0 = &v["epics"][0];
    assert_eq!(e0["rollback"]["outcome"], "kept");
    assert_eq!(e0["rollback"]["reason"], "has_children");
    assert_eq!(e0["stories"][0]["rollback"]["reason"], "edited");
    assert_eq!(
        v["epics"][1]["stories"][0]["rollback"]["reason"],
        "reparented"
    );
    assert_eq!(v["epics"][1]["rollback"]["outcome"], "deleted");

    // Deleted items are forgotten: exporting again recreates exactly them.
    let (_, job) = run_export(&app, &t, export_body(&con, "WEB", tree("rb", 2, 3), false)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let now = sim_get(&sim, "/_sim/issues?project=WEB").await;
    assert_eq!(now.as_array().unwrap().len(), total_before);
}

async fn transition_to_done(sim: &Sim, key: &str) {
    for to in ["Done", "In Progress", "In Review", "Done"] {
        let st = sim_post(
            sim,
            &format!("/_sim/issues/{key}/transition"),
            json!({"as": "alice", "to": to}),
        )
        .await;
        let status =
            sim_get(sim, &format!("/_sim/issues/{key}")).await["fields"]["status"]["name"].clone();
        if status == "Done" {
            return;
        }
        let _ = st;
    }
    panic!("{key} could not be moved to Done");
}

async fn check_release(app: &TestApp, t: &TestTenant, id: &str) -> Value {
    TestApp::json_ok(
        app.post(t, &format!("/v1/releases/{id}/check"), json!({}))
            .await,
        200,
    )
    .await
}

#[tokio::test]
async fn a_release_creates_one_epic_per_platform_and_completes_once() {
    // Boxed: the test future is too large for the test thread's stack.
    Box::pin(a_release_creates_one_epic_per_platform_and_completes_once_body()).await;
}

async fn a_release_creates_one_epic_per_platform_and_completes_once_body() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("releases").await;
    let con = connection(&app, &t, &sim, false).await;
    let cfg = TestApp::json_ok(
        app.post(
            &t,
            "/v1/configs",
            json!({
                "name": "Mobile and web",
                "connection_id": con,
                "targets": [
                    {"name": "WEB", "project_key": "WEB", "issue_type": "Epic", "completed_status": "Done"},
                    {"name": "PLAY_STORE", "project_key": "OPS", "issue_type": "Task", "labels": ["android"]},
                    {"name": "APP_STORE", "project_key": "OPS", "issue_type": "Task", "labels": ["ios"],
                     "summary_template": "{platform}: ship {version} on {planned_date}"}
                ]
            }),
        )
        .await,
        201,
    )
    .await;
    let cfg = cfg["id"].as_str().unwrap();
    assert_problem(
        app.post(
            &t,
            "/v1/releases",
            json!({"config_id": cfg, "version": "1.2.0", "platforms": ["WEB", "TV"]}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    let r = TestApp::json_ok(
        app.post(
            &t,
            "/v1/releases",
            json!({"config_id": cfg, "version": "1.2.0", "platforms": ["WEB", "PLAY_STORE", "APP_STORE"],
                   "planned_date": "2026-12-01", "description": "Winter release."}),
        )
        .await,
        202,
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rel_"));
    let job = wait_job(&app, &t, r["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    let v = TestApp::json_ok(app.get(&t, &format!("/v1/releases/{id}")).await, 200).await;
    let platforms = v["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 3);
    let mut keys = HashMap::new();
    for p in platforms {
        let key = p["issue_key"].as_str().unwrap().to_owned();
        assert!(p["url"].as_str().unwrap().ends_with(&key));
        let issue = sim_get(&sim, &format!("/_sim/issues/{key}")).await;
        assert_eq!(issue["fields"]["issuetype"]["name"], "Epic");
        let labels = issue["fields"]["labels"].to_string();
        assert!(
            labels.contains("\"release\"") && labels.contains("\"v1.2.0\""),
            "{labels}"
        );
        keys.insert(p["platform"].as_str().unwrap().to_owned(), key);
    }
    let app_store = sim_get(&sim, &format!("/_sim/issues/{}", keys["APP_STORE"])).await;
    assert_eq!(
        app_store["fields"]["summary"],
        "APP_STORE: ship 1.2.0 on 2026-12-01"
    );
    let web = sim_get(&sim, &format!("/_sim/issues/{}", keys["WEB"])).await;
    assert_eq!(web["fields"]["summary"], "Release 1.2.0 (WEB)");

    let c = check_release(&app, &t, &id).await;
    assert_eq!(c["complete"], false);

    transition_to_done(&sim, &keys["WEB"]).await;
    let c = check_release(&app, &t, &id).await;
    assert_eq!(c["complete"], false);
    let by: HashMap<String, Value> = c["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["platform"].as_str().unwrap().to_owned(), p.clone()))
        .collect();
    assert_eq!(by["WEB"]["complete"], true, "{}", by["WEB"]);
    assert_eq!(by["WEB"]["status"], "Done");
    assert_eq!(by["PLAY_STORE"]["complete"], false);
    assert!(events_of(&app, &t, "release.completed").await.is_empty());

    transition_to_done(&sim, &keys["PLAY_STORE"]).await;
    transition_to_done(&sim, &keys["APP_STORE"]).await;
    let c = check_release(&app, &t, &id).await;
    assert_eq!(c["complete"], true, "{c}");
    assert!(c["completed_at"].is_string());
    let c = check_release(&app, &t, &id).await;
    assert_eq!(c["complete"], true);
    let evs = events_of(&app, &t, "release.completed").await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["subject"], id.as_str());
    assert_eq!(evs[0]["data"]["platforms"].as_array().unwrap().len(), 3);
    assert_eq!(evs[0]["data"]["version"], "1.2.0");
    let list = TestApp::json_ok(app.get(&t, "/v1/releases").await, 200).await;
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["complete"], true);
}
