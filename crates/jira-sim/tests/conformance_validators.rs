//! The conformance checkers judge correctly: real Jira responses pass, broken ones fail.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;

use jira_sim::conformance::{validate_adf, validate_exchanges, Report};
use serde_json::{json, Value};

fn fixture(rel: &str) -> Value {
    let dir = std::env::var_os("JIRA_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/jira/fixtures/responses")
        });
    let text = std::fs::read_to_string(dir.join(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn exchange(method: &str, path: &str, status: u16, body: Value) -> Value {
    json!({"method": method, "path": path, "query": "", "status": status,
           "request_body": null, "response_body": body, "flavor": "cloud"})
}

fn judge(exchanges: &[Value], flavor: &str) -> Report {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for ex in exchanges {
        writeln!(file, "{ex}").unwrap();
    }
    file.flush().unwrap();
    validate_exchanges(file.path(), flavor).unwrap()
}

#[test]
fn adf_validator_accepts_valid_and_names_the_fault_of_invalid_documents() {
    let docs = vec![
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "bold", "marks": [{"type": "strong"}]}]}]}),
        json!({"type": "doc", "content": []}),
        json!({"type": "doc", "version": 1, "content": [{"type": "bogusNode"}]}),
        json!({"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 9}, "content": [{"type": "text", "text": "x"}]}]}),
    ];
    let verdicts = validate_adf(&docs).unwrap();
    assert_eq!(verdicts.len(), 4);
    assert_eq!(verdicts[0], Ok(()));
    let missing_version = verdicts[1].clone().unwrap_err();
    assert!(missing_version.contains("version"), "{missing_version}");
    let unknown = verdicts[2].clone().unwrap_err();
    assert!(unknown.contains("/content/0/type"), "{unknown}");
    let level = verdicts[3].clone().unwrap_err();
    assert!(level.contains("/content/0/attrs/level"), "{level}");
    assert!(validate_adf(&[]).unwrap().is_empty());
}

#[test]
fn real_cloud_responses_pass_the_cloud_document() {
    let report = judge(
        &[
            exchange(
                "GET",
                "/rest/api/3/issue/KP-2",
                200,
                fixture("go-atlassian/get-issue.json"),
            ),
            exchange(
                "GET",
                "/rest/api/2/issue/KP-2",
                200,
                fixture("go-atlassian/get-issue-v2.json"),
            ),
            exchange(
                "GET",
                "/rest/api/3/myself",
                200,
                fixture("go-atlassian/get-myselft.json"),
            ),
            exchange(
                "GET",
                "/rest/api/3/priority",
                200,
                fixture("go-atlassian/get_priorities.json"),
            ),
            exchange(
                "GET",
                "/site/globex/rest/api/3/project/10000",
                200,
                fixture("go-jira/project.json"),
            ),
            exchange(
                "GET",
                "/rest/api/3/status",
                200,
                fixture("go-jira/all_statuses.json"),
            ),
            exchange(
                "GET",
                "/rest/api/2/issue/10002/worklog",
                200,
                fixture("jira-ruby/issue/10002/worklog.json"),
            ),
            exchange(
                "GET",
                "/rest/api/3/issue/KP-2/comment",
                200,
                fixture("go-atlassian/get-issue-comments-v2.json"),
            ),
            exchange(
                "GET",
                "/rest/api/3/search",
                410,
                json!({"errorMessages":
                ["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."],
                "errors": {}}),
            ),
            exchange(
                "GET",
                "/ex/jira/0b9ad7e5/rest/api/3/myself",
                401,
                json!({"code": 401, "message": "Unauthorized; scope does not match"}),
            ),
            exchange("GET", "/_sim/stats", 200, json!({"anything": true})),
            exchange(
                "POST",
                "/oauth/token",
                403,
                json!({"error": "invalid_grant"}),
            ),
        ],
        "cloud",
    );
    assert!(report.is_clean(), "{}", report.text);
    assert_eq!(report.exchanges, 10);
    assert_eq!(report.skipped, 2);
    let covered = report.covered();
    for op in [
        "GET /rest/api/3/issue/{issueIdOrKey}",
        "GET /rest/api/3/myself",
        "GET /rest/api/3/project/{projectIdOrKey}",
        "GET /rest/api/3/issue/{issueIdOrKey}/worklog",
        "GET /rest/api/3/search",
    ] {
        assert!(covered.contains(op), "{op} not in {covered:?}");
    }
    // The undocumented 410 is worth a warning, not a violation.
    assert!(
        report.warnings.iter().any(|w| w.status == 410),
        "{:?}",
        report.warnings
    );
}

