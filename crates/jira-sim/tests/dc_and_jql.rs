//! Data Center flavor (PAT / basic auth, v2 only, `/search` with startAt, Epic Link) and
//! JQL over HTTP, including the searching user's time zone.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use jira_sim::SimConfig;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn data_center_flavor() {
    let s = start(SimConfig::data_center()).await;
    let (st, info) = s.get("alice", "/rest/api/2/serverInfo").await;
    assert_eq!(st, 200);
    assert_eq!(info["deploymentType"], "Server");
    assert_eq!(s.get("alice", "/rest/api/3/myself").await.0, 404);
    let (st, me) = s.get("alice", "/rest/api/2/myself").await;
    assert_eq!(st, 200);
    assert_eq!(me["name"], "alice");
    assert!(me["key"].is_string());
    // Basic username:password works too; a wrong PAT does not.
    let r = s
        .http
        .get(s.h.url("/rest/api/2/myself"))
        .basic_auth("bob", Some("bob-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(s.h.url("/rest/api/2/myself"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Legacy search with startAt and total.
    let (st, v) = s
        .get(
            "alice",
            "/rest/api/2/search?jql=project%3DOPS%20ORDER%20BY%20key&startAt=2&maxResults=3",
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["startAt"], 2);
    assert_eq!(v["maxResults"], 3);
    assert_eq!(v["issues"].as_array().unwrap().len(), 3);
    assert!(v["total"].as_u64().unwrap() > 5);
    assert_eq!(v["issues"][0]["key"], "OPS-3");
    assert!(v["issues"][0]["fields"]["summary"].is_string());
    assert_eq!(
        s.get("alice", "/rest/api/2/search/jql?jql=project%3DOPS")
            .await
            .0,
        404
    );
    // createmeta pages under "values"; Epic Name is required for epics.
    let (_, types) = s
        .get("alice", "/rest/api/2/issue/createmeta/OPS/issuetypes")
        .await;
    let epic = types["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Epic")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, fields) = s
        .get(
            "alice",
            &format!("/rest/api/2/issue/createmeta/OPS/issuetypes/{epic}"),
        )
        .await;
    let ename = fields["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Epic Name")
        .unwrap();
    assert_eq!(ename["required"], true);
    assert_eq!(
        ename["schema"]["custom"],
        "com.pyxis.greenhopper.jira:gh-epic-label"
    );
    let (st, e) = s.post("alice", "/rest/api/2/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Epic"}, "summary": "E"}})).await;
    assert_eq!(st, 400);
    assert_eq!(e["errors"]["customfield_10101"], "Epic Name is required.");
    let (st, ep) = s
        .post("alice", "/rest/api/2/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Epic"}, "summary": "E", "customfield_10101": "E"}}))
        .await;
    assert_eq!(st, 201);
    let epic_key = ep["key"].as_str().unwrap();
    // Stories join epics through Epic Link; `parent` is for sub-tasks only.
    let (st, e) = s
        .post("alice", "/rest/api/2/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Story"}, "summary": "S", "parent": {"key": epic_key}}}))
        .await;
    assert_eq!(st, 400);
    assert!(e["errors"]["parent"].is_string());
    let (st, story) = s
        .post("alice", "/rest/api/2/issue", json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Story"}, "summary": "S", "description": "h1. Wiki", "customfield_10100": epic_key, "assignee": {"name": "bob"}}}))
        .await;
    assert_eq!(st, 201, "{story}");
    let (_, v) = s
        .get(
            "alice",
            &format!("/rest/api/2/search?jql=%22Epic%20Link%22%20%3D%20{epic_key}"),
        )
        .await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["issues"][0]["key"], story["key"]);
    assert_eq!(v["issues"][0]["fields"]["customfield_10100"], epic_key);
    assert_eq!(v["issues"][0]["fields"]["assignee"]["name"], "bob");
    assert_eq!(v["issues"][0]["fields"]["description"], "h1. Wiki");
    // JQL accepts usernames on DC.
    let (_, v) = s
        .get(
            "alice",
            "/rest/api/2/search?jql=assignee%3Dbob%20AND%20project%3DOPS&maxResults=100",
        )
        .await;
    assert!(v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["fields"]["assignee"]["name"] == "bob"));
}

