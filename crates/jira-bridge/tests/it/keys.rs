//! `POST /v1/keys/extract`: the client library's table of cases through the API, and
//! the project allow-list checked against a connection's projects.

use serde_json::{json, Value};

use crate::connections::Sim;
use crate::helpers::{assert_problem, TestApp};
use crate::search::connect;

#[derive(Clone, Copy)]
enum Opts {
    Default,
    AnyCase,
    Allow,
    Underscore,
    NoDeny,
}

fn options(o: Opts) -> Value {
    match o {
        Opts::Default => json!({}),
        Opts::AnyCase => json!({"case": "any"}),
        Opts::Allow => json!({"project_keys": ["abc", "JRA", "SHA"]}),
        Opts::Underscore => json!({"allow_underscore": true, "project_keys": ["ABC", "MY_PROJ"]}),
        Opts::NoDeny => json!({"deny_projects": []}),
    }
}

/// The cases of `crates/jira-client/tests/keys.rs`.
const CASES: &[(&str, Opts, &[&str])] = &[
    ("ABC-123", Opts::Default, &["ABC-123"]),
    ("Fix ABC-1 and DEF-22.", Opts::Default, &["ABC-1", "DEF-22"]),
    ("[ABC-12] title", Opts::Default, &["ABC-12"]),
    ("(ABC-12)", Opts::Default, &["ABC-12"]),
    ("ABC-12: message", Opts::Default, &["ABC-12"]),
    ("#ABC-12, ABC-13;", Opts::Default, &["ABC-12", "ABC-13"]),
    ("xABC-12", Opts::Default, &[]),
    ("ABC-12x", Opts::Default, &[]),
    ("ABC-12abcd", Opts::Default, &[]),
    ("ABC-", Opts::Default, &[]),
    ("ABC 12", Opts::Default, &[]),
    ("-ABC-12-", Opts::Default, &["ABC-12"]),
    ("ABC-12-3", Opts::Default, &["ABC-12"]),
    ("ABC-1-DEF-2", Opts::Default, &["ABC-1", "DEF-2"]),
    ("Jra-456-jra-901", Opts::AnyCase, &["JRA-456", "JRA-901"]),
    ("ABC-12.3", Opts::Default, &["ABC-12"]),
    ("ABC-012", Opts::Default, &[]),
    ("ABC-0", Opts::Default, &[]),
    ("ABC-99999999999999999999999", Opts::Default, &[]),
    (
        "ABC-18446744073709551615",
        Opts::Default,
        &["ABC-18446744073709551615"],
    ),
    ("A1B-5", Opts::Default, &["A1B-5"]),
    ("J42-123 B4L-7", Opts::Default, &["J42-123", "B4L-7"]),
    ("2PAC-123", Opts::Default, &[]),
    ("42-123", Opts::Default, &[]),
    ("F-67", Opts::Default, &[]),
    (
        "ABCDEFGHIJ-1 ABCDEFGHIJK-2",
        Opts::Default,
        &["ABCDEFGHIJ-1"],
    ),
    ("ÄBC-1 ABCé-2", Opts::Default, &[]),
    ("abc-123", Opts::Default, &[]),
    ("abc-123", Opts::AnyCase, &["ABC-123"]),
    ("Abc-123 aBc-124", Opts::AnyCase, &["ABC-123", "ABC-124"]),
    ("feature/abc-123-login", Opts::Allow, &["ABC-123"]),
    ("feature/xyz-123-login", Opts::Allow, &[]),
    ("XYZ-9 ABC-1", Opts::Allow, &["ABC-1"]),
    ("covid-19 top-10 step-2", Opts::Allow, &[]),
    ("ABC-123_fix", Opts::Default, &["ABC-123"]),
    ("feature/ABC-123-add-login", Opts::Default, &["ABC-123"]),
    ("bugfix/ABC-7_and_ABC-8", Opts::Default, &["ABC-7", "ABC-8"]),
    ("feature_ABC-5", Opts::Default, &["ABC-5"]),
    (
        "feature_ABC-5 MY_PROJ-6",
        Opts::Underscore,
        &["ABC-5", "MY_PROJ-6"],
    ),
    ("MY_PROJ-6", Opts::Default, &["PROJ-6"]),
    (
        "https://acme.atlassian.net/browse/ABC-12",
        Opts::Default,
        &["ABC-12"],
    ),
    (
        "https://acme.atlassian.net/jira/software/projects/ABC/boards/1?selectedIssue=ABC-34",
        Opts::Default,
        &["ABC-34"],
    ),
    (
        "[fix](https://acme.atlassian.net/browse/ABC-12) and [ABC-13](https://x/browse/ABC-13)",
        Opts::Default,
        &["ABC-12", "ABC-13"],
    ),
    (
        "**ABC-1** _ABC-2_ `ABC-3`",
        Opts::Default,
        &["ABC-1", "ABC-2", "ABC-3"],
    ),
    ("ISO-9001 UTF-8 UTF-16 SHA-256 SHA-1", Opts::Default, &[]),
    (
        "CVE-2021-44228 RFC-7231 HTTP-2 TLS-1.3 MD-5 ARM-64",
        Opts::Default,
        &[],
    ),
    ("X-509 and AES-256 and X86-64", Opts::Default, &[]),
    ("utf-8 iso-9001", Opts::AnyCase, &[]),
    ("SHA-256", Opts::Allow, &["SHA-256"]),
    ("ISO-9001", Opts::NoDeny, &["ISO-9001"]),
    (
        "DEF-2 ABC-1 DEF-2 ABC-1",
        Opts::Default,
        &["DEF-2", "ABC-1"],
    ),
    ("abc-1 ABC-1", Opts::AnyCase, &["ABC-1"]),
    ("日本ABC-1", Opts::Default, &[]),
    ("— ABC-1 —", Opts::Default, &["ABC-1"]),
    ("🎉ABC-1🎉", Opts::Default, &["ABC-1"]),
    ("", Opts::Default, &[]),
];

#[tokio::test]
async fn the_client_librarys_key_table_holds_through_the_api() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("keys").await;
    let mut failures = Vec::new();
    for (i, (text, opts, expected)) in CASES.iter().enumerate() {
        let mut body = options(*opts);
        body["texts"] = json!([text]);
        let r = TestApp::json_ok(app.post(&t, "/v1/keys/extract", body).await, 200).await;
        let got: Vec<&str> = r["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        if got != *expected {
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
