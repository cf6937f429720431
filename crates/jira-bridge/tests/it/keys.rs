//! `POST /v1/keys/extract`: the client library's table of cases through the API, and
//! the project allow-list checked against a connection's projects.

use serde_json::{json, Value};

use crate::connections::Sim;
use crate::helpers::{assert_problem, TestApp};
use crate::search::connect;

/// The client library's case table (`crates/jira-client/tests/keys.rs` reads the same
/// file), with each case's options as the request's extractor options.
const CASES_JSON: &str = include_str!("../../../jira-client/tests/data/keys.json");

fn options(name: &str) -> Value {
    match name {
        "Default" => json!({}),
        "AnyCase" => json!({"case": "any"}),
        "Allow" => json!({"project_keys": ["abc", "JRA", "SHA"]}),
        "Underscore" => json!({"allow_underscore": true, "project_keys": ["ABC", "MY_PROJ"]}),
        "NoDeny" => json!({"deny_projects": []}),
        other => panic!("unknown options {other}"),
    }
}

#[tokio::test]
async fn the_client_librarys_key_table_holds_through_the_api() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("keys").await;
    let mut failures = Vec::new();
    let cases: Vec<Value> = serde_json::from_str(CASES_JSON).unwrap();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        let (text, expected) = (&case["text"], &case["expected"]);
        let mut body = options(case["options"].as_str().unwrap());
        body["texts"] = json!([text]);
        let r = TestApp::json_ok(app.post(&t, "/v1/keys/extract", body).await, 200).await;
        let got = &r["keys"];
        if got != expected {
            failures.push(format!(
                "case {i} {text:?}: expected {expected:?}, got {got:?}"
            ));
        }
        assert_eq!(r["per_text"][0], r["keys"]);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Many texts: first appearance across texts, per-text lists in order.
    let r = TestApp::json_ok(
        app.post(
            &t,
            "/v1/keys/extract",
            json!({"texts": ["DEF-9 title", "feature/ABC-1-thing", "commit for DEF-9 and ABC-2"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(r["keys"], json!(["DEF-9", "ABC-1", "ABC-2"]));
    assert_eq!(
        r["per_text"],
        json!([["DEF-9"], ["ABC-1"], ["DEF-9", "ABC-2"]])
    );

    // Bad options are named.
    let bad = assert_problem(
        app.post(
            &t,
            "/v1/keys/extract",
            json!({"texts": ["x"], "project_keys": ["AB-C", "1X"]}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert!(
        bad["errors"]["project_keys[0]"].is_string()
            && bad["errors"]["project_keys[1]"].is_string(),
        "{bad}"
    );
    assert_problem(
        app.post(
            &t,
            "/v1/keys/extract",
            json!({"texts": ["x"], "max_project_len": 1}),
        )
        .await,
        422,
        "validation",
    )
    .await;
}

#[tokio::test]
async fn a_connections_projects_validate_the_allow_list_and_admit_lower_case_keys() {
    let sim = Sim::cloud().await;
    let app = TestApp::spawn().await;
    let t = app.create_tenant("keys").await;
    let con = connect(&app, &sim, &t, "alice", None).await;
    let text = "feature/web-12-login fixes OPS-3, XYZ-1 and iso-9001; see ops-4";

    // No connection, no allow-list: upper case only.
    let r = TestApp::json_ok(
        app.post(&t, "/v1/keys/extract", json!({"texts": [text]}))
            .await,
        200,
    )
    .await;
    assert_eq!(r["keys"], json!(["OPS-3", "XYZ-1"]));

    // The connection's projects (WEB, OPS) are the allow-list: lower-case keys of
    // them are found and upper-cased; unknown projects are left out.
    let r = TestApp::json_ok(
        app.post(
            &t,
            "/v1/keys/extract",
            json!({"texts": [text], "connection_id": con}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(r["keys"], json!(["WEB-12", "OPS-3", "OPS-4"]));
    assert_eq!(r["project_keys"], json!(["OPS", "WEB"]));

    // An explicit allow-list narrows it further.
    let r = TestApp::json_ok(
        app.post(
            &t,
            "/v1/keys/extract",
            json!({"texts": [text], "connection_id": con, "project_keys": ["web"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(r["keys"], json!(["WEB-12"]));

    // A project the connection does not have is refused, by name.
    let bad = assert_problem(
        app.post(
            &t,
            "/v1/keys/extract",
            json!({"texts": [text], "connection_id": con, "project_keys": ["WEB", "GLX"]}),
        )
        .await,
        422,
        "validation",
    )
    .await;
    assert!(
        bad["errors"]["project_keys[1]"]
            .as_str()
            .unwrap()
            .contains("GLX"),
        "{bad}"
    );
    assert!(bad["errors"].get("project_keys[0]").is_none(), "{bad}");

    // Another tenant's connection is not found.
    let other = app.create_tenant("other").await;
    assert_problem(
        app.post(
            &other,
            "/v1/keys/extract",
            json!({"texts": [text], "connection_id": con}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}
