//! Core REST behaviour over HTTP: auth, metadata, create/get/edit, search.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn auth_server_info_and_myself() {
    let s = cloud().await;
    let r = s
        .http
        .get(s.h.url("/rest/api/3/serverInfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["deploymentType"], "Cloud");
    assert_eq!(v["baseUrl"], s.h.base_url());

    let r = s
        .http
        .get(s.h.url("/rest/api/3/myself"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .http
        .get(s.h.url("/rest/api/3/myself"))
        .basic_auth("alice@example.com", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["errorMessages"].is_array());

    let (st, me) = s.get("kiri", "/rest/api/3/myself").await;
    assert_eq!(st, 200);
    assert_eq!(me["timeZone"], "Pacific/Auckland");
    assert_eq!(me["emailAddress"], "kiri@example.com");
    assert!(me["accountId"].is_string());
}

#[tokio::test]
async fn projects_paged_and_permissions() {
    let s = cloud().await;
    let (st, v) = s
        .get("alice", "/rest/api/3/project/search?maxResults=1")
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["total"], 2);
    assert_eq!(v["values"].as_array().unwrap().len(), 1);
    assert_eq!(v["isLast"], false);
    assert!(v["nextPage"].is_string());
    // Vera cannot browse OPS.
    let (_, v) = s.get("vera", "/rest/api/3/project/search").await;
    assert_eq!(v["total"], 1);
    assert_eq!(s.get("vera", "/rest/api/3/project/OPS").await.0, 404);
    let (st, p) = s.get("alice", "/rest/api/3/project/WEB").await;
    assert_eq!(st, 200);
    assert_eq!(p["style"], "next-gen");
    assert_eq!(p["simplified"], true);
    // The second site has its own project.
    let (st, v) = s
        .get("alice", "/site/globex/rest/api/3/project/search")
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["values"][0]["key"], "GLX");
}

#[tokio::test]
async fn createmeta_lists_required_fields_and_allowed_values() {
    let s = cloud().await;
    let (st, v) = s
        .get("alice", "/rest/api/3/issue/createmeta/OPS/issuetypes")
        .await;
    assert_eq!(st, 200);
    let bug = v["issueTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Bug")
        .unwrap()
        .clone();
    let (st, f) = s
        .get(
            "alice",
            &format!(
                "/rest/api/3/issue/createmeta/OPS/issuetypes/{}",
                bug["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(st, 200);
    let fields = f["fields"].as_array().unwrap();
    let sev = fields.iter().find(|x| x["name"] == "Severity").unwrap();
    assert_eq!(sev["required"], true);
    assert_eq!(sev["allowedValues"].as_array().unwrap().len(), 3);
    let region = fields.iter().find(|x| x["name"] == "Region").unwrap();
    assert_eq!(region["schema"]["type"], "option-with-child");
    assert!(region["allowedValues"][0]["children"].is_array());
    assert_eq!(
        s.get(
            "alice",
            "/rest/api/3/issue/createmeta/OPS/issuetypes?maxResults=500"
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn create_validation_and_round_trip() {
    let s = cloud().await;
    // Missing summary, bad priority, invalid ADF.
    let (st, e) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "priority": {"name": "Urgent"}, "description": "plain"}}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errors"]["summary"].is_string());
    assert!(e["errors"]["priority"].is_string());
    assert!(e["errors"]["description"].is_string());
    // Summary limit.
    let long = "x".repeat(256);
    let (st, e) = s
        .post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": long}}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        e["errors"]["summary"],
        "Summary must be less than 255 characters."
    );
    // Required custom field on OPS Bug.
    let (st, e) = s
        .post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Bug"}, "summary": "s"}}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(e["errors"]["customfield_10020"], "Severity is required.");
    // Field not on screen.
    let (st, e) = s
        .post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Epic"}, "summary": "s", "customfield_10016": 3}}))
        .await;
    assert_eq!(st, 400);
    assert!(e["errors"]["customfield_10016"]
        .as_str()
        .unwrap()
        .contains("cannot be set"));
    // Sub-task without parent.
    let (st, e) = s
        .post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Sub-task"}, "summary": "s"}}))
        .await;
    assert_eq!(st, 400);
    assert!(e["errors"]["parent"].is_string());

    // A valid create with custom fields and properties.
    let (st, c) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            json!({
                "fields": {
                    "project": {"key": "OPS"}, "issuetype": {"name": "Bug"}, "summary": "Disk full",
                    "description": adf("The disk is full."),
                    "customfield_10020": {"value": "Critical"},
                    "customfield_10021": [{"value": "Web"}, {"id": "10111"}],
                    "customfield_10024": {"value": "EU", "child": {"value": "DE"}},
                    "labels": ["ops", "disk"], "priority": {"name": "High"},
                    "assignee": {"accountId": s.user("bob")["account_id"]}
                },
                "properties": [{"key": "bridge.idem", "value": {"k": "abc"}}]
            }),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let key = c["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("OPS-"));
    let (st, i) = s
        .get(
            "alice",
            &format!("/rest/api/3/issue/{key}?properties=bridge.idem"),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(i["fields"]["summary"], "Disk full");
    assert_eq!(i["fields"]["customfield_10020"]["value"], "Critical");
    assert_eq!(i["fields"]["customfield_10024"]["child"]["value"], "DE");
    assert_eq!(i["fields"]["status"]["statusCategory"]["key"], "new");
    assert_eq!(i["fields"]["description"]["type"], "doc");
    assert_eq!(i["properties"]["bridge.idem"]["k"], "abc");
    // v2 shows the description as a string.
    let (_, i2) = s.get("alice", &format!("/rest/api/2/issue/{key}")).await;
    assert_eq!(i2["fields"]["description"], "The disk is full.");

    // Edit records a changelog entry.
    let (st, _) = s
        .put(
            "alice",
            &format!("/rest/api/3/issue/{key}"),
            json!({"fields": {"summary": "Disk almost full"}}),
        )
        .await;
    assert_eq!(st, 204);
    let (_, ch) = s
        .get("alice", &format!("/rest/api/3/issue/{key}/changelog"))
        .await;
    assert_eq!(ch["values"][0]["items"][0]["field"], "summary");
    assert_eq!(ch["values"][0]["items"][0]["toString"], "Disk almost full");
}

#[tokio::test]
async fn parent_rules_team_and_company_managed() {
    let s = cloud().await;
    let mk = |p: &str, t: &str, parent: Option<&str>| {
        let mut f = json!({"project": {"key": p}, "issuetype": {"name": t}, "summary": format!("{t} in {p}")});
        if t == "Bug" && p == "OPS" {
            f["customfield_10020"] = json!({"value": "Minor"});
        }
        if let Some(k) = parent {
            f["parent"] = json!({"key": k});
        }
        json!({"fields": f})
    };
    let (_, epic_web) = s
        .post("alice", "/rest/api/3/issue", mk("WEB", "Epic", None))
        .await;
    let epic_web = epic_web["key"].as_str().unwrap().to_string();
    let (_, epic_ops) = s
        .post("alice", "/rest/api/3/issue", mk("OPS", "Epic", None))
        .await;
    let epic_ops = epic_ops["key"].as_str().unwrap().to_string();
    // Story under an epic of the same team-managed project: fine.
    let (st, story) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            mk("WEB", "Story", Some(&epic_web)),
        )
        .await;
    assert_eq!(st, 201);
    // Team-managed: parent from another project is refused.
    let (st, e) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            mk("WEB", "Story", Some(&epic_ops)),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errors"]["parent"].is_string());
    // Company-managed: an epic of another project may be the parent of a task.
    let (st, _) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            mk("OPS", "Task", Some(&epic_web)),
        )
        .await;
    assert_eq!(st, 201);
    // A story cannot be the parent of a story.
    let (st, _) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            mk("WEB", "Story", Some(story["key"].as_str().unwrap())),
        )
        .await;
    assert_eq!(st, 400);
    // Sub-task under the story: fine; sub-task under an epic: refused.
    let (st, _) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            mk("WEB", "Sub-task", Some(story["key"].as_str().unwrap())),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = s
        .post(
            "alice",
            "/rest/api/3/issue",
            mk("WEB", "Sub-task", Some(&epic_web)),
        )
        .await;
    assert_eq!(st, 400);
    // deleteSubtasks rule.
    let story_key = story["key"].as_str().unwrap();
    let r = s
        .req(
            "alice",
            Method::DELETE,
            &format!("/rest/api/3/issue/{story_key}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .req(
            "alice",
            Method::DELETE,
            &format!("/rest/api/3/issue/{story_key}?deleteSubtasks=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.get("alice", &format!("/rest/api/3/issue/{story_key}"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn bulk_create_is_non_transactional() {
    let s = cloud().await;
    let ok = |n: usize| json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": format!("bulk {n}")}});
    let bad = json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Nope"}, "summary": "x"}});
    let (st, v) = s
        .post(
            "alice",
            "/rest/api/3/issue/bulk",
            json!({"issueUpdates": [ok(0), bad, ok(2)]}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(v["issues"].as_array().unwrap().len(), 2);
    assert_eq!(v["errors"][0]["failedElementNumber"], 1);
    assert_eq!(v["errors"][0]["status"], 400);
    assert!(v["errors"][0]["elementErrors"]["errors"]["issuetype"].is_string());
    // All failed -> 400 with the same shape.
    let (st, v) = s
        .post(
            "alice",
            "/rest/api/3/issue/bulk",
            json!({"issueUpdates": [json!({"fields": {}})]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(v["errors"][0]["failedElementNumber"], 0);
    // More than 50.
    let many: Vec<Value> = (0..51).map(ok).collect();
    let (st, v) = s
        .post(
            "alice",
            "/rest/api/3/issue/bulk",
            json!({"issueUpdates": many}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(v["errorMessages"][0].is_string());
}

#[tokio::test]
async fn search_jql_paging_fields_and_errors() {
    let s = cloud().await;
    let (st, v) = s
        .get(
            "alice",
            "/rest/api/3/search/jql?jql=project%20%3D%20WEB%20ORDER%20BY%20key%20ASC&maxResults=5",
        )
        .await;
    assert_eq!(st, 200);
    let first = v["issues"].as_array().unwrap();
    assert_eq!(first.len(), 5);
    assert!(first[0].get("fields").is_none(), "only ids without fields");
    assert!(first[0]["id"].is_string());
    let mut seen: Vec<String> = first
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let mut token = v["nextPageToken"].as_str().map(str::to_string);
    while let Some(t) = token {
        let (st, v) = s
            .post("alice", "/rest/api/3/search/jql", json!({"jql": "project = WEB ORDER BY key ASC", "maxResults": 5, "nextPageToken": t, "fields": ["summary", "status"]}))
            .await;
        assert_eq!(st, 200);
        for i in v["issues"].as_array().unwrap() {
            assert!(i["fields"]["summary"].is_string());
            seen.push(i["id"].as_str().unwrap().to_string());
        }
        token = v["nextPageToken"].as_str().map(str::to_string);
        if token.is_none() {
            assert_eq!(v["isLast"], true);
        }
    }
    let (_, listed) = s
        .control(Method::GET, "/_sim/issues?project=WEB", None)
        .await;
    assert_eq!(seen.len(), listed.as_array().unwrap().len());
    // Unbounded and malformed queries.
    let (st, e) = s
        .post(
            "alice",
            "/rest/api/3/search/jql",
            json!({"jql": "ORDER BY key DESC"}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("Unbounded"));
    let (st, e) = s
        .post(
            "alice",
            "/rest/api/3/search/jql",
            json!({"jql": "project = WEB AND"}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("Error in the JQL Query"));
    // Old search is gone on Cloud.
    let (st, e) = s.get("alice", "/rest/api/3/search?jql=project%3DWEB").await;
    assert_eq!(st, 410);
    assert!(e["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("/rest/api/3/search/jql"));
}

#[tokio::test]
async fn standalone_runs_until_shutdown_and_rejects_unknown_scenarios() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: jira_sim::SimArgs,
    }
    let cli = Cli::parse_from([
        "sim",
        "--port",
        "0",
        "--scenario",
        "empty",
        "--flavor",
        "dc",
        "--seed",
        "3",
    ]);
    assert_eq!(cli.sim.to_config().flavor, jira_sim::Flavor::DataCenter);
    assert_eq!(cli.sim.to_config().seed, 3);
    assert!(jira_sim::run_standalone(cli.sim, async {}).await.is_ok());
    let bad = Cli::parse_from(["sim", "--port", "0", "--scenario", "nope"]);
    assert!(matches!(
        jira_sim::run_standalone(bad.sim, async {}).await,
        Err(jira_sim::SimError::UnknownScenario(_))
    ));
}

#[tokio::test]
async fn reset_restores_the_seeded_scenario() {
    let s = cloud().await;
    let (_, before) = s.control(Method::GET, "/_sim/issues", None).await;
    s.post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": "extra"}}))
        .await;
    let (_, after) = s.control(Method::GET, "/_sim/issues", None).await;
    assert_eq!(
        after.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1
    );
    assert_eq!(s.control(Method::POST, "/_sim/reset", None).await.0, 204);
    let (_, again) = s.control(Method::GET, "/_sim/issues", None).await;
    let keys = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| (i["key"].clone(), i["summary"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&again), keys(&before));
    // Another seed gives other content.
    let other = start(jira_sim::SimConfig {
        seed: 99,
        ..jira_sim::SimConfig::cloud()
    })
    .await;
    let (_, o) = other.control(Method::GET, "/_sim/issues", None).await;
    assert_ne!(keys(&o), keys(&before));
    assert_ne!(
        other.scenario["sites"][0]["cloud_id"],
        s.scenario["sites"][0]["cloud_id"]
    );
}

#[tokio::test]
async fn legacy_createmeta_on_cloud_only() {
    let s = cloud().await;
    let (st, v) = s
        .get("alice", "/rest/api/2/issue/createmeta?projectKeys=OPS&issuetypeNames=Bug&expand=projects.issuetypes.fields")
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["projects"][0]["key"], "OPS");
    let bug = &v["projects"][0]["issuetypes"][0];
    assert_eq!(bug["name"], "Bug");
    assert_eq!(bug["fields"]["customfield_10020"]["required"], true);
    assert_eq!(bug["fields"]["summary"]["required"], true);
    let dc = start(jira_sim::SimConfig::data_center()).await;
    assert_eq!(
        dc.get("alice", "/rest/api/2/issue/createmeta?projectKeys=OPS")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn bulkfetch_picker_and_inline_properties() {
    let s = cloud().await;
    s.put(
        "alice",
        "/rest/api/3/issue/WEB-2/properties/bridge.idem",
        json!({"k": 1}),
    )
    .await;
    let (st, v) = s
        .post(
            "alice",
            "/rest/api/3/issue/bulkfetch",
            json!({"issueIdsOrKeys": ["WEB-3", "web-2", "NOPE-1", "OPS-1"], "fields": ["summary"], "properties": ["bridge.idem"]}),
        )
        .await;
    assert_eq!(st, 200);
    let keys: Vec<&str> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["WEB-2", "WEB-3", "OPS-1"],
        "ascending id order, unknown keys left out"
    );
    assert_eq!(v["issues"][0]["properties"]["bridge.idem"]["k"], 1);
    assert!(v["issues"][0]["fields"]["summary"].is_string());
    assert!(v["issues"][0]["fields"].get("status").is_none());
    // Vera cannot see OPS-1.
    let (_, v) = s
        .post(
            "vera",
            "/rest/api/3/issue/bulkfetch",
            json!({"issueIdsOrKeys": ["OPS-1", "WEB-1"]}),
        )
        .await;
    assert_eq!(v["issues"].as_array().unwrap().len(), 1);
    let many: Vec<String> = (1..=101).map(|n| format!("WEB-{n}")).collect();
    assert_eq!(
        s.post(
            "alice",
            "/rest/api/3/issue/bulkfetch",
            json!({"issueIdsOrKeys": many})
        )
        .await
        .0,
        400
    );
    // search/jql properties (at most 5).
    let (_, v) = s
        .post(
            "alice",
            "/rest/api/3/search/jql",
            json!({"jql": "key = WEB-2", "properties": ["bridge.idem"]}),
        )
        .await;
    assert_eq!(v["issues"][0]["properties"]["bridge.idem"]["k"], 1);
    let six: Vec<String> = (0..6).map(|n| format!("p{n}")).collect();
    assert_eq!(
        s.post(
            "alice",
            "/rest/api/3/search/jql",
            json!({"jql": "key = WEB-2", "properties": six})
        )
        .await
        .0,
        400
    );
    // Issue picker.
    let (_, title) = s
        .get("alice", "/rest/api/3/issue/WEB-2?fields=summary")
        .await;
    let word = title["fields"]["summary"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let (st, v) = s
        .get(
            "alice",
            &format!("/rest/api/3/issue/picker?query={word}&currentJQL=project%3DWEB"),
        )
        .await;
    assert_eq!(st, 200);
    let found = v["sections"][1]["issues"].as_array().unwrap();
    assert!(found.iter().any(|i| i["key"] == "WEB-2"));
    assert!(found
        .iter()
        .all(|i| i["key"].as_str().unwrap().starts_with("WEB-")));
    assert!(found
        .iter()
        .all(|i| i["summary"].as_str().unwrap().contains("<b>")));
}
