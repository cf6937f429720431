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

const CASES: &[(&str, Opts, &[&str])] = &[
    // Plain and boundaries
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
    // Adjacency
    ("ABC-12-3", Opts::Default, &["ABC-12"]),
    ("ABC-1-DEF-2", Opts::Default, &["ABC-1", "DEF-2"]),
    ("Jra-456-jra-901", Opts::AnyCase, &["JRA-456", "JRA-901"]),
    ("ABC-12.3", Opts::Default, &["ABC-12"]),
    // Numbers
    ("ABC-012", Opts::Default, &[]),
    ("ABC-0", Opts::Default, &[]),
    ("ABC-99999999999999999999999", Opts::Default, &[]),
    (
        "ABC-18446744073709551615",
        Opts::Default,
        &["ABC-18446744073709551615"],
    ),
    // Project part
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
    // Case
    ("abc-123", Opts::Default, &[]),
    ("abc-123", Opts::AnyCase, &["ABC-123"]),
    ("Abc-123 aBc-124", Opts::AnyCase, &["ABC-123", "ABC-124"]),
    ("feature/abc-123-login", Opts::Allow, &["ABC-123"]),
    ("feature/xyz-123-login", Opts::Allow, &[]),
    ("XYZ-9 ABC-1", Opts::Allow, &["ABC-1"]),
    ("covid-19 top-10 step-2", Opts::Allow, &[]),
    // Branch names
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
    // URLs and Markdown
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
    // Look-alikes
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
    // Duplicates and order
    (
        "DEF-2 ABC-1 DEF-2 ABC-1",
        Opts::Default,
        &["DEF-2", "ABC-1"],
    ),
    ("abc-1 ABC-1", Opts::AnyCase, &["ABC-1"]),
    // Unicode neighbours
    ("日本ABC-1", Opts::Default, &[]),
    ("— ABC-1 —", Opts::Default, &["ABC-1"]),
    ("🎉ABC-1🎉", Opts::Default, &["ABC-1"]),
    ("", Opts::Default, &[]),
];

#[test]
fn key_extraction_table() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for (i, (text, opts, expected)) in CASES.iter().enumerate() {
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
