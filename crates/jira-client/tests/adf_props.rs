//! Property tests: no converter panics on arbitrary input, and whatever they produce
//! has the shape the ADF schema requires; quoting and limits hold for any text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adf_support;

use jira_client::adf::{
    adf_to_markdown, adf_to_plain_text, adf_to_wiki, markdown_to_adf, markdown_to_wiki,
    wiki_to_adf, wiki_to_markdown, Document,
};
use jira_client::jql::quote;
use jira_client::keys::{CaseMode, KeyExtractor};
use jira_client::text_limits::{fit_summary, fit_text, jira_len, SUMMARY_MAX};
use proptest::prelude::*;

/// Strings dense in Markdown and wiki syntax.
fn markup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("*".to_string()),
            Just("**".to_string()),
            Just("_".to_string()),
            Just("~~".to_string()),
            Just("`".to_string()),
            Just("```".to_string()),
            Just("\n".to_string()),
            Just("\n\n".to_string()),
            Just("  ".to_string()),
            Just("- ".to_string()),
            Just("1. ".to_string()),
            Just("- [ ] ".to_string()),
            Just("- [x] ".to_string()),
            Just("> ".to_string()),
            Just("> [!NOTE]\n".to_string()),
            Just("[!TIP]".to_string()),
            Just("# ".to_string()),
            Just("| ".to_string()),
            Just("|---|".to_string()),
            Just("[".to_string()),
            Just("](".to_string()),
            Just(")".to_string()),
            Just("![".to_string()),
            Just("<".to_string()),
            Just("\\".to_string()),
            Just("&amp;".to_string()),
            Just("<b>".to_string()),
            Just("---".to_string()),
            Just("h1. ".to_string()),
            Just("{code}".to_string()),
            Just("{quote}".to_string()),
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("||".to_string()),
            Just("bq. ".to_string()),
            Just("* ".to_string()),
            Just("# ".to_string()),
            Just("-".to_string()),
            Just("+".to_string()),
            Just("^".to_string()),
            Just("!".to_string()),
            Just("https://e.com/x".to_string()),
            "[a-z]{1,6}",
            "[ \t]{1,3}",
            "\\PC{1,3}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn check_all(input: &str) {
    let doc = markdown_to_adf(input);
    let v = doc.to_value();
    adf_support::check_document(&v).unwrap_or_else(|e| panic!("markdown {input:?}: {e}\n{v}"));
    let md = adf_to_markdown(&doc);
    let again = markdown_to_adf(&md);
    adf_support::check_document(&again.to_value())
        .unwrap_or_else(|e| panic!("round trip of {input:?} via {md:?}: {e}"));
    let _ = adf_to_plain_text(&doc);
    let _ = adf_to_wiki(&doc);
    let _ = markdown_to_wiki(input);
    let w = wiki_to_adf(input);
    adf_support::check_document(&w.to_value())
        .unwrap_or_else(|e| panic!("wiki {input:?}: {e}\n{}", w.to_value()));
    let _ = wiki_to_markdown(input);
    // JSON that is not a document never panics either.
    let _ = adf_to_markdown(&serde_json::json!({"type": "doc", "content": [input]}));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_converts_to_valid_shapes(input in "\\PC{0,200}") {
        check_all(&input);
    }

    #[test]
    fn markup_heavy_text_converts_to_valid_shapes(input in markup()) {
        check_all(&input);
    }

    #[test]
    fn markdown_round_trip_settles(input in markup()) {
        // After one round the Markdown is in this crate's own style; from then on the
        // document no longer changes.
        let first = markdown_to_adf(&adf_to_markdown(&markdown_to_adf(&input)));
        let md = adf_to_markdown(&first);
        let second = markdown_to_adf(&md);
        prop_assert_eq!(&first, &second, "markdown: {:?}", md);
    }

    #[test]
    fn arbitrary_json_never_panics(input in "\\PC{0,100}", n in 0u32..4) {
        let v = match n {
            0 => serde_json::json!({"version": 1, "type": "doc", "content": [{"type": input.clone(), "text": input.clone()}]}),
            1 => serde_json::json!({"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": input.clone(), "marks": [{"type": "code"}, {"type": "strong"}]}]}]}),
            2 => serde_json::json!({"type": "doc", "content": [{"type": "bulletList", "content": [{"type": "text", "text": input.clone()}]}]}),
            _ => serde_json::json!([input.clone()]),
        };
        let _ = adf_to_markdown(&v);
        let _ = adf_to_plain_text(&v);
        let _ = adf_to_wiki(&Document::from_value_lossy(&v));
    }

    #[test]
    fn key_matches_point_at_their_text(input in "[A-Za-z0-9_/\\-\\[\\]() .é]{0,60}") {
        let ex = KeyExtractor::new().case_mode(CaseMode::Any).allow_underscore(true);
        for m in ex.find_iter(&input) {
            prop_assert_eq!(input[m.range.clone()].to_ascii_uppercase(), m.key.to_string());
        }
    }

    #[test]
    fn quoted_jql_strings_unquote_to_the_original(input in "\\PC{0,80}|[\"\\\\\n\t]{0,10}") {
        let q = quote(&input);
        prop_assert!(q.starts_with('"') && q.ends_with('"'));
        // Decode JQL string escapes.
        let inner: Vec<char> = q[1..q.len() - 1].chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < inner.len() {
            if inner[i] == '\\' {
                match inner[i + 1] {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String = inner[i + 2..i + 6].iter().collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                        i += 4;
                    }
                    c => out.push(c),
                }
                i += 2;
            } else {
                prop_assert!(inner[i] != '"', "unescaped quote in {}", q);
                out.push(inner[i]);
                i += 1;
            }
        }
        prop_assert_eq!(out, input);
    }

    #[test]
    fn fitted_text_is_within_limits(input in "\\PC{0,400}", max in 60usize..300) {
        let s = fit_summary(&input);
        prop_assert!(jira_len(&s.summary) <= SUMMARY_MAX);
        prop_assert!(!s.summary.contains('\n'));
        let t = fit_text(&input, max);
        prop_assert!(jira_len(&t.value) <= max);
    }
}

#[test]
fn hostile_nesting_and_long_runs_stay_bounded() {
    let inputs = [
        ">".repeat(50_000),
        "> ".repeat(20_000) + "x",
        (0..3_000)
            .map(|i| format!("{}- x\n", "  ".repeat(i)))
            .collect::<String>(),
        "- ".repeat(20_000) + "x",
        "[".repeat(50_000),
        "*".repeat(50_000) + "a" + &"*".repeat(50_000),
        "`".repeat(20_000),
        "|".repeat(10_000) + "\n" + &"|-".repeat(5_000),
        "{quote}\n".repeat(5_000),
        "*".repeat(20_000) + " x",
        "a\\\\".repeat(20_000),
    ];
    for input in &inputs {
        check_all(input);
        let doc = markdown_to_adf(input);
        let v = doc.to_value();
        assert!(
            depth(&v) < 200,
            "depth {} for input starting {:?}",
            depth(&v),
            &input[..20]
        );
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
