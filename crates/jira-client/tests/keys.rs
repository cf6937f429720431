//! Issue-key extraction: a table of cases (text, extractor options, expected keys).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jira_client::keys::{extract_keys, CaseMode, IssueKey, KeyError, KeyExtractor, ProjectKey};

#[derive(Clone, Copy)]
enum Opts {
    /// Defaults: upper case only (no allow-list), default deny-list.
    Default,
    /// Every case accepted.
    AnyCase,
    /// Allow-list ABC, JRA, SHA (lower case accepted for these).
    Allow,
    /// Data Center: '_' in project keys, allow-list ABC and MY_PROJ.
    Underscore,
    /// Upper only, no deny-list.
    NoDeny,
}

fn extractor(opts: Opts) -> KeyExtractor {
    match opts {
        Opts::Default => KeyExtractor::new(),
        Opts::AnyCase => KeyExtractor::new().case_mode(CaseMode::Any),
        Opts::Allow => KeyExtractor::new().allow_projects(["abc", "JRA", "SHA"]),
        Opts::Underscore => KeyExtractor::new()
            .allow_underscore(true)
            .allow_projects(["ABC", "MY_PROJ"]),
        Opts::NoDeny => KeyExtractor::new().deny_projects(Vec::<String>::new()),
    }
}

/// The case table, shared with the service's `POST /v1/keys/extract` test:
/// `[{"text", "options": "Default|AnyCase|Allow|Underscore|NoDeny", "expected": [..]}]`.
const CASES_JSON: &str = include_str!("data/keys.json");

fn cases() -> Vec<(String, Opts, Vec<String>)> {
    let table: Vec<serde_json::Value> = serde_json::from_str(CASES_JSON).unwrap();
    table
        .iter()
        .map(|c| {
            let opts = match c["options"].as_str().unwrap() {
                "Default" => Opts::Default,
                "AnyCase" => Opts::AnyCase,
                "Allow" => Opts::Allow,
                "Underscore" => Opts::Underscore,
                "NoDeny" => Opts::NoDeny,
                other => panic!("unknown options {other}"),
            };
            let expected = c["expected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            (c["text"].as_str().unwrap().to_string(), opts, expected)
        })
        .collect()
}

#[test]
fn key_extraction_table() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, (text, opts, expected)) in cases.iter().enumerate() {
        let got: Vec<String> = extractor(*opts)
            .extract(text)
            .into_iter()
            .map(|k| k.to_string())
            .collect();
        if got != *expected {
            failures.push(format!(
                "case {i} {text:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn extraction_across_texts_keeps_first_appearance_order() {
    let keys = extract_keys(&[
        "DEF-9 title",
        "feature/ABC-1-thing",
        "commit for DEF-9 and ABC-2",
    ]);
    let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
    assert_eq!(keys, ["DEF-9", "ABC-1", "ABC-2"]);
}

#[test]
fn match_ranges_point_at_the_key() {
    let text = "see feature_ABC-5 now";
    let m = KeyExtractor::new()
        .allow_underscore(true)
        .allow_projects(["ABC"])
        .find_iter(text);
    assert_eq!(m.len(), 1);
    assert_eq!(&text[m[0].range.clone()], "ABC-5");
}

#[test]
fn issue_key_parses_and_normalises() {
    let k = IssueKey::parse("abc-42").unwrap();
    assert_eq!(k.as_str(), "ABC-42");
    assert_eq!(k.project().as_str(), "ABC");
    assert_eq!(k.number(), 42);
    assert_eq!(
        "MY_PROJ-7".parse::<IssueKey>().unwrap().project().as_str(),
        "MY_PROJ"
    );
    assert!(matches!(
        IssueKey::parse("ABC42"),
        Err(KeyError::MissingDash(_))
    ));
    assert!(matches!(
        IssueKey::parse("1BC-4"),
        Err(KeyError::BadProject(_))
    ));
    assert!(matches!(
        IssueKey::parse("A-4"),
        Err(KeyError::BadProject(_))
    ));
    assert!(matches!(
        IssueKey::parse("ABC-04"),
        Err(KeyError::BadNumber(_))
    ));
    assert!(matches!(
        IssueKey::parse("ABC-0"),
        Err(KeyError::BadNumber(_))
    ));
    assert!(matches!(
        IssueKey::parse("ABC-1x"),
        Err(KeyError::BadNumber(_))
    ));
    assert!(ProjectKey::parse("AB-C").is_err());
}

#[test]
fn issue_keys_order_naturally_and_serialize_as_strings() {
    let mut keys: Vec<IssueKey> = ["ABC-10", "ABC-9", "AB-100"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    keys.sort();
    let sorted: Vec<&str> = keys.iter().map(IssueKey::as_str).collect();
    assert_eq!(sorted, ["AB-100", "ABC-9", "ABC-10"]);
    assert_eq!(serde_json::to_string(&keys[0]).unwrap(), "\"AB-100\"");
    let back: IssueKey = serde_json::from_str("\"ab-100\"").unwrap();
    assert_eq!(back, keys[0]);
    assert!(serde_json::from_str::<IssueKey>("\"nope\"").is_err());
}
