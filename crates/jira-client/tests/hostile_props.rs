//! Hostile-input properties: JQL built from any value parses (with the simulator's
//! independent JQL parser) to exactly the clauses that were built, so no value or field
//! name can escape its literal; ADF → Markdown survives any JSON; every extracted issue
//! key is a key.
//!
//! Case counts follow `PROPTEST_CASES` (CI runs the defaults; raise it locally for a
//! longer run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jira_client::adf::{adf_to_markdown, adf_to_plain_text, adf_to_wiki, Document};
use jira_client::jql::{field, Clause, Query, TextQuery};
use jira_client::keys::{CaseMode, IssueKey, KeyExtractor};
use jira_sim::jql::{parse, Expr, Operand};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Strings dense in what JQL gives meaning to.
fn hostile() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("'".to_owned()),
            Just(" OR ".to_owned()),
            Just(" AND ".to_owned()),
            Just("project = X".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just(",".to_owned()),
            Just("~".to_owned()),
            Just("!=".to_owned()),
            Just("EMPTY".to_owned()),
            Just("currentUser()".to_owned()),
            Just(" ORDER BY key".to_owned()),
            Just("\n".to_owned()),
            Just("\t".to_owned()),
            Just("\u{0}".to_owned()),
            Just("\u{1b}".to_owned()),
            Just("\\u0022".to_owned()),
            "[a-z]{1,5}",
            "\\PC{1,3}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// The single clause `expr` must be, with its value.
fn clause(expr: &Expr) -> (&str, &str, &Operand) {
    match expr {
        Expr::Clause { field, op, value } => (field, op, value),
        other => panic!("expected one clause, got {other:?}"),
    }
}

fn literal(op: &Operand) -> &str {
    match op {
        Operand::Quoted(s) => s,
        other => panic!("expected a quoted literal, got {other:?}"),
    }
}

/// Arbitrary JSON, biased towards ADF's vocabulary.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("doc"),
            Just("paragraph"),
            Just("text"),
            Just("heading"),
            Just("bulletList"),
            Just("orderedList"),
            Just("listItem"),
            Just("codeBlock"),
            Just("table"),
            Just("tableRow"),
            Just("tableCell"),
            Just("mention"),
            Just("link"),
            Just("strong"),
            Just("panel"),
            Just("taskItem"),
        ]
        .prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("content".to_owned()),
                    Just("text".to_owned()),
                    Just("attrs".to_owned()),
                    Just("marks".to_owned()),
                    Just("level".to_owned()),
                    Just("href".to_owned()),
                    Just("version".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn built_values_stay_inside_their_literal(a in hostile(), b in hostile()) {
        let jql = Query::new(field("summary").eq(a.as_str()).and(field("labels").ne(b.as_str())))
            .build()
            .unwrap();
        let parsed = parse(&jql).unwrap_or_else(|e| panic!("{jql}: {e}"));
        let Some(Expr::And(left, right)) = parsed.filter else {
            panic!("{jql}: not one AND: {:?}", parsed.filter);
        };
        let (f, op, v) = clause(&left);
        prop_assert_eq!((f, op, literal(v)), ("summary", "=", a.as_str()), "{}", jql);
        let (f, op, v) = clause(&right);
        prop_assert_eq!((f, op, literal(v)), ("labels", "!=", b.as_str()), "{}", jql);
        prop_assert!(parsed.order.is_empty(), "{}", jql);
    }

    #[test]
    fn built_lists_keep_every_member(values in proptest::collection::vec(hostile(), 1..6)) {
        let jql = Query::new(field("labels").in_list(values.iter().map(String::as_str)))
            .build()
            .unwrap();
        let parsed = parse(&jql).unwrap_or_else(|e| panic!("{jql}: {e}"));
        let filter = parsed.filter.unwrap();
        let (f, op, v) = clause(&filter);
        let op = op.to_ascii_lowercase();
        prop_assert_eq!((f, op.as_str()), ("labels", "in"), "{}", jql);
        let Operand::List(items) = v else { panic!("{jql}: not a list: {v:?}") };
        let got: Vec<&str> = items.iter().map(literal).collect();
        let want: Vec<&str> = values.iter().map(String::as_str).collect();
        prop_assert_eq!(got, want, "{}", jql);
    }

    #[test]
    fn field_names_cannot_escape_either(name in hostile().prop_filter("a name", |s| !s.trim().is_empty()), v in hostile()) {
        let jql = Query::new(field(&name).eq(v.as_str())).build().unwrap();
        let parsed = parse(&jql).unwrap_or_else(|e| panic!("{jql}: {e}"));
        let filter = parsed.filter.unwrap();
        let (f, op, value) = clause(&filter);
        prop_assert_eq!((f, op, literal(value)), (name.as_str(), "=", v.as_str()), "{}", jql);
    }

    #[test]
    fn text_searches_are_one_clause(q in hostile(), kind in 0u8..3) {
        let query = match kind {
            0 => TextQuery::words(q.clone()),
            1 => TextQuery::phrase(q.clone()),
            _ => TextQuery::prefix(q.clone()),
        };
        // Blank searches are refused; anything else renders as one `text ~` clause.
        if let Ok(jql) = Query::new(Clause::text(query)).build() {
            let parsed = parse(&jql).unwrap_or_else(|e| panic!("{jql}: {e}"));
            let filter = parsed.filter.unwrap();
            let (f, op, value) = clause(&filter);
            prop_assert_eq!((f, op), ("text", "~"), "{}", jql);
            literal(value);
        }
    }

    #[test]
    fn adf_readers_survive_any_json(v in json_value()) {
        let _ = adf_to_markdown(&v);
        let _ = adf_to_plain_text(&v);
        let doc = Document::from_value_lossy(&v);
        let _ = adf_to_wiki(&doc);
        let _ = adf_to_markdown(&doc);
        let wrapped = json!({"type": "doc", "version": 1, "content": [v]});
        let _ = adf_to_markdown(&wrapped);
        let _ = adf_to_plain_text(&wrapped);
    }

    #[test]
    fn extracted_keys_are_keys(input in "[A-Za-z0-9_#/\\-\\[\\]()., \n:é]{0,80}", mode in 0u8..3) {
        let ex = match mode {
            0 => KeyExtractor::new().case_mode(CaseMode::Upper),
            1 => KeyExtractor::new().case_mode(CaseMode::Any).allow_underscore(true),
            _ => KeyExtractor::new().allow_projects(["ABC", "X_Y"]),
        };
        let found = ex.extract(&input);
        for key in &found {
            let again = IssueKey::parse(key.as_str()).unwrap_or_else(|e| panic!("{key} from {input:?}: {e}"));
            prop_assert_eq!(&again, key);
        }
        let distinct: std::collections::HashSet<&IssueKey> = found.iter().collect();
        prop_assert_eq!(distinct.len(), found.len(), "duplicates in {:?}", found);
        if mode == 2 {
            for key in &found {
                prop_assert!(["ABC", "X_Y"].contains(&key.project().as_str()), "{} not allowed", key);
            }
        }
    }
}