#[test]
fn real_data_center_responses_pass_the_dc_document() {
    let dc = |method: &str, path: &str, status: u16, body: Value| {
        let mut ex = exchange(method, path, status, body);
        ex["flavor"] = json!("dc");
        ex
    };
    let report = judge(
        &[
            dc(
                "GET",
                "/rest/api/2/issue/10002",
                200,
                fixture("jira-ruby/issue/10002.json"),
            ),
            dc(
                "GET",
                "/rest/api/2/issue/10002/comment",
                200,
                fixture("jira-ruby/issue/10002/comment.json"),
            ),
            dc(
                "GET",
                "/rest/api/2/issue/10002/transitions",
                200,
                fixture("jira-ruby/issue/10002/transitions.json"),
            ),
            dc(
                "GET",
                "/rest/api/2/status",
                200,
                fixture("go-jira/all_statuses.json"),
            ),
            dc(
                "GET",
                "/rest/api/2/serverInfo",
                200,
                fixture("jira-cli/serverinfo.json"),
            ),
        ],
        "dc",
    );
    assert!(report.is_clean(), "{}", report.text);
    assert!(report.covered().contains("GET /api/2/issue/{issueIdOrKey}"));
    assert!(!report.corrections.is_empty());
}

#[test]
fn broken_exchanges_are_violations() {
    let report = judge(
        &[
            // Wrong types in a documented 201 body.
            exchange(
                "POST",
                "/rest/api/3/issue",
                201,
                json!({"id": 10000, "key": "A-1", "self": "x"}),
            ),
            // Additional property where the schema forbids it.
            exchange(
                "POST",
                "/rest/api/3/issue",
                201,
                json!({"id": "1", "key": "A-1", "self": "x", "extra": true}),
            ),
            // Error body not in Jira's shape.
            exchange(
                "GET",
                "/rest/api/3/issue/A-1",
                404,
                json!({"message": "not found"}),
            ),
            // errorMessages of the wrong type.
            exchange(
                "GET",
                "/rest/api/3/myself",
                401,
                json!({"errorMessages": "no", "errors": {}}),
            ),
            // Error without a body.
            exchange("GET", "/rest/api/3/project/X", 404, Value::Null),
            // A success status the operation does not document.
            exchange("GET", "/rest/api/3/myself", 202, json!({})),
            // A body where the document declares none.
            exchange(
                "DELETE",
                "/rest/api/3/issue/A-1",
                204,
                json!({"deleted": true}),
            ),
            // null where the schema does not allow it.
            exchange("GET", "/rest/api/3/myself", 200, json!({"accountId": null})),
            // An endpoint Jira does not have.
            exchange("GET", "/rest/api/3/no/such/thing", 200, json!({})),
            // The gateway shape is only for 401 on the gateway path.
            exchange(
                "GET",
                "/rest/api/3/myself",
                401,
                json!({"code": 401, "message": "no"}),
            ),
        ],
        "cloud",
    );
    assert!(!report.is_clean());
    let count = |needle: &str| {
        report
            .violations
            .iter()
            .filter(|v| v.message.contains(needle))
            .count()
    };
    let by_path = |path: &str, status: u16| {
        report
            .violations
            .iter()
            .filter(|v| v.path == path && v.status == status)
            .count()
    };
    assert!(by_path("/rest/api/3/issue", 201) >= 2, "{}", report.text);
    assert!(count("'extra' was unexpected") == 1, "{}", report.text);
    assert!(
        by_path("/rest/api/3/issue/A-1", 404) >= 1,
        "{}",
        report.text
    );
    assert!(by_path("/rest/api/3/myself", 401) >= 2, "{}", report.text);
    assert_eq!(by_path("/rest/api/3/project/X", 404), 1, "{}", report.text);
    assert_eq!(by_path("/rest/api/3/myself", 202), 1, "{}", report.text);
    assert_eq!(by_path("/rest/api/3/issue/A-1", 204), 1, "{}", report.text);
    assert!(by_path("/rest/api/3/myself", 200) >= 1, "{}", report.text);
    assert_eq!(
        report.unmatched.get("GET /rest/api/3/no/such/thing"),
        Some(&1)
    );
}
