//! Code links and their backfill against jira-sim: keys by precedence, ticket links
//! with purpose `code:<KEY>`, exactly one remote link per issue however often the same
//! source is linked, and a 2,000-record backfill job with a correct report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::connections::Sim;
use crate::helpers::{assert_problem, TestApp};
use crate::search::{calls, connect, reset_stats, sim_json};

async fn remote_links_of(sim: &Sim, key: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(sim.url(&format!("/rest/api/3/issue/{key}/remotelink")))
        .basic_auth("alice@example.com", Some("ATATT-alice-api-token"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn linking_the_same_pull_request_twice_leaves_one_remote_link_per_issue() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("code").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    let pr = json!({
        "connection_id": con,
        "source": {"kind": "pull_request", "id": "acme/web#42"},
        "title": "WEB-1: fix the login form",
        "branch": "feature/ops-2-web-1-login",
        "commits": ["WEB-3 tidy up", {"id": "a1b2c3", "message": "refs WEB-99999 and iso-9001"}],
        "url": "https://git.example.com/acme/web/pull/42",
    });
    let first = TestApp::json_ok(app.post(&t, "/v1/code-links", pr.clone()).await, 200).await;
    let got: Vec<(String, String, String)> = first["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().into(),
                k["found_in"].as_str().unwrap().into(),
                k["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("WEB-1".to_owned(), "title".to_owned(), "linked".to_owned()),
            ("OPS-2".into(), "branch".into(), "linked".into()),
            ("WEB-3".into(), "commit".into(), "linked".into()),
            ("WEB-99999".into(), "commit".into(), "not_found".into()),
        ]
    );
    for k in first["keys"].as_array().unwrap().iter().take(3) {
        assert_eq!(k["remote_link"], "created", "{first}");
        assert!(k["ticket_id"].as_str().unwrap().starts_with("tkt_"));
    }
    let gid = first["global_id"].as_str().unwrap().to_owned();

    // Again: nothing is written to Jira, the same tickets answer.
    reset_stats(&sim).await;
    let second = TestApp::json_ok(app.post(&t, "/v1/code-links", pr.clone()).await, 200).await;
    assert_eq!(
        calls(&sim, "POST", "remotelink").await,
        0,
        "no remote-link write on repeat"
    );
    for (a, b) in first["keys"]
        .as_array()
        .unwrap()
        .iter()
        .zip(second["keys"].as_array().unwrap())
        .take(3)
    {
        assert_eq!(b["remote_link"], "unchanged");
        assert_eq!(a["ticket_id"], b["ticket_id"]);
    }
    for key in ["WEB-1", "OPS-2", "WEB-3"] {
        let links = remote_links_of(&sim, key).await;
        assert_eq!(links.len(), 1, "{key}: {links:?}");
        assert_eq!(links[0]["globalId"], gid.as_str());
        assert_eq!(
            links[0]["object"]["url"],
            "https://git.example.com/acme/web/pull/42"
        );
        assert_eq!(links[0]["object"]["title"], "WEB-1: fix the login form");
    }

    // A renamed pull request updates the one link in place.
    let mut renamed = pr.clone();
    renamed["title"] = json!("WEB-1: fix the login form (v2)");
    let third = TestApp::json_ok(app.post(&t, "/v1/code-links", renamed).await, 200).await;
    assert_eq!(third["keys"][0]["remote_link"], "updated");
    let links = remote_links_of(&sim, "WEB-1").await;
    assert_eq!(links.len(), 1);
    assert_eq!(
        links[0]["object"]["title"],
        "WEB-1: fix the login form (v2)"
    );

    // The links are tickets of the source, one per issue, purpose code:<KEY>.
    let tickets = TestApp::json_ok(
        app.get(
            &t,
            &format!(
                "/v1/tickets?source_kind=pull_request&source_id={}",
                crate::search::enc("acme/web#42")
            ),
        )
        .await,
        200,
    )
    .await;
    let mut purposes: Vec<String> = tickets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["purpose"].as_str().unwrap().to_owned())
        .collect();
    purposes.sort();
    assert_eq!(purposes, ["code:OPS-2", "code:WEB-1", "code:WEB-3"]);

    // Without a URL: links only, no remote link.
    let r = TestApp::json_ok(
        app.post(&t, "/v1/code-links", json!({"connection_id": con, "source": {"kind": "commit", "id": "ff00"}, "title": "WEB-5 hotfix"})).await,
        200,
    )
    .await;
    assert_eq!(r["keys"][0]["remote_link"], "skipped");
    assert!(remote_links_of(&sim, "WEB-5").await.is_empty());

    assert_problem(
        app.post(&t, "/v1/code-links", json!({"connection_id": con, "source": {"kind": "", "id": "1"}, "title": "x", "url": "javascript:alert(1)"})).await,
        422,
        "validation",
    )
    .await;
    let other = app.create_tenant("other").await;
    assert_problem(
        app.post(&other, "/v1/code-links", pr).await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_2000_record_backfill_links_reports_ambiguous_and_unmatched_records() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("backfill").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    let issues: Vec<Value> = sim_json(&sim, "/_sim/issues")
        .await
        .as_array()
        .unwrap()
        .clone();
    let of = |p: &str| -> Vec<String> {
        issues
            .iter()
            .filter(|i| i["project"] == p)
            .map(|i| i["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let web = of("WEB");
    let ops = of("OPS");
    let glx = of("GLX");

    // Expected outcome per record, by construction.
    let mut records = Vec::new();
    let mut expected: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for i in 0..2000usize {
        let id = format!("rec-{i:04}");
        let (rec, outcome) = match i % 6 {
            0 => {
                let k = &web[i % web.len()];
                (
                    json!({"id": id, "title": format!("{k}: work"), "notes": format!("also {}", ops[0])}),
                    ("linked", Some(k.clone())),
                )
            }
            1 => {
                let k = &ops[i % ops.len()];
                (
                    json!({"id": id, "title": "no key here", "branch": format!("feature/{}-thing", k.to_lowercase())}),
                    ("linked", Some(k.clone())),
                )
            }
            2 => (
                json!({"id": id, "title": format!("{} and {} together", web[0], ops[1])}),
                ("ambiguous", None),
            ),
            3 => (
                json!({"id": id, "title": format!("WEB-{}", 90000 + i), "notes": format!("{} is another site's", glx[0])}),
                ("no_match", None),
            ),
            4 => {
                let k = &ops[(i / 6) % ops.len()];
                (
                    json!({"id": id, "notes": "ISO-9001 audit", "urls": [format!("https://acme.atlassian.net/browse/{k}")]}),
                    ("linked", Some(k.clone())),
                )
            }
            _ => (
                json!({"id": id, "title": "chore: bump dependencies"}),
                ("no_match", None),
            ),
        };
        records.push(rec);
        expected.insert(id, (outcome.0.to_owned(), outcome.1));
    }
    reset_stats(&sim).await;
    let accepted = TestApp::json_ok(
        app.post(
            &t,
            "/v1/code-links/backfill",
            json!({"connection_id": con, "source_kind": "time_record", "records": records}),
        )
        .await,
        202,
    )
    .await;
    let job = accepted["job_id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(240);
    let finished = loop {
        let j = TestApp::json_ok(app.get(&t, &format!("/v1/jobs/{job}")).await, 200).await;
        if ["succeeded", "failed", "partially_failed", "cancelled"]
            .contains(&j["state"].as_str().unwrap())
        {
            break j;
        }
        assert!(Instant::now() < deadline, "backfill did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(finished["total"], 2000);
    assert_eq!(finished["succeeded"], 2000);

    let report = TestApp::json_ok(
        app.get(&t, &format!("/v1/code-links/backfill/{job}")).await,
        200,
    )
    .await;
    let count = |o: &str| expected.values().filter(|(x, _)| x == o).count();
    assert_eq!(report["linked"].as_array().unwrap().len(), count("linked"));
    assert_eq!(
        report["ambiguous"].as_array().unwrap().len(),
        count("ambiguous")
    );
    assert_eq!(
        report["no_match"].as_array().unwrap().len(),
        count("no_match")
    );
    for r in report["linked"].as_array().unwrap() {
        let (o, k) = &expected[r["record_id"].as_str().unwrap()];
        assert_eq!(o, "linked");
        assert_eq!(r["key"].as_str(), k.as_deref(), "{r}");
    }
    for r in report["ambiguous"].as_array().unwrap() {
        assert_eq!(r["candidates"], json!([web[0], ops[1]]), "{r}");
    }
    for r in report["no_match"].as_array().unwrap() {
        let n: usize = r["record_id"].as_str().unwrap()[4..].parse().unwrap();
        if n % 6 == 3 {
            assert_eq!(r["missing"], json!([format!("WEB-{}", 90000 + n)]), "{r}");
        } else {
            assert!(r.get("missing").is_none(), "{r}");
        }
    }

    // The same through the job's items, page by page.
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/v1/jobs/{job}/items?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", crate::search::enc(c)));
        }
        let page = TestApp::json_ok(app.get(&t, &url).await, 200).await;
        for it in page["items"].as_array().unwrap() {
            *outcomes
                .entry(it["result"]["outcome"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(outcomes["linked"], count("linked"));
    assert_eq!(outcomes["ambiguous"], count("ambiguous"));
    assert_eq!(outcomes["no_match"], count("no_match"));

    // Linked records are tickets; Jira was read in batches, never written.
    let tickets = TestApp::json_ok(
        app.get(&t, "/v1/tickets?source_kind=time_record&limit=500")
            .await,
        200,
    )
    .await;
    assert_eq!(tickets["items"].as_array().unwrap().len(), 500);
    let fetches = calls(&sim, "POST", "bulkfetch").await;
    assert!(
        (1..=40).contains(&fetches),
        "{fetches} bulk fetches for 20 batches"
    );
    assert_eq!(calls(&sim, "POST", "remotelink").await, 0);
}
