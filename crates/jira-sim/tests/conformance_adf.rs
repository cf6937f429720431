//! Acceptance: the simulator accepts exactly the descriptions the official ADF JSON schema
//! (npm `@atlaskit/adf-schema`) accepts.
//!
//! A corpus of valid and invalid Atlassian Document Format documents (many node and mark
//! types; unknown nodes, a missing version, marks on the wrong node, bad attributes, ...)
//! is judged by the schema and sent as the description of a new issue through Cloud REST
//! v3. Schema-valid documents must be created (201), the others refused with 400 and
//! Jira's error body naming the description field.
#![allow(clippy::unwrap_used)]

use jira_sim::conformance::validate_adf;
use jira_sim::SimConfig;
use serde_json::{json, Value};

const CLOUD_EMAIL: &str = "alice@example.com";
const CLOUD_TOKEN: &str = "ATATT-alice-api-token";

/// (name, valid according to the schema, document)
fn corpus() -> Vec<(&'static str, bool, Value)> {
    vec![
        (
            "plain paragraph",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hello"}]}]}),
        ),
        (
            "empty document",
            true,
            json!({"type": "doc", "version": 1, "content": []}),
        ),
        (
            "empty paragraph",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": []}]}),
        ),
        (
            "strong em strike underline",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a", "marks": [{"type": "strong"}]}, {"type": "text", "text": "b", "marks": [{"type": "em"}]}, {"type": "text", "text": "c", "marks": [{"type": "strike"}]}, {"type": "text", "text": "d", "marks": [{"type": "underline"}]}]}]}),
        ),
        (
            "combined marks",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "strong"}, {"type": "em"}, {"type": "underline"}]}]}]}),
        ),
        (
            "inline code with link",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "code()", "marks": [{"type": "code"}]}, {"type": "text", "text": "link", "marks": [{"type": "link", "attrs": {"href": "https://example.com"}}]}]}]}),
        ),
        (
            "subsup and text colour",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "2", "marks": [{"type": "subsup", "attrs": {"type": "sup"}}]}, {"type": "text", "text": "red", "marks": [{"type": "textColor", "attrs": {"color": "#ff0000"}}]}]}]}),
        ),
        (
            "headings 1 to 6",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "h1"}]}, {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "h2"}]}, {"type": "heading", "attrs": {"level": 3}, "content": [{"type": "text", "text": "h3"}]}, {"type": "heading", "attrs": {"level": 4}, "content": [{"type": "text", "text": "h4"}]}, {"type": "heading", "attrs": {"level": 5}, "content": [{"type": "text", "text": "h5"}]}, {"type": "heading", "attrs": {"level": 6}, "content": [{"type": "text", "text": "h6"}]}]}),
        ),
        (
            "nested lists",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "bulletList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}, {"type": "orderedList", "attrs": {"order": 3}, "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "three"}]}]}]}]}]}]}),
        ),
        (
            "code block with language",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "codeBlock", "attrs": {"language": "rust"}, "content": [{"type": "text", "text": "fn main() {}"}]}]}),
        ),
        (
            "blockquote and rule",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "blockquote", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "quoted"}]}]}, {"type": "rule"}]}),
        ),
        (
            "panel",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "panel", "attrs": {"panelType": "warning"}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "careful"}]}]}]}),
        ),
        (
            "table",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "table", "attrs": {"isNumberColumnEnabled": false, "layout": "default"}, "content": [{"type": "tableRow", "content": [{"type": "tableHeader", "attrs": {}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "H"}]}]}, {"type": "tableHeader", "attrs": {}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "I"}]}]}]}, {"type": "tableRow", "content": [{"type": "tableCell", "attrs": {}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "1"}]}]}, {"type": "tableCell", "attrs": {"colspan": 1, "rowspan": 1}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "2"}]}]}]}]}]}),
        ),
        (
            "inline nodes",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4e01", "text": "@Alice"}}, {"type": "text", "text": " "}, {"type": "emoji", "attrs": {"shortName": ":smile:"}}, {"type": "hardBreak"}, {"type": "date", "attrs": {"timestamp": "1763596800000"}}, {"type": "status", "attrs": {"text": "DONE", "color": "green"}}]}]}),
        ),
        (
            "task list",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "taskList", "attrs": {"localId": "tl-1"}, "content": [{"type": "taskItem", "attrs": {"localId": "ti-1", "state": "TODO"}, "content": [{"type": "text", "text": "do it"}]}, {"type": "taskItem", "attrs": {"localId": "ti-2", "state": "DONE"}, "content": [{"type": "text", "text": "done"}]}]}]}),
        ),
        (
            "expand",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "expand", "attrs": {"title": "More"}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "inside"}]}]}]}),
        ),
        (
            "inline card",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "inlineCard", "attrs": {"url": "https://example.com/x"}}]}]}),
        ),
        (
            "decision list",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "decisionList", "attrs": {"localId": "dl"}, "content": [{"type": "decisionItem", "attrs": {"localId": "di", "state": "DECIDED"}, "content": [{"type": "text", "text": "yes"}]}]}]}),
        ),
        (
            "external media",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [{"type": "media", "attrs": {"type": "external", "url": "https://example.com/a.png"}}]}]}),
        ),
        (
            "unknown node",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "marquee", "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "missing version",
            false,
            json!({"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "version 2",
            false,
            json!({"type": "doc", "version": 2, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "root is not doc",
            false,
            json!({"type": "paragraph", "content": [{"type": "text", "text": "x"}]}),
        ),
        (
            "marks on a paragraph",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}], "marks": [{"type": "strong"}]}]}),
        ),
        (
            "heading level 7",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": 7}, "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "heading without attrs",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "heading", "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "unknown panel type",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "panel", "attrs": {"panelType": "rainbow"}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}]}),
        ),
        (
            "empty text",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}),
        ),
        (
            "text at block level",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "text", "text": "loose"}]}),
        ),
        (
            "unknown mark",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "blink"}]}]}]}),
        ),
        (
            "link without href",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "link", "attrs": {}}]}]}]}),
        ),
        (
            "list item outside a list",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}]}),
        ),
        (
            "marked text in a code block",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "codeBlock", "content": [{"type": "text", "text": "x", "marks": [{"type": "strong"}]}]}]}),
        ),
        (
            "extra property on paragraph",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}], "colour": "red"}]}),
        ),
        ("plain string", false, json!("just a string")),
        (
            "table without rows",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "table", "content": []}]}),
        ),
        (
            "mention without id",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "mention", "attrs": {"text": "@x"}}]}]}),
        ),
        (
            "status with a bad colour",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "status", "attrs": {"text": "X", "color": "rainbow"}}]}]}),
        ),
        (
            "text node missing text",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text"}]}]}),
        ),
        (
            "blockquote with a list",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "blockquote", "content": [{"type": "bulletList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}]}]}]}),
        ),
        (
            "link with title",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "site", "marks": [{"type": "link", "attrs": {"href": "https://example.com", "title": "Example"}}]}]}]}),
        ),
        (
            "coloured strong text",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hot", "marks": [{"type": "strong"}, {"type": "textColor", "attrs": {"color": "#00875a"}}]}]}]}),
        ),
        (
            "ordered list without attrs",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "orderedList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]}, {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "b"}]}]}]}]}),
        ),
        (
            "two column layout",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "layoutSection", "content": [{"type": "layoutColumn", "attrs": {"width": 50}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "l"}]}]}, {"type": "layoutColumn", "attrs": {"width": 50}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "r"}]}]}]}]}),
        ),
        (
            "nested expand in a table cell",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "table", "content": [{"type": "tableRow", "content": [{"type": "tableCell", "attrs": {}, "content": [{"type": "nestedExpand", "attrs": {"title": "n"}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}]}]}]}]}),
        ),
        (
            "mention with access level",
            true,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4e02", "text": "@Bob", "accessLevel": "CONTAINER"}}]}]}),
        ),
        (
            "list without list items",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "bulletList", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}]}),
        ),
        (
            "negative list order",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "orderedList", "attrs": {"order": -1}, "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]}]}]}),
        ),
        (
            "hard break in a code block",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "codeBlock", "content": [{"type": "hardBreak"}]}]}),
        ),
        (
            "unknown task state",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "taskList", "attrs": {"localId": "a"}, "content": [{"type": "taskItem", "attrs": {"localId": "b", "state": "MAYBE"}, "content": [{"type": "text", "text": "x"}]}]}]}),
        ),
        (
            "media single without media",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "mediaSingle", "attrs": {"layout": "center"}, "content": []}]}),
        ),
        (
            "unknown subsup type",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "subsup", "attrs": {"type": "middle"}}]}]}]}),
        ),
        (
            "named text colour",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "textColor", "attrs": {"color": "red"}}]}]}]}),
        ),
        (
            "link href not a string",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "link", "attrs": {"href": 42}}]}]}]}),
        ),
        (
            "emoji without short name",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "emoji", "attrs": {"text": ":)"}}]}]}),
        ),
        (
            "heading level 0",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": 0}, "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "heading level as text",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": "2"}, "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "content not an array",
            false,
            json!({"type": "doc", "version": 1, "content": {"type": "paragraph"}}),
        ),
        (
            "version as text",
            false,
            json!({"type": "doc", "version": "1", "content": []}),
        ),
        (
            "expand inside expand",
            false,
            json!({"type": "doc", "version": 1, "content": [{"type": "expand", "attrs": {"title": "a"}, "content": [{"type": "expand", "attrs": {"title": "b"}, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]}]}]}),
        ),
        (
            "extra property on the document",
            false,
            json!({"type": "doc", "version": 1, "content": [], "title": "x"}),
        ),
    ]
}

