//! Search, picker, assigned issues and issue details against jira-sim, over HTTP, with
//! the simulator's counters and recording as evidence of what reached Jira.

use std::collections::BTreeSet;

use jira_sim::SimConfig;
use serde_json::{json, Value};

use crate::connections::{cloud_token_body, Sim};
use crate::helpers::{assert_problem, TestApp, TestTenant};

/// A tenant with a token connection of `user` to the simulator's site at `base`.
pub async fn connect(
    app: &TestApp,
    sim: &Sim,
    t: &TestTenant,
    user: &str,
    base: Option<String>,
) -> String {
    let mut body = cloud_token_body(sim, user);
    if let Some(b) = base {
        body["base_url"] = json!(b);
    }
    body["name"] = json!(format!("{user} {}", body["base_url"]));
    let c = TestApp::json_ok(app.post(t, "/v1/connections", body).await, 201).await;
    c["id"].as_str().unwrap().to_owned()
}

pub async fn sim_json(sim: &Sim, path: &str) -> Value {
    reqwest::get(sim.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn reset_stats(sim: &Sim) {
    let r = reqwest::Client::new()
        .post(sim.url("/_sim/stats/reset"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// Requests the simulator answered with this method and route fragment.
pub async fn calls(sim: &Sim, method: &str, route: &str) -> u64 {
    let s = sim_json(sim, "/_sim/stats").await;
    s["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["endpoint"].as_str().unwrap_or("").contains(route))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

fn keys(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_by_text_key_and_jql_pages_with_our_cursor_and_asks_only_for_the_fields_it_shows() {
    let record = tempfile::NamedTempFile::new().unwrap();
    let mut cfg = SimConfig::cloud();
    cfg.record = Some(record.path().to_owned());
    let h = jira_sim::spawn(cfg).await.unwrap();
    let sim = Sim {
        scenario: h.scenario(),
        h,
    };
    let app = TestApp::spawn().await;
    let t = app.create_tenant("search").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    let web: Vec<Value> = sim_json(&sim, "/_sim/issues?project=WEB")
        .await
        .as_array()
        .unwrap()
        .clone();
    let web_keys: BTreeSet<String> = web
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(web_keys.len() > 5);

    // JQL over several pages: every WEB issue exactly once, in key order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!(
            "/v1/connections/{con}/issues/search?jql={}&limit=5",
            crate::search::enc("project = WEB ORDER BY key ASC")
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", crate::search::enc(c)));
        }
        let page = TestApp::json_ok(app.get(&t, &url).await, 200).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            let fields: BTreeSet<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                fields,
                BTreeSet::from([
                    "key", "id", "summary", "status", "assignee", "type", "project", "url"
                ]),
                "{item}"
            );
            assert_eq!(item["project"]["key"], "WEB");
            assert!(
                item["status"]["name"].is_string() && item["status"]["category"].is_string(),
                "{item}"
            );
            assert!(item["type"]["name"].is_string());
            assert!(item["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/browse/{}", item["key"].as_str().unwrap())));
        }
        seen.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 50, "paging does not end");
    }
    assert!(
        pages >= 4,
        "{pages} pages of 5 for {} issues",
        web_keys.len()
    );
    assert_eq!(seen.len(), web_keys.len(), "no issue twice: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), web_keys);

    // Only the shown fields were asked of Jira.
    let log = std::fs::read_to_string(record.path()).unwrap();
    let searches: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["path"].as_str().unwrap_or("").ends_with("/search/jql"))
        .collect();
    assert_eq!(searches.len(), pages);
    for s in &searches {
        let body: Value = match &s["request_body"] {
            Value::String(text) => serde_json::from_str(text).unwrap(),
            v => v.clone(),
        };
        assert_eq!(
            body["fields"],
            json!(["summary", "status", "assignee", "issuetype", "project"]),
            "{body}"
        );
    }

    // A cursor belongs to its query and connection.
    let first = TestApp::json_ok(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?jql={}&limit=5",
                crate::search::enc("project = WEB ORDER BY key ASC")
            ),
        )
        .await,
        200,
    )
    .await;
    let c1 = first["next_cursor"].as_str().unwrap();
    assert_problem(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?jql={}&cursor={}",
                crate::search::enc("project = OPS"),
                crate::search::enc(c1)
            ),
        )
        .await,
        400,
        "bad-request",
    )
    .await;
    assert_problem(
        app.get(
            &t,
            &format!("/v1/connections/{con}/issues/search?jql=project%20%3D%20WEB&cursor=garbage"),
        )
        .await,
        400,
        "bad-request",
    )
    .await;

    // Free text: a key-looking text matches the key (in any case); words match text.
    let some = &web[3];
    let key = some["key"].as_str().unwrap();
    let by_key = TestApp::json_ok(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?q={}",
                key.to_lowercase()
            ),
        )
        .await,
        200,
    )
    .await;
    assert!(keys(&by_key).contains(&key.to_owned()), "{by_key}");
    assert!(
        by_key["jql"]
            .as_str()
            .unwrap()
            .contains(&format!("key = \"{key}\"")),
        "{by_key}"
    );
    let word = some["summary"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap()
        .trim_matches(|c: char| !c.is_alphanumeric());
    let by_text = TestApp::json_ok(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?q={}",
                crate::search::enc(word)
            ),
        )
        .await,
        200,
    )
    .await;
    assert!(
        keys(&by_text).contains(&key.to_owned()),
        "{word}: {by_text}"
    );
    // A key-looking text of a project the site does not have is searched as text only
    // (Jira would refuse `key = "XYZ-1"`).
    let foreign = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{con}/issues/search?q=xyz-1"))
            .await,
        200,
    )
    .await;
    assert!(
        !foreign["jql"].as_str().unwrap().contains("key ="),
        "{foreign}"
    );
    // Text with JQL syntax in it is searched, never interpreted.
    let hostile = TestApp::json_ok(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?q={}",
                crate::search::enc("\" OR project = OPS OR text ~ \"")
            ),
        )
        .await,
        200,
    )
    .await;
    assert!(
        keys(&hostile).iter().all(|k| !k.starts_with("OPS-")),
        "{hostile}"
    );

    // Jira's JQL errors are a 400 naming the problem, with Jira's messages.
    let bad = assert_problem(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?jql={}",
                crate::search::enc("project = WEB AND sprint = 5")
            ),
        )
        .await,
        400,
        "invalid-jql",
    )
    .await;
    let msg = bad["jira"]["errorMessages"][0].as_str().unwrap();
    assert!(msg.contains("sprint"), "{bad}");
    assert!(bad["detail"].as_str().unwrap().contains(msg), "{bad}");
    let unbounded = assert_problem(
        app.get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?jql={}",
                crate::search::enc("order by key desc")
            ),
        )
        .await,
        400,
        "invalid-jql",
    )
    .await;
    assert_eq!(unbounded["jira"]["status"], 400);

    // Exactly one of q and jql; the connection is the tenant's.
    assert_problem(
        app.get(&t, &format!("/v1/connections/{con}/issues/search"))
            .await,
        400,
        "bad-request",
    )
    .await;
    assert_problem(
        app.get(
            &t,
            &format!("/v1/connections/{con}/issues/search?q=a&jql=project%3DWEB"),
        )
        .await,
        400,
        "bad-request",
    )
    .await;
    let other = app.create_tenant("other").await;
    assert_problem(
        app.get(
            &other,
            &format!("/v1/connections/{con}/issues/search?q=login"),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn assigned_lists_the_connection_users_open_issues_over_pages() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("assigned").await;
    let alice = sim.user("alice");
    let account = alice["account_id"].as_str().unwrap();
    let con = connect(&app, &sim, &t, "alice", None).await;
    // Give alice a few more open issues, and close one of hers.
    let all: Vec<Value> = sim_json(&sim, "/_sim/issues")
        .await
        .as_array()
        .unwrap()
        .clone();
    let acme: Vec<&Value> = all.iter().filter(|i| i["project"] != "GLX").collect();
    let http = reqwest::Client::new();
    for i in acme.iter().take(6) {
        let r = http
            .post(sim.url(&format!("/_sim/issues/{}/edit", i["key"].as_str().unwrap())))
            .json(&json!({"fields": {"assignee": {"accountId": account}}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let all: Vec<Value> = sim_json(&sim, "/_sim/issues")
        .await
        .as_array()
        .unwrap()
        .clone();
    let expected: BTreeSet<String> = all
        .iter()
        .filter(|i| i["project"] != "GLX" && i["assignee"] == account && i["statusCategory"] != 3)
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(expected.len() >= 3, "{expected:?}");

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("/v1/connections/{con}/issues/assigned?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", crate::search::enc(c)));
        }
        let page = TestApp::json_ok(app.get(&t, &url).await, 200).await;
        pages += 1;
        for i in page["items"].as_array().unwrap() {
            assert_eq!(i["assignee"]["account_id"], account);
            assert_ne!(i["status"]["category"], "done");
        }
        got.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 100);
    }
    assert!(pages >= 2);
    assert_eq!(got.len(), expected.len(), "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn issue_details_give_the_description_as_markdown_from_adf_and_from_wiki() {
    // Cloud: ADF.
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("details").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    let http = reqwest::Client::new();
    let adf = json!({"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Steps"}]},
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Press "},
            {"type": "text", "text": "Save", "marks": [{"type": "strong"}]},
        ]},
    ]});
    let all: Vec<Value> = sim_json(&sim, "/_sim/issues?project=WEB")
        .await
        .as_array()
        .unwrap()
        .clone();
    let parent = all.iter().find(|i| i["issuetype"] == "Epic").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let created: Value = http
        .post(sim.url("/rest/api/3/issue"))
        .basic_auth("alice@example.com", Some("ATATT-alice-api-token"))
        .json(&json!({"fields": {
            "project": {"key": "WEB"}, "issuetype": {"name": "Story"}, "summary": "Save button",
            "description": adf, "labels": ["ui", "checkout"], "parent": {"key": parent},
        }}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let d = TestApp::json_ok(
        app.get(
            &t,
            &format!("/v1/connections/{con}/issues/{}", key.to_lowercase()),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(d["key"], key.as_str());
    assert_eq!(d["summary"], "Save button");
    assert_eq!(d["type"]["name"], "Story");
    assert_eq!(d["labels"], json!(["ui", "checkout"]));
    assert_eq!(d["parent"]["key"], parent.as_str());
    assert!(
        d["status"]["name"].is_string() && d["status"]["category"] == "new",
        "{d}"
    );
    assert!(d["reporter"]["account_id"].is_string());
    assert!(d["created"].is_string() && d["updated"].is_string());
    assert!(d["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/browse/{key}")));
    assert_eq!(d["description"]["format"], "adf");
    assert_eq!(d["description"]["original"], adf);
    let md = d["description"]["markdown"].as_str().unwrap();
    assert!(
        md.contains("## Steps") && md.contains("Press **Save**"),
        "{md}"
    );

    assert_problem(
        app.get(&t, &format!("/v1/connections/{con}/issues/WEB-99999"))
            .await,
        404,
        "jira-not-found",
    )
    .await;
    assert_problem(
        app.get(&t, &format!("/v1/connections/{con}/issues/not-a-key"))
            .await,
        400,
        "bad-request",
    )
    .await;

    // Data Center: wiki markup.
    let dc = Sim::data_center().await;
    let alice = dc.user("alice");
    let c = TestApp::json_ok(
        app.post(&t, "/v1/connections", json!({"name": "DC", "kind": "dc_pat", "base_url": dc.h.base_url(), "token": alice["pat"]})).await,
        201,
    )
    .await;
    let dc_con = c["id"].as_str().unwrap();
    let created: Value = http
        .post(dc.url("/rest/api/2/issue"))
        .bearer_auth(alice["pat"].as_str().unwrap())
        .json(&json!({"fields": {
            "project": {"key": "WEB"}, "issuetype": {"name": "Task"}, "summary": "Wiki",
            "description": "h2. Steps\nPress *Save*",
        }}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let d = TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{dc_con}/issues/{key}"))
            .await,
        200,
    )
    .await;
    assert_eq!(d["description"]["format"], "wiki");
    assert_eq!(d["description"]["original"], "h2. Steps\nPress *Save*");
    let md = d["description"]["markdown"].as_str().unwrap();
    assert!(md.contains("## Steps") && md.contains("**Save**"), "{md}");
}

#[tokio::test]
async fn picker_answers_repeated_keystrokes_from_cache_in_relevance_order() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("picker").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    reset_stats(&sim).await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(
            TestApp::json_ok(
                app.get(&t, &format!("/v1/connections/{con}/issues/picker?q=WEB-1"))
                    .await,
                200,
            )
            .await,
        );
    }
    let upstream = calls(&sim, "GET", "/issue/picker").await;
    assert_eq!(upstream, 1, "5 requests, {upstream} picker calls to Jira");
    assert_eq!(answers[0]["cached"], false);
    assert!(answers[1..].iter().all(|a| a["cached"] == true));
    assert!(answers.iter().all(|a| a["items"] == answers[0]["items"]));
    let items = answers[0]["items"].as_array().unwrap();
    assert_eq!(items[0]["key"], "WEB-1");
    assert_eq!(items[0]["match"], "exact_key");
    let rank = |m: &Value| match m.as_str().unwrap() {
        "exact_key" => 0,
        "key_prefix" => 1,
        _ => 2,
    };
    let ranks: Vec<i32> = items.iter().map(|i| rank(&i["match"])).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    assert!(items
        .iter()
        .filter(|i| i["match"] == "key_prefix")
        .all(|i| i["key"].as_str().unwrap().starts_with("WEB-1")));
    assert!(
        items.iter().any(|i| i["match"] == "key_prefix"),
        "WEB-10… exist: {items:?}"
    );

    // A different text is a different entry; case and spacing are not.
    TestApp::json_ok(
        app.get(
            &t,
            &format!("/v1/connections/{con}/issues/picker?q=%20web-1%20"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(calls(&sim, "GET", "/issue/picker").await, 1);
    TestApp::json_ok(
        app.get(&t, &format!("/v1/connections/{con}/issues/picker?q=WEB-2"))
            .await,
        200,
    )
    .await;
    assert_eq!(calls(&sim, "GET", "/issue/picker").await, 2);
    assert_problem(
        app.get(&t, &format!("/v1/connections/{con}/issues/picker?q="))
            .await,
        400,
        "bad-request",
    )
    .await;
}

#[tokio::test]
async fn picker_never_shows_another_connections_issues() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let a = app.create_tenant("a").await;
    let b = app.create_tenant("b").await;
    let acme = connect(&app, &sim, &a, "alice", None).await;
    let globex = connect(&app, &sim, &a, "alice", Some(sim.url("/site/globex"))).await;
    let b_acme = connect(&app, &sim, &b, "alice", None).await;

    // Tenant A links a GLX issue through globex and views one: both are "recent" /
    // "linked" for globex only.
    let link = TestApp::json_ok(
        app.post(&a, "/v1/code-links", json!({"connection_id": globex, "source": {"kind": "pull_request", "id": "1"}, "title": "GLX-1 fix"})).await,
        200,
    )
    .await;
    assert_eq!(link["keys"][0]["status"], "linked", "{link}");
    TestApp::json_ok(
        app.get(&a, &format!("/v1/connections/{globex}/issues/GLX-2"))
            .await,
        200,
    )
    .await;

    let on_globex = TestApp::json_ok(
        app.get(&a, &format!("/v1/connections/{globex}/issues/picker?q=glx"))
            .await,
        200,
    )
    .await;
    let g: Vec<&str> = on_globex["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(g.contains(&"GLX-1") && g.contains(&"GLX-2"), "{on_globex}");
    assert!(g.iter().all(|k| k.starts_with("GLX-")), "{g:?}");

    for (t, con) in [(&a, &acme), (&b, &b_acme)] {
        for q in ["glx", "GLX-1", "glx-2"] {
            let r = TestApp::json_ok(
                app.get(t, &format!("/v1/connections/{con}/issues/picker?q={q}"))
                    .await,
                200,
            )
            .await;
            assert!(
                r["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| !i["key"].as_str().unwrap().starts_with("GLX")),
                "{q} on {con}: {r}"
            );
        }
    }
    // The same text on two connections is two cache entries with different answers.
    let a_web = TestApp::json_ok(
        app.get(&a, &format!("/v1/connections/{acme}/issues/picker?q=web"))
            .await,
        200,
    )
    .await;
    assert!(!a_web["items"].as_array().unwrap().is_empty());
    let g_web = TestApp::json_ok(
        app.get(&a, &format!("/v1/connections/{globex}/issues/picker?q=web"))
            .await,
        200,
    )
    .await;
    assert_eq!(g_web["cached"], false);
    assert!(
        g_web["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| !i["key"].as_str().unwrap().starts_with("WEB")),
        "{g_web}"
    );
    // Another tenant cannot use A's connection.
    assert_problem(
        app.get(&b, &format!("/v1/connections/{acme}/issues/picker?q=web"))
            .await,
        404,
        "not-found",
    )
    .await;
}

/// Percent-encode a query parameter value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `Server-Timing` of a durations list: name → `dur` in ms.
fn server_timing(res: &reqwest::Response) -> std::collections::BTreeMap<String, f64> {
    let v = res
        .headers()
        .get("server-timing")
        .expect("Server-Timing header")
        .to_str()
        .unwrap()
        .to_owned();
    v.split(',')
        .map(|m| {
            let mut parts = m.trim().split(';');
            let name = parts.next().unwrap().to_owned();
            let dur = parts
                .find_map(|p| p.strip_prefix("dur="))
                .unwrap()
                .parse::<f64>()
                .unwrap();
            (name, dur)
        })
        .collect()
}

#[tokio::test]
async fn answers_say_how_long_they_waited_for_the_sites_pacer_and_for_jira() {
    let h = jira_sim::spawn(SimConfig::cloud()).await.unwrap();
    let sim = Sim {
        scenario: h.scenario(),
        h,
    };
    // Every Jira answer takes at least 120 ms.
    let r = reqwest::Client::new()
        .put(sim.url("/_sim/pacing"))
        .json(&json!({"latency_ms": 120}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let app = TestApp::spawn().await;
    let t = app.create_tenant("timing").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    reset_stats(&sim).await;

    let res = app
        .get(
            &t,
            &format!(
                "/v1/connections/{con}/issues/search?jql={}",
                crate::search::enc("project = WEB")
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let timing = server_timing(&res);
    let desc = res.headers()["server-timing"].to_str().unwrap().to_owned();
    // Every request the simulator answered since the reset came from this search.
    assert!(calls(&sim, "POST", "/search/jql").await >= 1);
    let sent: u64 = sim_json(&sim, "/_sim/stats").await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(
        desc.contains(&format!("desc=\"{sent} calls\"")),
        "{desc} vs {sent} requests answered by the simulator"
    );
    assert!(timing["jira"] >= 120.0 * sent as f64, "{desc}");
    assert!(timing["pacer"] >= 0.0, "{desc}");
    assert!(timing["total"] >= timing["jira"], "{desc}");

    // An answer that called no Jira says only its own time.
    let res = app.get(&t, "/v1/connections").await;
    assert_eq!(res.status(), 200);
    let timing = server_timing(&res);
    assert_eq!(
        timing.keys().cloned().collect::<Vec<_>>(),
        vec!["total".to_owned()]
    );
}
