//! The Markdown corpus under `tests/data/markdown/`: every document converts to ADF that
//! respects the schema's rules, and Markdown → ADF → Markdown → ADF is stable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adf_support;

use std::path::PathBuf;

use jira_client::adf::{adf_to_markdown, adf_to_plain_text, markdown_to_adf, markdown_to_wiki};

fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/markdown");
    let mut docs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    docs.sort();
    docs
}

#[test]
fn corpus_has_at_least_forty_documents() {
    assert!(
        corpus().len() >= 40,
        "corpus has {} documents",
        corpus().len()
    );
}

#[test]
fn corpus_adf_respects_schema_rules() {
    let mut failures = Vec::new();
    for (name, md) in corpus() {
        let doc = markdown_to_adf(&md).to_value();
        if let Some(dir) = std::env::var_os("ADF_CORPUS_DUMP") {
            let path = PathBuf::from(dir).join(format!("{name}.json"));
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
        if let Err(e) = adf_support::check_document(&doc) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_round_trip_is_stable() {
    let mut failures = Vec::new();
    for (name, md) in corpus() {
        let first = markdown_to_adf(&md);
        let md1 = adf_to_markdown(&first);
        let second = markdown_to_adf(&md1);
        if first != second {
            failures.push(format!(
                "{name}:\n--- markdown written ---\n{md1}\n--- first ---\n{}\n--- second ---\n{}",
                serde_json::to_string(&first).unwrap(),
                serde_json::to_string(&second).unwrap()
            ));
            continue;
        }
        // Rendering is a fixed point too.
        assert_eq!(adf_to_markdown(&second), md1, "{name}: markdown not stable");
    }
    assert!(
        failures.is_empty(),
        "{} unstable:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn corpus_text_survives_in_plain_text_and_wiki() {
    // Every word of the plain-text rendering of the ADF appears in the wiki rendering
    // (wiki escapes punctuation, so compare alphanumeric words only).
    for (name, md) in corpus() {
        let doc = markdown_to_adf(&md);
        let plain = adf_to_plain_text(&doc);
        let wiki = markdown_to_wiki(&md);
        let wiki_alnum: String = wiki.chars().filter(|c| c.is_alphanumeric()).collect();
        for word in plain
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
        {
            assert!(
                wiki_alnum.contains(word),
                "{name}: {word:?} missing from wiki:\n{wiki}"
            );
        }
    }
}

#[test]
fn corpus_adf_validates_against_the_official_schema() {
    let corpus = corpus();
    let docs: Vec<serde_json::Value> = corpus
        .iter()
        .map(|(_, md)| markdown_to_adf(md).to_value())
        .collect();
    // The round-tripped documents are judged too.
    let second: Vec<serde_json::Value> = corpus
        .iter()
        .map(|(_, md)| markdown_to_adf(&adf_to_markdown(&markdown_to_adf(md))).to_value())
        .collect();
    let all: Vec<serde_json::Value> = docs.into_iter().chain(second).collect();
    let verdicts =
        jira_sim::conformance::validate_adf(&all).expect("ADF schema check could not run");
    assert_eq!(verdicts.len(), all.len());
    let names = corpus
        .iter()
        .map(|(n, _)| n.clone())
        .chain(corpus.iter().map(|(n, _)| format!("{n} (round trip)")));
    let failures: Vec<String> = names
        .zip(&verdicts)
        .filter_map(|(name, v)| v.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn schema_check_rejects_invalid_documents() {
    // The referee must be able to fail: an empty text node and a blockquote in a list
    // item are both invalid ADF.
    let bad = vec![
        serde_json::json!({"version": 1, "type": "doc", "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}),
        serde_json::json!({"version": 1, "type": "doc", "content": [
            {"type": "bulletList", "content": [{"type": "listItem", "content": [
                {"type": "blockquote", "content": [{"type": "paragraph"}]}]}]}]}),
    ];
    let verdicts =
        jira_sim::conformance::validate_adf(&bad).expect("ADF schema check could not run");
    assert!(verdicts.iter().all(Result::is_err), "{verdicts:?}");
    for doc in &bad {
        assert!(adf_support::check_document(doc).is_err());
    }
}