async fn keys(s: &Sim, user: &str, jql: &str) -> Vec<String> {
    let (st, v) = s
        .post(
            user,
            "/rest/api/3/search/jql",
            json!({"jql": jql, "fields": ["key"], "maxResults": 100}),
        )
        .await;
    assert_eq!(st, 200, "{jql}: {v}");
    v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn jql_over_http() {
    let s = cloud().await;
    let (_, all) = s
        .control(Method::GET, "/_sim/issues?project=WEB", None)
        .await;
    let all = all.as_array().unwrap().clone();
    let bob = s.user("bob")["account_id"].as_str().unwrap().to_string();
    let mine: Vec<&Value> = all
        .iter()
        .filter(|i| i["assignee"] == bob.as_str())
        .collect();
    let got = keys(
        &s,
        "bob",
        "project = WEB AND assignee = currentUser() ORDER BY key ASC",
    )
    .await;
    assert_eq!(got.len(), mine.len());
    let unassigned = keys(&s, "alice", "project = WEB AND assignee is EMPTY").await;
    assert_eq!(
        unassigned.len(),
        all.iter().filter(|i| i["assignee"].is_null()).count()
    );
    let open = keys(&s, "alice", "project = WEB AND statusCategory != Done").await;
    assert_eq!(
        open.len(),
        all.iter().filter(|i| i["statusCategory"] != 3).count()
    );
    let desc = keys(&s, "alice", "project = WEB ORDER BY key DESC").await;
    let asc = keys(&s, "alice", "project = WEB ORDER BY key ASC").await;
    assert_eq!(desc.iter().rev().cloned().collect::<Vec<_>>(), asc);
    // Vera cannot see OPS: the project value does not exist for her.
    let (st, e) = s
        .post(
            "vera",
            "/rest/api/3/search/jql",
            json!({"jql": "project = OPS"}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(e["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("does not exist for the field 'project'"));
    let (st, e) = s
        .get("alice", "/rest/api/3/search/jql?jql=sprint%20%3D%201")
        .await;
    assert_eq!(st, 400);
    assert_eq!(e["errors"], json!({}));
}

#[tokio::test]
async fn same_date_time_means_different_instants_for_users_in_different_zones() {
    let s = cloud().await;
    // WEB-1 updated at 2026-01-01 09:30 UTC.
    let (st, _) = s
        .control(
            Method::PUT,
            "/_sim/issues/WEB-1/times",
            Some(json!({"updated": "2026-01-01T09:30:00Z"})),
        )
        .await;
    assert_eq!(st, 204);
    let jql = "key = WEB-1 AND updated >= \"2026-01-01 10:00\"";
    // Kiri (Auckland, UTC+13): 10:00 local is 21:00 UTC the day before -> matches.
    assert_eq!(keys(&s, "kiri", jql).await, ["WEB-1"]);
    // Kai (Honolulu, UTC-10): 10:00 local is 20:00 UTC -> no match.
    assert!(keys(&s, "kai", jql).await.is_empty());
    // Alice (Berlin, UTC+1): 09:00 UTC -> matches; Bob (New York, UTC-5): 15:00 UTC -> no.
    assert_eq!(keys(&s, "alice", jql).await, ["WEB-1"]);
    assert!(keys(&s, "bob", jql).await.is_empty());
}

#[tokio::test]
async fn user_search_respects_email_visibility() {
    let s = cloud().await;
    let (_, v) = s.get("alice", "/rest/api/3/user/search?query=bob@").await;
    assert_eq!(v[0]["emailAddress"], "bob@example.com");
    // Vera's address is hidden: a prefix does not find her, the full address does.
    let (_, v) = s
        .get("alice", "/rest/api/3/user/search?query=vera@exam")
        .await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (_, v) = s
        .get("alice", "/rest/api/3/user/search?query=vera@example.com")
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(v[0].get("emailAddress").is_none());
    // Inactive users are not returned; assignable search filters by project access.
    let (_, v) = s.get("alice", "/rest/api/3/user/search?query=olaf").await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (_, v) = s
        .get("alice", "/rest/api/3/user/assignable/search?project=OPS")
        .await;
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["displayName"] != "Vera Viewer"));
    assert_eq!(s.get("alice", "/rest/api/3/user/search").await.0, 400);
}