#[test]
fn corpus_labels_agree_with_the_official_schema() {
    let cases = corpus();
    let docs: Vec<Value> = cases.iter().map(|(_, _, d)| d.clone()).collect();
    let verdicts = validate_adf(&docs).unwrap();
    let mut wrong = Vec::new();
    for ((name, valid, _), verdict) in cases.iter().zip(&verdicts) {
        if verdict.is_ok() != *valid {
            wrong.push(format!(
                "{name}: labelled valid={valid}, schema says {verdict:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let valid = cases.iter().filter(|c| c.1).count();
    assert!(valid >= 25 && cases.len() - valid >= 30, "corpus too small");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_accepts_exactly_the_schema_valid_descriptions() {
    let cases = corpus();
    let docs: Vec<Value> = cases.iter().map(|(_, _, d)| d.clone()).collect();
    let verdicts = validate_adf(&docs).unwrap();

    let sim = jira_sim::spawn(SimConfig::cloud()).await.unwrap();
    let http = reqwest::Client::new();
    let mut disagreements = Vec::new();
    for ((name, _, doc), verdict) in cases.iter().zip(&verdicts) {
        let body = json!({"fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Task"},
            "summary": format!("ADF case: {name}"),
            "description": doc,
        }});
        let resp = http
            .post(sim.url("/rest/api/3/issue"))
            .basic_auth(CLOUD_EMAIL, Some(CLOUD_TOKEN))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        match verdict {
            Ok(()) if status == 201 => {
                let key = answer["key"].as_str().unwrap_or_default().to_string();
                let issue: Value = http
                    .get(sim.url(&format!("/rest/api/3/issue/{key}?fields=description")))
                    .basic_auth(CLOUD_EMAIL, Some(CLOUD_TOKEN))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let stored = &issue["fields"]["description"];
                let content_len = |v: &Value| v["content"].as_array().map(Vec::len);
                if !(stored.is_null() && content_len(doc) == Some(0))
                    && content_len(stored) != content_len(doc)
                {
                    disagreements.push(format!("{name}: stored description differs: {stored}"));
                }
            }
            Ok(()) => disagreements.push(format!(
                "{name}: schema-valid, but the simulator answered {status}: {answer}"
            )),
            Err(why) if status == 400 => {
                let shaped = answer["errorMessages"].is_array() && answer["errors"].is_object();
                if !shaped || answer["errors"].get("description").is_none() {
                    disagreements.push(format!(
                        "{name}: 400 without Jira's error naming the description: {answer} (schema: {why})"
                    ));
                }
            }
            Err(why) => disagreements.push(format!(
                "{name}: schema-invalid ({why}), but the simulator answered {status}: {answer}"
            )),
        }
    }
    sim.shutdown().await;
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// Comment bodies on REST v3 are ADF too: the same corpus, minus the documents without
/// any content (Jira refuses an empty comment whatever its format).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_accept_exactly_the_schema_valid_bodies() {
    let cases: Vec<_> = corpus()
        .into_iter()
        .filter(|(name, _, _)| !matches!(*name, "empty document" | "empty paragraph"))
        .collect();
    let docs: Vec<Value> = cases.iter().map(|(_, _, d)| d.clone()).collect();
    let verdicts = validate_adf(&docs).unwrap();

    let sim = jira_sim::spawn(SimConfig::cloud()).await.unwrap();
    let http = reqwest::Client::new();
    let mut disagreements = Vec::new();
    for ((name, _, doc), verdict) in cases.iter().zip(&verdicts) {
        let resp = http
            .post(sim.url("/rest/api/3/issue/OPS-1/comment"))
            .basic_auth(CLOUD_EMAIL, Some(CLOUD_TOKEN))
            .json(&json!({ "body": doc }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        let shaped = answer["errorMessages"].is_array() && answer["errors"].is_object();
        match (verdict, status) {
            (Ok(()), 201) => {}
            (Err(_), 400) if shaped => {}
            (Ok(()), _) => disagreements.push(format!(
                "{name}: schema-valid, but the simulator answered {status}: {answer}"
            )),
            (Err(why), _) => disagreements.push(format!(
                "{name}: schema-invalid ({why}), but the simulator answered {status}: {answer}"
            )),
        }
    }
    sim.shutdown().await;
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}
