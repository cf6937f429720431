//! Worklog rules: `started` format, minimum duration, permissions, update/delete, feeds,
//! list and properties; comments and transitions.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const STARTED: &str = "2026-01-05T09:00:00.000+0100";

#[tokio::test]
async fn started_format_and_minimum_duration() {
    let s = cloud().await;
    let add = |body: Value| s.post("bob", "/rest/api/3/issue/WEB-1/worklog", body);
    for bad in [
        "2026-01-05T09:00:00+01:00",
        "2026-01-05 09:00",
        "2026-01-05T09:00:00.000Z",
        "2026-01-05T09:00:00.000+01:00",
    ] {
        let (st, e) = add(json!({"started": bad, "timeSpentSeconds": 600})).await;
        assert_eq!(st, 400, "{bad}");
        assert!(e["errors"]["started"].is_string(), "{bad}: {e}");
    }
    // Without `started` Jira logs the work as started now; numeric strings are coerced.
    let (st, w) = add(json!({"timeSpentSeconds": "600"})).await;
    assert_eq!(st, 201, "{w}");
    assert_eq!(w["timeSpentSeconds"], 600);
    let started = w["started"].as_str().unwrap();
    assert!(
        started.ends_with("-0500") || started.ends_with("-0400"),
        "Bob is in New York: {started}"
    );
    let (st, e) = add(json!({"started": STARTED, "timeSpentSeconds": "ten"})).await;
    assert_eq!(st, 400);
    assert!(e["errors"]["timeLogged"].is_string());
    let (st, e) = add(json!({"started": STARTED, "timeSpentSeconds": 59})).await;
    assert_eq!(st, 400);
    assert!(e["errors"]["timeLogged"].is_string());
    let (st, e) = add(json!({"started": STARTED})).await;
    assert_eq!(st, 400);
    assert!(e["errors"]["timeLogged"].is_string());
    let (st, w) = add(json!({"started": STARTED, "timeSpentSeconds": 60})).await;
    assert_eq!(st, 201);
    assert_eq!(w["timeSpent"], "1m");
    let (st, w) =
        add(json!({"started": STARTED, "timeSpent": "1h 30m", "comment": adf("pairing")})).await;
    assert_eq!(st, 201);
    assert_eq!(w["timeSpentSeconds"], 5400);
    assert_eq!(w["comment"]["type"], "doc");
    assert_eq!(
        w["issueId"],
        s.get("bob", "/rest/api/3/issue/WEB-1").await.1["id"]
    );
    // `started` is echoed in the reader's zone, same instant.
    let (_, list) = s.get("kiri", "/rest/api/3/issue/WEB-1/worklog").await;
    let started = list["worklogs"][1]["started"].as_str().unwrap();
    let a = chrono::DateTime::parse_from_str(started, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap();
    let b = chrono::DateTime::parse_from_str(STARTED, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap();
    assert_eq!(a, b);
    assert!(started.ends_with("+1300"), "{started}");
}

#[tokio::test]
async fn permissions_for_work_logging() {
    let s = cloud().await;
    let (st, e) = s
        .post(
            "vera",
            "/rest/api/3/issue/WEB-1/worklog",
            json!({"started": STARTED, "timeSpentSeconds": 600}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("permission"));
    let (st, _) = s
        .post(
            "vera",
            "/rest/api/3/issue/OPS-1/worklog",
            json!({"started": STARTED, "timeSpentSeconds": 600}),
        )
        .await;
    assert_eq!(st, 404);
    // Only the author (or an admin) may change a worklog.
    let (_, w) = s
        .post(
            "bob",
            "/rest/api/3/issue/WEB-1/worklog",
            json!({"started": STARTED, "timeSpentSeconds": 600}),
        )
        .await;
    let id = w["id"].as_str().unwrap();
    let (st, _) = s
        .put(
            "kai",
            &format!("/rest/api/3/issue/WEB-1/worklog/{id}"),
            json!({"timeSpentSeconds": 900}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .put(
            "alice",
            &format!("/rest/api/3/issue/WEB-1/worklog/{id}"),
            json!({"timeSpentSeconds": 900}),
        )
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn update_delete_feeds_list_and_properties() {
    let s = cloud().await;
    // Jira leaves out the last minute; the feed shows nothing yet.
    let (_, w1) = s
        .post("bob", "/rest/api/3/issue/OPS-2/worklog?expand=properties", json!({"started": STARTED, "timeSpentSeconds": 600, "properties": [{"key": "bridge", "value": {"entry": "e1"}}]}))
        .await;
    assert_eq!(w1["properties"][0]["value"]["entry"], "e1");
    let (_, feed) = s.get("bob", "/rest/api/3/worklog/updated?since=0").await;
    assert_eq!(feed["values"].as_array().unwrap().len(), 0);
    assert_eq!(feed["lastPage"], true);
    s.control(
        Method::PUT,
        "/_sim/pacing",
        Some(json!({"worklog_feed_delay_ms": 0})),
    )
    .await;
    let (_, w2) = s
        .post(
            "bob",
            "/rest/api/3/issue/OPS-2/worklog",
            json!({"started": STARTED, "timeSpentSeconds": 1200}),
        )
        .await;
    let id1 = w1["id"].as_str().unwrap();
    let id2 = w2["id"].as_str().unwrap();
    let (st, u) = s
        .put(
            "bob",
            &format!("/rest/api/3/issue/OPS-2/worklog/{id2}"),
            json!({"timeSpentSeconds": 1800, "started": "2026-01-06T10:00:00.000-0500"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(u["timeSpentSeconds"], 1800);
    let (_, feed) = s
        .get(
            "bob",
            "/rest/api/3/worklog/updated?since=0&expand=properties",
        )
        .await;
    let ids: Vec<u64> = feed["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["worklogId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id1.parse().unwrap()));
    let with_prop = feed["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["worklogId"].as_u64() == id1.parse().ok())
        .unwrap();
    assert_eq!(with_prop["properties"][0]["key"], "bridge");
    // Property endpoints.
    let (_, p) = s
        .get(
            "bob",
            &format!("/rest/api/3/issue/OPS-2/worklog/{id1}/properties/bridge"),
        )
        .await;
    assert_eq!(p["value"]["entry"], "e1");
    // Delete and the deleted feed.
    let r = s
        .req(
            "bob",
            Method::DELETE,
            &format!("/rest/api/3/issue/OPS-2/worklog/{id1}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, del) = s.get("bob", "/rest/api/3/worklog/deleted?since=0").await;
    assert_eq!(del["values"][0]["worklogId"].to_string(), id1);
    let (_, list) = s
        .post(
            "bob",
            "/rest/api/3/worklog/list",
            json!({"ids": [id1.parse::<u64>().unwrap(), id2.parse::<u64>().unwrap()]}),
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id2);
    let (st, _) = s
        .post("bob", "/rest/api/3/worklog/list", json!({"ids": []}))
        .await;
    assert_eq!(st, 400);
    // Control view shows the remaining worklog.
    let (_, i) = s.control(Method::GET, "/_sim/issues/OPS-2", None).await;
    assert_eq!(i["worklogs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn transitions_follow_the_workflow() {
    let s = cloud().await;
    let (_, c) = s
        .post("alice", "/rest/api/3/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "wf"}}))
        .await;
    let key = c["key"].as_str().unwrap().to_string();
    let (_, t) = s
        .get("alice", &format!("/rest/api/3/issue/{key}/transitions"))
        .await;
    let names: Vec<&str> = t["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["to"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["In Progress"]);
    // Done is not reachable from To Do in the company-managed workflow.
    let (st, _) = s
        .post(
            "alice",
            &format!("/rest/api/3/issue/{key}/transitions"),
            json!({"transition": {"id": "41"}}),
        )
        .await;
    assert_eq!(st, 400);
    for tid in ["21", "31", "41"] {
        let (st, _) = s
            .post("alice", &format!("/rest/api/3/issue/{key}/transitions"), json!({"transition": {"id": tid}, "update": {"comment": [{"add": {"body": adf("moving")}}]}}))
            .await;
        assert_eq!(st, 204, "{tid}");
    }
    let (_, i) = s
        .get(
            "alice",
            &format!("/rest/api/3/issue/{key}?expand=changelog"),
        )
        .await;
    assert_eq!(i["fields"]["status"]["name"], "Done");
    assert_eq!(i["fields"]["status"]["statusCategory"]["key"], "done");
    assert!(i["fields"]["resolutiondate"].is_string());
    assert_eq!(i["fields"]["comment"]["total"], 3);
    assert_eq!(i["changelog"]["total"], 3);
    // Team-managed: any status from any status.
    let (_, t) = s.get("alice", "/rest/api/3/issue/WEB-1/transitions").await;
    assert_eq!(t["transitions"].as_array().unwrap().len(), 4);
    // Comments: v3 needs ADF.
    let (st, _) = s
        .post(
            "alice",
            &format!("/rest/api/3/issue/{key}/comment"),
            json!({"body": "plain"}),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .post(
            "alice",
            &format!("/rest/api/2/issue/{key}/comment"),
            json!({"body": "plain"}),
        )
        .await;
    assert_eq!(st, 201);
}

#[tokio::test]
async fn remote_links_upsert_by_global_id() {
    let s = cloud().await;
    let link = |title: &str| json!({"globalId": "system=bridge&id=42", "object": {"url": "https://example.invalid/42", "title": title}});
    let (st, a) = s
        .post("alice", "/rest/api/3/issue/WEB-3/remotelink", link("first"))
        .await;
    assert_eq!(st, 201);
    let (st, b) = s
        .post(
            "alice",
            "/rest/api/3/issue/WEB-3/remotelink",
            link("second"),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(a["id"], b["id"]);
    let (_, l) = s
        .get(
            "alice",
            "/rest/api/3/issue/WEB-3/remotelink?globalId=system%3Dbridge%26id%3D42",
        )
        .await;
    assert_eq!(l["object"]["title"], "second");
    let (_, v) = s
        .post("alice", "/rest/api/3/search/jql", json!({"jql": "issue in issuesWithRemoteLinksByGlobalId(\"system=bridge&id=42\")", "fields": ["key"]}))
        .await;
    assert_eq!(v["issues"][0]["key"], "WEB-3");
    let (st, e) = s
        .post(
            "alice",
            "/rest/api/3/issue/WEB-3/remotelink",
            json!({"object": {}}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errors"]["url"].is_string());
}
